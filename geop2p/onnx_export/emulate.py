"""What Deepness 0.6.5's regression processor does to a raster, in numpy (no QGIS, no torch).

Written from the plugin's code (``src/deepness/processing/``), for a layer
processed at its native pixel size with "Processed area mask: Entire layer"
(no resampling), so an exported model can be checked without QGIS:

1. **Grid** (``extent_utils.py:43-105``, ``map_processor.py:85-98``): stride
   ``S = T - O``; the extent grows by ``missing`` pixels so that it is
   ``T + k·S`` wide and high, on the **right** (east) and on the **top**
   (north).  Tiles start at the extended extent's top-left, row-major.
2. **Tiles** (``processing_utils.py:60-161``): ``T × T`` per band in the
   layer's dtype; pixels off the raster hold the layer's nodata value, or 0
   when it has none.
3. **Network input** (``model_base.py:391-414``): NHWC → ``np.float32(x * 1. / 255.)``
   → ``(x - mean) / std`` (float32) → NCHW.
4. **Outputs** (``map_processor_regression.py:155-174``): NaN → 0,
   ``× output_scaling``, float32, channel 0 of each output.
5. **Stitching** (``tile_params.py:89-171``): each tile copies its centre, less
   ``O // 2`` on each side except on the outer edges, into a **uint8** buffer
   (``map_processor.py:181-191``; numpy's cast truncates and wraps).
6. **Crop** (``map_processor.py:164-179``, ``extent_utils.py:187-219``): the
   raster's rows are the last ``H`` of the extended image, its columns the first ``W``.

Example:
    >>> import numpy as np
    >>> grid = DeepnessGrid(110, 150, tile=64, overlap=0)  # the plugin measured: 18 rows on top, 42 columns right
    >>> (grid.stride, grid.missing_y, grid.missing_x, grid.bins_y, grid.bins_x)
    (64, 18, 42, 2, 3)
    >>> echo = lambda batch: [np.round(batch[:, :1] * 255.0)]  # a "network" returning its input
    >>> raster = np.arange(110 * 150, dtype=np.float32).reshape(1, 110, 150) % 200
    >>> out = emulate_regression(echo, raster, tile=64, overlap=16)
    >>> out.dtype, out.shape, bool(np.array_equal(out[0], raster[0].astype(np.uint8)))
    (dtype('uint8'), (1, 110, 150), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from geop2p.onnx_export.encoding import BandCode

__all__ = ["DeepnessGrid", "decode_layers", "emulate_regression", "preprocess"]

#: ``run(batch)``: ``(B, C_in, T, T)`` float32 → the list of ONNX outputs, ``(B, c, T, T)`` or ``(B, T, T)`` each
Run = Callable[[np.ndarray], Sequence[np.ndarray]]


@dataclass(frozen=True)
class DeepnessGrid:
    """Deepness's tile grid over a ``height × width`` raster ("Entire layer", native resolution).

    Attributes:
        height, width: the raster's size in pixels.
        tile: the tile side ``T``.
        overlap: the overlap ``O`` in pixels.
    """

    height: int
    width: int
    tile: int
    overlap: int

    @property
    def stride(self) -> int:
        """``T - O``."""
        return self.tile - self.overlap

    def _missing(self, size: int) -> int:
        if size <= self.tile:
            return self.tile - size
        return (self.stride - (size - self.tile) % self.stride) % self.stride

    @property
    def missing_x(self) -> int:
        """Padding columns on the right (east)."""
        return self._missing(self.width)

    @property
    def missing_y(self) -> int:
        """Padding rows on the top (north)."""
        return self._missing(self.height)

    @property
    def img_x(self) -> int:
        """Width of the extended image."""
        return self.width + self.missing_x

    @property
    def img_y(self) -> int:
        """Height of the extended image."""
        return self.height + self.missing_y

    @property
    def bins_x(self) -> int:
        """Tiles per row (``round((img_x - T) / S) + 1``)."""
        return round((self.img_x - self.tile) / self.stride) + 1

    @property
    def bins_y(self) -> int:
        """Tiles per column."""
        return round((self.img_y - self.tile) / self.stride) + 1

    def tiles(self) -> list[tuple[int, int]]:
        """``(y_bin, x_bin)`` in processing order (row-major, y outer)."""
        return [(yb, xb) for yb in range(self.bins_y) for xb in range(self.bins_x)]

    def copy_slices(self, y_bin: int, x_bin: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """``(rows, cols)`` on the extended image and on the tile that this tile's result fills.

        ``TileParams.get_slice_on_full_image_for_copying`` with ``tile_offset`` 0.
        """
        half = max((self.tile - self.stride) // 2, 0)
        y0, x0 = y_bin * self.stride, x_bin * self.stride
        y_min, y_max = y0 + half, y0 + self.tile - half - 1
        x_min, x_max = x0 + half, x0 + self.tile - half - 1
        if x_bin == 0:
            x_min -= half
        if y_bin == 0:
            y_min -= half
        if x_bin == self.bins_x - 1:
            x_max += half
        if y_bin == self.bins_y - 1:
            y_max += half
        full = (slice(y_min, y_max + 1), slice(x_min, x_max + 1))
        local = (slice(y_min - y0, y_max + 1 - y0), slice(x_min - x0, x_max + 1 - x0))
        return full, local

    def source_of(self) -> tuple[np.ndarray, np.ndarray]:
        """Per raster pixel, which tile wrote it: ``(tile_index, (row, col) in that tile)`` as arrays.

        ``tile_index`` is ``(H, W)`` int; the second array is ``(2, H, W)`` positions inside the tile.
        """
        index = np.full((self.img_y, self.img_x), -1, np.int64)
        where = np.zeros((2, self.img_y, self.img_x), np.int64)
        for k, (yb, xb) in enumerate(self.tiles()):
            (fr, fc), (tr, tc) = self.copy_slices(yb, xb)
            index[fr, fc] = k
            rows = np.arange(tr.start, tr.stop)[:, None]
            cols = np.arange(tc.start, tc.stop)[None, :]
            where[0, fr, fc] = rows
            where[1, fr, fc] = cols
        r0 = self.img_y - self.height
        return index[r0:, : self.width], where[:, r0:, : self.width]


def preprocess(tiles_nhwc: np.ndarray, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
    """``ModelBase.preprocessing``: channels kept, ``/ 255`` to float32, standardised, NHWC → NCHW.

    Example:
        >>> preprocess(np.full((1, 2, 2, 1), 255, np.uint8))[0, 0].tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    c = tiles_nhwc.shape[-1]
    mean_ = np.array(mean if mean is not None else [0.0] * c, dtype=np.float32)
    std_ = np.array(std if std is not None else [1.0] * c, dtype=np.float32)
    x = np.float32(tiles_nhwc * 1.0 / 255.0)
    x = (x - mean_) / std_
    return np.transpose(x, (0, 3, 1, 2))


