"""The numpy emulation of Deepness 0.6.5, pinned to what the plugin's own code did when run headless.

The expected numbers come from running the plugin's ``MapProcessorRegression``
inside QGIS 3.22 (the harness and runs recorded in /work/notes/issue11-results.md).
"""

from __future__ import annotations

import platform

import numpy as np
import pytest

from geop2p.onnx_export import DeepnessGrid, decode_layers, emulate_regression
from geop2p.onnx_export.emulate import preprocess
from geop2p.onnx_export.encoding import BandCode


def test_grid_pads_top_and_right_as_the_plugin_did():
    """150 x 110 px raster, tile 64, overlap 0: extended 192 x 128, 3 x 2 tiles, 18 rows on top, 42 columns right."""
    grid = DeepnessGrid(110, 150, 64, 0)
    assert (grid.img_x, grid.img_y, grid.bins_x, grid.bins_y) == (192, 128, 3, 2)
    assert (grid.missing_y, grid.missing_x) == (18, 42)
    assert DeepnessGrid(20, 30, 64, 16).bins_x == 1  # smaller than a tile: one tile, padded


def test_centre_crop_stitching_is_the_plugins():
    """A probe network returning (row, col) in the tile: tile 64, overlap 16 on 150 x 110 px.

    The plugin gave columns from tile columns 0..55 | 8..55 | 8..53 and rows from tile rows 2..55 | 8..63.
    """
    rows = np.broadcast_to(np.arange(64, dtype=np.float32)[:, None], (64, 64))

    def probe(batch):
        return [rows[None, None].copy(), rows.T[None, None].copy()]

    out = emulate_regression(probe, np.zeros((1, 110, 150), np.uint8), tile=64, overlap=16)
    row_src, col_src = out[0][:, 0], out[1][0]
    np.testing.assert_array_equal(col_src, np.r_[0:56, 8:56, 8:54])
    np.testing.assert_array_equal(row_src, np.r_[2:56, 8:64])
    index, where = DeepnessGrid(110, 150, 64, 16).source_of()
    np.testing.assert_array_equal(where[1][0], col_src)
    np.testing.assert_array_equal(where[0][:, 0], row_src)
    assert index[0, 0] == 0 and index[-1, -1] == 5


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="out-of-range float→uint8 casts are x86's")
def test_uint8_buffer_truncates_and_wraps_like_the_plugin():
    """The plugin's float_probe: 300.7 → 44, -5.2 → 251, 0.37 → 0 (a float32 GeoTIFF holding uint8 values)."""
    def constant(batch):
        return [np.full((1, 1, 64, 64), v, np.float32) for v in (300.7, -5.2, 0.37, np.nan)]

    out = emulate_regression(constant, np.zeros((1, 70, 70), np.float32), tile=64, overlap=0)
    assert out.dtype == np.uint8 and [int(out[k, 5, 5]) for k in range(4)] == [44, 251, 0, 0]
    floats = emulate_regression(constant, np.zeros((1, 70, 70), np.float32), 64, 0, float_buffer=True)
    assert floats.dtype == np.float32 and floats[0, 5, 5] == np.float32(300.7)


def test_off_raster_padding_is_the_layers_nodata_else_zero():
    seen = []

    def record(batch):
        seen.append(batch.copy())
        return [np.zeros((1, 1, 64, 64), np.float32)]

    raster = np.full((1, 50, 40), 100, np.uint8)
    emulate_regression(record, raster, 64, 0, layer_nodata=7)
    x = seen[-1][0, 0] * 255.0
    assert np.allclose(x[:14], 7) and np.allclose(x[14:, 40:], 7) and np.allclose(x[14:, :40], 100)
    emulate_regression(record, raster, 64, 0)
    assert np.allclose(seen[-1][0, 0][:14], 0)


def test_preprocessing_divides_by_255_in_float32_whatever_the_dtype():
    for dtype, value in ((np.uint8, 7), (np.int16, -9999), (np.float32, 300.25)):
        x = preprocess(np.full((1, 2, 2, 1), value, dtype))
        assert x.dtype == np.float32 and x.shape == (1, 1, 2, 2)
        assert abs(float(x[0, 0, 0, 0]) * 255.0 - value) <= abs(value) * 1e-6


def test_decode_layers_walks_the_planes_in_output_order():
    codes = [BandCode("a", "byte", 0.0, 255.0, nodata=0.0, planes=("a",)), BandCode.split16("b", 0.0, 65534.0)]
    layers = np.array([[[0, 9]], [[0, 1]], [[0, 2]]], np.uint8)
    np.testing.assert_array_equal(decode_layers(layers, codes), [[[np.nan, 9.0]], [[np.nan, 257.0]]])
