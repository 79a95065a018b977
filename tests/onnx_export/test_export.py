"""ONNX export: onnxruntime == torch, one plane per output, nodata in the graph, metadata, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geop2p.errors import ChipSizeError, ConfigError, InputError, OutputExistsError
from geop2p.normalize import Normalizer
from geop2p.onnx_export import (
    NormalizedGenerator,
    OnnxExportConfig,
    decode_layers,
    deepness_metadata,
    export_onnx,
    plan_export,
)

import onnxruntime as ort  # noqa: E402  (a dev dependency: a missing one must fail, not skip)
import onnx  # noqa: E402

# Parity tolerance: |onnxruntime - torch| <= ATOL_FRACTION * target scale (the Normalizer's half-range),
# i.e. 1e-4 of the target's normalised range; for the 0..255 colours here that is < 0.01 DN.
ATOL_FRACTION = 1e-4


def _metadata(path) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}


def _run(path, raw: np.ndarray) -> list[np.ndarray]:
    """The graph on raw values, fed as Deepness feeds them: float32(value / 255)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: np.float32(raw * 1.0 / 255.0)})


def _network(bundle, raw: np.ndarray) -> tuple[np.ndarray, object, np.ndarray]:
    """The Translator's rule on one window: normalise, invalid (nodata/NaN) → 0, generator → ``(y, header, invalid)``."""
    from geop2p.models.bundle import load_bundle

    generator, header = load_bundle(bundle)
    z = np.asarray(header.input.normalizer.normalize(raw), np.float32)
    nd = header.input.nodata
    invalid = np.isnan(raw).any(axis=1)[0]
    if nd is not None:
        invalid |= (raw == nd).any(axis=1)[0]
    z[:, :, invalid] = 0.0
    z = np.nan_to_num(z, nan=0.0)
    with torch.inference_mode():
        return generator(torch.from_numpy(z)).numpy(), header, invalid


def _expected(bundle, raw: np.ndarray) -> np.ndarray:
    """What the Translator's rule gives in target units."""
    y, header, _ = _network(bundle, raw)
    return header.target.normalizer.denormalize(y)


def test_float_output_matches_torch(tiny_unet_bundle, tmp_path):
    out = tmp_path / "model.onnx"
    result = export_onnx(tiny_unet_bundle, out, OnnxExportConfig(resolution_m=30.0, encoding="float"))
    assert result.input_shape == (1, 1, 64, 64) and result.output_shapes == ((1, 3, 64, 64),)
    rng = np.random.default_rng(0)
    raw = rng.uniform(1800.0, 4200.0, size=(1, 1, 64, 64)).astype(np.float32)  # some values clip
    expected = _expected(tiny_unet_bundle, raw)
    (got,) = _run(out, raw)
    atol = ATOL_FRACTION * np.asarray([90.0] * 3).reshape(1, -1, 1, 1)
    assert np.all(np.abs(got - expected) <= atol), float(np.abs(got - expected).max())
    assert np.abs(expected - expected.mean()).max() > 1.0  # the comparison is not between constants


def test_split16_is_one_plane_per_output_and_decodes_to_the_units(tiny_unet_bundle, tmp_path):
    """A float target: two (1, 1, N, N) byte planes per band, whole numbers 0..255, decoded within step/2."""
    out = tmp_path / "model.onnx"
    result = export_onnx(tiny_unet_bundle, out, OnnxExportConfig(resolution_m=30.0))
    assert result.output_names == ("red_hi", "red_lo", "green_hi", "green_lo", "blue_hi", "blue_lo")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.shape for o in sess.get_outputs()] == [[1, 1, 64, 64]] * 6
    raw = np.random.default_rng(1).uniform(2000.0, 4000.0, size=(1, 1, 64, 64)).astype(np.float32)
    planes = _run(out, raw)
    for p in planes:
        assert p.min() >= 0 and p.max() <= 255 and np.array_equal(p, np.round(p))  # exact through uint8
    layers = np.stack([p[0, 0] for p in planes]).astype(np.uint8)
    decoded = decode_layers(layers, result.codes)
    expected = _expected(tiny_unet_bundle, raw)[0]
    step = 180.0 / 65534
    assert np.abs(decoded - expected).max() <= step / 2 + ATOL_FRACTION * 90.0, float(np.abs(decoded - expected).max())


