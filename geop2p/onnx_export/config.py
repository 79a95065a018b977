"""The options of ``geop2p export-onnx``: :class:`OnnxExportConfig` and the band encodings it may ask for.

Example:
    >>> OnnxExportConfig.from_dict({"tile_size": "256", "encoding": "split16"}).tile_size
    256
    >>> OnnxExportConfig(encoding="float16")
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: --deepness-encoding 'float16' is not one of auto, byte, split16, float; auto (byte for uint8 targets, split16 otherwise) suits Deepness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from geop2p.errors import ChipSizeError, ConfigError, InputError
from geop2p.schema import ConfigSchema

__all__ = ["DEEPNESS_INPUT_SCALE", "ENCODINGS", "OnnxExportConfig"]

#: Deepness divides every layer value by this before feeding the network (``normalize_values_to_01``).
DEEPNESS_INPUT_SCALE = 255.0

#: How each target band leaves the graph (see :mod:`geop2p.onnx_export.encoding`):
#:
#: * ``auto``: ``byte`` for a uint8 target, ``split16`` for any other;
#: * ``byte``: one ``(1, 1, N, N)`` output per band, whole numbers 0..255 (exact through Deepness's uint8 buffer);
#: * ``split16``: two outputs per band, the high and low byte of a 16-bit code over the band's output range,
#:   code 0 = nodata;
#: * ``float``: one ``(1, C, N, N)`` float32 output in the target's units, for ONNX consumers other than
#:   Deepness (Deepness would keep only its first channel and truncate it to a byte).
ENCODINGS: tuple[str, ...] = ("auto", "byte", "split16", "float")


@dataclass(frozen=True)
class OnnxExportConfig(ConfigSchema):
    """Options of :func:`~geop2p.onnx_export.export_onnx`.

    Attributes:
        tile_size: side of the fixed square input in pixels; ``None`` = the bundle's chip size.
            Must be a multiple of the generator's divisor (32 for an smp U-Net).
        overlap: overlap between Deepness tiles in pixels, even, 0 to half the tile, written as
            Deepness's ``tiles_overlap`` percentage; ``None`` = the bundle's ``recommended_overlap``.
        opset: ONNX opset version (11 or later: the graph rounds).
        input_scale: the graph multiplies its input by this before normalising;
            255 matches Deepness (which divides pixel values by 255), 1 feeds raw values.
        resolution_m: pixel size the model was trained at, in metres (written in cm for
            Deepness); ``None`` = taken from the bundle if it records one, else left out.
        encoding: how target bands leave the graph, one of :data:`ENCODINGS`.
        input_nodata: raw input values the graph treats as nodata (besides NaN, always);
            ``None`` = the bundle's input nodata. Add 0 when the layers have no nodata value and 0
            is never valid data: Deepness pads tiles past the raster's edge with 0 then.

    Example:
        >>> OnnxExportConfig(tile_size=256, overlap=64).opset
        17
        >>> OnnxExportConfig(input_nodata="-9999,0").input_nodata
        (-9999.0, 0.0)
    """

    what: ClassVar[str] = "ONNX export option"

    tile_size: int | None = None
    overlap: int | None = None
    opset: int = 17
    input_scale: float = DEEPNESS_INPUT_SCALE
    resolution_m: float | None = None
    encoding: str = "auto"
    input_nodata: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self.coerce_fields()
        if self.tile_size is not None and self.tile_size < 1:
            raise ChipSizeError(f"--tile-size must be a positive whole number of pixels, got {self.tile_size}.")
        if self.overlap is not None and self.overlap < 0:
            raise InputError(f"--overlap must be a whole number of pixels >= 0, got {self.overlap}.")
        if not 11 <= self.opset <= 23:
            raise InputError(f"--opset must be between 11 and 23 (17 is a safe choice), got {self.opset}.")
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise InputError(
                f"input_scale must be a positive number (255 for Deepness, 1 for raw values), got {self.input_scale}."
            )
        if self.resolution_m is not None and not (math.isfinite(self.resolution_m) and self.resolution_m > 0):
            raise InputError(f"--resolution must be a positive pixel size in metres, got {self.resolution_m}.")
        if self.encoding not in ENCODINGS:
            raise ConfigError(
                f"--deepness-encoding {self.encoding!r} is not one of {', '.join(ENCODINGS)}; "
                "auto (byte for uint8 targets, split16 otherwise) suits Deepness."
            )
        if self.input_nodata is not None and any(math.isinf(v) for v in self.input_nodata):
            raise InputError(
                f"--input-nodata {list(self.input_nodata)} holds an infinite value; give finite numbers "
                "(NaN input pixels are always nodata)."
            )
