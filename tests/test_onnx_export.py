"""ONNX export: onnxruntime output == torch output, Deepness metadata, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geop2p.errors import ChipSizeError, InputError, OutputExistsError
from geop2p.normalize import Normalizer
from geop2p.onnx_export import NormalizedGenerator, OnnxExportConfig, deepness_metadata, export_onnx

import onnxruntime as ort  # noqa: E402  (a dev dependency: a missing one must fail, not skip)
import onnx  # noqa: E402

# Parity tolerance: |onnxruntime - torch| <= ATOL_FRACTION * target scale (the Normalizer's half-range),
# i.e. 1e-4 of the target's normalised range; for the 0..255 colours here that is < 0.01 DN.
ATOL_FRACTION = 1e-4


def _metadata(path) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}


def test_onnxruntime_matches_torch(tiny_unet_bundle, tmp_path):
    from geop2p.models.bundle import load_bundle

    out = tmp_path / "model.onnx"
    result = export_onnx(tiny_unet_bundle, out, OnnxExportConfig(resolution_m=30.0))
    assert out.is_file() and result.input_shape == (1, 1, 64, 64) and result.output_shape == (1, 3, 64, 64)

    generator, header = load_bundle(tiny_unet_bundle)
    in_norm, out_norm = header.input.normalizer, header.target.normalizer
    rng = np.random.default_rng(0)
    raw = rng.uniform(1800.0, 4200.0, size=(1, 1, 64, 64)).astype(np.float32)  # some values clip
    with torch.inference_mode():
        expected = out_norm.denormalize(generator(in_norm.normalize(torch.from_numpy(raw)))).numpy()

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.shape == [1, 1, 64, 64]
    got = sess.run(None, {inp.name: raw / 255.0})[0]  # Deepness feeds value / 255
    atol = ATOL_FRACTION * np.asarray(out_norm.scale).reshape(1, -1, 1, 1)
    assert np.all(np.abs(got - expected) <= atol), float(np.abs(got - expected).max())
    assert np.abs(expected - expected.mean()).max() > 1.0  # the comparison is not between constants


def test_deepness_metadata_is_written(tiny_unet_bundle, tmp_path):
    out = tmp_path / "model.onnx"
    export_onnx(tiny_unet_bundle, out, OnnxExportConfig(overlap=16, resolution_m=30.0))
    md = _metadata(out)
    assert md["model_type"] == "Regressor"
    assert md["tiles_size"] == 64 and md["tile_size"] == 64
    assert md["tiles_overlap"] == 25  # 16 px of 64 px, in percent
    assert md["resolution"] == pytest.approx(3000.0)  # centimetres per pixel
    assert md["standardization_mean"] == [0.0] and md["standardization_std"] == [1.0]
    assert md["class_names"] == {"0": "red", "1": "green", "2": "blue"}
    assert md["reg_output_scaling"] == 1.0
    assert md["geop2p"]["input_scale"] == 255.0
    assert md["geop2p"]["bundle"]["chip_size"] == 64


def test_raw_input_and_tile_size(tiny_unet_bundle, tmp_path):
    out = tmp_path / "raw.onnx"
    export_onnx(tiny_unet_bundle, out, OnnxExportConfig(tile_size=96, input_scale=1.0))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 1, 96, 96]
    md = _metadata(out)
    assert md["tiles_size"] == 96 and md["tiles_overlap"] == 17  # recommended 16 px of 96
    assert "resolution" not in md  # the bundle records none and none was given


def test_bad_tile_size_suggests_multiples(tiny_unet_bundle, tmp_path):
    with pytest.raises(ChipSizeError, match=r"Tile size 100 is not a multiple of 8 .*use --tile-size 104"):
        export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(tile_size=100))
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*partial*"))


def test_overlap_follows_the_one_overlap_rule(tiny_unet_bundle, tmp_path):
    """0 to half the tile (geop2p.tiling.check_overlap), the same rule as prediction's."""
    with pytest.raises(InputError, match=r"--overlap 33 is not a whole number of pixels from 0 to 32"):
        export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(overlap=33))
    assert not list(tmp_path.glob("*.onnx"))
    export_onnx(tiny_unet_bundle, tmp_path / "half.onnx", OnnxExportConfig(overlap=32))
    assert _metadata(tmp_path / "half.onnx")["tiles_overlap"] == 50
    with pytest.raises(InputError, match=r"--overlap 16 is not a whole number of pixels from 0 to 12"):
        export_onnx(tiny_unet_bundle, tmp_path / "small.onnx", OnnxExportConfig(tile_size=24))  # recommended 16


