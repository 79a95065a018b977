"""``geop2p info``: chip folders, rasters, bundles, JSON output and errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from geop2p.cli import cli
from geop2p.export import ExportConfig, export_chips


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_info_chip_folder(pair, tmp_path):
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(size=32, block_size=64, buffer=0, min_valid=0.5))
    r = _run("info", out)
    assert r.exit_code == 0, r.output
    assert "chips: 16 (train" in r.output and "EPSG:32631" in r.output and "elevation" in r.output
    assert "uint8" in r.output and "float32" in r.output and "p98=" in r.output
    r = _run("info", out, "--json")
    d = json.loads(r.output)
    assert d["kind"] == "chips" and sum(d["counts"].values()) == 16
    assert d["files_on_disk"] == {"input": 16, "target": 16}
    assert d["stats"]["target"]["bands"][0]["name"] == "elevation"


def test_info_raster(pair):
    r = _run("info", pair.input, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kind"] == "raster" and d["crs"] == "EPSG:32631"
    assert (d["width"], d["height"], d["count"]) == (128, 128, 3)
    assert d["nodata"] == 255 and d["descriptions"] == ["red", "green", "blue"]
    assert d["bounds"] == [500000.0, 4998720.0, 501280.0, 5000000.0]
    r = _run("info", pair.input)
    assert "128 × 128 px, 3 band(s)" in r.output and "nodata: 255" in r.output


def test_info_errors(tmp_path, bad_files):
    r = _run("info", bad_files.missing)
    assert r.exit_code == 1 and "not found" in r.output
    r = _run("info", bad_files.text)
    assert r.exit_code == 1 and "Cannot read" in r.output
    r = _run("info", tmp_path)
    assert r.exit_code == 1 and "not a geop2p chip folder" in r.output
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "export-config.yaml").write_text("size: 32\n")
    r = _run("info", unfinished)
    assert r.exit_code == 1 and "--resume" in r.output


def test_info_of_a_raster_whose_pixels_are_cut_off(bad_files):
    """issue 8, case 12: the header alone read fine, so a truncated raster was described as if whole."""
    r = _run("info", bad_files.truncated)
    assert r.exit_code == 1 and "truncated or corrupt" in r.output and "Traceback" not in r.output


def test_info_bundle(tmp_path):
    from safetensors.numpy import save_file
    import numpy as np

    header = {"format": "geop2p-model", "format_version": 1, "geop2p_version": "0.1.0",
              "generator": {"architecture": "linear", "in_channels": 1, "out_channels": 1, "params": {}},
              "input": {"bands": [1], "band_names": ["a"], "dtype": "uint8", "nodata": None,
                        "normalizer": {"method": "identity", "offset": [0.0], "scale": [1.0], "clip": False}},
              "target": {"band_names": ["b"], "dtype": "float32", "nodata": None,
                         "normalizer": {"method": "identity", "offset": [0.0], "scale": [1.0], "clip": False}},
              "chip_size": 32, "recommended_overlap": 8, "training": {}}
    path = tmp_path / "m.safetensors"
    save_file({"conv.weight": np.ones((1, 1, 1, 1), np.float32), "conv.bias": np.zeros(1, np.float32)}, str(path),
              metadata={"geop2p": json.dumps(header)})
    r = _run("info", path)
    assert r.exit_code == 0, r.output
    assert "model bundle" in r.output and "chip size 32" in r.output
