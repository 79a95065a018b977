"""Several dataset folders (of any registered formats) trained on as one.

``open_chip_dataset(["chips_a/", "chips_b/"], split="train")`` opens each
folder and joins them in a :class:`MultiFolderDataset`:

* the folders must agree on the input band count, the target band count, the
  data type kind (unsigned / signed integer / float) of each side and the chip
  size; the first one that does not is named with what it has and what was
  expected;
* chip ids stay unique across the folders, and items are sorted by chip id, as
  one geop2p chip folder orders them: training on two folders is training on
  one folder holding both (same items, same augmentation, same batches);
* statistics are merged exactly: each folder's mergeable state (its
  ``statistics.npz``, or a stream over its train pairs where it has none) is
  added in folder order to one :class:`~geop2p.stats.StatsAccumulator` —
  percentiles are never averaged.  A folder exported later joins without
  re-exporting the others.

Example:
    >>> ds = open_chip_dataset(["chips_2023/", "chips_2024/"], split="train")  # doctest: +SKIP
    >>> ds.chip_ids[:2], ds.stats["input"]["bands"][0]["count"]  # doctest: +SKIP
    (['t31_000000_000000', 't32_000000_000000'], 1310720)
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import SIDES, Item, PairedChipDataset, stats_from_state
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import ChipSide
from geop2p.normalize import Normalizer
from geop2p.stats import StatsAccumulator, StatsPartial

__all__ = ["MultiFolderDataset", "dtype_kind"]

logger = logging.getLogger(__name__)

_KINDS = {"u": "unsigned integer", "i": "signed integer", "f": "float", "b": "boolean", "c": "complex"}


def dtype_kind(dtype: str) -> str:
    """The kind of a data type in words: what folders trained together must share.

    Example:
        >>> dtype_kind("uint8"), dtype_kind("uint16"), dtype_kind("float32")
        ('unsigned integer', 'unsigned integer', 'float')
    """
    return _KINDS.get(np.dtype(dtype).kind, np.dtype(dtype).kind)


class MultiFolderDataset(PairedChipDataset):
    """The union of one split of several dataset folders, ordered by chip id.

    Build it with :func:`~geop2p.datasets.registry.open_chip_dataset` given a list of folders, or from
    datasets opened on one split without augmentation.

    Args:
        members: the folders' datasets, all of one split, in folder order (which orders the statistics merge).
        augment: a :class:`PairAugment`, True (flips + rotations) or False/None, drawn from
            ``(seed, epoch, index)`` of the union.
        input_normalizer: maps input values to [-1, 1]; default: percentile scaling from the merged
            statistics (or the members' fixed normalizers where they all share them: pix2pix folders).
        target_normalizer: same for the target.
        seed: seeds augmentation (and pix2pix random crops) together with the epoch and item index.

    Raises:
        ConfigError: no members, members of different splits, augmented members, a folder given twice.
        ChipFolderError: a folder whose bands, data type kind or chip size differ from the first folder's,
            or a chip id held by two folders.
    """

    format_name = "multi-folder"

    def __init__(
        self,
        members: Sequence[PairedChipDataset],
        augment: PairAugment | bool | None = None,
        input_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        seed: int = 0,
    ) -> None:
        members = list(members)
        if not members:
            raise ConfigError("A dataset of several folders needs at least one folder.")
        first = members[0]
        seen: dict[Path, PairedChipDataset] = {}
        for m in members:
            if m.split != first.split:
                raise ConfigError(f"{m.label} is opened on the {m.split} split but {first.label} on "
                                  f"{first.split}; open every folder on one split.")
            if m.augment is not None:
                raise ConfigError(f"{m.label} is opened with augmentation; augment the union instead.")
            where = Path(m.root).resolve()
            if where in seen:
                raise ConfigError(f"{m.label} is given twice; give each folder once.")
            seen[where] = m
            _check_agrees(m, first)
        self.members = members
        self.folders = tuple(Path(m.root) for m in members)
        self.root = self.folders[0]
        self.split = first.split
        _check_unique_ids(members)
        order = sorted(((cid, mi, j) for mi, m in enumerate(members) for j, (cid, _, _) in enumerate(m.items)),
                       key=lambda e: e[0])
        self.items = [members[mi].items[j] for _, mi, j in order]
        self._where = [(mi, j) for _, mi, j in order]
        self.input_info = _union_side(members, "input_info", "input")
        self.target_info = _union_side(members, "target_info", "target")
        self.chip_size = first.chip_size
        grids = {(m.crs, tuple(m.pixel_size) if m.pixel_size else None) for m in members}
        if len(grids) == 1:
            self.crs, self.pixel_size = first.crs, first.pixel_size
        else:
            logger.info("The folders have different CRSs or pixel sizes; the model records none.")
            self.crs, self.pixel_size = None, None
        fixed = [m.fixed_normalizers for m in members]
        self.fixed_normalizers = fixed[0] if fixed[0] is not None and all(f == fixed[0] for f in fixed) else None
        self.source_sha256 = hashlib.sha256("\n".join(sorted(m.source_sha256 for m in members)).encode()).hexdigest()
        self._setup(augment, input_normalizer, target_normalizer, seed)

    @property
    def label(self) -> str:
        """The folders, for messages."""
        return ", ".join(m.label for m in self.members)

    @property
    def preprocess(self) -> dict[str, Any]:
        """The members' preprocessing when they all share it (two pix2pix folders), else every folder's."""
        each = [m.preprocess for m in self.members]
        if all(p == each[0] for p in each):
            return each[0]
        return {"layout": self.format_name, "folders": each}

    def all_chip_ids(self) -> list[str]:
        """Every chip id of every folder."""
        return [cid for m in self.members for cid in m.all_chip_ids()]

    @property
    def train_items(self) -> list[Item]:
        """The train items of every folder, in folder order."""
        return [it for m in self.members for it in m.train_items]

    def stats_state(self, dtypes: tuple[str, str] | None = None) -> dict[str, StatsPartial]:
        """The members' states (their ``statistics.npz``, or streamed over their train pairs) merged in folder
        order, with the union's data types (the widest of each kind)."""
        dtypes = tuple(dtypes or (self.input_info.dtype, self.target_info.dtype))
        accs = {side: StatsAccumulator(dt, info.band_names)
                for side, dt, info in zip(SIDES, dtypes, (self.input_info, self.target_info))}
        for m in self.members:
            state = m.stats_state(dtypes)
            for side in SIDES:
                accs[side].add(state[side])
        return {side: acc.to_partial() for side, acc in accs.items()}

    @functools.cached_property
    def stats(self) -> dict[str, dict]:
        """The statistics of every folder's train pairs together, merged exactly (computed on first use)."""
        return stats_from_state(self.stats_state(), {"input": self.input_info, "target": self.target_info})

    def _set_normalizers(self, input_normalizer: Normalizer | None, target_normalizer: Normalizer | None) -> None:
        super()._set_normalizers(input_normalizer, target_normalizer)
        for m in getattr(self, "members", ()):  # the members normalise as the union does (and pickle cheaply)
            m._set_normalizers(input_normalizer, target_normalizer)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds augmentation and random crops (of every folder)."""
        super().set_epoch(epoch)
        for m in self.members:
            m.set_epoch(epoch)

    def read_raw(
        self, index: int, draw_key: tuple[int, int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``index`` read by its folder, random preprocessing drawn from the union's ``(seed, epoch, index)``."""
        mi, j = self._where[index]
        return self.members[mi].read_raw(j, draw_key if draw_key is not None else (self.seed, self.epoch, index))


def _check_agrees(m: PairedChipDataset, first: PairedChipDataset) -> None:
    """Raise naming ``m`` unless it has ``first``'s band counts, data type kinds and chip size."""
    for attr, side in (("input_info", "input"), ("target_info", "target")):
        have, want = getattr(m, attr), getattr(first, attr)
        if have.count != want.count:
            raise ChipFolderError(
                f"{m.label} has {have.count} {side} band(s) ({', '.join(have.band_names)}); expected {want.count} "
                f"({', '.join(want.band_names)}) like {first.label}: folders trained together need the same bands.")
        if dtype_kind(have.dtype) != dtype_kind(want.dtype):
            raise ChipFolderError(
                f"{m.label} has {have.dtype} {side} chips; expected {dtype_kind(want.dtype)} chips like "
                f"{first.label} ({want.dtype}): folders trained together need one data type kind.")
    if m.chip_size != first.chip_size:
        raise ChipFolderError(
            f"{m.label} has {m.chip_size} px chips; expected {first.chip_size} px like {first.label}: re-export it "
            f"with --size {first.chip_size}.")


def _check_unique_ids(members: list[PairedChipDataset]) -> None:
    owner: dict[str, PairedChipDataset] = {}
    for m in members:
        for cid in m.all_chip_ids():
            other = owner.setdefault(cid, m)
            if other is not m:
                raise ChipFolderError(
                    f"Chip id '{cid}' is in both {other.label} and {m.label}; chip ids must be unique across the "
                    "folders trained together (export the scenes together, or under distinct names).")


def _union_side(members: list[PairedChipDataset], attr: str, side: str) -> ChipSide:
    """The first folder's side, with the widest data type of the folders and every folder's sources."""
    sides = [getattr(m, attr) for m in members]
    first = sides[0]
    for m, s in zip(members[1:], sides[1:]):
        if s.band_names != first.band_names:
            logger.warning("%s names its %s bands %s, %s names them %s; using the first folder's names.",
                           m.label, side, list(s.band_names), members[0].label, list(first.band_names))
        if not _same_nodata(s.nodata, first.nodata):
            logger.warning("%s has %s nodata %s, %s has %s; the model records the first folder's.", m.label, side,
                           s.nodata, members[0].label, first.nodata)
    dtype = np.result_type(*(np.dtype(s.dtype) for s in sides)).name
    return ChipSide(first.bands, first.band_names, dtype, first.nodata, tuple(x for s in sides for x in s.sources))


def _same_nodata(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (np.isnan(a) and np.isnan(b))
