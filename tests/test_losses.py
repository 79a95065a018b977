"""Masked L1 and masked GAN losses."""

from __future__ import annotations

import pytest
import torch

from geop2p.errors import ConfigError
from geop2p.losses import GANLoss, masked_l1, resize_mask


def test_masked_l1_ignores_invalid_pixels():
    pred = torch.zeros(2, 2, 8, 8)
    target = torch.ones(2, 2, 8, 8)
    target[..., :4] = 1000.0  # garbage under the mask
    valid = torch.ones(2, 1, 8, 8)
    valid[..., :4] = 0
    assert float(masked_l1(pred, target, valid)) == pytest.approx(1.0)
    assert float(masked_l1(pred, target, torch.zeros_like(valid))) == 0.0


def test_resize_mask_is_valid_fraction():
    valid = torch.ones(1, 1, 8, 8)
    valid[..., :, :4] = 0
    m = resize_mask(valid, (2, 2))
    assert torch.allclose(m, torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_gan_losses_signs_and_halving(mode):
    loss = GANLoss(mode)
    valid = torch.ones(1, 1, 16, 16)
    confident_real = torch.full((1, 1, 4, 4), 5.0)
    confident_fake = torch.full((1, 1, 4, 4), -5.0)
    good_d = loss.discriminator(confident_real, confident_fake, valid)
    bad_d = loss.discriminator(confident_fake, confident_real, valid)
    assert float(good_d) < float(bad_d)
    assert float(loss.generator(confident_real, valid)) < float(loss.generator(confident_fake, valid))
    if mode == "lsgan":  # 0.5 * ((0 - 1)^2 + (0 - 0)^2) at logits 0
        zeros = torch.zeros(1, 1, 4, 4)
        assert float(loss.discriminator(zeros, zeros, valid)) == pytest.approx(0.5)
    if mode == "hinge":
        zeros = torch.zeros(1, 1, 4, 4)
        assert float(loss.discriminator(zeros, zeros, valid)) == pytest.approx(1.0)


def test_gan_loss_masks_invalid_patches():
    loss = GANLoss("lsgan")
    logits = torch.zeros(1, 1, 2, 2)
    logits[..., 0] = 100.0  # huge error only on the left patches
    valid = torch.ones(1, 1, 8, 8)
    valid[..., :4] = 0  # left half invalid
    assert float(loss.generator(logits, valid)) == pytest.approx(1.0)


def test_unknown_gan_mode():
    with pytest.raises(ConfigError, match="vanilla, lsgan, hinge"):
        GANLoss("wgan")
