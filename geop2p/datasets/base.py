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
:class:`PairedChipDataset` and fills ``items``, ``input_info``,
``target_info``, ``chip_size``, ``stats``, ``source_sha256``, ``pixel_size``
and ``crs`` before calling :meth:`PairedChipDataset._setup`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from geop2p.datasets.augment import PairAugment
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import ChipSide
from geop2p.io.read import read_raster
from geop2p.normalize import Normalizer, percentile_key
from geop2p.split import SPLITS

__all__ = ["SPLITS", "PairedChipDataset", "check_split", "normalizer_from_stats"]

logger = logging.getLogger(__name__)


def check_split(split: str) -> None:
    """Raise :class:`ConfigError` unless ``split`` is ``train``, ``val``, ``test`` or ``all``."""
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


class PairedChipDataset(Dataset):
    """Base class: a list of (chip_id, input file, target file) read, masked, normalized and augmented."""

    items: list[tuple[str, Path, Path]]
    input_info: ChipSide
    target_info: ChipSide
    chip_size: int
    stats: dict[str, dict]
    source_sha256: str
    split: str
    #: the chips' grid: pixel size (x, y) in CRS units and the CRS (``None`` when not georeferenced)
    pixel_size: tuple[float, float] | None
    crs: str | None

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
        self.input_normalizer = input_normalizer or normalizer_from_stats(self.stats.get("input"), "input")
        self.target_normalizer = target_normalizer or normalizer_from_stats(self.stats.get("target"), "target")
        for norm, info, side in ((self.input_normalizer, self.input_info, "input"),
                                 (self.target_normalizer, self.target_info, "target")):
            if norm.n_bands != info.count:
                raise ConfigError(
                    f"The {side} normalizer has {norm.n_bands} band(s) but the chips' {side} has {info.count} "
                    f"({', '.join(info.band_names)}); build it from these chips' statistics."
                )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds augmentation (call before iterating each epoch)."""
        self.epoch = int(epoch)

    @property
    def chip_ids(self) -> list[str]:
        """The chip ids of this split, in dataset order."""
        return [cid for cid, _, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def read_raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input, target, valid)`` of item ``index`` in the data's units, without augmentation.

        ``valid`` is the AND of the input and target chips' validity (H, W).
        """
        chip_id, in_path, tg_path = self.items[index]
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
