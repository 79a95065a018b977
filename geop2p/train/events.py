"""TensorBoard scalars of a run, written in the training thread.

``torch.utils.tensorboard.SummaryWriter`` writes its events from a background
thread: when the disk fills up, that thread prints its own traceback and dies,
and the run learns of it only later.  :class:`ScalarEvents` writes the same
event file (``tensorboard/events.out.tfevents.*``: the file-version event, then
one scalar ``Summary`` per value) from the calling thread, so a failed write
raises where :func:`geop2p.train.train` turns it into one line.  A resumed run
writes TensorBoard's purge marker first, so the steps after the checkpoint that
a killed run had logged are hidden, as ``SummaryWriter(purge_step=...)`` does.

Example:
    >>> import tempfile
    >>> events = open_events(Path(tempfile.mkdtemp()))
    >>> events.add_scalar("val_mae", 1.5, step=3); events.close()
    >>> events.path.name.startswith("events.out.tfevents.")
    True
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from pathlib import Path

__all__ = ["ScalarEvents", "open_events"]

logger = logging.getLogger(__name__)

_serial = itertools.count()  # one process may open several files in one second (a run, then its resume)


class ScalarEvents:
    """One TensorBoard event file, appended to synchronously.

    Args:
        log_dir: the folder of the event file (made if missing).
        purge_step: for a resumed run, the first step it will log again (events from that step on,
            written by the run that was stopped, are hidden by TensorBoard).

    Raises:
        OSError: the file cannot be created or written (the caller makes it one line).
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event, self._summary = Event, Summary
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        while True:
            self.path = log_dir / f"{stem}.{next(_serial):06d}"  # padded: TensorBoard reads files in name order
            try:
                handle = self.path.open("xb")
                break
            except FileExistsError:
                continue
        self._writer = RecordWriter(handle)
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(Event(wall_time=time.time(), step=int(purge_step),
                              session_log=SessionLog(status=SessionLog.START)))
        self.flush()

    def _write(self, event) -> None:
        self._writer.write(event.SerializeToString())

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Append one scalar (kept in the file's buffer until :meth:`flush`)."""
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=float(value))])
        self._write(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        """Write what is buffered to the file."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._writer.closed:
            self._writer.close()


def open_events(log_dir: Path, purge_step: int | None = None) -> ScalarEvents | None:
    """A :class:`ScalarEvents` in ``log_dir``, or None (with a log line) when tensorboard is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # tensorboard is optional
        logger.info("tensorboard is not installed; no TensorBoard events are written.")
        return None
    return ScalarEvents(log_dir, purge_step)
