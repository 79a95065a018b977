"""The dataset formats geop2p trains on, recognised by their layout: one registry, one opener.

Each format is a :class:`DatasetFormat`: a name, a test that recognises its
folder layout, the dataset class that reads it, the layout in words for error
messages and the options it takes.  :func:`open_chip_dataset` picks the first
format whose test accepts the folder (or the one ``format`` names); given
several folders it joins them in a
:class:`~geop2p.datasets.multi.MultiFolderDataset`.

Example:
    >>> [f.name for f in FORMATS]
    ['geop2p-chips', 'arcgis-tiles', 'paired-folders', 'pix2pix-aligned']
    >>> sorted(OPTIONS)
    ['crop_size', 'direction', 'load_size', 'random_crop', 'split_seed', 'test_percent', 'val_percent']
    >>> ds = open_chip_dataset(["chips_a/", "chips_b/"], split="val")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from geop2p.datasets import paired, pix2pix
from geop2p.datasets.arcgis import ArcGISTilesDataset, is_arcgis_tiles
from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import PairedChipDataset
from geop2p.datasets.chips import ChipDataset, is_chip_folder
from geop2p.datasets.multi import MultiFolderDataset
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import CONFIG_NAME, MANIFEST_NAME
from geop2p.normalize import Normalizer

__all__ = ["FORMATS", "OPTIONS", "DatasetFormat", "detect_format", "open_chip_dataset"]

#: one folder or several
Folders = str | os.PathLike | Sequence[str | os.PathLike]


@dataclass(frozen=True)
class DatasetFormat:
    """A folder layout geop2p can train on.

    Attributes:
        name: the format's name (``--format``).
        recognise: True when a folder has this layout.
        dataset: the dataset class (``cls(folder, split=..., augment=..., ...)``).
        layout: the layout in words, for error messages.
        options: the keyword options the dataset class takes beyond the common ones.
    """

    name: str
    recognise: Callable[[Path], bool]
    dataset: type[PairedChipDataset]
    layout: str
    options: tuple[str, ...] = ()


FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat(ChipDataset.format_name, is_chip_folder, ChipDataset,
                  "a geop2p chip folder (geop2p-chips.json, index.gpkg, input/, target/)"),
    DatasetFormat(ArcGISTilesDataset.format_name, is_arcgis_tiles, ArcGISTilesDataset,
                  "an ArcGIS Export Tiles folder (images/ and images2/ with matching file names)", ("val_percent",)),
    DatasetFormat(paired.PairedFoldersDataset.format_name, paired.is_paired_folders, paired.PairedFoldersDataset,
                  paired.LAYOUT, ("val_percent", "test_percent", "split_seed")),
    DatasetFormat(pix2pix.Pix2PixAlignedDataset.format_name, pix2pix.is_pix2pix_aligned,
                  pix2pix.Pix2PixAlignedDataset, pix2pix.LAYOUT,
                  ("direction", "load_size", "crop_size", "random_crop")),
)

#: every format option, with the formats that take it
OPTIONS: dict[str, tuple[str, ...]] = {
    opt: tuple(f.name for f in FORMATS if opt in f.options) for fmt in FORMATS for opt in fmt.options
}


def detect_format(folder: str | os.PathLike, format: str | None = None) -> DatasetFormat:
    """The format of ``folder``: the one named by ``format``, else the first whose layout matches.

    Raises:
        ConfigError: ``format`` names no registered format (lists the valid ones).
        ChipFolderError: the folder is missing, an unfinished export, empty, or of no known layout (lists the
            layouts and names what the folder holds).
    """
    if format is not None:
        for fmt in FORMATS:
            if fmt.name == format:
                return fmt
        raise ConfigError(f"Unknown dataset format {format!r}; valid formats: {', '.join(f.name for f in FORMATS)}.")
    root = Path(folder)
    if not root.is_dir():
        raise ChipFolderError(f"Dataset folder '{root}' does not exist; give the OUT_DIR of geop2p export-chips "
                              "or a folder of one of the formats geop2p reads.")
    for fmt in FORMATS:
        if fmt.recognise(root):
            return fmt
    if (root / CONFIG_NAME).is_file():
        raise ChipFolderError(f"'{root}' is an unfinished chip export (no {MANIFEST_NAME} yet); run the same "
                              "geop2p export-chips command again with --resume.")
    layouts = " or ".join(f.layout for f in FORMATS)
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    holds = (f"it holds '{entries[0]}'" + (f" and {len(entries) - 1} more" if len(entries) > 1 else "")
             if entries else "it is empty")
    raise ChipFolderError(f"'{root}' is not a dataset geop2p can read: expected {layouts}; {holds}. "
                          "Run geop2p export-chips first, or pass --format.")


def _open_one(folder: str | os.PathLike, format: str | None, options: dict[str, Any],
              **kwargs: Any) -> PairedChipDataset:
    fmt = detect_format(folder, format)
    return fmt.dataset(folder, **kwargs, **{k: v for k, v in options.items() if k in fmt.options})


def open_chip_dataset(
    chips_dir: Folders,
    split: str = "train",
    augment: PairAugment | bool | None = None,
    input_normalizer: Normalizer | None = None,
    target_normalizer: Normalizer | None = None,
    seed: int = 0,
    format: str | None = None,
    **options: Any,
) -> PairedChipDataset:
    """Open a dataset folder of any registered format, or several as one, on one split.

    Args:
        chips_dir: a folder, or a list of folders (joined in a :class:`MultiFolderDataset`; a list of one is
            that folder's dataset).
        split: ``train``, ``val``, ``test`` or ``all``.
        augment: a :class:`PairAugment`, True or False/None.
        input_normalizer: default: from the (merged) statistics, or the layout's fixed scaling.
        target_normalizer: same for the target.
        seed: seeds augmentation and random crops together with the epoch and item index.
        format: force this format for every folder (``--format``) instead of recognising each layout.
        **options: format options (see :data:`OPTIONS`: ``direction``, ``load_size``, ``crop_size``,
            ``random_crop`` for pix2pix aligned folders; ``val_percent``, ``test_percent``, ``split_seed`` for
            name-hash splits).
            ``None`` means "not set"; each folder gets the options its format takes.

    Raises:
        ConfigError: an unknown option, an option no folder's format takes, an empty list of folders.
        ChipFolderError: a folder is not a usable dataset (the message says what each format needs), or the
            folders do not agree (see :class:`MultiFolderDataset`).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for folder, name in (("maps_a", "b.png"), ("maps_b", "a.png")):
        ...         (Path(tmp) / folder / "val").mkdir(parents=True)
        ...         Image.new("L", (40, 20), 200).save(Path(tmp) / folder / "val" / name)
        ...     ds = open_chip_dataset([Path(tmp) / "maps_a", Path(tmp) / "maps_b"], "val", direction="BtoA",
        ...                            load_size=18, crop_size=16)
        ...     ids, shape = ds.chip_ids, tuple(ds[0]["input"].shape)
        >>> type(ds).__name__, ids, shape, ds.preprocess["direction"]
        ('MultiFolderDataset', ['a', 'b'], (1, 16, 16), 'BtoA')
    """
    options = {k: v for k, v in options.items() if v is not None}
    for name in options:
        if name not in OPTIONS:
            raise ConfigError(f"Unknown dataset option {name!r}; valid options: {', '.join(sorted(OPTIONS))}.")
    folders = [chips_dir] if isinstance(chips_dir, (str, os.PathLike)) else list(chips_dir)
    if not folders:
        raise ConfigError("No dataset folder given; give at least one folder to train or evaluate on.")
    formats = [detect_format(f, format) for f in folders]
    for name in options:
        if not any(name in fmt.options for fmt in formats):
            raise ConfigError(f"Option {name!r} applies to {' and '.join(OPTIONS[name])} folders only, but the "
                              f"folder(s) given are {', '.join(sorted({fmt.name for fmt in formats}))}; leave it out.")
    common: dict[str, Any] = dict(split=split, input_normalizer=input_normalizer,
                                  target_normalizer=target_normalizer, seed=seed)
    if len(folders) == 1:
        return _open_one(folders[0], format, options, augment=augment, **common)
    members = [_open_one(f, fmt.name, options, **common) for f, fmt in zip(folders, formats)]
    return MultiFolderDataset(members, augment=augment, input_normalizer=input_normalizer,
                              target_normalizer=target_normalizer, seed=seed)
