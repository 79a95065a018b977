"""Input and target sources: comma-stacked band stacks, band selection, and the target aligned onto the input grid.

* :func:`parse_sources` turns ``"a.tif,b.tif"`` (or a list) into paths.
* :func:`open_stack` checks a list of rasters up front (they exist, are
  readable rasters, share one grid, hold the selected bands) and describes
  the selected bands as one :class:`RasterStack`.
* :func:`plan_alignment` decides how the target is read on the input grid
  (:class:`Alignment`) and where the two overlap; it fails early with both
  footprints named when they do not overlap.
* :class:`PairReader` opens every dataset once and reads, per window, the
  input bands, the aligned target bands and their joint validity.

Alignment modes:

* ``identical`` — same grid: windows are read directly.
* ``shifted`` — same CRS and pixel size, whole-pixel offset: the target is
  read at the shifted window, no resampling.
* ``warped`` — anything else: the target is reprojected and resampled on the
  fly onto the input grid with a :class:`rasterio.vrt.WarpedVRT` (with an
  alpha band, so pixels outside the target's footprint or invalid in it are
  invalid).  Geographic rasters crossing the antimeridian (longitudes past
  180°) are handled: see :func:`warp_source_crs` and
  :meth:`geop2p.grid.GeoGrid.window_of`.

Default resampling (:func:`default_resampling`): ``nearest`` when a target
band has a colour table (categorical classes must not be blended), otherwise
``bilinear`` (continuous values, integers included).  Pass ``nearest`` (or
``mode``) for categorical targets without a colour table.

Non-georeferenced pairs (no CRS on either raster, same pixel size, like the
classic pix2pix image pairs) are matched in pixel space with a warning; one
georeferenced raster and one not is an error.

Example:
    >>> input_stack = open_stack("s1.tif", bands=[1, 2], what="input")  # doctest: +SKIP
    >>> target_stack = open_stack("s2_b4.tif,s2_b3.tif,s2_b2.tif", what="target")  # doctest: +SKIP
    >>> alignment = plan_alignment(input_stack, target_stack)  # doctest: +SKIP
    >>> with PairReader(input_stack, target_stack, alignment) as reader:  # doctest: +SKIP
    ...     x, y, valid = reader.read(Window(0, 0, 256, 256))
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geop2p.errors import GridMismatchError, InputError, NoOverlapError, RasterReadError
from geop2p.grid import GeoGrid, format_bounds
from geop2p.formats.jsonsafe import nodata_to_json
from geop2p.io.read import RasterInfo, check_bands, raster_info, valid_mask

__all__ = [
    "RESAMPLING_NAMES",
    "Alignment",
    "PairReader",
    "RasterStack",
    "default_resampling",
    "open_stack",
    "parse_sources",
    "plan_alignment",
    "probe_raster",
    "warp_source_crs",
]

log = logging.getLogger(__name__)

#: Resampling names accepted for the target (rasterio's, which are GDAL's).
RESAMPLING_NAMES: tuple[str, ...] = tuple(r.name for r in Resampling if r.value <= Resampling.rms.value)


class PixelSpaceWarning(UserWarning):
    """Neither raster has a CRS: they are matched by pixel position only."""


def parse_sources(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[str, ...]:
    """Paths from one path, a comma-joined string of paths, or a list of paths.

    Commas stack rasters; a string naming one existing file whose name holds
    a comma (``"my, input.tif"``) is that file, unless every comma-separated
    part exists too.

    Example:
        >>> parse_sources("vv.tif, vh.tif")
        ('vv.tif', 'vh.tif')
    """
    if isinstance(sources, (str, os.PathLike)):
        whole = os.fspath(sources)
        parts = [p.strip() for p in whole.split(",")]
        if len(parts) > 1 and os.path.isfile(whole) and not all(os.path.exists(p) for p in parts if p):
            return (whole,)
    else:
        parts = [os.fspath(p).strip() for p in sources]
    parts = [p for p in parts if p]
    if not parts:
        raise InputError(f"No raster given (got {sources!r}); pass a path, or several joined by commas.")
    return tuple(parts)


def _check_comma_parts(sources, paths: tuple[str, ...], what: str) -> None:
    """A comma-joined string naming a missing part: say that commas stack rasters."""
    if not isinstance(sources, (str, os.PathLike)) or len(paths) < 2:
        return
    for p in paths:
        if not os.path.exists(p):
            raise RasterReadError(
                f"Raster not found: '{p}' (the {what} '{os.fspath(sources)}' was split at its commas, which stack "
                f"rasters: {' + '.join(repr(x) for x in paths)}); check the paths, or rename a file whose name "
                "holds a comma (a single such file is used as it is when it exists)."
            )


def _check_pixels_usable(path: str, src, what: str) -> None:
    """Refuse what chips cannot hold: complex values, and rasters placed by GCPs or RPCs only."""
    complex_types = sorted({d for d in src.dtypes if "complex" in d})
    if complex_types:
        raise RasterReadError(
            f"The {what} raster '{path}' holds complex values ({', '.join(complex_types)}); geop2p works on real "
            "numbers: take the amplitude (or dB) first, e.g. "
            f"`gdal_calc.py -A {path} --outfile amplitude.tif --calc \"abs(A)\" --type Float32`."
        )
    if not src.crs and (src.gcps[0] or src.rpcs):
        kind = "ground control points (GCPs)" if src.gcps[0] else "RPCs"
        raise RasterReadError(
            f"The {what} raster '{path}' is placed on the Earth by {kind} only, not on a grid; warp it onto a "
            f"grid first, e.g. `gdalwarp -r bilinear {'-rpc ' if kind == 'RPCs' else ''}{path} warped.tif`."
        )


def _same_nodata(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


@dataclass(frozen=True)
class RasterStack:
    """Selected bands of one or more rasters on one grid, seen as a single raster.

    Attributes:
        infos: the source rasters, in stacking order.
        grid: their common grid.
        bands: selected 1-based indexes into the stack of all sources' bands.
        band_sources: for each selected band, ``(source index, 1-based band in that source)``.
        dtype: the stack's data type (the sources' common type; promoted if they differ).
        nodata: the stack's nodata value (the sources' common one), or ``None``.
        band_names: per selected band: its description, or ``band_<i>`` (``i`` its stack index).
        categorical: True when a selected band has a colour table.
    """

    infos: tuple[RasterInfo, ...]
    grid: GeoGrid
    bands: tuple[int, ...]
    band_sources: tuple[tuple[int, int], ...]
    dtype: str
    nodata: float | None
    band_names: tuple[str, ...]
    categorical: bool = False

    @property
    def paths(self) -> tuple[str, ...]:
        """The source paths."""
        return tuple(i.path for i in self.infos)

    @property
    def count(self) -> int:
        """Number of selected bands."""
        return len(self.bands)

    def to_dict(self) -> dict:
        """The manifest's ``input`` / ``target`` object."""
        return {
            "sources": [i.to_dict() for i in self.infos],
            "bands": list(self.bands),
            "band_names": list(self.band_names),
            "dtype": self.dtype,
            "nodata": nodata_to_json(self.nodata),
        }