def emulate_regression(
    run: Run,
    raster: np.ndarray,
    tile: int,
    overlap: int,
    layer_nodata: float | None = None,
    output_scaling: float = 1.0,
    float_buffer: bool = False,
) -> np.ndarray:
    """Run ``run`` over ``raster`` the way Deepness's ``MapProcessorRegression`` does.

    Args:
        run: the network, e.g. ``lambda x: session.run(None, {"input": x})`` of an onnxruntime session.
        raster: ``(bands, H, W)`` in the layer's dtype, bands in the order Deepness feeds them.
        tile: the model's fixed tile side.
        overlap: Deepness's overlap in pixels (``floor(tile · pct / 100)``).
        layer_nodata: the layer's nodata value: what off-raster pixels hold (0 when None).
        output_scaling: "Output scaling" of the Regression parameters (1.0 when loaded from geop2p's metadata).
        float_buffer: stitch into float32 instead of Deepness's uint8 (a diagnostic, not what Deepness does).

    Returns:
        ``(n_outputs, H, W)``: uint8 (float32 with ``float_buffer``), one layer per output.
    """
    raster = np.asarray(raster)
    bands, height, width = raster.shape
    grid = DeepnessGrid(height, width, tile, overlap)
    pad = 0 if layer_nodata is None else layer_nodata
    ext = np.full((bands, grid.img_y, grid.img_x), pad, dtype=raster.dtype)
    r0 = grid.img_y - height
    ext[:, r0:, :width] = raster
    full: np.ndarray | None = None
    for yb, xb in grid.tiles():
        y0, x0 = yb * grid.stride, xb * grid.stride
        tile_nhwc = np.transpose(ext[:, y0 : y0 + tile, x0 : x0 + tile], (1, 2, 0))[None]
        outputs = run(preprocess(tile_nhwc))
        planes = []
        for result in outputs:
            result = np.array(result)
            result[np.isnan(result)] = 0
            result *= output_scaling
            result = result.astype(np.float32)
            if result.ndim == 3:
                result = result[:, None]
            planes.append(result[:, 0])
        tile_result = np.array(planes).transpose((1, 0, 2, 3))[0]
        if full is None:
            full = np.zeros((len(planes), grid.img_y, grid.img_x), np.float32 if float_buffer else np.uint8)
        (fr, fc), (tr, tc) = grid.copy_slices(yb, xb)
        full[:, fr, fc] = tile_result[:, tr, tc]
    assert full is not None
    return full[:, r0:, :width]


def decode_layers(layers: np.ndarray, codes: Sequence[BandCode]) -> np.ndarray:
    """Deepness's layers (one per plane, in output order) → ``(bands, H, W)`` float64 in target units, NaN = nodata.

    Example:
        >>> code = BandCode.split16("h", 0.0, 65534.0)
        >>> decode_layers(np.array([[[0, 1]], [[0, 0]]], np.uint8), [code]).tolist()
        [[[nan, 255.0]]]
    """
    out, k = [], 0
    for code in codes:
        n = len(code.planes)
        out.append(code.decode([layers[k + i] for i in range(n)]))
        k += n
    return np.stack(out)
