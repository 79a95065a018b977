"""``geop2p predict`` on bad input, the way a user runs it: one line, exit 1 (2 for usage), nothing touched.

Every case runs the command in a subprocess inside a copy of a user's working
folder (``workspace``: input.tif, a model bundle, thesis.docx, a chip folder)
plus the broken files of :func:`_build_extras`, and asserts what the README
promises: exit code 1, exactly one line on stderr (no INFO or WARNING line
before it, no traceback), and no file created, deleted or changed.  Most
cases are refused before torch is even imported, so they take about a second.

The full-disk tests mount a small tmpfs as the output folder (root only; they
skip with the reason otherwise) and check that a disk filling up while the
prediction is written, or while it is converted to a COG, is the same one
line, with no output and no partial file left.  Case numbers refer to the list
for predict in issue 8.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from tests.bad_input.harness import run_geop2p
from tests.conftest import write_raster

UTM31 = CRS.from_epsg(32631)
ORIGIN = Affine(10, 0, 500000, 0, -10, 5000000)


def _build_extras(root: Path, workspace: Path) -> None:
    """Broken or unusual files beside the workspace's own."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 250, (3, 96, 96), dtype=np.uint8)
    full = write_raster(root / "full.tif", rng.integers(0, 250, (3, 256, 256), dtype=np.uint8), ORIGIN, UTM31,
                        tiled=True, blockxsize=64, blockysize=64)
    raw = full.read_bytes()
    (root / "trunc.tif").write_bytes(raw[: int(len(raw) * 0.6)])  # header intact, pixels cut: opens, reads fail
    (root / "cut-header.tif").write_bytes(raw[:200])
    full.unlink()
    write_raster(root / "one-band.tif", x[:1], ORIGIN, UTM31)
    write_raster(root / "wgs.tif", x, Affine(1e-4, 0, 3, 0, -1e-4, 45), CRS.from_epsg(4326))  # 6: warned about
    write_raster(root / "complex.tif", (rng.random((3, 96, 96)) + 1j).astype(np.complex64), ORIGIN, UTM31)
    # 32 rows, 2^20 columns, never written (sparse): tiny on disk, but a window as wide needs terabytes
    with rasterio.open(root / "thin.tif", "w", driver="GTiff", height=32, width=2**20, count=3, dtype="uint8",
                       crs=UTM31, transform=ORIGIN, tiled=True, blockxsize=1024, blockysize=32, sparse_ok=True):
        pass
    model = (workspace / "model.safetensors").read_bytes()
    (root / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch")  # an ONNX protobuf's first bytes
    (root / "model.pt").write_bytes(pickle.dumps({"state_dict": [1.0, 2.0]}))
    (root / "notes.safetensors").write_text("these are not weights")
    (root / "cut.safetensors").write_bytes(model[: len(model) // 2])
    meta = json.dumps({"__metadata__": {"geop2p": "[" * 200_000 + "]" * 200_000}}).encode()  # 400 KB of brackets
    (root / "deep.safetensors").write_bytes(struct.pack("<Q", len(meta)) + meta)
    meta = json.dumps({"__metadata__": {"other": "tool"}}).encode()
    (root / "bare.safetensors").write_bytes(struct.pack("<Q", len(meta)) + meta)
    (root / "preds").mkdir()
    (root / "ro").mkdir()  # a read-only file system is mounted here by the cases that ask for it


@pytest.fixture(scope="module")
def extras_template(workspace_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict-extras")
    _build_extras(root, workspace_template)
    return root


@pytest.fixture
def ws(workspace, extras_template) -> Path:
    """The workspace with the extras copied in."""
    shutil.copytree(extras_template, workspace, symlinks=True, dirs_exist_ok=True)
    return workspace


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A tmpfs of ``size`` mounted at ``path`` (skips the test when this process cannot mount one)."""
    if os.geteuid() != 0:
        pytest.skip("a full-disk or read-only test mounts a small tmpfs, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs at {path}: {res.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


#: siblings of the issue's cases found on the way: slow-marked, so that the default suite stays fast
SIBLING = pytest.mark.slow

P = ["predict", "input.tif", "-m", "model.safetensors"]

CASES = [
    # the model
    pytest.param(["predict", "input.tif", "-m", "nope.safetensors"], 1, "Model file 'nope.safetensors' does not exist",
                 id="model-missing"),
    pytest.param(["predict", "input.tif", "-m", "notes.safetensors"], 1, "is not a safetensors file",
                 id="model-not-a-bundle"),
    pytest.param(["predict", "input.tif", "-m", "model.pt"], 1, "never unpickles", id="model-pickle"),
    pytest.param(["predict", "input.tif", "-m", "deep.safetensors"], 1, "nested deeper than 64 levels",
                 id="5-model-header-400kb-of-brackets"),
    pytest.param(["predict", "input.tif", "-m", "model.onnx"], 1, "is an ONNX model", id="model-onnx"),
    pytest.param(["predict", "input.tif", "-m", "chips"], 1, "is a folder; expected a model file", id="model-folder",
                 marks=SIBLING),
    pytest.param(["predict", "input.tif", "-m", "bare.safetensors"], 1, "not a geop2p model bundle",
                 id="model-safetensors-without-header", marks=SIBLING),
    pytest.param(["predict", "input.tif", "-m", "cut.safetensors"], 1, "'cut.safetensors'",
                 id="model-truncated", marks=SIBLING),
    # the scenes
    pytest.param(["predict", "nope.tif", "-m", "model.safetensors"], 1, "Raster not found: 'nope.tif'",
                 id="scene-missing"),
    pytest.param(["predict", "thesis.docx", "-m", "model.safetensors"], 1, "Cannot read 'thesis.docx' as a raster",
                 id="scene-not-a-raster"),
    pytest.param(["predict", "trunc.tif", "-m", "model.safetensors"], 1, "'trunc.tif' is truncated",
                 id="scene-truncated-pixels"),
    pytest.param(["predict", "cut-header.tif", "-m", "model.safetensors"], 1, "Cannot read 'cut-header.tif'",
                 id="scene-truncated-header", marks=SIBLING),
    pytest.param(["predict", "one-band.tif", "-m", "model.safetensors"], 1,
                 "has 1 band(s) but the model reads band(s) [1, 2, 3]", id="scene-lacks-bands"),
    pytest.param(["predict", "complex.tif", "-m", "model.safetensors"], 1, "take the amplitude (|z|) or dB",
                 id="4-scene-complex"),
    pytest.param(["predict", "chips", "-m", "model.safetensors"], 1, "'chips' is a folder", id="scene-folder",
                 marks=SIBLING),
    pytest.param(["predict", "input.tif", "one-band.tif", "-m", "model.safetensors", "--out-dir", "preds"], 1,
                 "one-band.tif", id="7-second-scene-bad-nothing-written", marks=SIBLING),
    pytest.param(["predict", "wgs.tif", "one-band.tif", "-m", "model.safetensors", "--out-dir", "preds"], 1,
                 "one-band.tif", id="7-no-pixel-size-warning-before-an-error"),
    # the window
    pytest.param([*P, "--window", "200"], 1, "Window size 200 is not a multiple of 32", id="window-not-multiple-of-32"),
    pytest.param([*P, "--window", "65536"], 1, "larger than the largest scene ('input.tif', 96×96 px) needs",
                 id="5-window-65536-larger-than-the-scene"),
    pytest.param(["predict", "thin.tif", "-m", "model.safetensors", "--window", str(2**20)], 1,
                 "of memory for batches", id="5-window-too-large-for-memory"),
    pytest.param([*P, "--window", "0"], 1, "Window size 0 is not a multiple of 32", id="window-0", marks=SIBLING),
    pytest.param([*P, "--overlap", "100"], 1, "--overlap 100 is not a whole number of pixels from 0 to 16",
                 id="overlap-too-large"),
    pytest.param([*P, "--overlap", "-1"], 1, "Overlap must be a non-negative", id="overlap-negative", marks=SIBLING),
    pytest.param([*P, "--batch-size", "0"], 1, "Batch size must be a positive", id="batch-size-0", marks=SIBLING),
    # the outputs
    pytest.param([*P, "-o", "thesis.docx"], 1, "Output 'thesis.docx' already exists", id="output-exists"),
    pytest.param([*P, "-o", "chips"], 1, "Output 'chips' is a folder", id="5-o-names-a-folder"),
    pytest.param([*P, "-o", "chips", "--overwrite"], 1, "Output 'chips' is a folder", id="5-o-names-a-folder-overwrite",
                 marks=SIBLING),
    pytest.param([*P, "--out-dir", "thesis.docx"], 1, "--out-dir 'thesis.docx' is a file", id="5-out-dir-names-a-file"),
    pytest.param([*P, "--out-dir", "thesis.docx/preds"], 1, "'thesis.docx' is a file, not a folder",
                 id="5-out-dir-under-a-file", marks=SIBLING),
    pytest.param([*P, "--out-dir", "ro"], 1, "Read-only file system; choose a folder you can write to",
                 id="5-out-dir-read-only"),
    pytest.param([*P, "--out-dir", "ro/new"], 1, "Read-only file system", id="5-out-dir-read-only-new-folder",
                 marks=SIBLING),
    pytest.param([*P, "-o", "input.tif"], 1, "is the scene itself", id="output-is-the-scene", marks=SIBLING),
    pytest.param(["predict", "input.tif", "one-band.tif", "-m", "model.safetensors", "-o", "x.tif"], 1,
                 "use --out-dir DIR", id="o-with-two-scenes", marks=SIBLING),
    pytest.param([*P, "-o", "x.tif", "--out-dir", "preds"], 1, "not both", id="o-and-out-dir", marks=SIBLING),
    pytest.param(["predict", "input.tif", "input.tif", "-m", "model.safetensors"], 1, "would both be written",
                 id="two-scenes-one-output", marks=SIBLING),
    # the bands
    pytest.param([*P, "--bands", "1,2,9"], 1, "band(s) [9] do not exist", id="bands-out-of-range"),
    pytest.param([*P, "--bands", "1,2"], 1, "--bands lists 2 band(s) [1, 2] but the model takes 3",
                 id="bands-wrong-count", marks=SIBLING),
    pytest.param([*P, "--bands", "0,1,2"], 1, "band(s) [0] do not exist", id="bands-zero", marks=SIBLING),
    # 8. a malformed command line is a usage error (2)
    pytest.param([*P, "--tta", "3"], 2, "Invalid value for '--tta'", id="8-bad-choice"),
    pytest.param([*P, "--window", "abc"], 2, "Invalid value for '--window'", id="8-not-a-number", marks=SIBLING),
    pytest.param(["predict", "input.tif"], 2, "Missing option '-m' / '--model'", id="8-missing-model",
                 marks=SIBLING),
    pytest.param([*P, "--bands", "1,x"], 2, "expected comma-separated integers", id="8-bands-not-integers",
                 marks=SIBLING),
    pytest.param([*P, "--windw", "64"], 2, "No such option", id="8-unknown-option", marks=SIBLING),
]


@pytest.mark.parametrize("args, rc, text", CASES)
def test_bad_input_is_one_line_and_touches_nothing(args, rc, text, ws):
    with contextlib.ExitStack() as stack:
        if any(str(a).startswith("ro") for a in args):
            stack.enter_context(tmpfs(ws / "ro", "64k", read_only=True))
        outcome = run_geop2p(args, ws)
    if rc == 1:
        outcome.assert_clean_refusal(1, text)
    else:  # click's usage message: "Usage: ...", "Try ...", "Error: ..."
        assert outcome.returncode == 2 and text in outcome.stderr, outcome.describe()
        assert "Traceback" not in outcome.stderr
        assert not outcome.created and not outcome.deleted and not outcome.changed, outcome.describe()


# ---------------------------------------------------------------------------------------------- 1. a full disk
@pytest.fixture(scope="module")
def cog_size(workspace_template, tmp_path_factory) -> int:
    """The size of input.tif's prediction as a COG (predicted in this process, outside the workspace)."""
    from geop2p.predict import PredictConfig, predict_scenes

    out = tmp_path_factory.mktemp("measure") / "input_pred.tif"
    predict_scenes([workspace_template / "input.tif"], workspace_template / "model.safetensors", out=out,
                   config=PredictConfig(cog=True, device="cpu"))
    return out.stat().st_size


@pytest.mark.parametrize("where", ["writing", "cog-conversion"])
def test_full_disk_is_one_line_and_leaves_nothing(ws, cog_size, where):
    """1: the disk fills up while the GeoTIFF is written (or while it is converted to a COG)."""
    size = cog_size
    # writing: not even the tiled file fits; cog-conversion: the tiled file fits, the COG beside it does not
    pages = max(1, size // 2 // 4096) if where == "writing" else -(-size * 3 // 2 // 4096)
    with tmpfs(ws / "disk", f"{pages * 4}k") as disk:
        outcome = run_geop2p([*P, "--out-dir", "disk/preds/new", "--cog"], ws)
        left = sorted(p.name for p in disk.rglob("*"))
    outcome.assert_clean_refusal(1, "No space left on device while writing 'disk/preds/new/input_pred.tif'")
    assert "_tiffWriteProc" not in outcome.stderr
    assert left == [], f"left on the full disk: {left}"
