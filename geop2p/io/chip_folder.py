"""The chip folder on disk (docs/formats.md): chip GeoTIFFs, ``index.gpkg`` and the manifest.

Every file appears whole or not at all: chips are written to a hidden
temporary name, read back and compared with what was meant to be written,
and only then renamed; the index and the manifest too, the manifest last.
A failed write (a full disk above all, which GDAL does not always report) is
one :class:`~geop2p.errors.WriteError` line saying how to finish with
``--resume``.

Example:
    >>> profile = ChipProfile("uint8", 3, 255, ("r", "g", "b"), crs)  # doctest: +SKIP
    >>> write_chip("chips/input/000000_000000.tif", data, valid, transform, profile)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from geop2p.errors import ChipFolderError
from geop2p.formats import jsonsafe
from geop2p.formats.chip_manifest import CONFIG_NAME, INDEX_LAYER, INDEX_NAME, MANIFEST_NAME, ChipManifest
from geop2p.io.atomic import atomic_path, temporary_sibling, write_error, writing
from geop2p.io.cache import bounded_block_cache
from geop2p.io.compression import predictor_for

__all__ = [
    "MANIFEST_NAME",
    "INDEX_NAME",
    "CONFIG_NAME",
    "INDEX_LAYER",
    "RESUME_HINT",
    "ChipProfile",
    "IndexRow",
    "chip_env",
    "write_chip",
    "chip_is_complete",
    "read_chip",
    "write_index",
    "read_chip_ids",
    "write_json_atomic",
    "write_text_atomic",
    "read_manifest",
    "write_manifest",
    "manifest_sha256",
]


#: how a failed write of a chip folder says to finish the export
RESUME_HINT = "run the same export-chips command again with --resume"


@dataclass(frozen=True)
class ChipProfile:
    """What every chip of one side (input or target) shares: dtype, band count, nodata, descriptions, CRS.

    Attributes:
        dtype: data type name.
        count: number of bands.
        nodata: nodata value or ``None``.
        descriptions: band descriptions.
        crs: CRS, or ``None`` for pixel-space chips.
        size: chip edge in pixels (sets the tile size).
        compress: one of :data:`geop2p.io.compression.COMPRESSIONS`.
    """

    dtype: str
    count: int
    nodata: float | None
    descriptions: tuple[str, ...]
    crs: CRS | None
    size: int = 256
    compress: str = "deflate"

    def creation_options(self) -> dict:
        """GeoTIFF creation options: tiled (≤256 px blocks), compressed with a predictor."""
        block = next(b for b in (256, 128, 64, 32, 16) if self.size % b == 0 or b == 16)
        opts: dict = {"tiled": True, "blockxsize": block, "blockysize": block}
        if self.compress != "none":
            opts["compress"] = self.compress
            opts["predictor"] = predictor_for(self.dtype)
        if self.count > 1:
            opts["interleave"] = "pixel"
        return opts

    def fill_value(self) -> float:
        """What invalid pixels are set to: the nodata value, or 0 when there is none."""
        return 0 if self.nodata is None else self.nodata


#: GDAL block cache of an export process, in MB (see geop2p.io.cache): 128 MB holds a whole
#: row of 256 px chips of a 60 000 px wide 4-band float raster.
EXPORT_CACHE_MB = 128


def chip_env() -> rasterio.Env:
    """The GDAL environment of an export process: internal mask bands, bounded block cache; enter once per process.

    Example:
        >>> with chip_env():  # doctest: +SKIP
        ...     write_chip(...)
    """
    return bounded_block_cache(EXPORT_CACHE_MB, GDAL_TIFF_INTERNAL_MASK=True, GDAL_PAM_ENABLED=False)


def write_chip(path: str | os.PathLike, data: np.ndarray, valid: np.ndarray, transform: Affine, profile: ChipProfile) -> None:
    """Write one chip GeoTIFF atomically: ``data`` (bands, h, w) with invalid pixels set to nodata and an internal mask.

    The internal mask band is written whenever a pixel is invalid (or a valid
    pixel happens to equal the nodata value); a chip valid everywhere without
    such pixels needs none, and ``dataset_mask()`` is then all valid anyway.

    The chip gets its final name only once it is closed, read back and found
    equal to ``data`` (and its mask to ``valid``): GDAL reports some failed
    writes (a full disk among them) only as messages, leaving an empty or
    truncated file behind a successful close.

    Call inside :func:`chip_env`. ``data`` is modified in place at invalid pixels.

    Raises:
        DiskFullError: the disk filled up (the chip is not left behind under any name).
        WriteError: any other failure to write it.

    Example:
        >>> with chip_env():  # doctest: +SKIP
        ...     write_chip("input/000000_000000.tif", x, valid, grid.window_transform(w), profile)
    """
    final = Path(path)
    tmp = temporary_sibling(final)
    all_valid = bool(valid.all())
    if not all_valid:
        data[:, ~valid] = profile.fill_value()
    # the mask band is needed unless GDAL's own answer (nodata-derived, or all valid) is already right
    need_mask = not all_valid or (profile.nodata is not None and _has_value(data, profile.nodata))
    kwargs = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=profile.count,
        dtype=profile.dtype,
        transform=transform,
        nodata=profile.nodata,
        **profile.creation_options(),
    )
    if profile.crs is not None:
        kwargs["crs"] = profile.crs
    try:
        with writing(final, RESUME_HINT):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(tmp, "w", **kwargs) as dst:
                    dst.write(data)
                    if need_mask:
                        dst.write_mask(np.where(valid, np.uint8(255), np.uint8(0)))
                    for i, name in enumerate(profile.descriptions, start=1):
                        dst.set_band_description(i, name)
                _check_written(tmp, final, data, valid if need_mask else None)
            os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):  # a clean-up failure must not hide the real error
            tmp.unlink()
        raise


def _check_written(tmp: Path, final: Path, data: np.ndarray, valid: np.ndarray | None) -> None:
    """Read the closed file ``tmp`` back; raise (a write error for ``final``) unless it holds ``data`` and ``valid``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp) as src:
                back = src.read()
                mask = src.read_masks(1) > 0 if valid is not None else None
    except RasterioIOError as exc:  # empty or truncated: what a full disk leaves
        raise write_error(final, exc, RESUME_HINT) from exc
    same = back.shape == data.shape and np.array_equal(back, data, equal_nan=np.issubdtype(data.dtype, np.floating))
    if same and valid is not None:
        same = bool(np.array_equal(mask, valid))
    if not same:
        raise write_error(final, OSError(f"the chip read back from '{tmp.name}' differs from what was written"),
                          RESUME_HINT)


