"""Write a prediction raster row strip by row strip, appearing whole or not at all.

:class:`PredictionWriter` opens a tiled, compressed GeoTIFF at a hidden
temporary name beside the output (see :mod:`geop2p.io.atomic`), on exactly the
input's grid, with the target's band count, dtype, band descriptions and
nodata.  Rows arrive top to bottom (:meth:`PredictionWriter.write_rows`); they
are buffered until a whole row of tiles is complete and then written, so no
compressed tile is ever written twice (partial tiles evicted from GDAL's cache
and rewritten would bloat the file).  Closing renames the file onto its final
name; an exception (or :meth:`~PredictionWriter.abort`) removes it instead.

With ``cog=True`` the tiled file is converted, once complete, to a Cloud
Optimized GeoTIFF with overviews by GDAL's COG driver, still under a temporary
name, and only then renamed.

A file gets its final name only once it is known to be whole: GDAL writes the
last tiles and the directory when the file is closed and does not always say
when that fails (a full disk shows up only as a libtiff message), so the
closed file's block table is checked against its size before the rename.  Any
failure to write, a full disk included, is one :class:`~geop2p.errors.WriteError`
(:class:`~geop2p.errors.DiskFullError` for a full disk) naming the output, and
libtiff's own messages go to the ``geop2p.gdal`` logger
(:func:`geop2p.io.gdal_log.route_gdal_messages`), never raw to stderr.

A scene georeferenced by ground control points or RPCs instead of a transform
passes them on (``gcps``, ``rpcs``), so the prediction is placed on the Earth
exactly like the scene.

Invalid pixels become the target's nodata value when it has one; otherwise an
internal per-dataset mask (GDAL mask band) records them.

Example:
    >>> with PredictionWriter("pred.tif", grid, count=1, dtype="float32", nodata=-9999) as w:  # doctest: +SKIP
    ...     w.write_rows(0, rows, valid)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geop2p.errors import Geop2pError, InputError, WriteError
from geop2p.grid import GeoGrid
from geop2p.io.atomic import atomic_path, check_output_free, temporary_sibling, write_error
from geop2p.io.compression import check_compression, predictor_for
from geop2p.io.gdal_log import route_gdal_messages
from geop2p.io.read import block_extents

__all__ = ["PredictionWriter", "WriteError"]

log = logging.getLogger(__name__)


class _CutShort(Exception):
    """A closed GeoTIFF whose block table does not fit its file (its last writes were lost)."""


def _check_whole(path: Path) -> None:
    """Raise :class:`_CutShort` unless every block of the GeoTIFF at ``path`` was written and lies inside the file."""
    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a GCP or pixel-space output
            src = rasterio.open(path)
        with src:
            for band, r, c, offset, length in block_extents(src):
                if not offset or not length or offset + length > size:
                    raise _CutShort(
                        f"block ({r}, {c}) of band {band} is {'missing' if not offset or not length else 'cut short'}"
                    )
    except RasterioError as exc:
        raise _CutShort(f"it cannot be read back: {str(exc).splitlines()[0]}") from exc


class PredictionWriter:
    """A GeoTIFF written top to bottom in row strips, renamed into place only when complete.

    Args:
        path: the final output path (``.tif``).
        grid: the output's grid (the input scene's grid: CRS, transform, size).
        count: number of bands.
        dtype: output data type (numpy name, e.g. ``"uint8"``).
        nodata: nodata value written at invalid pixels, or ``None`` (then
            ``write_mask`` decides whether an internal mask records them).
        descriptions: band descriptions (one per band) or ``None``.
        write_mask: write an internal per-dataset mask of valid pixels.
        cog: convert to a Cloud Optimized GeoTIFF with overviews before the rename.
        compress: ``zstd`` (default), ``deflate``, ``lzw`` or ``none``; integer
            outputs use predictor 2, floating point ones predictor 3.
        blocksize: tile size (multiple of 16).
        overview_resampling: resampling of COG overviews (``average``, ``nearest``, ...).
        tags: dataset metadata tags (e.g. provenance of the model).
        overwrite: replace an existing output.
        gcps: ``(ground control points, their CRS)`` for a scene georeferenced by GCPs
            (``grid`` then has no CRS and the identity transform); None otherwise.
        rpcs: a ``rasterio.rpc.RPC`` for a scene georeferenced by RPCs, or None.

    Raises:
        OutputExistsError: when the output exists and ``overwrite`` is False (checked on creation).
        InputError: for a bad compression, dtype, band count or descriptions.

    Example:
        >>> with PredictionWriter("out.tif", grid, count=1, dtype="uint8", nodata=0) as w:  # doctest: +SKIP
        ...     for row_off, rows, valid in strips:
        ...         w.write_rows(row_off, rows, valid)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: GeoGrid,
        *,
        count: int,
        dtype: str | np.dtype,
        nodata: float | None = None,
        descriptions: Sequence[str | None] | None = None,
        write_mask: bool = False,
        cog: bool = False,
        compress: str = "zstd",
        blocksize: int = 256,
        overview_resampling: str = "average",
        tags: dict[str, str] | None = None,
        overwrite: bool = False,
        gcps: tuple[Sequence[Any], Any] | None = None,
        rpcs: Any = None,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.count = int(count)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise InputError(f"Unknown output dtype {dtype!r}; expected a numpy dtype name such as 'uint8'.") from exc
        if self.count < 1:
            raise InputError(f"A prediction needs at least one band, got {count}.")
        compress = str(compress).lower()
        check_compression(compress)
        if blocksize < 16 or blocksize % 16:
            raise InputError(f"Tile size must be a positive multiple of 16, got {blocksize}.")
        if descriptions is not None and len(descriptions) != self.count:
            raise InputError(f"Got {len(descriptions)} band descriptions for {self.count} band(s); give one per band.")
        self.nodata = nodata
        self.descriptions = list(descriptions) if descriptions is not None else None
        self.write_mask = bool(write_mask)
        self.cog = bool(cog)
        self.compress = compress
        self.blocksize = int(blocksize)
        self.overview_resampling = overview_resampling
        self.tags = dict(tags or {})
        self.overwrite = overwrite
        self.gcps = (list(gcps[0]), gcps[1]) if gcps and gcps[0] else None
        self.rpcs = rpcs
        check_output_free(self.path, overwrite)
        self._stack: contextlib.ExitStack | None = None
        self._dst = None
        self._tmp: Path | None = None
        self._final_tmp: Path | None = None
        self._next_row = 0
        self._written_row = 0
        self._pending: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._pending_rows = 0

    # ------------------------------------------------------------------ profile
    def _profile(self) -> dict:
        profile = dict(
            driver="GTiff",
            height=self.grid.height,
            width=self.grid.width,
            count=self.count,
            dtype=self.dtype.name,
            nodata=self.nodata,
            tiled=True,
            blockxsize=self.blocksize,
            blockysize=self.blocksize,
            BIGTIFF="IF_SAFER",
        )
        if self.gcps is not None:
            profile["gcps"], profile["crs"] = self.gcps
        elif self.rpcs is not None and self.grid.crs is None and self.grid.transform.is_identity:
            pass  # placed by its RPCs (set once the file is open), not by a transform
        else:
            profile["transform"] = self.grid.transform
            if self.grid.crs is not None:
                profile["crs"] = self.grid.crs
        if self.compress != "none":
            profile.update(compress=self.compress, predictor=predictor_for(self.dtype))
            if self.compress == "zstd":
                profile["zstd_level"] = 9
        if self.count > 1:
            profile["interleave"] = "pixel"
        return profile

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "PredictionWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)

    def _failed(self, exc: BaseException) -> BaseException:
        """``exc`` as the one-line error of a failed write (geop2p's own errors and interrupts unchanged)."""
        if isinstance(exc, (Geop2pError, KeyboardInterrupt)) or not isinstance(exc, (OSError, RasterioError, _CutShort)):
            return exc
        text = str(exc).lower()
        for code in (errno.EROFS, errno.EACCES):  # GDAL says so in words; a small read-only disk is not a full one
            if (isinstance(exc, OSError) and exc.errno == code) or os.strerror(code).lower() in text:
                return WriteError(f"Cannot write '{self.path}': {os.strerror(code)}; choose a folder you can write to.")
        return write_error(self.path, exc)

    def open(self) -> None:
        """Create the temporary GeoTIFF (the final name is untouched until :meth:`close`).

        Raises:
            WriteError: the folder cannot be created or written (read-only, a file in the way, disk full).
        """
        route_gdal_messages()  # libtiff's messages (a full disk...) go to logging, not raw to stderr
        stack = contextlib.ExitStack()
        try:
            try:
                self._final_tmp = stack.enter_context(atomic_path(self.path, overwrite=self.overwrite))
                self._tmp = temporary_sibling(self.path) if self.cog else self._final_tmp
                stack.enter_context(rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)  # pixel space, or RPCs set below
                    self._dst = rasterio.open(self._tmp, "w", **self._profile())
                if self.rpcs is not None:
                    self._dst.rpcs = self.rpcs
                if self.descriptions:
                    for i, d in enumerate(self.descriptions, start=1):
                        if d:
                            self._dst.set_band_description(i, d)
                if self.tags:
                    self._dst.update_tags(**self.tags)
            except BaseException as exc:
                failure = self._failed(exc)
                if failure is exc:
                    raise
                raise failure from exc
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            self._cleanup_intermediate()
            raise
        self._stack = stack

    @property
    def rows_written(self) -> int:
        """Rows received so far (written or buffered)."""
        return self._next_row

    def write_rows(self, row_off: int, data: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Append rows ``[row_off, row_off + n)`` of all bands; rows must arrive in order.

        Args:
            row_off: the first row; must equal the number of rows written so far.
            data: ``(count, n, width)`` array, already in the output dtype (cast safely otherwise).
            valid: ``(n, width)`` boolean validity; invalid pixels get the nodata
                value (when set) and are masked out (when ``write_mask``).
        """
        if self._dst is None:
            raise RuntimeError("PredictionWriter.write_rows called before open() or after close().")
        if row_off != self._next_row:
            raise RuntimeError(f"Rows must be written in order: expected row {self._next_row}, got {row_off}.")
        if data.ndim != 3 or data.shape[0] != self.count or data.shape[2] != self.grid.width:
            raise ValueError(
                f"Expected rows of shape ({self.count}, n, {self.grid.width}), got {tuple(data.shape)}."
            )
        n = data.shape[1]
        if n == 0:
            return
        if self._next_row + n > self.grid.height:
            raise ValueError(f"Rows {row_off}..{row_off + n} run past the raster's height {self.grid.height}.")
        data = np.asarray(data, dtype=self.dtype)
        if valid is not None and self.nodata is not None and not valid.all():
            data = data.copy()
            data[:, ~valid] = self.nodata
        self._pending.append((data, valid))
        self._pending_rows += n
        self._next_row += n
        self._flush(final=self._next_row == self.grid.height)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        n_rows = self._pending_rows if final else (self._pending_rows // self.blocksize) * self.blocksize
        if n_rows == 0:
            return
        data = np.concatenate([d for d, _ in self._pending], axis=1) if len(self._pending) > 1 else self._pending[0][0]
        valids = [v if v is not None else np.ones(d.shape[1:], bool) for d, v in self._pending]
        valid = np.concatenate(valids, axis=0) if len(valids) > 1 else valids[0]
        window = Window(0, self._written_row, self.grid.width, n_rows)
        try:
            self._dst.write(data[:, :n_rows], window=window)
            if self.write_mask:
                self._dst.write_mask(np.where(valid[:n_rows], 255, 0).astype(np.uint8), window=window)
        except (RasterioError, OSError) as exc:
            raise self._failed(exc) from exc
        self._written_row += n_rows
        rest = self._pending_rows - n_rows
        self._pending = [(data[:, n_rows:], valid[n_rows:])] if rest else []
        self._pending_rows = rest

    def close(self) -> Path:
        """Finish the file (COG conversion when asked) and rename it onto its final name.

        Raises:
            WriteError: when fewer rows than the raster's height were written, or GDAL fails
                (DiskFullError when the disk is full); the output is discarded.
        """
        if self._dst is None or self._stack is None:
            raise RuntimeError("PredictionWriter.close called before open() or twice.")
        try:
            try:
                if self._next_row != self.grid.height:
                    raise WriteError(
                        f"Only {self._next_row} of {self.grid.height} rows of '{self.path}' were written; "
                        "the output was discarded."
                    )
                self._flush(final=True)
                self._dst.close()
                self._dst = None
                _check_whole(self._tmp)
                if self.cog:
                    self._to_cog()
                    _check_whole(self._final_tmp)
            except BaseException as exc:
                failure = self._failed(exc)
                if failure is exc:
                    raise
                raise failure from exc
        except BaseException as exc:
            self.abort(exc)
            raise
        stack, self._stack = self._stack, None
        stack.close()  # renames the temporary onto the final name
        self._cleanup_intermediate()
        log.debug("wrote %s", self.path)
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Discard the output: close and delete the temporary file(s); the final name is untouched."""
        if self._dst is not None:
            with contextlib.suppress(Exception):
                self._dst.close()
            self._dst = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            err = exc if exc is not None else RuntimeError("aborted")
            with contextlib.suppress(BaseException):
                stack.__exit__(type(err), err, err.__traceback__)
        self._cleanup_intermediate()

    def _cleanup_intermediate(self) -> None:
        if self.cog and self._tmp is not None:
            for p in [self._tmp, *self._tmp.parent.glob(self._tmp.name + ".*")]:
                with contextlib.suppress(OSError):
                    p.unlink()

    def _to_cog(self) -> None:
        options = dict(
            BLOCKSIZE=max(self.blocksize, 256),
            BIGTIFF="IF_SAFER",
            OVERVIEWS="IGNORE_EXISTING",
            RESAMPLING=self.overview_resampling.upper(),
            OVERVIEW_RESAMPLING=self.overview_resampling.upper(),
        )
        if self.compress != "none":
            options["COMPRESS"] = self.compress.upper()
            options["PREDICTOR"] = "FLOATING_POINT" if predictor_for(self.dtype) == 3 else "STANDARD"
        else:
            options["COMPRESS"] = "NONE"
        rasterio.shutil.copy(str(self._tmp), str(self._final_tmp), driver="COG", **options)
