"""Tests of geop2p.normalize: per-band scaling to [-1, 1] and back."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from geop2p.errors import ConfigError, InputError
from geop2p.normalize import MEANSTD_SIGMAS, Normalizer


def band(name, lo, hi, mean=None, std=1.0, p=(None, None, None, None), count=100):
    p1, p2, p98, p99 = p
    return {
        "name": name,
        "count": count,
        "min": lo,
        "max": hi,
        "mean": (lo + hi) / 2 if mean is None else mean,
        "std": std,
        "percentiles": {"1": p1, "2": p2, "98": p98, "99": p99},
    }


@pytest.fixture
def stats():
    """Two bands with different units: uint16 reflectance-like and a DSM in metres."""
    return {
        "bands": [
            band("nir", 0.0, 10000.0, mean=3000.0, std=500.0, p=(100.0, 200.0, 5200.0, 6000.0)),
            band("dsm", -10.0, 90.0, mean=20.0, std=5.0, p=(-5.0, 0.0, 40.0, 60.0)),
        ]
    }


def test_percentile_offsets_and_scales(stats):
    norm = Normalizer.from_stats(stats)
    assert norm.method == "percentile" and norm.clip
    assert norm.offset == (2700.0, 20.0)
    assert norm.scale == (2500.0, 20.0)
    assert (norm.low, norm.high) == (2, 98)
    assert norm.n_bands == 2


def test_percentile_other_keys(stats):
    norm = Normalizer.from_stats(stats, low=1, high=99)
    assert norm.offset == (3050.0, 27.5)
    assert norm.scale == (2950.0, 32.5)


def test_meanstd_maps_three_sigma_to_one(stats):
    norm = Normalizer.from_stats(stats, method="meanstd")
    assert MEANSTD_SIGMAS == 3.0
    assert norm.offset == (3000.0, 20.0)
    assert norm.scale == (1500.0, 15.0)
    assert norm.low is None and norm.high is None
    x = np.array([[[3000.0 + 3 * 500.0]], [[20.0 - 3 * 5.0]]])
    np.testing.assert_allclose(norm.normalize(x), [[[1.0]], [[-1.0]]])


def test_minmax(stats):
    norm = Normalizer.from_stats(stats, method="minmax")
    assert norm.offset == (5000.0, 40.0)
    assert norm.scale == (5000.0, 50.0)
    np.testing.assert_allclose(norm.normalize(np.array([[[0.0, 10000.0]], [[-10.0, 90.0]]])), [[[-1, 1]], [[-1, 1]]])


def test_round_trip_inside_range_per_band_numpy(stats, rng):
    norm = Normalizer.from_stats(stats)
    x = np.stack([rng.uniform(200, 5200, (8, 8)), rng.uniform(0, 40, (8, 8))])
    y = norm.normalize(x)
    assert y.dtype == np.float64 and y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1
    np.testing.assert_allclose(norm.denormalize(y), x, rtol=0, atol=1e-9)
    # each band used its own offset/scale
    np.testing.assert_allclose(y[0], (x[0] - 2700.0) / 2500.0)
    np.testing.assert_allclose(y[1], (x[1] - 20.0) / 20.0)


def test_integer_input_is_float32_and_exact(stats):
    norm = Normalizer("minmax", (127.5,), (127.5,), True)
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    y = norm.normalize(x)
    assert y.dtype == np.float32
    back = norm.denormalize(y)
    np.testing.assert_array_equal(np.rint(back).astype(np.uint8), x)
    np.testing.assert_allclose(back, x, atol=1e-4)


def test_clipping_outside_range(stats):
    norm = Normalizer.from_stats(stats)
    x = np.array([[[-1e6, 1e6]], [[-1e3, 1e3]]])
    np.testing.assert_array_equal(norm.normalize(x), [[[-1.0, 1.0]], [[-1.0, 1.0]]])
    unclipped = Normalizer.from_stats(stats, clip=False)
    assert unclipped.normalize(x)[0, 0, 1] == pytest.approx((1e6 - 2700.0) / 2500.0)


def test_nan_stays_nan(stats):
    norm = Normalizer.from_stats(stats)
    x = np.array([[[np.nan]], [[np.nan]]], dtype=np.float32)
    assert np.isnan(norm.normalize(x)).all()
    assert np.isnan(norm.denormalize(x)).all()


def test_torch_batch_round_trip_keeps_device_and_dtype(stats):
    norm = Normalizer.from_stats(stats)
    x = torch.stack([torch.linspace(200, 5200, 16), torch.linspace(0, 40, 16)]).reshape(1, 2, 4, 4).repeat(3, 1, 1, 1)
    y = norm.normalize(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == x.shape
    assert torch.allclose(y[:, 0], (x[:, 0] - 2700.0) / 2500.0)
    assert torch.allclose(norm.denormalize(y), x, atol=1e-3)
    x64 = x.double()
    assert norm.normalize(x64).dtype == torch.float64
    xi = torch.full((2, 3, 3), 40, dtype=torch.int16)
    assert norm.normalize(xi).dtype == torch.float32


def test_torch_matches_numpy(stats, rng):
    norm = Normalizer.from_stats(stats, method="meanstd")
    x = np.stack([rng.uniform(0, 9000, (5, 7)), rng.uniform(-20, 100, (5, 7))]).astype(np.float32)
    np.testing.assert_allclose(norm.normalize(torch.from_numpy(x)).numpy(), norm.normalize(x), rtol=1e-6)


def test_wrong_band_count_or_rank_is_refused(stats):
    norm = Normalizer.from_stats(stats)
    with pytest.raises(InputError, match=r"expected 2 band\(s\) on axis -3"):
        norm.normalize(np.zeros((3, 4, 4)))
    with pytest.raises(InputError, match="shape \\(4, 4\\)"):
        norm.denormalize(np.zeros((4, 4)))


def test_zero_scale_guard(caplog):
    constant = {"bands": [band("flat", 5.0, 5.0, std=0.0, p=(5.0, 5.0, 5.0, 5.0))]}
    for method in ("percentile", "meanstd", "minmax"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="geop2p.normalize"):
            norm = Normalizer.from_stats(constant, method=method)
        assert norm.scale == (1.0,) and norm.offset == (5.0,)
        assert "constant" in caplog.text and "flat" in caplog.text
        assert np.isfinite(norm.normalize(np.full((1, 2, 2), 5.0))).all()


def test_bad_percentile_lists_available(stats):
    with pytest.raises(ConfigError, match=r"Percentile 5 is not in .*available percentiles: 1, 2, 98, 99"):
        Normalizer.from_stats(stats, low=5, high=98)
    with pytest.raises(ConfigError, match="must be below high"):
        Normalizer.from_stats(stats, low=98, high=2)


def test_unknown_method_lists_valid(stats):
    with pytest.raises(ConfigError, match="valid methods: percentile, meanstd, minmax"):
        Normalizer.from_stats(stats, method="zscore")


def test_bad_stats_are_clear():
    with pytest.raises(ConfigError, match="BandStats or a dict"):
        Normalizer.from_stats([1, 2, 3])
    with pytest.raises(ConfigError, match="no valid pixels"):
        Normalizer.from_stats({"bands": [band("empty", 0.0, 1.0, count=0, p=(0.0, 0.0, 1.0, 1.0))]})
    with pytest.raises(ConfigError, match="'mean' is None"):
        Normalizer.from_stats({"bands": [dict(band("b", 0.0, 1.0), mean=None)]}, method="meanstd")


def test_from_stats_accepts_object_with_to_dict(stats):
    class FakeBandStats:
        def to_dict(self):
            return stats

    assert Normalizer.from_stats(FakeBandStats()) == Normalizer.from_stats(stats)


def test_dict_round_trip_matches_contract(stats):
    norm = Normalizer.from_stats(stats)
    doc = norm.to_dict()
    assert doc == {"method": "percentile", "offset": [2700.0, 20.0], "scale": [2500.0, 20.0], "clip": True,
                   "low": 2, "high": 98}
    assert Normalizer.from_dict(doc) == norm
    with pytest.raises(ConfigError, match="unknown keys \\['extra'\\]"):
        Normalizer.from_dict({**doc, "extra": 1})
    with pytest.raises(ConfigError, match="one offset and one scale per band"):
        Normalizer.from_dict({**doc, "scale": [1.0]})
    with pytest.raises(ConfigError, match="scales non-zero"):
        Normalizer.from_dict({**doc, "scale": [1.0, 0.0]})


def test_identity_and_linear_params():
    ident = Normalizer.identity(2)
    x = np.array([[[-7.0, 3.5]], [[1e5, 0.0]]])
    np.testing.assert_array_equal(ident.normalize(x), x)
    off, sc = Normalizer("minmax", (1.0, 2.0), (3.0, 4.0), True).linear_params()
    assert off.shape == (2, 1, 1) and off.dtype == np.float32
    np.testing.assert_array_equal(sc.ravel(), [3.0, 4.0])
    t_off, t_sc = Normalizer("minmax", (1.0, 2.0), (3.0, 4.0), True).linear_params(like=torch.zeros(1, dtype=torch.float64))
    assert t_off.dtype == torch.float64 and t_sc.shape == (2, 1, 1)
    with pytest.raises(InputError):
        Normalizer.identity(0)


def test_frozen(stats):
    norm = Normalizer.from_stats(stats)
    with pytest.raises(AttributeError):
        norm.clip = False  # type: ignore[misc]


def test_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, geop2p.normalize; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
