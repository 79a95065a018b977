"""Pix2PixAlignedDataset: A|B images resized and cropped as the pix2pix reference code does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from geop2p.datasets import Pix2PixAlignedDataset, detect_format, open_chip_dataset
from geop2p.errors import ChipFolderError, ConfigError
from tests.fixtures.datasets import pix2pix_pair, write_pix2pix_folder

SMALL = dict(load_size=18, crop_size=16)


def open_p2p(folder, split="train", **kwargs) -> Pix2PixAlignedDataset:
    return Pix2PixAlignedDataset(folder, split, **{**SMALL, **kwargs})


def reference_halves(path, load_size: int) -> tuple[Image.Image, Image.Image]:
    """What the reference's AlignedDataset does before cropping: split A|B, resize each half (torchvision)."""
    ab = Image.open(path).convert("RGB")
    w, h = ab.size
    resize = transforms.Resize([load_size, load_size], InterpolationMode.BICUBIC)
    return resize(ab.crop((0, 0, w // 2, h))), resize(ab.crop((w // 2, 0, w, h)))


def reference_tensor(image: Image.Image, row: int, col: int, size: int) -> torch.Tensor:
    """The reference's crop, ToTensor and Normalize((0.5,) * 3, (0.5,) * 3)."""
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    return to_tensor(TF.crop(image, row, col, size, size))


def test_layout_splits_and_sizes(pix2pix_folder):
    assert detect_format(pix2pix_folder).name == "pix2pix-aligned"
    sizes = {s: len(open_p2p(pix2pix_folder, s)) for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 3, "val": 1, "test": 1, "all": 5}
    ds = open_p2p(pix2pix_folder)
    assert ds.chip_ids == ["t0", "t1", "t2"] and ds.chip_size == 16
    item = ds[0]
    assert item["input"].shape == (3, 16, 16) and item["target"].shape == (3, 16, 16)
    assert item["valid"].shape == (1, 16, 16) and bool(item["valid"].all())
    assert ds.input_info.band_names == ("red", "green", "blue") and ds.input_info.dtype == "uint8"
    assert ds.input_info.nodata is None and ds.pixel_size is None and ds.crs is None
    assert open_p2p(pix2pix_folder, "val").chip_ids == ["v0"]


def test_defaults_are_the_reference_sizes(pix2pix_folder):
    ds = Pix2PixAlignedDataset(pix2pix_folder, "val")
    assert (ds.load_size, ds.crop_size, ds.chip_size, ds.direction) == (286, 256, 256, "AtoB")
    assert ds[0]["input"].shape == (3, 256, 256)


def test_eval_crop_is_centred_and_equals_the_reference_pipeline(pix2pix_folder):
    ds = open_p2p(pix2pix_folder, "val")
    assert not ds.random_crop
    a, b = reference_halves(pix2pix_folder / "val" / "v0.png", 18)
    item = ds[0]
    np.testing.assert_allclose(item["input"].numpy(), reference_tensor(a, 1, 1, 16).numpy(), atol=1e-6)
    np.testing.assert_allclose(item["target"].numpy(), reference_tensor(b, 1, 1, 16).numpy(), atol=1e-6)
    x, y, _ = ds.read_raw(0)
    assert np.array_equal(x, np.asarray(a).transpose(2, 0, 1)[:, 1:17, 1:17])
    assert np.array_equal(y, np.asarray(b).transpose(2, 0, 1)[:, 1:17, 1:17])


def test_direction_swaps_the_sides(pix2pix_folder):
    for split in ("train", "val"):
        ab = open_p2p(pix2pix_folder, split, seed=4)
        ba = open_p2p(pix2pix_folder, split, seed=4, direction="BtoA")
        for ds in (ab, ba):
            ds.set_epoch(2)
        for i in range(len(ab)):
            assert torch.equal(ab[i]["input"], ba[i]["target"]) and torch.equal(ab[i]["target"], ba[i]["input"])
        # B is the negative of A in the fixture: the sides really differ
        assert not torch.equal(ab[0]["input"], ab[0]["target"])
    assert ba.preprocess["direction"] == "BtoA"


def _offset(ds: Pix2PixAlignedDataset, index: int) -> tuple[int, int]:
    """Where item ``index``'s train crop lies in its resized image (checked to be an exact window)."""
    full, _, _ = ds._read_item(ds.items[index])
    crop, _, _ = ds.read_raw(index)
    room = ds.load_size - ds.crop_size
    hits = [(r, c) for r in range(room + 1) for c in range(room + 1)
            if np.array_equal(full[:, r:r + ds.crop_size, c:c + ds.crop_size], crop)]
    assert len(hits) == 1
    return hits[0]


def test_train_crops_vary_with_seed_and_epoch_but_are_reproducible(pix2pix_folder):
    ds = open_p2p(pix2pix_folder, "train", seed=1)
    assert ds.random_crop and ds.preprocess["crop"] == "random"
    offsets = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        offsets.append(_offset(ds, 1))
        assert _offset(ds, 1) == offsets[-1]
    assert len(set(offsets)) > 1
    again = open_p2p(pix2pix_folder, "train", seed=1)  # a fresh copy, as in another DataLoader worker
    other_seed = open_p2p(pix2pix_folder, "train", seed=2)
    seen = []
    for epoch in range(8):
        again.set_epoch(epoch)
        other_seed.set_epoch(epoch)
        assert _offset(again, 1) == offsets[epoch]
        seen.append(_offset(other_seed, 1))
    assert seen != offsets
    # the crop is the one the reference's pipeline gives at that place
    ds.set_epoch(5)
    r, c = _offset(ds, 1)
    a, _ = reference_halves(ds.items[1][1], 18)
    np.testing.assert_allclose(ds[1]["input"].numpy(), reference_tensor(a, r, c, 16).numpy(), atol=1e-6)
    # eval crops never move
    fixed = open_p2p(pix2pix_folder, "train", random_crop=False)
    fixed.set_epoch(3)
    assert _offset(fixed, 1) == (1, 1)


def test_normalisation_is_the_fixed_8bit_scaling(pix2pix_folder):
    ds = open_p2p(pix2pix_folder, "val")
    for norm in (ds.input_normalizer, ds.target_normalizer):
        assert norm.method == "minmax" and norm.offset == (127.5,) * 3 and norm.scale == (127.5,) * 3
    x, _, _ = ds.read_raw(0)
    np.testing.assert_allclose(ds[0]["input"].numpy(), x / 127.5 - 1, atol=1e-6)
    assert ds.default_normalizers("meanstd") == ds.fixed_normalizers
    assert ds.stats["input"]["bands"][0]["min"] == 0.0 and ds.stats["target"]["bands"][2]["max"] == 255.0


def test_preprocess_records_the_reference_settings(pix2pix_folder):
    assert open_p2p(pix2pix_folder, "val").preprocess == {
        "layout": "pix2pix-aligned", "direction": "AtoB", "load_size": 18, "crop_size": 16,
        "resample": "bicubic", "crop": "centre"}


def test_images_of_any_size_and_gray(tmp_path):
    root = write_pix2pix_folder(tmp_path / "gray", {"train": 2}, gray=True)
    Image.fromarray(pix2pix_pair(np.random.default_rng(9), 20, 30, gray=True)).save(root / "train" / "wide.png")
    ds = open_p2p(root)
    assert ds.input_info.band_names == ("gray",) and len(ds) == 3
    assert ds[ds.chip_ids.index("wide")]["input"].shape == (1, 16, 16)
    assert ds.input_normalizer.offset == (127.5,)


def test_stats_state_streams_the_resized_train_images(pix2pix_folder):
    ds = open_p2p(pix2pix_folder)
    state = ds.stats_state()
    assert state["input"].count.tolist() == [3 * 18 * 18] * 3
    total = sum(ds._read_item(it)[0][0].astype(np.int64).sum() for it in ds.train_items)
    assert state["input"].mean[0] == pytest.approx(total / (3 * 18 * 18))


def test_odd_width_names_the_file(pix2pix_folder):
    bad = pix2pix_folder / "train" / "t1.png"
    Image.fromarray(np.zeros((20, 41, 3), np.uint8)).save(bad)
    with pytest.raises(ChipFolderError, match="odd width") as exc:
        open_p2p(pix2pix_folder)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_mixed_band_counts_name_the_file(pix2pix_folder):
    gray = pix2pix_folder / "train" / "t2.png"
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(gray)
    with pytest.raises(ChipFolderError, match="has 1 band") as exc:
        open_p2p(pix2pix_folder)
    assert str(gray) in str(exc.value) and "\n" not in str(exc.value)


def test_16_bit_images_are_refused(pix2pix_folder):
    deep = pix2pix_folder / "val" / "v0.png"
    Image.fromarray(np.zeros((20, 40), np.uint16)).save(deep)
    with pytest.raises(ChipFolderError, match="not an 8-bit image") as exc:
        open_p2p(pix2pix_folder, "val")
    assert str(deep) in str(exc.value)


def test_empty_split_folder_and_missing_split(pix2pix_folder):
    for p in (pix2pix_folder / "test").iterdir():
        p.unlink()
    with pytest.raises(ChipFolderError, match="holds no images") as exc:
        open_p2p(pix2pix_folder, "test")
    assert str(pix2pix_folder / "test") in str(exc.value) and "\n" not in str(exc.value)
    (pix2pix_folder / "test").rmdir()
    empty = open_p2p(pix2pix_folder, "test")
    assert len(empty) == 0
    with pytest.raises(ChipFolderError, match="The test split of .* holds no pairs"):
        empty.check_not_empty()


def test_bad_options(pix2pix_folder):
    with pytest.raises(ConfigError, match="valid directions: AtoB, BtoA"):
        open_p2p(pix2pix_folder, direction="A2B")
    with pytest.raises(ConfigError, match="crop_size must be between 1 and load_size"):
        Pix2PixAlignedDataset(pix2pix_folder, load_size=16, crop_size=18)


def test_through_the_registry_with_options(pix2pix_folder):
    ds = open_chip_dataset(pix2pix_folder, "val", direction="BtoA", load_size=18, crop_size=16, val_percent=None)
    assert isinstance(ds, Pix2PixAlignedDataset) and ds.direction == "BtoA" and ds.chip_size == 16


def test_source_sizes_are_the_halves_before_the_resize(pix2pix_folder):
    """What train records so that predict can scale a plain image as the model saw its training images."""
    assert open_p2p(pix2pix_folder).source_sizes == ((20, 20),)
    Image.fromarray(pix2pix_pair(np.random.default_rng(9), 24, 30)).save(pix2pix_folder / "train" / "wide.png")
    assert open_p2p(pix2pix_folder).source_sizes == ((20, 20), (30, 24))  # (width, height) of one half
    assert open_p2p(pix2pix_folder, "val").source_sizes == ((20, 20),)  # the split's own images


def test_centre_crops_on_the_train_split_through_the_registry(pix2pix_folder, chip_folder_ro):
    """What train scores on when the val split is empty, and evaluate reads every split with."""
    ds = open_chip_dataset(pix2pix_folder, "train", random_crop=False, **SMALL)
    assert ds.preprocess["crop"] == "centre"
    for epoch in (0, 3):
        ds.set_epoch(epoch)
        x, _, _ = ds.read_raw(0)
        np.testing.assert_array_equal(x, ds._read_item(ds.items[0])[0][:, 1:17, 1:17])
    assert open_chip_dataset(pix2pix_folder, "train", **SMALL).preprocess["crop"] == "random"
    with pytest.raises(ConfigError, match="'random_crop' applies to pix2pix-aligned folders only"):
        open_chip_dataset(chip_folder_ro, "val", random_crop=False)
