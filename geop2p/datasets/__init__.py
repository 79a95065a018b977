"""Torch datasets over paired chips, one module per folder format, behind one registry.

* :mod:`~geop2p.datasets.base` — :class:`PairedChipDataset` (read, mask, normalise, augment one pair).
* :mod:`~geop2p.datasets.augment` — :class:`PairAugment` (flips, rotations).
* :mod:`~geop2p.datasets.chips` — :class:`ChipDataset` (a geop2p chip folder).
* :mod:`~geop2p.datasets.arcgis` — :class:`ArcGISTilesDataset` (ArcGIS Export Tiles).
* :mod:`~geop2p.datasets.registry` — the formats and :func:`open_chip_dataset`.
"""

from geop2p.datasets.arcgis import ArcGISTilesDataset, is_arcgis_tiles
from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import SPLITS, PairedChipDataset, normalizer_from_stats
from geop2p.datasets.chips import ChipDataset
from geop2p.datasets.registry import FORMATS, DatasetFormat, detect_format, open_chip_dataset

__all__ = [
    "FORMATS",
    "SPLITS",
    "ArcGISTilesDataset",
    "ChipDataset",
    "DatasetFormat",
    "PairAugment",
    "PairedChipDataset",
    "detect_format",
    "is_arcgis_tiles",
    "normalizer_from_stats",
    "open_chip_dataset",
]
