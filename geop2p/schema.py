"""One way to turn YAML files and CLI flags into a command's frozen config dataclass.

Every command has one frozen dataclass that *is* its schema (``ExportConfig``,
``TrainConfig``, ``PredictConfig``).  They inherit :class:`ConfigSchema`, which
gives them the same behaviour everywhere:

* :meth:`~ConfigSchema.from_dict` refuses unknown keys, listing the valid ones;
* every value is converted to the field's declared type (read from the type
  hints, not from their spelling): ``"8"`` → ``8`` for an ``int``,
  ``"yes"`` → ``True`` for a ``bool``, ``"1,2,3"`` or ``[1, 2, 3]`` →
  ``(1, 2, 3)`` for a ``tuple[int, ...]``; ``None`` only where the type allows it;
* a value that cannot be converted is a :class:`~geop2p.errors.ConfigError`
  that names the key, what it got and what it expected;
* :meth:`~ConfigSchema.from_yaml`, :meth:`~ConfigSchema.merge`,
  :meth:`~ConfigSchema.to_dict` and :meth:`~ConfigSchema.to_yaml` round-trip.

Range checks (a positive batch size, fractions that add up) stay in each
config's ``__post_init__``, after the conversion.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo(ConfigSchema):
    ...     size: int = 256
    ...     bands: tuple[int, ...] | None = None
    ...     def __post_init__(self):
    ...         self.coerce_fields()
    >>> Demo.from_dict({"size": "128", "bands": "1,2"})
    Demo(size=128, bands=(1, 2))
    >>> Demo.from_dict({"sise": 1})
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: Unknown option(s) sise; valid options: size, bands.
    >>> Demo(size="big")
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: size: expected a whole number, got 'big'.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from geop2p.errors import ConfigError

__all__ = ["ConfigSchema", "coerce_value"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _describe(tp: Any) -> str:
    """How an error message names a type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or null" if type(None) in args else "")
    if origin is tuple:
        plural = {int: "whole numbers", float: "numbers", str: "strings", bool: "true/false values"}
        return f"a list of {plural.get(args[0], 'values')}" if args else "a list"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string",
            dict: "a mapping (key: value)"}.get(tp, getattr(tp, "__name__", str(tp)))


def coerce_value(name: str, value: Any, tp: Any) -> Any:
    """``value`` converted to the type ``tp`` (a type hint), or a :class:`ConfigError` naming ``name``.

    Example:
        >>> coerce_value("workers", "4", int), coerce_value("lr", 1, float), coerce_value("cog", "on", bool)
        (4, 1.0, True)
        >>> coerce_value("split", 0.8, tuple[float, ...])
        Traceback (most recent call last):
        ...
        geop2p.errors.ConfigError: split: expected a list of numbers, got 0.8.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{name}: a value is required ({_describe(tp)}), got null.")
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce_value(name, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {_describe(tp)}, got {value!r}.")
    if value is None:
        raise ConfigError(f"{name}: a value is required ({_describe(tp)}), got null.")
    fail = ConfigError(f"{name}: expected {_describe(tp)}, got {value!r}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise fail
    if tp is int:
        if isinstance(value, bool):
            raise fail
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise fail from None
        raise fail
    if tp is float:
        if isinstance(value, bool):
            raise fail
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise fail from None
        raise fail
    if tp is str:
        if isinstance(value, (dict, list, tuple, set, bool)):
            raise fail
        return str(value)
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise fail
        return dict(value)
    if origin is tuple:
        item = args[0] if args else Any
        if isinstance(value, str):
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise fail
        if item is Any:
            return tuple(value)
        return tuple(coerce_value(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    return value


class ConfigSchema:
    """Mixin of the frozen config dataclasses: conversion, unknown-key checks, YAML in and out.

    Subclasses are ``@dataclass(frozen=True)`` and call :meth:`coerce_fields`
    first thing in ``__post_init__``.  ``what`` names the options in messages
    (``"export option"``, ``"training option"``...).
    """

    what: ClassVar[str] = "option"

    @classmethod
    @functools.cache
    def _hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names, in schema order (fields set by ``__init__``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]

    def coerce_fields(self) -> None:
        """Convert every init field to its declared type in place (call from ``__post_init__``)."""
        hints = self._hints()
        for name in self.keys():
            object.__setattr__(self, name, coerce_value(name, getattr(self, name), hints[name]))

    @classmethod
    def check_keys(cls, data: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
        """``data`` with ``-`` in keys turned into ``_``; unknown keys are an error listing the valid ones."""
        if not isinstance(data, Mapping):
            where = f" in '{source}'" if source else ""
            raise ConfigError(f"The {cls.what}s{where} must be a mapping (key: value), got {type(data).__name__}.")
        out = {str(k).replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(out) - set(cls.keys()))
        if unknown:
            where = f" in '{source}'" if source else ""
            raise ConfigError(
                f"Unknown {cls.what}(s) {', '.join(unknown)}{where}; valid {cls.what}s: {', '.join(cls.keys())}."
            )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str | None = None):
        """Build from a mapping (YAML document, flags); unknown keys and bad values are errors."""
        return cls(**cls.check_keys(dict(data or {}), source))  # type: ignore[call-arg]

    @classmethod
    def read_yaml(cls, path: str | os.PathLike, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
        """The options of a YAML file as a dict with its keys checked (``ignore``: keys dropped first)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file '{p}' not found; give a YAML file of {cls.what}s.")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"Cannot read '{p}' as YAML ({first}); expected a mapping of {cls.what}s.") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"'{p}' must hold a mapping of {cls.what}s (key: value), got {type(data).__name__}.")
        for key in ignore:
            data.pop(key, None)
        return cls.check_keys(data, str(p))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, ignore: tuple[str, ...] = ()):
        """Build from a YAML file of options."""
        return cls.from_dict(cls.read_yaml(path, ignore), str(path))

    def to_dict(self) -> dict[str, Any]:
        """The options as plain YAML/JSON values (tuples become lists)."""

        def plain(v: Any) -> Any:
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {name: plain(getattr(self, name)) for name in self.keys()}

    def to_yaml(self) -> str:
        """The options as YAML text, in schema order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def merge(self, overrides: Mapping[str, Any]):
        """A new config with ``overrides`` applied; keys whose value is None are ignored."""
        extra = self.check_keys({k: v for k, v in overrides.items() if v is not None})
        return type(self).from_dict({**self.to_dict(), **extra})

    def replace(self, **changes: Any):
        """A copy with ``changes`` (converted and validated like any other value)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
