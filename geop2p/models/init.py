"""Weight initialisation of the pix2pix reference: N(0, 0.02) convolutions, N(1, 0.02) norm scales.

Example:
    >>> import torch.nn as nn
    >>> net = init_pix2pix_weights(nn.Sequential(nn.Conv2d(3, 8, 4), nn.BatchNorm2d(8)))
"""

from __future__ import annotations

from torch import nn

__all__ = ["init_pix2pix_weights"]


def init_pix2pix_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise ``module`` in place as the pix2pix paper does and return it.

    Convolutions and linear layers get weights from N(0, ``gain``) and zero bias;
    batch/instance norm layers with affine parameters get N(1, ``gain``) scales and zero shifts.

    Example:
        >>> import torch.nn as nn
        >>> conv = init_pix2pix_weights(nn.Conv2d(1, 1, 3))
        >>> float(conv.bias.abs().sum())
        0.0
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module

