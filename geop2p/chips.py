"""Chip geometry: the size/stride/valid-fraction spec and the windows that tile a grid.

Pure functions, no I/O.  Windows tile a region of a grid row by row; the last
row and column of windows are shifted back so that they end exactly on the
region's edge: a window never reaches past the edge and no strip of the region
is silently dropped.

Example:
    >>> spec = ChipSpec(size=64, stride=64)
    >>> [(w.row_off, w.col_off) for w in chip_windows(100, 128, spec)]
    [(0, 0), (0, 64), (36, 0), (36, 64)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rasterio.windows import Window

from geop2p.errors import ChipSizeError, InputError, SizeMultipleError
from geop2p.errors import nearest_multiple as _nearest_multiple

__all__ = ["ChipSpec", "chip_windows", "chip_id", "nearest_multiple", "SIZE_MULTIPLE", "MAX_CHIP_SIZE", "MAX_PIXELS"]

#: Chip sizes must be multiples of this (a U-Net halves the chip five times).
SIZE_MULTIPLE = 32
#: The largest chip edge: an 8192² chip of 4 float32 bands is already 1 GiB, far more than one training
#: sample can use (pix2pix trains on 256-1024 px).
MAX_CHIP_SIZE = 8192
#: The largest pixel count any offset, stride or distance may have: what GDAL's int32 windows can address.
MAX_PIXELS = 2**31 - 1


def nearest_multiple(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    """The multiple of ``multiple`` nearest to ``value`` (at least ``multiple``; ties round up).

    :func:`geop2p.errors.nearest_multiple` with the chip size's divisor, 32, as default.

    Example:
        >>> nearest_multiple(250), nearest_multiple(10), nearest_multiple(100, 64)
        (256, 32, 128)
    """
    return _nearest_multiple(value, multiple)


@dataclass(frozen=True)
class ChipSpec:
    """How chips are cut: ``size`` × ``size`` pixels every ``stride`` pixels, kept when ``min_valid`` of them are valid.

    Attributes:
        size: chip edge in pixels, a positive multiple of 32, at most :data:`MAX_CHIP_SIZE`.
        stride: step between chip origins in pixels (default: ``size``, no overlap), at most :data:`MAX_PIXELS`.
        min_valid: smallest fraction of valid pixels (0 < min_valid <= 1) a chip needs to be kept.

    Example:
        >>> ChipSpec(256).stride
        256
        >>> ChipSpec(250)
        Traceback (most recent call last):
        ...
        geop2p.errors.SizeMultipleError: Chip size 250 is not a multiple of 32 (the U-Net halves it 5 times); use --size 256.
    """

    size: int = 256
    stride: int | None = None
    min_valid: float = 0.95

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int) and not (isinstance(size, float) and size.is_integer()):
            raise ChipSizeError(f"Chip size must be a whole number of pixels, got {size!r}; use e.g. --size 256.")
        size = int(size)
        if size > MAX_CHIP_SIZE:
            raise ChipSizeError(
                f"Chip size {size} is larger than the largest chip geop2p cuts, {MAX_CHIP_SIZE} px; "
                "pix2pix trains on chips of 256 to 1024 px: use e.g. --size 256."
            )
        if size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
            raise SizeMultipleError(size, SIZE_MULTIPLE, "--size", "Chip size", "the U-Net halves it 5 times")
        object.__setattr__(self, "size", size)
        stride = size if self.stride is None else self.stride
        if (isinstance(stride, bool) or not isinstance(stride, (int, float)) or not math.isfinite(stride)
                or not float(stride).is_integer() or not 0 < stride <= MAX_PIXELS):
            raise InputError(
                f"Stride must be a positive whole number of pixels (at most {MAX_PIXELS}), got {stride!r}; "
                f"use --stride {size} for chips side by side or --stride {size // 2} for half overlap."
            )
        object.__setattr__(self, "stride", int(stride))
        mv = self.min_valid
        if isinstance(mv, bool) or not isinstance(mv, (int, float)) or not (0.0 < float(mv) <= 1.0):
            raise InputError(
                f"min_valid must be a fraction in (0, 1], got {mv!r}; use e.g. --min-valid 0.95 "
                "(keep chips with at least 95% valid pixels)."
            )
        object.__setattr__(self, "min_valid", float(mv))

    def to_dict(self) -> dict:
        """``{"size", "stride", "min_valid"}`` as in the chip manifest."""
        return {"size": self.size, "stride": self.stride, "min_valid": self.min_valid}


def chip_id(window: Window) -> str:
    """The id of the chip at ``window``: ``"{row_off:06d}_{col_off:06d}"``.

    Example:
        >>> chip_id(Window(256, 512, 256, 256))
        '000512_000256'
    """
    return f"{int(window.row_off):06d}_{int(window.col_off):06d}"


def _offsets(start: int, length: int, size: int, stride: int) -> list[int]:
    last = start + length - size
    offs = list(range(start, last + 1, stride))
    if offs[-1] != last:
        offs.append(last)
    return offs


def chip_windows(
    height: int, width: int, spec: ChipSpec, region: Window | None = None, what: str = "the area to tile"
) -> list[Window]:
    """Windows of ``spec.size`` pixels tiling ``region`` (default: the whole ``height`` × ``width`` grid).

    Windows are in row-major order.  Along each axis they start at the region's
    start and step by ``spec.stride``; the last one is shifted back to end on
    the region's edge, so the whole region is covered and no window leaves it.

    Args:
        height: grid height in pixels.
        width: grid width in pixels.
        spec: chip size and stride.
        region: whole-pixel window of the grid to tile (clipped to the grid).
        what: how error messages name the region (e.g. "the overlap of input and target").

    Raises:
        ChipSizeError: when the region is smaller than one chip.

    Example:
        >>> ws = chip_windows(64, 96, ChipSpec(64), Window(0, 0, 96, 64))
        >>> [(w.col_off, w.width) for w in ws]
        [(0, 64), (32, 64)]
    """
    if region is None:
        region = Window(0, 0, width, height)
    row0 = max(0, int(region.row_off))
    col0 = max(0, int(region.col_off))
    row1 = min(height, int(region.row_off + region.height))
    col1 = min(width, int(region.col_off + region.width))
    rh, rw = row1 - row0, col1 - col0
    size = spec.size
    if rh < size or rw < size:
        largest = (min(rh, rw) // SIZE_MULTIPLE) * SIZE_MULTIPLE
        hint = f"use --size {largest} or smaller" if largest >= SIZE_MULTIPLE else "use larger rasters"
        raise ChipSizeError(
            f"Chips of {size}×{size} pixels do not fit in {what}, which is {max(rh, 0)}×{max(rw, 0)} pixels "
            f"(rows×columns); {hint}."
        )
    rows = _offsets(row0, rh, size, spec.stride)
    cols = _offsets(col0, rw, size, spec.stride)
    return [Window(c, r, size, size) for r in rows for c in cols]