def test_byte_target_is_exact_with_nodata_and_nudge(byte_pixel_bundle, tmp_path):
    """uint8 target, nodata 0: rounded and clipped like geop2p predict, invalid → 0, a valid 0 nudged to 1."""
    from geop2p.predict.engine import TargetCast

    out = tmp_path / "byte.onnx"
    result = export_onnx(byte_pixel_bundle, out)
    assert result.output_names == ("red", "green", "blue") and {c.kind for c in result.codes} == {"byte"}
    raw = np.linspace(1900.0, 4100.0, 32 * 32, dtype=np.float32).reshape(1, 1, 32, 32)
    raw[0, 0, 0, :5] = -9999.0
    raw[0, 0, 1, 0] = np.nan
    got = np.stack([p[0, 0] for p in _run(out, raw)])
    y, header, invalid = _network(byte_pixel_bundle, raw)
    want = TargetCast(header.target.normalizer, np.dtype("uint8"), 0)(y[0], ~invalid)
    want[:, invalid] = 0
    assert np.abs(got - want).max() <= 1 and (got != want).mean() < 0.01  # float32 rounding at .5 only
    assert (got[:, invalid] == 0).all() and (got[:, ~invalid] != 0).all()
    assert (got[2][~invalid] == 1).sum() > 10  # blue goes below 0.5: clipped to 0, nudged to 1 as predict does


def test_input_nodata_and_nan_are_the_translators_rule(tiny_unet_bundle, tmp_path):
    """-9999 and NaN → normalised 0 (not clipped to -1), outputs code 0 there; the rest is unchanged."""
    out = tmp_path / "m.onnx"
    result = export_onnx(tiny_unet_bundle, out, OnnxExportConfig(encoding="float", input_nodata=(-9999.0,)))
    assert result.input_nodata == (-9999.0,)
    raw = np.random.default_rng(2).uniform(2000.0, 4000.0, size=(1, 1, 64, 64)).astype(np.float32)
    raw[0, 0, 10:20, 10:20] = -9999.0
    raw[0, 0, 40, 40] = np.nan
    (got,) = _run(out, raw)
    from geop2p.models.bundle import load_bundle

    generator, header = load_bundle(tiny_unet_bundle)
    z = np.asarray(header.input.normalizer.normalize(raw), np.float32)
    invalid = (raw[0, 0] == -9999.0) | np.isnan(raw[0, 0])
    z[0, 0][invalid] = 0.0
    with torch.inference_mode():
        want = header.target.normalizer.denormalize(generator(torch.from_numpy(z))).numpy()
    assert np.all(np.isclose(got[0][:, ~invalid], want[0][:, ~invalid], atol=0.01))
    assert (got[0][:, invalid] == -9999.0).all()  # the target's nodata
    clipped = np.where(np.isnan(raw), -1.0, np.clip((raw - 3000.0) / 1000.0, -1, 1)).astype(np.float32)
    with torch.inference_mode():
        old = header.target.normalizer.denormalize(generator(torch.from_numpy(clipped))).numpy()
    assert np.abs(old[0][:, ~invalid] - want[0][:, ~invalid]).max() > 0.1  # the rule changes valid neighbours

    split = export_onnx(tiny_unet_bundle, tmp_path / "s.onnx", OnnxExportConfig(input_nodata=(-9999.0,)))
    planes = _run(split.path, raw)
    code = planes[0][0, 0] * 256 + planes[1][0, 0]
    assert (code[invalid] == 0).all() and (code[~invalid] > 0).all()


