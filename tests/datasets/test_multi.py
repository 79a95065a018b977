"""MultiFolderDataset: several folders trained on as one folder holding them all."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from geop2p.datasets import ChipDataset, MultiFolderDataset, Pix2PixAlignedDataset, open_chip_dataset
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import STATS_NAME
from geop2p.io.read import read_raster
from geop2p.io.stats_file import write_stats_state
from geop2p.stats import PERCENTILE_REL_ERROR, StatsAccumulator
from tests.fixtures.datasets import stream_train_stats, write_paired_folder, write_pix2pix_folder


def test_union_has_the_chips_of_one_folder_holding_both_in_its_order(chip_parts):
    for split in ("train", "val", "test", "all"):
        union = open_chip_dataset([chip_parts.a, chip_parts.b], split)
        one = ChipDataset(chip_parts.both, split)
        assert isinstance(union, MultiFolderDataset) and union.chip_ids == one.chip_ids
        assert [(a.name, b.name) for _, a, b in union.items] == [(a.name, b.name) for _, a, b in one.items]
    # the two folders interleave: the order is not one folder after the other
    assert union.items[0][1].parent.parent == chip_parts.a and union.items[1][1].parent.parent == chip_parts.b
    assert (union.chip_size, union.crs, union.pixel_size) == (one.chip_size, one.crs, one.pixel_size)
    assert union.input_info.band_names == one.input_info.band_names and union.input_info.dtype == "uint8"
    assert union.folders == (chip_parts.a, chip_parts.b)


def test_same_first_batch_as_one_folder_through_a_dataloader(chip_parts):
    union = open_chip_dataset([chip_parts.a, chip_parts.b], "train", seed=3)
    norms = dict(input_normalizer=union.input_normalizer, target_normalizer=union.target_normalizer)
    batches = []
    for folders in ([chip_parts.a, chip_parts.b], chip_parts.both):
        ds = open_chip_dataset(folders, "train", augment=True, seed=3, **norms)
        ds.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(11))
        batches.append(next(iter(loader)))
    union_batch, one_batch = batches
    assert union_batch["chip_id"] == one_batch["chip_id"]
    for key in ("input", "target", "target_raw", "valid"):
        assert torch.equal(union_batch[key], one_batch[key]), key


def test_merged_statistics_equal_streaming_over_every_train_chip(chip_parts):
    union = open_chip_dataset([chip_parts.a, chip_parts.b], "train")
    assert (chip_parts.a / STATS_NAME).is_file() and not (chip_parts.b / STATS_NAME).is_file()
    accs = stream_train_stats([chip_parts.both])
    for side in ("input", "target"):
        merged, streamed = union.stats[side]["bands"], accs[side].result().to_dict()["bands"]
        for m, s in zip(merged, streamed):
            assert (m["count"], m["min"], m["max"], m["percentiles"]) == (s["count"], s["min"], s["max"],
                                                                          s["percentiles"])
            assert m["mean"] == pytest.approx(s["mean"], rel=1e-12) and m["std"] == pytest.approx(s["std"], rel=1e-12)
    # and against numpy over the valid pixels of every train chip
    xs, ys = [], []
    for cid in ChipDataset(chip_parts.both, "train").chip_ids:
        x, vx = read_raster(chip_parts.both / "input" / f"{cid}.tif")
        y, vy = read_raster(chip_parts.both / "target" / f"{cid}.tif")
        xs.append(x[:, vx & vy])
        ys.append(y[:, vx & vy])
    for side, values in (("input", np.concatenate(xs, axis=1)), ("target", np.concatenate(ys, axis=1))):
        for band, v in zip(union.stats[side]["bands"], values):
            v64 = v.astype(np.float64)
            assert band["count"] == v.size and (band["min"], band["max"]) == (v64.min(), v64.max())
            assert band["mean"] == pytest.approx(v64.mean(), rel=1e-12)
            assert band["std"] == pytest.approx(v64.std(), rel=1e-9)
            for q, got in band["percentiles"].items():
                want = float(np.percentile(v, float(q), method="inverted_cdf"))
                if v.dtype == np.uint8:
                    assert got == want
                else:
                    assert abs(got - want) <= PERCENTILE_REL_ERROR * abs(want) + 1e-6


def test_statistics_file_and_streaming_give_identical_statistics(chip_parts, tmp_path):
    a_plain = tmp_path / "a"
    shutil.copytree(chip_parts.a, a_plain)
    (a_plain / STATS_NAME).unlink()
    with_file = open_chip_dataset([chip_parts.a, chip_parts.b], "train").stats
    without = open_chip_dataset([a_plain, chip_parts.b], "train").stats
    assert with_file == without


def test_the_statistics_file_is_what_is_used(chip_parts, tmp_path):
    """A folder's statistics.npz is read, not its chips: a file holding half the chips' statistics shows."""
    a = tmp_path / "a"
    shutil.copytree(chip_parts.a, a)
    ids = ChipDataset(a, "train").chip_ids
    half = {"input": StatsAccumulator("uint8", ["r", "g", "b"]), "target": StatsAccumulator("float32", ["e"])}
    for cid in ids[: len(ids) // 2]:
        x, vx = read_raster(a / "input" / f"{cid}.tif")
        y, vy = read_raster(a / "target" / f"{cid}.tif")
        half["input"].update(x, vx & vy)
        half["target"].update(y, vx & vy)
    write_stats_state(a / STATS_NAME, {s: acc.to_partial() for s, acc in half.items()})
    full = open_chip_dataset([chip_parts.a, chip_parts.b], "train").stats["input"]["bands"][0]["count"]
    b_count = ChipDataset(chip_parts.b, "train").stats["input"]["bands"][0]["count"]
    got = open_chip_dataset([a, chip_parts.b], "train").stats["input"]["bands"][0]["count"]
    assert got == int(half["input"].count[0]) + b_count < full


def test_a_folder_added_later_joins_and_the_digest_names_the_set(chip_parts):
    ab = open_chip_dataset([chip_parts.a, chip_parts.b], "val")
    ba = open_chip_dataset([chip_parts.b, chip_parts.a], "val")
    digests = sorted(ChipDataset(f, "val").source_sha256 for f in (chip_parts.a, chip_parts.b))
    assert ab.source_sha256 == ba.source_sha256 == hashlib.sha256("\n".join(digests).encode()).hexdigest()
    assert ab.source_sha256 not in digests and ab.chip_ids == ba.chip_ids


def test_members_normalise_as_the_union_and_pickle_resolved(chip_parts):
    import pickle

    union = open_chip_dataset([chip_parts.a, chip_parts.b], "val")
    back = pickle.loads(pickle.dumps(union))
    assert back.input_normalizer == union.input_normalizer
    assert all(m.input_normalizer == union.input_normalizer for m in back.members)
    assert torch.equal(back[1]["input"], union[1]["input"])


def test_a_list_of_one_folder_is_that_folder(chip_parts):
    ds = open_chip_dataset([chip_parts.a], "val")
    assert isinstance(ds, ChipDataset) and ds.source_sha256 == ChipDataset(chip_parts.a, "val").source_sha256
    with pytest.raises(ConfigError, match="No dataset folder given"):
        open_chip_dataset([], "val")


def test_chip_id_collision_names_both_folders(chip_parts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(chip_parts.a, copy)
    with pytest.raises(ChipFolderError, match="Chip id '000000_000000' is in both") as exc:
        open_chip_dataset([chip_parts.a, copy], "train")
    assert str(chip_parts.a) in str(exc.value) and str(copy) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="given twice"):
        open_chip_dataset([chip_parts.a, chip_parts.a], "train")


def test_band_count_mismatch_names_the_folder(chip_parts, tmp_path):
    from tests.fixtures.train import write_chip_folder

    four = write_chip_folder(tmp_path / "four", rows=1, cols=2, n_input_bands=4)
    with pytest.raises(ChipFolderError, match="has 4 input band") as exc:
        open_chip_dataset([chip_parts.a, four], "train")
    msg = str(exc.value)
    assert str(four) in msg and "expected 3" in msg and str(chip_parts.a) in msg and "\n" not in msg


def test_dtype_kind_and_chip_size_mismatches_name_the_folder(chip_parts, tmp_path):
    floats = write_paired_folder(tmp_path / "floats", n_input=3, input_dtype="float32", size=64)
    with pytest.raises(ChipFolderError, match="has float32 input chips; expected unsigned integer") as exc:
        open_chip_dataset([chip_parts.a, floats], "train")
    assert str(floats) in str(exc.value) and "\n" not in str(exc.value)
    small = write_paired_folder(tmp_path / "small", n_input=3, input_dtype="uint16", size=16)
    with pytest.raises(ChipFolderError, match="has 16 px chips; expected 64 px") as exc:
        open_chip_dataset([chip_parts.a, small], "train")
    assert str(small) in str(exc.value) and "--size 64" in str(exc.value)


def test_mixed_formats_and_widths_of_one_kind(chip_parts, tmp_path):
    """A uint16 paired folder beside uint8 chips: uint16 statistics, the chips' file streamed instead."""
    wide = write_paired_folder(tmp_path / "wide", n_input=3, input_dtype="uint16", size=64, names=("x1", "x2"))
    union = open_chip_dataset([chip_parts.a, wide], "all")
    assert union.input_info.dtype == "uint16" and len(union) == len(ChipDataset(chip_parts.a, "all")) + 2
    assert union.preprocess["layout"] == "multi-folder"
    assert [p["layout"] for p in union.preprocess["folders"]] == ["geop2p-chips", "paired-folders"]
    count = union.stats["input"]["bands"][0]["count"]
    wide_train = open_chip_dataset(wide, "train")
    expected = ChipDataset(chip_parts.a, "train").stats["input"]["bands"][0]["count"]
    expected += wide_train.stats["input"]["bands"][0]["count"] if len(wide_train) else 0
    assert count == expected
    assert union.crs == "EPSG:32631" and union.pixel_size == (10.0, 10.0)  # both at 10 m in UTM 31N


