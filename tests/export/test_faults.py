"""Faults during an export, injected for real: kill -9, two exports at once, a full disk (issue 8, cases 2, 3, 5).

Each test runs ``geop2p export-chips`` in subprocesses, the way a user's
export is killed or crowded, and then checks what is left on disk: the
workers gone, one intact folder, no chip under its final name that is not
whole, and a ``--resume`` that ends with exactly the files of an export that
was never disturbed.  The full-disk tests mount a small tmpfs (root only;
skipped otherwise, saying why).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geop2p.errors import DiskFullError
from geop2p.export import ExportConfig, export_chips
from geop2p.io.chip_folder import IndexRow, read_chip_ids, write_index, write_manifest, write_text_atomic
from geop2p.io.lock import LOCK_NAME
from tests.conftest import write_raster

UTM31 = CRS.from_epsg(32631)
SMALL = ["--size", "32", "--block-size", "128", "--buffer", "0", "--no-progress"]


def _pair(root: Path, n: int) -> tuple[str, str]:
    """An n×n noisy pair (incompressible chips, so a small disk fills quickly); absolute paths."""
    rng = np.random.default_rng(n)
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    x = rng.integers(0, 250, (3, n, n), dtype=np.uint8)
    y = rng.random((1, n, n), dtype=np.float32)
    inp = write_raster(root / f"in{n}.tif", x, t, UTM31, nodata=255, descriptions=["r", "g", "b"])
    tgt = write_raster(root / f"tg{n}.tif", y, t, UTM31, nodata=-9999.0)
    return str(inp), str(tgt)


@pytest.fixture(scope="module")
def rasters(tmp_path_factory) -> dict[int, tuple[str, str]]:
    root = tmp_path_factory.mktemp("fault-rasters")
    return {n: _pair(root, n) for n in (256, 512, 1024)}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "geop2p", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geop2p", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``None``: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry.name))
    return out


def _running(pids: set[int]) -> set[int]:
    return {p for p in pids if _state(p) not in (None, "Z", "X")}


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the export ended before {what}: rc={proc.returncode} {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _chips(out: Path) -> list[Path]:
    return sorted(p for side in ("input", "target") for p in (out / side).glob("*.tif"))


def _same_export(a: Path, b: Path) -> None:
    """``a`` and ``b`` hold the same chips byte for byte, the same index and the same manifest (but for its time)."""
    names = [p.relative_to(a) for p in _chips(a)]
    assert names and names == [p.relative_to(b) for p in _chips(b)]
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ma, mb = (json.loads((d / "geop2p-chips.json").read_text()) for d in (a, b))
    ma.pop("created"), mb.pop("created")
    assert ma == mb
    assert (a / "export-config.yaml").read_text() == (b / "export-config.yaml").read_text()
    assert read_chip_ids(a) == read_chip_ids(b)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())


def _no_partial_or_broken_chip(out: Path) -> None:
    """Nothing half-written under any name: no temporary file, every chip under its final name whole."""
    assert not [p for p in out.rglob("*") if ".partial-" in p.name]
    for p in _chips(out):
        assert p.stat().st_size > 0, p
        with rasterio.open(p) as src:
            assert (src.height, src.width) == (32, 32)
            src.read()
            src.read_masks()


# ---------------------------------------------------------------------------------------------- 5. kill -9


def test_workers_exit_within_seconds_when_the_parent_is_killed(rasters, tmp_path):
    inp, tgt = rasters[1024]
    proc = _start(["export-chips", inp, tgt, "chips", *SMALL, "--workers", "2"], tmp_path)
    try:
        _wait_for(lambda: len(_children(proc.pid)) >= 3 and len(_chips(tmp_path / "chips")) >= 4, 120,
                  "two workers writing chips", proc)
        helpers = _running(_children(proc.pid))  # two workers and the resource tracker
        assert len(helpers) >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t0 = time.monotonic()
        deadline = t0 + 10
        while _running(helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(helpers), f"still running {time.monotonic() - t0:.1f} s after kill -9: {_running(helpers)}"
    finally:
        proc.kill()
        proc.communicate()
        for pid in _running(_children(proc.pid)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_worker_killed_mid_export_is_one_line_and_resume_completes(rasters, tmp_path):
    inp, tgt = rasters[512]
    proc = _start(["export-chips", inp, tgt, "chips", *SMALL, "--workers", "2"], tmp_path)
    try:
        _wait_for(lambda: len(_chips(tmp_path / "chips")) >= 4, 120, "chips", proc)
        workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("Error: An export worker process died"), err
    again = _run(["export-chips", inp, tgt, "chips", *SMALL, "--resume"], tmp_path)
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    export_chips(inp, tgt, reference, ExportConfig(size=32, block_size=128, buffer=0))
    _same_export(reference, tmp_path / "chips")


@pytest.mark.slow
def test_kill_mid_export_then_resume_is_identical_to_an_undisturbed_export(rasters, tmp_path):
    inp, tgt = rasters[512]
    reference = tmp_path / "reference"
    export_chips(inp, tgt, reference, ExportConfig(size=32, block_size=128, buffer=0))
    proc = _start(["export-chips", inp, tgt, "chips", *SMALL], tmp_path)
    _wait_for(lambda: len(_chips(tmp_path / "chips")) >= 40, 120, "40 chip files", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    out = tmp_path / "chips"
    assert not (out / "geop2p-chips.json").exists() and (out / LOCK_NAME).exists()  # killed: a stale lock
    again = _run(["export-chips", inp, tgt, "chips", *SMALL, "--resume"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Taking over a stale lock" in again.stderr and "kept from before" in again.stdout
    assert not (out / LOCK_NAME).exists()
    _same_export(reference, out)


# ---------------------------------------------------------------------------------------------- 3. two at once

CONCURRENT = [
    pytest.param("--overwrite", "--overwrite", id="overwrite-overwrite"),
    pytest.param("--resume", "--resume", id="resume-resume", marks=pytest.mark.slow),
    pytest.param("--overwrite", "--resume", id="overwrite-resume", marks=pytest.mark.slow),
    pytest.param("--resume", "--overwrite", id="resume-overwrite", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("first, second", CONCURRENT)
def test_two_exports_into_one_folder_one_refusal_one_intact_folder(first, second, rasters, tmp_path):
    inp, tgt = rasters[512]
    reference = tmp_path / "reference"
    export_chips(inp, tgt, reference, ExportConfig(size=32, block_size=128, buffer=0))
    out = tmp_path / "chips"
    shutil.copytree(reference, out)
    if first == "--resume":  # an interrupted export: the first one has work to do
        (out / "geop2p-chips.json").unlink()
        (out / "index.gpkg").unlink()
        for p in _chips(out)[::2]:
            p.unlink()
    a = _start(["export-chips", inp, tgt, "chips", *SMALL, first], tmp_path)
    try:
        lock = out / LOCK_NAME
        _wait_for(lambda: lock.exists() and f'"pid": {a.pid}' in lock.read_text(), 60, "the first export's lock", a)
        b = _run(["export-chips", inp, tgt, "chips", *SMALL, second], tmp_path)
        a_out, a_err = a.communicate(timeout=300)
    finally:
        a.kill()
    assert b.returncode == 1 and "Traceback" not in b.stderr, b.stderr
    lines = [line for line in b.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "in use by another geop2p export" in lines[0] and f"pid {a.pid}" in lines[0], b.stderr
    assert a.returncode == 0, a_err
    assert not lock.exists()
    _same_export(reference, out)


# ---------------------------------------------------------------------------------------------- 2. a full disk


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (skips the test when this process cannot mount one)."""
    if os.geteuid() != 0:
        pytest.skip("a full-disk test mounts a small tmpfs, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs at {path}: {res.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_full_disk_is_one_line_leaves_only_whole_chips_and_resume_completes(workers, rasters, tmp_path):
    inp, tgt = rasters[256]
    reference = tmp_path / "reference"
    export_chips(inp, tgt, reference, ExportConfig(size=32, block_size=128, buffer=0))
    with _tmpfs(tmp_path / "disk", "256k") as disk:
        args = ["export-chips", inp, tgt, "chips", *SMALL, "--workers", str(workers)]
        full = _run(["-q", *args], disk)
        assert full.returncode == 1, full.stderr
        assert full.stderr.startswith("Error: No space left on device while writing '"), full.stderr
        assert "free space and run the same export-chips command again with --resume" in full.stderr
        assert len([line for line in full.stderr.splitlines() if line.strip()]) == 1, full.stderr
        out = disk / "chips"
        assert not (out / "geop2p-chips.json").exists() and not (out / LOCK_NAME).exists()
        assert 0 < len(_chips(out)) < len(_chips(reference))
        _no_partial_or_broken_chip(out)
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        done = _run([*args, "--resume"], disk)
        assert done.returncode == 0, done.stderr
        _same_export(reference, out)


@pytest.mark.parametrize("what", ["index", "manifest", "config"])
def test_full_disk_while_writing_the_index_manifest_or_config_is_one_line(what, tmp_path):
    from geop2p.formats.chip_manifest import ChipManifest
    from geop2p.io.chip_folder import read_manifest

    reference = tmp_path / "reference"
    rng = np.random.default_rng(0)
    write_raster(tmp_path / "a.tif", rng.integers(0, 250, (1, 64, 64), dtype=np.uint8))
    export_chips(tmp_path / "a.tif", tmp_path / "a.tif", reference, ExportConfig(size=32, block_size=32, buffer=0))
    manifest: ChipManifest = read_manifest(reference)
    with _tmpfs(tmp_path / "disk", "64k") as disk:
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(DiskFullError, match=r"^No space left on device while writing '.*'; free space and run"):
            if what == "index":
                rows = [IndexRow("000000_000000", "train", 0, 0, 32, 32, 1.0)] * 200
                from shapely.geometry import box

                write_index(disk / "index.gpkg", rows, [box(0, 0, 1, 1)] * 200, UTM31)
            elif what == "manifest":
                write_manifest(disk, manifest)
            else:
                write_text_atomic(disk / "export-config.yaml", "size: 32\n" * 10000)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # nothing half-written, under any name


def test_write_chip_on_a_full_disk_never_names_a_broken_chip(tmp_path):
    """GDAL closes a chip it could not write without an error; write_chip reads it back and refuses it."""
    from geop2p.io.chip_folder import ChipProfile, chip_env, chip_is_complete, write_chip

    rng = np.random.default_rng(1)
    profile = ChipProfile("float32", 2, -9999.0, ("a", "b"), UTM31, 64)
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    with _tmpfs(tmp_path / "disk", "128k") as disk, chip_env():
        written = []
        with pytest.raises(DiskFullError, match="No space left on device while writing '.*'; free space and run"):
            for i in range(100):
                valid = np.ones((64, 64), bool)
                valid[: i % 7] = False  # some chips need a mask band, some do not
                write_chip(disk / f"{i:06d}_000000.tif", rng.random((2, 64, 64), dtype=np.float32), valid, t,
                           profile)
                written.append(disk / f"{i:06d}_000000.tif")
        assert written and sorted(disk.iterdir()) == written  # the failed chip is under no name at all
        assert all(chip_is_complete(p, t, profile, 64) for p in written)
