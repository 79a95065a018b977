"""A whole raster in, a GeoTIFF on exactly its grid out: :func:`predict_raster`, streamed strip by strip.

The reader thread reads strips of the scene's rows; the writer thread hands
the blended rows to a :class:`~geop2p.io.strip_writer.PredictionWriter`,
which writes under a hidden temporary name and renames it only when the file
is whole.  Whatever stops a prediction (an error, a full disk, Ctrl-C, SIGTERM)
stops both threads and removes the temporary file, and the folders made for
the output are removed again when they are still empty.  A temporary file a
*killed* process left behind (``kill -9``, a power cut) is swept away when the
same output is predicted again (:func:`geop2p.io.atomic.sweep_partials`).

The output is placed on the Earth exactly like the scene: the same transform
and CRS, or the same ground control points (and their CRS), or the same RPCs.

Example:
    >>> predict_raster(translator, "scene.tif", "scene_pred.tif", overwrite=True)  # doctest: +SKIP
    PosixPath('scene_pred.tif')
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geop2p.errors import RasterReadError
from geop2p.io.atomic import check_output_free, sweep_partials
from geop2p.io.cache import bounded_block_cache
from geop2p.io.read import open_raster, valid_mask
from geop2p.io.strip_writer import PredictionWriter
from geop2p.tiling import Strip, plan_windows

if TYPE_CHECKING:
    from geop2p.predict.engine import Progress
    from geop2p.predict.translator import Translator

__all__ = ["PREDICT_CACHE_MB", "predict_raster"]

log = logging.getLogger(__name__)

#: GDAL block cache while predicting a raster, in MB (see geop2p.io.cache): enough for the
#: source blocks of a strip and its halo and the output blocks in flight, even for very wide
#: scenes, and memory that does not follow the scene's size.
PREDICT_CACHE_MB = 256


def _missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder``'s chain that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def predict_raster(
    translator: "Translator",
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: "Progress | None" = None,
    bands: Sequence[int] | None = None,
    cog: bool | None = None,
) -> Path:
    """Predict the raster ``src_path`` into the GeoTIFF ``dst_path``; see :meth:`Translator.predict_raster`.

    Raises:
        RasterReadError: unreadable, truncated or corrupt scene. BandIndexError: the scene lacks bands.
        InputError: complex bands, or a window the scene or the memory cannot take.
        OutputExistsError: the output exists and ``overwrite`` is False.
        WriteError: the output cannot be written (DiskFullError: the disk is full); nothing is left.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    info, band_idx = translator.check_scene_info(src_path, bands)
    check_output_free(dst_path, overwrite)
    translator.check_sizes([info.grid.shape], [str(src_path)])
    grid = info.grid
    may_be_invalid = info.nodata is not None or info.has_mask or any(
        np.issubdtype(np.dtype(info.dtypes[b - 1]), np.floating) for b in band_idx
    )
    plan = plan_windows(grid.height, grid.width, translator.window, translator.overlap, translator.config.strip_rows)
    state: dict[str, Any] = {}

    def read(strip: Strip) -> tuple[np.ndarray, np.ndarray]:
        src = state.get("src")
        if src is None:
            state["ctx"] = open_raster(src_path)
            src = state["src"] = state["ctx"].__enter__()
        r1 = min(strip.read_row_end, grid.height)
        window = Window(0, strip.read_row_off, grid.width, r1 - strip.read_row_off)
        try:
            data = src.read(band_idx, window=window)
        except RasterioIOError as exc:
            raise RasterReadError(
                f"Cannot read rows {strip.read_row_off}..{r1} of '{src_path}' ({str(exc).splitlines()[0]}); "
                "the file is probably truncated or corrupt."
            ) from exc
        return data, valid_mask(src, data, window, band_idx)

    tags = {"GEOP2P_SOURCE": src_path.name, "GEOP2P_WINDOW": str(translator.window),
            "GEOP2P_OVERLAP": str(translator.overlap)}
    if translator.source:
        tags["GEOP2P_MODEL"] = Path(translator.source).name
    target = translator.target
    writer = PredictionWriter(
        dst_path,
        grid,
        count=translator.out_channels,
        dtype=translator.output_dtype,
        nodata=target.nodata,
        descriptions=list(target.band_names),
        write_mask=target.nodata is None and may_be_invalid,
        cog=translator.config.cog if cog is None else cog,
        compress=translator.config.compress,
        tags=tags,
        overwrite=overwrite,
        gcps=(info.gcps, info.gcp_crs) if info.georeferencing == "gcps" else None,
        rpcs=info.rpcs if info.georeferencing == "rpcs" else None,
    )
    for stale in sweep_partials(dst_path):
        log.debug("removed %s, left by a process that was killed", stale)
    made = _missing_folders(dst_path.parent)
    try:
        with bounded_block_cache(PREDICT_CACHE_MB), writer:
            translator._run(plan, read, writer.write_rows, progress)
    except BaseException:
        for folder in made:  # deepest first; only the empty folders this call made
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        ctx = state.get("ctx")
        if ctx is not None:
            ctx.__exit__(None, None, None)
    log.debug("Wrote %s (%d×%d, %d window(s))", dst_path, grid.width, grid.height, plan.n_windows)
    return dst_path
