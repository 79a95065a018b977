"""pix2pix losses that ignore invalid pixels.

* :func:`masked_l1` — mean absolute error over valid pixels and all bands.
* :class:`GANLoss` — ``vanilla`` (binary cross-entropy on logits), ``lsgan``
  (least squares) or ``hinge``, computed on the PatchGAN's logits map, each
  patch weighted by the fraction of valid pixels under it (the validity mask
  is area-resized to the map), and the discriminator loss halved as in pix2pix.

Example:
    >>> import torch
    >>> pred, target = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    >>> valid = torch.ones(1, 1, 4, 4); valid[..., :2] = 0
    >>> float(masked_l1(pred, target, valid))
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geop2p.errors import ConfigError

__all__ = ["GAN_MODES", "GANLoss", "masked_l1", "masked_mean", "resize_mask"]

GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of ``values`` (N, C, H, W) with ``weight`` (N, 1, H, W) broadcast over channels.

    Returns 0 (with a gradient path) when no weight is positive.
    """
    w = weight.expand_as(values).to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1e-8)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean ``|pred - target|`` over valid pixels and all bands.

    Args:
        pred: (N, C, H, W).
        target: (N, C, H, W).
        valid: (N, 1, H, W), 1 for valid pixels, 0 for invalid.
    """
    return masked_mean((pred - target).abs(), valid)


def resize_mask(valid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Fraction of valid pixels under each cell of a ``size`` map (area interpolation), in [0, 1]."""
    if tuple(valid.shape[-2:]) == tuple(size):
        return valid.to(torch.float32)
    return F.adaptive_avg_pool2d(valid.to(torch.float32), size)


@dataclass(frozen=True)
class GANLoss:
    """Adversarial losses on a PatchGAN logits map, masked by validity.

    Attributes:
        mode: ``vanilla``, ``lsgan`` or ``hinge``.

    Example:
        >>> loss = GANLoss("lsgan")
        >>> logits = torch.ones(2, 1, 6, 6)
        >>> float(loss.generator(logits, torch.ones(2, 1, 64, 64)))
        0.0
    """

    mode: str = "vanilla"

    def __post_init__(self) -> None:
        if self.mode not in GAN_MODES:
            raise ConfigError(f"Unknown GAN mode {self.mode!r}; valid modes: {', '.join(GAN_MODES)}.")

    def _against(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        """Per-patch loss of ``logits`` against the real (True) or fake (False) label."""
        logits = logits.float()
        if self.mode == "vanilla":
            label = torch.full_like(logits, 1.0 if real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, label, reduction="none")
        if self.mode == "lsgan":
            return (logits - (1.0 if real else 0.0)) ** 2
        return F.relu(1.0 - logits) if real else F.relu(1.0 + logits)

    def generator(self, fake_logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss: make D call the fakes real (hinge: ``-mean(D(fake))``)."""
        w = resize_mask(valid, fake_logits.shape[-2:])
        if self.mode == "hinge":
            return masked_mean(-fake_logits.float(), w)
        return masked_mean(self._against(fake_logits, True), w)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss, halved: ``0.5 * (loss(real, 1) + loss(fake, 0))``."""
        w = resize_mask(valid, real_logits.shape[-2:])
        return 0.5 * (masked_mean(self._against(real_logits, True), w)
                      + masked_mean(self._against(fake_logits, False), w))
