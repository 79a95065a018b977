"""PairAugment: flips and rotations applied identically to every array of a pair."""

from __future__ import annotations

import numpy as np

from geop2p.datasets import PairAugment


def test_augmentation_is_identical_for_input_target_and_mask():
    aug = PairAugment()
    rng = np.random.default_rng(3)
    a = np.arange(2 * 16).reshape(2, 4, 4).astype(np.float32)
    m = a[:1] > 10
    for _ in range(10):
        t = aug.draw(rng)
        a2, b2, m2 = aug.apply(t, a, a[:1] * 2, m)
        assert np.array_equal(b2, a2[:1] * 2) and np.array_equal(m2, a2[:1] > 10)


def test_no_augment_flags():
    assert not PairAugment(flips=False, rot90=False).enabled
