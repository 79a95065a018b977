"""Does a scene match the grid the model was trained on?  :func:`grid_warning` says so in one line when not.

A model learns at one pixel size: fed a scene of another, it still predicts,
but what it predicts is wrong in ways that are hard to see.  The bundle
records the chips' pixel size and CRS (``input.pixel_size``, ``input.crs``);
this compares them with a scene's, in metres where both CRSs are known, so
that an EPSG:4326 scene in degrees can be compared with a model trained on
10 m UTM chips, the mistake remote-sensing users make most often.  It is a
warning, not an error: a user may know better.

Example:
    >>> PIXEL_SIZE_TOLERANCE
    1.5
"""

from __future__ import annotations

import logging
import math

from geop2p.formats import BandSide
from geop2p.io.read import RasterInfo

__all__ = ["PIXEL_SIZE_TOLERANCE", "grid_warning"]

log = logging.getLogger(__name__)

#: pixel sizes further apart than this factor get a warning
PIXEL_SIZE_TOLERANCE = 1.5
#: metres per degree of latitude, and of longitude at the equator (WGS 84, rounded)
_M_PER_DEG_LAT, _M_PER_DEG_LON = 110_574.0, 111_320.0


def _scene_geometry(info: RasterInfo):
    """``(pixel size (x, y), CRS or None, centre (x, y))`` of a scene placed by a transform or GCPs; None otherwise."""
    from rasterio.transform import from_gcps

    if info.georeferencing == "transform":
        t, crs = info.grid.transform, info.grid.crs
    elif info.georeferencing == "gcps":
        t, crs = from_gcps(list(info.gcps)), info.gcp_crs
    else:
        return None
    size = (math.hypot(t.a, t.d), math.hypot(t.b, t.e))
    centre = t @ (info.grid.width / 2, info.grid.height / 2)
    return size, crs, centre


def _units(crs) -> tuple[str, float | None] | None:
    """``(unit name, metres per unit)``; degrees give None metres (they depend on the latitude)."""
    from rasterio.errors import CRSError

    if crs.is_geographic:
        return "degree", None
    try:
        name, factor = crs.linear_units_factor
    except CRSError:
        return None
    return str(name), float(factor)


def _metres(size: tuple[float, float], units: tuple[str, float | None], latitude: float | None):
    _, factor = units
    if factor is not None:
        return size[0] * factor, size[1] * factor
    if latitude is None:
        return None
    return size[0] * _M_PER_DEG_LON * math.cos(math.radians(latitude)), size[1] * _M_PER_DEG_LAT


def _fmt(size: tuple[float, float]) -> str:
    return f"{size[0]:.4g} × {size[1]:.4g}"


