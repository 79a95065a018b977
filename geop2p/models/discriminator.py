"""The PatchGAN discriminator of pix2pix: one real/fake logit per overlapping image patch.

It sees the condition and an image stacked on the band axis (``input bands +
target bands`` channels). With ``n_layers=3`` each output logit looks at a 70x70
pixel patch of the input, the paper's choice. Layers: a 4x4 stride-2
convolution (no norm) and LeakyReLU 0.2, ``n_layers - 1`` more stride-2 blocks
doubling the width (capped at 8 * ndf), a stride-1 block, and a stride-1 4x4
convolution to one channel (a logit map, no sigmoid: use ``BCEWithLogitsLoss``
or an LSGAN loss).

Example:
    >>> import torch
    >>> d = build_discriminator(4, ndf=8)
    >>> tuple(d(torch.zeros(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)).shape)
    (1, 1, 30, 30)
    >>> receptive_field(3)
    70
    >>> patch_output_size(256, 3), deepest_fitting_layers(32)
    (30, 3)
"""

from __future__ import annotations

import torch
from torch import nn

from geop2p.errors import ConfigError, InputError
from geop2p.models.init import init_pix2pix_weights
from geop2p.models.norm import check_norm, make_norm

__all__ = ["PatchDiscriminator", "build_discriminator", "deepest_fitting_layers", "patch_output_size",
           "receptive_field"]

_KERNEL = 4


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch that one output logit of an ``n_layers`` PatchGAN sees.

    Example:
        >>> [receptive_field(n) for n in (1, 2, 3, 4)]
        [16, 34, 70, 142]
    """
    strides = [2] * int(n_layers) + [1, 1]
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + _KERNEL
    return field


def patch_output_size(size: int, n_layers: int) -> int:
    """Side of the logit map an ``n_layers`` PatchGAN gives for ``size`` px chips (0: the chips are too small).

    Each 4x4 convolution with padding 1 maps ``n`` pixels to ``(n - 2) // stride + 1`` and needs at
    least 2; the strides are ``n_layers`` times 2, then 1 and 1.

    Example:
        >>> [patch_output_size(32, n) for n in (1, 2, 3, 4)]
        [14, 6, 2, 0]
    """
    n = int(size)
    for stride in [2] * int(n_layers) + [1, 1]:
        if n < 2:
            return 0
        n = (n - 2) // stride + 1
    return max(n, 0)


def deepest_fitting_layers(size: int) -> int:
    """The most PatchGAN layers that still leave one output cell on ``size`` px chips (0: none fits).

    Example:
        >>> deepest_fitting_layers(64), deepest_fitting_layers(256), deepest_fitting_layers(4)
        (4, 6, 0)
    """
    n = 0
    while patch_output_size(size, n + 1) >= 1:
        n += 1
    return n


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix ``NLayerDiscriminator``).

    Args:
        in_channels: channels of the stacked pair (input bands + target bands).
        ndf: filters of the first layer (64 in the paper).
        n_layers: stride-2 layers; 3 gives 70x70 patches.
        norm: ``instance`` (default), ``batch`` or ``none``.
        spectral_norm: wrap every convolution in spectral normalisation.
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_norm(norm, "discriminator norm")
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ConfigError(f"Discriminator n_layers must be an integer >= 1; got {n_layers!r}. 3 gives 70x70 patches.")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 2:
            raise ConfigError(
                f"Discriminator in_channels must be input bands + target bands (>= 2); got {in_channels!r}."
            )
        if ndf < 1:
            raise ConfigError(f"Discriminator ndf must be >= 1; got {ndf}. The paper uses 64.")
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.receptive_field = receptive_field(n_layers)
        bias = norm != "batch"
        convs: list[nn.Conv2d] = []

        def conv(c_in: int, c_out: int, stride: int, with_bias: bool) -> nn.Conv2d:
            layer = nn.Conv2d(c_in, c_out, kernel_size=_KERNEL, stride=stride, padding=1, bias=with_bias)
            convs.append(layer)
            return layer

        layers: list[nn.Module] = [conv(in_channels, ndf, 2, True), nn.LeakyReLU(0.2, True)]
        width = ndf
        for i in range(1, n_layers + 1):
            new_width = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [conv(width, new_width, stride, bias), make_norm(norm, new_width), nn.LeakyReLU(0.2, True)]
            width = new_width
        layers.append(conv(width, 1, 1, True))
        self.model = nn.Sequential(*layers)
        init_pix2pix_weights(self)
        if spectral_norm:
            for layer in convs:
                nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """Logit map for a stacked pair, or for ``x`` (condition) and ``image`` stacked here.

        Args:
            x: ``(batch, in_channels, h, w)``, or the condition when ``image`` is given.
            image: optional real or generated target ``(batch, target bands, h, w)``.
        """
        if image is not None:
            x = torch.cat([x, image], dim=1)
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"The discriminator expects {self.in_channels} stacked channels (input + target bands); "
                f"got {x.shape[1]}."
            )
        return self.model(x)


def build_discriminator(
    in_channels: int,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    spectral_norm: bool = False,
) -> PatchDiscriminator:
    """Build a PatchGAN for pairs of ``in_channels`` stacked channels (input bands + target bands).

    Raises:
        ConfigError: unknown norm (lists the valid ones), bad layer count or width.

    Example:
        >>> d = build_discriminator(2, ndf=4, n_layers=2, norm="batch", spectral_norm=True)
        >>> d.receptive_field
        34
    """
    return PatchDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, norm=norm, spectral_norm=spectral_norm)
