"""Streaming per-band statistics over valid pixels, mergeable across workers.

Three pieces:

* :class:`StatsPartial` — the statistics of one array (one chip): small and
  picklable, so worker processes send it back.
* :class:`StatsAccumulator` — merges partials (or other accumulators) in a
  fixed order; memory does not depend on how many pixels it has seen.
* :class:`BandStats` — the frozen result (count, min, max, mean, std,
  percentiles 1/2/98/99 per band), with :meth:`BandStats.to_dict` /
  :meth:`BandStats.from_dict` in the chip-manifest format.

Mean and variance merge with Chan's parallel formula, so merging two halves
gives the one-pass result up to float64 rounding; merging in the same order
gives bit-identical results, whatever the number of workers.

Percentiles come from a histogram, never from stored pixels:

* integer bands of 8 or 16 bits: one bin per value, so percentiles are exact;
* other bands (floats, 32/64-bit integers): values are cast to float32 and
  binned by the top 20 bits of their order-preserving bit pattern (sign, 8
  exponent bits, 11 mantissa bits): 2**20 bins spanning every float with a
  relative width of 2**-11.  The reported percentile is its bin's midpoint
  clamped to [min, max], so its error is at most ``PERCENTILE_REL_ERROR``
  (2**-12 ≈ 0.024 %) of its magnitude (plus float32 rounding, 2**-24).

A percentile ``q`` is the order statistic of rank ``ceil(q / 100 * count)``
(numpy's ``method="inverted_cdf"``).

Example:
    >>> import numpy as np
    >>> data = np.arange(100, dtype=np.uint8).reshape(1, 10, 10)
    >>> acc = StatsAccumulator("uint8", ["gray"])
    >>> acc.update(data, np.ones((10, 10), bool))
    >>> s = acc.result()
    >>> s.bands[0].count, s.bands[0].percentiles["99"]
    (100, 98.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

__all__ = [
    "BandSummary", "BandStats", "StatsPartial", "StatsAccumulator", "merge_histograms", "PERCENTILES",
    "PERCENTILE_REL_ERROR",
]

#: Percentiles reported per band.
PERCENTILES: tuple[int, ...] = (1, 2, 98, 99)
#: Bound on the relative error of a percentile of a float (or >16-bit integer) band.
PERCENTILE_REL_ERROR = 2.0**-12

_FLOAT_SHIFT = 12  # 32-bit pattern >> 12 -> 20-bit bin key
_FLOAT_BINS = 1 << (32 - _FLOAT_SHIFT)
_EXACT_DTYPES = ("int8", "uint8", "int16", "uint16")


def _is_exact(dtype: str) -> bool:
    return np.dtype(dtype).name in _EXACT_DTYPES


def _n_bins(dtype: str) -> int:
    return 1 << np.dtype(dtype).itemsize * 8 if _is_exact(dtype) else _FLOAT_BINS


def _keys(values: np.ndarray, dtype: str) -> np.ndarray:
    """Histogram bin key of each value (1-D), as int64."""
    if _is_exact(dtype):
        return values.astype(np.int64) - int(np.iinfo(np.dtype(dtype)).min)
    bits = values.astype(np.float32).view(np.uint32)
    ordered = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (ordered >> np.uint32(_FLOAT_SHIFT)).astype(np.int64)


def _key_value(key: int, dtype: str) -> float:
    """The value a bin stands for: the value itself (exact dtypes) or the bin's midpoint."""
    if _is_exact(dtype):
        return float(key + int(np.iinfo(np.dtype(dtype)).min))
    lo_ordered = np.uint32(key << _FLOAT_SHIFT)
    hi_ordered = np.uint32(lo_ordered | ((1 << _FLOAT_SHIFT) - 1))

    def decode(o: np.uint32) -> float:
        bits = o ^ np.uint32(0x80000000) if o & np.uint32(0x80000000) else ~o
        return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])

    lo, hi = decode(lo_ordered), decode(hi_ordered)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return lo if math.isfinite(lo) or not math.isfinite(hi) else hi
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class BandSummary:
    """Statistics of one band over its valid pixels (``nan`` where ``count`` is 0)."""

    name: str
    count: int
    min: float
    max: float
    mean: float
    std: float
    percentiles: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"name", "count", "min", "max", "mean", "std", "percentiles"}`` (``nan`` stays a float: files write it
        through :mod:`geop2p.formats.jsonsafe`)."""
        return {
            "name": self.name,
            "count": int(self.count),
            "min": float(self.min),
            "max": float(self.max),
            "mean": float(self.mean),
            "std": float(self.std),
            "percentiles": {k: float(v) for k, v in self.percentiles.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BandSummary":
        """Inverse of :meth:`to_dict`; also reads ``"nan"`` strings and ``null`` (geop2p 0.1 wrote NaN as null)."""

        def num(v) -> float:
            if v is None:
                return float("nan")
            return float(v)  # numbers, and the strings "nan" / "inf" / "-inf"

        return cls(
            name=str(data["name"]),
            count=int(data["count"]) if data.get("count") is not None else 0,
            min=num(data["min"]),
            max=num(data["max"]),
            mean=num(data["mean"]),
            std=num(data["std"]),
            percentiles={str(k): num(v) for k, v in (data.get("percentiles") or {}).items()},
        )


@dataclass(frozen=True)
class BandStats:
    """Per-band statistics (the manifest's ``stats.input`` / ``stats.target``).

    Example:
        >>> s = BandStats.from_dict({"bands": [{"name": "b", "count": 2, "min": 0, "max": 2, "mean": 1,
        ...                                     "std": 1, "percentiles": {"2": 0, "98": 2}}]})
        >>> s.names, s.percentile(98)
        (('b',), (2.0,))
    """

    bands: tuple[BandSummary, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Band names."""
        return tuple(b.name for b in self.bands)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-band means."""
        return tuple(b.mean for b in self.bands)

    @property
    def std(self) -> tuple[float, ...]:
        """Per-band standard deviations (population)."""
        return tuple(b.std for b in self.bands)

    def percentile(self, q: int | float) -> tuple[float, ...]:
        """Per-band percentile ``q`` (one of :data:`PERCENTILES`, or any stored one).

        Raises:
            KeyError: naming the stored percentiles when ``q`` is not one of them.
        """
        key = f"{q:g}"
        missing = [b.name for b in self.bands if key not in b.percentiles]
        if missing:
            stored = sorted({k for b in self.bands for k in b.percentiles}, key=float)
            raise KeyError(f"Percentile {key} is not stored; available: {', '.join(stored)}.")
        return tuple(b.percentiles[key] for b in self.bands)

    def to_dict(self) -> dict:
        """``{"bands": [BandSummary.to_dict(), ...]}``."""
        return {"bands": [b.to_dict() for b in self.bands]}

    @classmethod
    def from_dict(cls, data: dict) -> "BandStats":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(BandSummary.from_dict(b) for b in data["bands"]))


@dataclass(frozen=True)
class StatsPartial:
    """Statistics of one array of valid pixels: per band count, mean, M2, min, max and a sparse histogram.

    Build with :meth:`from_array`; merge into a :class:`StatsAccumulator`.
    """

    dtype: str
    count: np.ndarray  # (bands,) int64
    mean: np.ndarray  # (bands,) float64
    m2: np.ndarray  # (bands,) float64, sum of squared deviations
    min: np.ndarray  # (bands,) float64
    max: np.ndarray  # (bands,) float64
    hist_keys: tuple[np.ndarray, ...]  # per band, sorted bin keys (int64)
    hist_counts: tuple[np.ndarray, ...]  # per band, counts (int64)

    @classmethod
    def from_array(cls, data: np.ndarray, valid: np.ndarray, dtype: str | None = None) -> "StatsPartial":
        """Statistics of ``data`` (bands, h, w) over pixels where ``valid`` (h, w) is True.

        Example:
            >>> p = StatsPartial.from_array(np.ones((2, 4, 4), np.uint8), np.ones((4, 4), bool))
            >>> p.count.tolist()
            [16, 16]
        """
        dtype = np.dtype(dtype or data.dtype).name
        nb = data.shape[0]
        flat = data.reshape(nb, -1)
        if not valid.all():
            flat = flat[:, valid.reshape(-1)]
        n = flat.shape[1]
        count = np.full(nb, n, dtype=np.int64)
        mean, m2 = np.zeros(nb), np.zeros(nb)
        vmin, vmax = np.full(nb, np.inf), np.full(nb, -np.inf)
        keys, counts = [], []
        exact = _n_bins(dtype) <= 65536
        for b in range(nb):
            k = _keys(flat[b], dtype)
            if exact:  # moments from the exact histogram: cheaper than passes over the pixels
                c = np.bincount(k)
                nz = np.flatnonzero(c)
                cnt = c[nz].astype(np.int64)
                keys.append(nz.astype(np.int64))
                counts.append(cnt)
                if n:
                    values = (nz + int(np.iinfo(np.dtype(dtype)).min)).astype(np.float64)
                    mean[b] = float(np.dot(values, cnt)) / n
                    m2[b] = float(np.dot((values - mean[b]) ** 2, cnt))
                    vmin[b], vmax[b] = values[0], values[-1]
            else:
                u, c = np.unique(k, return_counts=True)
                keys.append(u.astype(np.int64))
                counts.append(c.astype(np.int64))
                if n:
                    f64 = flat[b].astype(np.float64)
                    mean[b] = f64.mean()
                    dev = f64 - mean[b]
                    # a plain reduction, not np.dot: BLAS dot products spin up OpenBLAS threads that
                    # fight the export's worker processes for the cores (measured: 2x slower at 2 workers)
                    m2[b] = float(np.sum(dev * dev))
                    vmin[b], vmax[b] = float(flat[b].min()), float(flat[b].max())
        return cls(dtype, count, mean, m2, vmin, vmax, tuple(keys), tuple(counts))

    def moments_only(self) -> "StatsPartial":
        """This partial without its histogram (the counterpart of :func:`merge_histograms`)."""
        none = tuple(np.zeros(0, dtype=np.int64) for _ in self.hist_keys)
        return StatsPartial(self.dtype, self.count, self.mean, self.m2, self.min, self.max, none, none)


def merge_histograms(partials: Sequence[StatsPartial]) -> StatsPartial | None:
    """One partial holding the summed histograms of ``partials`` and neutral moments (count 0).

    Export workers send per-chip moments (a few numbers) and one merged histogram
    per batch of chips, instead of one histogram per chip. Histogram counts are
    integers, so the sum is exact in any grouping, and adding a count-0 partial
    to a :class:`StatsAccumulator` leaves its moments bit-for-bit unchanged:
    results stay identical whatever the batching or number of workers.

    Example:
        >>> a = StatsPartial.from_array(np.array([[[1.0, 2.0]]], np.float32), np.ones((1, 2), bool))
        >>> merged = merge_histograms([a, a])
        >>> int(merged.count[0]), int(sum(c.sum() for c in merged.hist_counts))
        (0, 4)
    """
    parts = [p for p in partials if p is not None]
    if not parts:
        return None
    nb = len(parts[0].count)
    keys, counts = [], []
    for b in range(nb):
        k = np.concatenate([p.hist_keys[b] for p in parts])
        c = np.concatenate([p.hist_counts[b] for p in parts])
        uniq, inverse = np.unique(k, return_inverse=True)
        keys.append(uniq.astype(np.int64))
        counts.append(np.bincount(inverse, weights=c, minlength=len(uniq)).astype(np.int64))
    empty = np.zeros(nb)
    return StatsPartial(
        parts[0].dtype, np.zeros(nb, dtype=np.int64), empty, empty.copy(),
        np.full(nb, np.inf), np.full(nb, -np.inf), tuple(keys), tuple(counts),
    )


class StatsAccumulator:
    """Merges :class:`StatsPartial` objects (or other accumulators) into running per-band statistics.

    Memory is fixed: five numbers and one dense histogram per band (2**8 or
    2**16 bins for 8/16-bit integer bands, 2**20 for the others).  Merging the
    same partials in the same order always gives identical results.

    Example:
        >>> acc = StatsAccumulator("float32", ["t"])
        >>> acc.update(np.array([[[1.0, 2.0], [3.0, np.nan]]], np.float32), np.array([[1, 1], [1, 0]], bool))
        >>> acc.result().bands[0].mean
        2.0
    """

    def __init__(self, dtype: str, names: Sequence[str]) -> None:
        self.dtype = np.dtype(dtype).name
        self.names = tuple(names)
        nb = len(self.names)
        self.count = np.zeros(nb, dtype=np.int64)
        self.mean = np.zeros(nb)
        self.m2 = np.zeros(nb)
        self.min = np.full(nb, np.inf)
        self.max = np.full(nb, -np.inf)
        self.hist = np.zeros((nb, _n_bins(self.dtype)), dtype=np.int64)

    def _merge_moments(self, count, mean, m2, vmin, vmax) -> None:
        n_a = self.count.astype(np.float64)
        n_b = np.asarray(count, dtype=np.float64)
        n = n_a + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mean - self.mean
            new_mean = np.where(n > 0, self.mean + delta * np.where(n > 0, n_b / n, 0.0), 0.0)
            new_m2 = self.m2 + m2 + np.where(n > 0, delta**2 * n_a * n_b / np.where(n > 0, n, 1.0), 0.0)
        self.mean = new_mean
        self.m2 = new_m2
        self.count = self.count + np.asarray(count, dtype=np.int64)
        self.min = np.minimum(self.min, vmin)
        self.max = np.maximum(self.max, vmax)

    def _check(self, dtype: str, nb: int) -> None:
        if dtype != self.dtype or nb != len(self.names):
            raise ValueError(
                f"Cannot merge statistics of {nb} {dtype} band(s) into {len(self.names)} {self.dtype} band(s)."
            )

    def add(self, partial: StatsPartial) -> None:
        """Merge one partial (e.g. one chip's statistics) into the running totals."""
        self._check(partial.dtype, len(partial.count))
        self._merge_moments(partial.count, partial.mean, partial.m2, partial.min, partial.max)
        for b, (k, c) in enumerate(zip(partial.hist_keys, partial.hist_counts)):
            self.hist[b, k] += c

    def update(self, data: np.ndarray, valid: np.ndarray) -> None:
        """Add the valid pixels of ``data`` (bands, h, w)."""
        self.add(StatsPartial.from_array(data, valid, self.dtype))

    def to_partial(self) -> StatsPartial:
        """Everything accumulated so far as one (sparse) :class:`StatsPartial`: what a file stores so that
        statistics of several chip folders can later be merged exactly (:meth:`add` it to another accumulator).

        Example:
            >>> a = StatsAccumulator("uint8", ["g"])
            >>> a.update(np.array([[[1, 2], [3, 4]]], np.uint8), np.ones((2, 2), bool))
            >>> b = StatsAccumulator("uint8", ["g"])
            >>> b.add(a.to_partial())
            >>> b.result() == a.result()
            True
        """
        keys, counts = [], []
        for row in self.hist:
            nz = np.flatnonzero(row)
            keys.append(nz.astype(np.int64))
            counts.append(row[nz].astype(np.int64))
        return StatsPartial(self.dtype, self.count.copy(), self.mean.copy(), self.m2.copy(), self.min.copy(),
                            self.max.copy(), tuple(keys), tuple(counts))

    def merge(self, other: "StatsAccumulator") -> None:
        """Merge another accumulator (e.g. another worker's) into this one."""
        self._check(other.dtype, len(other.names))
        self._merge_moments(other.count, other.mean, other.m2, other.min, other.max)
        self.hist += other.hist

    def _percentile(self, b: int, q: float) -> float:
        n = int(self.count[b])
        if n == 0:
            return float("nan")
        rank = max(1, math.ceil(Fraction(q) * n / 100))
        cum = np.cumsum(self.hist[b])
        key = int(np.searchsorted(cum, rank, side="left"))
        value = _key_value(key, self.dtype)
        return float(min(max(value, self.min[b]), self.max[b]))

    def result(self, percentiles: Sequence[int | float] = PERCENTILES) -> BandStats:
        """The statistics so far (population std; ``nan`` for bands without valid pixels)."""
        bands = []
        for b, name in enumerate(self.names):
            n = int(self.count[b])
            nan = float("nan")
            bands.append(
                BandSummary(
                    name=name,
                    count=n,
                    min=float(self.min[b]) if n else nan,
                    max=float(self.max[b]) if n else nan,
                    mean=float(self.mean[b]) if n else nan,
                    std=float(math.sqrt(max(self.m2[b], 0.0) / n)) if n else nan,
                    percentiles={f"{q:g}": self._percentile(b, q) for q in percentiles},
                )
            )
        return BandStats(tuple(bands))
