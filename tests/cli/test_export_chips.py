"""``geop2p export-chips`` through click's CliRunner: exit codes, one-line errors, no output left on failure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from geop2p.cli import cli

SMALL = ["--size", "32", "--block-size", "64", "--buffer", "0", "--min-valid", "0.5", "--no-progress"]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_export_and_info(pair, tmp_path):
    out = tmp_path / "chips"
    r = _run("export-chips", pair.input, pair.target, out, *SMALL)
    assert r.exit_code == 0, r.output
    assert "16 chips" in r.output
    m = json.loads((out / "geop2p-chips.json").read_text())
    assert m["chip_spec"]["size"] == 32
    r = _run("export-chips", pair.input, pair.target, out, *SMALL)
    assert r.exit_code == 1 and "already exists" in r.output and "--overwrite" in r.output
    r = _run("export-chips", pair.input, pair.target, out, *SMALL, "--overwrite", "--progress")
    assert r.exit_code == 0, r.output


def test_band_split_and_random_split_warns(stack4, tmp_path, caplog):
    out = tmp_path / "chips"
    r = _run("export-chips", stack4, stack4, out, *SMALL, "--input-bands", "4", "--target-bands", "1,2,3", "--split", "random")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "geop2p-chips.json").read_text())
    assert m["split"]["mode"] == "random" and m["input"]["bands"] == [4]


def test_config_file_and_flags_override(pair, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("size: 64\nmin_valid: 0.5\nbuffer: 0\nblock_size: 64\n")
    out = tmp_path / "chips"
    r = _run("export-chips", pair.input, pair.target, out, "--config", cfg, "--size", "32", "--no-progress")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "geop2p-chips.json").read_text())
    assert m["chip_spec"] == {"size": 32, "stride": 32, "min_valid": 0.5}
    bad = tmp_path / "bad.yaml"
    bad.write_text("sise: 64\n")
    r = _run("export-chips", pair.input, pair.target, tmp_path / "x", "--config", bad)
    assert r.exit_code == 1 and "valid export options" in r.output and not (tmp_path / "x").exists()


def test_dry_run_writes_nothing(pair, tmp_path):
    r = _run("export-chips", pair.input, pair.target, tmp_path / "chips", *SMALL, "--dry-run")
    assert r.exit_code == 0 and "16 chips of 32 px planned" in r.output
    assert not (tmp_path / "chips").exists()


_NO_TORCH = """
import sys
from geop2p.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="geop2p")
except SystemExit as exc:
    assert not exc.code, exc.code
print("torch imported:", "torch" in sys.modules)
"""


def test_dry_run_and_export_do_not_import_torch(pair, tmp_path):
    base = [sys.executable, "-c", _NO_TORCH, "export-chips", str(pair.input), str(pair.target)]
    dry = subprocess.run([*base, str(tmp_path / "dry"), *SMALL, "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "16 chips of 32 px planned" in dry.stdout and "torch imported: False" in dry.stdout
    assert not (tmp_path / "dry").exists()
    run = subprocess.run([*base, str(tmp_path / "chips"), *SMALL], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "16 chips" in run.stdout and "torch imported: False" in run.stdout
    import_only = subprocess.run([sys.executable, "-c", "import sys, geop2p.export; print('torch' in sys.modules)"],
                                 capture_output=True, text=True)
    assert import_only.returncode == 0 and import_only.stdout.strip() == "False", import_only.stderr


@pytest.mark.parametrize(
    "extra, target, message",
    [
        ([], "missing", "Raster not found"),
        ([], "text", "Cannot read"),
        ([], "truncated", "truncated or corrupt"),
        (["--target-bands", "2"], None, "Band 2 does not exist in the target raster"),
        (["--size", "100"], None, "not a multiple of 32"),
        (["--stride", "0"], None, "Stride must be a positive"),
        (["--stride", "-5"], None, "Stride must be a positive"),
        (["--size", "256"], None, "do not fit in the overlap of input and target"),
        (["--aoi", "OUTSIDE"], None, "does not overlap the rasters"),
        (["--split", "0.5,0.2,0.2"], None, "add up to 0.9"),
        (["--resampling", "linear"], None, "valid names: nearest, bilinear"),
        (["--split", "abc"], None, "expected comma-separated numbers"),
    ],
)
def test_bad_input_one_line_no_output(extra, target, message, pair, bad_files, aoi_files, tmp_path):
    tgt = getattr(bad_files, target) if target else pair.target
    extra = [str(aoi_files.outside) if e == "OUTSIDE" else e for e in extra]
    out = tmp_path / "out"
    args = ["export-chips", pair.input, tgt, out, "--size", "32", "--no-progress", *extra]
    if "--size" in extra:
        args = ["export-chips", pair.input, tgt, out, "--no-progress", *extra]
    r = _run(*args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    if r.exit_code == 1:
        assert len([line for line in r.output.splitlines() if line.startswith("Error:")]) == 1
    assert not out.exists()


def test_out_dir_naming_a_file_is_exit_1(pair, tmp_path):
    """issue 8, case 10: click's file_okay=False made this a usage error (2); it is an input error (1)."""
    (tmp_path / "thesis.docx").write_text("mine")
    r = _run("export-chips", pair.input, pair.target, tmp_path / "thesis.docx", *SMALL)
    assert r.exit_code == 1 and "is a file; expected a folder name" in r.output
    assert (tmp_path / "thesis.docx").read_text() == "mine"


def test_dry_run_checks_the_output_folder(pair, tmp_path):
    out = tmp_path / "chips"
    assert _run("export-chips", pair.input, pair.target, out, *SMALL).exit_code == 0
    r = _run("export-chips", pair.input, pair.target, out, *SMALL, "--dry-run")
    assert r.exit_code == 1 and "already exists" in r.output
    (out / "notes.txt").write_text("mine")
    r = _run("export-chips", pair.input, pair.target, out, *SMALL, "--dry-run", "--overwrite")
    assert r.exit_code == 1 and "notes.txt" in r.output and (out / "notes.txt").exists()
    r = _run("export-chips", pair.input, pair.target, out, *SMALL, "--dry-run", "--resume")
    assert r.exit_code == 0 and "16 chips of 32 px planned" in r.output
