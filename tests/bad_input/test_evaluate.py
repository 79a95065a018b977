"""``geop2p evaluate`` on bad input, the way a user runs it: one line, exit 1 (2 for usage), nothing touched.

Each case runs the command in a subprocess inside a copy of a user's working
folder (``workspace``: a linear 3 → 1 bundle ``model.safetensors``, a chip
folder of 32 px chips, thesis.docx) plus the broken files of
:func:`_build_extras`, and asserts exit code 1, exactly one line on stderr (no
note before it, no traceback) and no file created, deleted or changed.  The
``--json`` report is checked before anything is scored (a folder, an input, a
path under a file); a read-only file system is the one line of the write.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import pytest

from geop2p.io.chip_folder import read_chip_ids
from tests.bad_input.harness import run_geop2p
from tests.fixtures.train import write_chip_folder
from tests.train.tmpfs import tmpfs

SIBLING = pytest.mark.slow


def _build_extras(root: Path, workspace: Path) -> None:
    """Broken model files and chip folders beside the workspace's own."""
    (root / "model.pt").write_bytes(pickle.dumps({"state_dict": [1.0, 2.0]}))
    (root / "notes.safetensors").write_text("these are not weights")
    meta = json.dumps({"__metadata__": {"geop2p": "[" * 200_000 + "]" * 200_000}}).encode()  # 400 KB of brackets
    (root / "deep.safetensors").write_bytes(struct.pack("<Q", len(meta)) + meta)
    meta = json.dumps({"__metadata__": {"other": "tool"}}).encode()
    (root / "bare.safetensors").write_bytes(struct.pack("<Q", len(meta)) + meta)
    ids = [f"{r * 32:06d}_{c * 32:06d}" for r in range(2) for c in range(2)]
    write_chip_folder(root / "trainonly", rows=2, cols=2, size=32, splits={i: "train" for i in ids})
    write_chip_folder(root / "twoband", rows=2, cols=3, size=32, n_input_bands=2)
    shutil.copytree(workspace / "chips", root / "cut")
    chip = root / "cut" / "input" / f"{read_chip_ids(root / 'cut', 'test')[0]}.tif"
    chip.write_bytes(chip.read_bytes()[:300])
    (root / "reports").mkdir()


