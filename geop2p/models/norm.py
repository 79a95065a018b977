"""Normalisation layers by name, shared by the pix2pix U-Net and the PatchGAN.

Example:
    >>> layer = make_norm("instance", 8)
    >>> type(layer).__name__, layer.affine, layer.track_running_stats
    ('InstanceNorm2d', False, False)
"""

from __future__ import annotations

from torch import nn

from geop2p.errors import ConfigError

__all__ = ["NORMS", "check_norm", "make_norm"]

#: Valid names for ``norm`` options.
NORMS: tuple[str, ...] = ("batch", "instance", "none")


def check_norm(name: str, option: str = "norm") -> str:
    """Return ``name`` if it is a valid norm, else raise :class:`ConfigError` listing valid ones.

    Example:
        >>> check_norm("batch")
        'batch'
    """
    if name not in NORMS:
        raise ConfigError(f"Unknown {option} {name!r}; valid values: {', '.join(NORMS)}.")
    return name


def make_norm(name: str, channels: int) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps (``nn.Identity`` for ``none``).

    ``instance`` is the pix2pix choice: no affine parameters, no running statistics.

    Example:
        >>> make_norm("none", 4)
        Identity()
    """
    check_norm(name)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()
