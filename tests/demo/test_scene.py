"""Tests of the synthetic terrain → imagery scene."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from geop2p.errors import InputError, OutputExistsError
from geop2p.demo.scene import (
    DEM_NODATA,
    hillshade,
    make_terrain,
    render_imagery,
    slope_degrees,
    write_demo_scene,
)


def test_terrain_is_deterministic_per_seed():
    a = make_terrain(64, 80, seed=3)
    b = make_terrain(64, 80, seed=3)
    c = make_terrain(64, 80, seed=4)
    assert a.dtype == np.float32 and a.shape == (64, 80)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 10.0
    assert 2399.0 < a.min() < a.max() < 4001.0


def test_imagery_is_deterministic_and_never_zero():
    dem = make_terrain(64, 64, seed=1)
    a = render_imagery(dem, 30.0, seed=1)
    np.testing.assert_array_equal(a, render_imagery(dem, 30.0, seed=1))
    assert a.shape == (3, 64, 64) and a.dtype == np.uint8
    assert a.min() >= 1  # 0 is reserved for nodata


def test_hillshade_and_slope_geometry():
    # a plane rising towards the east faces west: a north-west sun lights it more than an east-facing one
    cols = np.arange(16, dtype=float)
    rising_east = np.tile(cols * 10.0, (16, 1))  # faces west
    falling_east = rising_east[:, ::-1]  # faces east
    assert hillshade(rising_east, 30.0).mean() > hillshade(falling_east, 30.0).mean()
    assert slope_degrees(rising_east, 10.0)[8, 8] == pytest.approx(45.0)
    # north-facing slope (elevation grows southwards = with rows) is lit by a north-west sun
    rows = np.arange(16, dtype=float)[:, None]
    rising_south = np.tile(rows * 10.0, (1, 16))  # faces north
    assert hillshade(rising_south, 30.0).mean() > hillshade(rising_south[::-1], 30.0).mean()


def test_imagery_depends_on_neighbourhood_not_only_elevation():
    """Same elevation, different shading: a per-pixel map of elevation cannot reproduce the image."""
    dem = make_terrain(128, 128, seed=2).astype(np.float64)
    rgb = render_imagery(dem, 30.0, seed=2).astype(np.float64)
    x = np.stack([dem.ravel(), np.ones(dem.size)], axis=1)
    coef, *_ = np.linalg.lstsq(x, rgb.reshape(3, -1).T, rcond=None)
    residual = rgb.reshape(3, -1).T - x @ coef
    # the linear fit leaves most of the variance unexplained
    assert residual.var() > 0.5 * rgb.reshape(3, -1).T.var(axis=0).mean()


def test_write_demo_scene_georeferencing_and_nodata(tmp_path):
    dem_path, rgb_path = write_demo_scene(tmp_path / "scene", size=96, seed=5)
    with rasterio.open(dem_path) as dem, rasterio.open(rgb_path) as rgb:
        assert dem.crs.to_epsg() == 32613 and rgb.crs.to_epsg() == 32613
        expected = Affine(30.0, 0.0, 440000.0, 0.0, -30.0, 4480000.0)
        assert dem.transform == expected and rgb.transform == expected
        assert (dem.width, dem.height) == (96, 96) == (rgb.width, rgb.height)
        assert dem.dtypes == ("float32",) and rgb.dtypes == ("uint8",) * 3
        assert dem.nodata == DEM_NODATA and rgb.nodata == 0
        assert dem.descriptions == ("elevation",)
        assert rgb.descriptions == ("red", "green", "blue")
        d = dem.read(1)
        void = d == DEM_NODATA
        assert 0 < void.mean() < 0.1
        assert not dem.dataset_mask()[void].any()
        mask = rgb.dataset_mask()
        data = rgb.read()
        assert 0 < (mask == 0).mean() < 0.1
        assert mask[0, -1] == 0 and mask[-1, 0] == 255  # top-right corner is the hole
        assert (data[:, mask == 0] == 0).all() and (data[:, mask > 0] > 0).all()
        # the valid DEM is exactly the terrain the imagery was rendered from
        np.testing.assert_array_equal(d[~void], make_terrain(96, 96, 5)[~void])


def test_write_demo_scene_refuses_existing_then_overwrites(tmp_path):
    write_demo_scene(tmp_path, size=64, seed=0)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_demo_scene(tmp_path, size=64, seed=0)
    write_demo_scene(tmp_path, size=64, seed=1, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dem.tif", "rgb.tif"]


@pytest.mark.parametrize("size", [8, 31])
def test_too_small_scene_is_refused(tmp_path, size):
    with pytest.raises(InputError, match="at least 32"):
        write_demo_scene(tmp_path, size=size)
    assert not list(tmp_path.iterdir())


def test_render_refuses_bad_dem():
    with pytest.raises(InputError, match="2-D"):
        render_imagery(np.zeros((2, 64, 64)), 30.0)
    dem = make_terrain(64, 64, 0)
    dem[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        render_imagery(dem, 30.0)
