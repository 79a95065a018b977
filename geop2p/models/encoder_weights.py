"""Pretrained encoder weights for the smp U-Net generator: a local file (offline) or an smp hub name.

``weights`` is one of:

* ``None`` / ``"none"``: keep the random initialisation;
* a path to a local ``.safetensors``, ``.pt`` or ``.pth`` file holding an encoder
  state dict (bare encoder keys, or keys prefixed ``encoder.`` as in an smp model's
  state dict). ``.pt``/``.pth`` are read with ``torch.load(weights_only=True)``, so
  nothing but tensors is ever unpickled. When the file's first convolution was
  trained on a different number of bands (e.g. RGB weights for a 4-band input) it
  is adapted the way smp does: summed for one band, repeated and rescaled otherwise;
* a hub name such as ``imagenet``: downloaded by smp (needs internet).

Example:
    >>> from geop2p.models import build_generator
    >>> g = build_generator({"architecture": "smp-unet", "in_channels": 4, "out_channels": 1,
    ...                      "params": {"encoder_name": "resnet18"}})
    >>> load_encoder_weights(g, "none")  # doctest: +SKIP
    >>> load_encoder_weights(g, "resnet18_rgb.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from geop2p.errors import ConfigError

__all__ = ["load_encoder_weights", "adapt_first_conv", "read_weights_file", "WEIGHT_SUFFIXES"]

logger = logging.getLogger(__name__)

#: File suffixes :func:`load_encoder_weights` reads from disk.
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pt", ".pth")

_NESTED_KEYS = ("state_dict", "model", "encoder", "generator")


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-convolution weight ``(out, c, kh, kw)`` to ``in_channels`` inputs, as smp does.

    One band: the pretrained filters summed over their inputs. Otherwise input
    ``i`` reuses pretrained input ``i % c`` and all are scaled by ``c / in_channels``
    so the response to a uniform image keeps about its size (exactly when
    ``in_channels`` is a multiple of ``c``).

    Example:
        >>> w = torch.ones(8, 3, 3, 3)
        >>> adapt_first_conv(w, 1).shape, float(adapt_first_conv(w, 4)[0, 3, 0, 0])
        (torch.Size([8, 1, 3, 3]), 0.75)
    """
    src = weight.shape[1]
    if in_channels == src:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_channels) % src
    return weight[:, index] * (src / in_channels)


def _unnest(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded file (checkpoints often nest it under 'state_dict' or 'model')."""
    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        if isinstance(obj, Mapping):
            nested = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
            if nested is not None:
                obj = nested
                continue
        break
    raise ConfigError(
        f"Encoder weights file '{path}' does not hold a state dict of tensors (found {type(obj).__name__}); "
        "save one with torch.save(model.encoder.state_dict(), path) or safetensors.torch.save_file."
    )


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a tensor dict from a ``.safetensors``/``.pt``/``.pth`` file without unpickling objects.

    Example:
        >>> read_weights_file("encoder.safetensors")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Encoder weights file '{path}' does not exist; pass an existing file, 'none' or 'imagenet'.")
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"Encoder weights file '{path}' has suffix {suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}."
        )
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise ConfigError(
            f"Encoder weights file '{path}' holds Python objects besides tensors, which geop2p refuses to "
            f"unpickle ({str(exc).splitlines()[0]}); save only the state dict, e.g. "
            "torch.save(model.encoder.state_dict(), path)."
        ) from exc
    except Exception as exc:  # corrupt or truncated files raise many kinds of errors
        raise ConfigError(f"Cannot read encoder weights file '{path}': {exc}") from exc
    return _unnest(obj, path)


def _encoder_keys(state: Mapping[str, torch.Tensor], own_keys: set[str]) -> dict[str, torch.Tensor]:
    """Bare encoder keys as they are; otherwise the ``...encoder.`` prefixed keys of a whole model, stripped."""
    if own_keys <= set(state):
        return dict(state)
    marker = "encoder."
    stripped = {}
    for key, value in state.items():
        pos = key.find(marker)
        if pos >= 0 and (pos == 0 or key[pos - 1] == "."):
            stripped[key[pos + len(marker) :]] = value
    return stripped if stripped else dict(state)


def _load_into_encoder(encoder: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``encoder`` strictly, adapting first-conv input channels."""
    own = encoder.state_dict()
    state = _encoder_keys(state, set(own))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ConfigError(
            f"Encoder weights from {source} do not fit this encoder: {len(missing)} missing key(s) "
            f"{missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]}. "
            "Use weights saved from the same smp encoder (same --encoder name and depth)."
        )
    adapted: dict[str, torch.Tensor] = {}
    for key, target in own.items():
        value = state[key]
        if value.shape != target.shape:
            same_but_inputs = (
                value.ndim == 4 and target.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]
            )
            if not same_but_inputs:
                raise ConfigError(
                    f"Encoder weights from {source}: tensor {key!r} has shape {tuple(value.shape)}, the encoder "
                    f"expects {tuple(target.shape)}. Use weights of the same encoder architecture."
                )
            logger.info(
                "Adapting %s from %d to %d input channels (as smp does for pretrained weights)",
                key,
                value.shape[1],
                target.shape[1],
            )
            value = adapt_first_conv(value, target.shape[1])
        adapted[key] = value.to(dtype=target.dtype)
    encoder.load_state_dict(adapted, strict=True)


