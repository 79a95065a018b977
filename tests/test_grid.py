"""GeoGrid: exact window transforms, bounds in another CRS, overlap windows, mismatch messages."""

from __future__ import annotations

import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geop2p.errors import GridMismatchError, InputError
from geop2p.grid import GeoGrid, format_bounds

UTM31 = CRS.from_epsg(32631)
T = Affine(10, 0, 500000, 0, -10, 5000000)


def test_slicing_transform_is_exact():
    g = GeoGrid(64, 64, T, UTM31)
    w = Window(17, 5, 32, 32)
    sub = g[w]
    assert sub.transform == window_transform(w, T)
    assert sub.shape == (32, 32) and sub.crs == UTM31
    assert g[5:37, 17:49] == sub


def test_slicing_needs_whole_pixels():
    with pytest.raises(InputError, match="whole-pixel"):
        GeoGrid(64, 64, T, UTM31)[Window(0, 0, 10.5, 3)]


def test_bad_shape():
    with pytest.raises(InputError, match="positive integer"):
        GeoGrid(0, 3, T, UTM31)


def test_bounds_and_dict_roundtrip():
    g = GeoGrid(4, 6, T, UTM31)
    assert tuple(g.bounds) == (500000, 4999960, 500060, 5000000)
    assert GeoGrid.from_dict(g.to_dict()) == g


def test_bounds_in_other_crs():
    g = GeoGrid(64, 64, T, UTM31)
    wgs = CRS.from_epsg(4326)
    got = g.bounds_in(wgs)
    ref = transform_bounds(UTM31, wgs, *g.bounds, densify_pts=21)
    assert tuple(got) == pytest.approx(ref, abs=1e-12)


def test_bounds_in_refuses_mixed_georeferencing():
    with pytest.raises(GridMismatchError, match="non-georeferenced"):
        GeoGrid(4, 4, T, UTM31).bounds_in(None)


def test_overlap_window():
    a = GeoGrid(64, 64, T, UTM31)
    b = GeoGrid(64, 64, Affine(10, 0, 500100, 0, -10, 5000000 - 200), UTM31)
    assert a.overlap_window(b) == Window(10, 20, 54, 44)
    far = GeoGrid(8, 8, Affine(10, 0, 600000, 0, -10, 5000000), UTM31)
    assert a.overlap_window(far) is None


def test_check_same_names_attribute():
    a = GeoGrid(64, 64, T, UTM31)
    with pytest.raises(GridMismatchError, match=r"shape differs: \(64, 64\) vs \(64, 65\)"):
        a.check_same(GeoGrid(64, 65, T, UTM31))
    with pytest.raises(GridMismatchError, match="CRS differs: EPSG:32631 vs EPSG:32632"):
        a.check_same(GeoGrid(64, 64, T, CRS.from_epsg(32632)))
    with pytest.raises(GridMismatchError, match="transform differs"):
        a.check_same(GeoGrid(64, 64, Affine(10, 0, 500001, 0, -10, 5000000), UTM31))
    a.check_same(GeoGrid(64, 64, T, UTM31))


def test_format_bounds():
    assert format_bounds((1, 2, 3, 4), UTM31) == "(1, 2, 3, 4) in EPSG:32631"


# ---------------------------------------------------------------------------------------------- antimeridian (issue 8)

WGS84 = CRS.from_epsg(4326)
UTM60S = CRS.from_epsg(32760)


def _utm60s_grid_across_180() -> GeoGrid:
    """About 180.07° ± 0.09° at 40° S: UTM 60S, 150 × 100 px of 100 m."""
    return GeoGrid(100, 150, Affine(100, 0, 755000, 0, -100, 5575000), UTM60S)


def test_bounds_across_the_antimeridian_stay_in_one_piece():
    left, bottom, right, top = _utm60s_grid_across_180().bounds_in(WGS84)
    assert 179.8 < left < 180 < right < 180.3 and right - left < 0.3  # rasterio alone gives left > right


def test_window_of_a_footprint_across_180_on_either_side_of_a_geographic_grid():
    utm = _utm60s_grid_across_180()
    east = GeoGrid(100, 200, Affine(0.002, 0, 179.9, 0, -0.002, -39.9), WGS84)  # 179.9° .. 180.3°
    west = GeoGrid(100, 200, Affine(0.002, 0, -180.1, 0, -0.002, -39.9), WGS84)  # -180.1° .. -179.7°
    for grid, meridian in ((east, 180.0), (west, -180.0)):
        window = grid.overlap_window(utm)
        assert window is not None and window.width > 80 and window.height > 40, grid
        left, _, right, _ = grid.window_bounds(window)
        assert left < meridian < right and right - left < 0.2, (left, right)  # the footprint, crossing 180°


def test_crses_proj_cannot_relate_are_one_grid_mismatch_error():
    local = CRS.from_wkt('LOCAL_CS["harbour survey grid",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]')
    with pytest.raises(GridMismatchError, match=r"in EPSG:32631: PROJ knows no way between the two CRSes.*gdalwarp"):
        GeoGrid(10, 10, Affine(1, 0, 0, 0, -1, 10), local).bounds_in(UTM31)
    assert "harbour survey grid" in format_bounds((0, 0, 1, 1), local)
