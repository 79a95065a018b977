"""``geop2p info`` on bad paths: one line, exit 1, nothing touched (issue 8, case 12 of export-chips/info)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.bad_input.harness import run_geop2p
from tests.conftest import write_raster


def _build_extras(root: Path, workspace: Path) -> None:
    rng = np.random.default_rng(4)
    full = write_raster(root / "full.tif", rng.random((1, 96, 96)).astype(np.float32))
    raw = full.read_bytes()
    (root / "cut-pixels.tif").write_bytes(raw[: int(len(raw) * 0.6)])  # the header is intact
    (root / "cut-header.tif").write_bytes(raw[:200])
    (root / "cut-ifd.tif").write_bytes(raw[:16])  # the directory of the TIFF is gone
    full.unlink()
    (root / "empty.tif").write_bytes(b"")
    (root / "docs").mkdir()
    (root / "docs" / "thesis.docx").write_bytes(b"PK\x03\x04 chapter 3")
    shutil.copytree(workspace / "chips", root / "unfinished")
    (root / "unfinished" / "geop2p-chips.json").unlink()
    for name, text in {"broken": "{", "listed": "[]", "foreign": '{"format": "someone-else", "format_version": 1}'}.items():
        shutil.copytree(workspace / "chips", root / name)
        (root / name / "geop2p-chips.json").write_text(text)
    (root / "pickled.safetensors").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    (root / "noise.safetensors").write_bytes(rng.bytes(64))
    (root / "folder.safetensors").mkdir()
    os.symlink("nowhere.tif", root / "dangling.tif")


@pytest.fixture(scope="module")
def extras_template(workspace_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("info-extras")
    _build_extras(root, workspace_template)
    return root


@pytest.fixture
def ws(workspace, extras_template) -> Path:
    shutil.copytree(extras_template, workspace, symlinks=True, dirs_exist_ok=True)
    return workspace


SIBLING = pytest.mark.slow  # found on the way; slow-marked to keep the default suite fast

CASES = [
    pytest.param("nope.tif", "Raster not found: 'nope.tif'", id="missing"),
    pytest.param("docs", "is a folder but not a geop2p chip folder", id="folder-not-a-chip-folder"),
    pytest.param("unfinished", "the export did not finish: run export-chips again with --resume", id="unfinished-export"),
    pytest.param("broken", "Cannot read the manifest", id="corrupt-manifest"),
    pytest.param("listed", "geop2p-chips.json", id="manifest-not-a-mapping", marks=SIBLING),
    pytest.param("foreign", "geop2p-chips.json", id="manifest-of-another-format", marks=SIBLING),
    pytest.param("cut-pixels.tif", "truncated or corrupt", id="truncated-raster"),
    pytest.param("cut-header.tif", "Cannot read pixels of raster 'cut-header.tif'", id="truncated-after-header"),
    pytest.param("cut-ifd.tif", "Cannot read 'cut-ifd.tif' as a raster", id="truncated-header"),
    pytest.param("empty.tif", "Cannot read 'empty.tif' as a raster", id="empty-file", marks=SIBLING),
    pytest.param("thesis.docx", "Cannot read 'thesis.docx' as a raster", id="not-a-raster"),
    pytest.param("pickled.safetensors", "is a Python pickle", id="safetensors-that-is-a-pickle"),
    pytest.param("noise.safetensors", "is not a safetensors file", id="safetensors-noise", marks=SIBLING),
    pytest.param("folder.safetensors", "not a geop2p chip folder", id="folder-named-safetensors", marks=SIBLING),
    pytest.param("chips/index.gpkg", "Cannot read 'chips/index.gpkg' as a raster", id="a-vector-file", marks=SIBLING),
    pytest.param("dangling.tif", "Raster not found", id="dangling-link", marks=SIBLING),
]


@pytest.mark.parametrize("path, text", CASES)
def test_bad_path_is_one_line_and_touches_nothing(path, text, ws):
    run_geop2p(["info", path], ws).assert_clean_refusal(1, text)
