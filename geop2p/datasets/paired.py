"""Paired folders of rasters (SEN12MS- and SEN1-2-style patch sets) as a dataset of one split.

Layouts::

    patches/                    patches/
      A/x.tif  A/y.tif ...        train/A/x.tif ...  train/B/x.tif ...
      B/x.tif  B/y.tif ...        val/A/...          val/B/...
                                  test/A/...         test/B/...

``A/`` may be called ``input/`` and ``B/`` ``target/``.  Files pair by name
(their stem: ``A/x.tif`` with ``B/x.tif``, or ``B/x.png``); anything GDAL
reads will do (GeoTIFF, PNG, JPEG...).  Every chip has the same size and
bands, checked when a split is opened.  Without ``train/val/test``
sub-folders a pair goes to a split by the hash of its name (like ArcGIS's
``crc32(name) % 100``): ``val`` below ``val_percent``, ``test`` below
``val_percent + test_percent``, ``train`` above; neighbouring patches of one
scene then leak between splits, and a warning says so.  Band statistics are
streamed over the train pairs on first use.

Example:
    >>> name_hash_split("ROIs1158_spring_p30", val_percent=10, test_percent=10)
    'val'
    >>> ds = PairedFoldersDataset("patches/", split="val")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import Item, PairedChipDataset, check_split
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import CONFIG_NAME, MANIFEST_NAME, ChipSide
from geop2p.grid import GeoGrid
from geop2p.io.read import open_raster
from geop2p.normalize import Normalizer
from geop2p.split import SPLITS

__all__ = ["LAYOUT", "RASTER_SUFFIXES", "PairedFoldersDataset", "is_paired_folders", "name_hash_split"]

logger = logging.getLogger(__name__)

#: raster files read in ``A/`` and ``B/`` (other files, such as ``.aux.xml`` sidecars, are ignored)
RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".vrt", ".bmp")
#: the layout in words, for error messages
LAYOUT = ("paired folders (A/ or input/ and B/ or target/ holding rasters with matching names, "
          "optionally under train/, val/, test/)")
_INPUT_DIRS = ("A", "input")
_TARGET_DIRS = ("B", "target")
_WARNED: set[Path] = set()  # folders whose leakage warning was given


def name_hash_split(name: str, val_percent: int = 10, test_percent: int = 10, seed: int = 0) -> str:
    """The split of a pair by the hash of its name: ``crc32(name, seed) % 100`` against the percentages.

    Stable across runs, machines and the other files of the folder; ``seed`` 0 is ArcGIS's ``crc32(name)``.

    Example:
        >>> [name_hash_split(n, 30, 30) for n in ("a", "b", "c", "d")]
        ['val', 'train', 'test', 'test']
    """
    h = zlib.crc32(name.encode("utf-8"), seed) % 100
    return "val" if h < val_percent else "test" if h < val_percent + test_percent else "train"


def _side_dir(base: Path, names: tuple[str, ...]) -> Path | None:
    found = [base / n for n in names if (base / n).is_dir()]
    if len(found) > 1:
        raise ChipFolderError(f"'{base}' has both {found[0].name}/ and {found[1].name}/; keep one of them "
                              f"({' or '.join(names)}) for that side of the pairs.")
    return found[0] if found else None


def _split_dirs(root: Path) -> dict[str, Path] | None:
    """``{split: folder holding A/ and B/}`` of the layout with sub-folders, ``{"*": root}`` without, or None."""
    if (root / MANIFEST_NAME).is_file() or (root / CONFIG_NAME).is_file():
        return None  # a geop2p chip folder (finished or not) also has input/ and target/
    if _side_dir(root, _INPUT_DIRS) or _side_dir(root, _TARGET_DIRS):
        return {"*": root}
    found = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if any(_side_dir(d, _INPUT_DIRS) or _side_dir(d, _TARGET_DIRS) for d in found.values()):
        return found
    return None


def is_paired_folders(root: str | os.PathLike) -> bool:
    """True when ``root`` (or its ``train/``, ``val/``, ``test/``) holds ``A/`` or ``input/`` and ``B/`` or ``target/``.

    Example:
        >>> is_paired_folders("/nonexistent")
        False
    """
    try:
        return _split_dirs(Path(root)) is not None
    except ChipFolderError:
        return True  # the layout, with a problem the dataset reports


@dataclass(frozen=True)
class _Header:
    """What a raster file's header says (no pixels read)."""

    path: Path
    count: int
    dtype: str
    height: int
    width: int
    nodata: float | None
    descriptions: tuple[str | None, ...]
    crs: str | None
    res: tuple[float, float] | None

    @classmethod
    def read(cls, path: Path) -> "_Header":
        with open_raster(path) as src:
            grid = GeoGrid.from_dataset(src)
            return cls(path, src.count, src.dtypes[0], src.height, src.width, src.nodata, tuple(src.descriptions),
                       grid.crs.to_string() if grid.is_georeferenced else None,
                       grid.res if grid.is_georeferenced else None)