def _has_value(data: np.ndarray, value: float) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return bool(np.isnan(data).any()) if np.issubdtype(data.dtype, np.floating) else False
    return bool((data == value).any())


def read_chip(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Read a chip: ``(data, valid, transform)`` where ``valid`` is its mask band.

    Example:
        >>> x, valid, transform = read_chip("chips/input/000000_000000.tif")  # doctest: +SKIP
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read(), src.dataset_mask() > 0, src.transform


def chip_is_complete(path: str | os.PathLike, transform: Affine, profile: ChipProfile, size: int) -> bool:
    """True when ``path`` is a readable chip with the expected shape, bands, dtype and transform (for resume).

    Example:
        >>> chip_is_complete("chips/input/000000_000000.tif", t, profile, 256)  # doctest: +SKIP
        True
    """
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                ok = (
                    src.count == profile.count
                    and src.dtypes[0] == profile.dtype
                    and (src.height, src.width) == (size, size)
                    and src.transform.almost_equals(transform, precision=1e-9)
                )
                if ok:  # touch the last block: a truncated file fails here
                    src.read(1, window=rasterio.windows.Window(size - 1, size - 1, 1, 1))
                return bool(ok)
    except RasterioIOError:
        return False


def write_text_atomic(path: str | os.PathLike, text: str, resume: str = RESUME_HINT) -> None:
    """Write ``text`` to ``path`` via a temporary sibling and a rename; a failure is one WriteError line."""
    with writing(path, resume), atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, document: dict) -> None:
    """Write ``document`` as indented JSON, atomically (numbers under :mod:`geop2p.formats.jsonsafe`'s rules)."""
    write_text_atomic(path, jsonsafe.dumps(document) + "\n")


