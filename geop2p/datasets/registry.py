"""The dataset formats geop2p trains on, recognised by their layout: one registry, one opener.

Each format is a :class:`DatasetFormat`: a name, a test that recognises its
folder layout, the dataset class that reads it, and the layout in words for
error messages.  :func:`open_chip_dataset` picks the first format whose test
accepts the folder (or the one ``format`` names).

Example:
    >>> [f.name for f in FORMATS]
    ['geop2p-chips', 'arcgis-tiles']
    >>> ds = open_chip_dataset("chips/", split="val")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from geop2p.datasets.arcgis import ArcGISTilesDataset, is_arcgis_tiles
from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import PairedChipDataset
from geop2p.datasets.chips import ChipDataset, is_chip_folder
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import CONFIG_NAME, MANIFEST_NAME
from geop2p.normalize import Normalizer

__all__ = ["FORMATS", "DatasetFormat", "detect_format", "open_chip_dataset"]


@dataclass(frozen=True)
class DatasetFormat:
    """A folder layout geop2p can train on.

    Attributes:
        name: the format's name (``--format``).
        recognise: True when a folder has this layout.
        dataset: the dataset class (``cls(folder, split=..., augment=..., ...)``).
        layout: the layout in words, for error messages.
    """

    name: str
    recognise: Callable[[Path], bool]
    dataset: type[PairedChipDataset]
    layout: str


FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat("geop2p-chips", is_chip_folder, ChipDataset,
                  "a geop2p chip folder (geop2p-chips.json, index.gpkg, input/, target/)"),
    DatasetFormat("arcgis-tiles", is_arcgis_tiles, ArcGISTilesDataset,
                  "an ArcGIS Export Tiles folder (images/ and images2/ with matching file names)"),
)


def detect_format(folder: str | os.PathLike, format: str | None = None) -> DatasetFormat:
    """The format of ``folder``: the one named by ``format``, else the first whose layout matches.

    Raises:
        ConfigError: ``format`` names no registered format (lists the valid ones).
        ChipFolderError: the folder is missing, an unfinished export, or of no known layout (lists them).
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
    raise ChipFolderError(f"'{root}' is not a dataset geop2p can read: expected {layouts}. "
                          "Run geop2p export-chips first, or pass --format.")


def open_chip_dataset(
    chips_dir: str | os.PathLike,
    split: str = "train",
    augment: PairAugment | bool | None = None,
    input_normalizer: Normalizer | None = None,
    target_normalizer: Normalizer | None = None,
    seed: int = 0,
    format: str | None = None,
) -> PairedChipDataset:
    """Open a dataset folder of any registered format on one split.

    Raises:
        ChipFolderError: the folder is not a usable dataset (the message says what each format needs).

    Example:
        >>> ds = open_chip_dataset("chips/", split="val")  # doctest: +SKIP
    """
    fmt = detect_format(chips_dir, format)
    kwargs: dict[str, Any] = dict(split=split, augment=augment, input_normalizer=input_normalizer,
                                  target_normalizer=target_normalizer, seed=seed)
    return fmt.dataset(chips_dir, **kwargs)
