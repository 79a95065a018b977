"""Per-band scaling between a raster's units and the network's range [-1, 1].

A :class:`Normalizer` is a per-band affine map built from the chip manifest's
band statistics (``BandStats.to_dict()``, see ``docs/formats.md``)::

    normalize(x)   = (x - offset) / scale      clipped to [-1, 1] when ``clip``
    denormalize(y) = y * scale + offset        exact inverse inside the range

Methods (``Normalizer.from_stats(stats, method=...)``):

* ``percentile`` (default): robust; the ``low``/``high`` percentiles (2 and 98
  unless told) map to -1 and +1. ``offset = (p_high + p_low) / 2``,
  ``scale = (p_high - p_low) / 2``.
* ``meanstd``: ``offset = mean``, ``scale = 3 * std`` (:data:`MEANSTD_SIGMAS`),
  so mean ± 3σ maps to ±1.
* ``minmax``: the band's minimum and maximum map to -1 and +1.

Each of these clips, so rare outliers saturate instead of pushing the network
outside the range its tanh output can reach. A constant band (zero spread)
gets ``scale = 1`` and a warning instead of a division by zero.

Arrays may be numpy arrays or torch tensors, with the band axis at -3:
``(bands, height, width)`` or ``(batch, bands, height, width)``. Tensors are
handled through their own methods (``new_tensor``), so this module never
imports torch. NaN stays NaN in both directions; masking is the caller's job.

Example:
    >>> stats = {"bands": [{"name": "red", "count": 10, "min": 0.0, "max": 255.0,
    ...          "mean": 100.0, "std": 30.0,
    ...          "percentiles": {"1": 5.0, "2": 10.0, "98": 210.0, "99": 240.0}}]}
    >>> norm = Normalizer.from_stats(stats)
    >>> norm.offset, norm.scale
    ((110.0,), (100.0,))
    >>> import numpy as np
    >>> norm.normalize(np.array([[[10.0, 110.0, 250.0]]])).tolist()
    [[[-1.0, 0.0, 1.0]]]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from geop2p.errors import ConfigError, InputError

__all__ = ["Normalizer", "METHODS", "MEANSTD_SIGMAS"]

logger = logging.getLogger(__name__)

#: Methods :meth:`Normalizer.from_stats` accepts (``identity`` comes from :meth:`Normalizer.identity`).
METHODS: tuple[str, ...] = ("percentile", "meanstd", "minmax")
_ALL_METHODS: tuple[str, ...] = METHODS + ("identity",)

#: ``meanstd`` maps mean ± ``MEANSTD_SIGMAS`` standard deviations to ±1.
MEANSTD_SIGMAS: float = 3.0

_DICT_KEYS = ("method", "offset", "scale", "clip", "low", "high")


def _is_tensor(x: Any) -> bool:
    """True for a torch tensor, recognised without importing torch."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "new_tensor")


