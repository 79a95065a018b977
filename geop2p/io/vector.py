"""Areas of interest: read any vector file geopandas can read, in the raster's CRS.

Example:
    >>> aoi = read_aoi("fields.gpkg", grid.crs)  # doctest: +SKIP
    >>> check_aoi_overlap(aoi, grid, "fields.gpkg")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rasterio.crs import CRS
from rasterio.windows import Window

from geop2p.errors import NoOverlapError, VectorReadError
from geop2p.grid import GeoGrid, format_bounds

__all__ = ["read_aoi", "check_aoi_overlap", "aoi_window"]

log = logging.getLogger(__name__)


def read_aoi(path: str | os.PathLike, crs: CRS | None):
    """Read every geometry of ``path`` as one (multi)polygon in ``crs``.

    A file without a CRS is taken to be in ``crs`` (with a warning).  For a
    non-georeferenced raster (``crs=None``) the geometries are taken as pixel
    coordinates of its grid's transform.

    Raises:
        VectorReadError: the file is missing, unreadable, a table without geometries (a CSV), empty, or has no
            polygons.

    Example:
        >>> read_aoi("aoi.gpkg", CRS.from_epsg(32631)).area  # doctest: +SKIP
        1250000.0
    """
    import geopandas as gpd
    import shapely

    p = Path(path)
    if not p.exists():
        raise VectorReadError(f"AOI file not found: '{p}'. Check the path (it is relative to {Path.cwd()}).")
    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises its own DataSourceError and others
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise VectorReadError(
            f"Cannot read AOI '{p}' as a vector file ({text}); expected a format geopandas reads "
            "(GeoPackage, Shapefile, GeoJSON, FlatGeobuf...)."
        ) from exc
    try:
        has_geometry = isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry is not None
    except AttributeError:  # a GeoDataFrame without an active geometry column
        has_geometry = False
    if not has_geometry:
        raise VectorReadError(
            f"AOI '{p}' holds a table without geometries (columns: {', '.join(map(str, gdf.columns[:8])) or 'none'}); "
            "an AOI must be a vector file of polygons (GeoPackage, Shapefile, GeoJSON...), or a CSV with a WKT "
            "column of polygons."
        )
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty] if len(gdf) else gdf
    if len(gdf) == 0:
        raise VectorReadError(f"AOI '{p}' has no geometries; draw at least one polygon in it.")
    if crs is not None:
        if gdf.crs is None:
            log.warning("AOI '%s' has no CRS; assuming it is in the raster's CRS (%s).", p, crs.to_string())
        else:
            gdf = gdf.to_crs(crs)
    elif gdf.crs is not None:
        log.warning("The rasters have no CRS; the AOI '%s' coordinates are used as they are.", p)
    geom = shapely.union_all(shapely.make_valid(gdf.geometry.values))
    polys = shapely.get_parts(geom)
    polys = [g for g in polys if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        raise VectorReadError(
            f"AOI '{p}' holds no polygons (found {sorted(set(gdf.geom_type))}); an AOI must be an area."
        )
    return shapely.union_all(polys)


def check_aoi_overlap(aoi, grid: GeoGrid, path: str | os.PathLike = "AOI", region: Window | None = None) -> None:
    """Raise :class:`NoOverlapError` when ``aoi`` misses ``grid`` (or its ``region``), naming both bounds.

    Example:
        >>> check_aoi_overlap(aoi, grid, "aoi.gpkg")  # doctest: +SKIP
    """
    footprint = grid.footprint(region)
    if not aoi.intersects(footprint) or aoi.intersection(footprint).area <= 0:
        raise NoOverlapError(
            f"AOI '{path}' {format_bounds(aoi.bounds, grid.crs)} does not overlap the rasters "
            f"{format_bounds(footprint.bounds, grid.crs)}; check the AOI file (and its CRS)."
        )


def aoi_window(aoi, grid: GeoGrid, region: Window | None = None) -> Window:
    """The whole-pixel window of ``grid`` (within ``region``) that covers ``aoi``'s bounding box.

    Example:
        >>> aoi_window(box(500000, 4999360, 500320, 5000000), grid)  # doctest: +SKIP
        Window(col_off=0, row_off=0, width=32, height=64)
    """
    import math

    from rasterio.windows import from_bounds

    win = from_bounds(*aoi.bounds, transform=grid.transform)
    r0 = math.floor(win.row_off + 1e-6)
    c0 = math.floor(win.col_off + 1e-6)
    r1 = math.ceil(win.row_off + win.height - 1e-6)
    c1 = math.ceil(win.col_off + win.width - 1e-6)
    reg = region if region is not None else grid.full_window
    r0, c0 = max(r0, int(reg.row_off)), max(c0, int(reg.col_off))
    r1 = min(r1, int(reg.row_off + reg.height))
    c1 = min(c1, int(reg.col_off + reg.width))
    return Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0))
