"""A training run folder: where each file lives, the checks before writing, ``config.yaml`` and ``metrics.csv``.

No torch here: the checkpoint's ``torch.save`` is :mod:`geop2p.train.checkpoint`'s,
the bundle's tensors are :mod:`geop2p.models.bundle`'s.  This module knows the
layout (docs/formats.md) and writes the plain-text files::

    RUN_DIR/
      config.yaml              the resolved training config
      metrics.csv              one row per validation
      tensorboard/             TensorBoard events
      samples/epoch_NNN.png    sample grids
      checkpoints/last.pt      what --resume needs
      model.safetensors        the best epoch's bundle

Example:
    >>> folder = RunFolder("runs/a")
    >>> folder.checkpoint_path.as_posix(), folder.sample_path(3).name
    ('runs/a/checkpoints/last.pt', 'epoch_004.png')
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from geop2p.errors import ConfigError, OutputExistsError
from geop2p.io.atomic import atomic_path
from geop2p.schema import ConfigSchema

__all__ = ["RunFolder", "read_history", "write_history"]


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder, and the rules for creating, replacing or resuming it.

    Attributes:
        root: the run folder (``--out``); a string is turned into a Path.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config_path(self) -> Path:
        """``config.yaml``: the resolved config."""
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        """``metrics.csv``: one row per validation."""
        return self.root / "metrics.csv"

    @property
    def checkpoint_path(self) -> Path:
        """``checkpoints/last.pt``: what ``--resume`` reads."""
        return self.root / "checkpoints" / "last.pt"

    @property
    def samples_dir(self) -> Path:
        """``samples/``: the sample grids."""
        return self.root / "samples"

    @property
    def tensorboard_dir(self) -> Path:
        """``tensorboard/``: TensorBoard events."""
        return self.root / "tensorboard"

    @property
    def bundle_path(self) -> Path:
        """``model.safetensors``: the best epoch's bundle."""
        return self.root / "model.safetensors"

    def sample_path(self, epoch: int) -> Path:
        """The sample grid of the 0-based ``epoch`` (file names count from 1)."""
        return self.samples_dir / f"epoch_{epoch + 1:03d}.png"

    def check(self, chips_dir: str | os.PathLike, resume: bool, overwrite: bool) -> None:
        """Raise unless the run may start here: resume needs a checkpoint, a new run an empty folder or ``overwrite``.

        Raises:
            ConfigError: ``resume`` with ``overwrite``, nothing to resume, or an overwrite that would delete
                the chips.
            OutputExistsError: the folder is a file, or holds files and neither flag was given.
        """
        run_dir = self.root
        if resume and overwrite:
            raise ConfigError(
                "--resume and --overwrite exclude each other: resume continues a run, overwrite replaces it."
            )
        if resume:
            if not self.checkpoint_path.is_file():
                raise ConfigError(
                    f"Nothing to resume: '{self.checkpoint_path}' does not exist. Drop --resume to start a new run."
                )
            return
        if run_dir.exists() and not run_dir.is_dir():
            raise OutputExistsError(f"Run folder '{run_dir}' is a file; give a folder name for --out.")
        if run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
            raise OutputExistsError(
                f"Run folder '{run_dir}' exists and is not empty; pass --resume to continue it, --overwrite to "
                "replace it, or choose another --out."
            )
        if overwrite and run_dir.is_dir():
            chips, run = Path(chips_dir).resolve(), run_dir.resolve()
            if chips == run or run in chips.parents:
                raise ConfigError(
                    f"--overwrite would delete '{run_dir}', which holds the chips '{chips_dir}'; choose another --out."
                )

    def prepare(self, clear: bool) -> None:
        """Create the folder and its ``checkpoints/`` and ``samples/`` (``clear``: delete what was there first)."""
        if clear and self.root.is_dir():
            shutil.rmtree(self.root)
        (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.samples_dir.mkdir(exist_ok=True)

    def write_config(self, config: ConfigSchema) -> Path:
        """Write ``config`` as ``config.yaml`` (atomically, replacing an older one)."""
        with atomic_path(self.config_path, overwrite=True) as tmp:
            tmp.write_text(config.to_yaml())
        return self.config_path


def write_history(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as CSV, atomically: the columns are every row's keys in first-seen order; None is empty.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> _ = write_history(p, [{"epoch": 1, "val_mae": 2.5}, {"epoch": 2, "val_mae": None, "is_best": 0}])
        >>> print(p.read_text(), end="")
        epoch,val_mae,is_best
        1,2.5,
        2,,0
        >>> read_history(p)[1]
        {'epoch': '2', 'val_mae': '', 'is_best': '0'}
    """
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.csv`` as dicts of strings (no file: no rows)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
