"""Pix2PixTrainer on its own: a tiny linear generator learns, validation scores, state round trips exactly."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from geop2p.losses import masked_l1
from geop2p.normalize import Normalizer
from geop2p.train import Pix2PixTrainer, TrainConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")

CFG = TrainConfig(generator="linear", d_ndf=4, d_layers=1, lr=1e-2, device="cpu", epochs=1, decay_epochs=1)


def _batch(seed: int, n: int = 4, size: int = 16) -> dict[str, torch.Tensor]:
    """Inputs in [-1, 1]; the target is a fixed linear map of them, learnable by a 1x1 convolution."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, size, size, generator=g) * 2 - 1
    y = 0.6 * x[:, :1] - 0.3 * x[:, 1:] + 0.1
    valid = torch.ones(n, 1, size, size)
    valid[0, :, :4, :4] = 0
    return {"input": x, "target": y * valid, "valid": valid}


def _trainer(seed: int = 0, **kw) -> Pix2PixTrainer:
    torch.manual_seed(seed)
    return Pix2PixTrainer(CFG, in_channels=2, out_channels=1, **kw)


def _with_raw(batch: dict, norm: Normalizer) -> dict:
    raw = torch.from_numpy(norm.denormalize(batch["target"].numpy())).float() * batch["valid"]
    return {**batch, "target_raw": raw}


def test_l1_falls_and_d_is_left_trainable():
    trainer = _trainer()
    l1 = [trainer.train_step(_batch(i % 4))["g_l1"] for i in range(80)]
    assert sum(l1[-10:]) < 0.25 * sum(l1[:10])
    assert all(p.requires_grad for p in trainer.discriminator.parameters())
    assert trainer.generator.training


def test_train_step_returns_the_three_losses_as_floats():
    losses = _trainer().train_step(_batch(0))
    assert sorted(losses) == ["d", "g_gan", "g_l1"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses.values())


def test_validate_returns_finite_metrics_in_data_units():
    norm = Normalizer("minmax", (100.0,), (50.0,), False)  # network range [-1, 1] is data 50..150
    trainer = _trainer(target_normalizer=norm, band_names=["height"])
    batches = [_with_raw(_batch(s), norm) for s in (10, 11)]
    before = trainer.validate(batches)
    assert {"val_mae", "val_rmse", "val_psnr", "val_ssim", "val_l1", "val_mae_height", "val_ssim_height"} <= set(
        before)
    assert all(math.isfinite(v) for v in before.values())
    with torch.no_grad():
        preds = [trainer.generator(b["input"]) for b in batches]
    n = [float(b["valid"].sum()) for b in batches]
    l1 = sum(float(masked_l1(p, b["target"], b["valid"])) * k for p, b, k in zip(preds, batches, n)) / sum(n)
    assert before["val_l1"] == pytest.approx(l1, rel=1e-6)
    # MAE in data units is the L1 in the network's range times the normalizer's scale
    assert before["val_mae"] == pytest.approx(50.0 * before["val_l1"], rel=1e-5)
    for i in range(60):
        trainer.train_step(_batch(i % 4))
    after = trainer.validate(batches)
    assert after["val_mae"] < 0.5 * before["val_mae"] and after["val_psnr"] > before["val_psnr"]
    assert trainer.generator.training  # validate leaves G in training mode


def test_validate_ignores_invalid_pixels():
    trainer = _trainer()
    batch = _with_raw(_batch(3), Normalizer.identity(1))
    spoiled = {k: v.clone() for k, v in batch.items()}
    spoiled["target"][0, :, :4, :4] = 1e6
    spoiled["target_raw"][0, :, :4, :4] = 1e6
    assert trainer.validate([batch]) == trainer.validate([spoiled])


def test_state_dict_round_trip_restores_exactly():
    a = _trainer(seed=0)
    for i in range(3):
        a.train_step(_batch(i))
    a.step_schedulers()
    b = _trainer(seed=1)  # other initial weights
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # state_dict() holds live tensors: copy before training on
    sa, sb = a.state_dict(), b.state_dict()
    for part in ("generator", "discriminator"):
        assert all(torch.equal(sa[part][k], sb[part][k]) for k in sa[part]), part
    assert sb["sched_g"]["last_epoch"] == 1 and b.lr == a.lr == pytest.approx(0.5e-2)
    # the next step is the same, bit for bit: optimiser moments and step counts came along
    assert a.train_step(_batch(7)) == b.train_step(_batch(7))
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(KeyError, match="lacks scaler"):
        b.load_state_dict({k: v for k, v in sa.items() if k != "scaler"})


def test_predict_is_eval_mode_float_on_cpu():
    trainer = _trainer()
    x = _batch(0)["input"]
    out = trainer.predict(x)
    assert out.dtype == torch.float32 and out.shape == (4, 1, 16, 16) and trainer.generator.training
    with torch.no_grad():
        assert torch.equal(out, trainer.generator.eval()(x))
