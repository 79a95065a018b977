"""The linear baseline: least squares from streamed normal equations."""

from __future__ import annotations

import numpy as np

from geop2p.datasets import ChipDataset
from geop2p.evaluate import LinearBaseline, fit_linear_baseline
from tests.fixtures.train import write_chip_folder


def test_linear_baseline_recovers_a_linear_mapping(tmp_path):
    chips = write_chip_folder(tmp_path / "c", rows=2, cols=3)
    ds = ChipDataset(chips, "train")
    # replace the target by an exactly linear function of the input through read_raw
    orig = ds.read_raw

    def linear_raw(i):
        x, _, v = orig(i)
        y = (2.0 * x[0] - 0.5 * x[1] + 7.0)[None]
        return x, y, v

    ds.read_raw = linear_raw
    base = fit_linear_baseline(ds, ds.input_normalizer)
    x, y, v = linear_raw(0)
    pred = base.predict(x[None].astype(np.float64))[0]
    np.testing.assert_allclose(pred[0][v], y[0][v], atol=1e-6)


def test_features_are_standardised_with_a_bias_column():
    base = LinearBaseline((10.0, 0.0), (2.0, 4.0), np.array([[1.0], [1.0], [0.0]]), n_pixels=0)
    x = np.array([[[[12.0]], [[8.0]]]])  # (1, 2, 1, 1)
    np.testing.assert_allclose(base.features(x)[0, 0, 0], [1.0, 2.0, 1.0])
    np.testing.assert_allclose(base.predict(x), [[[[3.0]]]])


def test_no_valid_pixel_gives_no_baseline(tmp_path):
    chips = write_chip_folder(tmp_path / "c", rows=1, cols=2)
    ds = ChipDataset(chips, "train")
    orig = ds.read_raw

    def all_invalid(i):
        x, y, v = orig(i)
        return x, y, np.zeros_like(v)

    ds.read_raw = all_invalid
    assert fit_linear_baseline(ds, ds.input_normalizer) is None