def probe_raster(path: str | os.PathLike, what: str = "raster") -> bool:
    """Read the first and last block of every band (catches truncated files early); return 'has a colour table'.

    Raises:
        RasterReadError: the pixels cannot be read (the file is truncated or corrupt).

    Example:
        >>> probe_raster("scene.tif")  # doctest: +SKIP
        False
    """
    try:
        with rasterio.Env(), _quiet_georef(), rasterio.open(path) as src:
            last = Window(src.width - 1, src.height - 1, 1, 1)
            for window in (Window(0, 0, 1, 1), last):
                src.read(window=window)
                src.read_masks(window=window)
            return any(ci == ColorInterp.palette for ci in src.colorinterp)
    except RasterioIOError as exc:
        raise RasterReadError(
            f"Cannot read pixels of {what} '{path}' ({_gdal_reason(exc)}); "
            "the file is probably truncated or corrupt: re-export or re-download it."
        ) from exc


def _gdal_reason(exc: BaseException) -> str:
    """GDAL's own words for a failed read (rasterio's "See previous exception" points at its cause), one line."""
    cause = exc.__cause__ if "previous exception" in str(exc) and exc.__cause__ is not None else exc
    text = str(cause.args[-1]) if cause.args else str(cause)
    return " ".join(text.split())[:160] or type(exc).__name__