@pytest.fixture(scope="module")
def extras_template(workspace_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate-extras")
    _build_extras(root, workspace_template)
    return root


@pytest.fixture
def ws(workspace, extras_template) -> Path:
    shutil.copytree(extras_template, workspace, symlinks=True, dirs_exist_ok=True)
    return workspace


E = ["evaluate", "model.safetensors", "chips", "--device", "cpu"]

CASES = [
    # the model
    pytest.param(["evaluate", "nope.safetensors", "chips"], 1, "Model file 'nope.safetensors' does not exist",
                 id="model-missing"),
    pytest.param(["evaluate", "model.pt", "chips"], 1, "never unpickles", id="model-pickle"),
    pytest.param(["evaluate", "notes.safetensors", "chips"], 1, "is not a safetensors file", id="model-not-a-bundle"),
    pytest.param(["evaluate", "deep.safetensors", "chips"], 1, "nested deeper than 64 levels",
                 id="model-header-400kb-of-brackets"),
    pytest.param(["evaluate", "bare.safetensors", "chips"], 1, "not a geop2p model bundle",
                 id="model-safetensors-without-header", marks=SIBLING),
    pytest.param(["evaluate", "chips", "chips"], 1, "is a folder; expected a model file", id="model-folder",
                 marks=SIBLING),
    # the chips
    pytest.param(["evaluate", "model.safetensors", "nothere"], 1, "Dataset folder 'nothere' does not exist",
                 id="chips-missing"),
    pytest.param(["evaluate", "model.safetensors", "reports"], 1, "is not a dataset geop2p can read",
                 id="chips-not-a-dataset", marks=SIBLING),
    pytest.param(["evaluate", "model.safetensors", "trainonly"], 1, "The test split of 'trainonly' is empty",
                 id="split-empty"),
    pytest.param(["evaluate", "model.safetensors", "twoband"], 1,
                 "The model expects 3 input band(s) (red, green, blue) but the chips in 'twoband' have 2",
                 id="band-mismatch"),
    pytest.param(["evaluate", "model.safetensors", "cut"], 1, "as a raster", id="chip-truncated", marks=SIBLING),
    # several folders, --format and the format options (issue 10)
    pytest.param(["evaluate", "model.safetensors", "chips", "twoband"], 1,
                 "'twoband' has 2 input band(s) (red, green); expected 3 (red, green, blue) like 'chips'",
                 id="10-folders-that-disagree-in-bands"),
    pytest.param([*E, "--direction", "BtoA"], 1, "Option 'direction' applies to pix2pix-aligned folders only",
                 id="10-an-option-no-format-takes"),
    pytest.param(["evaluate", "model.safetensors", "chips", "nothere"], 1, "Dataset folder 'nothere' does not exist",
                 id="10-a-missing-folder-among-several"),
    pytest.param(["evaluate", "model.safetensors", "twoband", "chips", "--json", "chips/r.json", "--overwrite"], 1,
                 "is inside 'chips', an input", id="10-json-inside-the-second-folder"),
    pytest.param([*E, "--crop-size", "0"], 1, "crop_size: must be a whole number of pixels of at least 1",
                 id="10-crop-size-0", marks=SIBLING),
    pytest.param([*E, "--format", "paired-folders"], 1, "'chips' is not paired folders",
                 id="10-format-forced-on-another-layout", marks=SIBLING),
    pytest.param([*E, "--format", "tiles"], 2, "'tiles' is not one of", id="10-usage-format", marks=SIBLING),
    pytest.param(["evaluate", "model.safetensors"], 2, "Missing argument 'DATASET...'", id="10-usage-no-dataset",
                 marks=SIBLING),
    # the report
    pytest.param([*E, "--json", "reports"], 1, "--json 'reports' is a folder; give a file name",
                 id="json-is-a-folder"),
    pytest.param([*E, "--json", "reports", "--overwrite"], 1, "is a folder", id="json-is-a-folder-overwrite",
                 marks=SIBLING),
    pytest.param([*E, "--json", "model.safetensors", "--overwrite"], 1, "is an input of this command",
                 id="json-is-the-model"),
    pytest.param([*E, "--json", "chips/geop2p-chips.json", "--overwrite"], 1, "is inside 'chips', an input",
                 id="json-inside-the-chips", marks=SIBLING),
    pytest.param([*E, "--json", "thesis.docx/report.json"], 1, "'thesis.docx' is a file, not a folder",
                 id="json-under-a-file", marks=SIBLING),
    pytest.param([*E, "--json", "thesis.docx"], 1, "already exists", id="json-exists", marks=SIBLING),
    # options
    pytest.param([*E, "--batch-size", "0"], 1, "batch_size must be at least 1", id="batch-size-0", marks=SIBLING),
    pytest.param([*E, "--split", "holdout"], 2, "'holdout' is not one of", id="usage-split", marks=SIBLING),
]


def _assert_refused(outcome, returncode: int, text: str) -> None:
    """rc 1: the one line; rc 2 is click's usage message (Usage, Try, Error lines), with nothing touched either."""
    if returncode == 1:
        outcome.assert_clean_refusal(1, contains=text)
        return
    assert outcome.returncode == 2 and text in outcome.stderr and "Traceback" not in outcome.stderr, outcome.describe()
    assert not outcome.created and not outcome.deleted and not outcome.changed, outcome.describe()


@pytest.mark.parametrize("args, returncode, text", CASES)
def test_bad_input_is_one_line_and_touches_nothing(ws, args, returncode, text):
    _assert_refused(run_geop2p(args, ws), returncode, text)


def test_json_on_a_read_only_file_system_is_one_line(ws):
    with tmpfs(ws / "ro", "1m", read_only=True):
        out = run_geop2p([*E, "--json", "ro/report.json"], ws)
        out.assert_clean_refusal(1, contains="Cannot write 'ro/report.json': Read-only file system; choose a folder")
