"""Augmentation of chip pairs: random flips and 90° rotations applied identically to every array of a pair.

A transform is drawn once per item from a generator seeded by ``(seed, epoch,
index)``, so the same epoch gives the same batches whatever the number of
DataLoader workers, and a resumed run continues exactly.

Example:
    >>> aug = PairAugment(flips=True, rot90=True)
    >>> a = np.arange(4.0).reshape(1, 2, 2)
    >>> t = aug.draw(np.random.default_rng(0))
    >>> out_a, out_b = aug.apply(t, a, a.copy())
    >>> bool((out_a == out_b).all())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PairAugment"]


@dataclass(frozen=True)
class PairAugment:
    """Random flips and 90° rotations, applied identically to every array of a pair.

    Attributes:
        flips: allow horizontal and vertical flips.
        rot90: allow rotations by 90, 180 and 270 degrees (square chips only).
    """

    flips: bool = True
    rot90: bool = True

    @property
    def enabled(self) -> bool:
        """True when at least one transform is allowed."""
        return self.flips or self.rot90

    def draw(self, rng: np.random.Generator) -> tuple[int, bool, bool]:
        """Draw one transform: ``(quarter_turns, flip_rows, flip_cols)``.

        Example:
            >>> PairAugment(flips=False, rot90=False).draw(np.random.default_rng(0))
            (0, False, False)
        """
        k = int(rng.integers(0, 4)) if self.rot90 else 0
        flip_r = bool(rng.integers(0, 2)) if self.flips else False
        flip_c = bool(rng.integers(0, 2)) if self.flips else False
        return k, flip_r, flip_c

    def apply(self, transform: tuple[int, bool, bool], *arrays: np.ndarray) -> list[np.ndarray]:
        """Apply a drawn transform to arrays shaped ``(..., H, W)``; returns contiguous copies.

        Example:
            >>> PairAugment().apply((1, False, False), np.array([[1, 2], [3, 4]]))[0].tolist()
            [[2, 4], [1, 3]]
        """
        k, flip_r, flip_c = transform
        out = []
        for a in arrays:
            if k and a.shape[-1] == a.shape[-2]:
                a = np.rot90(a, k, axes=(-2, -1))
            if flip_r:
                a = a[..., ::-1, :]
            if flip_c:
                a = a[..., :, ::-1]
            out.append(np.ascontiguousarray(a))
        return out
