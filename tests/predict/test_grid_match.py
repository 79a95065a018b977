"""6: a scene whose pixel size or CRS differs from the model's training grid gets one warning line; equal grids none."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from geop2p.formats import BandSide
from geop2p.grid import GeoGrid
from geop2p.io.read import RasterInfo
from geop2p.normalize import Normalizer
from geop2p.predict import predict_scenes
from geop2p.predict.grid_match import grid_warning
from tests.conftest import write_raster

UTM31, WGS84 = CRS.from_epsg(32631), CRS.from_epsg(4326)


def _side(pixel_size=(10.0, 10.0), crs="EPSG:32631", n=2) -> BandSide:
    return BandSide(tuple(f"b{i}" for i in range(n)), "float32", None, Normalizer.identity(n),
                    pixel_size=pixel_size, crs=crs)


def _info(transform, crs, shape=(100, 100), **kw) -> RasterInfo:
    return RasterInfo("s.tif", GeoGrid(*shape, transform, crs), 2, ("float32",) * 2, None, (None, None), False, **kw)


def test_grid_warning_fires_for_a_4326_scene_and_a_model_trained_at_10_m_in_utm():
    wgs = _info(Affine(1e-4, 0, 3.0, 0, -1e-4, 45.0), WGS84)
    text = grid_warning(wgs, _side())
    assert text is not None and "\n" not in text
    assert "0.0001 × 0.0001 degree (EPSG:4326; about 7.87" in text
    assert "10 × 10 metre pixels (EPSG:32631)" in text and "other units (degree against metre)" in text
    assert "gdalwarp -t_srs EPSG:32631 -tr 10 10" in text


def test_grid_warning_is_silent_for_equal_grids_and_within_1_5x():
    assert grid_warning(_info(Affine(10, 0, 5e5, 0, -10, 5e6), UTM31), _side()) is None
    assert grid_warning(_info(Affine(14, 0, 5e5, 0, -14, 5e6), UTM31), _side()) is None  # 1.4×
    assert grid_warning(_info(Affine(10, 0, 5e5, 0, -10, 5e6), CRS.from_epsg(32632)), _side()) is None  # other zone


def test_grid_warning_compares_in_metres_across_crs_and_names_the_ratio():
    coarse = grid_warning(_info(Affine(20, 0, 5e5, 0, -20, 5e6), UTM31), _side())
    assert coarse is not None and "2.0× apart" in coarse
    # a model trained in degrees (about 11 m at 45°N), a scene at 30 m in UTM: 2.7× apart and other units
    deg = grid_warning(_info(Affine(30, 0, 5e5, 0, -30, 5e6), UTM31), _side((1e-4, 1e-4), "EPSG:4326"))
    assert deg is not None and "other units (metre against degree)" in deg and "apart" in deg
    # US survey feet against metres: other units even where the sizes are close
    feet = CRS.from_epsg(2263)  # NAD83 / New York Long Island (ftUS)
    assert "other units" in grid_warning(_info(Affine(33, 0, 1e6, 0, -33, 2e5), feet), _side())


def test_grid_warning_needs_something_to_compare():
    utm = _info(Affine(20, 0, 5e5, 0, -20, 5e6), UTM31)
    assert grid_warning(utm, _side(pixel_size=None)) is None, "the bundle records no pixel size"
    assert grid_warning(utm, _side(crs=None)) is None, "one side in pixel space"
    assert grid_warning(_info(Affine.identity(), None), _side()) is None, "the scene is not georeferenced"
    assert grid_warning(utm, _side(crs="not a crs")) is None


def test_grid_warning_uses_the_gcps_of_a_scene_placed_by_gcps():
    from rasterio.control import GroundControlPoint

    gcps = (GroundControlPoint(0, 0, 5e5, 5e6), GroundControlPoint(0, 100, 5e5 + 2000, 5e6),
            GroundControlPoint(100, 0, 5e5, 5e6 - 2000))
    info = _info(Affine.identity(), None, gcps=gcps, gcp_crs=UTM31)
    assert info.georeferencing == "gcps"
    assert "2.0× apart" in grid_warning(info, _side())


def test_predict_scenes_warns_once_per_mismatched_scene_after_every_check(make_translator, tmp_path, rng, caplog):
    x = rng.uniform(-9, 9, (2, 40, 40)).astype(np.float32)
    utm = write_raster(tmp_path / "utm.tif", x, Affine(10, 0, 5e5, 0, -10, 5e6), UTM31)
    wgs = write_raster(tmp_path / "wgs.tif", x, Affine(1e-4, 0, 3, 0, -1e-4, 45), WGS84)
    from tests.fixtures.predict import identity_meta

    meta = identity_meta(2)
    meta["input"].update(pixel_size=[10.0, 10.0], crs="EPSG:32631")
    t = make_translator(meta=meta)
    with caplog.at_level(logging.WARNING, logger="geop2p"):
        predict_scenes([utm, wgs], t, out_dir=tmp_path / "preds")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"Scene '{wgs}' has pixels of 0.0001")
    caplog.clear()
    bad = write_raster(tmp_path / "one.tif", x[:1], Affine(1e-4, 0, 3, 0, -1e-4, 45), WGS84)
    with caplog.at_level(logging.DEBUG, logger="geop2p"), pytest.raises(Exception, match="has 1 band"):
        predict_scenes([wgs, bad], t, out_dir=tmp_path / "more")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO], "nothing is logged before an error"
    assert not (tmp_path / "more").exists()


def test_the_cli_prints_one_warning_line_for_the_mismatched_scene_only(tmp_path, rng):
    """6, end to end: a 4326 scene with a model trained at 10 m in UTM warns (one line); the UTM scene does not."""
    from geop2p.models.bundle import save_bundle
    from tests.fixtures.predict import identity_generator, identity_meta

    meta = identity_meta(2)
    meta["input"].update(pixel_size=[10.0, 10.0], crs="EPSG:32631")
    save_bundle(tmp_path / "model.safetensors", identity_generator(2), meta)
    x = rng.uniform(-9, 9, (2, 40, 40)).astype(np.float32)
    write_raster(tmp_path / "utm.tif", x, Affine(10, 0, 5e5, 0, -10, 5e6), UTM31)
    write_raster(tmp_path / "wgs.tif", x, Affine(1e-4, 0, 3, 0, -1e-4, 45), WGS84)
    res = subprocess.run([sys.executable, "-m", "geop2p", "predict", "utm.tif", "wgs.tif", "-m", "model.safetensors",
                          "--out-dir", "preds"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("WARNING: Scene 'wgs.tif' has pixels of 0.0001 × 0.0001 degree")
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == ["utm_pred.tif", "wgs_pred.tif"]
