"""``geop2p export-chips`` on bad input, the way a user runs it: one line, exit 1 (2 for usage), nothing touched.

Every case runs the command in a subprocess inside a copy of a user's working
folder (``workspace``: input.tif, target.tif, thesis.docx, a finished chip
export in ``chips/``, a model) plus the broken files of :func:`_build_extras`,
and asserts what the README promises: exit code 1, exactly one line on stderr
(no INFO or WARNING line before it, no traceback), and no file created,
deleted or changed.  Case numbers refer to issue 8's list for export-chips.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from tests.bad_input.harness import run_geop2p
from tests.conftest import write_raster

UTM31 = CRS.from_epsg(32631)
ORIGIN = Affine(10, 0, 500000, 0, -10, 5000000)


def _build_extras(root: Path, workspace: Path) -> None:
    """Broken or unusual files beside the workspace's own (``workspace`` gives the chip folder to copy)."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 250, (3, 96, 96), dtype=np.uint8)
    full = write_raster(root / "full.tif", rng.random((1, 96, 96)).astype(np.float32), ORIGIN, UTM31)
    raw = full.read_bytes()
    (root / "trunc.tif").write_bytes(raw[: int(len(raw) * 0.6)])  # header intact, pixels cut
    (root / "cut.tif").write_bytes(raw[:200])  # the georeferencing tags cut too (GDAL warned raw on stderr)
    full.unlink()
    write_raster(root / "far.tif", x, Affine(10, 0, 900000, 0, -10, 4000000), UTM31)
    write_raster(root / "nocrs.tif", x, Affine(1, 0, 0, 0, 1, 0), None)
    write_raster(root / "complex.tif", (rng.random((1, 96, 96)) + 1j).astype(np.complex64), ORIGIN, UTM31)
    write_raster(root / "holes.tif", np.full((1, 96, 96), 255, np.uint8), ORIGIN, UTM31, nodata=255)
    gcps = [GroundControlPoint(0, 0, 500000, 5000000), GroundControlPoint(0, 96, 500960, 5000000),
            GroundControlPoint(96, 0, 500000, 4999040)]
    with rasterio.open(root / "gcps.tif", "w", driver="GTiff", width=96, height=96, count=3, dtype="uint8",
                       gcps=gcps, crs=UTM31) as dst:
        dst.write(x)
    import geopandas as gpd
    from shapely.geometry import Point, box

    gpd.GeoDataFrame(geometry=[box(600000, 4000000, 601000, 4001000)], crs=UTM31).to_file(root / "outside.gpkg")
    gpd.GeoDataFrame(geometry=[Point(500100, 4999900)], crs=UTM31).to_file(root / "points.geojson", driver="GeoJSON")
    (root / "aoi.csv").write_text("name,value\nfield,2\n")
    for name, text in {"split.yaml": "split: 0.8\n", "splitnull.yaml": "split: null\n", "seednull.yaml": "seed: null\n",
                       "list.yaml": "- size\n", "unknown.yaml": "sise: 32\n"}.items():
        (root / name).write_text(text)
    (root / "docs").mkdir()
    (root / "docs" / "export-config.yaml").write_text("")
    (root / "docs" / "thesis.docx").write_bytes(b"PK\x03\x04 chapter 2")
    shutil.copytree(workspace / "chips", root / "noted")
    (root / "noted" / "notes.txt").write_text("which chips were cloudy")
    shutil.copytree(workspace / "chips", root / "mixed")
    shutil.copy(workspace / "input.tif", root / "mixed" / "dem.tif")
    shutil.copy(workspace / "input.tif", root / "mixed" / "img.tif")
    shutil.copytree(workspace / "chips", root / "locked")
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "command": "geop2p export-chips a b locked",
            "started": "2026-01-01T00:00:00+00:00"}
    (root / "locked" / ".geop2p-lock").write_text(json.dumps(lock))
    os.symlink("nowhere", root / "gone")
    os.symlink("docs", root / "docslink")


