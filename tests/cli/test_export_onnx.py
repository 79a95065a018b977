"""``geop2p export-onnx`` through click's CliRunner."""

from __future__ import annotations

import pickle

import pytest
from click.testing import CliRunner

from geop2p.cli import cli

import onnxruntime  # noqa: E402,F401  (a dev dependency: a missing one must fail, not skip)


def _run(*args):
    return CliRunner().invoke(cli, ["export-onnx", *map(str, args)])


def test_export_onnx_writes_model(tiny_unet_bundle, tmp_path):
    out = tmp_path / "model.onnx"
    result = _run(tiny_unet_bundle, "-o", out, "--resolution", "30", "--overlap", "16")
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "Regressor" in result.output and "overlap 25 %" in result.output and "resolution 30 m" in result.output


def test_missing_model(tmp_path):
    result = _run(tmp_path / "nope.safetensors", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert "nope.safetensors" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_pickle_is_refused(tmp_path):
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    result = _run(evil, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert "pickle" in result.output.lower()
    assert not (tmp_path / "m.onnx").exists()


def test_output_exists(tiny_unet_bundle, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("x")
    result = _run(tiny_unet_bundle, "-o", out)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--overwrite" in result.output
    assert out.read_text() == "x"


def test_bad_tile_size(tiny_unet_bundle, tmp_path):
    result = _run(tiny_unet_bundle, "-o", tmp_path / "m.onnx", "--tile-size", "100")
    assert result.exit_code == 1
    assert "multiple of 8" in result.output
    assert len(result.output.strip().splitlines()) == 1
