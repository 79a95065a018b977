"""Per-band masked metrics."""

from __future__ import annotations

import math

import pytest
import torch

from geop2p.errors import InputError
from geop2p.metrics import MetricAccumulator, masked_ssim_sums


def test_mae_rmse_psnr_in_data_units_ignore_invalid():
    target = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 100
    pred = target.clone()
    pred[:, 0] += 2.0
    pred[:, 1] -= 4.0
    valid = torch.ones(2, 1, 16, 16)
    valid[..., :3, :] = 0
    pred[..., :3, :] = 1e6  # garbage where invalid
    acc = MetricAccumulator(["a", "b"], data_range=[100.0, 50.0])
    acc.update(pred, target, valid)
    res = acc.compute()
    assert res["bands"]["a"]["mae"] == pytest.approx(2.0) and res["bands"]["a"]["rmse"] == pytest.approx(2.0)
    assert res["bands"]["b"]["mae"] == pytest.approx(4.0)
    assert res["bands"]["a"]["psnr"] == pytest.approx(10 * math.log10(100**2 / 4))
    assert res["mae"] == pytest.approx(3.0)
    flat = acc.flat("val")
    assert flat["val_mae_b"] == pytest.approx(4.0) and "val_ssim_a" in flat


def test_ssim_is_one_for_identical_and_lower_for_noise():
    g = torch.Generator().manual_seed(1)
    t = torch.rand(1, 1, 32, 32, generator=g)
    valid = torch.ones(1, 1, 32, 32)
    s, n = masked_ssim_sums(t, t, valid, [1.0])
    assert float(s / n) == pytest.approx(1.0)
    s2, n2 = masked_ssim_sums(t + 0.3 * torch.randn(1, 1, 32, 32, generator=g), t, valid, [1.0])
    assert float(s2 / n2) < 0.8


def test_ssim_unaffected_by_values_under_the_mask():
    g = torch.Generator().manual_seed(2)
    t = torch.rand(1, 1, 32, 32, generator=g)
    p = t + 0.05 * torch.randn(1, 1, 32, 32, generator=g)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., :, :10] = 0
    p2, t2 = p.clone(), t.clone()
    p2[..., :10] = 999.0
    t2[..., :10] = -999.0
    a = masked_ssim_sums(p, t, valid, [1.0])
    b = masked_ssim_sums(p2, t2, valid, [1.0])
    assert torch.allclose(a[0], b[0]) and torch.equal(a[1], b[1])


def test_state_merges_like_one_pass():
    g = torch.Generator().manual_seed(3)
    t = torch.rand(4, 1, 16, 16, generator=g)
    p = torch.rand(4, 1, 16, 16, generator=g)
    v = torch.ones(4, 1, 16, 16)
    whole = MetricAccumulator(["x"], [1.0])
    whole.update(p, t, v)
    a, b = MetricAccumulator(["x"], [1.0]), MetricAccumulator(["x"], [1.0])
    a.update(p[:2], t[:2], v[:2])
    b.update(p[2:], t[2:], v[2:])
    a.load_state(a.state + b.state)  # what all_reduce_sum does across ranks
    assert a.compute()["bands"]["x"] == pytest.approx(whole.compute()["bands"]["x"])


def test_no_valid_pixels_gives_nan_and_shape_errors():
    acc = MetricAccumulator(["x"], [1.0])
    acc.update(torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    assert math.isnan(acc.compute()["mae"])
    with pytest.raises(InputError, match="1 band"):
        acc.update(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(InputError, match="one per band"):
        MetricAccumulator(["x", "y"], [1.0])
