"""GeoTIFF compression shared by chip and prediction writers: the valid names and the predictor rule.

Example:
    >>> predictor_for("float32"), predictor_for("uint16")
    (3, 2)
"""

from __future__ import annotations

import numpy as np

from geop2p.errors import InputError

__all__ = ["COMPRESSIONS", "check_compression", "predictor_for"]

#: compression names accepted by ``--compress`` (``none`` writes uncompressed tiles)
COMPRESSIONS: tuple[str, ...] = ("zstd", "deflate", "lzw", "none")


def check_compression(name: str) -> str:
    """Return ``name`` if it is a valid compression, else raise :class:`InputError` listing the valid ones."""
    if name not in COMPRESSIONS:
        raise InputError(f"Unknown compression {name!r}; valid: {', '.join(COMPRESSIONS)}.")
    return name


def predictor_for(dtype: str | np.dtype) -> int:
    """GDAL's TIFF predictor for ``dtype``: 3 (floating point) for floats, 2 (horizontal differencing) otherwise."""
    return 3 if np.issubdtype(np.dtype(dtype), np.floating) else 2
