"""Per-band masked metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geop2p.errors import InputError
from geop2p.metrics import MetricAccumulator, masked_ssim_map, masked_ssim_sums


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


# ------------------------------------------------------------------ SSIM pinned against references
def _ssim_reference_pair(seed: int, size: int = 48):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    t = 50 + 30 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 4, (size, size))
    p = 0.8 * t + 10 + rng.normal(0, 6, (size, size))
    return p, t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage_on_all_valid_images(seed):
    """Same window (Gaussian σ = 1.5, 11 × 11), population covariance, constants K1 = 0.01, K2 = 0.03."""
    from skimage.metrics import structural_similarity

    p, t = _ssim_reference_pair(seed)
    data_range = float(t.max() - t.min())
    ref_mean, ref_map = structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                              data_range=data_range, full=True)
    ours, use = masked_ssim_map(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None],
                                torch.ones(1, 1, *p.shape), [data_range])
    inner = (slice(5, -5), slice(5, -5))  # skimage pads by reflection, then drops a half-window border
    assert bool(use[0, 0][inner].all())
    np.testing.assert_allclose(ours[0, 0].numpy()[inner], ref_map[inner], atol=1e-4)
    assert float(ours[0, 0][inner].mean()) == pytest.approx(ref_mean, abs=1e-4)


def test_masked_ssim_matches_a_hand_computation():
    """The masked SSIM of a small image, computed pixel by pixel from its definition over valid neighbours."""
    rng = np.random.default_rng(7)
    h = w = 9
    t = rng.uniform(0, 10, (h, w))
    p = t + rng.normal(0, 1.5, (h, w))
    valid = np.ones((h, w), bool)
    valid[:3, :4] = False
    valid[6, 6] = False
    data_range = 10.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    g1 = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g1 /= g1.sum()
    kernel = np.outer(g1, g1)
    expected = {}
    for r in range(h):
        for c in range(w):
            if not valid[r, c]:
                continue
            wts, xs, ys = [], [], []
            for dr in range(-5, 6):
                for dc in range(-5, 6):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and valid[rr, cc]:
                        wts.append(kernel[dr + 5, dc + 5])
                        xs.append(p[rr, cc])
                        ys.append(t[rr, cc])
            wts, xs, ys = map(np.asarray, (wts, xs, ys))
            if wts.sum() < 0.5:
                continue
            wn = wts / wts.sum()
            mx, my = (wn * xs).sum(), (wn * ys).sum()
            vx, vy = (wn * (xs - mx) ** 2).sum(), (wn * (ys - my) ** 2).sum()
            cov = (wn * (xs - mx) * (ys - my)).sum()
            expected[(r, c)] = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    ours, use = masked_ssim_map(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None],
                                torch.from_numpy(valid.astype(np.float64))[None, None], [data_range])
    assert {(r, c) for r, c in zip(*np.nonzero(use[0, 0].numpy()))} == set(expected)
    for (r, c), value in expected.items():
        assert float(ours[0, 0, r, c]) == pytest.approx(value, abs=1e-9)
    total, count = masked_ssim_sums(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None],
                                    torch.from_numpy(valid.astype(np.float64))[None, None], [data_range])
    assert float(total / count) == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
