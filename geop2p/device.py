"""Which torch device to run on: one rule for train, evaluate and predict.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from geop2p.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICES", "check_device_name", "resolve_device"]

#: the values ``--device`` accepts (plus ``cuda:N``)
DEVICES = ("auto", "cpu", "cuda")


def check_device_name(device: str) -> str:
    """Return ``device`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; else raise (no torch needed).

    Raises:
        ConfigError: listing the valid names.

    Example:
        >>> check_device_name("cuda:1")
        'cuda:1'
        >>> check_device_name("tpu")
        Traceback (most recent call last):
        ...
        geop2p.errors.ConfigError: Unknown device 'tpu'; choose one of auto, cpu, cuda (or cuda:N).
    """
    device = str(device)
    index = device[5:] if device.startswith("cuda:") else None
    if device not in DEVICES and not (index is not None and index.isdigit()):
        raise ConfigError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)} (or cuda:N).")
    return device


def resolve_device(device: str) -> "torch.device":
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a torch device.

    ``auto`` is CUDA when available, else the CPU; plain ``cuda`` is
    ``cuda:$LOCAL_RANK`` (so each ``torchrun`` rank gets its own GPU).

    Raises:
        ConfigError: an unknown name, or CUDA asked for where there is none.

    Example:
        >>> resolve_device("auto").type in ("cpu", "cuda")
        True
    """
    import torch

    device = check_device_name(device)
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
