"""The obvious baseline: a per-pixel affine map from the input bands to the target bands, fitted by least squares.

It is fitted from streamed normal equations (``XᵀX`` and ``Xᵀy`` summed chip
by chip in float64, inputs standardised by the model's input normalizer for
conditioning), so no pixels are stored.

Example:
    >>> import numpy as np
    >>> base = LinearBaseline((0.0,), (1.0,), np.array([[2.0], [7.0]]), n_pixels=4)
    >>> base.predict(np.ones((1, 1, 2, 2)))[0, 0].tolist()
    [[9.0, 9.0], [9.0, 9.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geop2p.datasets import PairedChipDataset
from geop2p.normalize import Normalizer

__all__ = ["LinearBaseline", "fit_linear_baseline"]


@dataclass(frozen=True)
class LinearBaseline:
    """A per-pixel affine map ``y = [z, 1] @ coef`` with ``z = (x - offset) / scale`` (unclipped).

    Attributes:
        offset: per input band.
        scale: per input band.
        coef: (input bands + 1, target bands) float64.
        n_pixels: training pixels it was fitted on.
    """

    offset: tuple[float, ...]
    scale: tuple[float, ...]
    coef: np.ndarray
    n_pixels: int

    def features(self, x: np.ndarray) -> np.ndarray:
        """(N, Cin, H, W) raw input → (N, H, W, Cin + 1) standardised features with a bias column."""
        off = np.asarray(self.offset).reshape(1, -1, 1, 1)
        sc = np.asarray(self.scale).reshape(1, -1, 1, 1)
        z = ((x.astype(np.float64) - off) / sc).transpose(0, 2, 3, 1)
        return np.concatenate([z, np.ones(z.shape[:-1] + (1,))], axis=-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, Cin, H, W) raw input → (N, Cout, H, W) prediction in target units."""
        return (self.features(x) @ self.coef).transpose(0, 3, 1, 2)


def fit_linear_baseline(dataset: PairedChipDataset, input_normalizer: Normalizer) -> LinearBaseline | None:
    """Least-squares affine map from input to target bands over the valid pixels of ``dataset``.

    Returns None when the dataset has no valid pixel.

    Example:
        >>> base = fit_linear_baseline(open_chip_dataset("chips/", "train"), norm)  # doctest: +SKIP
    """
    cin = dataset.input_info.count
    xtx = np.zeros((cin + 1, cin + 1))
    xty = np.zeros((cin + 1, dataset.target_info.count))
    n = 0
    proto = LinearBaseline(input_normalizer.offset, input_normalizer.scale, np.zeros((cin + 1, 1)), 0)
    for i in range(len(dataset)):
        x, y, valid = dataset.read_raw(i)
        f = proto.features(x[None])[0][valid]  # (n, cin+1)
        t = y.astype(np.float64).transpose(1, 2, 0)[valid]
        xtx += f.T @ f
        xty += f.T @ t
        n += f.shape[0]
    if n == 0:
        return None
    coef = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    return LinearBaseline(proto.offset, proto.scale, coef, n)
