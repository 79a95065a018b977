"""The pix2pix paper's U-Net generator ("U-Net 256"), kept as the reference to compare against.

An encoder of ``num_downs`` stride-2 4x4 convolutions (LeakyReLU 0.2), a mirror
decoder of transposed convolutions (ReLU), skip connections concatenating each
encoder level onto the decoder level of the same size, dropout 0.5 in the
innermost wide decoder blocks, tanh output. ``num_downs=8`` turns a 256x256 chip
into a 1x1 bottleneck, as in the paper; inputs must be multiples of ``2**num_downs``.

Example:
    >>> import torch
    >>> g = Pix2PixUnet(3, 1, ngf=8, num_downs=5)
    >>> tuple(g(torch.zeros(1, 3, 32, 32)).shape)
    (1, 1, 32, 32)
"""

from __future__ import annotations

import torch
from torch import nn

from geop2p.errors import ConfigError
from geop2p.models.init import init_pix2pix_weights
from geop2p.models.input_size import check_input_size, skip_shape_checks
from geop2p.models.norm import check_norm, make_norm

__all__ = ["Pix2PixUnet", "MIN_NUM_DOWNS"]

#: The outer four levels (ngf, 2ngf, 4ngf, 8ngf) plus the innermost one.
MIN_NUM_DOWNS = 5


class _SkipBlock(nn.Module):
    """One U-Net level: down-sample, run the inner levels, up-sample, concatenate the skip."""

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        in_channels: int | None = None,
        inner: nn.Module | None = None,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = inner is None
        in_channels = outer_channels if in_channels is None else in_channels
        # batch norm has its own shift; the reference drops conv biases only in that case
        bias = norm != "batch"
        down_conv = nn.Conv2d(in_channels, inner_channels, kernel_size=4, stride=2, padding=1, bias=bias)
        up_in = inner_channels if innermost else inner_channels * 2
        if outermost:
            up_conv = nn.ConvTranspose2d(up_in, outer_channels, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, inner, nn.ReLU(True), up_conv, nn.Tanh()]
        else:
            up_conv = nn.ConvTranspose2d(up_in, outer_channels, kernel_size=4, stride=2, padding=1, bias=bias)
            down = [nn.LeakyReLU(0.2, True), down_conv]
            if not innermost:
                down.append(make_norm(norm, inner_channels))
            up = [nn.ReLU(True), up_conv, make_norm(norm, outer_channels)]
            if dropout:
                up.append(nn.Dropout(0.5))
            layers = down + ([] if innermost else [inner]) + up
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class Pix2PixUnet(nn.Module):
    """The pix2pix U-Net generator.

    Args:
        in_channels: input bands.
        out_channels: target bands.
        ngf: filters of the outermost level (64 in the paper); levels use 1, 2, 4, 8, 8... times ngf.
        num_downs: number of down-samplings (8 for 256 px chips; at least 5).
        norm: ``batch`` (paper), ``instance`` or ``none``.
        use_dropout: dropout 0.5 in the innermost 8*ngf decoder blocks (paper: yes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        use_dropout: bool = True,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if int(num_downs) < MIN_NUM_DOWNS:
            raise ConfigError(
                f"pix2pix-unet needs num_downs >= {MIN_NUM_DOWNS}; got {num_downs}. "
                "Use num_downs=8 for 256 px chips (the paper's U-Net 256), 7 for 128 px."
            )
        if int(ngf) < 1:
            raise ConfigError(f"pix2pix-unet needs ngf >= 1; got {ngf}. The paper uses 64.")
        self.num_downs = int(num_downs)
        self.required_divisor = 2**self.num_downs
        block = _SkipBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for _ in range(self.num_downs - MIN_NUM_DOWNS):
            block = _SkipBlock(ngf * 8, ngf * 8, inner=block, norm=norm, dropout=use_dropout)
        for mult in (4, 2, 1):
            block = _SkipBlock(ngf * mult, ngf * mult * 2, inner=block, norm=norm)
        self.net = _SkipBlock(out_channels, ngf, in_channels=in_channels, inner=block, outermost=True, norm=norm)
        init_pix2pix_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, h, w)`` to ``(batch, out_channels, h, w)`` in [-1, 1]."""
        if not skip_shape_checks():
            check_input_size(x.shape[-2], x.shape[-1], self.required_divisor, "pix2pix-unet")
        return self.net(x)
