"""A small but realistic georeferenced paired scene, made from nothing: terrain → imagery.

The demo (``geop2p demo``) and the tests need a DEM → imagery pair that needs no
download.  This module makes one, deterministically for a seed, with numpy only:

* :func:`make_terrain` — fractal terrain (FFT-filtered noise with a ``1/f^β``
  power spectrum, a regional tilt and sharpened ridges), in metres, between
  about 2400 m and 4000 m like the Colorado Front Range.
* :func:`render_imagery` — an RGB "orthophoto" of that terrain: hillshade
  (sun from the north-west, 45° up) times a land-cover colour chosen by
  elevation and slope (water in the lowest basins, grass on flat valley
  floors, forest below the tree line, rock above it and on steep slopes,
  snow on high gentle slopes), with a seeded, spatially correlated texture.
* :func:`write_demo_scene` — both as GeoTIFFs in UTM zone 13N (EPSG:32613) at
  30 m, with realistic holes: a void blob in the DEM (``-9999``) and a
  no-data corner in the imagery (``0`` plus an internal mask), like a swath edge.

Why the mapping is learnable but not trivial: the imagery's brightness comes
from the hillshade, which depends on the *neighbourhood* slope and aspect, and
the land cover depends on slope too.  A per-pixel linear map from elevation to
RGB (the ``evaluate`` baseline) can only learn "higher is whiter"; a U-Net that
sees a window of the DEM can learn the shading and the cover classes.

Example:
    >>> dem = make_terrain(64, 64, seed=1)
    >>> rgb = render_imagery(dem, res=30.0, seed=1)
    >>> dem.dtype.name, rgb.shape, rgb.dtype.name
    ('float32', (3, 64, 64), 'uint8')
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geop2p.errors import InputError
from geop2p.io.atomic import atomic_path, check_output_free

__all__ = [
    "DEMO_CRS",
    "DEMO_RESOLUTION",
    "DEM_NODATA",
    "RGB_NODATA",
    "DemoScene",
    "make_terrain",
    "render_imagery",
    "hillshade",
    "slope_degrees",
    "write_demo_scene",
]

logger = logging.getLogger(__name__)

#: UTM zone 13N, the zone of Rocky Mountain National Park (Colorado).
DEMO_CRS = CRS.from_epsg(32613)
#: Pixel size of the demo scene in metres (like SRTM / Landsat).
DEMO_RESOLUTION = 30.0
#: Upper-left corner of the demo scene in EPSG:32613 (near Estes Park, Colorado).
DEMO_ORIGIN = (440_000.0, 4_480_000.0)
DEM_NODATA = -9999.0
RGB_NODATA = 0

_MIN_SIZE = 32

# land-cover colours (RGB, 0..1) before shading
_WATER = np.array([0.16, 0.27, 0.40])
_GRASS = np.array([0.55, 0.60, 0.33])
_FOREST = np.array([0.17, 0.31, 0.16])
_ROCK = np.array([0.52, 0.47, 0.42])
_SNOW = np.array([0.95, 0.96, 0.98])


def _fractal_noise(height: int, width: int, rng: np.random.Generator, beta: float) -> np.ndarray:
    """Zero-mean, unit-std noise whose power spectrum falls as ``1/f^beta`` (FFT filtering of white noise)."""
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    freq[0, 0] = 1.0
    amplitude = freq ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(height, width))
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _check_shape(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height < _MIN_SIZE or width < _MIN_SIZE:
        raise InputError(
            f"Synthetic scenes need integer height and width of at least {_MIN_SIZE} pixels, got {height}×{width}."
        )


def make_terrain(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A fractal mountain DEM in metres (float32, ``(height, width)``), the same for the same seed.

    Large-scale relief (``β = 3.2``) with sharpened ridges and a regional tilt
    gives valleys, ridges and a few closed basins (which become lakes in
    :func:`render_imagery`).  Elevations start at 2400 m and span 1600 m for a
    1024 px (or larger) scene, proportionally less on smaller ones so that
    slopes stay alike (at least 200 m).

    Example:
        >>> dem = make_terrain(128, 96, seed=7)
        >>> dem.shape, bool(2399 < dem.min() < dem.max() < 4001)
        ((128, 96), True)
    """
    _check_shape(height, width)
    rng = np.random.default_rng([int(seed), 0x7E55])
    base = _fractal_noise(height, width, rng, beta=3.6)
    detail = _fractal_noise(height, width, rng, beta=2.6)
    # sharpen ridges: fold part of the relief around its median, like eroded crests
    ridged = 1.0 - np.abs(np.tanh(base))
    rows = np.linspace(0.0, 1.0, height)[:, None]
    cols = np.linspace(0.0, 1.0, width)[None, :]
    tilt = 0.8 * (cols - 0.5) - 0.5 * (rows - 0.5)
    relief = base + 0.6 * ridged + 0.05 * detail + tilt
    relief = (relief - relief.min()) / max(relief.max() - relief.min(), 1e-12)
    # the relief grows with the extent, so slopes stay mountain-like (not cliffs) on small scenes
    span = 1600.0 * min(1.0, max(200.0 / 1600.0, max(height, width) / 1024.0))
    dem = 2400.0 + span * relief**1.15
    return dem.astype(np.float32)


