"""Translator: stitching proven with an identity generator, grids, nodata, casting, xarray, TTA, scenes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from geop2p.errors import BandIndexError, ChipSizeError, Geop2pError, InputError, OutputExistsError, RasterReadError
from geop2p.predict import (
    PredictConfig,
    Translator,
    _dihedral,
    _dihedral_inverse,
    default_output_path,
    predict_scenes,
    scene_outputs,
)
from tests.conftest import write_raster
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


def test_default_overlap_from_bundle_else_quarter_window(make_translator):
    assert make_translator().overlap == 16
    assert make_translator(recommended_overlap=None).overlap == 16
    assert make_translator(chip_size=128, recommended_overlap=None).overlap == 32
    assert make_translator(window=128).window == 128


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


# ------------------------------------------------------------------------------------ xarray
def test_dataarray_round_trip_keeps_coords_and_crs(make_translator, scene):
    import rioxarray
    src = scene(150, 97, nodata=-9999)
    da = rioxarray.open_rasterio(src)
    t = make_translator(in_nodata=-9999, out_nodata=-9999)
    out = t.predict_dataarray(da)
    assert out.dims == ("band", "y", "x")
    np.testing.assert_array_equal(out.x.values, da.x.values)
    np.testing.assert_array_equal(out.y.values, da.y.values)
    assert out.rio.crs == da.rio.crs
    assert out.rio.transform() == da.rio.transform()
    assert out.rio.nodata == -9999
    assert tuple(out.attrs["long_name"]) == ("out_1", "out_2")
    np.testing.assert_allclose(out.values, da.values, atol=ATOL)


def test_dataarray_selects_bundle_bands_from_a_wider_array(make_translator, scene, rng):
    import rioxarray
    data = (rng.normal(size=(4, 40, 40)) * 100).astype(np.float32)
    da = rioxarray.open_rasterio(scene(data=data))
    out = make_translator(meta_bands=[3, 1]).predict_dataarray(da)
    np.testing.assert_allclose(out.values, data[[2, 0]], atol=ATOL)


# ------------------------------------------------------------------------------------ TTA / precision
@pytest.mark.parametrize("k", range(8))
def test_dihedral_transforms_invert_exactly(k):
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(_dihedral_inverse(_dihedral(x, k), k), x)
    if k:
        assert not torch.equal(_dihedral(x, k), x)


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


# ------------------------------------------------------------------------------------ scenes
def test_scene_outputs_rules(tmp_path):
    assert default_output_path(tmp_path / "a.tif") == tmp_path / "a_pred.tif"
    assert scene_outputs(["x/a.tif"], out="o.tif")[0].name == "o.tif"
    with pytest.raises(InputError, match="--out-dir"):
        scene_outputs(["a.tif", "b.tif"], out="o.tif")
    with pytest.raises(InputError, match="both be written"):
        scene_outputs(["x/a.tif", "y/a.tif"], out_dir="preds")
    with pytest.raises(InputError, match="not both"):
        scene_outputs(["a.tif"], out="o.tif", out_dir="d")


def test_predict_scenes_writes_every_scene_once(make_translator, scene, tmp_path):
    scenes = [scene(40 + 10 * i, 50, name=f"s{i}.tif") for i in range(3)]
    t = make_translator()
    written = predict_scenes(scenes, t, out_dir=tmp_path / "preds")
    assert [p.name for p in written] == ["s0_pred.tif", "s1_pred.tif", "s2_pred.tif"]
    for s, p in zip(scenes, written):
        with rasterio.open(s) as a, rasterio.open(p) as b:
            assert (b.transform, b.crs, b.shape) == (a.transform, a.crs, a.shape)


def test_predict_scenes_shares_scenes_across_ranks(make_translator, scene, tmp_path, monkeypatch):
    scenes = [scene(40, 50, name=f"s{i}.tif") for i in range(5)]
    t = make_translator()
    by_rank = []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        # ranks run concurrently for real; run one after the other here, the second must not refuse
        # the first one's outputs, hence overwrite
        by_rank.append([p.name for p in predict_scenes(scenes, t, out_dir=tmp_path / "preds", overwrite=True)])
    assert by_rank == [["s0_pred.tif", "s2_pred.tif", "s4_pred.tif"], ["s1_pred.tif", "s3_pred.tif"]]
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == [f"s{i}_pred.tif" for i in range(5)]


def test_predict_scenes_checks_everything_before_writing(make_translator, scene, tmp_path):
    good = scene(40, 50, name="good.tif")
    bad = scene(40, 50, bands=1, name="one_band.tif")
    with pytest.raises(BandIndexError, match="one_band.tif' has 1 band"):
        predict_scenes([good, bad], make_translator(), out_dir=tmp_path / "preds")
    assert not (tmp_path / "preds").exists() or not any((tmp_path / "preds").iterdir())


# ------------------------------------------------------------------------------------ bad input
def test_window_not_multiple_of_32_suggests_nearest(make_translator):
    with pytest.raises(ChipSizeError, match=r"200 is not a multiple of 32.*use 192"):
        make_translator(window=200)
    with pytest.raises(ChipSizeError):
        PredictConfig(window=100)


@pytest.mark.parametrize(
    "opts, error, match",
    [
        (dict(tta=3), InputError, "TTA must be one of 1, 2, 4, 8"),
        (dict(precision="fp16"), InputError, "valid: auto, fp32, bf16"),
        (dict(device="tpu"), InputError, "valid devices: auto, cpu, cuda"),
        (dict(batch_size=0), InputError, "Batch size"),
        (dict(overlap=64), InputError, "smaller than the window"),
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


def test_writer_failure_is_raised_in_the_caller(make_translator, rng):
    t = make_translator()

    def bad_sink(*args):
        raise OSError("disk full")

    from geop2p.tiling import plan_windows

    x = rng.normal(size=(2, 200, 64)).astype(np.float32)
    plan = plan_windows(200, 64, 64, 16)
    with pytest.raises(OSError, match="disk full"):
        t._run(plan, lambda s: (x[:, s.read_row_off : s.read_row_end], np.ones((s.read_height, 64), bool)), bad_sink, None)


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
    src = scene(70, 70)
    dst = t.predict_raster(src)
    assert dst == default_output_path(src)
    with rasterio.open(dst) as b, rasterio.open(src) as a:
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)
        assert b.tags()["GEOP2P_MODEL"] == identity_bundle.name


def test_torchrun_shares_scenes_across_two_real_ranks(identity_bundle, scene, tmp_path):
    """`torchrun --nproc_per_node 2 -m geop2p predict` writes each scene exactly once, and correctly."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenes = [scene(40 + 8 * i, 50, name=f"s{i}.tif") for i in range(3)]
    out_dir = tmp_path / "preds"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "geop2p", "predict", *map(str, scenes), "--model", str(identity_bundle),
           "--out-dir", str(out_dir), "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out_dir.iterdir()) == ["s0_pred.tif", "s1_pred.tif", "s2_pred.tif"]
    for src in scenes:
        with rasterio.open(src) as a, rasterio.open(out_dir / f"{src.stem}_pred.tif") as b:
            assert (b.transform, b.crs, b.shape) == (a.transform, a.crs, a.shape)
            np.testing.assert_allclose(b.read(), a.read(), atol=ATOL, rtol=0)
