"""Translator: stitching proven with an identity generator, grids, nodata, casting, bad input, bundle files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from geop2p.errors import (
    BandIndexError,
    BundleError,
    ChipSizeError,
    ConfigError,
    Geop2pError,
    InputError,
    OutputExistsError,
    RasterReadError,
    SizeMultipleError,
)
from geop2p.formats import BundleHeader
from geop2p.predict import PredictConfig, Translator, default_output_path
from tests.fixtures.predict import identity_generator, identity_meta

ATOL = 1e-3  # float32 through a min-max normalizer spanning ±1000


# ------------------------------------------------------------------------------------ stitching
@pytest.mark.parametrize("shape", [(150, 97), (20, 40), (64, 64), (65, 130), (1, 200)])
@pytest.mark.parametrize("overlap", [0, 16, 32])
@pytest.mark.parametrize("strip_rows", [1, 3])
def test_identity_reproduces_array_exactly(make_translator, rng, shape, overlap, strip_rows):
    t = make_translator(overlap=overlap, strip_rows=strip_rows, batch_size=3)
    x = rng.uniform(-999, 999, size=(2, *shape)).astype(np.float32)
    y = t.predict_array(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=ATOL, rtol=0)


def test_identity_reproduces_raster_and_grid_exactly(make_translator, scene, tmp_path):
    src = scene(150, 97)
    t = make_translator()
    dst = t.predict_raster(src, tmp_path / "out.tif")
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert b.crs == a.crs
        assert b.transform == a.transform
        assert (b.width, b.height) == (a.width, a.height)
        assert b.count == 2 and b.dtypes == ("float32", "float32")
        assert b.descriptions == ("out_1", "out_2")
        assert b.profile["tiled"] and b.compression is not None
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "scene.tif"]


def test_progress_counts_every_window(make_translator, rng):
    t = make_translator()
    calls = []
    t.predict_array(rng.normal(size=(2, 150, 97)).astype(np.float32), progress=lambda d, n: calls.append((d, n)))
    assert calls[-1] == (6, 6)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_default_overlap_is_the_bundles_recommendation(make_translator):
    assert make_translator().overlap == 16
    assert make_translator(chip_size=128, recommended_overlap=32).overlap == 32
    assert make_translator(window=128).window == 128
    assert make_translator(window=128).overlap == 16
    assert make_translator(recommended_overlap=0).overlap == 0


def test_bundle_without_recommended_overlap_is_refused(make_translator):
    """The header is checked once (BundleHeader): a bundle must recommend an overlap; no local fallback."""
    with pytest.raises(BundleError, match="recommended_overlap"):
        make_translator(recommended_overlap=None)


def test_explicit_window_smaller_than_the_recommended_overlap_is_the_overlap_rule(make_translator):
    with pytest.raises(InputError, match=r"--overlap 64 is not a whole number of pixels from 0 to 32"):
        make_translator(chip_size=128, recommended_overlap=64, window=64)
    assert make_translator(chip_size=128, recommended_overlap=64, window=64, overlap=16).overlap == 16


def test_header_object_and_dict_build_the_same_translator(rng):
    meta = identity_meta(2, in_nodata=-9999, out_nodata=-1)
    header = BundleHeader.from_dict(meta)
    a = Translator(identity_generator(2), meta, device="cpu")
    b = Translator(identity_generator(2), header, device="cpu")
    assert a.header == b.header == header
    assert (a.window, a.overlap, a.in_channels, a.out_channels) == (b.window, b.overlap, 2, 2)
    x = (rng.normal(size=(2, 70, 50)) * 100).astype(np.float32)
    x[0, :3] = -9999
    np.testing.assert_array_equal(a.predict_array(x), b.predict_array(x))


def test_dict_header_without_generator_takes_the_modules_spec():
    meta = identity_meta(2)
    del meta["generator"], meta["format"], meta["format_version"]
    t = Translator(identity_generator(2), meta, device="cpu")
    assert t.header.generator["architecture"] == "linear" and t.in_channels == 2


def test_invalid_dict_header_is_a_bundle_error():
    meta = identity_meta(2)
    meta["target"]["band_names"] = ["only_one"]
    with pytest.raises(BundleError, match="target.band_names"):
        Translator(identity_generator(2), meta, device="cpu")


# ------------------------------------------------------------------------------------ nodata
def test_nodata_holes_propagate_to_target_nodata(make_translator, scene, rng, tmp_path):
    data = (rng.normal(size=(2, 100, 90)) * 100).astype(np.float32)
    data[0, 10:20, 5:50] = -9999  # one band invalid is enough
    data[1, 70:, 80:] = -9999
    src = scene(data=data, nodata=-9999)
    t = make_translator(in_nodata=-9999, out_nodata=-9999)
    dst = t.predict_raster(src, tmp_path / "out.tif")
    invalid = (data == -9999).any(axis=0)
    with rasterio.open(dst) as b:
        out = b.read()
        assert b.nodata == -9999
        np.testing.assert_array_equal((out == -9999).all(axis=0), invalid)
        np.testing.assert_array_equal(b.dataset_mask() == 0, invalid)
        np.testing.assert_allclose(out[:, ~invalid], data[:, ~invalid], atol=ATOL, rtol=0)


def test_nodata_in_bands_the_model_does_not_read_is_ignored(make_translator, scene, rng, tmp_path):
    """Only the bands that feed the model decide validity: a hole in an unused band must not punch the output."""
    data = (rng.normal(size=(3, 60, 70)) * 100).astype(np.float32)
    data[2, 10:20, 10:20] = -9999  # band 3 is not read by the model
    data[0, 40:45, 50:60] = -9999  # band 1 is
    src = scene(data=data, nodata=-9999)
    t = make_translator(in_nodata=-9999, out_nodata=-9999)
    dst = t.predict_raster(src, tmp_path / "out.tif", bands=[1, 2])
    with rasterio.open(dst) as b:
        out = b.read()
    invalid = (data[:2] == -9999).any(axis=0)
    np.testing.assert_array_equal((out == -9999).all(axis=0), invalid)
    np.testing.assert_allclose(out[:, 10:20, 10:20], data[:2, 10:20, 10:20], atol=ATOL, rtol=0)


def test_invalid_pixels_become_internal_mask_without_target_nodata(make_translator, scene, rng, tmp_path):
    data = (rng.normal(size=(2, 70, 70)) * 100).astype(np.float32)
    data[1, 30:40, 30:40] = np.nan
    src = scene(data=data)
    dst = make_translator().predict_raster(src, tmp_path / "out.tif")
    with rasterio.open(dst) as b:
        assert b.nodata is None
        invalid = np.isnan(data).any(axis=0)
        np.testing.assert_array_equal(b.dataset_mask() == 0, invalid)
        np.testing.assert_allclose(b.read()[:, ~invalid], data[:, ~invalid], atol=ATOL, rtol=0)


def test_array_nodata_from_bundle_and_explicit_valid(make_translator, rng):
    t = make_translator(in_nodata=-9999, out_nodata=-1)
    x = (rng.normal(size=(2, 50, 50)) * 100).astype(np.float32)
    x[0, :5] = -9999
    y = t.predict_array(x)
    assert (y[:, :5] == -1).all()
    np.testing.assert_allclose(y[:, 5:], x[:, 5:], atol=ATOL)
    valid = np.ones((50, 50), bool)
    valid[:, -3:] = False
    y = t.predict_array(x, valid=valid)
    assert (y[:, :, -3:] == -1).all() and (y[:, 5:, :-3] != -1).all()


def test_array_fill_without_target_nodata_is_nan_for_floats_and_zero_for_integers(make_translator, rng):
    x = (rng.normal(size=(2, 40, 40)) * 100).astype(np.float32)
    x[1, 5:9, 5:9] = np.nan
    y = make_translator().predict_array(x)
    assert np.isnan(y[:, 5:9, 5:9]).all() and not np.isnan(y[:, 10:]).any()
    t = make_translator(scale=2.0, value_range=(0, 255), out_dtype="uint8")
    assert (t.predict_array(np.where(np.isnan(x), np.nan, 200.0).astype(np.float32))[:, 5:9, 5:9] == 0).all()


# ------------------------------------------------------------------------------------ casting
def test_uint8_target_is_rounded_and_clipped(make_translator, rng):
    # normalizers span [0, 255] (offset 127.5); a generator doubling its input maps x -> 2x - 127.5
    t = make_translator(scale=2.0, value_range=(0, 255), out_dtype="uint8")
    x = np.array([[[10.0, 100.3, 200.0, 127.2]]], np.float32).repeat(2, axis=0)
    y = t.predict_array(np.broadcast_to(x, (2, 40, 4)).copy())
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y[:, 0], [[0, 73, 255, 127]] * 2)


def test_valid_values_never_collide_with_nodata(make_translator):
    t = make_translator(scale=2.0, value_range=(0, 255), out_dtype="uint8", out_nodata=0)
    x = np.full((2, 40, 40), 10.0, np.float32)  # -> -107.5 -> clipped to 0 == nodata
    y = t.predict_array(x)
    assert (y == 1).all(), "a valid pixel rounding to the nodata value is nudged off it"
    t = make_translator(scale=2.0, value_range=(0, 255), out_dtype="uint8", out_nodata=255)
    assert (t.predict_array(np.full((2, 40, 40), 250.0, np.float32)) == 254).all()


# ------------------------------------------------------------------------------------ bad input
def test_window_not_multiple_of_32_suggests_nearest(make_translator):
    with pytest.raises(ChipSizeError, match=r"Window size 200 is not a multiple of 32.*use --window 192") as info:
        make_translator(window=200)
    assert isinstance(info.value, SizeMultipleError) and (info.value.size, info.value.divisor) == (200, 32)
    with pytest.raises(ChipSizeError):
        PredictConfig(window=100)


def test_window_follows_the_generators_divisor():
    class Needs64(torch.nn.Identity):
        required_divisor = 64

    with pytest.raises(SizeMultipleError, match=r"Window size 96 is not a multiple of 64.*use --window 128"):
        Translator(Needs64(), identity_meta(2), device="cpu", window=96, overlap=16)
    assert Translator(Needs64(), identity_meta(2), device="cpu", window=128).window == 128


@pytest.mark.parametrize(
    "opts, error, match",
    [
        (dict(tta=3), InputError, "TTA must be one of 1, 2, 4, 8"),
        (dict(precision="fp16"), InputError, "valid: auto, fp32, bf16"),
        (dict(device="tpu"), ConfigError, r"Unknown device 'tpu'; choose one of auto, cpu, cuda \(or cuda:N\)"),
        (dict(batch_size=0), InputError, "Batch size"),
        (dict(overlap=64), InputError, "--overlap 64 is not a whole number of pixels from 0 to 32"),
        (dict(bands=(1,)), BandIndexError, "model takes 2 input band"),
        (dict(blend="max"), InputError, "valid: hann, none"),
    ],
)
def test_bad_options(make_translator, opts, error, match):
    with pytest.raises(error, match=match) as info:
        make_translator(**opts)
    assert isinstance(info.value, Geop2pError)


def test_scene_without_needed_bands_writes_nothing(make_translator, scene, tmp_path):
    src = scene(40, 40, bands=1)
    with pytest.raises(BandIndexError, match=r"has 1 band\(s\) but the model reads band\(s\) \[1, 2\]"):
        make_translator().predict_raster(src, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_existing_output_and_unreadable_scene(make_translator, scene, tmp_path):
    src = scene(40, 40)
    (tmp_path / "out.tif").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        make_translator().predict_raster(src, tmp_path / "out.tif")
    assert (tmp_path / "out.tif").read_bytes() == b"x"
    make_translator().predict_raster(src, tmp_path / "out.tif", overwrite=True)
    (tmp_path / "junk.tif").write_text("not a raster")
    with pytest.raises(RasterReadError, match="junk.tif"):
        make_translator().predict_raster(tmp_path / "junk.tif", tmp_path / "junk_pred.tif")
    assert not (tmp_path / "junk_pred.tif").exists()


def test_predict_array_refuses_the_wrong_band_count(make_translator):
    with pytest.raises(InputError, match=r"2 band\(s\) \(in_1, in_2\); got shape \(3, 10, 10\)"):
        make_translator().predict_array(np.zeros((3, 10, 10), np.float32))
    with pytest.raises(InputError, match="valid must have shape"):
        make_translator().predict_array(np.zeros((2, 10, 10), np.float32), valid=np.ones((10, 9), bool))


def test_failure_mid_scene_leaves_no_output(scene, tmp_path):
    class FailsOnThirdBatch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("boom")
            return x

    src = scene(300, 200)
    t = Translator(FailsOnThirdBatch(), identity_meta(2), device="cpu", batch_size=1)
    with pytest.raises(RuntimeError, match="boom"):
        t.predict_raster(src, tmp_path / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]


def test_cog_output(make_translator, scene, tmp_path):
    src = scene(300, 280)
    dst = make_translator(cog=True).predict_raster(src, tmp_path / "out.tif")
    with rasterio.open(dst) as b, rasterio.open(src) as a:
        assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert (b.transform, b.crs, b.shape) == (a.transform, a.crs, a.shape)
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "scene.tif"]


def test_translator_from_bundle_file(identity_bundle, scene, tmp_path):
    t = Translator.from_file(identity_bundle, device="cpu")
    assert (t.window, t.overlap, t.in_channels) == (64, 16, 2)
    assert isinstance(t.header, BundleHeader) and t.header.input.band_names == ("in_1", "in_2")
    src = scene(70, 70)
    dst = t.predict_raster(src)
    assert dst == default_output_path(src)
    with rasterio.open(dst) as b, rasterio.open(src) as a:
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)
        assert b.tags()["GEOP2P_MODEL"] == identity_bundle.name