@dataclass(frozen=True)
class IndexRow:
    """One row of ``index.gpkg``."""

    chip_id: str
    split: str
    row_off: int
    col_off: int
    height: int
    width: int
    valid_fraction: float


def write_index(path: str | os.PathLike, rows: Sequence[IndexRow], footprints: Iterable, crs: CRS | None) -> None:
    """Write ``index.gpkg`` (layer ``chips``) atomically: one footprint polygon per chip.

    Example:
        >>> write_index("chips/index.gpkg", rows, [grid.footprint(w) for w in windows], grid.crs)  # doctest: +SKIP
    """
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {
            "chip_id": [r.chip_id for r in rows],
            "split": [r.split for r in rows],
            "row_off": np.array([r.row_off for r in rows], dtype=np.int64),
            "col_off": np.array([r.col_off for r in rows], dtype=np.int64),
            "height": np.array([r.height for r in rows], dtype=np.int64),
            "width": np.array([r.width for r in rows], dtype=np.int64),
            "valid_fraction": np.array([r.valid_fraction for r in rows], dtype=np.float64),
        },
        geometry=list(footprints),
        crs=crs,
    )
    with writing(path, RESUME_HINT), atomic_path(path, overwrite=True) as tmp:
        gdf.to_file(tmp, layer=INDEX_LAYER, driver="GPKG")


def read_chip_ids(folder: str | os.PathLike, split: str | None = None) -> list[str]:
    """The chip ids listed in ``index.gpkg`` (of one split, or all when ``split`` is None), sorted.

    Raises:
        ChipFolderError: no index, or an unreadable one.

    Example:
        >>> read_chip_ids("chips", "val")[:2]  # doctest: +SKIP
        ['000000_000512', '000256_000768']
    """
    root = Path(folder)
    index = root / INDEX_NAME
    if not index.exists():
        raise ChipFolderError(f"'{root}' has no {INDEX_NAME}; re-run geop2p export-chips.")
    import pyogrio

    try:
        df = pyogrio.read_dataframe(index, layer=INDEX_LAYER, read_geometry=False, columns=["chip_id", "split"])
    except Exception as exc:  # pyogrio raises several types for a broken file or a missing layer
        raise ChipFolderError(f"Cannot read layer '{INDEX_LAYER}' of '{index}' ({exc}); re-run geop2p export-chips.") from exc
    if split is not None:
        df = df[df["split"] == split]
    return sorted(str(c) for c in df["chip_id"])


def manifest_sha256(folder: str | os.PathLike) -> str:
    """sha256 (hex) of a chip folder's manifest file: which chips a model was trained on."""
    return hashlib.sha256((Path(folder) / MANIFEST_NAME).read_bytes()).hexdigest()


def write_manifest(folder: str | os.PathLike, manifest: ChipManifest) -> Path:
    """Write ``geop2p-chips.json`` atomically (the last file of an export)."""
    path = Path(folder) / MANIFEST_NAME
    write_json_atomic(path, manifest.to_dict())
    return path


def read_manifest(folder: str | os.PathLike) -> ChipManifest:
    """The manifest of a chip folder, checked.

    Raises:
        ChipFolderError: no folder, no manifest (export unfinished, or not a chip folder), not a geop2p
            manifest, another version, a damaged section.

    Example:
        >>> read_manifest("chips").counts  # doctest: +SKIP
        {'train': 120, 'val': 15, 'test': 14}
    """
    root = Path(folder)
    if not root.is_dir():
        raise ChipFolderError(f"Chip folder '{root}' does not exist; give the OUT_DIR of geop2p export-chips.")
    p = root / MANIFEST_NAME
    if not p.is_file():
        hint = (
            "the export did not finish: run export-chips again with --resume"
            if (root / CONFIG_NAME).is_file()
            else "is it a chip folder written by `geop2p export-chips`?"
        )
        raise ChipFolderError(f"'{root}' has no {MANIFEST_NAME}; {hint}.")
    try:
        doc = jsonsafe.loads(p.read_bytes())
    except (OSError, ValueError) as exc:
        raise ChipFolderError(f"Cannot read the manifest '{p}' ({exc}); re-run export-chips with --overwrite.") from exc
    return ChipManifest.from_dict(doc, str(p))
