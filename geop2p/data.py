"""Torch datasets over paired chips: a geop2p chip folder or an ArcGIS "Export Tiles" folder.

Each item is a dict::

    {"input":  float32 (Cin, H, W)   normalized input, 0 where invalid,
     "target": float32 (Cout, H, W)  normalized target, 0 where invalid,
     "target_raw": float32 (Cout, H, W) target in the data's own units, 0 where invalid,
     "valid":  float32 (1, H, W)     1 where input AND target chips are valid,
     "chip_id": str}

Invalid pixels (nodata, NaN, masked) never reach the network as numbers: they
are zeroed and flagged in ``valid``, which every loss and metric uses.

Augmentation (:class:`PairAugment`) is drawn once per item from a generator
seeded by ``(seed, epoch, index)`` and applied identically to input, target
and mask, so the same epoch gives the same batches whatever the number of
DataLoader workers, and a resumed run continues exactly.

Example:
    >>> ds = open_chip_dataset("chips/", split="train")  # doctest: +SKIP
    >>> item = ds[0]  # doctest: +SKIP
    >>> item["input"].shape, item["valid"].shape  # doctest: +SKIP
    ((3, 256, 256), (1, 256, 256))
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from geop2p.errors import ChipFolderError, ConfigError
from geop2p.grid import GeoGrid
from geop2p.io.read import nodata_to_json, open_raster, read_raster
from geop2p.normalize import Normalizer, percentile_key
from geop2p.stats import StatsAccumulator

__all__ = [
    "SPLITS",
    "MANIFEST_NAME",
    "BandsInfo",
    "PairAugment",
    "PairedChipDataset",
    "ChipDataset",
    "ArcGISTilesDataset",
    "open_chip_dataset",
    "manifest_sha256",
]

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
MANIFEST_NAME = "geop2p-chips.json"
ARCGIS_EMD = "esri_model_definition.emd"
_TILE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf", ".img")


@dataclass(frozen=True)
class BandsInfo:
    """What one side (input or target) of a chip pair holds.

    Attributes:
        bands: 1-based band indexes into the source stack.
        band_names: one name per band.
        dtype: the chips' data type name (e.g. ``uint8``).
        nodata: the nodata value, ``"nan"`` or ``None``.
    """

    bands: tuple[int, ...]
    band_names: tuple[str, ...]
    dtype: str
    nodata: float | str | None

    @property
    def count(self) -> int:
        """Number of bands."""
        return len(self.band_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``bands``, ``band_names``, ``dtype``, ``nodata``)."""
        return {"bands": list(self.bands), "band_names": list(self.band_names), "dtype": self.dtype,
                "nodata": self.nodata}


@dataclass(frozen=True)
class PairAugment:
    """Random flips and 90° rotations, applied identically to every array of a pair.

    Attributes:
        flips: allow horizontal and vertical flips.
        rot90: allow rotations by 90, 180 and 270 degrees (square chips only).

    Example:
        >>> aug = PairAugment(flips=True, rot90=True)
        >>> a = np.arange(4.0).reshape(1, 2, 2)
        >>> t = aug.draw(np.random.default_rng(0))
        >>> out_a, out_b = aug.apply(t, a, a.copy())
        >>> bool((out_a == out_b).all())
        True
    """

    flips: bool = True
    rot90: bool = True

    @property
    def enabled(self) -> bool:
        """True when at least one transform is allowed."""
        return self.flips or self.rot90

    def draw(self, rng: np.random.Generator) -> tuple[int, bool, bool]:
        """Draw one transform: ``(quarter_turns, flip_rows, flip_cols)``."""
        k = int(rng.integers(0, 4)) if self.rot90 else 0
        flip_r = bool(rng.integers(0, 2)) if self.flips else False
        flip_c = bool(rng.integers(0, 2)) if self.flips else False
        return k, flip_r, flip_c

    def apply(self, transform: tuple[int, bool, bool], *arrays: np.ndarray) -> list[np.ndarray]:
        """Apply a drawn transform to arrays shaped ``(..., H, W)``; returns contiguous copies."""
        k, flip_r, flip_c = transform
        out = []
        for a in arrays:
            if k and a.shape[-1] == a.shape[-2]:
                a = np.rot90(a, k, axes=(-2, -1))
            if flip_r:
                a = a[..., ::-1, :]
            if flip_c:
                a = a[..., :, ::-1]
            out.append(np.ascontiguousarray(a))
        return out


