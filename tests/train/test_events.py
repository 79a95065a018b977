"""The TensorBoard events of a run: written in the training thread, readable by TensorBoard, purged on resume."""

from __future__ import annotations

import errno

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from geop2p.errors import DiskFullError
from geop2p.io.atomic import writing
from geop2p.train.events import ScalarEvents, open_events


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_reads_the_scalars(tmp_path):
    events = open_events(tmp_path)
    for step in (1, 2, 3):
        events.add_scalar("val_mae", step / 2, step)
    events.close()
    assert events.path.parent == tmp_path and events.path.name.startswith("events.out.tfevents.")
    assert _scalars(tmp_path) == {"val_mae": [(1, 0.5), (2, 1.0), (3, 1.5)]}


def test_a_resumed_run_hides_the_steps_after_its_checkpoint(tmp_path):
    for _ in range(10):  # more files than one digit counts: TensorBoard must still read them in the order written
        ScalarEvents(tmp_path / "other").close()
    first = ScalarEvents(tmp_path)
    for step in (1, 2, 3, 4):  # killed after step 4; its checkpoint is of step 2
        first.add_scalar("loss", float(step), step)
    first.close()
    again = ScalarEvents(tmp_path, purge_step=3)
    assert again.path != first.path  # a second file in the same folder, even within the same second
    for step in (3, 4):
        again.add_scalar("loss", 10.0 * step, step)
    again.close()
    assert sorted(p.name for p in tmp_path.glob("events.*")) == [first.path.name, again.path.name]
    assert _scalars(tmp_path)["loss"] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]


def test_a_failed_write_raises_in_the_calling_thread(tmp_path, monkeypatch):
    events = ScalarEvents(tmp_path)

    def full(_data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(events._writer._writer, "write", full)
    with pytest.raises(DiskFullError, match="No space left on device while writing"):
        with writing(events.path, "run again with --resume"):
            events.add_scalar("x", 1.0, 1)
