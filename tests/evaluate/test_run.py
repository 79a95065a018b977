"""evaluate(): model and linear baseline metrics on a split of a chip folder; bad input."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from geop2p.errors import BundleError, ChipFolderError, SizeMultipleError
from geop2p.evaluate import evaluate
from geop2p.train import train
from tests.fixtures.train import write_chip_folder

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def trained(chip_folder_ro, tmp_path, tiny_config):
    return train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"max_steps": 10, "n_samples": 0})).bundle_path


def test_evaluate_reports_model_and_baseline(trained, chip_folder_ro):
    report = evaluate(trained, chip_folder_ro, split="test", device="cpu")
    assert report.n_chips == 2 and report.band_names == ("elevation",)
    for side in (report.model, report.baseline):
        band = side["bands"]["elevation"]
        assert all(math.isfinite(band[k]) for k in ("mae", "rmse", "psnr", "ssim"))
        assert band["rmse"] >= band["mae"] > 0
    # the fixture's target is nearly linear in the input: the baseline is good
    assert report.baseline["bands"]["elevation"]["mae"] < 10
    table = report.format_table()
    assert "linear baseline" in table and "elevation" in table and "SSIM" in table
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["baseline"]["train_pixels"] > 0 and doc["split"] == "test"


def test_evaluate_bad_inputs(trained, chip_folder_ro, tmp_path):
    bad = tmp_path / "model.pt"
    with bad.open("wb") as f:
        pickle.dump({"weights": [1, 2, 3]}, f)
    with pytest.raises(BundleError, match="pickle"):
        evaluate(bad, chip_folder_ro)
    torch.save({"w": torch.zeros(2)}, tmp_path / "torch.safetensors")
    with pytest.raises(BundleError):
        evaluate(tmp_path / "torch.safetensors", chip_folder_ro)
    other = write_chip_folder(tmp_path / "four", rows=1, cols=2, n_input_bands=4)
    with pytest.raises(ChipFolderError, match="expects 3 input band"):
        evaluate(trained, other)
    one = write_chip_folder(tmp_path / "nosplit", rows=1, cols=2, splits={"000000_000000": "train",
                                                                          "000000_000064": "train"})
    with pytest.raises(ChipFolderError, match="test split .* is empty"):
        evaluate(trained, one, split="test")


def test_chips_the_generator_cannot_take_are_the_size_multiple_error(chip_folder_ro, tmp_path, make_bundle_meta):
    """64 px chips and a U-Net that halves its input 7 times (needs multiples of 128)."""
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    spec = {"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1,
            "params": {"ngf": 2, "num_downs": 7, "norm": "batch", "use_dropout": False}}
    meta = make_bundle_meta(["red", "green", "blue"], ["elevation"], chip_size=128, overlap=32)
    bundle = save_bundle(tmp_path / "deep.safetensors", build_generator(spec), meta)
    with pytest.raises(SizeMultipleError, match=r"Chip size 64 is not a multiple of 128 .*pix2pix-unet.*use --size 128"):
        evaluate(bundle, chip_folder_ro, split="test", device="cpu")


def test_batch_size_must_be_positive(chip_folder_ro, tmp_path):
    from geop2p.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        evaluate(tmp_path / "m.safetensors", chip_folder_ro, batch_size=0)


def test_several_folders_score_like_one_folder_holding_both(trained, chip_parts):
    """Model and baseline: the baseline is fitted on the train split of the same union."""
    for split in ("val", "test"):
        union = evaluate(trained, [chip_parts.a, chip_parts.b], split=split, device="cpu")
        one = evaluate(trained, chip_parts.both, split=split, device="cpu")
        assert union.n_chips == one.n_chips == 2
        assert union.model == one.model and union.baseline == one.baseline
        assert union.baseline_pixels == one.baseline_pixels > 0
    assert union.chips_dir == f"{chip_parts.a}, {chip_parts.b}" and union.preprocess == {"layout": "geop2p-chips"}
    assert union.to_dict()["datasets"] == [{"path": str(chip_parts.a), "format": "geop2p-chips"},
                                           {"path": str(chip_parts.b), "format": "geop2p-chips"}]
    assert f"chip(s) of {chip_parts.a}, {chip_parts.b}" in union.format_table().splitlines()[0]


def test_bad_folders_and_options(trained, chip_folder_ro, chip_parts, tmp_path, caplog):
    import logging

    from geop2p.errors import ConfigError

    caplog.set_level(logging.DEBUG, logger="geop2p")
    two_bands = write_chip_folder(tmp_path / "two", rows=1, cols=2, n_input_bands=2)
    cases = [
        (dict(chips_dir=[chip_parts.a, two_bands]), ChipFolderError, r"has 2 input band\(s\) \(red, green\)"),
        (dict(chips_dir=[chip_parts.a, tmp_path / "nothere"]), ChipFolderError, "Dataset folder .* does not exist"),
        (dict(chips_dir=chip_folder_ro, direction="BtoA"), ConfigError, "'direction' applies to pix2pix-aligned"),
        (dict(chips_dir=chip_folder_ro, random_crop=True), ConfigError, "Unknown dataset option 'random_crop'"),
        (dict(chips_dir=chip_folder_ro, val_percent=100), ConfigError, "val_percent: must be a whole percentage"),
        (dict(chips_dir=chip_folder_ro, format="tiles"), ConfigError, "format: 'tiles' is not valid"),
        (dict(chips_dir=[]), ConfigError, "No dataset folder given"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            evaluate(trained, split="test", device="cpu", **kwargs)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("geop2p")] == []


def test_pix2pix_crops_that_do_not_suit_the_generator_name_crop_size(pix2pix_folder, tmp_path, make_bundle_meta):
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    spec = {"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 3,
            "params": {"ngf": 2, "num_downs": 5, "norm": "batch", "use_dropout": False}}
    names = ["red", "green", "blue"]
    meta = make_bundle_meta(names, names, target_dtype="uint8", target_nodata=None, chip_size=32, overlap=8)
    bundle = save_bundle(tmp_path / "maps.safetensors", build_generator(spec), meta)
    with pytest.raises(SizeMultipleError) as info:
        evaluate(bundle, pix2pix_folder, split="val", device="cpu", load_size=52, crop_size=48)
    assert str(info.value) == ("Crop size 48 is not a multiple of 32 (the model's pix2pix-unet needs it); use "
                               "--crop-size 64. Keep --load-size at least as large.")
    report = evaluate(bundle, pix2pix_folder, split="val", device="cpu", load_size=36, crop_size=32)
    assert report.n_chips == 1 and report.preprocess["crop"] == "centre"  # no recorded preprocess: the options given
