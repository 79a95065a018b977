"""Which torch device to run on: one rule for train, evaluate and predict.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import os

import torch

from geop2p.errors import ConfigError

__all__ = ["DEVICES", "resolve_device"]

#: the values ``--device`` accepts (plus ``cuda:N``)
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a torch device.

    ``auto`` is CUDA when available, else the CPU; plain ``cuda`` is
    ``cuda:$LOCAL_RANK`` (so each ``torchrun`` rank gets its own GPU).

    Raises:
        ConfigError: an unknown name, or CUDA asked for where there is none.

    Example:
        >>> resolve_device("auto").type in ("cpu", "cuda")
        True
    """
    device = str(device)
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ConfigError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)} (or cuda:N).")
    if device == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if device == "auto" and not available:
        return torch.device("cpu")
    if not available:
        raise ConfigError(f"Device {device!r} was requested but CUDA is not available here; use --device cpu or auto.")
    if device.startswith("cuda:"):
        return torch.device(device)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
