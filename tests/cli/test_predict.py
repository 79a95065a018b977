"""``geop2p predict`` through click's CliRunner: the happy path and every bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geop2p.cli import cli

ATOL = 1e-3


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def _pred_files(folder):
    return sorted(p.name for p in folder.rglob("*") if "pred" in p.name)


def test_predict_default_output_beside_scene(identity_bundle, scene):
    src = scene(150, 97)
    result = _run("predict", src, "--model", identity_bundle, "--overlap", "32", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    dst = src.with_name("scene_pred.tif")
    assert result.output.strip() == str(dst)
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert (b.crs, b.transform, b.width, b.height) == (a.crs, a.transform, a.width, a.height)
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)
        assert b.tags()["GEOP2P_OVERLAP"] == "32"


def test_predict_several_scenes_into_out_dir_with_cog_and_tta(identity_bundle, scene, tmp_path):
    scenes = [scene(40, 70, name="a.tif"), scene(70, 40, name="b.tif")]
    out_dir = tmp_path / "preds"
    result = _run("predict", *scenes, "--model", identity_bundle, "--out-dir", out_dir, "--cog", "--tta", "4")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_pred.tif", "b_pred.tif"]
    with rasterio.open(out_dir / "b_pred.tif") as b, rasterio.open(scenes[1]) as a:
        assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)


def test_bands_override(identity_bundle, scene, rng, tmp_path):
    data = rng.uniform(-900, 900, size=(3, 40, 40)).astype(np.float32)
    src = scene(data=data, name="three.tif")
    out = tmp_path / "o.tif"
    result = _run("predict", src, "--model", identity_bundle, "-o", out, "--bands", "3,1")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as b:
        np.testing.assert_allclose(b.read(), data[[2, 0]], atol=ATOL)


def test_model_missing(scene, tmp_path):
    src = scene(40, 40)
    result = _run("predict", src, "--model", tmp_path / "nope.safetensors")
    assert result.exit_code != 0
    assert "nope.safetensors" in _error_line(result)
    assert _pred_files(tmp_path) == []


def test_model_not_a_bundle(scene, tmp_path):
    src = scene(40, 40)
    bogus = tmp_path / "model.safetensors"
    bogus.write_text("this is not a model")
    result = _run("predict", src, "--model", bogus)
    assert result.exit_code != 0
    assert "model.safetensors" in _error_line(result)
    assert _pred_files(tmp_path) == []


def test_model_pickle_is_refused_and_never_loaded(scene, tmp_path):
    src = scene(40, 40)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pkl = tmp_path / "model.pt"
    pkl.write_bytes(pickle.dumps({"state_dict": Evil()}))
    result = _run("predict", src, "--model", pkl)
    assert result.exit_code != 0
    line = _error_line(result)
    assert "model.pt" in line
    assert not marker.exists(), "the pickle was never unpickled"
    assert _pred_files(tmp_path) == []


def test_scene_lacks_bands(identity_bundle, scene, tmp_path):
    src = scene(40, 40, bands=1)
    result = _run("predict", src, "--model", identity_bundle)
    assert result.exit_code != 0
    assert "has 1 band(s) but the model reads band(s) [1, 2]" in _error_line(result)
    assert _pred_files(tmp_path) == []


def test_bands_override_out_of_range(identity_bundle, scene, tmp_path):
    src = scene(40, 40)
    result = _run("predict", src, "--model", identity_bundle, "--bands", "1,5")
    assert result.exit_code != 0
    assert "band(s) [5] do not exist" in _error_line(result)
    assert _pred_files(tmp_path) == []


@pytest.mark.parametrize("window, nearest", [("200", "192"), ("10", "32")])
def test_window_not_multiple_of_32(identity_bundle, scene, tmp_path, window, nearest):
    src = scene(40, 40)
    result = _run("predict", src, "--model", identity_bundle, "--window", window)
    assert result.exit_code != 0
    line = _error_line(result)
    assert f"Window size {window} is not a multiple of 32" in line and f"use --window {nearest}" in line
    assert _pred_files(tmp_path) == []


def test_output_exists_without_overwrite(identity_bundle, scene, tmp_path):
    src = scene(40, 40)
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    result = _run("predict", src, "--model", identity_bundle, "-o", out)
    assert result.exit_code != 0
    assert "--overwrite" in _error_line(result)
    assert out.read_bytes() == b"precious"
    result = _run("predict", src, "--model", identity_bundle, "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as b:
        assert b.count == 2


def test_one_existing_output_among_several_blocks_all(identity_bundle, scene, tmp_path):
    scenes = [scene(40, 40, name="a.tif"), scene(40, 40, name="b.tif")]
    (tmp_path / "b_pred.tif").write_bytes(b"x")
    result = _run("predict", *scenes, "--model", identity_bundle)
    assert result.exit_code != 0
    assert "b_pred.tif" in _error_line(result)
    assert not (tmp_path / "a_pred.tif").exists(), "nothing written before all checks passed"


def test_unreadable_scene(identity_bundle, scene, tmp_path):
    good = scene(40, 40, name="good.tif")
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    result = _run("predict", good, bad, "--model", identity_bundle)
    assert result.exit_code != 0
    assert "broken.tif" in _error_line(result)
    assert _pred_files(tmp_path) == []


def test_missing_scene(identity_bundle, tmp_path):
    result = _run("predict", tmp_path / "ghost.tif", "--model", identity_bundle)
    assert result.exit_code != 0
    assert "ghost.tif" in _error_line(result)


def test_out_with_several_scenes(identity_bundle, scene, tmp_path):
    scenes = [scene(40, 40, name="a.tif"), scene(40, 40, name="b.tif")]
    result = _run("predict", *scenes, "--model", identity_bundle, "-o", tmp_path / "o.tif")
    assert result.exit_code != 0
    assert "--out-dir" in _error_line(result)
    assert _pred_files(tmp_path) == []
