"""Array validity and xarray DataArrays in and out (rioxarray georeferencing kept)."""

from __future__ import annotations

import numpy as np
import pytest

from geop2p.errors import InputError
from geop2p.predict.adapters import array_valid, predict_dataarray

ATOL = 1e-3


def test_array_valid_nodata_and_nan():
    a = np.array([[[1.0, -9999.0, np.nan, 4.0]], [[1.0, 2.0, 3.0, -9999.0]]], np.float32)
    assert array_valid(a, -9999.0).tolist() == [[True, False, False, False]]
    assert array_valid(a, None).tolist() == [[True, True, False, True]]
    assert array_valid(a, float("nan")).tolist() == [[True, True, False, True]]
    ints = np.array([[[0, 3]], [[5, 0]]], np.uint8)
    assert array_valid(ints, 0).tolist() == [[False, False]] and array_valid(ints, None).all()


def test_dataarray_round_trip_keeps_coords_and_crs(make_translator, scene):
    import rioxarray
    src = scene(150, 97, nodata=-9999)
    da = rioxarray.open_rasterio(src)
    t = make_translator(in_nodata=-9999, out_nodata=-9999)
    out = t.predict_dataarray(da)
    assert out.dims == ("band", "y", "x")
    np.testing.assert_array_equal(out.x.values, da.x.values)
    np.testing.assert_array_equal(out.y.values, da.y.values)
    assert out.rio.crs == da.rio.crs
    assert out.rio.transform() == da.rio.transform()
    assert out.rio.nodata == -9999
    assert tuple(out.attrs["long_name"]) == ("out_1", "out_2")
    np.testing.assert_allclose(out.values, da.values, atol=ATOL)


def test_dataarray_selects_bundle_bands_from_a_wider_array(make_translator, scene, rng):
    import rioxarray
    data = (rng.normal(size=(4, 40, 40)) * 100).astype(np.float32)
    da = rioxarray.open_rasterio(scene(data=data))
    out = make_translator(meta_bands=[3, 1]).predict_dataarray(da)
    np.testing.assert_allclose(out.values, data[[2, 0]], atol=ATOL)


def test_function_and_method_agree_and_nodata_holes_follow_the_array(make_translator, scene, rng):
    import rioxarray
    data = (rng.normal(size=(2, 50, 60)) * 100).astype(np.float32)
    data[1, 10:20, 10:20] = -5
    da = rioxarray.open_rasterio(scene(data=data, nodata=-5))
    t = make_translator()  # float target without nodata: holes are NaN
    out = predict_dataarray(t, da)
    np.testing.assert_array_equal(out.values, t.predict_dataarray(da).values)
    assert np.isnan(out.values[:, 10:20, 10:20]).all() and not np.isnan(out.values[:, 30:]).any()
    assert np.isnan(out.rio.nodata)


def test_dataarray_of_the_wrong_rank_is_refused(make_translator):
    import xarray as xr
    with pytest.raises(InputError, match=r"\(band, y, x\) or \(y, x\)"):
        make_translator().predict_dataarray(xr.DataArray(np.zeros((1, 2, 8, 8)), dims=("t", "band", "y", "x")))
