"""Streaming statistics: equal to numpy over the same valid pixels; merge == one pass; round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geop2p.stats import PERCENTILE_REL_ERROR, PERCENTILES, BandStats, StatsAccumulator, StatsPartial


def _check_against_numpy(stats: BandStats, data: np.ndarray, valid: np.ndarray, exact: bool) -> None:
    for b, band in enumerate(stats.bands):
        v = data[b][valid]
        assert band.count == v.size
        assert band.min == float(v.min()) and band.max == float(v.max())
        assert band.mean == pytest.approx(v.astype(np.float64).mean(), rel=1e-12)
        assert band.std == pytest.approx(v.astype(np.float64).std(), rel=1e-9)
        for q in PERCENTILES:
            expected = float(np.percentile(v, q, method="inverted_cdf"))
            got = band.percentiles[str(q)]
            if exact:
                assert got == expected
            else:  # documented bound: half a bin, 2**-12 of the magnitude (+ float32 rounding)
                assert abs(got - expected) <= PERCENTILE_REL_ERROR * abs(expected) * (1 + 1e-6) + 1e-30


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_integer_bands_exact(rng, dtype):
    info = np.iinfo(dtype)
    data = rng.integers(info.min, info.max, size=(2, 50, 40), endpoint=True).astype(dtype)
    valid = rng.random((50, 40)) > 0.3
    acc = StatsAccumulator(dtype, ["a", "b"])
    acc.update(data, valid)
    _check_against_numpy(acc.result(), data, valid, exact=True)


@pytest.mark.parametrize("dtype, scale, offset", [("float32", 1000.0, -300.0), ("float64", 1e-3, 0.0), ("int32", 1e6, 0)])
def test_float_bands_within_bound(rng, dtype, scale, offset):
    data = (rng.standard_normal((2, 60, 60)) * scale + offset).astype(dtype)
    valid = rng.random((60, 60)) > 0.1
    acc = StatsAccumulator(dtype, ["a", "b"])
    acc.update(data, valid)
    _check_against_numpy(acc.result(), data, valid, exact=False)


def test_merge_equals_one_pass(rng):
    data = (rng.standard_normal((3, 64, 64)) * 50).astype(np.float32)
    valid = rng.random((64, 64)) > 0.2
    one = StatsAccumulator("float32", ["a", "b", "c"])
    one.update(data, valid)
    left = StatsAccumulator("float32", ["a", "b", "c"])
    left.update(data[:, :20], valid[:20])
    right = StatsAccumulator("float32", ["a", "b", "c"])
    right.update(data[:, 20:], valid[20:])
    left.merge(right)
    r1, r2 = one.result(), left.result()
    for a, b in zip(r1.bands, r2.bands):
        assert (a.count, a.min, a.max, a.percentiles) == (b.count, b.min, b.max, b.percentiles)
        assert a.mean == pytest.approx(b.mean, rel=1e-13)
        assert a.std == pytest.approx(b.std, rel=1e-12)
    assert (one.hist == left.hist).all()


def test_same_order_same_bits(rng):
    parts = [StatsPartial.from_array(rng.random((1, 16, 16)).astype(np.float32), np.ones((16, 16), bool)) for _ in range(5)]
    results = []
    for _ in range(2):
        acc = StatsAccumulator("float32", ["a"])
        for p in parts:
            acc.add(p)
        results.append(acc.result().to_dict())
    assert results[0] == results[1]


def test_empty_band_is_nan_and_roundtrips():
    acc = StatsAccumulator("uint8", ["a"])
    acc.update(np.zeros((1, 4, 4), np.uint8), np.zeros((4, 4), bool))
    s = acc.result()
    assert s.bands[0].count == 0 and math.isnan(s.bands[0].mean)
    d = s.to_dict()
    assert math.isnan(d["bands"][0]["mean"])
    from geop2p.formats import jsonsafe

    assert '"mean": "nan"' in jsonsafe.dumps(d, indent=None)  # the one JSON policy for non-finite numbers
    assert BandStats.from_dict(d).bands[0].count == 0


def test_to_dict_from_dict_roundtrip(rng):
    acc = StatsAccumulator("uint16", ["red", "nir"])
    acc.update(rng.integers(0, 4000, (2, 8, 8)).astype(np.uint16), np.ones((8, 8), bool))
    s = acc.result()
    d = s.to_dict()
    assert set(d["bands"][0]) == {"name", "count", "min", "max", "mean", "std", "percentiles"}
    assert set(d["bands"][0]["percentiles"]) == {"1", "2", "98", "99"}
    assert BandStats.from_dict(d) == s
    assert s.names == ("red", "nir")
    with pytest.raises(KeyError, match="available: 1, 2, 98, 99"):
        s.percentile(50)


def test_merge_refuses_other_dtype():
    with pytest.raises(ValueError, match="Cannot merge"):
        StatsAccumulator("uint8", ["a"]).merge(StatsAccumulator("float32", ["a"]))


def test_batched_histograms_give_identical_statistics():
    """Export workers ship per-chip moments plus one merged histogram per batch: same result, to the bit."""
    from geop2p.stats import merge_histograms

    rng = np.random.default_rng(7)
    chips = [rng.normal(100, 20, (2, 16, 16)).astype(np.float32) for _ in range(10)]
    valids = [rng.random((16, 16)) > 0.2 for _ in range(10)]
    partials = [StatsPartial.from_array(c, v) for c, v in zip(chips, valids)]

    one_by_one = StatsAccumulator("float32", ["a", "b"])
    for p in partials:
        one_by_one.add(p)

    batched = StatsAccumulator("float32", ["a", "b"])
    for start in (0, 3, 7):
        batch = partials[start : {0: 3, 3: 7, 7: 10}[start]]
        for p in batch:
            batched.add(p.moments_only())
        batched.add(merge_histograms(batch))

    assert batched.result().to_dict() == one_by_one.result().to_dict()
    assert merge_histograms([]) is None
