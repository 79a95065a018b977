"""evaluate(): model and linear baseline metrics."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch

from geop2p.errors import BundleError, ChipFolderError
from geop2p.evaluate import evaluate, fit_linear_baseline
from geop2p.datasets import ChipDataset
from geop2p.train import train
from tests.fixtures.train import write_chip_folder

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def trained(chip_folder_ro, tmp_path, tiny_config):
    return train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"max_steps": 10, "n_samples": 0})).bundle_path


def test_linear_baseline_recovers_a_linear_mapping(tmp_path):
    chips = write_chip_folder(tmp_path / "c", rows=2, cols=3)
    ds = ChipDataset(chips, "train")
    # replace the target by an exactly linear function of the input through read_raw
    orig = ds.read_raw

    def linear_raw(i):
        x, _, v = orig(i)
        y = (2.0 * x[0] - 0.5 * x[1] + 7.0)[None]
        return x, y, v

    ds.read_raw = linear_raw
    base = fit_linear_baseline(ds, ds.input_normalizer)
    x, y, v = linear_raw(0)
    pred = base.predict(x[None].astype(np.float64))[0]
    np.testing.assert_allclose(pred[0][v], y[0][v], atol=1e-6)


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
