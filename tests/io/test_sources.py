"""Sources: comma stacks, band selection, alignment modes, validity, overlap and georeferencing errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from geop2p.errors import BandIndexError, GridMismatchError, InputError, NoOverlapError, RasterReadError
from geop2p.io.sources import PairReader, PixelSpaceWarning, open_stack, parse_sources, plan_alignment
from tests.conftest import write_raster
from tests.fixtures.export import ORIGIN, UTM31


def test_parse_sources():
    assert parse_sources("a.tif, b.tif,") == ("a.tif", "b.tif")
    assert parse_sources(["a.tif"]) == ("a.tif",)
    with pytest.raises(InputError, match="No raster"):
        parse_sources(" , ")


def test_comma_stack_names_and_bands(comma_pair):
    (vv, vh), _ = comma_pair
    s = open_stack(f"{vv},{vh}", what="input")
    assert s.count == 2 and s.band_names == ("VV", "VH") and s.dtype == "int16"
    assert s.band_sources == ((0, 1), (1, 1))
    s2 = open_stack([vv, vh], bands=[2])
    assert s2.band_names == ("VH",) and s2.band_sources == ((1, 1),)


def test_band_out_of_range_names_stack(comma_pair):
    (vv, vh), _ = comma_pair
    with pytest.raises(BandIndexError, match=r"Band 3 does not exist in the input stack .* 2 band\(s\)"):
        open_stack(f"{vv},{vh}", bands=[1, 3], what="input")


def test_stack_grid_mismatch_names_attribute(tmp_path, comma_pair):
    (vv, _), _ = comma_pair
    other = write_raster(tmp_path / "shifted.tif", np.zeros((128, 128), np.int16), Affine(10, 0, 500010, 0, -10, 5000000), UTM31)
    with pytest.raises(GridMismatchError, match="transform differs"):
        open_stack([vv, other])


def test_broken_files(bad_files):
    with pytest.raises(RasterReadError, match="truncated or corrupt"):
        open_stack(bad_files.truncated)
    with pytest.raises(RasterReadError, match="not recognized|Cannot read"):
        open_stack(bad_files.text)
    with pytest.raises(RasterReadError, match="not found"):
        open_stack(bad_files.missing)


def test_same_file_band_split(stack4):
    x = open_stack(stack4, bands=[4])
    y = open_stack(stack4, bands=[1, 2, 3])
    a = plan_alignment(x, y)
    assert a.mode == "identical" and a.region == Window(0, 0, 128, 128)
    with PairReader(x, y, a) as r:
        xd, yd, valid = r.read(Window(0, 0, 32, 32))
    with rasterio.open(stack4) as src:
        full = src.read(window=Window(0, 0, 32, 32))
    np.testing.assert_array_equal(xd[0], full[3])
    np.testing.assert_array_equal(yd, full[:3])
    assert not valid[:8, :8].any() and valid[8:, 8:].all()


def test_warped_target_equals_direct_reproject(pair):
    x = open_stack(pair.input)
    y = open_stack(pair.target)
    a = plan_alignment(x, y)
    assert a.mode == "warped" and a.resampling == "bilinear"
    w = Window(64, 96, 32, 32)
    with PairReader(x, y, a) as r:
        xd, yd, valid = r.read(w)
        _, _, hole_valid = r.read(Window(64, 32, 32, 32))
    chip_t = x.grid.window_transform(w)
    with rasterio.open(pair.target) as src:
        dst = np.full((1, 32, 32), np.nan, np.float32)
        reproject(rasterio.band(src, 1), dst, dst_transform=chip_t, dst_crs=UTM31,
                  resampling=Resampling.bilinear, src_nodata=-9999, dst_nodata=np.nan)
    assert valid.all() and not np.isnan(dst).any()
    # the reference uses GDAL's approximate transformer (error up to 0.125 px); the reader transforms exactly
    np.testing.assert_allclose(yd[0], dst[0], rtol=1e-4)
    # the input hole (nodata 255, rows 40-49 × cols 70-89) is invalid, the rest of that chip valid
    assert not hole_valid[40 - 32 : 50 - 32, 70 - 64 : 90 - 64].any() and hole_valid.sum() == 32 * 32 - 200


def test_target_hole_is_invalid(pair):
    x, y = open_stack(pair.input), open_stack(pair.target)
    a = plan_alignment(x, y, "nearest")
    with PairReader(x, y, a) as r:
        _, yd, valid = r.read(Window(0, 0, 128, 128))
    assert not (yd[0][valid] == -9999).any()
    assert (~valid).sum() > 200 + 50  # the input hole (200 px) plus the target hole (6×15 px of ~8×9 m)


def test_shifted_same_lattice_reads_without_resampling(tmp_path, rng):
    data = rng.random((1, 80, 80)).astype(np.float32)
    inp = write_raster(tmp_path / "i.tif", data[:, 10:74, 5:69], Affine(10, 0, 500050, 0, -10, 5000000 - 100), UTM31)
    tgt = write_raster(tmp_path / "t.tif", data * 2, ORIGIN, UTM31)
    x, y = open_stack(inp), open_stack(tgt)
    a = plan_alignment(x, y)
    assert a.mode == "shifted" and a.offset == (10, 5)
    with PairReader(x, y, a) as r:
        xd, yd, valid = r.read(Window(0, 0, 64, 64))
    np.testing.assert_array_equal(yd, xd * 2)
    assert valid.all()


def test_no_overlap_names_both_bounds(tmp_path):
    a = write_raster(tmp_path / "a.tif", np.zeros((32, 32), np.uint8), ORIGIN, UTM31)
    b = write_raster(tmp_path / "b.tif", np.zeros((32, 32), np.uint8), Affine(10, 0, 600000, 0, -10, 5000000), UTM31)
    with pytest.raises(NoOverlapError, match=r"input \(500000, 4\.99968e\+06, 500320, 5e\+06\) in EPSG:32631, target \(600000"):
        plan_alignment(open_stack(a), open_stack(b))


def test_one_georeferenced_one_not(tmp_path, pixel_pair, pair):
    with pytest.raises(GridMismatchError, match="has a CRS but the target raster .* has none"):
        plan_alignment(open_stack(pair.input), open_stack(pixel_pair.input))


def test_pixel_space_pair_warns(pixel_pair):
    with pytest.warns(PixelSpaceWarning, match="pixel space"):
        a = plan_alignment(open_stack(pixel_pair.input), open_stack(pixel_pair.target))
    assert a.mode == "identical" and not a.georeferenced


def test_pixel_space_different_pixel_size(tmp_path):
    a = write_raster(tmp_path / "a.tif", np.zeros((32, 32), np.uint8), Affine(1, 0, 0, 0, 1, 0), None)
    b = write_raster(tmp_path / "b.tif", np.zeros((16, 16), np.uint8), Affine(2, 0, 0, 0, 2, 0), None)
    with pytest.warns(PixelSpaceWarning), pytest.raises(GridMismatchError, match="different pixel sizes"):
        plan_alignment(open_stack(a), open_stack(b))


def test_unknown_resampling_lists_names(pair):
    with pytest.raises(InputError, match="valid names: nearest, bilinear, cubic"):
        plan_alignment(open_stack(pair.input), open_stack(pair.target), "linear")


def test_colour_table_target_defaults_to_nearest(tmp_path, pair):
    t = write_raster(tmp_path / "classes.tif", np.ones((64, 64), np.uint8), Affine(20, 0, 500000, 0, -20, 5000000), UTM31)
    with rasterio.open(t, "r+") as dst:
        dst.write_colormap(1, {0: (0, 0, 0, 255), 1: (255, 0, 0, 255)})
    a = plan_alignment(open_stack(pair.input), open_stack(t))
    assert a.resampling == "nearest" and a.mode == "warped"


# ---------------------------------------------------------------------------------------------- issue 8


def test_a_file_whose_name_holds_a_comma(tmp_path, monkeypatch):
    """issue 8, case 9: 'my, input.tif' was split into 'my' and 'input.tif'."""
    monkeypatch.chdir(tmp_path)
    write_raster("my, input.tif", np.zeros((1, 8, 8), np.uint8), ORIGIN, UTM31)
    assert parse_sources("my, input.tif") == ("my, input.tif",)
    assert open_stack("my, input.tif").paths == ("my, input.tif",)
    write_raster("my", np.zeros((1, 8, 8), np.uint8), ORIGIN, UTM31)
    write_raster("input.tif", np.zeros((1, 8, 8), np.uint8), ORIGIN, UTM31)
    assert parse_sources("my, input.tif") == ("my", "input.tif")  # every part exists: commas stack
    with pytest.raises(RasterReadError, match=r"Raster not found: 'nope.tif' \(the input 'input.tif,nope.tif' was "
                                              r"split at its commas, which stack rasters"):
        open_stack("input.tif,nope.tif", what="input")


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_rasters_are_refused_with_a_hint(dtype, tmp_path):
    """issue 8, case 8: complex chips were written with statistics of the real part only."""
    path = write_raster(tmp_path / "slc.tif", (np.ones((1, 8, 8)) * (1 + 2j)).astype(dtype), ORIGIN, UTM31)
    with pytest.raises(RasterReadError, match=rf"holds complex values \({dtype}\).*take the amplitude.*abs\(A\)"):
        open_stack(path, what="target")


def test_rasters_placed_by_gcps_only_are_refused(tmp_path):
    from rasterio.control import GroundControlPoint

    gcps = [GroundControlPoint(0, 0, 500000, 5000000), GroundControlPoint(0, 8, 500080, 5000000),
            GroundControlPoint(8, 0, 500000, 4999920)]
    with rasterio.open(tmp_path / "l1.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       gcps=gcps, crs=UTM31) as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(RasterReadError, match=r"ground control points \(GCPs\) only.*gdalwarp"):
        open_stack(tmp_path / "l1.tif")


def test_warp_source_crs_only_for_geographic_rasters_past_180():
    from geop2p.grid import GeoGrid
    from geop2p.io.sources import warp_source_crs

    wgs84 = CRS.from_epsg(4326)
    inside = GeoGrid(10, 10, Affine(0.01, 0, 170, 0, -0.01, -40), wgs84)
    past = GeoGrid(10, 30, Affine(0.01, 0, 179.9, 0, -0.01, -40), wgs84)
    utm = GeoGrid(10, 10, Affine(100, 0, 700000, 0, -100, 5570000), CRS.from_epsg(32760))
    assert warp_source_crs(utm, inside) is None and warp_source_crs(inside, utm) is None
    assert "+lon_wrap=180.05" in warp_source_crs(utm, past).to_proj4()
    assert "+lon_wrap=170.05" in warp_source_crs(past, inside).to_proj4()  # the input runs past 180°