@pytest.fixture(scope="module")
def extras_template(workspace_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-extras")
    _build_extras(root, workspace_template)
    return root


@pytest.fixture
def ws(workspace, extras_template) -> Path:
    """The workspace with the extras copied in."""
    shutil.copytree(extras_template, workspace, symlinks=True, dirs_exist_ok=True)
    return workspace


#: siblings of the issue's cases found on the way: slow-marked, so that the default suite stays fast
SIBLING = pytest.mark.slow

BASE = ["export-chips", "input.tif", "target.tif"]
NEW = [*BASE, "out", "--size", "32"]

CASES = [
    # the classics
    pytest.param(["export-chips", "nope.tif", "target.tif", "out"], "Raster not found: 'nope.tif'", id="missing-input"),
    pytest.param(["export-chips", "thesis.docx", "target.tif", "out"], "Cannot read 'thesis.docx' as a raster",
                 id="not-a-raster"),
    pytest.param([*BASE[:2], "trunc.tif", "out"], "truncated or corrupt", id="truncated-geotiff"),
    pytest.param(["export-chips", "cut.tif", "target.tif", "out"], "Cannot read pixels of input raster 'cut.tif'",
                 id="truncated-geotiff-tags"),
    pytest.param([*NEW, "--input-bands", "4"], "Band 4 does not exist in the input raster", id="band-out-of-range"),
    pytest.param([*NEW, "--target-bands", "0"], "Band 0 does not exist", id="band-zero", marks=SIBLING),
    pytest.param([*BASE, "out", "--size", "100"], "not a multiple of 32", id="size-not-multiple-of-32"),
    pytest.param([*NEW, "--stride", "0"], "Stride must be a positive", id="stride-0"),
    pytest.param([*BASE[:2], "far.tif", "out", "--size", "32"], "do not overlap", id="non-overlapping-pair"),
    pytest.param([*BASE[:2], "nocrs.tif", "out", "--size", "32"], "has a CRS but the target raster", id="crs-vs-no-crs"),
    pytest.param([*NEW, "--aoi", "outside.gpkg"], "does not overlap the rasters", id="aoi-outside"),
    pytest.param([*NEW, "--aoi", "nope.gpkg"], "AOI file not found", id="aoi-missing", marks=SIBLING),
    pytest.param([*BASE, "out", "--size", "128"], "do not fit in the overlap", id="chips-larger-than-rasters", marks=SIBLING),
    pytest.param([*NEW, "--split", "0.5,0.2,0.2"], "add up to 0.9", id="split-sum", marks=SIBLING),
    pytest.param([*NEW, "--min-valid", "0"], "min_valid must be a fraction", id="min-valid-0", marks=SIBLING),
    pytest.param([*NEW, "--resampling", "linear"], "valid names: nearest, bilinear", id="resampling", marks=SIBLING),
    pytest.param([*NEW, "--workers", "0"], "workers must be a whole number >= 1", id="workers-0", marks=SIBLING),
    pytest.param([*NEW, "--config", "nope.yaml"], "not found", id="config-missing", marks=SIBLING),
    pytest.param([*NEW, "--config", "list.yaml"], "must hold a mapping", id="config-not-a-mapping", marks=SIBLING),
    pytest.param([*NEW, "--config", "unknown.yaml"], "Unknown export option", id="config-unknown-key", marks=SIBLING),
    pytest.param([*BASE, "chips", "--size", "32"], "already exists", id="out-dir-exists", marks=SIBLING),
    pytest.param(["export-chips", "holes.tif", "target.tif", "out", "--size", "32"], "No chip has at least",
                 id="no-chip-valid-found-late"),
    # 1. --overwrite removes only what geop2p wrote
    pytest.param(["export-chips", "mixed/dem.tif", "mixed/img.tif", "mixed", "--size", "32", "--overwrite"],
                 "holds 'mixed/dem.tif', an input of this command", id="1-overwrite-holds-the-inputs"),
    pytest.param([*BASE, ".", "--size", "32", "--overwrite"], "an input of this command", id="1-overwrite-cwd"),
    pytest.param([*BASE, "docs", "--size", "32", "--overwrite"], "holds 'export-config.yaml' (and 1 other",
                 id="1-overwrite-empty-config-beside-thesis"),
    pytest.param([*BASE, "noted", "--size", "32", "--overwrite"], "holds 'notes.txt', which geop2p did not write",
                 id="1-overwrite-chip-folder-plus-notes"),
    pytest.param([*BASE, "docs", "--size", "32", "--resume"], "Cannot resume into 'docs'", id="1-resume-not-an-export", marks=SIBLING),
    # 3. a folder another export holds
    pytest.param([*BASE, "locked", "--size", "32", "--overwrite"], "in use by another geop2p export",
                 id="3-overwrite-locked-folder"),
    pytest.param([*BASE, "locked", "--size", "32", "--resume"], "in use by another geop2p export",
                 id="3-resume-locked-folder", marks=SIBLING),
    # 4. symbolic links
    pytest.param([*BASE, "docslink", "--size", "32", "--overwrite"], "which geop2p did not write",
                 id="4-overwrite-link-to-foreign-folder"),
    pytest.param([*BASE, "gone", "--size", "32"], "is a symbolic link to 'nowhere', which does not exist",
                 id="4-dangling-link"),
    # 6. --overwrite --resume on a complete export
    pytest.param([*BASE, "chips", "--size", "32", "--overwrite", "--resume"], "exclude each other",
                 id="6-overwrite-and-resume-complete"),
    pytest.param([*BASE, "chips", "--size", "64", "--resume"], "different settings", id="6-resume-other-settings"),
    # 8. complex rasters
    pytest.param(["export-chips", "complex.tif", "target.tif", "out", "--size", "32"], "take the amplitude",
                 id="8-complex-input"),
    pytest.param([*BASE[:2], "complex.tif", "out", "--size", "32"], "holds complex values (complex64)",
                 id="8-complex-target", marks=SIBLING),
    pytest.param(["export-chips", "gcps.tif", "target.tif", "out", "--size", "32"], "ground control points",
                 id="8-sibling-gcps-only"),
    # 9. tracebacks that must be one line
    pytest.param([*NEW, "--aoi", "aoi.csv"], "holds a table without geometries", id="9-aoi-csv"),
    pytest.param([*NEW, "--aoi", "points.geojson"], "holds no polygons", id="9-aoi-points", marks=SIBLING),
    pytest.param([*NEW, "--config", "split.yaml"], "split: expected a list of numbers, got 0.8", id="9-config-split-0.8"),
    pytest.param([*NEW, "--config", "splitnull.yaml"], "split: a value is required", id="9-config-split-null"),
    pytest.param([*NEW, "--config", "seednull.yaml"], "seed: a value is required", id="9-config-seed-null"),
    pytest.param([*NEW, "--seed", "-1"], "seed must be a whole number between 0", id="9-seed-negative"),
    pytest.param([*NEW, "--block-size", "99999999999999999999"], "block size must be at most", id="9-block-size-huge"),
    pytest.param([*NEW, "--buffer", "99999999999999999999"], "buffer must be at most", id="9-buffer-huge", marks=SIBLING),
    pytest.param([*NEW, "--stride", "99999999999999999999"], "Stride must be a positive", id="9-stride-huge", marks=SIBLING),
    pytest.param([*BASE, "out", "--size", "99999999999999999999"], "larger than the largest chip", id="9-size-huge", marks=SIBLING),
    pytest.param([*NEW, "--workers", "100000"], "workers must be at most", id="9-workers-huge", marks=SIBLING),
    pytest.param(["export-chips", "input.tif,nope.tif", "target.tif", "out", "--size", "32"],
                 "was split at its commas, which stack rasters", id="9-comma-part-missing"),
    # 10. OUT_DIR naming a file is an input error (1), not a usage error (2)
    pytest.param([*BASE, "thesis.docx", "--size", "32"], "Output 'thesis.docx' is a file", id="10-out-dir-is-a-file"),
    pytest.param([*BASE, "thesis.docx/out", "--size", "32"], "'thesis.docx' is a file, not a folder",
                 id="10-out-dir-under-a-file", marks=SIBLING),
]


@pytest.mark.parametrize("args, text", CASES)
def test_bad_input_is_one_line_and_touches_nothing(args, text, ws):
    outcome = run_geop2p(args, ws)
    outcome.assert_clean_refusal(1, text)


@pytest.mark.parametrize("args, text", [
    pytest.param([*NEW, "--sise", "32"], "No such option", id="unknown-option"),
    pytest.param([*NEW, "--compress", "zip"], "Invalid value for '--compress'", id="bad-choice", marks=SIBLING),
    pytest.param([*BASE, "out", "--size", "abc"], "Invalid value for '--size'", id="not-a-number", marks=SIBLING),
])
def test_malformed_command_line_is_usage_error(args, text, ws):
    outcome = run_geop2p(args, ws)
    assert outcome.returncode == 2 and text in outcome.stderr, outcome.describe()
    assert "Traceback" not in outcome.stderr
    assert not outcome.created and not outcome.deleted and not outcome.changed, outcome.describe()
