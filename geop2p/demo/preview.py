"""``preview.png``: input DEM | prediction | target side by side, with the held-out test chips outlined.

Example:
    >>> write_preview("preview.png", "scene/dem.tif", "prediction.tif", "scene/rgb.tif",
    ...               "chips/index.gpkg")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geop2p.io.atomic import atomic_path

__all__ = ["write_preview"]


def _read_rgb(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from geop2p.io.read import read_raster

    data, valid = read_raster(path)
    rgb = np.moveaxis(data[:3], 0, -1).astype(np.float32)
    if data.dtype != np.uint8:
        lo, hi = np.percentile(rgb[valid], [1, 99]) if valid.any() else (0.0, 1.0)
        rgb = (rgb - lo) / max(hi - lo, 1e-6) * 255.0
    return np.clip(rgb, 0, 255).astype(np.uint8), valid


def _shaded_dem(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The DEM as terrain-coloured shaded relief (H, W, 3) uint8, and its validity."""
    import matplotlib
    from matplotlib.colors import LightSource

    from geop2p.io.read import read_raster

    data, valid = read_raster(path, bands=[1])
    dem = data[0].astype(np.float64)
    fill = float(np.median(dem[valid])) if valid.any() else 0.0
    dem = np.where(valid, dem, fill)
    # a light from the north-east, unlike the target's north-west sun, so the input panel does not give it away
    light = LightSource(azdeg=45, altdeg=50)
    lo, hi = (np.percentile(dem[valid], [1, 99]) if valid.any() else (dem.min(), dem.max() + 1))
    shaded = light.shade(dem, cmap=matplotlib.colormaps["terrain"], vert_exag=2.0, blend_mode="soft",
                         vmin=lo, vmax=hi)
    return (shaded[..., :3] * 255).astype(np.uint8), valid


def _test_outlines(index_path: Path, transform) -> list[np.ndarray]:
    """Pixel-coordinate rings (x=col, y=row) outlining the union of the test chips."""
    if not index_path.is_file():
        return []
    import geopandas as gpd
    from shapely.ops import unary_union

    index = gpd.read_file(index_path, layer="chips") if "chips" in _layers(index_path) else gpd.read_file(index_path)
    test = index[index["split"] == "test"]
    if test.empty:
        return []
    merged = unary_union(list(test.geometry))
    polygons = list(getattr(merged, "geoms", [merged]))
    inverse = ~transform
    rings = []
    for poly in polygons:
        for ring in [poly.exterior, *poly.interiors]:
            x, y = np.asarray(ring.coords, dtype=np.float64).T[:2]
            cols = inverse.a * x + inverse.b * y + inverse.c
            rows = inverse.d * x + inverse.e * y + inverse.f
            rings.append(np.column_stack([cols, rows]))
    return rings


def _layers(path: Path) -> list[str]:
    import pyogrio

    return [name for name, _ in pyogrio.list_layers(path)]


def write_preview(
    path: str | os.PathLike,
    dem_path: str | os.PathLike,
    prediction_path: str | os.PathLike,
    target_path: str | os.PathLike,
    index_path: str | os.PathLike | None = None,
) -> Path:
    """Write a PNG of three panels — input DEM | prediction | target — with the test blocks outlined.

    Nodata is drawn in a neutral grey; test chips (``split == "test"`` in
    ``index.gpkg``) are outlined in yellow on every panel.

    Example:
        >>> write_preview("preview.png", "scene/dem.tif", "prediction.tif", "scene/rgb.tif",
        ...               "chips/index.gpkg")  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from geop2p.io.read import open_raster

    dem_rgb, dem_valid = _shaded_dem(Path(dem_path))
    pred_rgb, pred_valid = _read_rgb(Path(prediction_path))
    target_rgb, target_valid = _read_rgb(Path(target_path))
    with open_raster(dem_path) as src:
        transform = src.transform
    rings = _test_outlines(Path(index_path), transform) if index_path else []
    grey = np.array([128, 128, 128], dtype=np.uint8)

    fig = Figure(figsize=(15, 5.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    panels = [
        (dem_rgb, dem_valid, "Input: DEM (shaded relief)"),
        (pred_rgb, pred_valid, "geop2p prediction"),
        (target_rgb, target_valid, "Target: imagery"),
    ]
    for ax, (img, valid, title) in zip(axes, panels):
        shown = img.copy()
        shown[~valid] = grey
        ax.imshow(shown, interpolation="nearest")
        for ring in rings:
            ax.plot(ring[:, 0], ring[:, 1], color="yellow", linewidth=1.2)
        ax.set_title(title)
        ax.set_axis_off()
    if rings:
        fig.text(0.5, 0.02, "yellow: held-out test chips (never seen in training)", ha="center", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.06, wspace=0.03)
    out = Path(path)
    with atomic_path(out, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return out
