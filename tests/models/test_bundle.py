"""Tests of geop2p.models.bundle (with io.bundle_file and formats.bundle_header): one .safetensors file, weights + JSON header, never a pickle."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from geop2p.errors import BundleError, BundleNotFoundError, InputError, OutputExistsError
from geop2p.io.bundle_file import read_bundle_header
from geop2p.models.bundle import load_bundle, read_bundle, save_bundle
from geop2p.models import build_generator
from geop2p.normalize import Normalizer

PICKLE_REFUSAL = "geop2p never unpickles model files. Use a geop2p bundle \\(.safetensors\\) written by `geop2p train`"


def _trained_like(spec, seed=0):
    """A generator with non-default weights and batch-norm statistics, as after training."""
    torch.manual_seed(seed)
    g = build_generator(spec)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    g.train()
    g(torch.randn(2, spec["in_channels"], 64, 64))  # moves running mean/var
    return g.eval()


@pytest.fixture
def meta(make_bundle_meta):
    return make_bundle_meta(
        ["red", "green", "blue"],
        ["dsm"],
        in_nodata=0,
        target_normalizer=Normalizer("percentile", (50.0,), (25.0,), True, 2, 98).to_dict(),
    )


@pytest.mark.parametrize("fixture", ["tiny_smp_spec", "linear_spec", "tiny_pix2pix_spec"])
def test_round_trip_same_outputs(tmp_path, request, fixture, meta):
    spec = request.getfixturevalue(fixture)
    g = _trained_like(spec)
    path = save_bundle(tmp_path / "model.safetensors", g, meta)
    assert path.is_file() and list(tmp_path.iterdir()) == [path]  # no temporary left behind
    loaded, header = load_bundle(path)
    assert not loaded.training
    assert header.generator == g.spec
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), g(x))
    for key, value in g.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_header_contents(tmp_path, tiny_smp_spec, meta):
    path = save_bundle(tmp_path / "m.safetensors", build_generator(tiny_smp_spec), meta)
    header = read_bundle_header(path)
    doc = header.to_dict()
    assert doc["format"] == "geop2p-model" and header.format_version == 1
    assert header.generator["params"]["encoder_name"] == "resnet18"
    assert header.input.band_names == ("red", "green", "blue")
    assert header.input.nodata == 0 and doc["input"]["nodata"] == 0
    assert header.target.dtype == "float32" and header.target.nodata == -9999.0
    assert header.target.normalizer.offset == (50.0,)
    assert header.chip_size == 64 and header.recommended_overlap == 16
    assert header.training["steps"] == 3
    bundle = read_bundle(path)
    assert bundle.chip_size == 64 and bundle.recommended_overlap == 16
    assert bundle.target_normalizer.scale == (25.0,) and bundle.input_normalizer.n_bands == 3


def test_nan_nodata_and_metrics_are_stored_as_json_strings(tmp_path, linear_spec, make_bundle_meta):
    meta = make_bundle_meta(["a", "b", "c"], ["t"], target_nodata=float("nan"))
    meta["training"]["best_metrics"] = {"val_mae": float("nan")}
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    header = read_bundle_header(path)
    doc = header.to_dict()
    assert doc["target"]["nodata"] == "nan" and doc["training"]["best_metrics"]["val_mae"] == "nan"
    assert header.target.nodata != header.target.nodata  # NaN read back as NaN


# ------------------------------------------------------------------ refusals
def test_torch_save_file_is_refused(tmp_path, linear_spec):
    path = tmp_path / "model.pt"
    torch.save(build_generator(linear_spec).state_dict(), path)
    with pytest.raises(BundleError, match="is a ZIP archive, i.e. a pickled PyTorch file .*" + PICKLE_REFUSAL):
        load_bundle(path)


def test_raw_pickle_is_refused_and_never_executed(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(BundleError, match="is a Python pickle; " + PICKLE_REFUSAL):
        load_bundle(path)
    with pytest.raises(BundleError, match="is a Python pickle"):
        read_bundle_header(path)
    assert "pwned" not in capsys.readouterr().out


def test_missing_file(tmp_path):
    with pytest.raises(BundleNotFoundError, match="does not exist; pass the .safetensors bundle") as info:
        load_bundle(tmp_path / "nope.safetensors")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, BundleError)


def test_folder_points_at_model_inside(tmp_path, linear_spec, meta):
    save_bundle(tmp_path / "run" / "model.safetensors", build_generator(linear_spec), meta)
    with pytest.raises(BundleError, match="is a folder; expected a model file such as .*run/model.safetensors"):
        read_bundle_header(tmp_path / "run")


@pytest.mark.parametrize("content", [b"", b"GeoTIFF?", b"II*\x00" + b"\x00" * 100, struct.pack("<Q", 5) + b"nope!"])
def test_not_a_safetensors_file(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="is not a safetensors file"):
        load_bundle(path)


def test_onnx_is_pointed_back_to_the_bundle(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x04test")
    with pytest.raises(BundleError, match="is an ONNX model"):
        load_bundle(path)


def test_safetensors_without_geop2p_header(tmp_path, tiny_smp_spec):
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in build_generator(tiny_smp_spec).state_dict().items()}, str(path))
    with pytest.raises(BundleError, match="is a safetensors file but not a geop2p model bundle .*--encoder-weights"):
        load_bundle(path)


def _rewrite_header(path, edit):
    """Rewrite a bundle's geop2p document in place (same tensors), as a tamperer would."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    doc = json.loads(header["__metadata__"]["geop2p"])
    edit(doc)
    header["__metadata__"]["geop2p"] = json.dumps(doc)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


