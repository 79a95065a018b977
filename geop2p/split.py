"""Train / val / test split of chip windows by spatial blocks, with a buffer against leakage.

Neighbouring chips look alike (spatial autocorrelation), so a random split
lets the model see the val/test area during training.  The default
``blocks`` mode groups chips into square blocks of ``block_size`` pixels
(by chip centre), shuffles the blocks with ``seed`` and hands them to
train/val/test by the requested fractions of chips.  Then every val/test chip
that lies closer than ``buffer`` pixels to a train chip (or overlaps one) is
**dropped** — not demoted to train, because a demoted chip could itself sit
next to other val/test chips.  Guarantee: no val/test pixel is within
``buffer`` pixels (Chebyshev distance, so Euclidean too) of a train pixel.

``random`` mode assigns chips independently and applies no buffer; it warns
about leakage.

Example:
    >>> from rasterio.windows import Window
    >>> from collections import Counter
    >>> ws = [Window(c, r, 32, 32) for r in range(0, 512, 32) for c in range(0, 512, 32)]
    >>> labels = assign_splits(ws, SplitSpec(block_size=128, buffer=32, seed=1))
    >>> sorted(Counter(labels).items(), key=str)
    [('test', 18), ('train', 208), ('val', 4), (None, 26)]
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rasterio.windows import Window

from geop2p.chips import MAX_PIXELS
from geop2p.errors import InputError

__all__ = ["SplitSpec", "Split", "SPLITS", "SPLIT_MODES", "MAX_SEED", "assign_splits", "window_gaps"]

log = logging.getLogger(__name__)

#: Split names, in manifest order.
SPLITS: tuple[str, str, str] = ("train", "val", "test")
#: Split modes.
SPLIT_MODES: tuple[str, str] = ("blocks", "random")
#: The largest split seed (numpy seeds are non-negative; 32 bits are plenty).
MAX_SEED = 2**32 - 1

#: A chip's split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (dropped by the buffer).
Split = str | None


class LeakageWarning(UserWarning):
    """A random split puts neighbouring, near-identical chips on both sides of the split."""


@dataclass(frozen=True)
class SplitSpec:
    """How chips are divided into train / val / test.

    Attributes:
        fractions: train, val, test fractions of chips (two values mean no test), summing to 1.
        block_size: edge of the square spatial blocks, in pixels (``blocks`` mode), 1 to ``MAX_PIXELS``.
        buffer: minimum distance in pixels between any val/test pixel and any train pixel, 0 to ``MAX_PIXELS``.
        seed: seed of the block (or chip) shuffle, 0 to :data:`MAX_SEED`.
        mode: ``"blocks"`` (spatial, default) or ``"random"`` (per chip, leaks, warns).

    Example:
        >>> SplitSpec(fractions=(0.7, 0.3)).fractions
        (0.7, 0.3, 0.0)
    """

    fractions: tuple[float, ...] = (0.8, 0.1, 0.1)
    block_size: int = 1024
    buffer: int = 0
    seed: int = 0
    mode: str = "blocks"

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise InputError(f"Unknown split mode {self.mode!r}; valid modes: {', '.join(SPLIT_MODES)}.")
        try:
            fr = tuple(float(f) for f in self.fractions)
        except (TypeError, ValueError):
            raise InputError(
                f"Split fractions must be numbers, got {self.fractions!r}; use e.g. --split 0.8,0.1,0.1."
            ) from None
        if len(fr) == 2:
            fr = fr + (0.0,)
        if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr):
            raise InputError(
                f"Split needs 2 or 3 non-negative fractions (train,val[,test]), got {self.fractions!r}; "
                "use e.g. --split 0.8,0.1,0.1."
            )
        if abs(sum(fr) - 1.0) > 1e-6:
            raise InputError(
                f"Split fractions {','.join(f'{f:g}' for f in fr)} add up to {sum(fr):g}, expected 1; "
                "use e.g. --split 0.8,0.1,0.1."
            )
        if fr[0] <= 0:
            raise InputError(f"The train fraction must be > 0, got {fr[0]:g}; use e.g. --split 0.8,0.1,0.1.")
        object.__setattr__(self, "fractions", fr)
        for name in ("block_size", "buffer", "seed"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not float(value).is_integer()):
                raise InputError(f"Split {name} must be a whole number, got {value!r}.")
            object.__setattr__(self, name, int(value))
        if self.block_size <= 0:
            raise InputError(f"Split block size must be > 0 pixels, got {self.block_size}; use e.g. --block-size 1024.")
        if self.buffer < 0:
            raise InputError(f"Split buffer must be >= 0 pixels, got {self.buffer}; use e.g. --buffer 256.")
        for name, flag in (("block_size", "--block-size 1024"), ("buffer", "--buffer 256")):
            if getattr(self, name) > MAX_PIXELS:
                raise InputError(f"Split {name.replace('_', ' ')} must be at most {MAX_PIXELS} pixels, got "
                                 f"{getattr(self, name)}; use e.g. {flag}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"Split seed must be a whole number between 0 and {MAX_SEED}, got {self.seed}; "
                             "use e.g. --seed 0.")

    def to_dict(self) -> dict:
        """The manifest's ``split`` object."""
        return {
            "mode": self.mode,
            "fractions": list(self.fractions),
            "block_size": self.block_size,
            "buffer": self.buffer,
            "seed": self.seed,
        }


