"""PairedFoldersDataset: A/ and B/ folders of rasters paired by name, split by sub-folders or by name hash."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import geop2p.datasets.base as base_module
from geop2p.datasets import PairedFoldersDataset, detect_format, is_paired_folders, open_chip_dataset
from geop2p.datasets.paired import name_hash_split
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.io.read import read_raster
from geop2p.stats import StatsAccumulator
from tests.conftest import write_raster
from tests.fixtures.datasets import PAIRED_NAMES, PAIRED_NODATA, write_paired_folder


def test_name_hash_split_with_a_leakage_warning(paired_folder, caplog):
    assert detect_format(paired_folder).name == "paired-folders" and is_paired_folders(paired_folder)
    with caplog.at_level(logging.WARNING, logger="geop2p.datasets.paired"):
        splits = {s: PairedFoldersDataset(paired_folder, s) for s in ("train", "val", "test", "all")}
    warnings = [r.getMessage() for r in caplog.records if "name hash" in r.getMessage()]
    assert len(warnings) == 1 and "leak" in warnings[0] and "export-chips" in warnings[0]
    expected = {s: [n for n in PAIRED_NAMES if name_hash_split(n, 10, 10) == s] for s in ("train", "val", "test")}
    assert all(expected.values())  # the fixture's names put pairs in every split
    for s in ("train", "val", "test"):
        assert splits[s].chip_ids == expected[s]
    assert splits["all"].chip_ids == list(PAIRED_NAMES)
    assert splits["val"].preprocess == {"layout": "paired-folders", "split": "name-hash", "val_percent": 10,
                                        "test_percent": 10, "split_seed": 0}
    seeded = PairedFoldersDataset(paired_folder, "val", split_seed=7, val_percent=30)
    assert seeded.chip_ids == [n for n in PAIRED_NAMES if name_hash_split(n, 30, 10, 7) == "val"]
    assert seeded.source_sha256 != splits["val"].source_sha256


def test_split_sub_folders_and_input_target_names(paired_split_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="geop2p.datasets.paired"):
        sizes = {s: PairedFoldersDataset(paired_split_folder, s).chip_ids for s in ("train", "val", "test", "all")}
    assert sizes == {"train": ["a", "b", "c", "d"], "val": ["e", "f"], "test": ["g", "h"], "all": list("abcdefgh")}
    assert not [r for r in caplog.records if "name hash" in r.getMessage()]
    assert PairedFoldersDataset(paired_split_folder, "val").preprocess == {"layout": "paired-folders",
                                                                          "split": "folders"}


def test_items_bands_grid_and_masking(paired_folder):
    ds = PairedFoldersDataset(paired_folder, "all")
    assert (ds.input_info.count, ds.input_info.dtype, ds.target_info.band_names) == (2, "uint16", ("height",))
    assert ds.target_info.nodata == PAIRED_NODATA and ds.chip_size == 16
    assert ds.crs == "EPSG:32631" and ds.pixel_size == (10.0, 10.0)
    x, y, valid = ds.read_raw(0)  # p000 has a nodata corner
    raw, _ = read_raster(paired_folder / "A" / "p000.tif")
    assert np.array_equal(x, raw) and not valid[:3, :3].any() and valid[3:, 3:].all()
    item = ds[0]
    assert item["input"].shape == (2, 16, 16) and item["target"].shape == (1, 16, 16)
    assert float(item["target_raw"][0, 0, 0]) == 0.0 and item["chip_id"] == "p000"


def test_statistics_are_streamed_over_the_train_pairs_on_first_use(paired_folder, monkeypatch):
    ds = PairedFoldersDataset(paired_folder, "train")
    acc_in, acc_tg = StatsAccumulator("uint16", ["band_1", "band_2"]), StatsAccumulator("float32", ["height"])
    values = []
    for name in ds.chip_ids:
        x, vx = read_raster(paired_folder / "A" / f"{name}.tif")
        y, vy = read_raster(paired_folder / "B" / f"{name}.tif")
        acc_in.update(x, vx & vy)
        acc_tg.update(y, vx & vy)
        values.append(x[0][vx & vy])
    assert ds.stats["input"] == acc_in.result().to_dict() and ds.stats["target"] == acc_tg.result().to_dict()
    values = np.concatenate(values)
    band = ds.stats["input"]["bands"][0]
    assert band["count"] == values.size and band["mean"] == pytest.approx(values.mean())
    assert band["percentiles"]["98"] == np.percentile(values, 98, method="inverted_cdf")

    norms = dict(input_normalizer=ds.input_normalizer, target_normalizer=ds.target_normalizer)

    def fail(*args, **kwargs):
        raise AssertionError("pixels were read")

    monkeypatch.setattr(base_module, "read_raster", fail)
    again = PairedFoldersDataset(paired_folder, "train", **norms)  # opening reads headers only
    assert again.input_normalizer == ds.input_normalizer
    with pytest.raises(AssertionError, match="pixels were read"):
        PairedFoldersDataset(paired_folder, "train").stats  # noqa: B018 - the first use streams


def test_missing_partner_names_the_file(paired_folder):
    (paired_folder / "B" / "p003.tif").unlink()
    with pytest.raises(ChipFolderError, match="has no partner") as exc:
        open_chip_dataset(paired_folder, "train")
    msg = str(exc.value)
    assert str(paired_folder / "A" / "p003.tif") in msg and "\n" not in msg
    (paired_folder / "A" / "p003.tif").unlink()
    (paired_folder / "B" / "zz.tif").write_bytes((paired_folder / "B" / "p000.tif").read_bytes())
    with pytest.raises(ChipFolderError, match="has no partner") as exc:
        open_chip_dataset(paired_folder, "val")
    assert str(paired_folder / "B" / "zz.tif") in str(exc.value)


def test_mixed_band_counts_name_the_file(paired_folder):
    bad = paired_folder / "A" / "p005.tif"
    write_raster(bad, np.zeros((3, 16, 16), np.uint16))
    with pytest.raises(ChipFolderError, match="has 3 uint16 band") as exc:
        PairedFoldersDataset(paired_folder, "all")
    assert str(bad) in str(exc.value) and str(paired_folder / "A" / "p000.tif") in str(exc.value)
    assert "\n" not in str(exc.value)


def test_chips_of_another_size_name_the_file(paired_folder):
    bad = paired_folder / "B" / "p004.tif"
    write_raster(bad, np.zeros((1, 16, 8), np.float32))
    with pytest.raises(ChipFolderError, match="a pair must share one grid") as exc:
        PairedFoldersDataset(paired_folder, "all")
    assert str(bad) in str(exc.value)
    for side, dtype, bands in (("A", np.uint16, 2), ("B", np.float32, 1)):
        write_raster(paired_folder / side / "p004.tif", np.zeros((bands, 32, 32), dtype))
    with pytest.raises(ChipFolderError, match="all chips must have the same size") as exc:
        PairedFoldersDataset(paired_folder, "all")
    assert str(paired_folder / "A" / "p004.tif") in str(exc.value) and "\n" not in str(exc.value)


def test_empty_and_incomplete_folders(tmp_path, paired_split_folder):
    root = write_paired_folder(tmp_path / "p", ("x", "y"))
    for p in (root / "B").iterdir():
        p.unlink()
    with pytest.raises(ChipFolderError, match="holds no rasters") as exc:
        PairedFoldersDataset(root)
    assert str(root / "B") in str(exc.value) and "\n" not in str(exc.value)
    for p in (paired_split_folder / "val" / "target").iterdir():
        p.unlink()
    (paired_split_folder / "val" / "target").rmdir()
    with pytest.raises(ChipFolderError, match="has no B/ or target/ folder") as exc:
        PairedFoldersDataset(paired_split_folder, "train")
    assert str(paired_split_folder / "val") in str(exc.value)


def test_an_empty_split(tmp_path):
    root = write_paired_folder(tmp_path / "p", {"train": ("a", "b")})
    test = PairedFoldersDataset(root, "test")
    assert len(test) == 0 and len(PairedFoldersDataset(root, "train")) == 2
    with pytest.raises(ChipFolderError, match="The test split of .* holds no pairs") as exc:
        test.check_not_empty()
    assert "\n" not in str(exc.value)
    no_train = write_paired_folder(tmp_path / "q", {"val": ("a",)})
    with pytest.raises(ChipFolderError, match="no input statistics"):
        PairedFoldersDataset(no_train, "val")[0]


def test_both_a_and_input_folders(paired_folder):
    (paired_folder / "input").mkdir()
    with pytest.raises(ChipFolderError, match="has both A/ and input/"):
        open_chip_dataset(paired_folder)


def test_png_patches_without_georeferencing(tmp_path):
    root = tmp_path / "png"
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
        for i in range(3):
            write_raster(root / side / f"{i}.png", np.full((1, 8, 8), 10 * i, np.uint8), crs=None, driver="PNG")
    ds = open_chip_dataset(root, "all")
    assert isinstance(ds, PairedFoldersDataset) and len(ds) == 3 and ds.chip_size == 8
    assert ds.crs is None and ds.pixel_size is None and ds.input_info.dtype == "uint8"


def test_bad_percentages(paired_folder):
    with pytest.raises(ConfigError, match="val_percent and test_percent"):
        PairedFoldersDataset(paired_folder, val_percent=60, test_percent=40)