def test_two_pix2pix_folders_equal_one_holding_both(tmp_path):
    one = write_pix2pix_folder(tmp_path / "one", {"train": 3, "val": 1})
    x, y = tmp_path / "x", tmp_path / "y"
    for folder, names in ((x, ("t0.png", "t2.png")), (y, ("t1.png",))):
        (folder / "train").mkdir(parents=True)
        for n in names:
            shutil.copy(one / "train" / n, folder / "train" / n)
    opts = dict(load_size=18, crop_size=16, direction="BtoA")
    union = open_chip_dataset([x, y], "train", augment=True, seed=5, **opts)
    single = open_chip_dataset(one, "train", augment=True, seed=5, **opts)
    assert isinstance(single, Pix2PixAlignedDataset) and union.chip_ids == single.chip_ids == ["t0", "t1", "t2"]
    assert union.preprocess == single.preprocess and union.fixed_normalizers == single.fixed_normalizers
    for epoch in (0, 3):
        union.set_epoch(epoch)
        single.set_epoch(epoch)
        for i in range(3):
            assert torch.equal(union[i]["input"], single[i]["input"])
            assert torch.equal(union[i]["target"], single[i]["target"])


def test_union_of_one_split_only(chip_parts):
    a = ChipDataset(chip_parts.a, "val")
    b = ChipDataset(chip_parts.b, "test")
    with pytest.raises(ConfigError, match="open every folder on one split"):
        MultiFolderDataset([a, b])
    with pytest.raises(ConfigError, match="augment the union instead"):
        MultiFolderDataset([a, ChipDataset(chip_parts.b, "val", augment=True)])


def test_folders_on_different_grids_record_none(tmp_path):
    ten = write_paired_folder(tmp_path / "ten", {"train": ("a", "b")})
    twenty = write_paired_folder(tmp_path / "twenty", {"train": ("c",)}, pixel=20.0)
    union = open_chip_dataset([ten, twenty], "train")
    assert open_chip_dataset(twenty, "train").pixel_size == (20.0, 20.0)
    assert union.chip_ids == ["a", "b", "c"] and union.crs is None and union.pixel_size is None
