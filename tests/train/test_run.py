"""train(): learning, run folder, bundle round trip, bad input checked before anything is written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from geop2p.io.bundle_file import read_bundle_header
from geop2p.models.bundle import load_bundle
from geop2p.errors import ChipSizeError, ConfigError, InputError, OutputExistsError, SizeMultipleError
from geop2p.train import train
from tests.fixtures.train import manifest_sha256

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_masked_l1_falls_on_a_learnable_mapping(chip_folder_ro, tmp_path, tiny_config):
    cfg = tiny_config.merge({"epochs": 40, "max_steps": 150, "n_samples": 0})
    l1: list[float] = []
    result = train(chip_folder_ro, tmp_path / "run", cfg, progress=lambda p: l1.append(p.losses["g_l1"]))
    assert result.steps == 150 and len(l1) == 150
    assert np.mean(l1[-15:]) < 0.5 * np.mean(l1[:15])
    history = result.history
    assert float(history[-1]["val_l1"]) < 0.6 * float(history[0]["val_l1"])


def test_run_folder_contents_and_bundle_round_trip(chip_folder_ro, tmp_path, tiny_config):
    run = tmp_path / "run"
    cfg = tiny_config.merge({"epochs": 2, "decay_epochs": 1, "recommended_overlap": 8})
    result = train(chip_folder_ro, run, cfg)
    assert result.bundle_path == run / "model.safetensors"
    for name in ("config.yaml", "metrics.csv", "checkpoints/last.pt", "model.safetensors",
                 "samples/epoch_001.png", "samples/epoch_003.png"):
        assert (run / name).is_file(), name
    png = Image.open(run / "samples" / "epoch_001.png")
    assert png.size == (2 * 64 + 2, 3 * 64 + 4)  # 2 chips wide; input, prediction, target rows
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"val_mae_elevation", "val_rmse_elevation", "val_psnr_elevation", "val_ssim_elevation",
            "train_loss_d", "lr", "metrics_split", "is_best"} <= set(rows[0])
    assert float(rows[0]["lr"]) == pytest.approx(2e-4) and float(rows[2]["lr"]) == pytest.approx(1e-4)
    assert rows[0]["metrics_split"] == "val"
    header = read_bundle_header(result.bundle_path).to_dict()
    assert header["input"]["band_names"] == ["red", "green", "blue"] and header["input"]["bands"] == [1, 2, 3]
    assert header["target"]["dtype"] == "float32" and header["target"]["nodata"] == -9999.0
    assert header["chip_size"] == 64 and header["recommended_overlap"] == 8
    assert header["training"]["chips_manifest_sha256"] == manifest_sha256(chip_folder_ro)
    assert header["training"]["best_epoch"] == result.best_epoch
    assert header["training"]["best_metrics"]["val_mae"] == pytest.approx(result.metrics["val_mae"])
    assert header["input"]["normalizer"]["method"] == "percentile"
    assert header["input"]["pixel_size"] == [10.0, 10.0] and header["input"]["crs"] == "EPSG:32631"


def test_bundle_round_trip_gives_the_same_outputs(chip_folder_ro, tmp_path, tiny_config):
    from geop2p.models import build_generator

    run = tmp_path / "run"
    train(chip_folder_ro, run, tiny_config.merge({"max_steps": 3, "n_samples": 0}))  # one validation: best = last
    generator, header = load_bundle(run / "model.safetensors")
    meta = header.to_dict()
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ref = build_generator(meta["generator"])
    ref.load_state_dict(ckpt["generator"])
    generator.eval()
    ref.eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(generator(x), ref(x))
    fresh = build_generator(meta["generator"])
    with torch.no_grad():
        assert not torch.equal(fresh.eval()(x), ref(x))


def test_existing_run_folder_refused_then_overwritten(chip_folder_ro, tmp_path, tiny_config):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="--resume.*--overwrite"):
        train(chip_folder_ro, run, tiny_config)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    with pytest.raises(ConfigError, match="Nothing to resume"):
        train(chip_folder_ro, run, tiny_config, resume=True)
    # --overwrite deletes only what a run wrote: the user's file is named, and nothing is deleted
    with pytest.raises(OutputExistsError, match="holds 'notes.txt', which geop2p did not write"):
        train(chip_folder_ro, run, tiny_config, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    (run / "notes.txt").unlink()
    cfg = tiny_config.merge({"max_steps": 1, "n_samples": 0})
    train(chip_folder_ro, run, cfg)
    (run / "checkpoints" / ".last.partial-99999999-0123abcd.pt").write_bytes(b"left by a killed run")
    first = (run / "model.safetensors").read_bytes()
    train(chip_folder_ro, run, cfg.merge({"seed": 1}), overwrite=True)
    assert (run / "model.safetensors").read_bytes() != first
    assert not list(run.rglob("*partial*")) and not (run / ".geop2p-lock").exists()


def test_chip_size_checked_before_writing(chip_folder_ro, tmp_path, tiny_config):
    cfg = tiny_config.merge({"generator_params": {"ngf": 8, "num_downs": 8}})
    with pytest.raises(ChipSizeError, match="not a multiple of 256") as info:
        train(chip_folder_ro, tmp_path / "run", cfg)
    assert isinstance(info.value, SizeMultipleError)
    assert (info.value.size, info.value.divisor, info.value.flag, info.value.suggestion) == (64, 256, "--size", 256)
    assert "shallower network" in str(info.value) and "num_downs" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_recommended_overlap_checked_before_writing(chip_folder_ro, tmp_path, tiny_config):
    with pytest.raises(InputError, match="recommended_overlap 40 is not a whole number of pixels from 0 to 32"):
        train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"recommended_overlap": 40}))
    assert not (tmp_path / "run").exists()


def test_missing_encoder_weights_file(chip_folder_ro, tmp_path, tiny_config):
    cfg = tiny_config.merge({"generator": "smp-unet", "encoder": "resnet18", "generator_params": {},
                             "encoder_weights": str(tmp_path / "missing.pt")})
    with pytest.raises(ConfigError, match="does not exist"):
        train(chip_folder_ro, tmp_path / "run", cfg)
    assert not (tmp_path / "run").exists()


def test_empty_val_split_falls_back_to_train(tmp_path, tiny_config, caplog):
    from tests.fixtures.train import write_chip_folder

    ids = [f"{r * 64:06d}_{c * 64:06d}" for r in range(2) for c in range(2)]
    chips = write_chip_folder(tmp_path / "chips", rows=2, cols=2, splits={i: "train" for i in ids})
    result = train(chips, tmp_path / "run", tiny_config.merge({"n_samples": 0}))
    assert "val split" in caplog.text and result.history[0]["metrics_split"] == "train"
    assert read_bundle_header(result.bundle_path).training["metrics_split"] == "train"


def test_smp_unet_trains(chip_folder_ro, tmp_path, tiny_config):
    cfg = tiny_config.merge({"generator": "smp-unet", "encoder": "resnet18", "n_samples": 0, "max_steps": 2,
                             "generator_params": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
                             "gan_mode": "hinge", "d_norm": "batch", "spectral_norm": True})
    result = train(chip_folder_ro, tmp_path / "run", cfg)
    assert read_bundle_header(result.bundle_path).generator["params"]["encoder_name"] == "resnet18"


def test_the_patchgan_depth_is_bounded_by_the_chip_size(chip_folder_ro, tmp_path, tiny_config):
    with pytest.raises(ConfigError, match=r"d_layers 5 is too deep for 64 px chips: the PatchGAN would leave no output "
                                          r"cell; use --d-layers 4 or fewer \(4 sees 142x142 px patches\)"):
        train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"d_layers": 5}))
    assert not (tmp_path / "run").exists()


def test_nothing_is_logged_before_a_refusal(tmp_path, tiny_config, caplog):
    """Validate first: the notes of the checks (an empty val split, a normalizer falling back to minmax) are held
    until every check has passed, so a refused command prints its error alone."""
    import logging

    from tests.fixtures.train import write_chip_folder

    caplog.set_level(logging.DEBUG, logger="geop2p")
    ids = [f"{r * 64:06d}_{c * 64:06d}" for r in range(2) for c in range(2)]
    chips = write_chip_folder(tmp_path / "chips", rows=2, cols=2, splits={i: "train" for i in ids})
    for change in ({"d_layers": 9}, {"d_layers": 9, "norm_low": 5, "norm_high": 95}):
        with pytest.raises(ConfigError, match="d_layers 9 is too deep"):
            train(chips, tmp_path / "run", tiny_config.merge(change))
        assert [r.getMessage() for r in caplog.records if r.name.startswith("geop2p")] == []
    assert not (tmp_path / "run").exists()
    train(chips, tmp_path / "run", tiny_config.merge({"max_steps": 1, "n_samples": 0, "norm_low": 5,
                                                      "norm_high": 95}))
    notes = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("val split" in n for n in notes) and any("minmax" in n for n in notes)


def test_a_run_leaves_no_lock(chip_folder_ro, tmp_path, tiny_config):
    run = tmp_path / "run"
    train(chip_folder_ro, run, tiny_config.merge({"max_steps": 1, "n_samples": 0}))
    assert not (run / ".geop2p-lock").exists()
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml", "metrics.csv", "model.safetensors",
                                                      "samples", "tensorboard"]