def test_newer_format_version(tmp_path, linear_spec, meta):
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    _rewrite_header(path, lambda d: d.update(format_version=2, geop2p_version="9.0.0"))
    with pytest.raises(BundleError, match="format_version 2 was written by a newer geop2p \\(9.0.0\\).*Upgrade geop2p"):
        read_bundle_header(path)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["generator"].update(in_channels=4), "'input.band_names' lists 3 band\\(s\\) but the generator has 4"),
        (lambda d: d["target"]["normalizer"].update(offset=[1.0, 2.0], scale=[1.0, 1.0]),
         "'target.normalizer' has 2 band\\(s\\) but 'target.band_names' has 1"),
        (lambda d: d["generator"].update(architecture="gan9000"), "valid architectures: smp-unet, pix2pix-unet, linear"),
        (lambda d: d.pop("chip_size"), "'chip_size' must be a positive integer"),
        (lambda d: d["target"].update(dtype="complex64"), "'target.dtype' is 'complex64'; expected one of uint8"),
        (lambda d: d["input"].update(nodata=300), "'input.nodata' 300 does not fit the dtype uint8"),
        (lambda d: d.update(format="geop2p-chips"), "header format is 'geop2p-chips'; expected 'geop2p-model'"),
    ],
)
def test_tampered_header_is_refused(tmp_path, linear_spec, meta, edit, message):
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    _rewrite_header(path, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_header_disagreeing_with_weights(tmp_path, linear_spec, make_bundle_meta):
    meta = make_bundle_meta(["a", "b", "c"], ["t"])
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)

    def to_two_targets(d):
        d["generator"]["out_channels"] = 2
        d["target"]["band_names"] = ["t", "u"]
        d["target"]["normalizer"] = Normalizer.identity(2).to_dict()

    _rewrite_header(path, to_two_targets)
    read_bundle_header(path)  # the header alone is consistent
    with pytest.raises(BundleError, match="weights do not match the architecture in its header"):
        load_bundle(path)


def test_truncated_weights(tmp_path, linear_spec, meta):
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(BundleError, match="cannot read the weights"):
        load_bundle(path)


