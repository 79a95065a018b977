"""ChipDataset, ArcGISTilesDataset, PairAugment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from geop2p.datasets import ArcGISTilesDataset, ChipDataset, PairAugment, open_chip_dataset
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.normalize import Normalizer
from tests.fixtures.train import INPUT_NODATA, target_function


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


def test_augmentation_is_identical_for_input_target_and_mask():
    aug = PairAugment()
    rng = np.random.default_rng(3)
    a = np.arange(2 * 16).reshape(2, 4, 4).astype(np.float32)
    m = a[:1] > 10
    for _ in range(10):
        t = aug.draw(rng)
        a2, b2, m2 = aug.apply(t, a, a[:1] * 2, m)
        assert np.array_equal(b2, a2[:1] * 2) and np.array_equal(m2, a2[:1] > 10)


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


def test_no_augment_flags():
    assert not PairAugment(flips=False, rot90=False).enabled


def test_bad_split_and_missing_manifest(chip_folder_ro, tmp_path):
    with pytest.raises(ConfigError, match="valid splits: train, val, test"):
        ChipDataset(chip_folder_ro, "validation")
    with pytest.raises(ChipFolderError, match="is not a dataset geop2p can read: expected a geop2p chip folder"):
        open_chip_dataset(tmp_path)
    with pytest.raises(ChipFolderError, match="does not exist"):
        open_chip_dataset(tmp_path / "nope")


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


def test_arcgis_tiles_without_emd_computes_stats(arcgis_tiles):
    train = ArcGISTilesDataset(arcgis_tiles, "train")
    val = ArcGISTilesDataset(arcgis_tiles, "val")
    assert len(train) + len(val) == 6 and len(ArcGISTilesDataset(arcgis_tiles, "test")) == 0
    assert train.stats["input"]["bands"][0]["count"] > 0
    assert "98" in train.stats["target"]["bands"][0]["percentiles"]
    item = open_chip_dataset(arcgis_tiles, "train")[0]
    assert item["input"].shape == (3, 64, 64) and item["target"].shape == (1, 64, 64)
    x, y, v = train.read_raw(0)
    np.testing.assert_allclose(y[0][v], target_function(x)[0][v], rtol=1e-6)


def test_arcgis_stats_are_not_recomputed_when_normalizers_are_given(arcgis_tiles, monkeypatch):
    """train/evaluate reopen the folder with normalizers in hand: no second pass over every tile."""
    import geop2p.datasets.arcgis as data_module

    first = ArcGISTilesDataset(arcgis_tiles, "train")
    norms = dict(input_normalizer=first.input_normalizer, target_normalizer=first.target_normalizer)

    def fail(*args, **kwargs):
        raise AssertionError("statistics were streamed again")

    monkeypatch.setattr(data_module, "_stream_stats", fail)
    again = ArcGISTilesDataset(arcgis_tiles, "train", **norms)
    assert len(again) > 0 and again.input_normalizer == first.input_normalizer


def test_arcgis_tiles_with_emd_stats(arcgis_tiles):
    emd = {"ModelType": "Pix2Pix", "ImageHeight": 64, "ImageWidth": 64, "ExtractBands": [0, 1, 2],
           "image_stats": {"band_min": [0, 0, 0], "band_max": [250, 250, 250], "band_mean": [120, 121, 122],
                           "band_std": [40, 41, 42]},
           "image_stats2": {"band_min": [10.0], "band_max": [300.0], "band_mean": [140.0], "band_std": [50.0]}}
    (arcgis_tiles / "esri_model_definition.emd").write_text(json.dumps(emd))
    ds = ArcGISTilesDataset(arcgis_tiles, "train")
    assert ds.stats["target"]["bands"][0]["max"] == 300.0
    assert ds.target_normalizer.method == "minmax" and ds.target_normalizer.offset == (155.0,)
    emd["image_stats2"]["band_min"] = [1.0, 2.0]
    (arcgis_tiles / "esri_model_definition.emd").write_text(json.dumps(emd))
    with pytest.raises(ChipFolderError, match="band_min"):
        ArcGISTilesDataset(arcgis_tiles, "train")


def test_arcgis_unpaired_tiles(arcgis_tiles):
    next((arcgis_tiles / "images2").iterdir()).unlink()
    with pytest.raises(ChipFolderError, match="no partner"):
        open_chip_dataset(arcgis_tiles)