def slope_degrees(dem: np.ndarray, res: float) -> np.ndarray:
    """Slope in degrees from central differences with a ``res``-metre pixel.

    Example:
        >>> ramp = np.tile(np.arange(8, dtype=float) * 10.0, (8, 1))  # rises 10 m per 10 m pixel
        >>> round(float(slope_degrees(ramp, 10.0)[4, 4]), 3)
        45.0
    """
    dzdy, dzdx = np.gradient(np.asarray(dem, dtype=np.float64), res)
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy)))


def hillshade(dem: np.ndarray, res: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Lambertian hillshade in [0, 1] (sun at ``azimuth`` degrees clockwise from north, ``altitude`` up).

    Rows run southwards (north-up raster), columns eastwards, as in any GeoTIFF
    with a negative y pixel size.

    Example:
        >>> flat = np.zeros((8, 8))
        >>> round(float(hillshade(flat, 30.0)[0, 0]), 4)  # sin(45°)
        0.7071
    """
    dem = np.asarray(dem, dtype=np.float64)
    dzdrow, dzdcol = np.gradient(dem, res)
    dzdx = dzdcol  # east
    dzdy = -dzdrow  # north (rows go south)
    az = np.radians(azimuth)
    alt = np.radians(altitude)
    # unit vector towards the sun (east, north, up)
    sun = np.array([np.sin(az) * np.cos(alt), np.cos(az) * np.cos(alt), np.sin(alt)])
    norm = np.sqrt(dzdx * dzdx + dzdy * dzdy + 1.0)
    shade = (-dzdx * sun[0] - dzdy * sun[1] + sun[2]) / norm
    return np.clip(shade, 0.0, 1.0)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def render_imagery(dem: np.ndarray, res: float, seed: int = 0) -> np.ndarray:
    """Render an RGB image (uint8, ``(3, height, width)``, values 1..255) of ``dem``.

    Land cover from elevation quantiles and slope (deterministic for a seed):
    water below the 6th elevation percentile where slopes are gentle; grass on
    flat valley floors; forest up to the tree line (65th percentile, blended
    over ±80 m); rock above it and wherever the slope exceeds ~35°; snow above
    the 93rd percentile on slopes under 40°.  Each colour is multiplied by the
    hillshade (ambient 0.3), water is unshaded, and a seeded correlated texture
    (±6 %) mimics canopy and rock variation.  Value 0 is never produced, so it
    can serve as nodata.

    Example:
        >>> rgb = render_imagery(make_terrain(64, 64, seed=3), res=30.0, seed=3)
        >>> int(rgb.min()) >= 1
        True
    """
    dem = np.asarray(dem, dtype=np.float64)
    if dem.ndim != 2:
        raise InputError(f"render_imagery expects a 2-D DEM (height, width), got an array of shape {dem.shape}.")
    if not np.isfinite(dem).all():
        raise InputError("render_imagery expects a DEM without NaN/inf; fill voids before rendering.")
    if res <= 0:
        raise InputError(f"Pixel size must be positive metres, got {res}.")
    height, width = dem.shape
    _check_shape(height, width)
    rng = np.random.default_rng([int(seed), 0x1A6E])
    slope = slope_degrees(dem, res)
    shade = hillshade(dem, res)
    q_water, q_tree, q_snow = np.percentile(dem, [6.0, 65.0, 93.0])

    forest_w = 1.0 - _smoothstep(q_tree - 80.0, q_tree + 80.0, dem)
    flat = 1.0 - _smoothstep(4.0, 12.0, slope)
    valley = 1.0 - _smoothstep(q_water, q_water + 250.0, dem)
    grass_w = np.clip(flat * valley * 1.2, 0.0, 1.0)
    steep = _smoothstep(30.0, 40.0, slope)
    snow_w = _smoothstep(q_snow - 40.0, q_snow + 40.0, dem) * (1.0 - _smoothstep(35.0, 45.0, slope))

    colour = (
        forest_w[..., None] * _FOREST + (1.0 - forest_w)[..., None] * _ROCK
    )  # forest below the tree line, rock above
    colour = grass_w[..., None] * _GRASS + (1.0 - grass_w)[..., None] * colour
    colour = steep[..., None] * _ROCK + (1.0 - steep)[..., None] * colour
    colour = snow_w[..., None] * _SNOW + (1.0 - snow_w)[..., None] * colour

    texture = 1.0 + 0.06 * np.clip(_fractal_noise(height, width, rng, beta=1.2), -2.5, 2.5) / 2.5
    lit = colour * (0.3 + 0.7 * shade)[..., None] * texture[..., None]

    water = (dem < q_water) & (slope < 15.0)
    lit[water] = _WATER * (0.95 + 0.05 * texture[water, None])

    rgb = np.clip(np.rint(lit * 255.0), 1, 255).astype(np.uint8)
    return np.moveaxis(rgb, -1, 0)


def _void_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A blob-shaped DEM void (like an SRTM radar-shadow void) of ~1 % of the area, away from the edges."""
    rows, cols = np.mgrid[0:height, 0:width]
    r0 = rng.uniform(0.35, 0.65) * height
    c0 = rng.uniform(0.2, 0.45) * width
    radius = 0.06 * min(height, width)
    wobble = 1.0 + 0.25 * np.sin(3.0 * np.arctan2(rows - r0, cols - c0))
    return np.hypot(rows - r0, cols - c0) < radius * wobble


def _corner_mask(height: int, width: int) -> np.ndarray:
    """The imagery's no-data corner: a triangle cutting the top-right corner (a swath edge)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return (width - 1 - cols) + rows < 0.22 * min(height, width)


@dataclass(frozen=True)
class DemoScene:
    """The two files of a synthetic scene.

    Attributes:
        dem_path: float32 DEM GeoTIFF (``-9999`` nodata).
        rgb_path: uint8 RGB GeoTIFF (``0`` nodata plus an internal mask).
    """

    dem_path: Path
    rgb_path: Path

    def __iter__(self):
        """Unpack as ``dem_path, rgb_path = write_demo_scene(...)``."""
        return iter((self.dem_path, self.rgb_path))


def _profile(height: int, width: int, count: int, dtype: str, nodata: float, transform: Affine) -> dict:
    return dict(
        driver="GTiff",
        height=height,
        width=width,
        count=count,
        dtype=dtype,
        nodata=nodata,
        crs=DEMO_CRS,
        transform=transform,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=3 if dtype == "float32" else 2,
    )


def write_demo_scene(
    out_dir: str | os.PathLike,
    size: int = 1024,
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> DemoScene:
    """Write ``dem.tif`` and ``rgb.tif`` (``size``×``size``, EPSG:32613, 30 m) into ``out_dir``.

    The DEM holds a void blob (``-9999``); the imagery has a no-data corner
    (``0`` in every band plus an internal per-dataset mask).  Both files are
    written atomically.

    Raises:
        InputError: ``size`` below 32.
        OutputExistsError: a file exists and ``overwrite`` is False (checked before writing anything).

    Example:
        >>> dem_path, rgb_path = write_demo_scene("scene", size=256, seed=0)  # doctest: +SKIP
    """
    _check_shape(size, size)
    out = Path(out_dir)
    dem_path, rgb_path = out / "dem.tif", out / "rgb.tif"
    for path in (dem_path, rgb_path):
        check_output_free(path, overwrite)
    out.mkdir(parents=True, exist_ok=True)

    dem = make_terrain(size, size, seed)
    rgb = render_imagery(dem, DEMO_RESOLUTION, seed)
    rng = np.random.default_rng([int(seed), 0x0DA7])
    void = _void_mask(size, size, rng)
    corner = _corner_mask(size, size)
    dem_out = np.where(void, np.float32(DEM_NODATA), dem).astype(np.float32)
    rgb_out = np.where(corner[None], np.uint8(RGB_NODATA), rgb)
    transform = Affine(DEMO_RESOLUTION, 0.0, DEMO_ORIGIN[0], 0.0, -DEMO_RESOLUTION, DEMO_ORIGIN[1])

    with atomic_path(dem_path, overwrite=overwrite) as tmp:
        with rasterio.open(tmp, "w", **_profile(size, size, 1, "float32", DEM_NODATA, transform)) as dst:
            dst.write(dem_out, 1)
            dst.set_band_description(1, "elevation")
            dst.update_tags(1, units="m")
            dst.update_tags(SOURCE=f"geop2p.demo.scene.make_terrain(seed={seed})")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with atomic_path(rgb_path, overwrite=overwrite) as tmp:
            with rasterio.open(tmp, "w", **_profile(size, size, 3, "uint8", RGB_NODATA, transform)) as dst:
                dst.write(rgb_out)
                for i, name in enumerate(("red", "green", "blue"), start=1):
                    dst.set_band_description(i, name)
                dst.write_mask(np.where(corner, 0, 255).astype(np.uint8))
                dst.update_tags(SOURCE=f"geop2p.demo.scene.render_imagery(seed={seed})")
    logger.info("Wrote synthetic scene %s and %s (%d×%d px, EPSG:32613, 30 m)", dem_path, rgb_path, size, size)
    return DemoScene(dem_path, rgb_path)
