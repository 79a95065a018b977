"""The chip folder an export writes into: what it holds, what ``--overwrite`` may remove, what ``--resume`` must match.

What geop2p wrote into a folder is read from the folder's own records
(:class:`FolderRecords`), never guessed from one file name:

* a complete export (a valid ``geop2p-chips.json``): the manifest, the index,
  ``export-config.yaml``, ``input/`` and ``target/`` and in them the chips
  that ``index.gpkg`` lists (with the sidecars viewers add to them:
  ``.aux.xml``, ``.ovr``, ``.msk``);
* an unfinished export (no manifest, but an ``export-config.yaml`` that is a
  geop2p export configuration: a mapping of export options plus ``sources``):
  the same fixed names, and in ``input/`` and ``target/`` the files named like
  chips (``000512_001024.tif``);
* in both, the temporary files geop2p's atomic writes leave in ``input/`` and
  ``target/`` when killed (``.000512_001024.partial-<pid>-<hex>.tif``);
* always: the folder's lock (``.geop2p-lock``) and the temporary files of the
  fixed names (``.index.partial-<pid>-<hex>.gpkg``...).

:func:`inspect_out_dir` checks OUT_DIR before anything is planned or written:
``--overwrite`` refuses (naming the file) a folder that holds the command's
inputs or anything else geop2p did not write, and ``--resume`` one that is not
an export.  A symbolic link to a folder is followed, with the same checks; the
link itself is never removed.

Example:
    >>> records = FolderRecords(manifest=None, config={"size": 32, "sources": {}}, chip_ids=None)
    >>> [records.is_owned(PurePosixPath(p)) for p in ("input/000000_000032.tif", "input/notes.txt", "thesis.docx")]
    [True, False, False]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import yaml

from geop2p.errors import ChipFolderError, ConfigError, Geop2pError, InputError, OutputExistsError, WriteError
from geop2p.export.config import ExportConfig
from geop2p.formats.chip_manifest import CONFIG_NAME, INDEX_NAME, MANIFEST_NAME, STATS_NAME, ChipManifest
from geop2p.io.chip_folder import read_chip_ids, read_manifest
from geop2p.io.lock import LOCK_NAME
from geop2p.io.owned_folder import OwnedFolder

__all__ = [
    "SIDES",
    "ExportFolder",
    "FolderRecords",
    "OutDir",
    "check_same_settings",
    "inspect_out_dir",
    "is_partial",
    "read_config_document",
    "read_records",
    "resolved_path",
]

#: the chip sub-folders
SIDES: tuple[str, str] = ("input", "target")
#: the files an export writes at the top of its folder
_FIXED = (MANIFEST_NAME, INDEX_NAME, CONFIG_NAME, STATS_NAME)
#: SQLite's companions of an open ``index.gpkg`` (QGIS leaves them while it has the index open)
_INDEX_COMPANIONS = tuple(INDEX_NAME + s for s in ("-wal", "-shm", "-journal"))
_ROOT_STEMS = frozenset(Path(n).stem for n in _FIXED)
_CHIP_STEM = re.compile(r"\d{6,}_\d{6,}")
_ANY_STEM = re.compile(r".+")
_CHIP_FILE = re.compile(r"(?P<stem>\d{6,}_\d{6,})\.tif(?:\.aux\.xml|\.ovr|\.msk)?")
# geop2p.io.atomic.temporary_sibling's names (with the pid since 0.2, without before), and their sidecars
_PARTIAL = re.compile(r"\.(?P<stem>.+?)\.partial-(?:\d+-)?[0-9a-f]{8}(?:\.[^/]*|-wal|-shm|-journal)?")


def is_partial(name: str, stem: re.Pattern | frozenset) -> bool:
    """True when ``name`` is a temporary file of an atomic write of a file whose stem is in ``stem``.

    Example:
        >>> is_partial(".000000_000032.partial-4242-0a1b2c3d.tif", _CHIP_STEM)
        True
        >>> is_partial(".index.partial-4242-0a1b2c3d.gpkg-wal", _ROOT_STEMS), is_partial("index.gpkg", _ROOT_STEMS)
        (True, False)
    """
    m = _PARTIAL.fullmatch(name)
    if m is None:
        return False
    if isinstance(stem, frozenset):
        return m["stem"] in stem
    return stem.fullmatch(m["stem"]) is not None


def resolved_path(path: str | os.PathLike) -> str:
    """The absolute path of ``path`` with symbolic links resolved (relative paths against the current folder).

    Example:
        >>> resolved_path("/data/./s2/../s1.tif")
        '/data/s1.tif'
    """
    return os.path.realpath(os.fspath(path))


def read_config_document(path: str | os.PathLike) -> dict[str, Any]:
    """The ``export-config.yaml`` at ``path``, checked to be geop2p's: a mapping of export options plus ``sources``.

    Raises:
        ConfigError: the file is unreadable, not YAML, or not an export configuration (says why).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = Path(d) / CONFIG_NAME
        ...     _ = p.write_text("size: 32\\nsources: {input: [a.tif], target: [b.tif]}\\n")
        ...     read_config_document(p)["size"]
        32
    """
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"its {p.name} is unreadable ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"its {p.name} is not a mapping of export options (got {type(doc).__name__})")
    sources = doc.get("sources")
    if not (isinstance(sources, dict) and all(isinstance(sources.get(k), list) for k in SIDES)):
        raise ConfigError(f"its {p.name} records no input and target sources")
    try:
        ExportConfig.from_dict({k: v for k, v in doc.items() if k != "sources"})
    except Geop2pError as exc:
        raise ConfigError(f"its {p.name} is not a geop2p export configuration ({exc})") from None
    return doc


@dataclass(frozen=True)
class FolderRecords:
    """What a folder's own records say geop2p wrote into it.

    Attributes:
        manifest: the manifest of a complete export, or ``None``.
        config: the ``export-config.yaml`` document when it is geop2p's, or ``None``.
        chip_ids: the chips ``index.gpkg`` lists (complete export), or ``None``: any name shaped like a chip id.
        config_problem: why ``config`` is ``None`` (for messages).
    """

    manifest: ChipManifest | None
    config: dict[str, Any] | None
    chip_ids: frozenset[str] | None
    config_problem: str = ""

    @property
    def is_export(self) -> bool:
        """True when the folder holds a geop2p export, finished or not."""
        return self.manifest is not None or self.config is not None

    @property
    def complete(self) -> bool:
        """True when the export finished (its manifest is there and valid)."""
        return self.manifest is not None

    def is_owned(self, rel: PurePosixPath) -> bool:
        """True when geop2p wrote ``rel`` (a path relative to the folder), by these records."""
        parts = rel.parts
        if len(parts) == 1:
            name = parts[0]
            if name == LOCK_NAME or is_partial(name, _ROOT_STEMS):
                return True
            return self.is_export and (name in _FIXED or name in SIDES or name in _INDEX_COMPANIONS)
        if len(parts) == 2 and parts[0] in SIDES and self.is_export:
            name = parts[1]
            chip = _CHIP_FILE.fullmatch(name)
            if chip is not None:
                return self.chip_ids is None or chip["stem"] in self.chip_ids
            return is_partial(name, _ANY_STEM)
        return False


def read_records(root: str | os.PathLike) -> FolderRecords:
    """Read a folder's records: its manifest, its ``export-config.yaml`` and the chip ids of its index.

    Example:
        >>> read_records("chips").complete  # doctest: +SKIP
        True
    """
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except ChipFolderError:
        manifest = None
    config, problem = None, ""
    if (root / CONFIG_NAME).is_file():
        try:
            config = read_config_document(root / CONFIG_NAME)
        except ConfigError as exc:
            problem = str(exc)
    else:
        problem = f"it has no {CONFIG_NAME}, so it is not a chip export"
    chip_ids = None
    if manifest is not None:
        try:
            chip_ids = frozenset(read_chip_ids(root))
        except ChipFolderError:
            chip_ids = None
    return FolderRecords(manifest, config, chip_ids, problem)


class ExportFolder(OwnedFolder):
    """A chip folder as an :class:`~geop2p.io.owned_folder.OwnedFolder`: its removal keeps the lock this export holds.

    Args:
        root: the folder.
        records: its :class:`FolderRecords`.
    """

    def __init__(self, root: str | os.PathLike, records: FolderRecords) -> None:
        super().__init__(root, "chip folder", records.is_owned)
        self.records = records

    def owned(self) -> list[Path]:
        """The files geop2p wrote, less the lock (which its holder removes when it is done)."""
        lock = self.root / LOCK_NAME
        return [p for p in super().owned() if p != lock]


@dataclass(frozen=True)
class OutDir:
    """OUT_DIR as found before the export: whether it exists, and what its records say.

    Attributes:
        path: OUT_DIR as given.
        records: its records, or ``None`` when it does not exist.
    """

    path: Path
    records: FolderRecords | None

    @property
    def exists(self) -> bool:
        """True when OUT_DIR is an existing folder (or a link to one)."""
        return self.records is not None

    @property
    def complete(self) -> bool:
        """True when OUT_DIR holds a complete export."""
        return self.records is not None and self.records.complete

    def folder(self) -> ExportFolder:
        """OUT_DIR as an :class:`ExportFolder` (re-reading its records)."""
        return ExportFolder(self.path, read_records(self.path))


def _check_can_create(out: Path) -> None:
    """Raise unless a folder can be created at ``out``: its nearest existing parent is a writable folder."""
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputExistsError(f"Cannot create the output folder '{out}': '{parent}' is a file, not a folder; "
                                "choose another OUT_DIR.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"Cannot create the output folder '{out}': '{parent}' is not writable; "
                         "choose a folder you can write to.")


def inspect_out_dir(out: Path, overwrite: bool, resume: bool, protected: Iterable[str | os.PathLike] = ()) -> OutDir:
    """Check OUT_DIR against ``--overwrite`` / ``--resume`` before anything is planned or written.

    Args:
        out: OUT_DIR.
        overwrite: ``--overwrite`` was given.
        resume: ``--resume`` was given.
        protected: the command's inputs (rasters, AOI): ``--overwrite`` never touches a folder holding them.

    Raises:
        InputError: both flags, or ``--resume`` into a folder that is not an export.
        OutputExistsError: OUT_DIR is a file, a dangling link, an existing folder without a flag, or (with
            ``--overwrite``) a folder holding the inputs or files geop2p did not write (named).
        WriteError: OUT_DIR cannot be created.

    Example:
        >>> inspect_out_dir(Path("/nonexistent-parent/chips"), False, False).exists  # doctest: +SKIP
        False
    """
    if overwrite and resume:
        raise InputError("--overwrite and --resume exclude each other: --resume completes an export, "
                         "--overwrite starts it again; give one of them.")
    if out.is_symlink() and not out.exists():
        raise OutputExistsError(f"Output '{out}' is a symbolic link to '{os.readlink(out)}', which does not exist; "
                                "create that folder, or remove the link.")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"Output '{out}' is a file; expected a folder name for the chips (choose another OUT_DIR).")
    if not out.exists():
        _check_can_create(out)
        return OutDir(out, None)
    records = read_records(out)
    state = OutDir(out, records)
    if resume:
        if records.config is None and ExportFolder(out, records).foreign():
            raise InputError(f"Cannot resume into '{out}': {records.config_problem}; "
                             "use --overwrite to start again, or choose another OUT_DIR.")
        return state
    if overwrite:
        ExportFolder(out, records).check(protected)
        return state
    raise OutputExistsError(
        f"Output folder '{out}' already exists; choose another folder, pass --overwrite to replace it, "
        "or --resume to finish an interrupted export."
    )


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its source and AOI paths resolved (older exports recorded them relative to the current folder)."""
    out = dict(doc)
    sources = doc.get("sources")
    if isinstance(sources, dict):
        out["sources"] = {k: [resolved_path(p) for p in v] if isinstance(v, list) else v for k, v in sources.items()}
    if isinstance(doc.get("aoi"), str):
        out["aoi"] = resolved_path(doc["aoi"])
    return out


def check_same_settings(out: Path, previous: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise unless ``current`` (this run's ``export-config.yaml`` document) matches ``previous`` (the folder's).

    Paths compare resolved, so ``s1.tif``, ``./s1.tif`` and ``/data/s1.tif`` name the same raster.

    Raises:
        ConfigError: naming each setting that differs, then and now.

    Example:
        >>> check_same_settings(Path("chips"), {"size": 32}, {"size": 64})
        Traceback (most recent call last):
        ...
        geop2p.errors.ConfigError: Cannot resume into 'chips' with different settings (size: 32 then, 64 now); use the same options, or --overwrite to start again.
    """
    before, now = _comparable(previous), _comparable(current)
    diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if diff:
        detail = "; ".join(f"{k}: {before.get(k)!r} then, {now.get(k)!r} now" for k in diff)
        raise ConfigError(
            f"Cannot resume into '{out}' with different settings ({detail}); "
            "use the same options, or --overwrite to start again."
        )
