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
