"""The one JSON policy of geop2p's files: plain values, non-finite numbers as strings, bounded nesting.

Every JSON geop2p writes — the chip manifest, the model bundle's header, the
evaluation report, ONNX metadata — goes through :func:`to_json` /
:func:`dumps`, and every one it reads through :func:`loads`:

* numpy scalars become Python numbers, tuples become lists, paths strings;
* NaN and ±infinity become the strings ``"nan"``, ``"inf"`` and ``"-inf"``
  (JSON has no such numbers; ``null`` would lose which one it was), and
  :func:`number` reads them back (``null`` too, as NaN, for files written by
  geop2p 0.1);
* :func:`loads` turns every parse failure, including a document nested so
  deep that Python's parser would recurse out of its stack, into one
  :class:`ValueError` with a short reason.

Example:
    >>> dumps({"mean": float("nan"), "max": float("inf"), "n": np.int64(3)}, indent=None)
    '{"mean": "nan", "max": "inf", "n": 3}'
    >>> number("nan") != number("nan"), number("-inf"), number(None)
    (True, -inf, None)
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import numpy as np

__all__ = ["to_json", "dumps", "loads", "number", "nodata_to_json", "MAX_DEPTH"]

#: deepest nesting :func:`loads` accepts (geop2p's own documents are a few levels deep)
MAX_DEPTH = 64


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def to_json(value: Any) -> Any:
    """``value`` as plain JSON values (see the module doc for the rules).

    Example:
        >>> to_json({"a": (1, np.float32(0.5)), "b": [float("-inf")]})
        {'a': [1, 0.5], 'b': ['-inf']}
    """
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps(document: Any, indent: int | None = 2) -> str:
    """``document`` as JSON text under the rules of :func:`to_json`.

    Example:
        >>> dumps([1.5, float("nan")], indent=None)
        '[1.5, "nan"]'
    """
    return json.dumps(to_json(document), indent=indent, allow_nan=False)


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes) -> Any:
    """Parse JSON text; any failure (syntax, encoding, nesting deeper than :data:`MAX_DEPTH`) is a ValueError.

    Example:
        >>> loads('{"a": [1, "nan"]}')
        {'a': [1, 'nan']}
        >>> loads("[" * 1000 + "]" * 1000)
        Traceback (most recent call last):
        ...
        ValueError: JSON nested deeper than 64 levels
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    if _depth(text) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"invalid JSON ({exc})") from None


def number(value: Any) -> float | None:
    """A number read back from geop2p's JSON: numbers, ``"nan"``/``"inf"``/``"-inf"``; ``None`` stays ``None``.

    Raises:
        ValueError: anything else.

    Example:
        >>> number(3), number("inf")
        (3.0, inf)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(value.strip().lower())
    raise ValueError(f"expected a number, \"nan\", \"inf\" or \"-inf\", got {value!r}")


def nodata_to_json(value: float | None) -> float | int | str | None:
    """A nodata value as geop2p's files write it: an integer when whole, a float, ``"nan"``/``"inf"``/``"-inf"``, or null.

    Example:
        >>> nodata_to_json(float("nan")), nodata_to_json(-9999.0), nodata_to_json(0.5), nodata_to_json(None)
        ('nan', -9999, 0.5, None)
    """
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return _float(value)
    return int(value) if value.is_integer() else value
