"""The format registry: recognising layouts, forcing one, options, one line per unusable folder."""

from __future__ import annotations

import shutil

import pytest

from geop2p.datasets import (FORMATS, ArcGISTilesDataset, ChipDataset, PairedFoldersDataset, Pix2PixAlignedDataset,
                             detect_format, open_chip_dataset)
from geop2p.errors import ChipFolderError, ConfigError


def test_bad_split_and_missing_manifest(chip_folder_ro, tmp_path):
    with pytest.raises(ConfigError, match="valid splits: train, val, test"):
        ChipDataset(chip_folder_ro, "validation")
    with pytest.raises(ChipFolderError, match="is not a dataset geop2p can read: expected a geop2p chip folder"):
        open_chip_dataset(tmp_path)
    with pytest.raises(ChipFolderError, match="does not exist"):
        open_chip_dataset(tmp_path / "nope")


def test_each_layout_is_recognised(chip_folder_ro, arcgis_tiles, paired_folder, paired_split_folder, pix2pix_folder):
    assert [f.name for f in FORMATS] == ["geop2p-chips", "arcgis-tiles", "paired-folders", "pix2pix-aligned"]
    found = [detect_format(folder).name for folder in (chip_folder_ro, arcgis_tiles, paired_folder,
                                                               paired_split_folder, pix2pix_folder)]
    assert found == ["geop2p-chips", "arcgis-tiles", "paired-folders", "paired-folders",
                                    "pix2pix-aligned"]
    for folder, cls in ((arcgis_tiles, ArcGISTilesDataset), (paired_folder, PairedFoldersDataset),
                        (pix2pix_folder, Pix2PixAlignedDataset)):
        ds = open_chip_dataset(folder, "all")
        assert type(ds) is cls and ds.preprocess["layout"] == detect_format(folder).name == cls.format_name


def test_no_other_format_claims_a_chip_folder(chip_folder):
    """A chip folder has input/ and target/ too: an unfinished one is still an export, not paired folders."""
    (chip_folder / "export-config.yaml").write_text("size: 64\n")
    (chip_folder / "geop2p-chips.json").unlink()
    with pytest.raises(ChipFolderError, match="unfinished chip export .* --resume"):
        open_chip_dataset(chip_folder)


def test_a_folder_of_no_format_names_what_it_holds_and_every_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "pictures").mkdir()
    with pytest.raises(ChipFolderError, match="it holds 'notes.txt' and 1 more") as exc:
        open_chip_dataset(tmp_path)
    msg = str(exc.value)
    assert all(f.layout in msg for f in FORMATS) and "--format" in msg and "\n" not in msg
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "pictures").rmdir()
    with pytest.raises(ChipFolderError, match="it is empty"):
        open_chip_dataset(tmp_path)


def test_format_forced(pix2pix_folder, paired_folder):
    with pytest.raises(ChipFolderError, match="is not paired folders") as exc:
        open_chip_dataset(pix2pix_folder, format="paired-folders")
    assert str(pix2pix_folder) in str(exc.value)
    with pytest.raises(ChipFolderError, match="is not a pix2pix aligned folder"):
        open_chip_dataset(paired_folder, format="pix2pix-aligned")
    with pytest.raises(ConfigError, match="valid formats: geop2p-chips, arcgis-tiles, paired-folders, pix2pix"):
        open_chip_dataset(paired_folder, format="tiles")
    assert type(open_chip_dataset(paired_folder, "val", format="paired-folders")) is PairedFoldersDataset


def test_options(chip_folder_ro, pix2pix_folder, paired_folder, tmp_path):
    with pytest.raises(ConfigError, match="Unknown dataset option 'directon'; valid options: crop_size"):
        open_chip_dataset(pix2pix_folder, directon="BtoA")
    with pytest.raises(ConfigError, match="'direction' applies to pix2pix-aligned folders only") as exc:
        open_chip_dataset(chip_folder_ro, "val", direction="BtoA")
    assert "geop2p-chips" in str(exc.value)
    assert type(open_chip_dataset(chip_folder_ro, "val", direction=None)) is ChipDataset  # None: not set
    assert open_chip_dataset(paired_folder, "val", val_percent=50).val_percent == 50
    other = tmp_path / "maps2"
    shutil.copytree(pix2pix_folder, other)
    for p in other.rglob("*.png"):
        p.rename(p.with_name("x" + p.name))
    union = open_chip_dataset([pix2pix_folder, other], "val", direction="BtoA", load_size=18, crop_size=16)
    assert [m.direction for m in union.members] == ["BtoA", "BtoA"] and union.chip_size == 16