def _boxes(windows: Sequence[Window]) -> np.ndarray:
    """``(n, 4)`` int64 array of ``row0, col0, row1, col1`` (ends exclusive)."""
    if not windows:
        return np.zeros((0, 4), dtype=np.int64)
    return np.array(
        [
            (int(w.row_off), int(w.col_off), int(w.row_off + w.height), int(w.col_off + w.width))
            for w in windows
        ],
        dtype=np.int64,
    )


def window_gaps(a: Window, b: Window) -> int:
    """Pixels between two windows (Chebyshev): 0 when they touch, negative when they overlap.

    Example:
        >>> window_gaps(Window(0, 0, 32, 32), Window(40, 0, 32, 32))
        8
    """
    ba, bb = _boxes([a])[0], _boxes([b])[0]
    return int(max(bb[0] - ba[2], ba[0] - bb[2], bb[1] - ba[3], ba[1] - bb[3]))


def _apportion(sizes: np.ndarray, fractions: tuple[float, ...]) -> np.ndarray:
    """Split index (0, 1, 2) of each group, walking groups in order and filling splits by cumulative chip count."""
    total = float(sizes.sum())
    bounds = np.cumsum(fractions)[:-1]
    mids = (np.cumsum(sizes) - sizes / 2.0) / total
    return np.searchsorted(bounds, mids, side="right")


def _drop_near_train(boxes: np.ndarray, labels: np.ndarray, buffer: int, chunk: int = 2048) -> np.ndarray:
    """Indexes of val/test boxes closer than ``buffer`` pixels to (or overlapping) any train box."""
    train = boxes[labels == 0]
    others = np.flatnonzero(labels > 0)
    if len(train) == 0 or len(others) == 0:
        return np.zeros(0, dtype=np.int64)
    need = max(buffer, 0)
    bad = []
    for start in range(0, len(others), chunk):
        idx = others[start : start + chunk]
        o = boxes[idx][:, None, :]
        t = train[None, :, :]
        gap = np.maximum.reduce(
            [t[..., 0] - o[..., 2], o[..., 0] - t[..., 2], t[..., 1] - o[..., 3], o[..., 1] - t[..., 3]]
        )
        too_close = (gap < need).any(axis=1) if need > 0 else (gap < 0).any(axis=1)
        bad.append(idx[too_close])
    return np.concatenate(bad)


def assign_splits(windows: Sequence[Window], spec: SplitSpec) -> list[Split]:
    """The split of each window: ``"train"``, ``"val"``, ``"test"``, or ``None`` where the buffer drops it.

    Deterministic for given windows and spec.  In ``blocks`` mode a chip
    belongs to the block holding its centre; blocks are shuffled with
    ``spec.seed`` and filled into train/val/test by cumulative chip count.

    Example:
        >>> ws = [Window(c, 0, 32, 32) for c in range(0, 320, 32)]
        >>> assign_splits(ws, SplitSpec(fractions=(0.5, 0.5), block_size=160, buffer=0, seed=0))
        ['train', 'train', 'train', 'train', 'train', 'val', 'val', 'val', 'val', 'val']
    """
    n = len(windows)
    if n == 0:
        return []
    boxes = _boxes(windows)
    rng = np.random.default_rng(spec.seed)
    if spec.mode == "random":
        warnings.warn(
            "Random split: neighbouring chips (which look alike) end up in both train and val/test, "
            "so validation scores will be optimistic; use the default spatial block split for honest scores.",
            LeakageWarning,
            stacklevel=2,
        )
        order = rng.permutation(n)
        labels = np.empty(n, dtype=np.int64)
        labels[order] = _apportion(np.ones(n), spec.fractions)
        return [SPLITS[i] for i in labels]
    centre_r = (boxes[:, 0] + boxes[:, 2]) // 2
    centre_c = (boxes[:, 1] + boxes[:, 3]) // 2
    block_keys = np.stack([centre_r // spec.block_size, centre_c // spec.block_size], axis=1)
    uniq, inverse, sizes = np.unique(block_keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = rng.permutation(len(uniq))
    block_label = np.empty(len(uniq), dtype=np.int64)
    block_label[order] = _apportion(sizes[order], spec.fractions)
    labels = block_label[inverse]
    dropped = _drop_near_train(boxes, labels, spec.buffer)
    out: list[Split] = [SPLITS[i] for i in labels]
    for i in dropped:
        out[int(i)] = None
    if len(dropped):
        log.info(
            "Dropped %d val/test chip(s) overlapping a train chip%s (split buffer).", len(dropped),
            f" or closer than {spec.buffer} pixels to one" if spec.buffer else "",
        )
    return out
