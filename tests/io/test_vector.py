"""AOI reading: reprojection, clear errors for missing/unreadable/outside."""

from __future__ import annotations

import pytest
from rasterio.windows import Window

from geop2p.errors import NoOverlapError, VectorReadError
from geop2p.grid import GeoGrid
from geop2p.io.vector import aoi_window, check_aoi_overlap, read_aoi
from tests.fixtures.export import ORIGIN, UTM31

GRID = GeoGrid(128, 128, ORIGIN, UTM31)


def test_reprojected_to_raster_crs(aoi_files):
    aoi = read_aoi(aoi_files.inside, UTM31)
    left, bottom, right, top = aoi.bounds
    assert left == pytest.approx(499980, abs=0.5) and top == pytest.approx(5000020, abs=0.5)
    assert right == pytest.approx(500660, abs=0.5) and bottom == pytest.approx(4999340, abs=0.5)
    check_aoi_overlap(aoi, GRID, aoi_files.inside)
    assert aoi_window(aoi, GRID) == Window(0, 0, 66, 66)


def test_outside_names_bounds(aoi_files):
    aoi = read_aoi(aoi_files.outside, UTM31)
    with pytest.raises(NoOverlapError, match=r"does not overlap the rasters \(500000, .*EPSG:32631"):
        check_aoi_overlap(aoi, GRID, aoi_files.outside)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(VectorReadError, match="not found"):
        read_aoi(tmp_path / "nope.gpkg", UTM31)
    bad = tmp_path / "bad.gpkg"
    bad.write_text("garbage")
    with pytest.raises(VectorReadError, match="Cannot read AOI"):
        read_aoi(bad, UTM31)


def test_points_are_not_an_area(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    p = tmp_path / "pts.geojson"
    gpd.GeoDataFrame(geometry=[Point(500100, 4999900)], crs=UTM31).to_file(p, driver="GeoJSON")
    with pytest.raises(VectorReadError, match="no polygons"):
        read_aoi(p, UTM31)


def test_a_table_without_geometries_is_one_error(tmp_path):
    """issue 8, case 9: an AOI given as .csv (geopandas reads it as a DataFrame) was an AttributeError."""
    table = tmp_path / "aoi.csv"
    table.write_text("name,area\nfield,2\n")
    with pytest.raises(VectorReadError, match=r"holds a table without geometries \(columns: name, area\)"):
        read_aoi(table, UTM31)


def test_a_csv_with_wkt_polygons_is_an_aoi(tmp_path):
    table = tmp_path / "aoi.csv"
    table.write_text('WKT,name\n"POLYGON((500000 5000000,500300 5000000,500300 4999700,500000 5000000))",a\n')
    assert read_aoi(table, UTM31).area == pytest.approx(45000)
