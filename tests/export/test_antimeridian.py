"""Rasters crossing the antimeridian (issue 8, case 7): every chip kept, every target pixel where it belongs.

The targets hold a linear function of their own coordinates, so bilinear
resampling must reproduce it exactly (up to float32 and GDAL's kernel at
the edges): each exported target pixel is compared with the function at the
pixel's position, computed with pyproj.  Longitudes past 180° are how GDAL
(and QGIS) write geographic rasters that cross the antimeridian.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from geop2p.export import ExportConfig, export_chips
from tests.conftest import write_raster

WGS84 = CRS.from_epsg(4326)
CONFIG = ExportConfig(size=32, min_valid=0.5, block_size=64, buffer=0)


def _projected_ramp(x, y):
    return (1e-3 * (x - 600000.0) + 2e-3 * (y - 5.5e6)).astype(np.float32)


def _geographic_ramp(lon, lat):
    return (10.0 * (lon - 180.0) + 5.0 * (lat + 40.0)).astype(np.float32)


def _centres(t: Affine, height: int, width: int):
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return t.c + t.a * cols + t.b * rows, t.f + t.d * cols + t.e * rows


def _worst_target_error(out: Path, expected) -> tuple[float, int]:
    """Largest |chip - expected| over valid target pixels, and how many target chips there are."""
    worst, chips = 0.0, sorted((out / "target").glob("*.tif"))
    for p in chips:
        with rasterio.open(p) as src:
            data, valid, t = src.read(1), src.dataset_mask() > 0, src.transform
        assert valid.all(), p  # no pixel east of 180° read as missing
        worst = max(worst, float(np.abs(data - expected(*_centres(t, 32, 32)))[valid].max()))
    return worst, len(chips)


@pytest.mark.parametrize("target_crs, west", [(32760, 179.87), (3832, 179.87), (32760, -180.13)])
def test_geographic_input_across_180_with_a_projected_target(target_crs, west, tmp_path):
    """The input runs from 179.87° to 180.126° (or from -180.13° to -179.874°), the target is UTM 60S or 3832."""
    crs = CRS.from_epsg(target_crs)
    inp = write_raster(tmp_path / "geo.tif", np.ones((1, 96, 128), np.float32),
                       Affine(0.002, 0, west, 0, -0.002, -39.9), WGS84)
    to_target = Transformer.from_crs(WGS84, crs, always_xy=True)
    xs, ys = to_target.transform([179.8, 180.2, 179.8, 180.2], [-40.15, -40.15, -39.85, -39.85])
    t = Affine(100.0, 0, min(xs), 0, -100.0, max(ys))
    h, w = int((max(ys) - min(ys)) / 100), int((max(xs) - min(xs)) / 100)
    tgt = write_raster(tmp_path / "projected.tif", _projected_ramp(*_centres(t, h, w))[None], t, crs, nodata=-9999.0)
    summary = export_chips(inp, tgt, tmp_path / "chips", CONFIG)
    assert summary.total == 12 and summary.low_valid == 0

    def expected(lon, lat):
        return _projected_ramp(*map(np.asarray, to_target.transform(lon, lat)))

    worst, n = _worst_target_error(tmp_path / "chips", expected)
    assert n == 12 and worst < 0.05


def test_projected_input_with_a_geographic_target_running_past_180(tmp_path):
    utm = CRS.from_epsg(32760)
    to_utm = Transformer.from_crs(WGS84, utm, always_xy=True)
    xs, ys = to_utm.transform([179.93, 180.13], [-40.04, -39.96])
    t = Affine(50.0, 0, min(xs), 0, -50.0, max(ys))
    inp = write_raster(tmp_path / "utm.tif", np.ones((1, 160, 320), np.float32), t, utm)
    gt = Affine(0.001, 0, 179.9, 0, -0.001, -39.9)  # 179.9° to 180.16°, as the target
    tgt = write_raster(tmp_path / "geo.tif", _geographic_ramp(*_centres(gt, 200, 260))[None], gt, WGS84,
                       nodata=-9999.0)
    summary = export_chips(inp, tgt, tmp_path / "chips", CONFIG)
    assert summary.total == 50 and summary.low_valid == 0  # 5 × 10 chips, none lost east of 180°
    to_geo = Transformer.from_crs(utm, WGS84, always_xy=True)

    def expected(x, y):
        lon, lat = map(np.asarray, to_geo.transform(x, y))
        return _geographic_ramp(np.mod(lon, 360.0), lat)

    worst, n = _worst_target_error(tmp_path / "chips", expected)
    assert n == 50 and worst < 1e-3
