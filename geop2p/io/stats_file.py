"""The mergeable statistics of a chip folder (``statistics.npz``): moments and histograms of the train chips.

The manifest holds the finished :class:`~geop2p.stats.BandStats` (percentiles
and all), which cannot be combined exactly with another folder's.  This file
holds what they were computed from — per side and band: count, mean, M2, min,
max and the sparse histogram of :class:`~geop2p.stats.StatsAccumulator` — so
that training on several folders uses exactly the statistics one export of all
their scenes would have given.  It is a plain ``.npz`` (numbers and strings
only), read with ``allow_pickle=False``.

Example:
    >>> import tempfile
    >>> from geop2p.stats import StatsAccumulator
    >>> acc = StatsAccumulator("uint8", ["g"])
    >>> acc.update(np.arange(6, dtype=np.uint8).reshape(1, 2, 3), np.ones((2, 3), bool))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write_stats_state(Path(d) / "statistics.npz", {"input": acc.to_partial()})
    ...     back = read_stats_state(Path(d) / "statistics.npz")
    >>> merged = StatsAccumulator("uint8", ["g"]); merged.add(back["input"])
    >>> merged.result() == acc.result()
    True
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from geop2p.errors import ChipFolderError
from geop2p.io.atomic import atomic_path, writing
from geop2p.stats import StatsPartial

__all__ = ["read_stats_state", "write_stats_state"]

_FIELDS = ("count", "mean", "m2", "min", "max")


def write_stats_state(path: str | os.PathLike, partials: Mapping[str, StatsPartial]) -> Path:
    """Write one :class:`StatsPartial` per side (``input``, ``target``) to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {}
    for side, p in partials.items():
        arrays[f"{side}.dtype"] = np.array(p.dtype)
        for name in _FIELDS:
            arrays[f"{side}.{name}"] = np.asarray(getattr(p, name))
        arrays[f"{side}.hist_sizes"] = np.array([len(k) for k in p.hist_keys], dtype=np.int64)
        arrays[f"{side}.hist_keys"] = np.concatenate(p.hist_keys) if p.hist_keys else np.zeros(0, np.int64)
        arrays[f"{side}.hist_counts"] = np.concatenate(p.hist_counts) if p.hist_counts else np.zeros(0, np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = Path(path)
    with writing(path), atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def read_stats_state(path: str | os.PathLike) -> dict[str, StatsPartial]:
    """The partials written by :func:`write_stats_state`, by side.

    Raises:
        ChipFolderError: the file is missing or damaged.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ChipFolderError(f"Cannot read the statistics '{path}' ({exc}); re-export the chips.") from None
    out = {}
    for side in sorted({k.split(".", 1)[0] for k in data}):
        try:
            sizes = data[f"{side}.hist_sizes"]
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            keys = data[f"{side}.hist_keys"]
            counts = data[f"{side}.hist_counts"]
            out[side] = StatsPartial(
                str(data[f"{side}.dtype"]), *(np.asarray(data[f"{side}.{n}"]) for n in _FIELDS),
                tuple(keys[a:b].astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:])),
                tuple(counts[a:b].astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:])),
            )
        except KeyError as exc:
            raise ChipFolderError(f"'{path}' lacks {exc}; re-export the chips.") from None
    return out
