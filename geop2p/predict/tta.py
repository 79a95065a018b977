"""Test-time augmentation: the eight dihedral transforms of a square window and their exact inverses.

Transform ``k`` (0..7) flips horizontally when ``k >= 4``, then rotates
``k % 4`` quarter turns; :func:`dihedral_inverse` undoes it exactly (flips and
quarter turns only move pixels).  :data:`_TTA_SETS` lists the transforms that
``--tta N`` averages, in the order they run.

Example:
    >>> import torch
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> dihedral(x, 4)[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
    >>> all(torch.equal(dihedral_inverse(dihedral(x, k), k), x) for k in range(8))
    True
"""

from __future__ import annotations

import torch

__all__ = ["dihedral", "dihedral_inverse"]

#: ``--tta N`` → the transforms averaged, in this order
_TTA_SETS = {1: (0,), 2: (0, 4), 4: (0, 4, 6, 2), 8: tuple(range(8))}


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` of the last two (square) axes of ``x``: a horizontal flip when ``k >= 4``, then ``k % 4`` quarter turns.

    Example:
        >>> dihedral(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 1).tolist()
        [[2.0, 4.0], [1.0, 3.0]]
    """
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x


def dihedral_inverse(y: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral` ``k``: ``dihedral_inverse(dihedral(x, k), k)`` is ``x``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> torch.equal(dihedral_inverse(dihedral(x, 5), 5), x)
        True
    """
    if k % 4:
        y = torch.rot90(y, -(k % 4), dims=(-2, -1))
    return y.flip(-1) if k >= 4 else y