@contextlib.contextmanager
def _quiet_georef():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def open_stack(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    bands: Sequence[int] | None = None,
    what: str = "input",
) -> RasterStack:
    """Check ``sources`` and describe their selected bands as one stack.

    Args:
        sources: a path, comma-joined paths, or a list of paths; their bands are stacked in order.
        bands: 1-based indexes into the stack (default: all bands).
        what: how messages name this stack (``"input"``, ``"target"``).

    Raises:
        RasterReadError: a file is missing, not a raster, corrupt, complex-valued, or placed by GCPs/RPCs only.
        GridMismatchError: the sources do not share one grid (names the attribute and both values).
        BandIndexError: a band index is outside the stack.

    Example:
        >>> stack = open_stack("vv.tif,vh.tif", what="input")  # doctest: +SKIP
        >>> stack.count, stack.band_names  # doctest: +SKIP
        (2, ('VV', 'VH'))
    """
    paths = parse_sources(sources)
    _check_comma_parts(sources, paths, what)
    infos: list[RasterInfo] = []
    palettes: list[bool] = []
    # inside an Env, GDAL's warnings about damaged files go to rasterio's logger instead of raw to stderr
    with rasterio.Env():
        for p in paths:
            with _quiet_georef():
                info = raster_info(p)
                with rasterio.open(p) as src:
                    _check_pixels_usable(p, src, what)
            palettes.append(probe_raster(p, f"{what} raster"))
            infos.append(info)
    grid = infos[0].grid
    for info in infos[1:]:
        grid.check_same(
            info.grid,
            what=f"{what} rasters '{infos[0].path}' and '{info.path}' must share one grid to be stacked",
        )
    band_sources = [(s, b) for s, info in enumerate(infos) for b in range(1, info.count + 1)]
    total = len(band_sources)
    where = f"{what} stack ({' + '.join(paths)})" if len(paths) > 1 else f"{what} raster '{paths[0]}'"
    selected = check_bands(bands if bands is not None else range(1, total + 1), total, where)
    chosen = tuple(band_sources[i - 1] for i in selected)
    dtypes = [infos[s].dtypes[b - 1] for s, b in chosen]
    dtype = np.result_type(*dtypes).name
    if len(set(dtypes)) > 1:
        log.warning("The %s bands have different data types (%s); they are stacked as %s.", what, ", ".join(dtypes), dtype)
    nodatas = [infos[s].nodata for s in sorted({s for s, _ in chosen})]
    nodata = next((n for n in nodatas if n is not None), None)
    if any(not _same_nodata(n, nodata) for n in nodatas if n is not None):
        log.warning(
            "The %s rasters have different nodata values (%s); chips use %s, and their mask records validity.",
            what,
            ", ".join(str(n) for n in nodatas),
            nodata,
        )
    names = tuple(infos[s].descriptions[b - 1] or f"band_{i}" for i, (s, b) in zip(selected, chosen))
    categorical = any(palettes[s] for s, _ in chosen)
    return RasterStack(tuple(infos), grid, tuple(selected), chosen, dtype, nodata, names, categorical)


def default_resampling(target: RasterStack) -> str:
    """``"nearest"`` for a target with a colour table (classes), otherwise ``"bilinear"``.

    Example:
        >>> default_resampling(stack)  # doctest: +SKIP
        'bilinear'
    """
    return "nearest" if target.categorical else "bilinear"


@dataclass(frozen=True)
class Alignment:
    """How the target is read on the input grid (warping uses an exact coordinate transformer: 1e-6 px tolerance).

    Attributes:
        mode: ``"identical"``, ``"shifted"`` or ``"warped"`` (see the module docs).
        resampling: resampling name used when warped (recorded otherwise, unused).
        georeferenced: False for a pixel-space pair.
        region: the whole-pixel window of the input grid covered by the target's footprint.
        offset: ``(rows, cols)`` to add to an input window to get the target window (``shifted``).
    """

    mode: str
    resampling: str
    georeferenced: bool
    region: Window
    offset: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict:
        """The manifest's ``alignment`` object."""
        return {
            "target_reprojected": self.mode == "warped",
            "resampling": self.resampling,
            "georeferenced": self.georeferenced,
            "mode": self.mode,
        }


def _check_resampling(name: str) -> str:
    if name not in RESAMPLING_NAMES:
        raise InputError(f"Unknown resampling {name!r}; valid names: {', '.join(RESAMPLING_NAMES)}.")
    return name