def percentile_key(value: Any) -> str:
    """The manifest's key for a percentile: ``2`` -> ``"2"``, ``2.5`` -> ``"2.5"``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _stats_bands(stats: Any) -> list[Mapping[str, Any]]:
    """The list of per-band dicts of a ``BandStats`` object or its ``to_dict()``."""
    doc = stats.to_dict() if hasattr(stats, "to_dict") else stats
    if not isinstance(doc, Mapping) or not isinstance(doc.get("bands"), (list, tuple)):
        raise ConfigError(
            f"Band statistics must be a BandStats or a dict like {{'bands': [{{'name': ..., 'min': ..., ...}}]}}; "
            f"got {type(doc).__name__}. Use the 'stats' section of the chip manifest (geop2p-chips.json)."
        )
    if not doc["bands"]:
        raise ConfigError("Band statistics hold no bands; expected one entry per band of the chips.")
    return list(doc["bands"])


def _number(band: Mapping[str, Any], key: str, index: int) -> float:
    value = band.get(key)
    name = band.get("name", f"band_{index + 1}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(
            f"Band '{name}' statistic '{key}' is {value!r}; expected a finite number. "
            "Re-export the chips (geop2p export-chips) so the manifest holds complete statistics."
        )
    return number


@dataclass(frozen=True)
class Normalizer:
    """A per-band affine map from raster units to the network's range and back.

    Attributes:
        method: ``percentile``, ``meanstd``, ``minmax`` or ``identity``.
        offset: per band, the raw value that maps to 0.
        scale: per band, the raw distance that maps to 1 (never 0).
        clip: clip normalized values to [-1, 1].
        low: lower percentile used (``percentile`` only, else None).
        high: upper percentile used (``percentile`` only, else None).

    Example:
        >>> n = Normalizer("percentile", (127.5,), (127.5,), True, 2, 98)
        >>> float(n.denormalize(n.normalize(np.full((1, 1, 1), 200.0)))[0, 0, 0])
        200.0
    """

    method: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]
    clip: bool
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.method not in _ALL_METHODS:
            raise ConfigError(
                f"Unknown normalization method {self.method!r}; valid methods: {', '.join(_ALL_METHODS)}."
            )
        try:
            offset = tuple(float(v) for v in self.offset)
            scale = tuple(float(v) for v in self.scale)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Normalizer offset and scale must be lists of numbers; {exc}.") from None
        if not offset or len(offset) != len(scale):
            raise ConfigError(
                f"Normalizer needs one offset and one scale per band; got {len(offset)} offsets "
                f"and {len(scale)} scales."
            )
        if not all(math.isfinite(v) for v in offset + scale) or any(v == 0 for v in scale):
            raise ConfigError(
                f"Normalizer offsets and scales must be finite and scales non-zero; got offset={list(offset)}, "
                f"scale={list(scale)}."
            )
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "clip", bool(self.clip))
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None:
                value = float(value)
                object.__setattr__(self, name, int(value) if value.is_integer() else value)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_stats(
        cls,
        stats: Any,
        method: str = "percentile",
        low: float = 2,
        high: float = 98,
        clip: bool = True,
    ) -> "Normalizer":
        """Build a normalizer from band statistics.

        Args:
            stats: a ``BandStats`` (anything with ``to_dict()``) or its dict form
                ``{"bands": [{"name", "count", "min", "max", "mean", "std", "percentiles"}]}``.
            method: ``percentile`` (default), ``meanstd`` or ``minmax``.
            low: lower percentile for ``percentile`` (must be one the statistics hold).
            high: upper percentile for ``percentile``.
            clip: clip normalized values to [-1, 1] (default True).

        Returns:
            A normalizer with one offset and scale per band.

        Raises:
            ConfigError: unknown method, percentile not in the statistics, missing values.

        Example:
            >>> s = {"bands": [{"name": "dsm", "count": 4, "min": 0.0, "max": 10.0, "mean": 5.0,
            ...                 "std": 1.0, "percentiles": {"2": 1.0, "98": 9.0}}]}
            >>> Normalizer.from_stats(s, method="meanstd").scale
            (3.0,)
        """
        if method not in METHODS:
            raise ConfigError(f"Unknown normalization method {method!r}; valid methods: {', '.join(METHODS)}.")
        bands = _stats_bands(stats)
        offsets: list[float] = []
        scales: list[float] = []
        if method == "percentile":
            low_key, high_key = percentile_key(low), percentile_key(high)
            if float(low) >= float(high):
                raise ConfigError(f"Percentile low ({low}) must be below high ({high}), e.g. low=2, high=98.")
        for i, band in enumerate(bands):
            name = band.get("name", f"band_{i + 1}")
            if band.get("count") is not None and int(band["count"]) == 0:
                raise ConfigError(
                    f"Band '{name}' has no valid pixels in the training statistics (count 0); "
                    "check the band's nodata value or leave the band out."
                )
            if method == "percentile":
                available = band.get("percentiles") or {}
                missing = [k for k in (low_key, high_key) if k not in available]
                if missing:
                    valid = ", ".join(sorted(available, key=lambda k: float(k))) or "none"
                    raise ConfigError(
                        f"Percentile {', '.join(missing)} is not in the statistics of band '{name}'; "
                        f"available percentiles: {valid}. Choose low/high among them."
                    )
                p_low = _number(available, low_key, i)
                p_high = _number(available, high_key, i)
                offset, spread = (p_high + p_low) / 2.0, (p_high - p_low) / 2.0
            elif method == "meanstd":
                offset, spread = _number(band, "mean", i), MEANSTD_SIGMAS * _number(band, "std", i)
            else:  # minmax
                b_min, b_max = _number(band, "min", i), _number(band, "max", i)
                offset, spread = (b_max + b_min) / 2.0, (b_max - b_min) / 2.0
            if not spread > 0:
                logger.warning(
                    "Band '%s' is constant in the statistics (%s spread %s); using scale 1 so it maps to about 0.",
                    name,
                    method,
                    spread,
                )
                spread = 1.0
            offsets.append(offset)
            scales.append(spread)
        keep_pct = method == "percentile"
        return cls(
            method=method,
            offset=tuple(offsets),
            scale=tuple(scales),
            clip=clip,
            low=low if keep_pct else None,
            high=high if keep_pct else None,
        )

    @classmethod
    def identity(cls, n_bands: int) -> "Normalizer":
        """A normalizer that changes nothing (offset 0, scale 1, no clipping).

        Example:
            >>> Normalizer.identity(2).to_dict()["scale"]
            [1.0, 1.0]
        """
        if int(n_bands) < 1:
            raise InputError(f"Normalizer.identity needs at least one band; got n_bands={n_bands}.")
        return cls("identity", (0.0,) * int(n_bands), (1.0,) * int(n_bands), False, None, None)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Normalizer":
        """Rebuild a normalizer from :meth:`to_dict` output (as stored in a model bundle).

        Example:
            >>> Normalizer.from_dict({"method": "minmax", "offset": [1], "scale": [2], "clip": True}).n_bands
            1
        """
        if not isinstance(doc, Mapping):
            raise ConfigError(f"A normalizer must be a JSON object; got {type(doc).__name__}.")
        missing = [k for k in ("method", "offset", "scale") if k not in doc]
        unknown = sorted(set(doc) - set(_DICT_KEYS))
        if missing or unknown:
            raise ConfigError(
                f"Normalizer document has missing keys {missing} / unknown keys {unknown}; "
                f"expected keys: {', '.join(_DICT_KEYS)}."
            )
        if not isinstance(doc["offset"], (list, tuple)) or not isinstance(doc["scale"], (list, tuple)):
            raise ConfigError("Normalizer 'offset' and 'scale' must be lists with one number per band.")
        return cls(
            method=doc["method"],
            offset=tuple(doc["offset"]),
            scale=tuple(doc["scale"]),
            clip=bool(doc.get("clip", True)),
            low=doc.get("low"),
            high=doc.get("high"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in model bundles (see ``docs/formats.md``)."""
        return {
            "method": self.method,
            "offset": list(self.offset),
            "scale": list(self.scale),
            "clip": self.clip,
            "low": self.low,
            "high": self.high,
        }

    # ------------------------------------------------------------------ properties
    @property
    def n_bands(self) -> int:
        """Number of bands this normalizer maps."""
        return len(self.offset)

    def linear_params(self, like: Any = None) -> tuple[Any, Any]:
        """``(offset, scale)`` shaped ``(bands, 1, 1)`` for folding into a graph (e.g. ONNX export).

        Args:
            like: None for float32 numpy arrays, or a torch tensor whose device and
                floating dtype the returned tensors take.

        Example:
            >>> off, sc = Normalizer.identity(3).linear_params()
            >>> off.shape, sc.dtype.name
            ((3, 1, 1), 'float32')
        """
        offset = np.asarray(self.offset, dtype=np.float32).reshape(-1, 1, 1)
        scale = np.asarray(self.scale, dtype=np.float32).reshape(-1, 1, 1)
        if like is None or isinstance(like, np.ndarray):
            return offset, scale
        if not _is_tensor(like):
            raise InputError(f"Expected a numpy array or a torch tensor; got {type(like).__name__}.")
        like = like if like.is_floating_point() else like.float()
        return like.new_tensor(offset), like.new_tensor(scale)

    # ------------------------------------------------------------------ mapping
    def _check_shape(self, x: Any, what: str) -> None:
        shape = tuple(x.shape)
        if len(shape) < 3 or shape[-3] != self.n_bands:
            raise InputError(
                f"Cannot {what} an array of shape {shape}: expected {self.n_bands} band(s) on axis -3, "
                "i.e. (bands, height, width) or (batch, bands, height, width)."
            )

    def _as_float(self, x: Any) -> tuple[Any, Any, Any]:
        """``x`` as floating point plus matching (offset, scale)."""
        if isinstance(x, np.ndarray) or np.isscalar(x):
            arr = np.asarray(x)
            dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float32
            arr = arr.astype(dtype, copy=False)
            offset = np.asarray(self.offset, dtype=dtype).reshape(-1, 1, 1)
            scale = np.asarray(self.scale, dtype=dtype).reshape(-1, 1, 1)
            return arr, offset, scale
        if not _is_tensor(x):
            raise InputError(f"Expected a numpy array or a torch tensor; got {type(x).__name__}.")
        t = x if x.is_floating_point() else x.float()
        offset, scale = self.linear_params(like=t)
        return t, offset, scale

    def normalize(self, x: Any) -> Any:
        """Raw band values → network range: ``(x - offset) / scale``, clipped to [-1, 1] when ``clip``.

        Integer input is computed in float32; float input keeps its precision.
        Returns the same kind of array as given (numpy or torch).

        Example:
            >>> Normalizer("minmax", (5.0,), (5.0,), True).normalize(np.array([[[0, 5, 99]]])).tolist()
            [[[-1.0, 0.0, 1.0]]]
        """
        self._check_shape(x, "normalize")
        arr, offset, scale = self._as_float(x)
        out = (arr - offset) / scale
        if self.clip:
            out = out.clip(-1.0, 1.0)
        return out

    def denormalize(self, y: Any) -> Any:
        """Network range → raw band values: ``y * scale + offset`` (the exact inverse of :meth:`normalize`).

        Example:
            >>> Normalizer("minmax", (5.0,), (5.0,), True).denormalize(np.array([[[-1.0, 1.0]]])).tolist()
            [[[0.0, 10.0]]]
        """
        self._check_shape(y, "denormalize")
        arr, offset, scale = self._as_float(y)
        return arr * scale + offset
