"""Every check of a prediction before anything is written or logged, and none of them needs torch.

``geop2p predict`` runs these first (:func:`check_request`), so a bad command
prints exactly one line, fast, and leaves nothing behind:

* the outputs: ``-o`` must not be a folder, ``--out-dir`` must not be a file,
  the folder must be writable (a read-only file system is refused up front),
  and an output must not exist unless ``--overwrite`` (:func:`check_outputs`);
* each scene: readable, not cut short (:func:`geop2p.io.read.check_intact`),
  with the bands the model reads (:func:`scene_bands`), and real-valued: a
  complex scene is refused with a hint (:func:`check_scene`);
* the window: a multiple of 32 (of the network's divisor once it is built),
  its overlap at most half of it, and no larger than the largest scene needs
  (:func:`check_window_bound`); whether it fits in memory is
  :func:`geop2p.predict.memory.check_window_fits`, once the device is known.

Whether a scene's pixel size and CRS match the model's training grid is not
a check but a warning (:func:`geop2p.predict.grid_match.grid_warning`),
logged once every check has passed.

Example:
    >>> ceil_to(97, 32)
    128
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from geop2p.errors import BandIndexError, ChipSizeError, InputError, OutputExistsError, WriteError
from geop2p.formats import BandSide, BundleHeader
from geop2p.io.atomic import check_output_free
from geop2p.io.read import RasterInfo, check_bands, check_intact, raster_info
from geop2p.predict.config import check_window
from geop2p.tiling import check_overlap

__all__ = [
    "SceneCheck",
    "ceil_to",
    "check_outputs",
    "check_request",
    "check_scene",
    "check_window_bound",
    "refuse_complex",
    "resolve_window",
    "scene_bands",
]

def ceil_to(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``.

    Example:
        >>> ceil_to(96, 32), ceil_to(1, 256)
        (96, 256)
    """
    return -(-int(value) // int(multiple)) * int(multiple)


# ---------------------------------------------------------------------------------------------- window and bands
def resolve_window(header: BundleHeader, window: int | None, overlap: int | None, divisor: int = 32) -> tuple[int, int]:
    """The window (``window``, else the chip size) and overlap (``overlap``, else the recommended one), checked.

    Raises:
        SizeMultipleError: the window is not a multiple of ``divisor``.
        InputError: the overlap is not from 0 to half the window.
    """
    size = check_window(window or header.chip_size, 32)
    if size % divisor:
        check_window(size, divisor)
    chosen = overlap if overlap is not None else header.recommended_overlap
    return size, check_overlap(chosen, size)


def scene_bands(side: BandSide, count: int, what: str, bands: Sequence[int] | None = None) -> list[int]:
    """The 1-based bands of a ``count``-band scene that feed a model whose input is ``side``; raise when they don't exist.

    Args:
        side: the bundle's input side (its band names and ``source_bands``).
        count: the scene's band count.
        what: how messages name the scene.
        bands: the bands chosen with ``--bands`` (None: the bundle's).

    Raises:
        BandIndexError: naming the scene, its band count and the bands the model needs.

    Example:
        >>> from geop2p.normalize import Normalizer
        >>> side = BandSide(("red", "nir"), "uint16", None, Normalizer.identity(2), bands=(3, 4))
        >>> scene_bands(side, 4, "scene 'a.tif'")
        [3, 4]
        >>> scene_bands(side, 2, "scene 'a.tif'")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geop2p.errors.BandIndexError: scene 'a.tif' has 2 band(s) but the model reads band(s) [3, 4] (3=red, 4=nir); ...
    """
    bands = list(bands if bands is not None else side.source_bands)
    if len(bands) != side.count:
        raise BandIndexError(
            f"{len(bands)} band(s) {bands} were chosen for {what} but the model takes {side.count} "
            f"({', '.join(side.band_names)}); pass exactly {side.count} with --bands."
        )
    missing = [b for b in bands if b < 1 or b > count]
    if missing:
        names = ", ".join(f"{b}={n}" for b, n in zip(bands, side.band_names))
        raise BandIndexError(
            f"{what} has {count} band(s) but the model reads band(s) {bands} ({names}); "
            f"band(s) {missing} do not exist. Use a scene with the bands the model was trained on, "
            "or pass --bands to choose which scene bands feed the model."
        )
    return check_bands(bands, count, what)


def check_window_bound(window: int, default: int, sizes: Sequence[tuple[int, int]], names: Sequence[str],
                       divisor: int = 32) -> None:
    """Refuse a window larger than the largest scene needs: beyond it, a window adds only padding (and memory).

    A window of the model's own chip size (``default``) is always allowed (a
    smaller scene is padded up to it, as in training).

    Raises:
        ChipSizeError: naming the largest scene and the largest useful window.

    Example:
        >>> check_window_bound(65536, 256, [(96, 96)], ["input.tif"])
        Traceback (most recent call last):
        ...
        geop2p.errors.ChipSizeError: --window 65536 is larger than the largest scene ('input.tif', 96×96 px) needs: a larger window adds only padding; use --window 256 or less.
    """
    if not sizes:
        return
    i = max(range(len(sizes)), key=lambda k: max(sizes[k]))
    height, width = sizes[i]
    limit = max(int(default), ceil_to(max(height, width), divisor))
    if window > limit:
        raise ChipSizeError(
            f"--window {window} is larger than the largest scene ('{names[i]}', {width}×{height} px) needs: "
            f"a larger window adds only padding; use --window {limit} or less."
        )


# ---------------------------------------------------------------------------------------------- outputs
def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_outputs(
    outputs: Sequence[Path],
    overwrite: bool,
    out_dir: str | os.PathLike | None = None,
    scenes: Sequence[str | os.PathLike] | None = None,
) -> None:
    """Refuse outputs that cannot be written: a folder named as an output, a file in the way, a read-only folder.

    Args:
        outputs: the output paths (:func:`geop2p.predict.scene_outputs`).
        overwrite: whether existing outputs may be replaced.
        out_dir: the ``--out-dir`` given, if any (for the messages).
        scenes: the scenes, in the order of ``outputs`` (for the messages).

    Raises:
        OutputExistsError: an output exists (without ``overwrite``) or is a folder.
        InputError: ``--out-dir`` (or an output's folder) is a file.
        WriteError: the folder is on a read-only file system or not writable.
    """
    if out_dir is not None:
        where = Path(out_dir)
        if where.exists() and not where.is_dir():
            raise InputError(f"--out-dir '{where}' is a file; expected a folder to write the predictions into.")
    names = [f"{Path(s).stem}_pred.tif" for s in scenes] if scenes is not None else ["prediction.tif"] * len(outputs)
    for path, name in zip(outputs, names):
        path = Path(path)
        if path.is_dir():
            hint = f", or --out-dir '{path}'" if out_dir is None else ""
            raise OutputExistsError(
                f"Output '{path}' is a folder; expected the name of a GeoTIFF to write, e.g. '{path / name}'{hint}."
            )
        check_output_free(path, overwrite)
        folder = _nearest_existing(path.parent)
        if not folder.is_dir():
            raise InputError(f"Cannot write '{path}': '{folder}' is a file, not a folder; choose another output.")
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only or not os.access(folder, os.W_OK | os.X_OK):
            # the words of geop2p.io.atomic.write_error, without its guess at a full disk: the cause is known
            reason = os.strerror(errno.EROFS if read_only else errno.EACCES)
            raise WriteError(f"Cannot write '{path}': {reason}; choose a folder you can write to.")


# ---------------------------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class SceneCheck:
    """A scene that passed every check: where it is, where its prediction goes, what it is, which bands feed the model."""

    path: Path
    output: Path
    info: RasterInfo
    bands: tuple[int, ...]


def check_scene(path: str | os.PathLike, side: BandSide, bands: Sequence[int] | None = None) -> tuple[RasterInfo, list[int]]:
    """Open a scene and check it can feed a model whose input is ``side``; return its description and bands.

    Raises:
        RasterReadError: missing, unreadable or truncated scene.
        BandIndexError: the scene lacks the bands.
        InputError: the bands are complex (take the amplitude or dB first).
    """
    what = f"scene '{path}'"
    info = raster_info(path)
    chosen = scene_bands(side, info.count, what, bands)
    complex_bands = [b for b in chosen if np.issubdtype(np.dtype(info.dtypes[b - 1]), np.complexfloating)]
    if complex_bands:
        refuse_complex(f"{what} band(s) {complex_bands} are", info.dtypes[complex_bands[0] - 1])
    check_intact(path)
    return info, chosen


def refuse_complex(what: str, dtype: str) -> None:
    """Raise the one error for complex values (a SAR scene in SLC form, say), with how to make them real.

    Example:
        >>> refuse_complex("the array is", "complex64")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geop2p.errors.InputError: the array is complex (complex64); the model takes real values. Take the amplitude...
    """
    raise InputError(
        f"{what} complex ({dtype}); the model takes real values. Take the amplitude (|z|) or dB (20·log10|z|) "
        "first, e.g. gdal_calc.py -A scene.tif --calc=\"abs(A)\" --outfile amplitude.tif."
    )


def check_request(
    scenes: Sequence[str | os.PathLike],
    outputs: Sequence[Path],
    header: BundleHeader,
    *,
    window: int,
    bands: Sequence[int] | None = None,
    overwrite: bool = False,
    out_dir: str | os.PathLike | None = None,
    divisor: int = 32,
) -> list[SceneCheck]:
    """Every check of ``geop2p predict`` that needs neither torch nor the device: outputs, scenes, window bound.

    Args:
        scenes: the input rasters.
        outputs: their outputs (:func:`geop2p.predict.scene_outputs`).
        header: the model bundle's header.
        window: the window size (already a multiple of ``divisor``).
        bands: the ``--bands`` chosen, if any.
        overwrite: whether existing outputs may be replaced.
        out_dir: the ``--out-dir`` given, if any.
        divisor: what windows must be a multiple of.

    Returns:
        One :class:`SceneCheck` per scene.
    """
    if bands is not None and len(bands) != header.in_channels:
        raise BandIndexError(
            f"--bands lists {len(bands)} band(s) {list(bands)} but the model takes {header.in_channels} input "
            f"band(s) ({', '.join(header.input.band_names)}); give exactly {header.in_channels}."
        )
    check_outputs(outputs, overwrite, out_dir, scenes)
    checks = []
    for scene, output in zip(scenes, outputs):
        info, chosen = check_scene(scene, header.input, bands)
        checks.append(SceneCheck(Path(scene), Path(output), info, tuple(chosen)))
    check_window_bound(window, header.chip_size, [c.info.grid.shape for c in checks], [str(c.path) for c in checks],
                       divisor)
    return checks