def manifest_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file, used to record which chips a model was trained on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class PairedChipDataset(Dataset):
    """Base class: a list of (chip_id, input file, target file) read, masked, normalized and augmented.

    Subclasses fill ``items``, ``input_info``, ``target_info``, ``chip_size``,
    ``stats`` and ``source_sha256``.
    """

    items: list[tuple[str, Path, Path]]
    input_info: BandsInfo
    target_info: BandsInfo
    chip_size: int
    stats: dict[str, dict]
    source_sha256: str
    split: str
    #: the chips' grid: pixel size (x, y) in CRS units and the CRS (``None`` when not georeferenced)
    pixel_size: tuple[float, float] | None
    crs: str | None

    def _setup(
        self,
        augment: PairAugment | bool | None,
        input_normalizer: Normalizer | None,
        target_normalizer: Normalizer | None,
        seed: int,
    ) -> None:
        if augment is True:
            augment = PairAugment()
        elif augment is False or augment is None:
            augment = None
        elif not isinstance(augment, PairAugment):
            raise ConfigError(f"augment must be a PairAugment, True or False; got {type(augment).__name__}.")
        self.augment: PairAugment | None = augment if augment is not None and augment.enabled else None
        self.seed = int(seed)
        self.epoch = 0
        self.input_normalizer = input_normalizer or normalizer_from_stats(self.stats.get("input"), "input")
        self.target_normalizer = target_normalizer or normalizer_from_stats(self.stats.get("target"), "target")
        for norm, info, side in ((self.input_normalizer, self.input_info, "input"),
                                 (self.target_normalizer, self.target_info, "target")):
            if norm.n_bands != info.count:
                raise ConfigError(
                    f"The {side} normalizer has {norm.n_bands} band(s) but the chips' {side} has {info.count} "
                    f"({', '.join(info.band_names)}); build it from these chips' statistics."
                )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds augmentation (call before iterating each epoch)."""
        self.epoch = int(epoch)

    @property
    def chip_ids(self) -> list[str]:
        """The chip ids of this split, in dataset order."""
        return [cid for cid, _, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def read_raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input, target, valid)`` of item ``index`` in the data's units, without augmentation.

        ``valid`` is the AND of the input and target chips' validity (H, W).
        """
        chip_id, in_path, tg_path = self.items[index]
        x, vx = read_raster(in_path)
        y, vy = read_raster(tg_path)
        if x.shape[0] != self.input_info.count or y.shape[0] != self.target_info.count:
            raise ChipFolderError(
                f"Chip '{chip_id}' has {x.shape[0]} input / {y.shape[0]} target band(s); the folder describes "
                f"{self.input_info.count} / {self.target_info.count}. Re-export the chips."
            )
        if x.shape[1:] != y.shape[1:]:
            raise ChipFolderError(
                f"Chip '{chip_id}': input is {x.shape[1]}×{x.shape[2]} px but target is {y.shape[1]}×{y.shape[2]}; "
                "the pair must share one grid. Re-export the chips."
            )
        return x, y, vx & vy

    def __getitem__(self, index: int) -> dict[str, Any]:
        chip_id = self.items[index][0]
        x, y, valid = self.read_raw(index)
        x = x.astype(np.float32)
        y = y.astype(np.float32)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            x, y, valid = self.augment.apply(self.augment.draw(rng), x, y, valid)
        vmask = valid[None]
        xn = np.where(vmask, self.input_normalizer.normalize(np.where(vmask, x, 0)), 0).astype(np.float32)
        yn = np.where(vmask, self.target_normalizer.normalize(np.where(vmask, y, 0)), 0).astype(np.float32)
        y_raw = np.where(vmask, y, 0).astype(np.float32)
        return {
            "input": torch.from_numpy(xn),
            "target": torch.from_numpy(yn),
            "target_raw": torch.from_numpy(y_raw),
            "valid": torch.from_numpy(vmask.astype(np.float32)),
            "chip_id": chip_id,
        }


def normalizer_from_stats(
    stats: dict | None, side: str, method: str = "percentile", low: float = 2, high: float = 98
) -> Normalizer:
    """The ``side`` ("input"/"target") normalizer from a folder's statistics.

    When ``method`` is ``percentile`` but the statistics hold no ``low``/``high``
    percentiles (an ArcGIS ``.emd`` has only min/max/mean/std), ``minmax`` is
    used instead, with a warning.

    Raises:
        ChipFolderError: the folder has no statistics for that side (no train chips).
    """
    bands = (stats or {}).get("bands") or []
    if not bands:
        raise ChipFolderError(
            f"The chip folder has no {side} statistics (no train chips to compute them from); "
            "re-export it with a non-empty train split."
        )
    keys = {percentile_key(low), percentile_key(high)}
    if method == "percentile" and not all(keys <= set(b.get("percentiles") or {}) for b in bands):
        logger.warning("The %s statistics hold no %s percentiles; normalizing with minmax instead.", side,
                       "/".join(sorted(keys)))
        method = "minmax"
    return Normalizer.from_stats(stats, method=method, low=low, high=high)


