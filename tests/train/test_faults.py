"""Faults during training: full disks, unreadable chips, a killed process, a second run on the same folder.

The rule (issue 8): a fresh run that fails before its first checkpoint removes
what it wrote (and the folders it made); one that fails later keeps the folder,
and its one-line error says to continue with ``--resume``; a resumed run first
removes what a killed run left after its checkpoint (``metrics.csv`` rows past
the checkpoint's step, partial files of dead processes, a stale lock).

The full-disk tests mount a small tmpfs (root only; skipped otherwise, with the
reason).  The linear generator with the default PatchGAN writes a 33 MB
checkpoint, so an 8 MB disk fills at the first checkpoint and a 48 MB disk at
the second.  The real ``kill -9`` tests are slow-marked (``--runslow``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from geop2p.errors import ChipFolderError, DiskFullError, FolderLockedError, RasterReadError
from geop2p.io.chip_folder import read_chip_ids
from geop2p.io.lock import LOCK_NAME
from geop2p.io.run_folder import read_history
from geop2p.train import TrainConfig, train
from geop2p.train.checkpoint import read_checkpoint
from tests.bad_input.harness import snapshot
from tests.fixtures.train import write_chip_folder
from tests.train.tmpfs import remount, tmpfs

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: 4 train chips of 32 px in batches of 2: two steps an epoch; the default PatchGAN makes the checkpoint 33 MB
LINEAR = dict(generator="linear", workers=0, device="cpu", batch_size=2, n_samples=1, epochs=3, decay_epochs=0,
              deterministic=True)
DEAD_PID = 99999999  # above any pid_max: never a running process


@pytest.fixture(scope="module")
def small_chips_template(tmp_path_factory) -> Path:
    return write_chip_folder(tmp_path_factory.mktemp("small") / "chips", rows=2, cols=3, size=32)


@pytest.fixture
def small_chips(small_chips_template, tmp_path) -> Path:
    """A fresh copy: 2 × 3 chips of 32 px (4 train, 1 val, 1 test)."""
    return Path(shutil.copytree(small_chips_template, tmp_path / "chips"))


def _truncate(chips: Path, which: int = -1) -> Path:
    """Cut a train chip's input to a third (its header then fails to read)."""
    chip = chips / "input" / f"{read_chip_ids(chips, 'train')[which]}.tif"
    data = chip.read_bytes()
    chip.write_bytes(data[: len(data) // 3])
    return chip


def _steps(run: Path) -> list[str]:
    return [row["step"] for row in read_history(run / "metrics.csv")]


def _generator(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["generator"]


# ---------------------------------------------------------------------------------- full disk
def test_a_full_disk_before_the_first_checkpoint_removes_the_run(small_chips_template, tmp_path):
    with tmpfs(tmp_path / "disk", "8m") as disk:
        with pytest.raises(DiskFullError) as info:
            train(small_chips_template, disk / "a" / "run", TrainConfig(**LINEAR))
        assert str(info.value) == (f"No space left on device while writing '{disk}/a/run/checkpoints/last.pt'; "
                                   "free space and run the command again.")
        assert list(disk.iterdir()) == []  # the run and the folders it made are gone
        (disk / "mine").mkdir()
        with pytest.raises(DiskFullError):
            train(small_chips_template, disk / "mine", TrainConfig(**LINEAR))
        assert (disk / "mine").is_dir() and list((disk / "mine").iterdir()) == []  # a folder that was there stays


def test_a_full_disk_after_a_checkpoint_keeps_the_run_and_resume_finishes(small_chips_template, tmp_path):
    cfg = TrainConfig(**LINEAR)
    whole = train(small_chips_template, tmp_path / "whole", cfg)
    with tmpfs(tmp_path / "disk", "48m") as disk:
        run = disk / "run"
        with pytest.raises(DiskFullError, match=r"last\.pt'; free space and run again with --resume\.$"):
            train(small_chips_template, run, cfg)
        assert not list(run.rglob("*partial*")) and not (run / LOCK_NAME).exists()
        assert read_checkpoint(run / "checkpoints" / "last.pt").loop.global_step == 2
        assert _steps(run) == ["2", "4"]  # epoch 2's row was written before its checkpoint failed
        remount(disk, "200m")
        resumed = train(small_chips_template, run, cfg, resume=True)
        assert resumed.steps == whole.steps == 6
        assert _steps(run) == ["2", "4", "6"]
        a, b = _generator(tmp_path / "whole"), _generator(run)
        assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------- failures after the start
@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_chip_before_the_first_checkpoint_removes_the_run(small_chips, small_chips_template, tmp_path,
                                                                       workers):
    chip = _truncate(small_chips)
    run = tmp_path / "run"
    with pytest.raises(RasterReadError) as info:
        train(small_chips, run, TrainConfig(**{**LINEAR, "workers": workers}))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message  # a DataLoader worker's error too
    assert message.startswith(f"Cannot read '{chip}' as a raster")
    assert message.endswith("Training stopped before its first checkpoint; what it had written was removed.")
    assert not run.exists()
    shutil.copy(small_chips_template / "input" / chip.name, chip)
    assert train(small_chips, run, TrainConfig(**{**LINEAR, "max_steps": 2})).steps == 2  # no "exists" loop


def test_a_failure_after_a_checkpoint_keeps_the_run_and_says_resume(small_chips, small_chips_template, tmp_path):
    run = tmp_path / "run"
    train(small_chips, run, TrainConfig(**{**LINEAR, "max_steps": 2}))
    chip = _truncate(small_chips)
    with pytest.raises(RasterReadError, match=f"'{run}' keeps the checkpoint of step 2: fix the cause and continue "
                                              "with --resume.$"):
        train(small_chips, run, TrainConfig(**LINEAR), resume=True)
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / LOCK_NAME).exists()
    shutil.copy(small_chips_template / "input" / chip.name, chip)
    assert train(small_chips, run, TrainConfig(**LINEAR), resume=True).steps == 6


def test_the_end_of_a_run_without_a_finite_metric_is_not_told_to_resume(small_chips, tmp_path, monkeypatch):
    from geop2p.train.trainer import Pix2PixTrainer

    validate = Pix2PixTrainer.validate
    monkeypatch.setattr(Pix2PixTrainer, "validate",
                        lambda self, loader: {k: float("nan") for k in validate(self, loader)})
    with pytest.raises(ChipFolderError, match="No epoch produced a finite val_mae") as info:
        train(small_chips, tmp_path / "run", TrainConfig(**{**LINEAR, "max_steps": 2}))
    assert "--resume" not in str(info.value)


@pytest.mark.parametrize("at_step, kept", [(1, False), (3, True)])
def test_an_interrupt_removes_a_run_without_checkpoint_and_keeps_one_with(small_chips_template, tmp_path, caplog,
                                                                         at_step, kept):
    """Ctrl-C and SIGTERM (which the CLI turns into KeyboardInterrupt) unwind through the same clean-up."""

    def interrupt(p):
        if p.step == at_step:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(small_chips_template, run, TrainConfig(**LINEAR), progress=interrupt)
    assert run.exists() is kept
    if kept:
        assert not (run / LOCK_NAME).exists() and not list(run.rglob("*partial*"))
        assert "Stopped at step 3; the checkpoint of step 2 is kept: continue with --resume." in caplog.text
        assert train(small_chips_template, run, TrainConfig(**LINEAR), resume=True).steps == 6


# ---------------------------------------------------------------------------------- what a kill -9 leaves
def _what_a_kill_leaves(run: Path) -> None:
    """The state ``kill -9`` during the checkpoint of step 4 leaves: its row, partial files, the lock."""
    rows = read_history(run / "metrics.csv")
    extra = dict(rows[-1], epoch="2", step="4")
    header = ",".join(rows[0])
    (run / "metrics.csv").write_text("\n".join([header] + [",".join(r.values()) for r in rows + [extra]]) + "\n")
    (run / "checkpoints" / f".last.partial-{DEAD_PID}-0123abcd.pt").write_bytes(b"half a checkpoint")
    (run / "samples" / f".epoch_002.partial-{DEAD_PID}-0123abcd.png").write_bytes(b"half a png")
    (run / LOCK_NAME).write_text(json.dumps({"pid": DEAD_PID, "host": socket.gethostname(), "command": "geop2p train",
                                             "started": "2026-01-01T00:00:00+00:00"}))


def test_resume_after_a_kill_trims_the_history_and_sweeps_the_partials(small_chips_template, tmp_path, caplog):
    run = tmp_path / "run"
    train(small_chips_template, run, TrainConfig(**{**LINEAR, "max_steps": 2}))
    _what_a_kill_leaves(run)
    assert _steps(run) == ["2", "4"]
    result = train(small_chips_template, run, TrainConfig(**LINEAR), resume=True)
    assert result.steps == 6 and _steps(run) == ["2", "4", "6"]
    assert [str(row["step"]) for row in result.history] == ["2", "4", "6"]
    assert not list(run.rglob("*partial*")) and not (run / LOCK_NAME).exists()
    assert "Taking over a stale lock" in caplog.text


# ---------------------------------------------------------------------------------- a second run on the folder
def test_a_second_run_on_a_folder_in_use_is_refused_and_touches_nothing(small_chips_template, tmp_path):
    run = tmp_path / "run"
    train(small_chips_template, run, TrainConfig(**{**LINEAR, "max_steps": 2}))
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                             "command": "geop2p train chips --out run", "started": "now"}))
    before = snapshot(tmp_path)
    for flags in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(FolderLockedError, match=f"is in use by another geop2p training run \\(pid {os.getpid()}"):
            train(small_chips_template, run, TrainConfig(**LINEAR), **flags)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------- the real thing (slow)