def test_deepness_metadata_is_written(tiny_unet_bundle, tmp_path):
    out = tmp_path / "model.onnx"
    export_onnx(tiny_unet_bundle, out, OnnxExportConfig(overlap=16, resolution_m=30.0))
    md = _metadata(out)
    assert md["model_type"] == "Regressor"
    assert md["tile_size"] == 64 and md["tiles_size"] == 64
    assert md["tiles_overlap"] == 25  # 16 px of 64 px, in percent
    assert md["resolution"] == pytest.approx(3000.0)  # centimetres per pixel
    assert md["standardization_mean"] == [0.0] and md["standardization_std"] == [1.0]
    # one one-entry dict per output; the trailing "_" makes Deepness name the layer exactly "red_hi"
    assert md["class_names"][:2] == [{"0": "red_hi_"}, {"0": "red_lo_"}] and len(md["class_names"]) == 6
    assert md["reg_output_scaling"] == 1.0
    assert md["geop2p"]["input_scale"] == 255.0 and md["geop2p"]["tile_overlap_px"] == 16
    assert md["geop2p"]["bands"][0]["kind"] == "split16" and md["geop2p"]["bundle"]["chip_size"] == 64


def test_raw_input_and_tile_size(tiny_unet_bundle, tmp_path):
    out = tmp_path / "raw.onnx"
    result = export_onnx(tiny_unet_bundle, out, OnnxExportConfig(tile_size=96, input_scale=1.0))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 1, 96, 96]
    md = _metadata(out)
    assert md["tile_size"] == 96 and md["tiles_overlap"] == 17  # 17 % of 96 px is 16 px in Deepness's rounding
    assert result.overlap == 16
    assert "resolution" not in md  # the bundle records none and none was given
    assert any("input_scale 1" in n for n in result.notes)


def test_bad_tile_size_suggests_multiples(tiny_unet_bundle, tmp_path):
    with pytest.raises(ChipSizeError, match=r"Tile size 100 is not a multiple of 8 .*use --tile-size 104"):
        export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(tile_size=100))
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*partial*"))


def test_overlap_follows_the_one_overlap_rule_and_must_be_even(tiny_unet_bundle, tmp_path):
    """0 to half the tile (geop2p.tiling.check_overlap), even (Deepness crops overlap // 2 per side)."""
    with pytest.raises(InputError, match=r"--overlap 33 is not a whole number of pixels from 0 to 32"):
        export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(overlap=33))
    with pytest.raises(InputError, match=r"--overlap 9 is odd; Deepness crops half the overlap"):
        export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(overlap=9))
    assert not list(tmp_path.glob("*.onnx"))
    export_onnx(tiny_unet_bundle, tmp_path / "half.onnx", OnnxExportConfig(overlap=32))
    assert _metadata(tmp_path / "half.onnx")["tiles_overlap"] == 50
    with pytest.raises(InputError, match=r"--overlap 16 is not a whole number of pixels from 0 to 12"):
        export_onnx(tiny_unet_bundle, tmp_path / "small.onnx", OnnxExportConfig(tile_size=24))  # recommended 16


