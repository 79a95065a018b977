"""The run folder while a run writes it: the lock, each write's failure as one line, and what a failure leaves.

:class:`RunOutputs` is rank 0's side of :func:`geop2p.train.train`:

* :meth:`~RunOutputs.take` makes the folder if needed and locks it (the last
  check: a second run on the folder is refused with one line);
* :meth:`~RunOutputs.start` replaces the run (``--overwrite``: only what a run
  wrote, see :meth:`~geop2p.io.run_folder.RunFolder.owned`) or tidies it for
  ``--resume`` (the partial files of dead processes, the ``metrics.csv`` rows
  past the checkpoint's step), then writes ``config.yaml`` and opens the
  TensorBoard events;
* :meth:`~RunOutputs.writing` wraps every write: a full disk or a read-only
  file system is one :class:`~geop2p.errors.WriteError` line, which says
  ``--resume`` once a checkpoint exists;
* :meth:`~RunOutputs.stopped` handles a failure: a fresh run without a
  checkpoint is removed (and its folder, if the run made it); otherwise the
  folder is kept and the error says how to continue.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

from geop2p.errors import Geop2pError, WriteError
from geop2p.io.atomic import writing
from geop2p.io.lock import FolderLock
from geop2p.io.run_folder import RunFolder, read_history, write_history
from geop2p.train.config import TrainConfig
from geop2p.train.events import ScalarEvents, open_events

__all__ = ["RESUME_HINT", "RunOutputs", "check_run_folder", "one_line"]

logger = logging.getLogger(__name__)

#: how a run that stopped after a checkpoint is continued (the hint of its write errors)
RESUME_HINT = "run again with --resume"


def one_line(exc: BaseException) -> str:
    """The message of ``exc``; for an error re-raised from a DataLoader worker, the original message alone.

    Example:
        >>> one_line(ValueError("Caught RasterReadError in DataLoader worker process 0.\\nOriginal Traceback "
        ...                     "(most recent call last):\\n  ...\\n"
        ...                     "geop2p.errors.RasterReadError: Cannot read 'a.tif'"))
        "Cannot read 'a.tif'"
    """
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    _, sep, message = last.partition(": ")
    return message if sep else last


def check_run_folder(folder: RunFolder, inputs: Sequence[Path], resume: bool, overwrite: bool) -> None:
    """Raise unless a run may start in ``folder`` on the dataset folders ``inputs``; writes nothing, needs no torch.

    :meth:`RunFolder.check <geop2p.io.run_folder.RunFolder.check>` for each input; before it, ``--overwrite``
    of a folder holding files checks every input at once, so that an input inside the run folder is named as
    an input rather than as a file geop2p did not write.

    Raises:
        ConfigError, OutputExistsError: see :meth:`~geop2p.io.run_folder.RunFolder.check`.
    """
    root = folder.root
    if overwrite and not resume and root.is_dir() and any(root.iterdir()):
        folder.owned(TrainConfig).check(protected=list(inputs))
    for path in inputs:
        folder.check(path, resume, overwrite, TrainConfig)


class RunOutputs:
    """Rank 0's writes into one run folder.

    Args:
        folder: the run folder.
        checkpoint_step: the step of the checkpoint a resumed run starts from (None for a fresh run).
    """

    def __init__(self, folder: RunFolder, checkpoint_step: int | None) -> None:
        self.folder = folder
        self.checkpoint_step = checkpoint_step
        self.events: ScalarEvents | None = None
        self._lock: FolderLock | None = None
        self._made: list[Path] = []
        self._started = False
        self._removed = False

    def take(self) -> None:
        """Make the folder (and missing parents) and lock it.

        Raises:
            WriteError: the folder cannot be made or locked (read-only file system...).
            FolderLockedError: another geop2p process writes there.
        """
        self._made = self.folder.create()
        lock = self.folder.lock()
        try:
            lock.acquire()
        except BaseException:
            self._remove_made()
            raise
        self._lock = lock

    def _remove_made(self) -> None:
        for path in self._made:
            with contextlib.suppress(OSError):
                path.rmdir()  # only while empty: never what is not the run's

    def again(self) -> str | None:
        """How to finish after a failed write: ``--resume`` once the run has a checkpoint (else it is removed)."""
        return RESUME_HINT if self.checkpoint_step is not None else None

    @contextlib.contextmanager
    def writing(self, path: Path) -> Iterator[None]:
        """A write of ``path``: any failure becomes one :class:`WriteError` line (:func:`geop2p.io.atomic.writing`)."""
        with writing(path, self.again()):
            yield

    def start(self, config: TrainConfig, history: Sequence[dict[str, Any]], overwrite: bool,
              inputs: Sequence[Path]) -> None:
        """Under the lock: replace (``overwrite``) or tidy (resume) the folder; write config.yaml; open the events.

        Raises:
            OutputExistsError: ``overwrite`` finds files geop2p did not write (checked again under the lock).
            WriteError: a write failed.
        """
        folder = self.folder
        if self.checkpoint_step is not None:
            folder.sweep_partials()
            if len(read_history(folder.metrics_path)) != len(history):  # rows written after the checkpoint
                with self.writing(folder.metrics_path):
                    write_history(folder.metrics_path, history)
        elif overwrite:
            folder.clear(TrainConfig, protected=list(inputs))
        self._started = True  # from here on, what is in the folder is this run's
        folder.prepare()
        with self.writing(folder.config_path):
            folder.write_config(config)
        purge = self.checkpoint_step + 1 if self.checkpoint_step is not None else None
        with self.writing(folder.tensorboard_dir):
            self.events = open_events(folder.tensorboard_dir, purge_step=purge)

    def scalars(self, values: dict[str, float], step: int, flush: bool = False) -> None:
        """Append scalars to the TensorBoard events (nothing when tensorboard is not installed)."""
        if self.events is None:
            return
        with self.writing(self.events.path):
            for tag, value in values.items():
                self.events.add_scalar(tag, value, step)
            if flush:
                self.events.flush()

    def close_events(self) -> None:
        """Flush and close the TensorBoard events."""
        if self.events is not None:
            events, self.events = self.events, None
            with self.writing(events.path):
                events.close()

    def stopped(self, exc: BaseException, step: int) -> None:
        """After a failure at ``step``: remove a fresh run that has no checkpoint, or say how to continue.

        The message of a geop2p error gets one sentence more (what was removed, or ``--resume``); a write
        error already says it. A failure before the folder was the run's (``--overwrite`` refused under the
        lock) touches nothing.
        """
        with contextlib.suppress(Exception):
            self.close_events()
        if not self._started:
            return
        self._removed = self.checkpoint_step is None
        if self._removed:
            with contextlib.suppress(OSError):
                self.folder.remove_written(TrainConfig)
            note = "Training stopped before its first checkpoint; what it had written was removed."
        else:
            note = (f"'{self.folder.root}' keeps the checkpoint of step {self.checkpoint_step}: fix the cause and "
                    "continue with --resume.")
        if isinstance(exc, WriteError):
            exc.args = (one_line(exc),)
        elif isinstance(exc, Geop2pError):
            exc.args = (f"{one_line(exc).rstrip()} {note}",)
        elif isinstance(exc, KeyboardInterrupt) and not self._removed:
            logger.warning("Stopped at step %d; the checkpoint of step %d is kept: continue with --resume.",
                           step, self.checkpoint_step)

    def release(self) -> None:
        """Give up the lock; remove the folders the run made if its failure removed what it wrote."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._removed:
            self._remove_made()