# ---------------------------------------------------------------------------------- geop2p chip folder
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

    Example:
        >>> ds = ChipDataset("chips/", split="val")  # doctest: +SKIP
        >>> len(ds), ds.input_info.band_names  # doctest: +SKIP
        (15, ('red', 'green', 'blue'))
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
        _check_split(split)
        self.root = root
        self.split = split
        self.manifest = read_chip_manifest(root)
        m = self.manifest
        self.input_info = _bands_info(m["input"], "input")
        self.target_info = _bands_info(m["target"], "target")
        self.chip_size = int(m["chip_spec"]["size"])
        grid = GeoGrid.from_dict(m["grid"])
        self.pixel_size = grid.res if grid.is_georeferenced else None
        self.crs = grid.crs.to_string() if grid.is_georeferenced else None
        self.stats = m.get("stats") or {}
        self.source_sha256 = manifest_sha256(root / MANIFEST_NAME)
        ids = _chip_ids(root, split)
        self.items = [(cid, root / "input" / f"{cid}.tif", root / "target" / f"{cid}.tif") for cid in ids]
        missing = [str(p) for _, a, b in self.items for p in (a, b) if not p.exists()]
        if missing:
            raise ChipFolderError(
                f"{len(missing)} chip file(s) listed in {root / 'index.gpkg'} are missing, e.g. '{missing[0]}'; "
                "the export is incomplete: re-run geop2p export-chips."
            )
        self._setup(augment, input_normalizer, target_normalizer, seed)


def read_chip_manifest(root: str | os.PathLike) -> dict:
    """Read and check ``geop2p-chips.json`` of a chip folder.

    Raises:
        ChipFolderError: missing, unreadable or of another format/version.

    Example:
        >>> read_chip_manifest("chips/")["chip_spec"]["size"]  # doctest: +SKIP
        256
    """
    root = Path(root)
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise ChipFolderError(f"Chip folder '{root}' does not exist; give the OUT_DIR of geop2p export-chips.")
    if not path.exists():
        raise ChipFolderError(
            f"'{root}' has no {MANIFEST_NAME}: it is not a finished geop2p chip folder (the manifest is written "
            "last) nor an ArcGIS Export Tiles folder (images/ + images2/). Run geop2p export-chips first."
        )
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ChipFolderError(f"Cannot read '{path}' as JSON ({exc}); re-export the chips.") from exc
    if not isinstance(m, dict) or m.get("format") != "geop2p-chips":
        raise ChipFolderError(f"'{path}' is not a geop2p chip manifest (expected \"format\": \"geop2p-chips\").")
    if m.get("format_version") != 1:
        raise ChipFolderError(
            f"'{path}' has format_version {m.get('format_version')!r}; this geop2p reads version 1. "
            "Re-export the chips with this version of geop2p."
        )
    for key in ("input", "target", "chip_spec"):
        if not isinstance(m.get(key), dict):
            raise ChipFolderError(f"'{path}' lacks the '{key}' section; re-export the chips.")
    return m


def _check_split(split: str) -> None:
    if split not in SPLITS + ("all",):
        raise ConfigError(f"Unknown split {split!r}; valid splits: {', '.join(SPLITS + ('all',))}.")


def _bands_info(section: dict, side: str) -> BandsInfo:
    names = section.get("band_names") or []
    bands = section.get("bands") or list(range(1, len(names) + 1))
    if not names:
        names = [f"band_{b}" for b in bands]
    if len(names) != len(bands):
        raise ChipFolderError(f"The manifest's {side} lists {len(bands)} bands but {len(names)} band names.")
    return BandsInfo(tuple(int(b) for b in bands), tuple(str(n) for n in names), str(section.get("dtype", "float32")),
                     section.get("nodata"))


def _chip_ids(root: Path, split: str) -> list[str]:
    index = root / "index.gpkg"
    if not index.exists():
        raise ChipFolderError(f"'{root}' has no index.gpkg; re-run geop2p export-chips.")
    import pyogrio

    try:
        df = pyogrio.read_dataframe(index, layer="chips", read_geometry=False, columns=["chip_id", "split"])
    except Exception as exc:  # pyogrio raises several types for a broken file or a missing layer
        raise ChipFolderError(f"Cannot read layer 'chips' of '{index}' ({exc}); re-run geop2p export-chips.") from exc
    if split != "all":
        df = df[df["split"] == split]
    return sorted(str(c) for c in df["chip_id"])