def plan_alignment(input: RasterStack, target: RasterStack, resampling: str | None = None) -> Alignment:
    """Decide how ``target`` is read on ``input``'s grid, and where they overlap.

    Raises:
        GridMismatchError: one raster has a CRS and the other not, or a pixel-space pair has different pixel sizes.
        NoOverlapError: the footprints do not overlap (both bounds named in the input's CRS).

    Example:
        >>> plan_alignment(open_stack("s1.tif"), open_stack("s2.tif")).mode  # doctest: +SKIP
        'warped'
    """
    src_grid, dst_grid = target.grid, input.grid
    name = _check_resampling(resampling) if resampling else default_resampling(target)
    georef = dst_grid.is_georeferenced
    if georef != src_grid.is_georeferenced:
        has, lacks = (input, target) if georef else (target, input)
        raise GridMismatchError(
            f"The {'input' if georef else 'target'} raster '{has.paths[0]}' has a CRS but the "
            f"{'target' if georef else 'input'} raster '{lacks.paths[0]}' has none; assign the CRS to both "
            "(e.g. `gdal_edit.py -a_srs EPSG:XXXX file.tif`) or to neither (pixel-space pairs)."
        )
    if not georef:
        warnings.warn(
            "Neither raster has a CRS: input and target are matched in pixel space (by their pixel "
            "positions); chips will not be georeferenced.",
            PixelSpaceWarning,
            stacklevel=2,
        )
        if not np.allclose(src_grid.res, dst_grid.res, rtol=1e-9, atol=0):
            raise GridMismatchError(
                f"Pixel-space pair with different pixel sizes: input {dst_grid.res} vs target {src_grid.res}; "
                "resize one image to the other's size, or georeference both."
            )
    region = dst_grid.overlap_window(src_grid)
    if region is None:
        raise NoOverlapError(
            f"The input and target footprints do not overlap: input {format_bounds(dst_grid.bounds, dst_grid.crs)}, "
            f"target {format_bounds(src_grid.bounds_in(dst_grid.crs), dst_grid.crs)}; check that both cover the same area."
        )
    st, dt = src_grid.transform, dst_grid.transform
    same_pixels = np.allclose((st.a, st.b, st.d, st.e), (dt.a, dt.b, dt.d, dt.e), rtol=1e-9, atol=0)
    same_lattice = (not georef) or (src_grid.crs == dst_grid.crs and same_pixels)
    if same_lattice:
        col, row = ~src_grid.transform @ (dst_grid.transform.c, dst_grid.transform.f)
        if abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6:
            offset = (int(round(row)), int(round(col)))
            if offset == (0, 0) and src_grid.shape == dst_grid.shape:
                return Alignment("identical", name, georef, region)
            return Alignment("shifted", name, georef, region, offset)
        if not georef:
            raise GridMismatchError(
                f"Pixel-space pair whose origins differ by a fraction of a pixel ({row:g}, {col:g}); "
                "georeference both rasters so the target can be resampled."
            )
    return Alignment("warped", name, georef, region)


def _past_antimeridian(grid: GeoGrid) -> bool:
    """True for a geographic grid whose longitudes run past 180° or -180°."""
    if grid.crs is None or not grid.crs.is_geographic:
        return False
    b = grid.bounds
    return b.left < -180.0 or b.right > 180.0


def warp_source_crs(input: GeoGrid, target: GeoGrid) -> CRS | None:
    """The CRS to read a geographic ``target`` in when warping it onto ``input`` across the antimeridian, or None.

    PROJ answers longitudes in [-180°, 180°), so pixels of a geographic raster that runs past 180° (say
    179.9° to 180.16°) would never be found.  Read such a raster (or any geographic target, when the input
    grid runs past 180°) with ``+lon_wrap`` at its own centre, so that longitudes come out in its own range.

    Example:
        >>> from affine import Affine
        >>> g = GeoGrid(10, 26, Affine(0.01, 0, 179.9, 0, -0.01, -39.9), CRS.from_epsg(4326))
        >>> utm = GeoGrid(10, 10, Affine(100, 0, 700000, 0, -100, 5570000), CRS.from_epsg(32760))
        >>> "+lon_wrap=180.03" in warp_source_crs(utm, g).to_proj4()
        True
        >>> warp_source_crs(g, utm) is None
        True
    """
    if target.crs is None or not target.crs.is_geographic:
        return None
    if not (_past_antimeridian(target) or _past_antimeridian(input)):
        return None
    b = target.bounds
    return CRS.from_proj4(f"{target.crs.to_proj4()} +lon_wrap={(b.left + b.right) / 2:.6g}")


