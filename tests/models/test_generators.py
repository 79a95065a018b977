"""Tests of the generator registry and architectures."""

from __future__ import annotations

import pytest
import torch

from geop2p.errors import ChipSizeError, ConfigError
from geop2p.models import GENERATORS, build_generator, padded_size, required_divisor, resolve_generator_spec


def test_registry_names():
    assert set(GENERATORS) == {"smp-unet", "pix2pix-unet", "linear"}


def test_unknown_architecture_lists_valid():
    with pytest.raises(ConfigError, match="valid architectures: smp-unet, pix2pix-unet, linear"):
        build_generator({"architecture": "resnet-gan", "in_channels": 3, "out_channels": 1})


@pytest.mark.parametrize("key,value", [("in_channels", 0), ("out_channels", "3"), ("in_channels", True)])
def test_bad_channel_counts(linear_spec, key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a positive integer"):
        build_generator({**linear_spec, key: value})


def test_unknown_and_mistyped_params(tiny_pix2pix_spec):
    with pytest.raises(ConfigError, match=r"Unknown pix2pix-unet parameters \['encoder_name'\]; valid parameters: ngf"):
        build_generator({**tiny_pix2pix_spec, "params": {"encoder_name": "resnet18"}})
    with pytest.raises(ConfigError, match="'ngf' must be of type int"):
        build_generator({**tiny_pix2pix_spec, "params": {"ngf": "8"}})
    with pytest.raises(ConfigError, match="Unknown generator spec keys"):
        build_generator({**tiny_pix2pix_spec, "encoder": "x"})


def test_resolve_fills_defaults():
    spec = resolve_generator_spec({"architecture": "smp-unet", "in_channels": 4, "out_channels": 2})
    assert spec["params"] == {
        "encoder_name": "resnet34",
        "encoder_depth": 5,
        "decoder_channels": [256, 128, 64, 32, 16],
    }
    spec = resolve_generator_spec({"architecture": "smp-unet", "in_channels": 4, "out_channels": 2,
                                   "params": {"encoder_depth": 4}})
    assert spec["params"]["decoder_channels"] == [128, 64, 32, 16]
    spec = resolve_generator_spec({"architecture": "pix2pix-unet", "in_channels": 1, "out_channels": 3})
    assert spec["params"] == {"ngf": 64, "num_downs": 8, "norm": "batch", "use_dropout": True}


def test_smp_unet_shapes_tanh_and_spec(tiny_smp_spec):
    spec = {**tiny_smp_spec, "in_channels": 4, "out_channels": 2}
    g = build_generator(spec).eval()
    assert g.spec == resolve_generator_spec(spec)
    x = torch.randn(2, 4, 32, 48) * 10
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 2, 32, 48)
    assert y.abs().max() <= 1.0
    assert g.required_divisor == 8


def test_smp_unet_unknown_encoder_lists_valid(tiny_smp_spec):
    spec = {**tiny_smp_spec, "params": {"encoder_name": "resnet35"}}
    with pytest.raises(ConfigError, match=r"Unknown encoder 'resnet35'; did you mean .*resnet34.*valid smp encoders include"):
        build_generator(spec)
    with pytest.raises(ConfigError, match="timm has no model"):
        build_generator({**tiny_smp_spec, "params": {"encoder_name": "tu-not_a_model"}})


def test_smp_unet_bad_decoder_channels(tiny_smp_spec):
    with pytest.raises(ConfigError, match="decoder_channels must hold 3 positive widths"):
        build_generator({**tiny_smp_spec, "params": {**tiny_smp_spec["params"], "decoder_channels": [16, 8]}})
    with pytest.raises(ConfigError, match="encoder_depth must be 3, 4 or 5"):
        build_generator({**tiny_smp_spec, "params": {"encoder_name": "resnet18", "encoder_depth": 7}})


def test_pix2pix_unet_shapes(tiny_pix2pix_spec):
    g = build_generator(tiny_pix2pix_spec).eval()
    with torch.no_grad():
        y = g(torch.randn(1, 3, 64, 32) * 5)
    assert y.shape == (1, 1, 64, 32) and y.abs().max() <= 1.0
    assert g.required_divisor == 32


def test_pix2pix_unet_paper_size_and_dropout():
    spec = {"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 3}
    with torch.device("meta"):
        g = build_generator(spec)
    # the reference code logs "[Network G] Total number of parameters : 54.414 M" for unet_256, 3 -> 3 bands
    assert round(sum(p.numel() for p in g.parameters()) / 1e6, 3) == 54.414
    # dropout sits in the num_downs - 5 = 3 innermost wide decoder blocks
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3
    assert required_divisor(spec) == 256


def test_pix2pix_unet_too_shallow():
    with pytest.raises(ConfigError, match="num_downs >= 5"):
        build_generator({"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1, "params": {"num_downs": 4}})
    with pytest.raises(ConfigError, match="valid values: batch, instance, none"):
        build_generator({"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1, "params": {"norm": "layer"}})


def test_linear_is_per_pixel_affine(linear_spec):
    g = build_generator(linear_spec)
    with torch.no_grad():
        g.conv.weight.copy_(torch.tensor([2.0, -1.0, 0.5]).reshape(1, 3, 1, 1))
        g.conv.bias.fill_(3.0)
        x = torch.randn(2, 3, 5, 7)
        y = g(x)
    expected = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] + 3
    assert torch.allclose(y[:, 0], expected, atol=1e-6)
    assert g.required_divisor == 1


def test_linear_identity_is_exact():
    g = build_generator({"architecture": "linear", "in_channels": 2, "out_channels": 2}).set_identity()
    x = torch.randn(1, 2, 9, 11) * 1000
    with torch.no_grad():
        assert torch.equal(g(x), x)
    with pytest.raises(ConfigError, match="as many input as output bands"):
        build_generator({"architecture": "linear", "in_channels": 2, "out_channels": 1}).set_identity()


@pytest.mark.parametrize(
    "fixture,size,divisor", [("tiny_smp_spec", (40, 48), 8), ("tiny_pix2pix_spec", (64, 48), 32)]
)
def test_input_size_must_be_multiple(request, fixture, size, divisor):
    spec = request.getfixturevalue(fixture)
    g = build_generator(spec)
    assert required_divisor(spec) == divisor
    h, w = size[0] + 1, size[1]
    expected = f"{padded_size(h, divisor)}x{padded_size(w, divisor)}"
    with pytest.raises(ChipSizeError, match=f"divisible by {divisor}; got {h}x{w}. Pad or crop the input to {expected}"):
        g(torch.zeros(1, 3, h, w))


def test_required_divisor_default_smp():
    assert required_divisor({"architecture": "smp-unet", "in_channels": 3, "out_channels": 1}) == 32
    assert required_divisor({"architecture": "linear", "in_channels": 3, "out_channels": 1}) == 1
