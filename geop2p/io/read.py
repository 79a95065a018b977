"""Open rasters with errors that teach, and read bands together with their validity.

Example:
    >>> from geop2p.io import read_raster  # doctest: +SKIP
    >>> data, valid = read_raster("chips/input/000000_000256.tif")  # doctest: +SKIP
    >>> data.shape, valid.dtype  # doctest: +SKIP
    ((3, 256, 256), dtype('bool'))
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geop2p.errors import BandIndexError, RasterReadError
from geop2p.formats.jsonsafe import nodata_to_json
from geop2p.grid import GeoGrid

__all__ = [
    "RasterInfo",
    "block_extents",
    "check_bands",
    "check_intact",
    "open_raster",
    "raster_info",
    "read_raster",
    "valid_mask",
]


@contextlib.contextmanager
def open_raster(path: str | os.PathLike) -> Iterator[rasterio.io.DatasetReader]:
    """Open ``path`` for reading, turning every failure into one clear :class:`RasterReadError`.

    Example:
        >>> with open_raster("scene.tif") as src:  # doctest: +SKIP
        ...     print(src.count)
    """
    p = Path(path)
    if not p.exists():
        raise RasterReadError(f"Raster not found: '{p}'. Check the path (it is relative to {Path.cwd()}).")
    if p.is_dir():
        raise RasterReadError(f"'{p}' is a folder, expected a raster file such as a GeoTIFF.")
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise RasterReadError(
            f"Cannot read '{p}' as a raster ({_short(exc)}); expected a GDAL-readable raster such as a GeoTIFF. "
            "If it is one, it may be truncated or corrupt: re-export or re-download it."
        ) from exc
    try:
        yield src
    finally:
        src.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


@dataclass(frozen=True)
class RasterInfo:
    """What a raster file is, without its pixels.

    Attributes:
        path: the file.
        grid: its :class:`GeoGrid`.
        count: number of bands.
        dtypes: per-band data type names.
        nodata: the nodata value, or ``None``.
        descriptions: per-band descriptions (``None`` where unset).
        has_mask: whether a per-dataset or alpha mask is present.
        gcps: ground control points (``rasterio.control.GroundControlPoint``), when the
            raster is georeferenced by GCPs instead of a transform; empty otherwise.
        gcp_crs: the CRS of the GCPs' coordinates (None without GCPs).
        rpcs: rational polynomial coefficients (``rasterio.rpc.RPC``), or None.
    """

    path: str
    grid: GeoGrid
    count: int
    dtypes: tuple[str, ...]
    nodata: float | None
    descriptions: tuple[str | None, ...]
    has_mask: bool
    gcps: tuple[Any, ...] = field(default=(), compare=False)
    gcp_crs: Any = field(default=None, compare=False)
    rpcs: Any = field(default=None, compare=False)

    @property
    def georeferencing(self) -> str:
        """How pixels are placed on the Earth: ``transform``, ``gcps``, ``rpcs`` or ``none`` (pixel space).

        Example:
            >>> from affine import Affine
            >>> grid = GeoGrid(2, 2, Affine.identity(), None)
            >>> RasterInfo("a.tif", grid, 1, ("uint8",), None, (None,), False).georeferencing
            'none'
        """
        if self.grid.crs is not None or not self.grid.transform.is_identity:
            return "transform"
        if self.gcps:
            return "gcps"
        if self.rpcs is not None:
            return "rpcs"
        return "none"

    def to_dict(self) -> dict:
        """JSON-ready description (grid in :meth:`GeoGrid.to_dict` form)."""
        return {
            "path": self.path,
            **self.grid.to_dict(),
            "count": self.count,
            "dtypes": list(self.dtypes),
            "nodata": nodata_to_json(self.nodata),
            "descriptions": list(self.descriptions),
            "has_mask": self.has_mask,
        }


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Describe a raster file (grid, bands, dtypes, nodata, mask) without reading pixels.

    Example:
        >>> raster_info("scene.tif").grid.shape  # doctest: +SKIP
        (8192, 8192)
    """
    with open_raster(path) as src:
        flags = src.mask_flag_enums
        has_mask = any(
            any(f in (rasterio.enums.MaskFlags.per_dataset, rasterio.enums.MaskFlags.alpha) for f in band_flags)
            for band_flags in flags
        )
        gcps, gcp_crs = src.gcps
        return RasterInfo(
            path=str(path),
            grid=GeoGrid.from_dataset(src),
            count=src.count,
            dtypes=tuple(src.dtypes),
            nodata=src.nodata,
            descriptions=tuple(src.descriptions),
            has_mask=has_mask,
            gcps=tuple(gcps or ()),
            gcp_crs=gcp_crs if gcps else None,
            rpcs=src.rpcs,
        )


