"""train() on what users have: several folders as one, pix2pix aligned folders, paired folders; their errors."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from geop2p.datasets import ChipDataset, PairedFoldersDataset, Pix2PixAlignedDataset
from geop2p.datasets.paired import name_hash_split
from geop2p.errors import ChipFolderError, ConfigError, SizeMultipleError
from geop2p.evaluate import evaluate
from geop2p.io.bundle_file import read_bundle_header
from geop2p.metrics import MetricAccumulator
from geop2p.models.bundle import load_bundle
from geop2p.train import TrainConfig, train
from geop2p.train.checkpoint import Checkpoint, LoopState
from geop2p.train.checks import open_data
from geop2p.train.distributed import EpochSampler
from tests.fixtures.datasets import PAIRED_NAMES, cut_chip_folder, write_pix2pix_folder
from tests.fixtures.train import write_chip_folder

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: the linear generator and a small PatchGAN: a step takes milliseconds
LINEAR = dict(generator="linear", d_ndf=4, d_layers=2, device="cpu", workers=0, batch_size=2, n_samples=1)
#: what differs between two runs on the same data: time
TIMING = ("seconds", "img_per_s")


@pytest.fixture(scope="module")
def one_folder(chip_parts, tmp_path_factory):
    """Every chip of ``chip_parts.both`` in one folder whose manifest statistics are the streamed ones (those
    the merge of ``a`` and ``b`` reproduces exactly)."""
    return cut_chip_folder(chip_parts.both, tmp_path_factory.mktemp("one") / "all", lambda cid: True,
                           with_stats_file=False)


def _first_batch(data, cfg):
    data.train.set_epoch(0)
    sampler = EpochSampler(len(data.train), seed=cfg.seed, shuffle=True)
    sampler.set_epoch(0)
    return next(iter(DataLoader(data.train, batch_size=cfg.batch_size, sampler=sampler)))


def _rows(history):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def test_two_folders_train_like_one_folder_holding_both(chip_parts, one_folder, tmp_path, tiny_config):
    cfg = tiny_config.merge({"max_steps": 3, "n_samples": 1, "seed": 5})
    union, one = open_data([chip_parts.a, chip_parts.b], cfg), open_data(one_folder, cfg)
    assert union.train.chip_ids == one.train.chip_ids and union.val.chip_ids == one.val.chip_ids
    assert (union.input_normalizer, union.target_normalizer) == (one.input_normalizer, one.target_normalizer)
    a, b = _first_batch(union, cfg), _first_batch(one, cfg)
    assert a["chip_id"] == b["chip_id"]
    for key in ("input", "target", "target_raw", "valid"):
        assert torch.equal(a[key], b[key]), key

    ra = train([chip_parts.a, chip_parts.b], tmp_path / "union", cfg)
    rb = train(one_folder, tmp_path / "one", cfg)
    assert _rows(ra.history) == _rows(rb.history)
    ga, gb = load_file(ra.bundle_path), load_file(rb.bundle_path)
    assert ga.keys() == gb.keys() and all(torch.equal(ga[k], gb[k]) for k in ga)
    ha, hb = read_bundle_header(ra.bundle_path).to_dict(), read_bundle_header(rb.bundle_path).to_dict()
    for key in ("input", "target", "generator", "chip_size", "recommended_overlap"):
        assert ha[key] == hb[key], key
    ta, tb = ha["training"], hb["training"]
    assert ta["best_metrics"] == tb["best_metrics"] and ta["preprocess"] == tb["preprocess"] == {
        "layout": "geop2p-chips"}
    assert ta["datasets"] == [{"path": str(chip_parts.a.resolve()), "format": "geop2p-chips"},
                              {"path": str(chip_parts.b.resolve()), "format": "geop2p-chips"}]
    assert tb["datasets"] == [{"path": str(one_folder.resolve()), "format": "geop2p-chips"}]
    members = sorted(ChipDataset(f, "train").source_sha256 for f in (chip_parts.a, chip_parts.b))
    assert ta["chips_manifest_sha256"] == hashlib.sha256("\n".join(members).encode()).hexdigest()
    assert tb["chips_manifest_sha256"] == ChipDataset(one_folder, "train").source_sha256
    assert "source_sizes" not in ta


def test_resume_on_several_folders_checks_the_union(chip_parts, tmp_path, tiny_config):
    cfg = tiny_config.merge({"epochs": 1, "decay_epochs": 1, "n_samples": 0, "batch_size": 8})
    run = tmp_path / "run"
    train([chip_parts.a, chip_parts.b], run, cfg.merge({"max_steps": 2}))
    with pytest.raises(ConfigError, match="these are not the chips the run started on"):
        train([chip_parts.a], run, cfg, resume=True)
    first_b = ChipDataset(chip_parts.b, "all").chip_ids[0]
    fewer = cut_chip_folder(chip_parts.b, tmp_path / "fewer", lambda cid: cid != first_b, with_stats_file=False)
    with pytest.raises(ConfigError, match=f"Cannot resume .* on '{chip_parts.a}, {fewer}': these are not the chips"):
        train([chip_parts.a, fewer], run, cfg, resume=True)
    done = train([chip_parts.b, chip_parts.a], run, cfg.merge({"max_steps": 3}), resume=True)  # any order: one union
    assert done.steps == 3


def test_the_dataset_options_are_structural_on_resume():
    ckpt = Checkpoint(TrainConfig(direction="AtoB").to_dict(), {}, LoopState(), {})
    with pytest.raises(ConfigError, match="direction: checkpoint 'AtoB' vs now 'BtoA'"):
        ckpt.check_resumable(TrainConfig(direction="BtoA"))
    ckpt.check_resumable(TrainConfig(direction="AtoB", max_steps=9))


# ---------------------------------------------------------------------------------- pix2pix aligned
P2P = dict(LINEAR, direction="BtoA", load_size=36, crop_size=32, max_steps=2)


def test_pix2pix_run_records_its_preprocessing_and_evaluate_reproduces_the_eval_crops(pix2pix_folder, tmp_path):
    result = train(pix2pix_folder, tmp_path / "run", TrainConfig(**P2P, normalization="meanstd"))
    header = read_bundle_header(result.bundle_path)
    training = header.training
    assert training["preprocess"] == {"layout": "pix2pix-aligned", "direction": "BtoA", "load_size": 36,
                                      "crop_size": 32, "resample": "bicubic", "crop": "random"}
    assert training["datasets"] == [{"path": str(pix2pix_folder.resolve()), "format": "pix2pix-aligned"}]
    assert training["source_sizes"] == [[20, 20]]  # each half of the 40×20 images, before the resize to 36
    assert header.chip_size == 32 and header.input.crs is None and header.input.pixel_size is None
    for norm in (header.input.normalizer, header.target.normalizer):  # the fixed scaling, whatever normalization
        assert (norm.method, norm.offset, norm.scale) == ("minmax", (127.5,) * 3, (127.5,) * 3)

    # val: evaluate scores what training's validation scored (the bundle is the best epoch's)
    val = evaluate(result.bundle_path, pix2pix_folder, "val", device="cpu")
    assert val.preprocess == dict(training["preprocess"], crop="centre")
    assert val.model["mae"] == pytest.approx(result.metrics["val_mae"], rel=1e-6)
    assert val.datasets == ({"path": str(pix2pix_folder), "format": "pix2pix-aligned"},)

    # test: the same numbers as the model on centre crops of B resized to 36, computed here
    report = evaluate(result.bundle_path, pix2pix_folder, "test", device="cpu")
    generator, _ = load_bundle(result.bundle_path)
    ds = Pix2PixAlignedDataset(pix2pix_folder, "test", direction="BtoA", load_size=36, crop_size=32,
                               input_normalizer=header.input.normalizer, target_normalizer=header.target.normalizer)
    item = ds[0]
    acc = MetricAccumulator(["red", "green", "blue"], [2.0 * s for s in header.target.normalizer.scale])
    with torch.no_grad():
        pred = generator.eval()(item["input"][None]).float()
    acc.update(header.target.normalizer.denormalize(pred), item["target_raw"][None], item["valid"][None])
    assert report.model["mae"] == pytest.approx(acc.compute()["mae"], rel=1e-6)
    assert report.baseline_pixels == 3 * 32 * 32  # fitted on the 3 train images' crops
    assert report.baseline["mae"] < 1e-6  # B = 255 - A: the linear baseline is exact

    # a load size given wins; a direction contrary to the model's is refused
    other = evaluate(result.bundle_path, pix2pix_folder, "test", device="cpu", load_size=40)
    assert other.preprocess["load_size"] == 40 and other.model["mae"] != report.model["mae"]
    with pytest.raises(ConfigError, match="was trained BtoA .* --direction AtoB was given"):
        evaluate(result.bundle_path, pix2pix_folder, "test", device="cpu", direction="AtoB")


def test_pix2pix_without_val_scores_on_centre_crops_of_the_train_images(tmp_path, caplog):
    maps = write_pix2pix_folder(tmp_path / "maps", {"train": 3})
    cfg = TrainConfig(**P2P)
    data = open_data(maps, cfg)
    assert data.metrics_split == "train" and data.val.chip_ids == data.train.chip_ids
    assert data.train.preprocess["crop"] == "random" and data.val.preprocess["crop"] == "centre"
    centre = Pix2PixAlignedDataset(maps, "train", direction="BtoA", load_size=36, crop_size=32, random_crop=False)
    for i in range(len(data.val)):
        for got, want in zip(data.val.read_raw(i), centre.read_raw(i)):
            np.testing.assert_array_equal(got, want)
    with caplog.at_level(logging.WARNING, logger="geop2p"):
        result = train(maps, tmp_path / "run", cfg)
    assert result.history[0]["metrics_split"] == "train" and "val split" in caplog.text


def test_pix2pix_crops_that_do_not_suit_the_generator_name_crop_size(pix2pix_folder, tmp_path):
    cfg = TrainConfig(**dict(P2P, generator="pix2pix-unet", generator_params={"ngf": 4, "num_downs": 5},
                             load_size=52, crop_size=48))
    with pytest.raises(SizeMultipleError) as info:
        train(pix2pix_folder, tmp_path / "run", cfg)
    assert str(info.value) == ("Crop size 48 is not a multiple of 32 (the pix2pix-unet generator needs it); use "
                               "--crop-size 64. Keep --load-size at least as large.")
    assert info.value.flag == "--crop-size" and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------- paired folders
def test_paired_folders_run_and_evaluate_on_the_same_split(paired_folder, tmp_path):
    cfg = TrainConfig(**dict(LINEAR, max_steps=2, val_percent=30, test_percent=20))
    result = train(paired_folder, tmp_path / "run", cfg)
    header = read_bundle_header(result.bundle_path)
    assert header.training["preprocess"] == {"layout": "paired-folders", "split": "name-hash", "val_percent": 30,
                                             "test_percent": 20, "split_seed": 0}
    assert header.training["datasets"] == [{"path": str(paired_folder.resolve()), "format": "paired-folders"}]
    assert header.training["chips_manifest_sha256"] == PairedFoldersDataset(
        paired_folder, val_percent=30, test_percent=20).source_sha256
    assert header.input.crs == "EPSG:32631" and header.input.pixel_size == (10.0, 10.0)
    assert header.input.band_names == ("band_1", "band_2") and header.target.nodata == -9999.0
    assert header.input.normalizer.method == "percentile"
    assert result.history[0]["metrics_split"] == "val"
    # evaluate splits the names as training did (the bundle's percentages), unless told otherwise
    report = evaluate(result.bundle_path, paired_folder, "test", device="cpu")
    assert report.n_chips == sum(name_hash_split(n, 30, 20) == "test" for n in PAIRED_NAMES) > 0
    assert report.preprocess["val_percent"] == 30
    assert report.baseline["mae"] < 1e-3  # the target is the input bands' mean / 10: linear
    again = evaluate(result.bundle_path, paired_folder, "test", device="cpu", val_percent=10, test_percent=10)
    assert again.n_chips == sum(name_hash_split(n, 10, 10) == "test" for n in PAIRED_NAMES)


# ---------------------------------------------------------------------------------- errors before anything is written
def test_folders_that_disagree_an_option_no_folder_takes_and_a_missing_folder(chip_parts, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="geop2p")
    two_bands = write_chip_folder(tmp_path / "two", rows=1, cols=2, n_input_bands=2)
    run = tmp_path / "run"
    cases = [
        ([chip_parts.a, two_bands], {}, ChipFolderError, "has 2 input band\\(s\\) \\(red, green\\); expected 3"),
        ([chip_parts.a, chip_parts.b], {"direction": "BtoA"}, ConfigError,
         "'direction' applies to pix2pix-aligned folders only, but the folder\\(s\\) given are geop2p-chips"),
        ([chip_parts.a, tmp_path / "nothere"], {}, ChipFolderError, "Dataset folder '.*nothere' does not exist"),
        ([chip_parts.a, chip_parts.a], {}, ConfigError, "is given twice"),
        ([], {}, ConfigError, "No dataset folder given"),
        (chip_parts.a, {"format": "pix2pix-aligned"}, ChipFolderError, "is not a pix2pix aligned folder"),
    ]
    for folders, options, error, message in cases:
        with pytest.raises(error, match=message) as info:
            train(folders, run, TrainConfig(**LINEAR, **options))
        assert "\n" not in str(info.value)
        assert not run.exists()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("geop2p")] == []
