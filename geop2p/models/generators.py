"""The generator registry: architecture name -> builder, and the spec that names one.

A generator *spec* is the ``generator`` object of a model bundle
(``docs/formats.md``)::

    {"architecture": "smp-unet", "in_channels": 3, "out_channels": 1,
     "params": {"encoder_name": "resnet34"}}

:func:`resolve_generator_spec` checks it and fills in every default, so a bundle
records the full architecture; :func:`build_generator` builds the module and
attaches the resolved spec as ``module.spec``.

Example:
    >>> g = build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1})
    >>> g.spec["params"], required_divisor(g.spec)
    ({}, 1)
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any, Callable, Mapping

import torch
from torch import nn

from geop2p.errors import ConfigError
from geop2p.models.linear import LinearGenerator
from geop2p.models.pix2pix_unet import Pix2PixUnet
from geop2p.models.smp_unet import SmpUnetGenerator

__all__ = ["GENERATORS", "build_generator", "resolve_generator_spec", "required_divisor"]

logger = logging.getLogger(__name__)

#: architecture name -> builder ``(in_channels, out_channels, **params) -> nn.Module``.
GENERATORS: dict[str, Callable[..., nn.Module]] = {
    "smp-unet": SmpUnetGenerator,
    "pix2pix-unet": Pix2PixUnet,
    "linear": LinearGenerator,
}

_SPEC_KEYS = ("architecture", "in_channels", "out_channels", "params")


def _param_defaults(builder: Callable[..., nn.Module]) -> dict[str, Any]:
    """Keyword parameters of ``builder`` beyond the channel counts, with their defaults."""
    params = inspect.signature(builder).parameters
    return {name: p.default for name, p in params.items() if name not in ("self", "in_channels", "out_channels")}


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _check_param_type(architecture: str, name: str, value: Any, default: Any) -> Any:
    """``value`` as JSON if it has the type of ``default`` (any type when the default is None)."""
    if default is None:
        return _json_value(value)
    expected = type(default)
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"{architecture} parameter {name!r} must be of type {expected.__name__} like {default!r}; got {value!r}."
        )
    return _json_value(value)


def resolve_generator_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a generator spec and return a copy with every parameter filled in.

    Raises:
        ConfigError: unknown architecture (lists the valid ones), bad channel counts,
            unknown parameters (lists the valid ones), or wrongly typed parameters.

    Example:
        >>> resolve_generator_spec({"architecture": "pix2pix-unet", "in_channels": 1, "out_channels": 3})["params"]
        {'ngf': 64, 'num_downs': 8, 'norm': 'batch', 'use_dropout': True}
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"A generator spec must be a dict like {{'architecture': 'smp-unet', ...}}; got {spec!r}.")
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ConfigError(f"Unknown generator spec keys {unknown}; valid keys: {', '.join(_SPEC_KEYS)}.")
    architecture = spec.get("architecture")
    if architecture not in GENERATORS:
        raise ConfigError(
            f"Unknown generator architecture {architecture!r}; valid architectures: {', '.join(GENERATORS)}."
        )
    channels = {}
    for key in ("in_channels", "out_channels"):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"Generator {key} must be a positive integer (a band count); got {value!r}.")
        channels[key] = value
    params = dict(spec.get("params") or {})
    defaults = _param_defaults(GENERATORS[architecture])
    bad = sorted(set(params) - set(defaults))
    if bad:
        valid = ", ".join(defaults) or "none"
        raise ConfigError(f"Unknown {architecture} parameters {bad}; valid parameters: {valid}.")
    resolved = {}
    for name, default in defaults.items():
        value = params.get(name, default)
        resolved[name] = _check_param_type(architecture, name, value, default) if name in params else _json_value(value)
    hook = getattr(GENERATORS[architecture], "resolve_params", None)
    if hook is not None:
        resolved = hook(resolved)
    return {"architecture": architecture, **channels, "params": copy.deepcopy(resolved)}


def build_generator(spec: Mapping[str, Any]) -> nn.Module:
    """Build the generator a spec describes (random weights; nothing is downloaded).

    The resolved spec (every default filled in) is attached as ``module.spec`` and the
    input-size divisor as ``module.required_divisor``.

    Example:
        >>> g = build_generator({"architecture": "smp-unet", "in_channels": 4, "out_channels": 1,
        ...                      "params": {"encoder_name": "resnet18"}})
        >>> g.required_divisor
        32
    """
    resolved = resolve_generator_spec(spec)
    builder = GENERATORS[resolved["architecture"]]
    module = builder(resolved["in_channels"], resolved["out_channels"], **resolved["params"])
    module.spec = resolved
    if not hasattr(module, "required_divisor"):
        module.required_divisor = 1
    logger.debug(
        "Built %s generator %s -> %s bands, %d parameters",
        resolved["architecture"],
        resolved["in_channels"],
        resolved["out_channels"],
        sum(p.numel() for p in module.parameters()),
    )
    return module


def required_divisor(spec: Mapping[str, Any]) -> int:
    """The number input height and width must be multiples of for this generator.

    32 for an smp U-Net of depth 5 (the encoder's output stride), ``2**num_downs`` for
    pix2pix-unet, 1 for linear. Computed by building the network on torch's ``meta``
    device, so no memory is allocated.

    Example:
        >>> required_divisor({"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 3})
        256
    """
    with torch.device("meta"):
        module = build_generator(spec)
    return int(module.required_divisor)