def block_extents(src: rasterio.io.DatasetReader) -> Iterator[tuple[int, int, int, int | None, int | None]]:
    """Where a GeoTIFF's blocks (tiles or strips) lie in its file: ``(band, row, col, offset, size)`` each.

    Pixel-interleaved files share blocks between bands, so only band 1 is
    listed; band-interleaved ones list every band.  ``offset`` and ``size`` are
    None for a block never written (a sparse file).  Nothing is listed for
    other drivers.
    """
    if src.driver != "GTiff" or not src.count:
        return
    block_h, block_w = src.block_shapes[0]
    rows, cols = -(-src.height // block_h), -(-src.width // block_w)
    separate = src.count > 1 and (src.interleaving is not None and src.interleaving.name == "BAND")
    for band in range(1, src.count + 1) if separate else (1,):
        for r in range(rows):
            for c in range(cols):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
                size = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
                yield band, r, c, (int(offset) if offset else None), (int(size) if size else None)


def check_intact(path: str | os.PathLike) -> None:
    """Refuse a GeoTIFF cut short (a copy or download that stopped): every block must lie inside the file.

    Opening such a file works (its header is intact) and reading fails only at
    the first missing block, perhaps hours into a prediction; this looks at the
    block table only (no pixel is read; about 12 µs per block).  Other drivers
    pass unchecked.

    Raises:
        RasterReadError: naming the first block past the end of the file.
    """
    p = Path(path)
    with open_raster(p) as src:
        if src.driver != "GTiff":
            return
        try:
            file_size = p.stat().st_size
        except OSError:
            return
        for band, r, c, offset, size in block_extents(src):
            if offset is not None and size is not None and offset + size > file_size:
                raise RasterReadError(
                    f"'{p}' is truncated: block ({r}, {c}) of band {band} ends at byte {offset + size} but the file "
                    f"has {file_size} bytes; copy or download it again."
                )


def check_bands(bands: Sequence[int], count: int, what: str = "raster") -> list[int]:
    """Validate 1-based band indexes against a band count; return them as a list.

    Raises:
        BandIndexError: naming the bad index and the valid range.
    """
    bands = [int(b) for b in bands]
    if not bands:
        raise BandIndexError(f"No bands selected for the {what}; give 1-based indexes between 1 and {count}.")
    for b in bands:
        if b < 1 or b > count:
            raise BandIndexError(
                f"Band {b} does not exist in the {what}, which has {count} band(s); "
                f"use 1-based indexes between 1 and {count}."
            )
    return bands


def valid_mask(
    src: rasterio.io.DatasetReader,
    data: np.ndarray,
    window: Window | None = None,
    bands: Sequence[int] | None = None,
) -> np.ndarray:
    """Validity of ``data`` (bands ``bands`` of ``src``): valid where EVERY band is valid.

    A pixel is invalid when any of its bands is nodata, masked (internal mask,
    alpha band) or NaN.  (GDAL's ``dataset_mask`` is the union over bands; a
    model needs all of them, hence the intersection.)
    """
    idx = list(bands) if bands is not None else list(range(1, src.count + 1))
    try:
        mask = (src.read_masks(idx, window=window) > 0).all(axis=0)
    except RasterioIOError as exc:
        raise RasterReadError(f"Cannot read the mask of '{src.name}' ({_short(exc)}); the file may be corrupt.") from exc
    if np.issubdtype(data.dtype, np.floating):
        mask &= ~np.isnan(data).any(axis=0)
    return mask


def read_raster(
    path: str | os.PathLike,
    bands: Sequence[int] | None = None,
    window: Window | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read bands (1-based, default all) of ``path`` and their joint validity.

    Returns:
        ``(data, valid)``: ``data`` of shape ``(bands, height, width)`` in the file's dtype,
        ``valid`` a boolean ``(height, width)`` array (False at nodata, masked or NaN pixels).

    Example:
        >>> data, valid = read_raster("scene.tif", bands=[1, 2, 3])  # doctest: +SKIP
    """
    with open_raster(path) as src:
        idx = check_bands(bands if bands is not None else range(1, src.count + 1), src.count, f"raster '{path}'")
        try:
            data = src.read(idx, window=window)
        except RasterioIOError as exc:
            raise RasterReadError(
                f"Cannot read pixels of '{path}' ({_short(exc)}); the file is probably truncated or corrupt."
            ) from exc
        return data, valid_mask(src, data, window, idx)
