"""An ArcGIS Pro "Export Training Data For Deep Learning" folder in *Export Tiles* format, as a dataset.

``images/`` holds the input tiles and ``images2/`` the target tiles, paired by
file name (what ArcGIS writes for its Pix2Pix model).

Example:
    >>> ds = ArcGISTilesDataset("exported_tiles/", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import zlib
from pathlib import Path
from typing import Sequence

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import PairedChipDataset, check_split, stats_from_state
from geop2p.errors import ChipFolderError
from geop2p.formats import jsonsafe
from geop2p.formats.chip_manifest import ChipSide
from geop2p.grid import GeoGrid
from geop2p.io.read import open_raster
from geop2p.normalize import Normalizer

__all__ = ["ARCGIS_EMD", "ArcGISTilesDataset", "is_arcgis_tiles"]

logger = logging.getLogger(__name__)

ARCGIS_EMD = "esri_model_definition.emd"
_TILE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf", ".img")
_WARNED: set[Path] = set()  # folders whose leakage warning was given


class ArcGISTilesDataset(PairedChipDataset):
    """An ArcGIS Pro "Export Training Data For Deep Learning" folder in *Export Tiles* format (pix2pix).

    ``images/`` holds the input tiles and ``images2/`` the target tiles, paired by
    file name. Normalisation statistics come from ``esri_model_definition.emd``
    (its ``image_stats`` / ``image_stats2`` objects with ``band_min``,
    ``band_max``, ``band_mean``, ``band_std`` lists) when present; otherwise they
    are computed by streaming over the train tiles with :class:`~geop2p.stats.StatsAccumulator`.

    ArcGIS has no split: a tile is ``val`` when ``crc32(name) % 100 < val_percent``
    (stable across runs and machines), ``train`` otherwise; ``test`` is empty.  Neighbouring
    tiles then leak between train and val: a warning says so, once per folder.

    Example:
        >>> ds = ArcGISTilesDataset("exported_tiles/", split="train")  # doctest: +SKIP
    """

    format_name = "arcgis-tiles"

    def __init__(
        self,
        folder: str | os.PathLike,
        split: str = "train",
        augment: PairAugment | bool | None = None,
        input_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        seed: int = 0,
        val_percent: int = 10,
    ) -> None:
        root = Path(folder)
        check_split(split)
        if not is_arcgis_tiles(root):
            raise ChipFolderError(
                f"'{root}' is not an ArcGIS Export Tiles folder: expected sub-folders images/ (input) and "
                "images2/ (target) holding tiles with the same file names."
            )
        self.root = root
        self.split = split
        pairs = _arcgis_pairs(root)
        first_in, first_tg = pairs[0][1], pairs[0][2]
        with open_raster(first_in) as src:
            in_count, in_dtype, in_nodata, size = src.count, src.dtypes[0], src.nodata, src.height
            in_desc = src.descriptions
            grid = GeoGrid.from_dataset(src)
        self.pixel_size = grid.res if grid.is_georeferenced else None
        self.crs = grid.crs.to_string() if grid.is_georeferenced else None
        with open_raster(first_tg) as src:
            tg_count, tg_dtype, tg_nodata = src.count, src.dtypes[0], src.nodata
            tg_desc = src.descriptions
        self.input_info = ChipSide(tuple(range(1, in_count + 1)), _names(in_desc), in_dtype, in_nodata)
        self.target_info = ChipSide(tuple(range(1, tg_count + 1)), _names(tg_desc), tg_dtype, tg_nodata)
        self.chip_size = int(size)
        emd_path = root / ARCGIS_EMD
        # read (and checked) now: cheap, and a broken .emd fails at opening, before any training
        self._emd_stats = _emd_stats(emd_path, self.input_info, self.target_info) if emd_path.exists() else None
        self.val_percent = int(val_percent)
        self._pairs = pairs
        self._train_pairs = [p for p in pairs if _arcgis_split(p[0], val_percent) == "train"] or pairs
        digest = hashlib.sha256()
        digest.update((emd_path.read_bytes() if emd_path.exists() else b""))
        for name, _, _ in pairs:
            digest.update(name.encode())
        self.source_sha256 = digest.hexdigest()
        self.items = [p for p in pairs if split == "all" or _arcgis_split(p[0], val_percent) == split]
        if root.resolve() not in _WARNED:
            _WARNED.add(root.resolve())
            logger.warning(
                "'%s' has no train/val/test split: tiles are split by name hash (val %d %%); neighbouring tiles "
                "leak between train and val, so scores are optimistic. For honest scores export a spatial split "
                "with geop2p export-chips.", root, self.val_percent)
        self._setup(augment, input_normalizer, target_normalizer, seed)

    @property
    def preprocess(self) -> dict:
        """``{"layout": "arcgis-tiles", "split": "name-hash", "val_percent": ...}``."""
        return {"layout": self.format_name, "split": "name-hash", "val_percent": self.val_percent}

    @property
    def train_items(self) -> list[tuple[str, Path, Path]]:
        """The train tiles (every tile when the name hash leaves none in train)."""
        return self._train_pairs

    def all_chip_ids(self) -> list[str]:
        """Every tile name."""
        return [name for name, _, _ in self._pairs]

    @functools.cached_property
    def stats(self) -> dict[str, dict]:
        """Band statistics: from the ``.emd`` when it holds them, else streamed over the train tiles.

        Computed on first use only, so opening the folder again with the normalizers
        already in hand (as ``train`` and ``evaluate`` do) does not re-read every tile.
        """
        if self._emd_stats is not None:
            return self._emd_stats
        return _stream_stats(self)


def is_arcgis_tiles(root: str | os.PathLike) -> bool:
    """True when ``root`` looks like an ArcGIS Export Tiles folder (``images/`` and ``images2/``)."""
    root = Path(root)
    return (root / "images").is_dir() and (root / "images2").is_dir()


def _arcgis_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    inputs = {p.stem: p for p in sorted((root / "images").iterdir()) if p.suffix.lower() in _TILE_SUFFIXES}
    targets = {p.stem: p for p in sorted((root / "images2").iterdir()) if p.suffix.lower() in _TILE_SUFFIXES}
    if not inputs:
        raise ChipFolderError(f"'{root / 'images'}' holds no tiles ({', '.join(_TILE_SUFFIXES)}).")
    unpaired = sorted(set(inputs) ^ set(targets))
    if unpaired:
        raise ChipFolderError(
            f"{len(unpaired)} tile(s) have no partner in the other folder (e.g. '{unpaired[0]}'); every file in "
            "images/ needs one with the same name in images2/. Re-export the tiles."
        )
    return [(stem, inputs[stem], targets[stem]) for stem in sorted(inputs)]


def _arcgis_split(name: str, val_percent: int) -> str:
    return "val" if zlib.crc32(name.encode()) % 100 < val_percent else "train"


def _names(descriptions: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(d if d else f"band_{i}" for i, d in enumerate(descriptions, start=1))


def _emd_stats(path: Path, input_info: ChipSide, target_info: ChipSide) -> dict | None:
    """Statistics from an ArcGIS ``.emd`` (JSON); None when it holds none for both sides."""
    try:
        emd = jsonsafe.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ChipFolderError(f"Cannot read '{path}' as JSON ({exc}); remove it to compute statistics.") from exc
    out = {}
    for key, info, side in (("image_stats", input_info, "input"), ("image_stats2", target_info, "target")):
        doc = emd.get(key)
        if not isinstance(doc, dict):
            return None
        cols = {k: doc.get(f"band_{k}", doc.get(k)) for k in ("min", "max", "mean", "std")}
        if any(not isinstance(v, (list, tuple)) or len(v) != info.count for v in cols.values()):
            raise ChipFolderError(
                f"'{path}' {key} must hold band_min, band_max, band_mean and band_std lists of {info.count} "
                f"values (one per {side} band); remove the .emd to compute statistics from the tiles."
            )
        out[side] = {"bands": [
            {"name": name, "count": None, "min": float(cols["min"][i]), "max": float(cols["max"][i]),
             "mean": float(cols["mean"][i]), "std": float(cols["std"][i]), "percentiles": {}}
            for i, name in enumerate(info.band_names)
        ]}
    logger.info("Using band statistics from %s", path)
    return out


def _stream_stats(ds: ArcGISTilesDataset) -> dict:
    """Per-band statistics (:class:`~geop2p.stats.BandStats` form) over the valid pixels of the train tile pairs.

    One tile pair is in memory at a time; a pixel counts when it is valid in both tiles.
    """
    return stats_from_state(ds.stats_state(), {"input": ds.input_info, "target": ds.target_info})
