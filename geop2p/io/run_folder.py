"""A training run folder: where each file lives, what geop2p wrote there, the checks before writing, ``config.yaml``
and ``metrics.csv``.

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
      .geop2p-lock             while a run writes here

``--overwrite`` removes only these files (and the hidden partial files geop2p
writes before renaming them), and only from a folder whose ``config.yaml`` is a
training config: :meth:`RunFolder.owned` is the :class:`~geop2p.io.owned_folder.OwnedFolder`
built from the run's own records.  Anything else in the folder (``thesis.docx``,
``photos/``, the chips) is refused, named, and nothing is deleted.

Example:
    >>> folder = RunFolder("runs/a")
    >>> folder.checkpoint_path.as_posix(), folder.sample_path(3).name
    ('runs/a/checkpoints/last.pt', 'epoch_004.png')
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping, Sequence

from geop2p.errors import ConfigError, Geop2pError, OutputExistsError, WriteError
from geop2p.io.atomic import atomic_path, sweep_partials, writing
from geop2p.io.bundle_file import read_bundle_header
from geop2p.io.lock import LOCK_NAME, FolderLock
from geop2p.io.owned_folder import OwnedFolder
from geop2p.schema import ConfigSchema

__all__ = ["RunFolder", "read_history", "write_history"]

#: the sub-folders a run makes
_SUBFOLDERS = ("checkpoints", "samples", "tensorboard")
#: the first columns of metrics.csv (train/run.py writes every row in this order)
_HISTORY_HEAD = "epoch,step,"


def _partial(stem: str, suffix: str) -> re.Pattern:
    """The names :func:`~geop2p.io.atomic.temporary_sibling` gives a file's partials (with or without a pid)."""
    return re.compile(rf"\.{re.escape(stem)}\.partial-(\d+-)?[0-9a-f]+{re.escape(suffix)}")


_SAMPLE = re.compile(r"epoch_\d{3,}\.png")
_SAMPLE_PARTIAL = re.compile(r"\.(epoch_\d{3,})\.partial-(\d+-)?[0-9a-f]+\.png")
_EVENTS = re.compile(r"events\.out\.tfevents\..+")
_ROOT_PARTIALS = (_partial("config", ".yaml"), _partial("metrics", ".csv"), _partial("model", ".safetensors"))
_CHECKPOINT_PARTIAL = _partial("last", ".pt")


def _starts_with(path: Path, head: bytes) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(head)) == head
    except OSError:
        return False


