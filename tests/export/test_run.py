"""export_chips end to end on tiny rasters: georeferencing, alignment, masks, split, stats, workers, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geop2p.errors import (
    BandIndexError,
    ChipSizeError,
    Geop2pError,
    InputError,
    NoOverlapError,
    OutputExistsError,
    RasterReadError,
)
from geop2p.export import ExportConfig, export_chips
from geop2p.io.chip_folder import read_manifest
from geop2p.io.sources import PixelSpaceWarning
from geop2p.split import window_gaps
from tests.fixtures.export import ORIGIN, UTM31

SMALL = dict(size=32, block_size=64, buffer=0, min_valid=0.5)


def _index(out: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "index.gpkg", layer="chips")


def _manifest(out: Path) -> dict:
    return json.loads((out / "geop2p-chips.json").read_text())


def _chips(out: Path):
    for row in _index(out).itertuples():
        yield row, out / "input" / f"{row.chip_id}.tif", out / "target" / f"{row.chip_id}.tif"


def test_chips_are_exactly_georeferenced_and_aligned(pair, tmp_path):
    out = tmp_path / "chips"
    summary = export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    idx = _index(out)
    assert summary.total == len(idx) == 16
    assert idx.crs == UTM31
    assert list(idx.columns) == ["chip_id", "split", "row_off", "col_off", "height", "width", "valid_fraction", "geometry"]
    with rasterio.open(pair.target) as tsrc:
        for row, ip, tp in _chips(out):
            w = Window(row.col_off, row.row_off, row.width, row.height)
            assert row.chip_id == f"{row.row_off:06d}_{row.col_off:06d}"
            assert row.geometry.bounds == pytest.approx(rasterio.windows.bounds(w, ORIGIN))
            with rasterio.open(ip) as a, rasterio.open(tp) as b:
                expected_t = window_transform(w, ORIGIN)
                assert a.transform == expected_t and b.transform == expected_t
                assert a.crs == UTM31 and b.crs == UTM31
                assert a.dtypes == ("uint8",) * 3 and b.dtypes == ("float32",)
                assert a.nodata == 255 and b.nodata == -9999
                assert a.descriptions == ("red", "green", "blue") and b.descriptions == ("elevation",)
                valid = a.dataset_mask() > 0
                np.testing.assert_array_equal(valid, b.dataset_mask() > 0)
                assert valid.mean() == pytest.approx(row.valid_fraction, abs=1e-6)
                x, y = a.read(), b.read()
                assert (x[:, ~valid] == 255).all() and (y[:, ~valid] == -9999).all()
                ref = np.full((1, 32, 32), np.nan, np.float32)
                reproject(rasterio.band(tsrc, 1), ref, dst_transform=expected_t, dst_crs=UTM31,
                          resampling=Resampling.bilinear, src_nodata=-9999, dst_nodata=np.nan)
                ok = valid & ~np.isnan(ref[0])
                np.testing.assert_allclose(y[0][ok], ref[0][ok], rtol=1e-4)
    # the input hole (rows 40-49, cols 70-89) is invalid in the chip holding it
    with rasterio.open(out / "input" / "000032_000064.tif") as a:
        assert not (a.dataset_mask()[8:18, 6:26] > 0).any()


def test_manifest_and_stats_equal_numpy_over_train_chips(pair, tmp_path):
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    m = _manifest(out)
    assert m["format"] == "geop2p-chips" and m["format_version"] == 1
    assert m["chip_spec"] == {"size": 32, "stride": 32, "min_valid": 0.5}
    assert m["alignment"]["target_reprojected"] is True and m["alignment"]["resampling"] == "bilinear"
    assert m["input"]["bands"] == [1, 2, 3] and m["target"]["nodata"] == -9999
    idx = _index(out)
    assert m["counts"] == {s: int((idx.split == s).sum()) for s in ("train", "val", "test")}
    xs, ys = [], []
    for row, ip, tp in _chips(out):
        if row.split == "train":
            with rasterio.open(ip) as a, rasterio.open(tp) as b:
                valid = a.dataset_mask() > 0
                xs.append(a.read()[:, valid])
                ys.append(b.read()[:, valid])
    for side, values in (("input", np.concatenate(xs, axis=1)), ("target", np.concatenate(ys, axis=1))):
        for band, v in zip(m["stats"][side]["bands"], values):
            assert band["count"] == v.size
            assert band["min"] == float(v.min()) and band["max"] == float(v.max())
            assert band["mean"] == pytest.approx(float(v.astype(np.float64).mean()), rel=1e-12)
            assert band["std"] == pytest.approx(float(v.astype(np.float64).std()), rel=1e-9)
            for q in ("1", "2", "98", "99"):
                ref = float(np.percentile(v, float(q), method="inverted_cdf"))
                assert band["percentiles"][q] == pytest.approx(ref, rel=2**-12)
    assert (out / "export-config.yaml").is_file()
    cfg = ExportConfig.from_yaml(out / "export-config.yaml")
    assert cfg.size == 32 and cfg.resampling == "bilinear"


def test_manifest_is_a_chip_manifest_read_back_unchanged(stack4, tmp_path):
    out = tmp_path / "chips"
    summary = export_chips(stack4, stack4, out, ExportConfig(input_bands=(4,), target_bands=(1, 2, 3), **SMALL))
    m = _manifest(out)
    manifest = read_manifest(out)
    assert manifest.to_dict() == m
    assert m["input"]["nodata"] == "nan" and np.isnan(manifest.input.nodata)  # the one JSON policy for NaN
    assert manifest.input.paths == (str(stack4),) and manifest.target.bands == (1, 2, 3)
    assert manifest.counts == summary.counts and manifest.skipped["low_valid"] == summary.low_valid
    assert set(m) == {"format", "format_version", "geop2p_version", "created", "input", "target", "grid", "chip_spec",
                      "alignment", "aoi", "split", "counts", "skipped", "stats"}


def test_same_output_for_one_and_two_workers(pair, tmp_path):
    outs = []
    for n in (1, 2):
        out = tmp_path / f"chips{n}"
        export_chips(pair.input, pair.target, out, ExportConfig(**SMALL, workers=n))
        outs.append(out)
    a, b = outs
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.tif"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.tif")) and files_a
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ma, mb = _manifest(a), _manifest(b)
    ma.pop("created"), mb.pop("created")
    assert ma == mb
    assert _index(a).equals(_index(b))


def test_split_buffer_holds(pair, tmp_path):
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(size=32, stride=16, block_size=64, buffer=16, min_valid=0.5,
                                                            split=(0.5, 0.5)))
    idx = _index(out)
    wins = {s: [Window(r.col_off, r.row_off, r.width, r.height) for r in idx[idx.split == s].itertuples()]
            for s in ("train", "val")}
    assert wins["train"] and wins["val"]
    for v in wins["val"]:
        for t in wins["train"]:
            assert window_gaps(v, t) >= 16


def test_resume_finishes_without_duplicates(pair, tmp_path):
    fresh = tmp_path / "fresh"
    export_chips(pair.input, pair.target, fresh, ExportConfig(**SMALL))
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    # simulate an interruption: no manifest/index, some chips missing, one truncated, a partial temp file
    (out / "geop2p-chips.json").unlink()
    (out / "index.gpkg").unlink()
    chips = sorted((out / "input").glob("*.tif"))
    for p in chips[:5]:
        p.unlink()
    (out / "target" / chips[6].name).write_bytes((out / "target" / chips[6].name).read_bytes()[:300])
    (out / "input" / ".x.partial-1234abcd.tif").write_bytes(b"junk")
    with pytest.raises(OutputExistsError, match="--resume"):
        export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    summary = export_chips(pair.input, pair.target, out, ExportConfig(**SMALL), resume=True)
    assert summary.reused == 16 - 6 and summary.written == 6
    assert not list((out / "input").glob(".*"))
    for p in fresh.rglob("*.tif"):
        assert p.read_bytes() == (out / p.relative_to(fresh)).read_bytes()
    a, b = _manifest(fresh), _manifest(out)
    a.pop("created"), b.pop("created")
    assert a == b
    # complete: nothing to do
    again = export_chips(pair.input, pair.target, out, ExportConfig(**SMALL), resume=True)
    assert again.written == 0 and again.total == 16


def test_resume_refuses_other_settings(pair, tmp_path):
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    (out / "geop2p-chips.json").unlink()
    with pytest.raises(InputError, match=r"different settings \(size: 32 then, 64 now"):
        export_chips(pair.input, pair.target, out, ExportConfig(**dict(SMALL, size=64)), resume=True)


def test_overwrite(pair, tmp_path):
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    with pytest.raises(OutputExistsError, match="already exists.*--overwrite"):
        export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    s = export_chips(pair.input, pair.target, out, ExportConfig(**dict(SMALL, size=64)), overwrite=True)
    assert s.total == 4 and len(list((out / "input").glob("*.tif"))) == 4
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.docx").write_text("do not delete")
    with pytest.raises(OutputExistsError, match="refusing to delete"):
        export_chips(pair.input, pair.target, other, ExportConfig(**SMALL), overwrite=True)
    assert (other / "thesis.docx").exists()


def test_same_file_band_split(stack4, tmp_path):
    out = tmp_path / "chips"
    export_chips(stack4, stack4, out, ExportConfig(input_bands=(4,), target_bands=(1, 2, 3), **SMALL))
    m = _manifest(out)
    assert m["input"]["band_names"] == ["sar"] and m["target"]["band_names"] == ["b1", "b2", "b3"]
    assert m["alignment"]["mode"] == "identical"
    with rasterio.open(stack4) as src, rasterio.open(out / "input" / "000032_000064.tif") as a, \
            rasterio.open(out / "target" / "000032_000064.tif") as b:
        w = Window(64, 32, 32, 32)
        np.testing.assert_array_equal(a.read(1), src.read(4, window=w))
        np.testing.assert_array_equal(b.read(), src.read([1, 2, 3], window=w))
        assert np.isnan(a.nodata)
    # the NaN corner: chip (0, 0) has 64 of 1024 invalid pixels
    with rasterio.open(out / "input" / "000000_000000.tif") as a:
        assert (a.dataset_mask() == 0).sum() == 64 and np.isnan(a.read(1)[:8, :8]).all()


def test_comma_stacked_input(comma_pair, tmp_path):
    (vv, vh), tg = comma_pair
    out = tmp_path / "chips"
    export_chips(f"{vv},{vh}", tg, out, ExportConfig(**SMALL))
    m = _manifest(out)
    assert m["input"]["band_names"] == ["VV", "VH"] and len(m["input"]["sources"]) == 2
    with rasterio.open(out / "input" / "000096_000032.tif") as a, rasterio.open(vh) as src:
        np.testing.assert_array_equal(a.read(2), src.read(1, window=Window(32, 96, 32, 32)))


def test_pixel_space_pair(pixel_pair, tmp_path):
    out = tmp_path / "chips"
    with pytest.warns(PixelSpaceWarning):
        export_chips(pixel_pair.input, pixel_pair.target, out, ExportConfig(**SMALL))
    assert _index(out).crs is None
    with rasterio.open(out / "input" / "000032_000064.tif") as a, rasterio.open(pixel_pair.input) as src:
        assert a.crs is None
        np.testing.assert_array_equal(a.read(), src.read(window=Window(64, 32, 32, 32)))
    assert _manifest(out)["alignment"]["georeferenced"] is False


def test_aoi_within_and_intersects(pair, aoi_files, tmp_path):
    # the AOI is the input's top-left 66×66 px (in EPSG:4326): chips tile its bounding box
    within = export_chips(pair.input, pair.target, tmp_path / "a", ExportConfig(aoi=str(aoi_files.inside), **SMALL))
    idx = _index(tmp_path / "a")
    assert within.total == 9 and set(idx.row_off) == set(idx.col_off) == {0, 32, 34}
    # a triangle (top-left half of that box): "within" keeps the chips inside it, "intersects" the ones touching it
    from shapely.geometry import Polygon

    tri = tmp_path / "tri.gpkg"
    gpd.GeoDataFrame(geometry=[Polygon([(500000, 5000000), (500660, 5000000), (500000, 4999340)])],
                     crs=UTM31).to_file(tri, driver="GPKG")
    a = export_chips(pair.input, pair.target, tmp_path / "t1", ExportConfig(aoi=str(tri), **SMALL))
    b = export_chips(pair.input, pair.target, tmp_path / "t2", ExportConfig(aoi=str(tri), aoi_mode="intersects", **SMALL))
    assert (a.total, b.total) == (1, 6)  # chip (0, 0) lies inside; 6 of the 9 touch the triangle
    aoi = gpd.read_file(tri).geometry[0]
    assert all(g.within(aoi) for g in _index(tmp_path / "t1").geometry)
    assert _manifest(tmp_path / "t2")["aoi"]["mode"] == "intersects"


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("missing", RasterReadError, "not found"),
        ("text", RasterReadError, "Cannot read"),
        ("truncated", RasterReadError, "truncated or corrupt"),
        ("band", BandIndexError, "Band 5 does not exist"),
        ("size", ChipSizeError, "use --size 64"),
        ("stride", InputError, "Stride must be a positive"),
        ("too_big", ChipSizeError, r"do not fit in the overlap of input and target, which is 128×128"),
        ("aoi_outside", NoOverlapError, "does not overlap the rasters"),
        ("fractions", InputError, "add up to 0.9"),
        ("min_valid_never_met", ChipSizeError, "No chip has at least"),
    ],
)
def test_bad_input_leaves_no_output(case, error, message, pair, bad_files, aoi_files, tmp_path):
    inp, tgt = pair.input, pair.target
    cfg = dict(SMALL)
    if case in ("missing", "text", "truncated"):
        tgt = getattr(bad_files, case)
    elif case == "band":
        cfg["input_bands"] = (1, 5)
    elif case == "size":
        cfg["size"] = 70
    elif case == "stride":
        cfg["stride"] = 0
    elif case == "too_big":
        cfg["size"] = 160
    elif case == "aoi_outside":
        cfg["aoi"] = str(aoi_files.outside)
    elif case == "fractions":
        cfg["split"] = (0.7, 0.1, 0.1)
    elif case == "min_valid_never_met":
        cfg["min_valid"] = 1.0
        cfg["input_bands"] = None
        inp = pair.input
        import numpy as _np
        from tests.conftest import write_raster

        inp = write_raster(tmp_path / "allholes.tif", _np.full((1, 128, 128), 255, _np.uint8), ORIGIN, UTM31, nodata=255)
    out = tmp_path / "out"
    with pytest.raises(error, match=message) as info:
        export_chips(inp, tgt, out, ExportConfig(**cfg))
    assert isinstance(info.value, Geop2pError)
    assert not out.exists()