def _hub_encoder_state(generator: nn.Module, weights: str) -> dict[str, torch.Tensor]:
    """Download ``weights`` for the generator's encoder through smp and return its state dict."""
    import segmentation_models_pytorch as smp

    name = generator.encoder_name
    settings = smp.encoders.encoders.get(name, {}).get("pretrained_settings", {})
    if not name.startswith("tu-") and weights not in settings:
        valid = ", ".join(settings) or "none (no pretrained weights are published for it)"
        raise ConfigError(
            f"Encoder {name!r} has no pretrained weights named {weights!r}; available: {valid}. "
            "Or pass a local weights file with --encoder-weights PATH."
        )
    try:
        encoder = smp.encoders.get_encoder(
            name,
            in_channels=generator.in_channels,
            depth=generator.encoder_depth,
            weights=True if name.startswith("tu-") else weights,
        )
    except Exception as exc:  # network errors come from requests, urllib3, huggingface_hub, timm...
        raise ConfigError(
            f"Could not download {weights!r} weights for encoder {name!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no details'}); pass a local weights file with "
            "--encoder-weights PATH."
        ) from exc
    return encoder.state_dict()


def load_encoder_weights(generator: nn.Module, weights: str | os.PathLike | None) -> nn.Module:
    """Load pretrained weights into ``generator``'s encoder (in place) and return the generator.

    Args:
        generator: an ``smp-unet`` generator from :func:`geop2p.models.build_generator`.
        weights: ``None``/``"none"``, a local ``.safetensors``/``.pt``/``.pth`` file, or an smp
            hub name such as ``"imagenet"`` (needs internet).

    Raises:
        ConfigError: not an smp-unet, missing/unreadable file, keys or shapes that do not fit,
            unknown hub name, or a failed download (the message says to pass a local file).

    Example:
        >>> load_encoder_weights(g, "weights/resnet34_imagenet.safetensors")  # doctest: +SKIP
    """
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("", "none")):
        return generator
    encoder = getattr(generator, "encoder", None)
    if encoder is None or not hasattr(generator, "encoder_name"):
        architecture = getattr(generator, "spec", {}).get("architecture", type(generator).__name__)
        raise ConfigError(
            f"Encoder weights apply to the smp-unet generator only; this generator is {architecture!r}. "
            "Use --encoder-weights none with it."
        )
    text = os.fspath(weights)
    path = Path(text).expanduser()
    looks_like_path = path.suffix.lower() in WEIGHT_SUFFIXES or os.sep in text or "/" in text or path.exists()
    if looks_like_path:
        state = read_weights_file(path)
        source = f"'{path}'"
    else:
        state = _hub_encoder_state(generator, text)
        source = f"hub weights {text!r}"
    _load_into_encoder(encoder, state, source)
    logger.info("Loaded encoder weights from %s into %s", source, generator.encoder_name)
    return generator