# ---------------------------------------------------------------------------------- ArcGIS Export Tiles
class ArcGISTilesDataset(PairedChipDataset):
    """An ArcGIS Pro "Export Training Data For Deep Learning" folder in *Export Tiles* format (pix2pix).

    ``images/`` holds the input tiles and ``images2/`` the target tiles, paired by
    file name. Normalisation statistics come from ``esri_model_definition.emd``
    (its ``image_stats`` / ``image_stats2`` objects with ``band_min``,
    ``band_max``, ``band_mean``, ``band_std`` lists) when present; otherwise they
    are computed by streaming over the train tiles with :class:`~geop2p.stats.StatsAccumulator`.

    ArcGIS has no split: a tile is ``val`` when ``crc32(name) % 100 < val_percent``
    (stable across runs and machines), ``train`` otherwise; ``test`` is empty.

    Example:
        >>> ds = ArcGISTilesDataset("exported_tiles/", split="train")  # doctest: +SKIP
    """

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
        _check_split(split)
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
        self.input_info = BandsInfo(tuple(range(1, in_count + 1)), _names(in_desc), in_dtype, nodata_to_json(in_nodata))
        self.target_info = BandsInfo(tuple(range(1, tg_count + 1)), _names(tg_desc), tg_dtype, nodata_to_json(tg_nodata))
        self.chip_size = int(size)
        emd_path = root / ARCGIS_EMD
        self._emd_path = emd_path
        self._train_pairs = [p for p in pairs if _arcgis_split(p[0], val_percent) == "train"] or pairs
        digest = hashlib.sha256()
        digest.update((emd_path.read_bytes() if emd_path.exists() else b""))
        for name, _, _ in pairs:
            digest.update(name.encode())
        self.source_sha256 = digest.hexdigest()
        self.items = [p for p in pairs if split == "all" or _arcgis_split(p[0], val_percent) == split]
        self._setup(augment, input_normalizer, target_normalizer, seed)


    @functools.cached_property
    def stats(self) -> dict[str, dict]:
        """Band statistics: from the ``.emd`` when it holds them, else streamed over the train tiles.

        Computed on first use only, so opening the folder again with the normalizers
        already in hand (as ``train`` and ``evaluate`` do) does not re-read every tile.
        """
        emd = self._emd_path
        stats = _emd_stats(emd, self.input_info, self.target_info) if emd.exists() else None
        if stats is not None:
            return stats
        inputs, targets = [p[1] for p in self._train_pairs], [p[2] for p in self._train_pairs]
        return {"input": _stream_stats(inputs, targets, self.input_info, 0),
                "target": _stream_stats(inputs, targets, self.target_info, 1)}


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


def _emd_stats(path: Path, input_info: BandsInfo, target_info: BandsInfo) -> dict | None:
    """Statistics from an ArcGIS ``.emd`` (JSON); None when it holds none for both sides."""
    try:
        emd = json.loads(path.read_text())
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


def _stream_stats(in_paths: list[Path], tg_paths: list[Path], info: BandsInfo, side: int) -> dict:
    """Per-band statistics (:class:`~geop2p.stats.BandStats` form) over the valid pixels of tile pairs.

    One tile pair is in memory at a time; a pixel counts when it is valid in both tiles.
    """
    acc = StatsAccumulator(info.dtype, list(info.band_names))
    for a, b in zip(in_paths, tg_paths):
        x, vx = read_raster(a)
        y, vy = read_raster(b)
        acc.update((x, y)[side], vx & vy)
    return acc.result().to_dict()


# ---------------------------------------------------------------------------------- dispatch
def open_chip_dataset(
    chips_dir: str | os.PathLike,
    split: str = "train",
    augment: PairAugment | bool | None = None,
    input_normalizer: Normalizer | None = None,
    target_normalizer: Normalizer | None = None,
    seed: int = 0,
) -> PairedChipDataset:
    """Open a geop2p chip folder or an ArcGIS Export Tiles folder, whichever ``chips_dir`` is.

    Raises:
        ChipFolderError: the folder is neither (the message says what each needs).

    Example:
        >>> ds = open_chip_dataset("chips/", split="val")  # doctest: +SKIP
    """
    root = Path(chips_dir)
    kwargs: dict[str, Any] = dict(split=split, augment=augment, input_normalizer=input_normalizer,
                                  target_normalizer=target_normalizer, seed=seed)
    if (root / MANIFEST_NAME).exists() or not is_arcgis_tiles(root):
        return ChipDataset(root, **kwargs)
    return ArcGISTilesDataset(root, **kwargs)