def test_metadata_values_are_written_under_the_json_policy(tmp_path):
    """Non-finite numbers in the bundle (NaN nodata, a NaN metric) travel as "nan" strings, never as bare NaN."""
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    spec = {"architecture": "linear", "in_channels": 1, "out_channels": 1, "params": {}}
    norm = {"method": "minmax", "offset": [0.0], "scale": [100.0], "clip": True, "low": None, "high": None}
    meta = {
        "input": {"bands": [1], "band_names": ["dem"], "dtype": "float32", "nodata": float("nan"), "normalizer": norm},
        "target": {"band_names": ["grey"], "dtype": "float32", "nodata": float("-inf"), "normalizer": norm},
        "chip_size": 32, "recommended_overlap": 8, "training": {"best_metrics": {"val_ssim": float("nan")}},
    }
    bundle = save_bundle(tmp_path / "nan.safetensors", build_generator(spec), meta)
    export_onnx(bundle, tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert not any(word in v for v in props.values() for word in ("NaN", "Infinity"))
    assert props["class_names"] == '{"0": "grey"}'
    doc = json.loads(props["geop2p"])["bundle"]
    assert doc["input"]["nodata"] == "nan" and doc["target"]["nodata"] == "-inf"
    assert doc["training"]["best_metrics"]["val_ssim"] == "nan"


def test_output_exists_is_refused(tiny_unet_bundle, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_onnx(tiny_unet_bundle, out)
    assert out.read_text() == "keep me"
    export_onnx(tiny_unet_bundle, out, overwrite=True)
    assert onnx.load(str(out)).producer_name == "geop2p"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tile_size": 0}, "tile-size"),
        ({"overlap": -1}, "overlap"),
        ({"opset": 3}, "opset"),
        ({"input_scale": 0}, "input_scale"),
        ({"resolution_m": -30.0}, "resolution"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(InputError, match=message):
        OnnxExportConfig(**kwargs)


def test_wrapper_folds_normalisation():
    gen = torch.nn.Identity()
    norm_in = Normalizer("minmax", (100.0,), (50.0,), True)
    norm_out = Normalizer("minmax", (10.0,), (2.0,), True)
    m = NormalizedGenerator(gen, norm_in, norm_out, input_scale=255.0)
    raw = torch.tensor([[[[50.0, 100.0, 125.0, 400.0]]]])
    # normalise → [-1, 0, 0.5, 1 (clipped)] → denormalise with the target normaliser
    torch.testing.assert_close(m(raw / 255.0), torch.tensor([[[[8.0, 10.0, 11.0, 12.0]]]]))


def test_deepness_metadata_overlap_percent():
    meta = {"input": {"band_names": ["vv", "vh"]}, "target": {"band_names": ["r", "g", "b"]}}
    md = deepness_metadata(meta, 256, 64, None, 255.0)
    assert md["tiles_overlap"] == 25 and md["standardization_mean"] == [0.0, 0.0] and "resolution" not in md


@pytest.mark.parametrize(
    ("pixel_size", "crs", "expected_cm"),
    [([30.0, 30.0], "EPSG:32613", 3000.0), ([0.0015, 0.0015], "EPSG:4326", None), (None, None, None)],
)
def test_resolution_comes_from_the_bundles_grid_when_in_metres(tmp_path, pixel_size, crs, expected_cm):
    """A metre pixel size recorded by `train` becomes Deepness's resolution; degrees are never guessed into metres."""
    from geop2p.models.bundle import save_bundle
    from geop2p.models import build_generator

    spec = {"architecture": "linear", "in_channels": 1, "out_channels": 1, "params": {}}
    norm = {"method": "minmax", "offset": [0.0], "scale": [100.0], "clip": True, "low": None, "high": None}
    meta = {
        "input": {"bands": [1], "band_names": ["dem"], "dtype": "float32", "nodata": None, "normalizer": norm,
                  "pixel_size": pixel_size, "crs": crs},
        "target": {"band_names": ["grey"], "dtype": "uint8", "nodata": None, "normalizer": norm},
        "chip_size": 32, "recommended_overlap": 8, "training": {},
    }
    bundle = save_bundle(tmp_path / "grid.safetensors", build_generator(spec), meta)
    export_onnx(bundle, tmp_path / "m.onnx")
    md = _metadata(tmp_path / "m.onnx")
    if expected_cm is None:
        assert "resolution" not in md
    else:
        assert md["resolution"] == pytest.approx(expected_cm)
