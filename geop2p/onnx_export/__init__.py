"""Export a geop2p model bundle to ONNX for the Deepness QGIS plugin (0.6.5) or any ONNX runtime.

Decided by what Deepness 0.6.5's **code** does (not its documentation):

* Its regression processor (model type ``Regressor``) writes every result into a
  **uint8** buffer and keeps only **channel 0 of each output**; its Superresolution
  processor also stitches into uint8, needs a scale factor of at least 2 in the
  dock and no overlap, and drops the last row and column.  So the graph has one
  ``(1, 1, N, N)`` output per byte *plane*: for a uint8 target, one per band
  (exact); for any other target two per band, the high and low byte of a 16-bit
  code over the band's output range, code 0 = nodata
  (:mod:`geop2p.onnx_export.encoding`).  ``geop2p export-onnx`` prints the
  QGIS Raster Calculator expression that decodes each band.
* Deepness feeds ``float32(value / 255)`` (standardisation written as the identity),
  so the graph multiplies by 255 and sees the raw values, whatever the layer's dtype.
* It does not mask nodata; the graph applies the Translator's rule itself: a pixel
  that is NaN or equal to the bundle's input nodata (baked in at export) in any band
  is set to 0 after normalising, and its outputs are marked nodata
  (:mod:`geop2p.onnx_export.graph`).
* The tile is fixed (input ``(1, C_in, N, N)``, batch 1); ``tile_size``,
  ``tiles_overlap`` (a whole percentage giving an even pixel count) and
  ``resolution`` apply only when the user presses "Load default parameters"
  (:mod:`geop2p.onnx_export.deepness`).

:mod:`geop2p.onnx_export.emulate` reproduces the plugin's tiling, stitching and
uint8 buffer in numpy, so an export can be checked against ``geop2p predict``
without QGIS.

Example:
    >>> from geop2p.onnx_export import export_onnx, OnnxExportConfig
    >>> result = export_onnx("run/model.safetensors", "model.onnx", OnnxExportConfig())  # doctest: +SKIP
    >>> [code.expression() for code in result.codes]  # doctest: +SKIP
"""

from __future__ import annotations

from geop2p.errors import MissingDependencyError
from geop2p.onnx_export.config import DEEPNESS_INPUT_SCALE, ENCODINGS, OnnxExportConfig
from geop2p.onnx_export.deepness import (
    DEEPNESS_MODEL_TYPE,
    bundle_resolution,
    deepness_metadata,
    deepness_overlap_px,
    overlap_percent,
)
from geop2p.onnx_export.emulate import DeepnessGrid, decode_layers, emulate_regression
from geop2p.onnx_export.encoding import BandCode, plan_band_codes
from geop2p.onnx_export.export import ExportPlan, OnnxExportResult, export_onnx, plan_export
from geop2p.onnx_export.graph import DeepnessGraph, NormalizedGenerator

__all__ = [
    "BandCode",
    "DEEPNESS_INPUT_SCALE",
    "DEEPNESS_MODEL_TYPE",
    "DeepnessGraph",
    "DeepnessGrid",
    "ENCODINGS",
    "ExportPlan",
    "MissingDependencyError",
    "NormalizedGenerator",
    "OnnxExportConfig",
    "OnnxExportResult",
    "bundle_resolution",
    "decode_layers",
    "deepness_metadata",
    "deepness_overlap_px",
    "emulate_regression",
    "export_onnx",
    "overlap_percent",
    "plan_band_codes",
    "plan_export",
]
