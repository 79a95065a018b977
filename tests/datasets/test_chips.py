"""ChipDataset: a geop2p chip folder as a dataset of one split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from geop2p.datasets import ChipDataset
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.normalize import Normalizer
from tests.fixtures.train import INPUT_NODATA


def test_splits_and_item_shapes(chip_folder_ro):
    ds = ChipDataset(chip_folder_ro, "train")
    assert (len(ds), len(ChipDataset(chip_folder_ro, "val")), len(ChipDataset(chip_folder_ro, "test"))) == (20, 2, 2)
    item = ds[0]
    assert item["input"].shape == (3, 64, 64) and item["input"].dtype == torch.float32
    assert item["target"].shape == (1, 64, 64) and item["valid"].shape == (1, 64, 64)
    assert item["chip_id"] == "000000_000000"
    assert ds.input_info.band_names == ("red", "green", "blue") and ds.chip_size == 64


def test_invalid_pixels_are_masked_zeroed_and_units_preserved(chip_folder_ro):
    ds = ChipDataset(chip_folder_ro, "train")
    item = ds[0]  # the first chips have an invalid 12x12 corner
    valid = item["valid"][0].numpy().astype(bool)
    assert not valid[:12, :12].any() and valid[12:, 12:].all()
    assert (item["input"][:, ~valid] == 0).all() and (item["target_raw"][:, ~valid] == 0).all()
    x, y, v = ds.read_raw(0)
    assert x[0, 0, 0] == INPUT_NODATA
    np.testing.assert_allclose(item["target_raw"][0].numpy()[valid], y[0][valid])
    np.testing.assert_allclose(ds.target_normalizer.denormalize(item["target"].numpy())[0][valid].clip(
        *_range(ds.target_normalizer)), y[0][valid].clip(*_range(ds.target_normalizer)), rtol=1e-5)
    assert float(item["input"].abs().max()) <= 1.0


def _range(norm: Normalizer) -> tuple[float, float]:
    return norm.offset[0] - norm.scale[0], norm.offset[0] + norm.scale[0]


def test_chip_georeferencing_matches_the_grid(chip_folder_ro):
    manifest = json.loads((chip_folder_ro / "geop2p-chips.json").read_text())
    a, b, c, d, e, f = manifest["grid"]["transform"]
    with rasterio.open(chip_folder_ro / "input" / "000064_000128.tif") as src:
        assert tuple(src.transform)[:6] == (a, b, c + 128 * a, d, e, f + 64 * e)


def test_augmentation_is_seeded_by_epoch_and_index(chip_folder_ro):
    ds = ChipDataset(chip_folder_ro, "train", augment=True, seed=5)
    first = ds[3]["input"]
    assert torch.equal(first, ds[3]["input"])
    draws = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        item = ds[3]
        # the mapping input -> target survives the transform
        draws.add(item["input"].numpy().tobytes())
    assert len(draws) > 1
    plain = ChipDataset(chip_folder_ro, "train", augment=False)[3]
    assert sorted(first.flatten().tolist()) == sorted(plain["input"].flatten().tolist())


def test_missing_chip_file_and_bad_manifest(chip_folder):
    (chip_folder / "target" / "000000_000000.tif").unlink()
    with pytest.raises(ChipFolderError, match="missing"):
        ChipDataset(chip_folder, "train")
    (chip_folder / "geop2p-chips.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ChipFolderError, match="not a geop2p chip manifest"):
        ChipDataset(chip_folder, "val")


def test_normalizer_band_count_checked(chip_folder_ro):
    with pytest.raises(ConfigError, match="3"):
        ChipDataset(chip_folder_ro, "val", input_normalizer=Normalizer.identity(4))
