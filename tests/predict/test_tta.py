"""Test-time augmentation: the dihedral transforms, their exact inverses, and averaging in the translator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geop2p.predict import TTA_CHOICES, Translator
from geop2p.predict.tta import _TTA_SETS, dihedral, dihedral_inverse
from tests.fixtures.predict import identity_meta

ATOL = 1e-3


@pytest.mark.parametrize("k", range(8))
def test_dihedral_transforms_invert_exactly(k):
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(dihedral_inverse(dihedral(x, k), k), x)
    if k:
        assert not torch.equal(dihedral(x, k), x)


@pytest.mark.parametrize("k", range(8))
def test_each_transform_composed_with_its_inverse_is_the_identity_both_ways(k):
    x = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(k))
    assert torch.equal(dihedral_inverse(dihedral(x, k), k), x)
    assert torch.equal(dihedral(dihedral_inverse(x, k), k), x)


def test_the_eight_transforms_are_the_eight_symmetries_of_the_square():
    x = torch.arange(9.0).reshape(3, 3)
    images = {tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(images) == 8
    assert torch.equal(dihedral(x, 4), x.flip(-1)) and torch.equal(dihedral(x, 1), torch.rot90(x, 1))


def test_tta_sets_cover_the_choices_in_a_fixed_order():
    assert tuple(_TTA_SETS) == TTA_CHOICES
    assert _TTA_SETS[1] == (0,) and _TTA_SETS[2] == (0, 4) and _TTA_SETS[4] == (0, 4, 6, 2)
    assert _TTA_SETS[8] == tuple(range(8))


@pytest.mark.parametrize("tta", [2, 4, 8])
def test_tta_with_identity_equals_no_tta(make_translator, rng, tta):
    x = (rng.normal(size=(2, 70, 90)) * 100).astype(np.float32)
    np.testing.assert_allclose(make_translator(tta=tta).predict_array(x), make_translator().predict_array(x), atol=ATOL)


def test_tta_averages_transformed_predictions():
    """A shift-by-one-column network is not flip-invariant: TTA=2 averages it with its mirror."""

    class ShiftRight(torch.nn.Module):
        def forward(self, x):
            return torch.roll(x, 1, dims=-1)

    meta = identity_meta(1)
    x = np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64) / 10
    plain = Translator(ShiftRight(), meta, device="cpu", overlap=0).predict_array(x)
    tta = Translator(ShiftRight(), meta, device="cpu", overlap=0, tta=2).predict_array(x)
    np.testing.assert_allclose(plain[0, :, 1:], x[0, :, :-1], atol=ATOL)
    # mirror of a right shift is a left shift: the average is (x[c-1] + x[c+1]) / 2 in the interior
    np.testing.assert_allclose(tta[0, :, 1:-1], (x[0, :, :-2] + x[0, :, 2:]) / 2, atol=ATOL)


def test_bf16_on_cpu_is_close_and_fp32_is_the_cpu_default(make_translator, rng):
    t = make_translator()
    assert t.config.precision == "fp32" and t.autocast_dtype is None and t.channels_last
    assert not make_translator(channels_last=False).channels_last
    x = (rng.normal(size=(2, 70, 70)) * 100).astype(np.float32)
    y = make_translator(precision="bf16", channels_last=True).predict_array(x)
    np.testing.assert_allclose(y, x, atol=1000 * 2**-7)
