"""Everything an export decides before it writes anything: :class:`ExportPlan` and :func:`plan_export`.

The plan opens the sources (checking that they exist, are readable rasters
and hold the bands asked for), aligns the target on the input grid, reads the
AOI, tiles the overlap into chip windows and splits them; any problem is a
:class:`~geop2p.errors.Geop2pError` raised here, so a bad export never creates
its output folder.  ``geop2p export-chips --dry-run`` prints a plan's counts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rasterio.windows import Window

from geop2p.chips import chip_windows
from geop2p.errors import ChipSizeError
from geop2p.export.config import ExportConfig
from geop2p.grid import GeoGrid
from geop2p.io.sources import Alignment, RasterStack, open_stack, plan_alignment
from geop2p.io.vector import aoi_window, check_aoi_overlap, read_aoi
from geop2p.split import SPLITS, Split, assign_splits

__all__ = ["ExportPlan", "Sources", "plan_export"]

log = logging.getLogger(__name__)

#: One or more rasters: a path, comma-joined paths, or a list of paths (bands stacked in order).
Sources = str | os.PathLike | Sequence[str | os.PathLike]


@dataclass(frozen=True)
class ExportPlan:
    """Everything decided before any output is written: sources, alignment, chip windows and their splits.

    Attributes:
        input: the input stack.
        target: the target stack.
        alignment: how the target is read on the input grid, and the overlap region.
        windows: chip windows (input grid), row-major, before the split's buffer drops any.
        splits: the split of each window (``None``: dropped by the buffer).
        outside_aoi: windows dropped because they are not in the AOI.
        config: the export options.
    """

    input: RasterStack
    target: RasterStack
    alignment: Alignment
    windows: tuple[Window, ...]
    splits: tuple[Split, ...]
    outside_aoi: int
    config: ExportConfig

    @property
    def grid(self) -> GeoGrid:
        """The input grid (every chip's grid is a window of it)."""
        return self.input.grid

    @property
    def tasks(self) -> list[tuple[int, Window, str]]:
        """``(index, window, split)`` of every chip to read, in order."""
        return [(i, w, s) for i, (w, s) in enumerate(zip(self.windows, self.splits)) if s is not None]

    def planned_counts(self) -> dict[str, int]:
        """Chips per split before the ``min_valid`` check."""
        return {s: sum(1 for x in self.splits if x == s) for s in SPLITS}


def _filter_aoi(windows: list[Window], grid: GeoGrid, aoi, mode: str) -> list[Window]:
    """The windows whose footprint lies within ``aoi`` (``mode="within"``) or shares area with it."""
    import shapely

    shapely.prepare(aoi)
    footprints = np.array([grid.footprint(w) for w in windows], dtype=object)
    if mode == "within":
        keep = shapely.within(footprints, aoi)
    else:
        keep = shapely.intersects(footprints, aoi) & ~shapely.touches(footprints, aoi)
    return [w for w, k in zip(windows, keep) if k]


def _grow(window: Window, size: int, region: Window) -> Window:
    """Grow ``window`` (centred) to at least ``size`` pixels per side, staying inside ``region``.

    Example:
        >>> _grow(Window(40, 40, 10, 10), 32, Window(0, 0, 100, 100))
        Window(col_off=29, row_off=29, width=32, height=32)
        >>> _grow(Window(0, 0, 10, 10), 32, Window(0, 0, 100, 100))
        Window(col_off=0, row_off=0, width=32, height=32)
    """

    def axis(off: int, length: int, r_off: int, r_len: int) -> tuple[int, int]:
        if length >= size:
            return off, length
        new_off = off - (size - length) // 2
        new_off = min(max(new_off, r_off), max(r_off + r_len - size, r_off))
        return new_off, min(size, r_len)

    r, h = axis(int(window.row_off), int(window.height), int(region.row_off), int(region.height))
    c, w = axis(int(window.col_off), int(window.width), int(region.col_off), int(region.width))
    return Window(c, r, w, h)


def plan_export(input: Sources, target: Sources, config: ExportConfig = ExportConfig()) -> ExportPlan:
    """Check the sources and options and decide every chip, without writing anything.

    Raises:
        RasterReadError, BandIndexError, GridMismatchError, NoOverlapError, ChipSizeError,
        VectorReadError: with one line saying what is wrong and how to fix it.

    Example:
        >>> plan = plan_export("s1.tif", "s2.tif", ExportConfig(size=256))  # doctest: +SKIP
        >>> plan.planned_counts()  # doctest: +SKIP
        {'train': 830, 'val': 101, 'test': 97}
    """
    in_stack = open_stack(input, config.input_bands, "input")
    tg_stack = open_stack(target, config.target_bands, "target")
    alignment = plan_alignment(in_stack, tg_stack, config.resampling)
    grid = in_stack.grid
    region = alignment.region
    what = "the overlap of input and target"
    aoi = None
    if config.aoi is not None:
        aoi = read_aoi(config.aoi, grid.crs)
        check_aoi_overlap(aoi, grid, config.aoi, region)
        region = aoi_window(aoi, grid, region)
        if config.aoi_mode == "intersects":
            region = _grow(region, config.size, alignment.region)
        what = f"the part of AOI '{config.aoi}' inside the rasters"
    windows = chip_windows(grid.height, grid.width, config.chip_spec, region, what=what)
    n_all = len(windows)
    if aoi is not None:
        windows = _filter_aoi(windows, grid, aoi, config.aoi_mode)
        if not windows:
            raise ChipSizeError(
                f"No {config.size}×{config.size} chip lies entirely inside AOI '{config.aoi}'; "
                "use --aoi-mode intersects, a smaller --size, or a larger AOI."
            )
    splits = assign_splits(windows, config.split_spec)
    for name, frac in zip(SPLITS[1:], config.split[1:]):
        if frac > 0 and name not in splits:
            log.warning(
                "No %s chips: the area holds too few blocks of %d px (or the buffer of %d px removed them); "
                "use a smaller --block-size or --buffer.",
                name,
                config.block_size,
                config.buffer,
            )
    return ExportPlan(in_stack, tg_stack, alignment, tuple(windows), tuple(splits), n_all - len(windows), config)
