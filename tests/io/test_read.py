"""geop2p.io.read: clear errors for bad files; data and validity read together."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geop2p.errors import BandIndexError, RasterReadError
from geop2p.io import raster_info, read_raster
from geop2p.io.read import block_extents, check_intact


def test_read_returns_data_and_joint_validity(make_raster):
    data = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8)
    data[0, 1, 1] = np.nan
    data[1, 2, 3] = -9999
    path = make_raster("a.tif", data, nodata=-9999)
    out, valid = read_raster(path)
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    assert valid.dtype == bool
    assert not valid[1, 1] and not valid[2, 3]
    assert valid.sum() == 64 - 2


def test_read_honours_internal_mask(make_raster):
    data = np.full((1, 8, 8), 7, dtype="uint8")
    mask = np.ones((8, 8), dtype=bool)
    mask[:2] = False
    path = make_raster("m.tif", data, mask=mask)
    _, valid = read_raster(path)
    np.testing.assert_array_equal(valid, mask)
    assert raster_info(path).has_mask


def test_band_selection_and_out_of_range(make_raster):
    data = np.stack([np.full((4, 4), i, dtype="uint8") for i in range(1, 4)])
    path = make_raster("s.tif", data)
    out, _ = read_raster(path, bands=[3, 1])
    assert out[:, 0, 0].tolist() == [3, 1]
    with pytest.raises(BandIndexError, match=r"Band 4 does not exist .* has 3 band\(s\)"):
        read_raster(path, bands=[4])


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(RasterReadError, match="Raster not found"):
        read_raster(tmp_path / "nope.tif")


def test_not_a_raster_and_truncated(tmp_path, make_raster):
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster")
    with pytest.raises(RasterReadError, match="Cannot read .* as a raster"):
        raster_info(text)
    good = make_raster("big.tif", np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype="uint8"))
    blob = good.read_bytes()
    broken = tmp_path / "broken.tif"
    broken.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(RasterReadError):
        read_raster(broken)


def test_folder_is_refused(tmp_path):
    with pytest.raises(RasterReadError, match="is a folder"):
        raster_info(tmp_path)


def test_truncated_geotiff_is_found_from_its_block_table(tmp_path, make_raster):
    good = make_raster("tiles.tif", np.random.default_rng(1).integers(0, 255, (2, 256, 256), dtype="uint8"),
                       tiled=True, blockxsize=64, blockysize=64)
    check_intact(good)  # whole: passes
    blob = good.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(blob[: int(len(blob) * 0.6)])
    raster_info(cut)  # its header is intact: it opens
    with pytest.raises(RasterReadError, match=r"is truncated: block \(\d+, \d+\) of band 1 ends at byte \d+ but the file"):
        check_intact(cut)
    with rasterio.open(good) as src:
        extents = list(block_extents(src))
    assert len(extents) == 16 and all(offset and size for _, _, _, offset, size in extents)


def test_sparse_geotiff_is_not_truncated(tmp_path):
    path = tmp_path / "sparse.tif"
    with rasterio.open(path, "w", driver="GTiff", height=512, width=512, count=1, dtype="uint8", tiled=True,
                       sparse_ok=True, crs="EPSG:32631", transform=rasterio.Affine(10, 0, 0, 0, -10, 0)):
        pass
    check_intact(path)


def test_raster_info_carries_gcps_and_rpcs(tmp_path, make_raster):
    from rasterio.control import GroundControlPoint

    gcps = [GroundControlPoint(0, 0, 500000, 5000000), GroundControlPoint(0, 8, 500080, 5000000),
            GroundControlPoint(8, 0, 500000, 4999920)]
    path = tmp_path / "gcps.tif"
    with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8", gcps=gcps,
                       crs="EPSG:32631") as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    info = raster_info(path)
    assert info.georeferencing == "gcps" and info.grid.crs is None
    assert [(g.row, g.col, g.x, g.y) for g in info.gcps] == [(g.row, g.col, g.x, g.y) for g in gcps]
    assert info.gcp_crs == rasterio.crs.CRS.from_epsg(32631)
    plain = raster_info(make_raster("plain.tif", np.zeros((1, 8, 8), np.uint8)))
    assert plain.georeferencing == "transform" and plain.gcps == () and plain.rpcs is None
