"""Sample grids: a PNG with one row each for input, prediction and target, one column per chip.

Bands are drawn from their normalized values ([-1, 1] → 0..255), so the
prediction and the target share one scale. One band is greyscale; three bands
are RGB; more than three are a false-colour composite of bands 4, 3, 2
(1-based: NIR-red-green for a blue-green-red-NIR stack); two bands show band 1.
Invalid pixels are drawn magenta.

Example:
    >>> import numpy as np
    >>> x = np.zeros((2, 3, 8, 8), "float32"); y = np.zeros((2, 1, 8, 8), "float32")
    >>> v = np.ones((2, 1, 8, 8), bool)
    >>> sample_grid(x, y, y, v).shape
    (28, 18, 3)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geop2p.io.atomic import atomic_path

__all__ = ["to_rgb", "sample_grid", "save_sample_grid"]

_INVALID = np.array([255, 0, 255], dtype=np.uint8)


def to_rgb(bands: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) normalized values → (H, W, 3) uint8 for display (see module doc for band choice)."""
    c = bands.shape[0]
    if c >= 4:
        pick = [3, 2, 1]
    elif c == 3:
        pick = [0, 1, 2]
    else:
        pick = [0, 0, 0]
    img = np.nan_to_num(bands[pick].astype(np.float32), nan=-1.0)
    img = ((np.clip(img, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(1, 2, 0)
    if valid is not None:
        img = img.copy()
        img[~valid.astype(bool)] = _INVALID
    return img


def sample_grid(inputs: np.ndarray, preds: np.ndarray, targets: np.ndarray, valid: np.ndarray,
                gap: int = 2) -> np.ndarray:
    """A (rows × columns) image: rows input / prediction / target, columns = chips, ``gap`` px apart.

    Args:
        inputs: (N, Cin, H, W) normalized.
        preds: (N, Cout, H, W) normalized.
        targets: (N, Cout, H, W) normalized.
        valid: (N, 1, H, W) or (N, H, W).
    """
    n, _, h, w = inputs.shape
    valid = valid.reshape(n, h, w).astype(bool)
    grid = np.full((3 * h + 2 * gap, n * w + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for j in range(n):
        c0 = j * (w + gap)
        for i, (arr, mask) in enumerate(((inputs, valid[j]), (preds, None), (targets, valid[j]))):
            grid[i * (h + gap) : i * (h + gap) + h, c0 : c0 + w] = to_rgb(arr[j], mask)
    return grid


def save_sample_grid(path: str | os.PathLike, inputs: np.ndarray, preds: np.ndarray, targets: np.ndarray,
                     valid: np.ndarray) -> Path:
    """Write :func:`sample_grid` as a PNG (atomically, replacing an existing file).

    Example:
        >>> import tempfile
        >>> x = np.zeros((2, 3, 8, 8), "float32"); y = np.zeros((2, 1, 8, 8), "float32")
        >>> path = save_sample_grid(Path(tempfile.mkdtemp()) / "epoch_001.png", x, y, y, np.ones((2, 8, 8), bool))
        >>> from PIL import Image
        >>> Image.open(path).size
        (18, 28)
    """
    from PIL import Image

    img = Image.fromarray(sample_grid(inputs, preds, targets, valid))
    with atomic_path(path, overwrite=True) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
