"""The per-pixel linear baseline: one 1x1 convolution, ``in_channels`` -> ``out_channels``.

It has no spatial context, so it is the floor any GAN must beat, and with
identity weights (see :meth:`LinearGenerator.set_identity`) it reproduces its input
exactly, which is what stitching tests need.

Example:
    >>> import torch
    >>> g = LinearGenerator(3, 3).set_identity()
    >>> bool(torch.equal(g(torch.ones(1, 3, 5, 7)), torch.ones(1, 3, 5, 7)))
    True
"""

from __future__ import annotations

import torch
from torch import nn

from geop2p.errors import ConfigError

__all__ = ["LinearGenerator"]


class LinearGenerator(nn.Module):
    """A per-pixel affine map (1x1 convolution with bias), unbounded output.

    Args:
        in_channels: input bands.
        out_channels: target bands.
    """

    required_divisor: int = 1

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True)

    def set_identity(self) -> "LinearGenerator":
        """Set weights so output band ``i`` equals input band ``i`` (needs in == out channels); returns self."""
        out_c, in_c = self.conv.out_channels, self.conv.in_channels
        if in_c != out_c:
            raise ConfigError(
                f"An identity linear generator needs as many input as output bands; got {in_c} -> {out_c}."
            )
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(out_c).reshape(out_c, in_c, 1, 1))
            self.conv.bias.zero_()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, h, w)`` to ``(batch, out_channels, h, w)``."""
        return self.conv(x)
