"""The default generator: a segmentation-models-pytorch U-Net with any smp encoder and a tanh head.

``in_channels`` = input bands, ``classes`` = target bands, no smp activation;
tanh is applied here so outputs live in the normalizers' range [-1, 1].
Encoders are always built without downloading anything
(``encoder_weights=None``); pretrained weights are loaded afterwards by
:func:`geop2p.models.encoder_weights.load_encoder_weights`.

Example:
    >>> import torch
    >>> g = SmpUnetGenerator(4, 1, encoder_name="resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))
    >>> tuple(g(torch.zeros(1, 4, 32, 32)).shape)
    (1, 1, 32, 32)
"""

from __future__ import annotations

import difflib
from typing import Sequence

import torch
from torch import nn

from geop2p.errors import ConfigError
from geop2p.models.input_size import check_input_size, skip_shape_checks

__all__ = ["SmpUnetGenerator", "DEFAULT_DECODER_CHANNELS", "check_encoder_name", "encoder_names"]

#: smp's default decoder widths for depth 5; shallower encoders use the last ``depth`` of them.
DEFAULT_DECODER_CHANNELS: tuple[int, ...] = (256, 128, 64, 32, 16)


def encoder_names() -> list[str]:
    """The encoder names smp knows (``tu-<timm model>`` names are accepted too)."""
    import segmentation_models_pytorch as smp

    return list(smp.encoders.get_encoder_names())


def check_encoder_name(name: str) -> str:
    """Return ``name`` if smp can build it, else raise :class:`ConfigError` with close matches and examples.

    Example:
        >>> check_encoder_name("resnet34")
        'resnet34'
    """
    names = encoder_names()
    if not isinstance(name, str):
        raise ConfigError(f"Encoder name must be a string like 'resnet34'; got {name!r}.")
    if name in names:
        return name
    if name.startswith("tu-"):
        import timm

        if timm.is_model(name[3:].split(".")[0]):
            return name
        raise ConfigError(
            f"Unknown timm encoder {name!r}: timm has no model {name[3:]!r}. "
            "Use 'tu-<timm model name>', e.g. tu-resnet18 or tu-efficientnet_b0 (see timm.list_models())."
        )
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    examples = ", ".join(["resnet18", "resnet34", "resnet50", "efficientnet-b0", "mobilenet_v2", "mit_b0"])
    raise ConfigError(
        f"Unknown encoder {name!r}; {hint}valid smp encoders include {examples} "
        f"({len(names)} in all, see segmentation_models_pytorch.encoders.get_encoder_names()), "
        "or any timm model as 'tu-<name>'."
    )


class SmpUnetGenerator(nn.Module):
    """``segmentation_models_pytorch.Unet`` + tanh.

    Args:
        in_channels: input bands.
        out_channels: target bands.
        encoder_name: any smp encoder name (``resnet34`` default) or ``tu-<timm model>``.
        encoder_depth: encoder stages, 3 to 5; inputs must be multiples of the encoder's
            output stride (32 for depth 5).
        decoder_channels: decoder widths, one per stage (default: smp's, cut to the depth).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        decoder_channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        check_encoder_name(encoder_name)
        if not 3 <= int(encoder_depth) <= 5:
            raise ConfigError(f"encoder_depth must be 3, 4 or 5; got {encoder_depth}.")
        depth = int(encoder_depth)
        if decoder_channels is None:
            decoder_channels = DEFAULT_DECODER_CHANNELS[len(DEFAULT_DECODER_CHANNELS) - depth :]
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if len(decoder_channels) != depth or min(decoder_channels) < 1:
            raise ConfigError(
                f"decoder_channels must hold {depth} positive widths (one per encoder stage); "
                f"got {list(decoder_channels)}, e.g. {list(DEFAULT_DECODER_CHANNELS[5 - depth:])}."
            )
        self.encoder_name = encoder_name
        self.encoder_depth = depth
        self.in_channels = int(in_channels)
        try:
            self.unet = smp.Unet(
                encoder_name=encoder_name,
                encoder_weights=None,
                encoder_depth=depth,
                decoder_channels=decoder_channels,
                in_channels=int(in_channels),
                classes=int(out_channels),
                activation=None,
            )
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"segmentation-models-pytorch cannot build a U-Net with encoder {encoder_name!r}, "
                f"depth {depth}, {in_channels} input bands: {exc}"
            ) from exc
        # smp >= 0.5 would resample decoder features to fit any size, but then features no
        # longer sit on a fixed sub-grid of the pixels and overlapping windows disagree at
        # seams; geop2p keeps the classic rule: sizes are multiples of the output stride.
        self.required_divisor = int(self.unet.encoder.output_stride)

    @staticmethod
    def resolve_params(params: dict) -> dict:
        """Fill ``decoder_channels`` from the depth when it is None, so bundles record the real widths."""
        if params.get("decoder_channels") is None and isinstance(params.get("encoder_depth"), int):
            depth = params["encoder_depth"]
            params = {**params, "decoder_channels": list(DEFAULT_DECODER_CHANNELS[len(DEFAULT_DECODER_CHANNELS) - depth :])}
        return params

    @property
    def encoder(self) -> nn.Module:
        """The smp encoder (where pretrained weights go)."""
        return self.unet.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, h, w)`` to ``(batch, out_channels, h, w)`` in [-1, 1]."""
        if not skip_shape_checks():
            check_input_size(x.shape[-2], x.shape[-1], self.required_divisor, f"smp-unet ({self.encoder_name})")
        return torch.tanh(self.unet(x))
