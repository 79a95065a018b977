"""`GeoGrid`: where a raster's pixels are on the Earth.

A :class:`GeoGrid` is an immutable ``(height, width, transform, crs)``; it does
no I/O.  Slicing it by a rasterio :class:`~rasterio.windows.Window` gives the
grid of that window, whose transform is exactly
``rasterio.windows.transform(window, grid.transform)``.  Every operation
returns a new grid.

Example:
    >>> from affine import Affine
    >>> from rasterio.crs import CRS
    >>> from rasterio.windows import Window
    >>> g = GeoGrid(64, 64, Affine(10, 0, 500000, 0, -10, 5000000), CRS.from_epsg(32631))
    >>> g[Window(32, 16, 32, 32)].transform.c
    500320.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from affine import Affine
from rasterio.coords import BoundingBox
import rasterio
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from rasterio.windows import from_bounds as window_from_bounds
from rasterio.windows import transform as window_transform

from geop2p.errors import GridMismatchError, InputError

__all__ = ["GeoGrid", "crs_label", "format_bounds"]


def crs_label(crs: CRS | None) -> str:
    """A short name of ``crs`` for messages: its authority code, else the name in its WKT, else its PROJ string.

    Example:
        >>> crs_label(CRS.from_epsg(32631)), crs_label(None)
        ('EPSG:32631', 'pixel space')
        >>> crs_label(CRS.from_wkt('LOCAL_CS["harbour survey grid",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'))
        "the CRS 'harbour survey grid'"
    """
    if crs is None:
        return "pixel space"
    text = crs.to_string()
    name = re.match(r'\s*[A-Z_]+\["([^"]*)"', text)  # a WKT, whose first quoted string is the CRS's name
    if name:
        return f"the CRS '{name.group(1)}'"
    return text if len(text) <= 120 else text[:120] + "..."


def format_bounds(bounds: BoundingBox | tuple[float, float, float, float], crs: CRS | None) -> str:
    """Format bounds as ``(left, bottom, right, top) in CRS`` for error messages.

    Example:
        >>> format_bounds((0, 0, 1, 1), None)
        '(0, 0, 1, 1) in pixel space'
    """
    vals = ", ".join(f"{v:.6g}" for v in tuple(bounds))
    return f"({vals}) in {crs_label(crs)}"


@dataclass(frozen=True)
class GeoGrid:
    """An immutable raster grid: ``height`` rows × ``width`` columns placed by ``transform`` in ``crs``.

    ``crs`` is ``None`` for non-georeferenced rasters (pixel space).

    Example:
        >>> g = GeoGrid(4, 6, Affine(10, 0, 0, 0, -10, 40), None)
        >>> g.shape, g.bounds
        ((4, 6), BoundingBox(left=0.0, bottom=0.0, right=60.0, top=40.0))
    """

    height: int
    width: int
    transform: Affine
    crs: CRS | None = None

    def __post_init__(self) -> None:
        if int(self.height) != self.height or int(self.width) != self.width or self.height < 1 or self.width < 1:
            raise InputError(
                f"GeoGrid needs a positive integer height and width, got {self.height}×{self.width}."
            )
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "width", int(self.width))
        if not isinstance(self.transform, Affine):
            object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        if self.crs is not None and not isinstance(self.crs, CRS):
            object.__setattr__(self, "crs", CRS.from_user_input(self.crs))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataset(cls, dataset: Any) -> "GeoGrid":
        """The grid of an open rasterio dataset (or anything with height/width/transform/crs).

        Example:
            >>> import rasterio  # doctest: +SKIP
            >>> with rasterio.open("scene.tif") as src:  # doctest: +SKIP
            ...     grid = GeoGrid.from_dataset(src)
        """
        crs = dataset.crs if getattr(dataset, "crs", None) else None
        return cls(dataset.height, dataset.width, dataset.transform, crs)

    @classmethod
    def from_dict(cls, data: dict) -> "GeoGrid":
        """Rebuild a grid from :meth:`to_dict` output.

        Example:
            >>> g = GeoGrid(2, 3, Affine(1, 0, 0, 0, -1, 2), None)
            >>> GeoGrid.from_dict(g.to_dict()) == g
            True
        """
        crs = data.get("crs")
        return cls(
            int(data["height"]),
            int(data["width"]),
            Affine(*data["transform"][:6]),
            CRS.from_user_input(crs) if crs else None,
        )

    def to_dict(self) -> dict:
        """A JSON-ready description: height, width, transform (6 GDAL-order Affine terms a..f), crs (WKT or None).

        Example:
            >>> GeoGrid(2, 3, Affine(1, 0, 0, 0, -1, 2), None).to_dict()["transform"]
            [1.0, 0.0, 0.0, 0.0, -1.0, 2.0]
        """
        return {
            "height": self.height,
            "width": self.width,
            "transform": [float(v) for v in tuple(self.transform)[:6]],
            "crs": self.crs.to_wkt() if self.crs is not None else None,
        }

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def is_georeferenced(self) -> bool:
        """True when the grid has a CRS."""
        return self.crs is not None

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)``, both positive, in CRS units."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def bounds(self) -> BoundingBox:
        """``BoundingBox(left, bottom, right, top)`` in the grid's CRS."""
        return BoundingBox(*window_bounds(self.full_window, self.transform))

    @property
    def full_window(self) -> Window:
        """The window covering the whole grid."""
        return Window(0, 0, self.width, self.height)

    # ------------------------------------------------------------------ operations
    def __getitem__(self, window: Window | tuple[slice, slice]) -> "GeoGrid":
        """The grid of a window (or ``(row_slice, col_slice)``) of this grid.

        The window may extend past the edges (its transform is still exact).
        """
        if isinstance(window, tuple):
            rows, cols = window
            r0 = rows.start or 0
            c0 = cols.start or 0
            r1 = self.height if rows.stop is None else rows.stop
            c1 = self.width if cols.stop is None else cols.stop
            window = Window(c0, r0, c1 - c0, r1 - r0)
        if int(window.width) != window.width or int(window.height) != window.height:
            raise InputError(f"A grid can only be sliced by whole-pixel windows, got {window}.")
        return GeoGrid(int(window.height), int(window.width), window_transform(window, self.transform), self.crs)

    def window_transform(self, window: Window) -> Affine:
        """The transform of ``window`` (same as ``rasterio.windows.transform``)."""
        return window_transform(window, self.transform)

    def window_bounds(self, window: Window) -> BoundingBox:
        """Bounds of ``window`` in this grid's CRS."""
        return BoundingBox(*window_bounds(window, self.transform))

    def bounds_in(self, crs: CRS | None) -> BoundingBox:
        """This grid's bounds expressed in ``crs`` (densified edges).

        Raises:
            GridMismatchError: when exactly one of the two has no CRS.
        """
        if crs is None and self.crs is None:
            return self.bounds
        if crs is None or self.crs is None:
            raise GridMismatchError(
                "Cannot compare a georeferenced raster with a non-georeferenced one; "
                "assign a CRS to both (e.g. `gdal_edit.py -a_srs EPSG:XXXX file.tif`) or to neither."
            )
        if crs == self.crs:
            return self.bounds
        try:
            with rasterio.Env():  # GDAL's own messages go to rasterio's logger, not raw to stderr
                left, bottom, right, top = transform_bounds(self.crs, crs, *self.bounds, densify_pts=21)
        except Exception as exc:  # noqa: BLE001 - rasterio's CPLE_* errors for CRSes PROJ cannot relate
            raise GridMismatchError(
                f"Cannot express the bounds {format_bounds(self.bounds, self.crs)} in {crs_label(crs)}: PROJ knows "
                f"no way between the two CRSes ({type(exc).__name__}); reproject one raster to the other's CRS "
                "first (e.g. `gdalwarp -t_srs EPSG:XXXX in.tif out.tif`), or give both the same CRS."
            ) from None
        if not all(math.isfinite(v) for v in (left, bottom, right, top)):
            raise GridMismatchError(
                f"The bounds {format_bounds(self.bounds, self.crs)} have no finite equivalent in "
                f"{crs_label(crs)} (outside its area of use); reproject one raster to the other's CRS first "
                "(e.g. `gdalwarp -t_srs EPSG:XXXX in.tif out.tif`)."
            )
        if crs.is_geographic and left > right:
            # the footprint crosses the antimeridian (rasterio then returns left > right): keep it in one piece,
            # with longitudes past 180° on the east
            right += 360.0
        return BoundingBox(left, bottom, right, top)

    def window_of(self, other: "GeoGrid") -> Window:
        """The (fractional) window of this grid that ``other``'s footprint covers.

        On a geographic grid, ``other``'s longitudes are taken a whole turn (360°) east or west when that brings
        them onto this grid: a grid may run past 180° (or -180°), as rasters crossing the antimeridian do.
        """
        left, bottom, right, top = other.bounds_in(self.crs)
        if self.crs is not None and self.crs.is_geographic:
            own = self.bounds
            turns = round(((own.left + own.right) - (left + right)) / 2.0 / 360.0)
            left, right = left + 360.0 * turns, right + 360.0 * turns
        return window_from_bounds(left, bottom, right, top, transform=self.transform)

    def overlap_window(self, other: "GeoGrid") -> Window | None:
        """The whole-pixel window of this grid inside ``other``'s footprint, or ``None`` when they do not overlap.

        Only pixels fully inside ``other``'s footprint are kept (rounded inwards).
        """
        win = self.window_of(other)
        col0 = max(0, math.ceil(win.col_off - 1e-6))
        row0 = max(0, math.ceil(win.row_off - 1e-6))
        col1 = min(self.width, math.floor(win.col_off + win.width + 1e-6))
        row1 = min(self.height, math.floor(win.row_off + win.height + 1e-6))
        if col1 <= col0 or row1 <= row0:
            return None
        return Window(col0, row0, col1 - col0, row1 - row0)

    def check_same(self, other: "GeoGrid", what: str = "grid") -> None:
        """Raise :class:`GridMismatchError` naming the first attribute that differs.

        Transforms compare with a tolerance of 1e-9 of a pixel.
        """
        if self.shape != other.shape:
            raise GridMismatchError(f"{what}: shape differs: {self.shape} vs {other.shape}.")
        if self.crs != other.crs:
            a = self.crs.to_string() if self.crs else None
            b = other.crs.to_string() if other.crs else None
            raise GridMismatchError(f"{what}: CRS differs: {a} vs {b}.")
        if not self.transform.almost_equals(other.transform, precision=1e-9 * max(self.res)):
            raise GridMismatchError(
                f"{what}: transform differs: {tuple(self.transform)[:6]} vs {tuple(other.transform)[:6]}."
            )

    def footprint(self, window: Window | None = None):
        """The footprint of the grid (or of ``window``) as a shapely polygon in the grid's CRS."""
        from shapely.geometry import Polygon

        win = window if window is not None else self.full_window
        t = self.transform
        c0, r0 = win.col_off, win.row_off
        c1, r1 = c0 + win.width, r0 + win.height
        return Polygon([t @ (c0, r0), t @ (c1, r0), t @ (c1, r1), t @ (c0, r1)])