class PairedFoldersDataset(PairedChipDataset):
    """One split of paired folders of rasters (``A/`` → ``B/``; see the module for the layouts).

    Args:
        folder: the folder holding ``A/`` and ``B/`` (or ``train/A``, ``train/B``, ...).
        split: ``train``, ``val``, ``test`` or ``all``.
        augment: a :class:`PairAugment`, True (flips + rotations) or False/None.
        input_normalizer: maps input values to [-1, 1]; default: percentile scaling from the train statistics.
        target_normalizer: same for the target.
        seed: seeds augmentation together with the epoch and item index.
        val_percent: without split sub-folders, the percentage of names hashed into ``val``.
        test_percent: same for ``test``.
        split_seed: seeds the name hash (0: ArcGIS's ``crc32(name)``); independent of ``seed``.

    Raises:
        ConfigError: percentages out of range.
        ChipFolderError: not this layout, an empty folder, a file without its partner, or chips whose size,
            band count or data type differs from the first pair's (naming the first offending file).
    """

    format_name = "paired-folders"

    def __init__(
        self,
        folder: str | os.PathLike,
        split: str = "train",
        augment: PairAugment | bool | None = None,
        input_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        seed: int = 0,
        val_percent: int = 10,
        test_percent: int = 10,
        split_seed: int = 0,
    ) -> None:
        check_split(split)
        val_percent, test_percent, split_seed = int(val_percent), int(test_percent), int(split_seed)
        if val_percent < 0 or test_percent < 0 or val_percent + test_percent >= 100:
            raise ConfigError(f"val_percent and test_percent must be at least 0 and leave some train pairs; got "
                              f"{val_percent} and {test_percent} (e.g. 10 and 10).")
        if not 0 <= split_seed < 2**32:
            raise ConfigError(f"split_seed must be between 0 and 2**32 - 1; got {split_seed}.")
        root = Path(folder)
        dirs = _split_dirs(root) if root.is_dir() else None
        if dirs is None:
            raise ChipFolderError(f"'{root}' is not {LAYOUT}; see docs/formats.md or pass another --format.")
        self.root, self.split = root, split
        self.val_percent, self.test_percent, self.split_seed = val_percent, test_percent, split_seed
        self.hashed = "*" in dirs
        self._by_split: dict[str, list[Item]] = {s: [] for s in SPLITS}
        if self.hashed:
            for item in _pairs(root):
                self._by_split[name_hash_split(item[0], val_percent, test_percent, split_seed)].append(item)
            if root.resolve() not in _WARNED:
                _WARNED.add(root.resolve())
                logger.warning(
                    "'%s' has no train/val/test sub-folders: pairs are split by name hash (val %d %%, test %d %%); "
                    "neighbouring patches leak between the splits, so scores are optimistic. For honest scores "
                    "export a spatial split with geop2p export-chips.", root, val_percent, test_percent)
        else:
            for s, d in dirs.items():
                self._by_split[s] = _pairs(d)
        wanted = SPLITS if split == "all" else (split,)
        self.items = sorted((it for s in wanted for it in self._by_split[s]), key=lambda it: it[0])
        reference = next(it for s in SPLITS for it in self._by_split[s])
        self._describe(reference, self.items)
        digest = hashlib.sha256(repr(self.preprocess).encode())
        for s in SPLITS:
            for cid, a, b in self._by_split[s]:
                digest.update(f"{s}\t{a.name}\t{a.stat().st_size}\t{b.name}\t{b.stat().st_size}\n".encode())
        self.source_sha256 = digest.hexdigest()
        self._setup(augment, input_normalizer, target_normalizer, seed)

    def _describe(self, reference: Item, items: list[Item]) -> None:
        """Fill the sides, chip size and grid from the first pair, checking every pair of ``items`` against it."""
        ref_in, ref_tg = _Header.read(reference[1]), _Header.read(reference[2])
        if ref_in.height != ref_in.width:
            raise ChipFolderError(f"'{ref_in.path}' is {ref_in.height}×{ref_in.width} px; chips must be square "
                                  "(cut the patches square, e.g. with geop2p export-chips).")
        crs, res = {ref_in.crs}, {ref_in.res}
        for _, a, b in items:
            h_in = ref_in if a == ref_in.path else _Header.read(a)
            h_tg = ref_tg if b == ref_tg.path else _Header.read(b)
            for h, ref, side in ((h_in, ref_in, "input"), (h_tg, ref_tg, "target")):
                if h.count != ref.count or h.dtype != ref.dtype:
                    raise ChipFolderError(
                        f"'{h.path}' has {h.count} {h.dtype} band(s) but '{ref.path}' has {ref.count} {ref.dtype}; "
                        f"every {side} raster must have the same bands and data type.")
            if (h_in.height, h_in.width) != (ref_in.height, ref_in.width):
                raise ChipFolderError(
                    f"'{h_in.path}' is {h_in.height}×{h_in.width} px but '{ref_in.path}' is {ref_in.height}×"
                    f"{ref_in.width}; all chips must have the same size.")
            if (h_tg.height, h_tg.width) != (h_in.height, h_in.width):
                raise ChipFolderError(
                    f"'{h_tg.path}' is {h_tg.height}×{h_tg.width} px but its partner '{h_in.path}' is "
                    f"{h_in.height}×{h_in.width}; a pair must share one grid.")
            crs.add(h_in.crs)
            res.add(h_in.res)
        self.input_info = ChipSide(tuple(range(1, ref_in.count + 1)), _names(ref_in.descriptions), ref_in.dtype,
                                   ref_in.nodata)
        self.target_info = ChipSide(tuple(range(1, ref_tg.count + 1)), _names(ref_tg.descriptions), ref_tg.dtype,
                                    ref_tg.nodata)
        self.chip_size = ref_in.height
        # one grid for the bundle only where every chip of the split shares it (SEN12MS spans UTM zones)
        self.crs = ref_in.crs if len(crs) == 1 else None
        self.pixel_size = ref_in.res if len(res) == 1 and self.crs is not None else None

    @property
    def preprocess(self) -> dict[str, Any]:
        """``{"layout": "paired-folders", "split": "folders"}``, or the name-hash split's settings."""
        if not self.hashed:
            return {"layout": self.format_name, "split": "folders"}
        return {"layout": self.format_name, "split": "name-hash", "val_percent": self.val_percent,
                "test_percent": self.test_percent, "split_seed": self.split_seed}

    @property
    def train_items(self) -> list[Item]:
        """The train pairs."""
        return self._by_split["train"]

    def all_chip_ids(self) -> list[str]:
        """The names of every pair, all splits."""
        return [cid for s in SPLITS for cid, _, _ in self._by_split[s]]