class PairReader:
    """Reads input bands, target bands (aligned onto the input grid) and their joint validity, window by window.

    Opens every dataset once; use as a context manager (or call :meth:`close`).

    Example:
        >>> with PairReader(input_stack, target_stack, alignment) as reader:  # doctest: +SKIP
        ...     x, y, valid = reader.read(Window(0, 0, 256, 256))
    """

    def __init__(self, input: RasterStack, target: RasterStack, alignment: Alignment) -> None:
        self.input = input
        self.target = target
        self.alignment = alignment
        self._stack = contextlib.ExitStack()
        try:
            with _quiet_georef():
                self._input_srcs = [self._stack.enter_context(rasterio.open(p)) for p in input.paths]
                target_srcs = [self._stack.enter_context(rasterio.open(p)) for p in target.paths]
                if alignment.mode == "warped":
                    grid = input.grid
                    src_crs = warp_source_crs(grid, target.grid)
                    extra = {"src_crs": src_crs} if src_crs is not None else {}
                    target_srcs = [
                        self._stack.enter_context(
                            WarpedVRT(
                                src,
                                crs=grid.crs,
                                transform=grid.transform,
                                width=grid.width,
                                height=grid.height,
                                resampling=Resampling[alignment.resampling],
                                add_alpha=True,
                                tolerance=1e-6,
                                **extra,
                            )
                        )
                        for src in target_srcs
                    ]
                self._target_srcs = target_srcs
        except RasterioIOError as exc:
            self._stack.close()
            raise RasterReadError(f"Cannot open the input/target rasters ({str(exc).strip()[:160]}).") from exc

    def __enter__(self) -> "PairReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every dataset."""
        self._stack.close()

    @staticmethod
    def _groups(stack: RasterStack) -> list[tuple[int, list[int], list[int]]]:
        """``(source, bands in source, positions in stack)`` for each source holding selected bands."""
        groups: dict[int, tuple[list[int], list[int]]] = {}
        for pos, (s, b) in enumerate(stack.band_sources):
            groups.setdefault(s, ([], []))
            groups[s][0].append(b)
            groups[s][1].append(pos)
        return [(s, bands, pos) for s, (bands, pos) in groups.items()]

    def _read_stack(self, srcs, stack: RasterStack, window: Window, warped: bool) -> tuple[np.ndarray, np.ndarray]:
        h, w = int(window.height), int(window.width)
        out = np.empty((stack.count, h, w), dtype=stack.dtype)
        valid = np.ones((h, w), dtype=bool)
        for s, bands, pos in self._groups(stack):
            src = srcs[s]
            try:
                if warped:
                    data = src.read(bands + [src.count], window=window)
                    alpha, data = data[-1], data[:-1]
                    ok = alpha > 0
                    if np.issubdtype(data.dtype, np.floating):
                        ok &= ~np.isnan(data).any(axis=0)
                else:
                    data = src.read(bands, window=window)
                    ok = valid_mask(src, data, window, bands)
            except RasterioIOError as exc:
                raise RasterReadError(
                    f"Cannot read window {window} of '{stack.paths[s]}' ({str(exc).strip()[:160]}); "
                    "the file is probably truncated or corrupt."
                ) from exc
            out[pos] = data
            valid &= ok
        return out, valid

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input ``(bands, h, w)``, target ``(bands, h, w)`` on the same grid, and joint validity ``(h, w)``.

        Invalid pixels are *not* altered here; the chip writer sets them to nodata.
        """
        x, x_valid = self._read_stack(self._input_srcs, self.input, window, warped=False)
        mode = self.alignment.mode
        twin = window
        if mode == "shifted":
            dr, dc = self.alignment.offset
            twin = Window(window.col_off + dc, window.row_off + dr, window.width, window.height)
        y, y_valid = self._read_stack(self._target_srcs, self.target, twin, warped=mode == "warped")
        return x, y, x_valid & y_valid