def test_unreachable_overlap_uses_the_nearest_even_one_and_says_so(tiny_unet_bundle, tmp_path):
    result = export_onnx(tiny_unet_bundle, tmp_path / "m.onnx", OnnxExportConfig(tile_size=1024, overlap=64))
    assert (result.overlap, result.metadata["tiles_overlap"]) == (40, 4)
    assert any("no whole percentage of the 1024 px tile gives 64 px" in n and '"[px]"' in n for n in result.notes)


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
    result = export_onnx(bundle, tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert not any(word in v for v in props.values() for word in ("NaN", "Infinity"))
    assert props["class_names"] == '[{"0": "grey_hi_"}, {"0": "grey_lo_"}]'
    doc = json.loads(props["geop2p"])
    assert doc["bundle"]["input"]["nodata"] == "nan" and doc["bundle"]["target"]["nodata"] == "-inf"
    assert doc["bundle"]["training"]["best_metrics"]["val_ssim"] == "nan"
    assert doc["bands"][0]["nodata"] == "-inf"
    assert result.input_nodata == ()  # NaN input nodata: the graph always treats NaN as nodata


def test_output_exists_or_is_a_folder_is_refused(tiny_unet_bundle, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_onnx(tiny_unet_bundle, out)
    assert out.read_text() == "keep me"
    export_onnx(tiny_unet_bundle, out, overwrite=True)
    assert onnx.load(str(out)).producer_name == "geop2p"
    with pytest.raises(InputError, match=r"is a folder; give the \.onnx file to write"):
        export_onnx(tiny_unet_bundle, tmp_path, overwrite=True)


def test_byte_cannot_carry_a_band_outside_0_255(tiny_unet_bundle, tmp_path, float_pixel_bundle):
    from geop2p.models.bundle import load_bundle

    _, header = load_bundle(tiny_unet_bundle)  # float32 target 30..210: byte fits, rounded, with a note
    plan = plan_export(header, OnnxExportConfig(encoding="byte"))
    assert any("rounds it to whole units" in n for n in plan.notes)
    wide = header.replace(target=header.target.__class__(
        header.target.band_names, "float32", -9999.0, Normalizer("minmax", (150.0,) * 3, (200.0,) * 3, True)))
    with pytest.raises(InputError, match=r"leaves 0\.\.255.*300\.7 → 44.*use --deepness-encoding split16"):
        plan_export(wide, OnnxExportConfig(encoding="byte"))


def test_notes_name_what_deepness_cannot_carry(tiny_unet_bundle):
    from geop2p.models.bundle import load_bundle

    _, header = load_bundle(tiny_unet_bundle)  # no input nodata, no pixel size
    notes = " ".join(plan_export(header).notes)
    assert "pads tiles past the raster's top and right edges with 0" in notes and "--input-nodata 0" in notes
    assert "no 'resolution'" in notes
    side = header.input.__class__(("vv", ), "float32", None, header.input.normalizer, bands=(2,))
    notes = " ".join(plan_export(header.replace(input=side)).notes)
    assert "reads scene band(s) [2]" in notes and '"Advanced"' in notes
    assert not any("pads tiles" in n for n in plan_export(header, OnnxExportConfig(input_nodata=(0.0,))).notes)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"tile_size": 0}, InputError, "tile-size"),
        ({"overlap": -1}, InputError, "overlap"),
        ({"opset": 9}, InputError, "opset"),
        ({"input_scale": 0}, InputError, "input_scale"),
        ({"resolution_m": -30.0}, InputError, "resolution"),
        ({"encoding": "split8"}, ConfigError, "deepness-encoding"),
        ({"input_nodata": (float("inf"),)}, InputError, "infinite"),
        ({"tile_size": "big"}, ConfigError, "tile_size"),
    ],
)
def test_config_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        OnnxExportConfig(**kwargs)


def test_wrapper_folds_normalisation():
    gen = torch.nn.Identity()
    norm_in = Normalizer("minmax", (100.0,), (50.0,), True)
    norm_out = Normalizer("minmax", (10.0,), (2.0,), True)
    m = NormalizedGenerator(gen, norm_in, norm_out, input_scale=255.0)
    raw = torch.tensor([[[[50.0, 100.0, 125.0, 400.0]]]])
    # normalise → [-1, 0, 0.5, 1 (clipped)] → denormalise with the target normaliser
    torch.testing.assert_close(m(raw / 255.0), torch.tensor([[[[8.0, 10.0, 11.0, 12.0]]]]))
    m = NormalizedGenerator(gen, norm_in, norm_out, input_scale=255.0, input_nodata=(50.0,))
    raw = torch.tensor([[[[50.0, float("nan"), 125.0, float("inf")]]]])
    torch.testing.assert_close(m(raw / 255.0), torch.tensor([[[[10.0, 10.0, 11.0, 12.0]]]]))  # invalid → 0 → 10


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
    export_onnx(bundle, tmp_path / "m.onnx", OnnxExportConfig(encoding="split16"))
    md = _metadata(tmp_path / "m.onnx")
    if expected_cm is None:
        assert "resolution" not in md
    else:
        assert md["resolution"] == pytest.approx(expected_cm)
