"""How each target band travels through Deepness's uint8 result buffer, and how to decode it.

Deepness 0.6.5 writes every regression result into a ``uint8`` buffer
(``map_processor.py:181-191``) and keeps only channel 0 of each ONNX output
(``map_processor_regression.py:170``).  A value survives that buffer exactly
only when it is a whole number from 0 to 255, so each band is carried as one
or two byte *planes*, each its own ``(1, 1, N, N)`` output:

``byte`` (the default for uint8 targets)
    One plane: the band rounded and clipped to 0..255, exactly what ``geop2p
    predict`` writes (invalid input pixels hold the target's nodata value; a
    valid pixel that would equal it is nudged off by one, as
    ``predict/engine.TargetCast`` does).

``split16`` (the default for every other target)
    Two planes, ``<band>_hi`` and ``<band>_lo``, the high and low byte of a
    16-bit code.  Code 0 marks nodata (an invalid input pixel); codes 1..65535
    cover the band's output range: ``value = base + (code - 1) * step``.  For a
    float band the range is the de-normalised tanh range ``[offset - scale,
    offset + scale]`` of the target normaliser, so ``step = 2 * scale / 65534``
    and the error is at most ``step / 2`` (7.6e-6 of the range).  For an integer
    band whose whole values fit in 65535 codes, ``step = 1``: exact.

``float``
    One ``(1, C, N, N)`` float32 output in target units, for ONNX consumers other
    than Deepness (there it would arrive as one truncated byte layer).

Every plane is named (``class_names``); Deepness names a layer after the text
of its file name before ``"___"``, and the file is ``f"{class_name}__{uuid}.tif"``
(``map_processor_regression.py:89, 105``), so a class name ending in ``_``
gives a layer called exactly the plane's name, which the Raster Calculator
expressions below refer to.

Example:
    >>> code = BandCode.split16("dem", low=1000.0, high=2000.0)
    >>> code.planes, code.expression()
    (('dem_hi', 'dem_lo'), '(1000 + ("dem_hi@1" * 256 + "dem_lo@1" - 1) * 0.015259254737998596) / (("dem_hi@1" * 256 + "dem_lo@1") > 0)')
    >>> import numpy as np
    >>> code.decode([np.array([0.0, 0.0, 255.0]), np.array([0.0, 1.0, 255.0])]).tolist()
    [nan, 1000.0, 2000.0]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from geop2p.errors import InputError
from geop2p.formats import jsonsafe

__all__ = ["BandCode", "SPLIT16_STEPS", "plan_band_codes", "plane_names"]

#: split16 codes 1..65535 span the band's range: 65534 steps (code 0 is nodata).
SPLIT16_STEPS = 65534


def _number(value: float) -> str:
    """A number as the Raster Calculator expression writes it (shortest exact repr)."""
    value = float(value)
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


@dataclass(frozen=True)
class BandCode:
    """How one target band leaves the graph.

    Attributes:
        band: the target band's name.
        kind: ``byte``, ``split16`` or ``float``.
        low, high: the band's output range in target units (what the graph can emit).
        base: ``split16``: the value of code 1; ``byte``: 0.
        step: ``split16``: target units per code; ``byte``: 1.
        integer: values are whole numbers (an integer target: rounded and clipped to its dtype).
        nodata: the value invalid pixels hold (``byte``: the target's nodata, or None when it has
            none and invalid pixels keep their prediction); ``split16`` always uses code 0.
        nudge: for an integer target with nodata: the value a valid pixel equal to the nodata becomes.
        planes: the names of this band's ONNX outputs (and Deepness layers).
    """

    band: str
    kind: str
    low: float
    high: float
    base: float = 0.0
    step: float = 1.0
    integer: bool = False
    nodata: float | None = None
    nudge: float | None = None
    planes: tuple[str, ...] = ()

    @classmethod
    def split16(cls, band: str, low: float, high: float, integer: bool = False, plane: str | None = None,
                nodata: float | None = None, nudge: float | None = None) -> "BandCode":
        """A 16-bit code over ``[low, high]`` (exact whole numbers when ``integer`` and they fit).

        Example:
            >>> BandCode.split16("count", 0, 1000, integer=True).step
            1.0
        """
        name = plane or band
        if integer and high - low + 1 <= SPLIT16_STEPS + 1:
            base, step = float(low), 1.0
        else:
            base, step = float(low), (float(high) - float(low)) / SPLIT16_STEPS or 1.0
        return cls(band, "split16", float(low), float(high), base, step, integer, nodata, nudge,
                   (f"{name}_hi", f"{name}_lo"))

    # ------------------------------------------------------------------ numbers
    @property
    def max_error(self) -> float:
        """The largest decoding error in target units (0 when exact)."""
        if self.kind == "split16" and not (self.integer and self.step == 1.0):
            return self.step / 2
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written into the ONNX metadata (``geop2p.deepness.bands``)."""
        return {"band": self.band, "kind": self.kind, "low": self.low, "high": self.high, "base": self.base,
                "step": self.step, "integer": self.integer, "nodata": self.nodata, "nudge": self.nudge,
                "planes": list(self.planes)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "BandCode":
        """Rebuild from :meth:`to_dict` (as read back from the ONNX metadata under the JSON policy).

        Example:
            >>> code = BandCode.split16("h", 0.0, 10.0, nodata=float("nan"))
            >>> BandCode.from_dict(jsonsafe.loads(jsonsafe.dumps(code.to_dict()))).step == code.step
            True
        """
        num = jsonsafe.number
        return cls(str(doc["band"]), str(doc["kind"]), num(doc["low"]), num(doc["high"]), num(doc["base"]),
                   num(doc["step"]), bool(doc["integer"]), num(doc.get("nodata")), num(doc.get("nudge")),
                   tuple(str(p) for p in doc["planes"]))

    # ------------------------------------------------------------------ decoding
    def decode(self, planes: Sequence[np.ndarray]) -> np.ndarray:
        """The band in target units (float64) from its planes as Deepness delivers them; NaN = nodata.

        ``byte`` planes come back as they are, with NaN where they equal the nodata value.
        """
        if self.kind == "split16":
            hi, lo = (np.asarray(p, dtype=np.float64) for p in planes)
            code = hi * 256.0 + lo
            out = self.base + (code - 1.0) * self.step
            out[code == 0] = np.nan
            return out
        (plane,) = planes
        out = np.array(plane, dtype=np.float64)
        if self.kind == "byte" and self.nodata is not None:
            out[out == self.nodata] = np.nan
        return out

    def expression(self) -> str:
        """The QGIS Raster Calculator expression that decodes this band from Deepness's layers.

        Division by ``(code > 0)`` makes the Raster Calculator write nodata where the code is 0.
        """
        if self.kind == "split16":
            hi, lo = (f'"{p}@1"' for p in self.planes)
            code = f"{hi} * 256 + {lo}"
            if self.step == 1.0:
                value = f"({_number(self.base - 1)} + {code})"
            else:
                value = f"({_number(self.base)} + ({code} - 1) * {_number(self.step)})"
            return f"{value} / (({code}) > 0)"
        (plane,) = self.planes
        if self.kind == "byte" and self.nodata is not None:
            return f'"{plane}@1" / ("{plane}@1" != {_number(self.nodata)})'
        return f'"{plane}@1"'


def plane_names(band_names: Sequence[str]) -> list[str]:
    """Band names made safe and unique for ONNX output and Deepness layer names.

    Example:
        >>> plane_names(["red", "near ir", "red", ""])
        ['red', 'near_ir', 'red_2', 'band4']
    """
    out: list[str] = []
    for i, name in enumerate(band_names):
        safe = re.sub(r"[^0-9A-Za-z-]+", "_", str(name)).strip("_") or f"band{i + 1}"
        candidate, k = safe, 2
        while candidate in out:
            candidate, k = f"{safe}_{k}", k + 1
        out.append(candidate)
    return out


def _integer_range(low: float, high: float, dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    lo = int(min(max(np.rint(low), info.min), info.max))
    hi = int(min(max(np.rint(high), info.min), info.max))
    return lo, hi


def _nudge(nodata: float | None, dtype: np.dtype) -> float | None:
    """``predict/engine.TargetCast``'s rule: a valid value equal to the nodata moves one up (down at the top)."""
    if nodata is None or not np.issubdtype(dtype, np.integer):
        return None
    info = np.iinfo(dtype)
    if not (math.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max):
        return None
    return float(nodata - 1 if nodata == info.max else nodata + 1)


def plan_band_codes(
    band_names: Sequence[str], offsets: Sequence[float], scales: Sequence[float], dtype: str,
    nodata: float | None, encoding: str,
) -> tuple[tuple[BandCode, ...], list[str]]:
    """Choose each target band's code; return them and the warnings to show.

    Args:
        band_names: the target's band names.
        offsets, scales: the target normaliser's per-band ``offset`` and ``scale``.
        dtype: the target's data type.
        nodata: the target's nodata value (NaN allowed) or None.
        encoding: ``auto``, ``byte``, ``split16`` or ``float``.

    Raises:
        InputError: ``byte`` asked for a band whose range does not fit 0..255.

    Example:
        >>> codes, notes = plan_band_codes(["red"], [127.5], [127.5], "uint8", 0, "auto")
        >>> codes[0].kind, codes[0].nodata, codes[0].nudge, notes
        ('byte', 0.0, 1.0, [])
    """
    dt = np.dtype(dtype)
    is_int = bool(np.issubdtype(dt, np.integer))
    kind = encoding if encoding != "auto" else ("byte" if dt == np.uint8 else "split16")
    names = plane_names(band_names)
    nudge = _nudge(nodata, dt)
    int_nodata = nudge is not None
    codes: list[BandCode] = []
    notes: list[str] = []
    for name, plane, off, sc in zip(band_names, names, offsets, scales):
        low, high = float(off) - abs(float(sc)), float(off) + abs(float(sc))
        if is_int:
            low, high = map(float, _integer_range(low, high, dt))
            if int_nodata and low <= nodata <= high:  # a valid pixel may be nudged just past the range
                low, high = min(low, nudge), max(high, nudge)
        if kind == "float":
            codes.append(BandCode(name, "float", low, high, integer=is_int, nodata=nodata, nudge=nudge,
                                  planes=(plane,)))
            continue
        if kind == "byte":
            if low < -0.5 or high > 255.5:
                raise InputError(
                    f"--deepness-encoding byte cannot carry band '{name}': its output range {low:g}..{high:g} "
                    "leaves 0..255, and Deepness writes results into a uint8 buffer where such values wrap "
                    "(300.7 → 44, -5.2 → 251); use --deepness-encoding split16."
                )
            byte_nodata = float(nodata) if int_nodata and 0 <= nodata <= 255 else None
            if nodata is not None and byte_nodata is None:
                notes.append(
                    f"band '{name}': the target nodata {nodata!r} is not a whole number 0..255, so invalid "
                    "input pixels cannot be marked in a byte plane (they hold the prediction); use "
                    "--deepness-encoding split16 to get code 0 there."
                )
            elif nodata is None:
                notes.append(
                    f"band '{name}': the target has no nodata value, so invalid input pixels hold the "
                    "prediction (geop2p predict masks them); use --deepness-encoding split16 to mark them."
                )
            if not is_int:
                notes.append(
                    f"band '{name}' is {dt.name} but the byte encoding rounds it to whole units "
                    f"(error up to 0.5 = {0.5 / max(high - low, 1e-12):.2g} of its range); split16 keeps "
                    f"{(high - low) / SPLIT16_STEPS / 2:.3g}."
                )
            # clipped to 0..255 like geop2p predict's uint8 cast (the range check above is what the band reaches)
            codes.append(BandCode(name, "byte", 0.0, 255.0, 0.0, 1.0, True,
                                  byte_nodata, nudge if byte_nodata is not None else None, (plane,)))
            continue
        code = BandCode.split16(name, low, high, integer=is_int, plane=plane, nodata=nodata,
                                nudge=nudge if int_nodata else None)
        if is_int and code.step != 1.0:
            notes.append(
                f"band '{name}' spans {high - low + 1:.0f} whole values, more than the 65535 codes of 16 bits: "
                f"decoded values are within {code.step / 2:.3g} of geop2p predict's whole numbers, not exact."
            )
        codes.append(code)
    return tuple(codes), notes