def _is_bundle(path: Path) -> bool:
    try:
        read_bundle_header(path)
    except (Geop2pError, OSError):
        return False
    return True


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

    # ------------------------------------------------------------------ what geop2p wrote here
    def is_run(self, config_type: type[ConfigSchema]) -> bool:
        """True when ``config.yaml`` exists and is a valid ``config_type`` (the mark of a run folder)."""
        if not self.config_path.is_file() or self.config_path.is_symlink():
            return False
        try:
            config_type.from_yaml(self.config_path)
        except (Geop2pError, OSError, ValueError, TypeError):
            return False
        return True

    def owned(self, config_type: type[ConfigSchema]) -> OwnedFolder:
        """The folder with the test of what a run wrote, from the run's own records.

        Nothing is a run's unless ``config.yaml`` is a ``config_type`` (the lock file excepted); then
        the run's files are ``config.yaml``, ``metrics.csv`` (with the run's columns),
        ``model.safetensors`` (a geop2p bundle), ``checkpoints/last.pt`` (a torch zip),
        ``samples/epoch_NNN.png``, ``tensorboard/events.out.tfevents.*``, the lock, the three
        sub-folders, and the hidden partial files of each.

        Example:
            >>> import tempfile
            >>> from dataclasses import dataclass
            >>> @dataclass(frozen=True)
            ... class Config(ConfigSchema):
            ...     epochs: int = 1
            >>> with tempfile.TemporaryDirectory() as d:
            ...     folder = RunFolder(d)
            ...     _ = folder.write_config(Config())
            ...     _ = (folder.root / "thesis.docx").write_text("mine")
            ...     [p.name for p in folder.owned(Config).foreign()], [p.name for p in folder.owned(Config).owned()]
            (['thesis.docx'], ['config.yaml'])
        """
        return OwnedFolder(self.root, "run folder", self._owned_test(self.is_run(config_type)))

    def _owned_test(self, is_run: bool) -> Callable[[PurePosixPath], bool]:
        root = self.root

        def owned(rel: PurePosixPath) -> bool:
            parts, path = rel.parts, root / rel
            if parts == (LOCK_NAME,):
                return path.is_file() and not path.is_symlink()
            if not is_run or path.is_symlink():
                return False
            if len(parts) == 1:
                name = parts[0]
                if name in _SUBFOLDERS:
                    return path.is_dir()
                if name == "config.yaml":
                    return True  # is_run read it
                if name == "metrics.csv":
                    return _starts_with(path, _HISTORY_HEAD.encode())
                if name == "model.safetensors":
                    return _is_bundle(path)
                return path.is_file() and any(p.fullmatch(name) for p in _ROOT_PARTIALS)
            if len(parts) != 2 or not path.is_file():
                return False
            folder, name = parts
            if folder == "checkpoints":
                return (name == "last.pt" and _starts_with(path, b"PK\x03\x04")) or bool(
                    _CHECKPOINT_PARTIAL.fullmatch(name))
            if folder == "samples":
                return bool(_SAMPLE.fullmatch(name) or _SAMPLE_PARTIAL.fullmatch(name))
            return folder == "tensorboard" and bool(_EVENTS.fullmatch(name))

        return owned

    # ------------------------------------------------------------------ checks before writing
    def check(self, chips_dir: str | os.PathLike, resume: bool, overwrite: bool,
              config_type: type[ConfigSchema]) -> None:
        """Raise unless the run may start here; writes nothing.

        A new run needs a missing or empty folder, or ``overwrite`` of a run folder (see :meth:`owned`)
        that does not hold the chips; ``resume`` needs ``checkpoints/last.pt``. Whether the folder can
        be written is found by :meth:`create` and the lock, the first writes, each one line when it fails.

        Raises:
            ConfigError: ``resume`` with ``overwrite``, or nothing to resume.
            OutputExistsError: the folder is a file or a broken link, holds files and neither flag was
                given, or ``overwrite`` would delete files geop2p did not write (or the chips).
        """
        if resume and overwrite:
            raise ConfigError(
                "--resume and --overwrite exclude each other: resume continues a run, overwrite replaces it."
            )
        self._check_place()
        run_dir = self.root
        stopped_early = not self.checkpoint_path.is_file() and self.is_run(config_type)
        if resume:
            if not self.checkpoint_path.is_file():
                if stopped_early:
                    raise ConfigError(
                        f"Nothing to resume: the run in '{run_dir}' stopped before its first checkpoint "
                        f"('{self.checkpoint_path}' does not exist). Start it again with --overwrite instead of "
                        "--resume."
                    )
                raise ConfigError(
                    f"Nothing to resume: '{self.checkpoint_path}' does not exist. Drop --resume to start a new run."
                )
        elif run_dir.is_dir() and any(run_dir.iterdir()):
            if not overwrite:
                if stopped_early:
                    raise OutputExistsError(
                        f"Run folder '{run_dir}' holds a run that stopped before its first checkpoint (nothing to "
                        "resume); pass --overwrite to start it again, or choose another --out."
                    )
                raise OutputExistsError(
                    f"Run folder '{run_dir}' exists and is not empty; pass --resume to continue it, --overwrite to "
                    "replace it, or choose another --out."
                )
            self.owned(config_type).check(protected=[chips_dir])

    def _check_place(self) -> None:
        """The folder is a folder (or missing), not a file, a broken link or under a file."""
        run_dir = self.root
        if run_dir.is_symlink() and not run_dir.exists():
            raise OutputExistsError(
                f"Run folder '{run_dir}' is a symbolic link to '{os.readlink(run_dir)}', which does not exist; "
                "create that folder, or give another --out."
            )
        if run_dir.exists() and not run_dir.is_dir():
            raise OutputExistsError(f"Run folder '{run_dir}' is a file; give a folder name for --out.")
        above = next((p for p in run_dir.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise OutputExistsError(f"'{above}' is a file, so run folder '{run_dir}' cannot be made in it; "
                                    "give another --out.")

    # ------------------------------------------------------------------ writing
    def create(self) -> list[Path]:
        """Make the folder (and missing parents); return the folders made, deepest first.

        Raises:
            WriteError: the folder cannot be made (one line).
        """
        made = [p for p in (self.root, *self.root.parents) if not p.exists()]
        with writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
        return made

    def lock(self) -> FolderLock:
        """The lock of this folder (take it for as long as a run writes here)."""
        return FolderLock(self.root, "training run")

    def prepare(self) -> None:
        """Create ``checkpoints/`` and ``samples/`` (the folder exists)."""
        for sub in (self.checkpoint_path.parent, self.samples_dir):
            with writing(sub):
                sub.mkdir(exist_ok=True)

    def clear(self, config_type: type[ConfigSchema], protected: Iterable[str | os.PathLike] = ()) -> int:
        """``--overwrite``: check the folder (see :meth:`owned`), then delete what a run wrote, the lock excepted.

        Returns:
            How many files were deleted.

        Raises:
            OutputExistsError: the folder holds ``protected`` paths or files geop2p did not write.
        """
        folder = self.owned(config_type)
        folder.check(protected)
        return self._delete(folder)

    def remove_written(self, config_type: type[ConfigSchema]) -> int:
        """Delete what a run wrote here (the lock excepted), leaving anything else: a failed fresh run's clean-up."""
        return self._delete(self.owned(config_type))

    def _delete(self, folder: OwnedFolder) -> int:
        return folder.delete_owned(keep=[self.root / LOCK_NAME])

    def sweep_partials(self) -> list[Path]:
        """Remove the partial files that dead processes (``kill -9``) left beside the run's files."""
        finals = [self.config_path, self.metrics_path, self.bundle_path, self.checkpoint_path]
        if self.samples_dir.is_dir():
            finals += sorted({self.samples_dir / f"{m.group(1)}.png" for p in self.samples_dir.iterdir()
                              if (m := _SAMPLE_PARTIAL.fullmatch(p.name))})
        return [p for final in finals for p in sweep_partials(final)]

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


def read_history(path: str | os.PathLike, until_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of a ``metrics.csv`` as dicts of strings (no file: no rows).

    Args:
        path: the file.
        until_step: drop the rows of later steps (what a run wrote after the checkpoint it resumes from).

    Example:
        >>> import tempfile
        >>> p = write_history(Path(tempfile.mkdtemp()) / "m.csv", [{"epoch": 1, "step": 2}, {"epoch": 2, "step": 4}])
        >>> [row["step"] for row in read_history(p, until_step=2)]
        ['2']
    """
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if until_step is None:
        return rows

    def keep(row: Mapping[str, Any]) -> bool:
        try:
            return int(row.get("step") or 0) <= until_step
        except ValueError:
            return True

    return [row for row in rows if keep(row)]