# ------------------------------------------------------------------ saving: checked before writing
def test_save_refuses_overwrite_and_bad_name(tmp_path, linear_spec, meta):
    g = build_generator(linear_spec)
    path = save_bundle(tmp_path / "m.safetensors", g, meta)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_bundle(path, g, meta)
    save_bundle(path, g, meta, overwrite=True)
    with pytest.raises(InputError, match="must end with .safetensors"):
        save_bundle(tmp_path / "m.pt", g, meta)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: m["input"].update(band_names=["red"]), "'input.band_names' lists 1 band\\(s\\) but the generator has 3"),
        (lambda m: m["target"].pop("normalizer"), "'target.normalizer' is invalid"),
        (lambda m: m.update(chip_size=60), "chip_size 60 is not a multiple of 8"),
        (lambda m: m.update(recommended_overlap=33), "'recommended_overlap' must be an integer from 0 to chip_size // 2 = 32"),
        (lambda m: m.update(generator={"architecture": "linear", "in_channels": 3, "out_channels": 1}),
         "differs from the module's own spec"),
    ],
)
def test_save_validates_before_writing(tmp_path, tiny_smp_spec, meta, edit, message):
    edit(meta)
    with pytest.raises(BundleError, match=message):
        save_bundle(tmp_path / "m.safetensors", build_generator(tiny_smp_spec), meta)
    assert list(tmp_path.iterdir()) == []


def test_save_module_without_spec_is_checked_against_meta(tmp_path, linear_spec, meta):
    from geop2p.models import Pix2PixUnet

    module = Pix2PixUnet(3, 1, ngf=4, num_downs=5)  # built directly: no .spec
    meta["generator"] = linear_spec
    with pytest.raises(BundleError, match="does not match the generator spec"):
        save_bundle(tmp_path / "m.safetensors", module, meta)
    meta.pop("generator")
    with pytest.raises(BundleError, match="no 'generator' spec and the module has no .spec"):
        save_bundle(tmp_path / "m.safetensors", module, meta)


def test_identity_bundle_fixture(tmp_path, make_identity_bundle):
    path = make_identity_bundle(tmp_path / "id.safetensors", n_bands=2)
    g, header = load_bundle(path)
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(g(x), x)
    assert header.input.band_names == header.target.band_names == ("band_1", "band_2")


def test_header_length_starting_with_pickle_byte_is_still_a_bundle(tmp_path, linear_spec, meta):
    """A safetensors header length whose low byte is 0x80 must not be mistaken for a pickle."""
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    target = next(length for length in range(n, n + 4096) if length % 256 == 0x80 and (length >> 8) % 256 <= 5)
    header = raw[8 : 8 + n].rstrip(b" ")
    path.write_bytes(struct.pack("<Q", target) + header + b" " * (target - len(header)) + raw[8 + n :])
    assert path.read_bytes()[:1] == b"\x80" and path.read_bytes()[1] <= 5
    g, header = load_bundle(path)
    assert header.chip_size == 64


def test_save_unwraps_data_parallel(tmp_path, linear_spec, meta):
    g = _trained_like(linear_spec)
    path = save_bundle(tmp_path / "m.safetensors", torch.nn.DataParallel(g), meta)
    loaded, _ = load_bundle(path)
    assert set(loaded.state_dict()) == set(g.state_dict())  # no 'module.' prefix


def test_tensor_shapes_and_dtypes_are_kept_exactly(tmp_path, tiny_smp_spec, meta):
    """0-d buffers (BatchNorm's num_batches_tracked) stay 0-d in the file, not (1,)."""
    g = _trained_like(tiny_smp_spec)
    path = save_bundle(tmp_path / "m.safetensors", g, meta)
    stored = read_bundle(path).state_dict
    assert any(v.ndim == 0 for v in g.state_dict().values())
    for key, value in g.state_dict().items():
        assert stored[key].shape == value.shape and stored[key].dtype == value.dtype, key
