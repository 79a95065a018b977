"""ArcGISTilesDataset: an ArcGIS Export Tiles folder (images/, images2/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geop2p.datasets import ArcGISTilesDataset, open_chip_dataset
from geop2p.errors import ChipFolderError
from tests.fixtures.train import target_function


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
