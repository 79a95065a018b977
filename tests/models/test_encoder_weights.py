"""Tests of loading pretrained encoder weights offline (local files) and the hub-name path."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from geop2p.errors import ConfigError
from geop2p.models import adapt_first_conv, build_generator, load_encoder_weights


def _donor(spec):
    torch.manual_seed(1)
    return build_generator(spec)


def _assert_encoder_equal(a, b, skip=()):
    sa, sb = a.encoder.state_dict(), b.encoder.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key not in skip:
            assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_local_bare_encoder_file(tmp_path, tiny_smp_spec, suffix):
    donor = _donor(tiny_smp_spec)
    path = tmp_path / f"enc{suffix}"
    state = {k: v.contiguous() for k, v in donor.encoder.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    fresh = build_generator(tiny_smp_spec)
    decoder_before = {k: v.clone() for k, v in fresh.unet.decoder.state_dict().items()}
    assert load_encoder_weights(fresh, str(path)) is fresh
    _assert_encoder_equal(fresh, donor)
    for key, value in fresh.unet.decoder.state_dict().items():  # only the encoder changed
        assert torch.equal(value, decoder_before[key])


def test_local_whole_model_file_with_encoder_prefix(tmp_path, tiny_smp_spec):
    donor = _donor(tiny_smp_spec)
    path = tmp_path / "unet.pt"
    torch.save({"epoch": 3, "state_dict": donor.unet.state_dict()}, path)  # keys 'encoder.*', 'decoder.*', nested
    fresh = build_generator(tiny_smp_spec)
    load_encoder_weights(fresh, path)
    _assert_encoder_equal(fresh, donor)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_rgb_weights_adapted_to_other_band_counts(tmp_path, tiny_smp_spec, in_channels):
    donor = _donor(tiny_smp_spec)  # 3 input bands, like RGB-pretrained weights
    path = tmp_path / "rgb.safetensors"
    save_file({k: v.contiguous() for k, v in donor.encoder.state_dict().items()}, str(path))
    fresh = build_generator({**tiny_smp_spec, "in_channels": in_channels})
    load_encoder_weights(fresh, path)
    _assert_encoder_equal(fresh, donor, skip={"conv1.weight"})
    src = donor.encoder.conv1.weight
    got = fresh.encoder.conv1.weight
    assert got.shape[1] == in_channels
    if in_channels == 1:
        assert torch.allclose(got[:, 0], src.sum(dim=1))
    else:
        for i in range(in_channels):
            assert torch.allclose(got[:, i], src[:, i % 3] * 3 / in_channels)
    with torch.no_grad():
        assert fresh.eval()(torch.randn(1, in_channels, 32, 32)).shape == (1, 1, 32, 32)


def test_adapt_first_conv_keeps_uniform_response():
    w = torch.randn(8, 3, 3, 3)
    r3 = torch.nn.functional.conv2d(torch.ones(1, 3, 5, 5), w)
    for n in (1, 6):  # exact when the new band count is 1 or a multiple of 3
        rn = torch.nn.functional.conv2d(torch.ones(1, n, 5, 5), adapt_first_conv(w, n))
        assert torch.allclose(r3, rn, atol=1e-5)
    assert torch.equal(adapt_first_conv(w, 3), w)


def test_none_changes_nothing(tiny_smp_spec):
    g = build_generator(tiny_smp_spec)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    for value in (None, "none", "None"):
        load_encoder_weights(g, value)
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())


def test_missing_file(tmp_path, tiny_smp_spec):
    with pytest.raises(ConfigError, match="does not exist; pass an existing file, 'none' or 'imagenet'"):
        load_encoder_weights(build_generator(tiny_smp_spec), tmp_path / "nope.safetensors")


def test_other_encoder_keys_are_reported(tmp_path, tiny_smp_spec):
    other = build_generator({**tiny_smp_spec, "params": {"encoder_name": "mobilenet_v2", "encoder_depth": 3,
                                                         "decoder_channels": [16, 8, 8]}})
    path = tmp_path / "mobilenet.safetensors"
    save_file({k: v.contiguous() for k, v in other.encoder.state_dict().items()}, str(path))
    with pytest.raises(ConfigError, match=r"do not fit this encoder: \d+ missing key\(s\).*same --encoder name"):
        load_encoder_weights(build_generator(tiny_smp_spec), path)


def test_shape_mismatch_is_reported(tmp_path, tiny_smp_spec):
    state = {k: v.contiguous() for k, v in _donor(tiny_smp_spec).encoder.state_dict().items()}
    state["bn1.weight"] = torch.ones(3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(ConfigError, match=r"'bn1.weight' has shape \(3,\), the encoder expects \(64,\)"):
        load_encoder_weights(build_generator(tiny_smp_spec), path)


def test_pickled_objects_are_not_unpickled(tmp_path, tiny_smp_spec, capsys):
    path = tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(path, "wb") as fh:
        pickle.dump({"state_dict": Payload()}, fh, protocol=2)
    with pytest.raises(ConfigError, match="holds Python objects besides tensors, which geop2p refuses to unpickle"):
        load_encoder_weights(build_generator(tiny_smp_spec), path)
    assert "pwned" not in capsys.readouterr().out


def test_wrong_suffix(tmp_path, tiny_smp_spec):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"0" * 16)
    with pytest.raises(ConfigError, match="expected one of .safetensors, .pt, .pth"):
        load_encoder_weights(build_generator(tiny_smp_spec), path)


def test_non_smp_generator_refused(tiny_pix2pix_spec, tmp_path):
    with pytest.raises(ConfigError, match="smp-unet generator only; this generator is 'pix2pix-unet'"):
        load_encoder_weights(build_generator(tiny_pix2pix_spec), tmp_path / "x.safetensors")


def test_hub_name_without_network_says_what_to_do(monkeypatch, tiny_smp_spec):
    import segmentation_models_pytorch.encoders as smp_encoders

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(smp_encoders, "hf_hub_download", offline)
    with pytest.raises(ConfigError, match=r"Could not download 'imagenet' weights for encoder 'resnet18'.*"
                                          r"pass a local weights file with --encoder-weights PATH"):
        load_encoder_weights(build_generator(tiny_smp_spec), "imagenet")


def test_unknown_hub_name_lists_available(tiny_smp_spec):
    with pytest.raises(ConfigError, match="no pretrained weights named 'instagram'; available: .*imagenet"):
        load_encoder_weights(build_generator(tiny_smp_spec), "instagram")