def _train_command(chips: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "geop2p", "-q", "train", str(chips), "--out", str(run), "--generator", "linear",
            "--device", "cpu", "--workers", "0", "--batch-size", "2", "--epochs", "6", "--decay-epochs", "0", *extra]


def _kill_during_a_checkpoint(cmd: list[str], run: Path, timeout: float = 300) -> bool:
    """Start ``cmd``; ``kill -9`` it as soon as a partial checkpoint appears after the first one; True if it did."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints, deadline = run / "checkpoints", time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if (checkpoints / "last.pt").is_file() and any(checkpoints.glob(".last.partial-*")):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_kill_9_while_the_checkpoint_is_written(small_chips_template, tmp_path):
    """A real ``kill -9`` while ``last.pt`` is written (several tries): the resume has unique steps, no partial."""
    whole = tmp_path / "whole"
    subprocess.run(_train_command(small_chips_template, whole), check=True, capture_output=True, timeout=300)
    for attempt in range(5):
        run = tmp_path / f"run{attempt}"
        if not _kill_during_a_checkpoint(_train_command(small_chips_template, run), run):
            continue
        assert any((run / "checkpoints").glob(".last.partial-*"))
        res = subprocess.run(_train_command(small_chips_template, run, "--resume"), capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        steps = _steps(run)
        assert steps == sorted(set(steps), key=int) and steps[-1] == "12", steps
        assert not list(run.rglob("*partial*")) and not (run / LOCK_NAME).exists()
        a, b = _generator(whole), _generator(run)
        assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical to the run that was never killed
        return
    pytest.fail("no try caught a checkpoint being written")


@pytest.mark.slow
def test_two_runs_on_one_folder_at_once(small_chips_template, tmp_path):
    """While a run writes, a second ``--resume`` or ``--overwrite`` is one line and the first run is undisturbed."""
    run = tmp_path / "run"
    first = subprocess.Popen(_train_command(small_chips_template, run, "--epochs", "40"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        for flag in ("--resume", "--overwrite"):
            res = subprocess.run(_train_command(small_chips_template, run, flag, "--epochs", "40"),
                                 capture_output=True, text=True, timeout=300)
            lines = res.stderr.strip().splitlines()
            assert res.returncode == 1 and len(lines) == 1, res.stderr
            assert f"in use by another geop2p training run (pid {first.pid}" in lines[0]
        assert first.wait(timeout=600) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    assert _steps(run)[-1] == "80" and not (run / LOCK_NAME).exists()
