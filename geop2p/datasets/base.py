"""What every paired-chip dataset shares: reading, masking, normalising and augmenting one pair per item.

Each item is a dict::

    {"input":  float32 (Cin, H, W)   normalized input, 0 where invalid,
     "target": float32 (Cout, H, W)  normalized target, 0 where invalid,
     "target_raw": float32 (Cout, H, W) target in the data's own units, 0 where invalid,
     "valid":  float32 (1, H, W)     1 where input AND target chips are valid,
     "chip_id": str}

Invalid pixels (nodata, NaN, masked) never reach the network as numbers: they
are zeroed and flagged in ``valid``, which every loss and metric uses.

A dataset format (:mod:`geop2p.datasets.registry`) subclasses
:class:`PairedChipDataset`, sets ``format_name`` and fills ``root``, ``items``,
``train_items``, ``input_info``, ``target_info``, ``chip_size``,
``source_sha256``, ``pixel_size``, ``crs`` and ``split`` before calling
:meth:`PairedChipDataset._setup`.  ``stats`` defaults to statistics streamed
over ``train_items`` on first use; the normalizers default to
:meth:`PairedChipDataset.default_normalizers` on first use (and before the
dataset is pickled into DataLoader workers, so they are computed once).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from geop2p.datasets.augment import PairAugment
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import ChipSide
from geop2p.io.read import read_raster
from geop2p.normalize import Normalizer, percentile_key
from geop2p.split import SPLITS
from geop2p.stats import StatsAccumulator, StatsPartial

__all__ = ["SIDES", "SPLITS", "Item", "PairedChipDataset", "check_split", "normalizer_from_stats", "stats_from_state"]

logger = logging.getLogger(__name__)

#: the two sides of every pair, in the order of ``(input, target)`` tuples
SIDES: tuple[str, str] = ("input", "target")

#: one item of a dataset: ``(chip_id, input file, target file)``
Item = tuple[str, Path, Path]


def check_split(split: str) -> None:
    """Raise :class:`ConfigError` unless ``split`` is ``train``, ``val``, ``test`` or ``all``.

    Example:
        >>> check_split("val")
        >>> check_split("validation")
        Traceback (most recent call last):
        ...
        geop2p.errors.ConfigError: Unknown split 'validation'; valid splits: train, val, test, all.
    """
    if split not in SPLITS + ("all",):
        raise ConfigError(f"Unknown split {split!r}; valid splits: {', '.join(SPLITS + ('all',))}.")


def normalizer_from_stats(
    stats: dict | None, side: str, method: str = "percentile", low: float = 2, high: float = 98
) -> Normalizer:
    """The ``side`` ("input"/"target") normalizer from a dataset's statistics.

    When ``method`` is ``percentile`` but the statistics hold no ``low``/``high``
    percentiles (an ArcGIS ``.emd`` has only min/max/mean/std), ``minmax`` is
    used instead, with a warning.

    Raises:
        ChipFolderError: the dataset has no statistics for that side (no train chips).

    Example:
        >>> stats = {"bands": [{"name": "b", "count": 4, "min": 0, "max": 10, "mean": 5, "std": 3,
        ...                     "percentiles": {"2": 1.0, "98": 9.0}}]}
        >>> normalizer_from_stats(stats, "input").offset
        (5.0,)
    """
    bands = (stats or {}).get("bands") or []
    if not bands:
        raise ChipFolderError(
            f"The chip folder has no {side} statistics (no train chips to compute them from); "
            "re-export it with a non-empty train split."
        )
    keys = {percentile_key(low), percentile_key(high)}
    if method == "percentile" and not all(keys <= set(b.get("percentiles") or {}) for b in bands):
        logger.warning("The %s statistics hold no %s percentiles; normalizing with minmax instead.", side,
                       "/".join(sorted(keys)))
        method = "minmax"
    return Normalizer.from_stats(stats, method=method, low=low, high=high)


def stats_from_state(state: dict[str, StatsPartial], infos: dict[str, ChipSide]) -> dict[str, dict]:
    """``{side: BandStats.to_dict()}`` from mergeable partials (see :meth:`PairedChipDataset.stats_state`).

    Sides without a valid pixel are left out, so a dataset without train pixels has no statistics.

    Example:
        >>> acc = StatsAccumulator("uint8", ["g"])
        >>> acc.update(np.array([[[1, 3]]], np.uint8), np.ones((1, 2), bool))
        >>> info = ChipSide((1,), ("g",), "uint8", None)
        >>> stats_from_state({"input": acc.to_partial()}, {"input": info})["input"]["bands"][0]["mean"]
        2.0
    """
    out = {}
    for side, partial in state.items():
        if not int(np.sum(partial.count)):
            continue
        acc = StatsAccumulator(partial.dtype, infos[side].band_names)
        acc.add(partial)
        out[side] = acc.result().to_dict()
    return out


class PairedChipDataset(Dataset):
    """Base class: a list of (chip_id, input file, target file) read, masked, normalized and augmented."""

    #: the registry's name of the layout (``--format``)
    format_name: ClassVar[str] = ""
    root: Path
    items: list[Item]
    input_info: ChipSide
    target_info: ChipSide
    chip_size: int
    source_sha256: str
    split: str
    #: the chips' grid: pixel size (x, y) in CRS units and the CRS (``None`` when not georeferenced)
    pixel_size: tuple[float, float] | None
    crs: str | None
    #: the normalizers the layout prescribes whatever the statistics (pix2pix: x / 127.5 - 1), else None
    fixed_normalizers: tuple[Normalizer, Normalizer] | None = None

    def _setup(
        self,
        augment: PairAugment | bool | None,
        input_normalizer: Normalizer | None,
        target_normalizer: Normalizer | None,
        seed: int,
    ) -> None:
        if augment is True:
            augment = PairAugment()
        elif augment is False or augment is None:
            augment = None
        elif not isinstance(augment, PairAugment):
            raise ConfigError(f"augment must be a PairAugment, True or False; got {type(augment).__name__}.")
        self.augment: PairAugment | None = augment if augment is not None and augment.enabled else None
        self.seed = int(seed)
        self.epoch = 0
        self._normalizers: list[Normalizer | None] = [None, None]
        self._set_normalizers(input_normalizer, target_normalizer)

    # ------------------------------------------------------------------ description
    @property
    def label(self) -> str:
        """The dataset's folder(s) in words, for messages."""
        return f"'{self.root}'"

    @property
    def preprocess(self) -> dict[str, Any]:
        """How files become chips, for the bundle: ``{"layout": format_name, ...}`` (layouts add their options)."""
        return {"layout": self.format_name}

    @property
    def chip_ids(self) -> list[str]:
        """The chip ids of this split, in dataset order."""
        return [cid for cid, _, _ in self.items]

    def all_chip_ids(self) -> list[str]:
        """The chip ids of every split of the folder (what must not collide with another folder's)."""
        return self.chip_ids

    @property
    def train_items(self) -> list[Item]:
        """The items of the folder's train split (what statistics are computed over)."""
        raise NotImplementedError(f"{type(self).__name__} does not list its train items.")

    def check_not_empty(self) -> None:
        """Raise :class:`ChipFolderError` when this split holds no pairs (call before training or scoring on it)."""
        if not self.items:
            raise ChipFolderError(
                f"The {self.split} split of {self.label} ({self.format_name}) holds no pairs; choose another "
                "split, or give a dataset with pairs in it."
            )

    # ------------------------------------------------------------------ statistics and normalizers
    def stats_state(self, dtypes: tuple[str, str] | None = None) -> dict[str, StatsPartial]:
        """The mergeable statistics of the train split, ``{"input": StatsPartial, "target": StatsPartial}``.

        Streamed over :attr:`train_items` (one pair in memory at a time, a pixel counts where both
        sides are valid) with :class:`~geop2p.stats.StatsAccumulator` histograms of ``dtypes``
        (default: the chips' own); computed once per ``dtypes``.  Several folders' states merge
        exactly (:class:`~geop2p.datasets.multi.MultiFolderDataset`).
        """
        dtypes = tuple(dtypes or (self.input_info.dtype, self.target_info.dtype))
        cache = self.__dict__.setdefault("_stats_states", {})
        if dtypes not in cache:
            accs = [StatsAccumulator(dt, info.band_names) for dt, info in zip(dtypes, (self.input_info,
                                                                                     self.target_info))]
            for item in self.train_items:
                x, y, valid = self._read_item(item)
                accs[0].update(x, valid)
                accs[1].update(y, valid)
            cache[dtypes] = {side: acc.to_partial() for side, acc in zip(SIDES, accs)}
        return cache[dtypes]

    @functools.cached_property
    def stats(self) -> dict[str, dict]:
        """Band statistics of the train split (``BandStats.to_dict()`` per side), streamed on first use only."""
        return stats_from_state(self.stats_state(), {"input": self.input_info, "target": self.target_info})

    def default_normalizers(
        self, method: str = "percentile", low: float = 2, high: float = 98
    ) -> tuple[Normalizer, Normalizer]:
        """The input and target normalizers this dataset implies: :attr:`fixed_normalizers` where the layout
        prescribes them, else built from :attr:`stats` (see :func:`normalizer_from_stats`).

        Raises:
            ChipFolderError: no statistics (the train split is empty).
        """
        return self._default_normalizer(0, method, low, high), self._default_normalizer(1, method, low, high)

    def _default_normalizer(self, side: int, method: str = "percentile", low: float = 2,
                            high: float = 98) -> Normalizer:
        if self.fixed_normalizers is not None:
            return self.fixed_normalizers[side]
        name = SIDES[side]
        if not (self.stats.get(name) or {}).get("bands"):
            raise ChipFolderError(
                f"{self.label} has no {name} statistics to normalize with: its train split holds no valid "
                "pixels. Give a dataset with train pairs, or pass the normalizers of a trained model."
            )
        return normalizer_from_stats(self.stats.get(name), name, method, low, high)

    def _set_normalizers(self, input_normalizer: Normalizer | None, target_normalizer: Normalizer | None) -> None:
        for i, (norm, info) in enumerate(((input_normalizer, self.input_info), (target_normalizer,
                                                                               self.target_info))):
            if norm is None:
                continue
            if norm.n_bands != info.count:
                raise ConfigError(
                    f"The {SIDES[i]} normalizer has {norm.n_bands} band(s) but the chips' {SIDES[i]} has "
                    f"{info.count} ({', '.join(info.band_names)}); build it from these chips' statistics."
                )
            self._normalizers[i] = norm

    def _resolved_normalizers(self) -> tuple[Normalizer, Normalizer]:
        if None in self._normalizers:
            self._set_normalizers(*(n if n is not None else self._default_normalizer(i)
                                    for i, n in enumerate(self._normalizers)))
        return self._normalizers[0], self._normalizers[1]  # type: ignore[return-value]

    @property
    def input_normalizer(self) -> Normalizer:
        """Maps input values to [-1, 1]: the one given, else :meth:`default_normalizers` (on first use)."""
        return self._resolved_normalizers()[0]

    @property
    def target_normalizer(self) -> Normalizer:
        """Maps target values to [-1, 1]: the one given, else :meth:`default_normalizers` (on first use)."""
        return self._resolved_normalizers()[1]

    def __getstate__(self) -> dict[str, Any]:
        # resolved here, once, rather than in every DataLoader worker
        self._resolved_normalizers()
        return self.__dict__.copy()

    # ------------------------------------------------------------------ items
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds augmentation (call before iterating each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _read_item(self, item: Item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input, target, valid)`` of one item as stored, checked against the dataset's band counts."""
        chip_id, in_path, tg_path = item
        x, vx = read_raster(in_path)
        y, vy = read_raster(tg_path)
        if x.shape[0] != self.input_info.count or y.shape[0] != self.target_info.count:
            raise ChipFolderError(
                f"Chip '{chip_id}' has {x.shape[0]} input / {y.shape[0]} target band(s); the folder describes "
                f"{self.input_info.count} / {self.target_info.count}. Re-export the chips."
            )
        if x.shape[1:] != y.shape[1:]:
            raise ChipFolderError(
                f"Chip '{chip_id}': input is {x.shape[1]}×{x.shape[2]} px but target is {y.shape[1]}×{y.shape[2]}; "
                "the pair must share one grid. Re-export the chips."
            )
        return x, y, vx & vy

    def read_raw(
        self, index: int, draw_key: tuple[int, int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input, target, valid)`` of item ``index`` in the data's units, without augmentation.

        ``valid`` is the AND of the input and target chips' validity (H, W).  ``draw_key`` is the
        ``(seed, epoch, index)`` that seeds a layout's random preprocessing (pix2pix's random crop;
        default ``(self.seed, self.epoch, index)``): a dataset of several folders passes its own.
        """
        return self._read_item(self.items[index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        chip_id = self.items[index][0]
        x, y, valid = self.read_raw(index)
        x = x.astype(np.float32)
        y = y.astype(np.float32)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            x, y, valid = self.augment.apply(self.augment.draw(rng), x, y, valid)
        vmask = valid[None]
        xn = np.where(vmask, self.input_normalizer.normalize(np.where(vmask, x, 0)), 0).astype(np.float32)
        yn = np.where(vmask, self.target_normalizer.normalize(np.where(vmask, y, 0)), 0).astype(np.float32)
        y_raw = np.where(vmask, y, 0).astype(np.float32)
        return {
            "input": torch.from_numpy(xn),
            "target": torch.from_numpy(yn),
            "target_raw": torch.from_numpy(y_raw),
            "valid": torch.from_numpy(vmask.astype(np.float32)),
            "chip_id": chip_id,
        }
