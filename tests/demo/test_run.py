"""The embedded demo, end to end in quick mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from geop2p.demo import DEMO_OUTPUTS, DemoConfig, run_demo, write_preview
from geop2p.errors import OutputExistsError
from geop2p.demo.scene import write_demo_scene


def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    lines = []
    result = run_demo(out, quick=True, progress=lines.append)
    stages = [line.split("]")[0] for line in lines if line.startswith("[")]
    assert stages == [f"[{i}/6" for i in range(1, 7)]
    assert any("step" in line and "img/s" in line for line in lines)  # training reports its progress
    for name in DEMO_OUTPUTS:
        assert (out / name).exists(), name
    # the prediction lies exactly on the input DEM's grid, with the target's bands and dtype
    with rasterio.open(result.dem_path) as dem, rasterio.open(result.prediction_path) as pred:
        assert (pred.crs, pred.transform, pred.width, pred.height) == (dem.crs, dem.transform, dem.width, dem.height)
        assert pred.count == 3 and pred.dtypes[0] == "uint8"
    with open(result.preview_path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(result.metrics_path.read_text())
    text = json.dumps(doc["evaluation"]).lower()
    assert "baseline" in text and "mae" in text
    assert set(doc["timings_s"]) == {"scene", "export", "train", "predict", "evaluate", "preview"}
    assert "baseline" in result.summary().lower() and str(result.preview_path) in result.summary()


def test_existing_outputs_are_refused_then_replaced_alone(tmp_path):
    out = tmp_path / "demo"
    (out / "scene").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_demo(out, quick=True)
    assert (out / "scene").is_dir()


def test_out_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        run_demo(f, quick=True)


def test_preview_outlines_test_chips(tmp_path):
    """The preview draws the three panels and the test outline from index.gpkg rows with split == test."""
    import geopandas as gpd
    from PIL import Image
    from shapely.geometry import box

    dem, rgb = write_demo_scene(tmp_path / "scene", size=96, seed=0)
    with rasterio.open(dem) as src:
        left, _, _, top = src.bounds
        crs = src.crs
    # one test chip in the lower-left quarter (rows 48..96, cols 0..48), one train chip elsewhere
    index = gpd.GeoDataFrame(
        {"chip_id": ["a", "b"], "split": ["test", "train"]},
        geometry=[box(left, top - 96 * 30, left + 48 * 30, top - 48 * 30), box(left, top - 48 * 30, left + 48 * 30, top)],
        crs=crs,
    )
    index.to_file(tmp_path / "index.gpkg", layer="chips", driver="GPKG")
    with_outline = write_preview(tmp_path / "a.png", dem, rgb, rgb, tmp_path / "index.gpkg")
    without = write_preview(tmp_path / "b.png", dem, rgb, rgb, None)
    a = np.asarray(Image.open(with_outline).convert("RGB")).astype(int)
    b = np.asarray(Image.open(without).convert("RGB")).astype(int)
    assert a.shape == b.shape and a.shape[1] > 2 * a.shape[0]  # three panels side by side
    yellow = (a[..., 0] > 200) & (a[..., 1] > 200) & (a[..., 2] < 80)
    assert yellow.sum() > 100 and ((b[..., 0] > 200) & (b[..., 1] > 200) & (b[..., 2] < 80)).sum() < yellow.sum() / 10


def test_quick_config_is_smaller():
    q, full = DemoConfig.quick(), DemoConfig()
    assert q.size < full.size and q.max_steps < full.max_steps and q.chip_size <= full.chip_size
