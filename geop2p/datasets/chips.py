"""A geop2p chip folder (the output of ``geop2p export-chips``) as a dataset of one split.

Example:
    >>> ds = ChipDataset("chips/", split="val")  # doctest: +SKIP
    >>> len(ds), ds.input_info.band_names  # doctest: +SKIP
    (15, ('red', 'green', 'blue'))
"""

from __future__ import annotations

import os
from pathlib import Path

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import PairedChipDataset, check_split
from geop2p.errors import ChipFolderError
from geop2p.formats.chip_manifest import INDEX_NAME, MANIFEST_NAME
from geop2p.io.chip_folder import manifest_sha256, read_chip_ids, read_manifest
from geop2p.normalize import Normalizer

__all__ = ["ChipDataset", "is_chip_folder"]


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
        self.items = [(cid, root / "input" / f"{cid}.tif", root / "target" / f"{cid}.tif") for cid in ids]
        missing = [str(p) for _, a, b in self.items for p in (a, b) if not p.exists()]
        if missing:
            raise ChipFolderError(
                f"{len(missing)} chip file(s) listed in {root / INDEX_NAME} are missing, e.g. '{missing[0]}'; "
                "the export is incomplete: re-run geop2p export-chips."
            )
        self._setup(augment, input_normalizer, target_normalizer, seed)
