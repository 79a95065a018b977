"""``geop2p predict`` killed half-way: SIGTERM leaves nothing, ``kill -9``'s leftover is swept by the next run.

Each test starts ``python -m geop2p predict`` in a subprocess on a scene large
enough to take several seconds, waits until the hidden partial GeoTIFF
(``.<name>.partial-<pid>-<hex>.tif``) appears beside the output, and then
stops the process the way a scheduler or a user does:

* ``SIGTERM`` (what ``timeout``, Slurm and systemd send): the CLI turns it into
  the same unwinding as Ctrl-C, the reader and writer threads stop, the
  partial is removed, and the command says so in one line (exit 130).  A rerun
  leaves nothing but the output.
* ``kill -9``: nothing can run in the killed process, so its partial stays;
  the next run of the same output removes it (its pid is dead) and leaves
  only the output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from tests.conftest import write_raster

pytestmark = pytest.mark.slow  # each test predicts a scene twice in subprocesses (about half a minute)


@pytest.fixture
def folder(tmp_path) -> Path:
    """A scene of 1200² px (many 32 px windows: seconds of work) and a linear 3 → 1 bundle."""
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle
    from tests.fixtures.model_core import bundle_meta

    rng = np.random.default_rng(11)
    x = rng.integers(0, 250, (3, 1200, 1200), dtype=np.uint8)
    write_raster(tmp_path / "scene.tif", x, Affine(10, 0, 500000, 0, -10, 5000000), CRS.from_epsg(32631), nodata=255,
                 tiled=True)
    generator = build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1})
    save_bundle(tmp_path / "model.safetensors", generator,
                bundle_meta(["r", "g", "b"], ["elevation"], in_nodata=255, chip_size=32, overlap=8))
    return tmp_path


ARGS = ["predict", "scene.tif", "-m", "model.safetensors", "-o", "out.tif", "--batch-size", "2"]


def _start(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "geop2p", *ARGS], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(".out.partial-*"))


def _wait_for_partial(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _partials(folder)
        if found and found[0].stat().st_size > 0:
            time.sleep(0.3)  # well inside the prediction: rows are being written
            return found[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"predict ended (rc {proc.returncode}) before writing a partial file:\n{err}\n{out}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no partial file appeared")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _rerun(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geop2p", *ARGS], cwd=folder, capture_output=True, text=True,
                          timeout=300)


def test_sigterm_removes_the_partial_and_a_rerun_leaves_only_the_output(folder):
    proc = _start(folder)
    partial = _wait_for_partial(proc, folder)
    assert str(proc.pid) in partial.name, "a partial's name carries its writer's pid"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert lines == ["Interrupted; nothing half-written was left behind."], err
    assert _names(folder) == ["model.safetensors", "scene.tif"], "the partial is gone, no output appeared"

    again = _rerun(folder)
    assert again.returncode == 0, again.stderr
    assert _names(folder) == ["model.safetensors", "out.tif", "scene.tif"]


def test_kill_9_leaves_a_partial_that_the_next_run_removes(folder):
    proc = _start(folder)
    partial = _wait_for_partial(proc, folder)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _partials(folder) == [partial], "kill -9 leaves the partial (nothing can run in the killed process)"

    again = _rerun(folder)
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stderr.splitlines() if line.strip()] == [], again.stderr
    assert _names(folder) == ["model.safetensors", "out.tif", "scene.tif"], "the stale partial was swept"
