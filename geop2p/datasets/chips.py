"""A geop2p chip folder (the output of ``geop2p export-chips``) as a dataset of one split.

Example:
    >>> ds = ChipDataset("chips/", split="val")  # doctest: +SKIP
    >>> len(ds), ds.input_info.band_names  # doctest: +SKIP
    (15, ('red', 'green', 'blue'))
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import SIDES, Item, PairedChipDataset, check_split
from geop2p.errors import ChipFolderError
from geop2p.formats.chip_manifest import INDEX_NAME, MANIFEST_NAME, STATS_NAME
from geop2p.io.chip_folder import manifest_sha256, read_chip_ids, read_manifest
from geop2p.io.stats_file import read_stats_state
from geop2p.normalize import Normalizer
from geop2p.stats import StatsPartial

__all__ = ["ChipDataset", "is_chip_folder"]

logger = logging.getLogger(__name__)


def is_chip_folder(root: str | os.PathLike) -> bool:
    """True when ``root`` holds a geop2p manifest (a finished export)."""
    return (Path(root) / MANIFEST_NAME).is_file()


class ChipDataset(PairedChipDataset):
    """The chips of one split of a geop2p chip folder (see ``docs/formats.md``).

    Args:
        chips_dir: the folder holding ``geop2p-chips.json``, ``index.gpkg``, ``input/`` and ``target/``.
        split: ``train``, ``val`` or ``test`` (``all`` for every chip).
        augment: a :class:`PairAugment`, True (flips + rotations) or False/None.
        input_normalizer: maps input values to [-1, 1]; default: percentile scaling from the manifest.
        target_normalizer: same for the target.
        seed: seeds augmentation together with the epoch and item index.

    Raises:
        ChipFolderError: no manifest, a manifest of another format, missing chip files.
    """

    format_name = "geop2p-chips"

    def __init__(
        self,
        chips_dir: str | os.PathLike,
        split: str = "train",
        augment: PairAugment | bool | None = None,
        input_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        seed: int = 0,
    ) -> None:
        root = Path(chips_dir)
        check_split(split)
        self.root = root
        self.split = split
        self.manifest = read_manifest(root)
        m = self.manifest
        self.input_info = m.input
        self.target_info = m.target
        self.chip_size = m.chip_spec.size
        self.pixel_size = m.grid.res if m.grid.is_georeferenced else None
        self.crs = m.grid.crs.to_string() if m.grid.is_georeferenced else None
        self.stats = {side: m.stats_dict(side) for side in ("input", "target") if side in m.stats}
        self.source_sha256 = manifest_sha256(root)
        ids = read_chip_ids(root, None if split == "all" else split)
        self.items = self._items(ids)
        missing = [str(p) for _, a, b in self.items for p in (a, b) if not p.exists()]
        if missing:
            raise ChipFolderError(
                f"{len(missing)} chip file(s) listed in {root / INDEX_NAME} are missing, e.g. '{missing[0]}'; "
                "the export is incomplete: re-run geop2p export-chips."
            )
        self._setup(augment, input_normalizer, target_normalizer, seed)

    def _items(self, ids: list[str]) -> list[Item]:
        return [(cid, self.root / "input" / f"{cid}.tif", self.root / "target" / f"{cid}.tif") for cid in ids]

    @functools.cached_property
    def train_items(self) -> list[Item]:
        """The train chips (from ``index.gpkg``)."""
        return self.items if self.split == "train" else self._items(read_chip_ids(self.root, "train"))

    def all_chip_ids(self) -> list[str]:
        """Every chip id of ``index.gpkg``."""
        return self.chip_ids if self.split == "all" else read_chip_ids(self.root)

    def stats_state(self, dtypes: tuple[str, str] | None = None) -> dict[str, StatsPartial]:
        """The mergeable train statistics: read from ``statistics.npz`` when the export wrote one (and its
        dtypes are ``dtypes``), else streamed over the train chips (folders exported before that file existed).

        Raises:
            ChipFolderError: ``statistics.npz`` is damaged or describes other bands than the manifest.
        """
        dtypes = tuple(dtypes or (self.input_info.dtype, self.target_info.dtype))
        path = self.root / STATS_NAME
        if path.is_file():
            state = read_stats_state(path)
            for side, info in zip(SIDES, (self.input_info, self.target_info)):
                if side not in state or len(state[side].count) != info.count:
                    raise ChipFolderError(
                        f"'{path}' does not describe the {info.count} {side} band(s) of {MANIFEST_NAME}; "
                        "delete it (statistics are then computed from the chips) or re-export the chips."
                    )
            if all(state[side].dtype == np.dtype(dt).name for side, dt in zip(SIDES, dtypes)):
                return {side: state[side] for side in SIDES}
            logger.info("%s holds %s/%s statistics, %s/%s are needed: streaming over the train chips instead.",
                        path, state["input"].dtype, state["target"].dtype, *dtypes)
        return super().stats_state(dtypes)
