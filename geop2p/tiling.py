"""Sliding windows over a scene, grouped into row strips, and the weights that blend them.

This module is the geometry of whole-scene prediction; it does no I/O and never
imports torch.

Windows
    :func:`plan_windows` covers a ``height × width`` raster with square windows
    of ``window`` pixels stepping by ``window - overlap``.  Every window lies
    inside the raster: the last row/column of windows is shifted back so it ends
    exactly on the raster's edge (never past it, never dropped).  A scene
    smaller than one window in a dimension is reflect-padded up to the window
    (bottom/right) and the padding is cropped away from the output.

Strips
    Windows sharing a row offset form a *window row*; ``strip_rows`` consecutive
    window rows form a :class:`Strip`.  A strip knows which raster rows it must
    read (its rows plus the halo that its windows overlap into) and which output
    rows are final once it has been blended (``emit_row_off``/``emit_height``:
    every row above the next strip's first window).  Prediction therefore holds
    only a few strips in memory, whatever the scene's height.

Blending (Hann / cosine ramps)
    :func:`blend_weights` gives each window a separable weight
    ``w(y, x) = r(y) · r(x)``.  Along each side that overlaps a neighbour, ``r``
    rises over the ``overlap`` pixels as a half Hann window,
    ``sin²(π (i + ½) / (2·overlap))``, and is flat 1 in the interior.  Where two
    windows overlap by exactly ``overlap`` pixels one's rising ramp meets the
    other's falling ramp and ``sin² + cos² = 1``: the weights already sum to one,
    the result is a smooth cross-fade, and the pixels a network predicts worst
    (those near its window border, which saw the least context and the most zero
    padding) get the least weight.  Sides that lie on the raster's own edge get
    no ramp (weight 1), so the scene's border is not darkened.  Weights are
    floored (default ``1e-3``) so no pixel has zero total weight, and the
    blended sum is always divided by the summed weights, which keeps the result
    exact where overlaps are irregular (the shifted-back last window).

Example:
    >>> plan = plan_windows(150, 97, window=64, overlap=16)
    >>> plan.row_starts, plan.col_starts
    ((0, 48, 86), (0, 33))
    >>> [s.emit_height for s in plan.strips]
    [48, 38, 64]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rasterio.windows import Window

from geop2p.errors import ChipSizeError, InputError

__all__ = [
    "BLEND_KINDS",
    "DEFAULT_FLOOR",
    "Strip",
    "WindowPlan",
    "blend_weights",
    "check_overlap",
    "default_overlap",
    "pad_to_window",
    "plan_windows",
    "suggest_multiple",
    "window_starts",
]

DEFAULT_FLOOR = 1e-3
#: ``hann``: cosine ramps over the overlap (the default, seamless); ``none``: uniform
#: weights, i.e. plain averaging of overlapping windows (kept only so benchmarks
#: can show the seams that blending removes).
BLEND_KINDS = ("hann", "none")
BlendKind = Literal["hann", "none"]


def window_starts(size: int, window: int, overlap: int) -> tuple[int, ...]:
    """Offsets of windows of ``window`` pixels stepping by ``window - overlap`` over ``size`` pixels.

    The last window is shifted back to end exactly at ``size``; a size no larger
    than the window gives the single offset 0 (the scene is padded).

    Example:
        >>> window_starts(150, 64, 16)
        (0, 48, 86)
        >>> window_starts(20, 64, 16)
        (0,)
    """
    _check_window_overlap(window, overlap)
    if size <= window:
        return (0,)
    step = window - overlap
    starts = list(range(0, size - window + 1, step))
    if starts[-1] + window < size:
        starts.append(size - window)
    return tuple(starts)


def default_overlap(chip_size: int) -> int:
    """The overlap a model trained on ``chip_size`` px chips recommends: a quarter of the chip.

    A U-Net is least reliable within a few dozen pixels of a window's border,
    where its receptive field meets zero padding; a quarter of the chip covers
    that margin, whatever the window size used at prediction.

    Example:
        >>> default_overlap(256)
        64
    """
    return int(chip_size) // 4


def check_overlap(overlap: int, window: int, flag: str = "--overlap") -> int:
    """Return ``overlap`` if it is a whole number of pixels from 0 to half the ``window``; else raise.

    Windows that overlap by more than half their size would cover some pixels
    three times per axis, and the blending ramp spans at most half a window, so
    half is the largest useful overlap.

    Raises:
        InputError: naming the valid range and a good choice.

    Example:
        >>> check_overlap(16, 64)
        16
        >>> check_overlap(40, 64)
        Traceback (most recent call last):
        ...
        geop2p.errors.InputError: --overlap 40 is not a whole number of pixels from 0 to 32 (half the window of 64 px); a quarter of the window (16) is a good choice.
    """
    ok = isinstance(overlap, (int, np.integer)) and not isinstance(overlap, bool) or (
        isinstance(overlap, float) and overlap.is_integer()
    )
    if not ok or not 0 <= overlap <= window // 2:
        raise InputError(
            f"{flag} {overlap!r} is not a whole number of pixels from 0 to {window // 2} (half the window of "
            f"{window} px); a quarter of the window ({window // 4}) is a good choice."
        )
    return int(overlap)


def _check_window_overlap(window: int, overlap: int) -> None:
    if int(window) != window or window < 1:
        raise ChipSizeError(f"Window size must be a positive integer, got {window!r}.")
    check_overlap(overlap, int(window))


def _ramp(length: int, ramp: int, rise: bool, fall: bool, kind: str) -> np.ndarray:
    r = np.ones(length, dtype=np.float64)
    if kind == "hann" and ramp > 0:
        i = np.arange(ramp, dtype=np.float64)
        up = np.sin(np.pi * (i + 0.5) / (2 * ramp)) ** 2
        if rise:
            r[:ramp] *= up
        if fall:
            r[length - ramp :] *= up[::-1]
    return r


@functools.lru_cache(maxsize=64)
def _cached_weights(
    window: int, overlap: int, floor: float, top: bool, bottom: bool, left: bool, right: bool, kind: str
) -> np.ndarray:
    ramp = min(overlap, window // 2)
    ry = _ramp(window, ramp, not top, not bottom, kind)
    rx = _ramp(window, ramp, not left, not right, kind)
    w = np.maximum(np.outer(ry, rx), floor).astype(np.float32)
    w.setflags(write=False)
    return w


def blend_weights(
    window: int,
    overlap: int,
    *,
    floor: float = DEFAULT_FLOOR,
    top: bool = False,
    bottom: bool = False,
    left: bool = False,
    right: bool = False,
    kind: BlendKind = "hann",
) -> np.ndarray:
    """The ``(window, window)`` float32 blending weight of one window (read-only, cached).

    Args:
        window: the window size in pixels.
        overlap: pixels shared with each neighbour; the cosine ramp spans
            ``min(overlap, window // 2)`` pixels on each side.
        floor: the smallest weight (keeps every pixel's total weight positive).
        top, bottom, left, right: True where that side of the window lies on the
            raster's edge: no ramp there, so the raster's border keeps full weight.
        kind: ``"hann"`` (cosine ramps) or ``"none"`` (uniform weights, plain averaging).

    Example:
        >>> w = blend_weights(64, 16, top=True, left=True)
        >>> float(w[0, 0]), float(w[32, 32]), float(w[63, 63]) < 0.01
        (1.0, 1.0, True)
    """
    _check_window_overlap(window, overlap)
    if kind not in BLEND_KINDS:
        raise InputError(f"Unknown blend kind {kind!r}; valid kinds: {', '.join(BLEND_KINDS)}.")
    if not 0 < floor <= 1:
        raise InputError(f"Blend weight floor must be in (0, 1], got {floor!r}; 1e-3 is a good choice.")
    return _cached_weights(int(window), int(overlap), float(floor), top, bottom, left, right, kind)


def pad_to_window(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad the last two axes of ``array`` at the bottom/right up to ``height × width``.

    A dimension that is already large enough is left as it is.  A dimension of
    one pixel is edge-padded (reflection needs two).

    Example:
        >>> pad_to_window(np.arange(3.0)[None, None, :], 2, 5)[0]
        array([[0., 1., 2., 1., 0.],
               [0., 1., 2., 1., 0.]])
    """
    pad_h = max(0, height - array.shape[-2])
    pad_w = max(0, width - array.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return array
    lead = [(0, 0)] * (array.ndim - 2)
    if pad_h:
        mode = "reflect" if array.shape[-2] > 1 else "edge"
        array = np.pad(array, lead + [(0, pad_h), (0, 0)], mode=mode)
    if pad_w:
        mode = "reflect" if array.shape[-1] > 1 else "edge"
        array = np.pad(array, lead + [(0, 0), (0, pad_w)], mode=mode)
    return array


@dataclass(frozen=True)
class Strip:
    """A band of window rows processed together.

    Attributes:
        index: position of the strip in the plan.
        row_starts: row offsets of its window rows (in padded coordinates).
        read_row_off: first raster row its windows cover.
        read_height: number of rows its windows cover (padded coordinates).
        emit_row_off: first output row that becomes final after this strip (== ``read_row_off``).
        emit_height: number of output rows that become final (cropped to the real raster;
            0 is possible only inside padding).
    """

    index: int
    row_starts: tuple[int, ...]
    read_row_off: int
    read_height: int
    emit_row_off: int
    emit_height: int

    @property
    def read_row_end(self) -> int:
        """One past the last row the strip's windows cover (padded coordinates)."""
        return self.read_row_off + self.read_height


@dataclass(frozen=True)
class WindowPlan:
    """How a ``height × width`` raster is covered by windows and strips.

    Build it with :func:`plan_windows`.  Coordinates of windows and strips are in
    the *padded* raster (``padded_height × padded_width``), which equals the
    raster unless it is smaller than one window.

    Attributes:
        height, width: the raster's size.
        window: window size (square).
        overlap: nominal overlap between neighbouring windows.
        strip_rows: window rows per strip.
        row_starts, col_starts: window offsets along each axis.
    """

    height: int
    width: int
    window: int
    overlap: int
    strip_rows: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    @property
    def padded_height(self) -> int:
        """Height after reflect padding (``max(height, window)``)."""
        return max(self.height, self.window)

    @property
    def padded_width(self) -> int:
        """Width after reflect padding (``max(width, window)``)."""
        return max(self.width, self.window)

    @property
    def needs_padding(self) -> bool:
        """True when the raster is smaller than one window in either dimension."""
        return self.height < self.window or self.width < self.window

    @property
    def n_windows(self) -> int:
        """Total number of windows."""
        return len(self.row_starts) * len(self.col_starts)

    @property
    def strips(self) -> tuple[Strip, ...]:
        """The strips, top to bottom; their emitted rows tile ``[0, height)`` exactly once."""
        return _strips(self)

    def windows(self, strip: Strip) -> list[Window]:
        """The windows of ``strip``, row-major, in padded raster coordinates."""
        return [Window(c, r, self.window, self.window) for r in strip.row_starts for c in self.col_starts]

    def weights(self, window: Window, *, floor: float = DEFAULT_FLOOR, kind: BlendKind = "hann") -> np.ndarray:
        """The blending weight of ``window``: no ramp on the sides that touch the (padded) raster edge."""
        r, c = int(window.row_off), int(window.col_off)
        return blend_weights(
            self.window,
            self.overlap,
            floor=floor,
            top=r == 0,
            bottom=r + self.window >= self.padded_height,
            left=c == 0,
            right=c + self.window >= self.padded_width,
            kind=kind,
        )


@functools.lru_cache(maxsize=32)
def _strips(plan: WindowPlan) -> tuple[Strip, ...]:
    groups = [plan.row_starts[i : i + plan.strip_rows] for i in range(0, len(plan.row_starts), plan.strip_rows)]
    strips = []
    for i, rows in enumerate(groups):
        first = rows[0]
        read_end = rows[-1] + plan.window
        emit_end = groups[i + 1][0] if i + 1 < len(groups) else plan.padded_height
        emit_end = min(emit_end, plan.height)
        strips.append(
            Strip(
                index=i,
                row_starts=tuple(rows),
                read_row_off=first,
                read_height=read_end - first,
                emit_row_off=first,
                emit_height=max(0, emit_end - first),
            )
        )
    return tuple(strips)


def plan_windows(height: int, width: int, window: int, overlap: int, strip_rows: int = 1) -> WindowPlan:
    """Plan the windows and strips covering a ``height × width`` raster.

    Args:
        height, width: the raster's size in pixels.
        window: the (square) window size.
        overlap: pixels shared by neighbouring windows, ``0 <= overlap <= window // 2``.
        strip_rows: how many window rows form one strip (more rows: bigger
            reads and batches, more memory).

    Raises:
        InputError: for a non-positive size, an overlap outside ``[0, window // 2]`` or ``strip_rows < 1``.
        ChipSizeError: for a non-positive window.

    Example:
        >>> plan = plan_windows(20, 40, window=64, overlap=16)
        >>> plan.needs_padding, plan.n_windows, plan.strips[0].emit_height
        (True, 1, 20)
    """
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise InputError(f"A raster to tile needs a positive height and width, got {height}×{width}.")
    if int(strip_rows) != strip_rows or strip_rows < 1:
        raise InputError(f"strip_rows must be a positive integer, got {strip_rows!r}.")
    rows = window_starts(int(height), int(window), int(overlap))
    cols = window_starts(int(width), int(window), int(overlap))
    return WindowPlan(int(height), int(width), int(window), int(overlap), int(strip_rows), rows, cols)


def suggest_multiple(value: int, multiple: int = 32) -> int:
    """The nearest positive multiple of ``multiple`` to ``value`` (ties go up).

    Example:
        >>> suggest_multiple(200), suggest_multiple(10)
        (192, 32)
    """
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)
