"""Torch datasets over paired chips, one module per folder format, behind one registry.

* :mod:`~geop2p.datasets.base` — :class:`PairedChipDataset` (read, mask, normalise, augment one pair).
* :mod:`~geop2p.datasets.augment` — :class:`PairAugment` (flips, rotations).
* :mod:`~geop2p.datasets.chips` — :class:`ChipDataset` (a geop2p chip folder).
* :mod:`~geop2p.datasets.arcgis` — :class:`ArcGISTilesDataset` (ArcGIS Export Tiles).
* :mod:`~geop2p.datasets.paired` — :class:`PairedFoldersDataset` (``A/`` and ``B/`` of rasters).
* :mod:`~geop2p.datasets.pix2pix` — :class:`Pix2PixAlignedDataset` (the reference code's A|B images).
* :mod:`~geop2p.datasets.multi` — :class:`MultiFolderDataset` (several folders as one).
* :mod:`~geop2p.datasets.registry` — the formats and :func:`open_chip_dataset` (one folder or several).
"""

from geop2p.datasets.arcgis import ArcGISTilesDataset, is_arcgis_tiles
from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import SPLITS, PairedChipDataset, normalizer_from_stats
from geop2p.datasets.chips import ChipDataset
from geop2p.datasets.multi import MultiFolderDataset
from geop2p.datasets.paired import PairedFoldersDataset, is_paired_folders
from geop2p.datasets.pix2pix import DIRECTIONS, Pix2PixAlignedDataset, is_pix2pix_aligned
from geop2p.datasets.registry import FORMATS, OPTIONS, DatasetFormat, detect_format, open_chip_dataset

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "OPTIONS",
    "SPLITS",
    "ArcGISTilesDataset",
    "ChipDataset",
    "DatasetFormat",
    "MultiFolderDataset",
    "PairAugment",
    "PairedChipDataset",
    "PairedFoldersDataset",
    "Pix2PixAlignedDataset",
    "detect_format",
    "is_arcgis_tiles",
    "is_paired_folders",
    "is_pix2pix_aligned",
    "normalizer_from_stats",
    "open_chip_dataset",
]
