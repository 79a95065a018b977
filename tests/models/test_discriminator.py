"""Tests of the PatchGAN discriminator."""

from __future__ import annotations

import pytest
import torch

from geop2p.errors import ConfigError, InputError
from geop2p.models import build_discriminator, receptive_field


def test_output_shape_paper_config():
    d = build_discriminator(3 + 1, ndf=8)
    y = d(torch.zeros(2, 3, 256, 256), torch.zeros(2, 1, 256, 256))
    assert y.shape == (2, 1, 30, 30)  # the 70x70 PatchGAN on 256 px gives a 30x30 logit map
    assert d(torch.zeros(2, 4, 256, 256)).shape == (2, 1, 30, 30)


def test_receptive_field_formula():
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]


@pytest.mark.parametrize("n_layers", [1, 3])
def test_receptive_field_measured(n_layers):
    """The gradient of one central logit reaches exactly a receptive_field-wide square of the input."""
    torch.manual_seed(0)
    d = build_discriminator(2, ndf=4, n_layers=n_layers, norm="none").double()
    size = 160
    x = torch.randn(1, 2, size, size, dtype=torch.double, requires_grad=True)
    y = d(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero()
    cols = touched.any(dim=0).nonzero()
    assert int(rows.max() - rows.min() + 1) == receptive_field(n_layers)
    assert int(cols.max() - cols.min() + 1) == receptive_field(n_layers)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_norms(norm):
    d = build_discriminator(4, ndf=4, norm=norm)
    kinds = {type(m).__name__ for m in d.modules()}
    expected = {"instance": "InstanceNorm2d", "batch": "BatchNorm2d", "none": None}[norm]
    if expected:
        assert expected in kinds
    else:
        assert not kinds & {"InstanceNorm2d", "BatchNorm2d"}
    assert d(torch.randn(2, 4, 64, 64)).shape == (2, 1, 6, 6)


def test_unknown_norm_lists_valid():
    with pytest.raises(ConfigError, match="Unknown discriminator norm 'group'; valid values: batch, instance, none"):
        build_discriminator(4, norm="group")


def test_spectral_norm_bounds_weights():
    torch.manual_seed(0)
    d = build_discriminator(4, ndf=4, n_layers=2, spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    for _ in range(20):  # power iterations converge in training mode
        d(torch.randn(1, 4, 64, 64))
    d.eval()
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, rel=0.05)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="n_layers must be an integer >= 1"):
        build_discriminator(4, n_layers=0)
    with pytest.raises(ConfigError, match="input bands \\+ target bands"):
        build_discriminator(1)
    d = build_discriminator(4, ndf=4)
    with pytest.raises(InputError, match="expects 4 stacked channels .* got 3"):
        d(torch.zeros(1, 3, 64, 64))
