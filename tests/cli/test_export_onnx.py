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
    assert "Regressor" in result.output and "overlap 25 % (16 px)" in result.output and "resolution 30 m" in result.output
    # the float target travels as 16-bit codes: the decoding expressions, nodata and stacking are printed
    assert '"red_hi@1" * 256 + "red_lo@1"' in result.output and "Code 0 (hi = lo = 0) is nodata" in result.output
    assert '"Load default parameters"' in result.output and "Place each input file into a separate band" in result.output


def test_encoding_and_input_nodata_options(tiny_unet_bundle, tmp_path):
    out = tmp_path / "byte.onnx"
    result = _run(tiny_unet_bundle, "-o", out, "--deepness-encoding", "byte", "--input-nodata", "-9999,0")
    assert result.exit_code == 0, result.output
    assert "3 output(s) (byte: red, green, blue)" in result.output and "graph: -9999, 0" in result.output
    assert '"red@1" / ("red@1" != -9999)' not in result.output  # -9999 is no byte: invalid pixels keep values
    result = _run(tiny_unet_bundle, "-o", tmp_path / "f.onnx", "--deepness-encoding", "float")
    assert result.exit_code == 0 and "for ONNX runtimes other than Deepness" in result.output


def test_output_folder_is_one_line_rc_1(tiny_unet_bundle, tmp_path):
    """The README promises exit code 1 for a problem with the input; a folder as -o is one."""
    result = _run(tiny_unet_bundle, "-o", tmp_path)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: Output '{tmp_path}' is a folder; give the .onnx file to write, e.g. {tmp_path / 'model.onnx'}."]


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


def test_model_folder_is_rc_1(tmp_path):
    result = _run(tmp_path, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "is a folder" in result.output and "Traceback" not in result.output


def test_bad_tile_size(tiny_unet_bundle, tmp_path):
    result = _run(tiny_unet_bundle, "-o", tmp_path / "m.onnx", "--tile-size", "100")
    assert result.exit_code == 1
    assert "multiple of 8" in result.output
    assert len(result.output.strip().splitlines()) == 1