def _rasters(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in RASTER_SUFFIXES:
            continue
        if p.stem in out:
            raise ChipFolderError(f"'{out[p.stem]}' and '{p}' share the name '{p.stem}'; pairs are matched by name, "
                                  "so names must be unique in a folder: rename or remove one.")
        out[p.stem] = p
    return out


def _pairs(base: Path) -> list[Item]:
    """The pairs of ``base/A`` (or ``input``) and ``base/B`` (or ``target``), sorted by name."""
    in_dir, tg_dir = _side_dir(base, _INPUT_DIRS), _side_dir(base, _TARGET_DIRS)
    for d, names in ((in_dir, _INPUT_DIRS), (tg_dir, _TARGET_DIRS)):
        if d is None:
            raise ChipFolderError(f"'{base}' has no {' or '.join(n + '/' for n in names)} folder; expected {LAYOUT}.")
    inputs, targets = _rasters(in_dir), _rasters(tg_dir)
    for d, files in ((in_dir, inputs), (tg_dir, targets)):
        if not files:
            raise ChipFolderError(f"'{d}' holds no rasters ({', '.join(RASTER_SUFFIXES)}); expected {LAYOUT}.")
    unpaired = sorted(set(inputs) ^ set(targets))
    if unpaired:
        stem = unpaired[0]
        have, other = (inputs[stem], tg_dir) if stem in inputs else (targets[stem], in_dir)
        raise ChipFolderError(f"'{have}' has no partner: expected '{other / stem}.*' with the same name "
                              f"({len(unpaired)} file(s) unpaired); every file in {in_dir.name}/ needs one in "
                              f"{tg_dir.name}/.")
    return [(stem, inputs[stem], targets[stem]) for stem in sorted(inputs)]


def _names(descriptions: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(d if d else f"band_{i}" for i, d in enumerate(descriptions, start=1))