def grid_warning(info: RasterInfo, side: BandSide) -> str | None:
    """A one-line warning when a scene's pixels differ from the model's training pixels; None when they agree.

    It warns when the pixel sizes differ by more than 1.5× (compared in metres
    at the scene's centre when both CRSs are known, so a scene in degrees can
    be compared with a model trained in metres) or when the CRSs' linear units
    differ (degrees against metres: the usual mistake is an EPSG:4326 scene
    given to a model trained on 10 m UTM chips).  Nothing is compared when the
    bundle does not record its pixel size, or only one side has a CRS.

    Example:
        >>> from affine import Affine
        >>> from rasterio.crs import CRS
        >>> from geop2p.grid import GeoGrid
        >>> from geop2p.normalize import Normalizer
        >>> side = BandSide(("b",), "uint8", None, Normalizer.identity(1), pixel_size=(10.0, 10.0), crs="EPSG:32631")
        >>> utm = RasterInfo("a.tif", GeoGrid(10, 10, Affine(10, 0, 5e5, 0, -10, 5e6), CRS.from_epsg(32631)),
        ...                  1, ("uint8",), None, (None,), False)
        >>> grid_warning(utm, side) is None
        True
        >>> wgs = RasterInfo("b.tif", GeoGrid(10, 10, Affine(1e-4, 0, 3, 0, -1e-4, 45), CRS.from_epsg(4326)),
        ...                  1, ("uint8",), None, (None,), False)
        >>> print(grid_warning(wgs, side))  # doctest: +ELLIPSIS
        Scene 'b.tif' has pixels of 0.0001 × 0.0001 degree (EPSG:4326; about 7.87... × 11.06 m) but the model was trained on 10 × 10 metre pixels (EPSG:32631): other units (degree against metre), similar size (1.3×); ...
    """
    if side.pixel_size is None:
        return None
    geometry = _scene_geometry(info)
    if geometry is None:
        return None
    size, crs, centre = geometry
    model_crs = None
    if side.crs is not None:
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        try:
            model_crs = CRS.from_user_input(side.crs)
        except CRSError:
            log.debug("the bundle's input CRS %r is not a CRS; pixel sizes not compared", side.crs)
            return None
    if (crs is None) != (model_crs is None):
        return None
    scene_name = f"Scene '{info.path}'"
    if crs is None:  # both in pixel space: compare the numbers as they are
        ratio = max(max(a, b) / min(a, b) for a, b in zip(size, side.pixel_size))
        if ratio <= PIXEL_SIZE_TOLERANCE:
            return None
        return (f"{scene_name} has pixels of {_fmt(size)} but the model was trained on {_fmt(side.pixel_size)} "
                f"pixels ({ratio:.1f}× apart); predictions may be poor: resample the scene to the model's pixel size.")
    scene_units, model_units = _units(crs), _units(model_crs)
    if scene_units is None or model_units is None:
        return None
    latitude = _latitude(crs, centre)
    scene_m = _metres(size, scene_units, latitude)
    model_m = _metres(side.pixel_size, model_units, latitude)
    ratio = None
    if scene_m is not None and model_m is not None:
        ratio = max(max(a, b) / min(a, b) for a, b in zip(scene_m, model_m))
    other_units = scene_units[0] != model_units[0] or (
        scene_units[1] is not None and model_units[1] is not None
        and not math.isclose(scene_units[1], model_units[1], rel_tol=1e-6)
    )
    too_far = ratio is not None and ratio > PIXEL_SIZE_TOLERANCE
    if not (other_units or too_far):
        return None
    scene_desc = f"{_fmt(size)} {scene_units[0]} ({_crs_name(crs)}"
    if scene_units[1] != 1.0 and scene_m is not None:
        scene_desc += f"; about {_fmt(scene_m)} m"
    scene_desc += ")"
    reasons = []
    if other_units:
        reasons.append(f"other units ({scene_units[0]} against {model_units[0]})")
    if ratio is not None:
        reasons.append(f"{ratio:.1f}× apart" if too_far else f"similar size ({ratio:.1f}×)")
    target = f"-t_srs {_crs_name(model_crs)} -tr {side.pixel_size[0]:g} {side.pixel_size[1]:g}"
    return (f"{scene_name} has pixels of {scene_desc} but the model was trained on {_fmt(side.pixel_size)} "
            f"{model_units[0]} pixels ({_crs_name(model_crs)}): {', '.join(reasons)}; predictions may be poor: "
            f"resample the scene to the model's grid first (e.g. gdalwarp {target}).")


def _crs_name(crs) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else (crs.to_string()[:60] or "a custom CRS")


def _latitude(crs, centre: tuple[float, float]) -> float | None:
    """The latitude of ``centre`` (in ``crs``), or None when it cannot be transformed."""
    if crs.is_geographic:
        return float(centre[1])
    try:
        from rasterio.warp import transform

        _, ys = transform(crs, "EPSG:4326", [centre[0]], [centre[1]])
        latitude = float(ys[0])
    except Exception:  # noqa: BLE001 - PROJ errors of any kind: no latitude, no comparison in metres
        return None
    return latitude if math.isfinite(latitude) else None
