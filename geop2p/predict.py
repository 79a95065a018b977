"""Whole-scene prediction: a :class:`Translator` turns arrays, DataArrays or rasters into predictions.

A translator wraps a generator and its bundle metadata.  Every entry point
(:meth:`Translator.predict_array`, :meth:`Translator.predict_dataarray`,
:meth:`Translator.predict_raster`, :func:`predict_scenes`) runs the same
sliding-window engine:

1. The scene is cut into square windows (the model's chip size, or ``window``)
   overlapping by ``overlap`` pixels (:mod:`geop2p.tiling`); the last row and
   column of windows are shifted back inside the raster, and a scene smaller
   than a window is reflect-padded.
2. A **reader thread** reads one strip of window rows at a time (with the halo
   rows its windows overlap into), keeps the bands the bundle was trained on,
   normalises them with the bundle's input normaliser and sets invalid pixels
   (nodata, mask, NaN in any band) to 0, the middle of the network's range.
3. The **main thread** runs the windows through the network in batches
   (``torch.inference_mode``; on CUDA bf16 autocast and channels-last by
   default, fp32 on CPU), optionally averaging flips/rotations (TTA) in
   normalised space, each inverted exactly.
4. A **writer thread** blends the window predictions into a float32 buffer a
   strip high, with Hann/cosine weights normalised by the summed weights
   (see :mod:`geop2p.tiling`), emits rows once no later window can touch
   them, de-normalises them to the target's units, rounds and clips them to
   the target dtype, sets nodata where the input was invalid, and writes them.

Reading, compute and writing overlap through bounded queues, so memory is a
few strips, not the scene, and the network never waits on I/O when I/O is the
cheaper part.

Why the default overlap
    The default is the bundle's ``recommended_overlap`` (else a quarter of the
    window).  A U-Net's predictions are worst within a few dozen pixels of the
    window border, where its receptive field runs into zero padding and it has
    seen the least context; with a quarter-window overlap and Hann ramps, those
    pixels get almost no weight (the neighbour's interior prediction wins) and
    the cross-fade spans 64 px of a 256 px window, wide enough that the residual
    difference between neighbouring windows is spread below visibility.  It
    costs ``(window / (window - overlap))²`` ≈ 1.8× the windows of no overlap;
    ``window // 2`` costs 4× and buys little more.

Example:
    >>> t = Translator.from_file("run/model.safetensors")  # doctest: +SKIP
    >>> t.predict_raster("scene.tif", "scene_pred.tif", overwrite=True)  # doctest: +SKIP
    PosixPath('scene_pred.tif')
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geop2p.errors import BandIndexError, BundleError, ChipSizeError, InputError, RasterReadError
from geop2p.device import DEVICES, resolve_device
from geop2p.io.atomic import check_output_free
from geop2p.io.cache import bounded_block_cache
from geop2p.io.read import check_bands, open_raster, raster_info, valid_mask
from geop2p.io.compression import check_compression
from geop2p.io.strip_writer import PredictionWriter
from geop2p.normalize import Normalizer
from geop2p.tiling import BLEND_KINDS, Strip, WindowPlan, pad_to_window, plan_windows, suggest_multiple

__all__ = [
    "PRECISIONS",
    "TTA_CHOICES",
    "PredictConfig",
    "Translator",
    "default_output_path",
    "predict_scenes",
    "scene_outputs",
]

log = logging.getLogger(__name__)

#: GDAL block cache while predicting a raster, in MB (see geop2p.io.cache): enough for the
#: source blocks of a strip and its halo and the output blocks in flight, even for very wide
#: scenes, and memory that does not follow the scene's size.
PREDICT_CACHE_MB = 256

TTA_CHOICES = (1, 2, 4, 8)
PRECISIONS = ("auto", "fp32", "bf16")

#: dihedral transforms (index k: flip horizontally when k >= 4, then rotate k % 4 quarter turns)
_TTA_SETS = {1: (0,), 2: (0, 4), 4: (0, 4, 6, 2), 8: tuple(range(8))}

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PredictConfig:
    """How to predict; ``None`` fields are resolved from the model bundle.

    Attributes:
        window: window size in pixels, a multiple of 32 (None: the bundle's chip size).
        overlap: pixels shared by neighbouring windows (None: the bundle's
            ``recommended_overlap``, else ``window // 4``).
        batch_size: windows per forward pass.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        tta: 1 (none), 2 (horizontal flip), 4 (flips), 8 (flips and rotations).
        cog: write a Cloud Optimized GeoTIFF with overviews.
        bands: 1-based scene bands that feed the model (None: the bands the bundle was trained on).
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16`` (autocast). On a
            CPU with AMX / AVX-512 BF16, bf16 ran 3.8× faster than fp32 on the demo's trained model
            (``tools/bench_precision.py``) at +0.2 % MAE (mean 0.23 DN off the fp32 prediction): a
            good trade for imagery targets, but for float targets such as elevation the ~0.4 %-of-
            range rounding of the network output can matter, so fp32 stays the CPU default.
        channels_last: channels-last memory format (None: on; measured 1.25× faster than
            contiguous on the CPU in fp32 with the same results).
        strip_rows: window rows per strip (memory ~ a few strips).
        blend: ``hann`` (seamless) or ``none`` (plain averaging; for comparisons only).
        compress: GeoTIFF compression (``zstd``, ``deflate``, ``lzw``, ``none``).
        queue_depth: strips buffered between the reader, the network and the writer.

    Example:
        >>> PredictConfig(window=256, overlap=64, tta=4).tta
        4
    """

    window: int | None = None
    overlap: int | None = None
    batch_size: int = 8
    device: str = "auto"
    tta: int = 1
    cog: bool = False
    bands: tuple[int, ...] | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    strip_rows: int = 1
    blend: str = "hann"
    compress: str = "zstd"
    queue_depth: int = 2

    def __post_init__(self) -> None:
        if self.window is not None:
            check_window(self.window)
        if self.overlap is not None and (int(self.overlap) != self.overlap or self.overlap < 0):
            raise InputError(f"Overlap must be a non-negative number of pixels, got {self.overlap!r}.")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise InputError(f"Batch size must be a positive integer, got {self.batch_size!r}.")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise InputError(f"Unknown device {self.device!r}; valid devices: {', '.join(DEVICES)}.")
        if self.tta not in TTA_CHOICES:
            raise InputError(f"TTA must be one of {', '.join(map(str, TTA_CHOICES))} (transforms averaged), got {self.tta!r}.")
        if self.precision not in PRECISIONS:
            raise InputError(f"Unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}.")
        if self.blend not in BLEND_KINDS:
            raise InputError(f"Unknown blend {self.blend!r}; valid: {', '.join(BLEND_KINDS)}.")
        check_compression(self.compress)
        if int(self.strip_rows) != self.strip_rows or self.strip_rows < 1:
            raise InputError(f"strip_rows must be a positive integer, got {self.strip_rows!r}.")
        if int(self.queue_depth) != self.queue_depth or self.queue_depth < 1:
            raise InputError(f"queue_depth must be a positive integer, got {self.queue_depth!r}.")
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))


def check_window(window: int, divisor: int = 32) -> int:
    """Return ``window`` if it is a positive multiple of ``divisor`` (32 by default), else raise.

    Raises:
        ChipSizeError: suggesting the nearest valid sizes.

    Example:
        >>> check_window(256)
        256
    """
    try:
        whole = int(window) == window and not isinstance(window, bool)
    except (TypeError, ValueError):
        whole = False
    if not whole or window < divisor or window % divisor:
        w = int(window) if whole else divisor
        lo = max(divisor, w // divisor * divisor)
        raise ChipSizeError(
            f"Window size {window!r} is not a multiple of {divisor}, which the network needs; "
            f"use {suggest_multiple(w, divisor)} (multiples of {divisor} near it: {lo}, {lo + divisor})."
        )
    return int(window)


# ---------------------------------------------------------------------------------------------- meta
@dataclass(frozen=True)
class _Side:
    """One side (input or target) of a bundle's metadata."""

    bands: tuple[int, ...]
    band_names: tuple[str, ...]
    dtype: np.dtype
    nodata: float | None
    normalizer: Normalizer


def _nodata(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise BundleError(f"Bundle nodata {value!r} is not a number, 'nan' or null.") from None
    return float(value)


def _side(meta: Mapping[str, Any], key: str, n_channels: int) -> _Side:
    try:
        doc = meta[key]
        normalizer = Normalizer.from_dict(doc["normalizer"])
        dtype = np.dtype(doc.get("dtype", "float32"))
        names = tuple(doc.get("band_names") or [f"band_{i}" for i in range(1, n_channels + 1)])
        bands = tuple(int(b) for b in doc.get("bands", range(1, n_channels + 1)))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"The bundle's '{key}' metadata is incomplete or invalid ({exc!r}); expected bands, band_names, dtype, "
            "nodata and normalizer as in docs/formats.md. Re-export the model with `geop2p train`."
        ) from exc
    if normalizer.n_bands != n_channels or len(names) != n_channels:
        raise BundleError(
            f"The bundle's {key} normalizer has {normalizer.n_bands} band(s) and {len(names)} band name(s) but the "
            f"generator has {n_channels} {key} channel(s); the bundle is inconsistent."
        )
    return _Side(bands, names, dtype, _nodata(doc.get("nodata")), normalizer)


def _channels(generator: torch.nn.Module, meta: Mapping[str, Any]) -> tuple[int, int]:
    spec = meta.get("generator") or getattr(generator, "spec", None) or {}
    try:
        return int(spec["in_channels"]), int(spec["out_channels"])
    except (KeyError, TypeError, ValueError):
        raise BundleError(
            "The bundle's 'generator' metadata lacks in_channels/out_channels; expected "
            "{'architecture': ..., 'in_channels': N, 'out_channels': M, 'params': {...}}."
        ) from None


# ---------------------------------------------------------------------------------------------- device
# ---------------------------------------------------------------------------------------------- TTA
def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x


def _dihedral_inverse(y: torch.Tensor, k: int) -> torch.Tensor:
    if k % 4:
        y = torch.rot90(y, -(k % 4), dims=(-2, -1))
    return y.flip(-1) if k >= 4 else y


# ---------------------------------------------------------------------------------------------- pipeline
class _Stopped(Exception):
    """Raised inside a pipeline stage when another stage failed."""


_DONE = object()


class _Pipeline:
    """Bounded queues between threads that give up as soon as any stage fails."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue) -> Any:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def start(self, target: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread


@dataclass
class _Blender:
    """Accumulates weighted window predictions a strip at a time and emits finished rows."""

    plan: WindowPlan
    channels: int
    kind: str
    acc: np.ndarray | None = None
    wsum: np.ndarray | None = None
    lo: int = 0
    hi: int = 0

    def add(self, strip: Strip, preds: np.ndarray) -> tuple[int, np.ndarray]:
        """Blend ``preds`` (windows of ``strip``, row-major) in; return ``(row_off, rows)`` now final (normalised)."""
        plan = self.plan
        width = plan.padded_width
        top, bottom = strip.read_row_off, strip.read_row_end
        acc = np.zeros((self.channels, bottom - top, width), np.float32)
        wsum = np.zeros((bottom - top, width), np.float32)
        if self.acc is not None:
            keep = self.hi - self.lo
            acc[:, :keep] = self.acc
            wsum[:keep] = self.wsum
        for pred, win in zip(preds, plan.windows(strip)):
            r, c = int(win.row_off) - top, int(win.col_off)
            w = plan.weights(win, kind=self.kind)
            acc[:, r : r + plan.window, c : c + plan.window] += pred * w
            wsum[r : r + plan.window, c : c + plan.window] += w
        n = strip.emit_height
        rows = acc[:, :n, : plan.width] / wsum[:n, : plan.width]
        if strip.index + 1 < len(plan.strips):
            # rows from the next strip's first window on are still open: carry them over
            nxt = plan.strips[strip.index + 1].read_row_off
            self.acc, self.wsum = acc[:, nxt - top :], wsum[nxt - top :]
            self.lo, self.hi = nxt, bottom
        else:
            self.acc = self.wsum = None
        return strip.emit_row_off, rows


class _TargetCast:
    """De-normalise, round/clip to the target dtype and keep valid values off the nodata value."""

    def __init__(self, side: _Side):
        self.side = side
        self.dtype = side.dtype
        self.nodata = side.nodata

    def __call__(self, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
        values = self.side.normalizer.denormalize(rows)
        dtype = self.dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            values = np.clip(np.rint(values), info.min, info.max)
            out = values.astype(dtype)
            if self.nodata is not None and info.min <= self.nodata <= info.max:
                nd = dtype.type(self.nodata)
                nudged = dtype.type(int(nd) - 1 if int(nd) == info.max else int(nd) + 1)
                for band in out:
                    band[(band == nd) & valid] = nudged
            return out
        if np.issubdtype(dtype, np.floating) and dtype.itemsize < 4:
            info = np.finfo(dtype)
            values = np.clip(values, info.min, info.max)
        out = values.astype(dtype, copy=False)
        if self.nodata is not None and math.isfinite(self.nodata):
            nd = dtype.type(self.nodata)
            nudged = np.nextafter(nd, dtype.type(np.inf))
            for band in out:
                band[(band == nd) & valid] = nudged
        return out


# ---------------------------------------------------------------------------------------------- translator
class Translator:
    """A generator plus its bundle metadata, ready to translate arrays, DataArrays and rasters.

    Args:
        generator: any ``torch.nn.Module`` mapping ``(B, in, h, w)`` to ``(B, out, h, w)`` in normalised units.
        meta: the bundle metadata (``docs/formats.md``, "Model bundle").
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (None: ``config.device``).
        config: a :class:`PredictConfig`; keyword ``opts`` override its fields.

    Raises:
        BundleError: when ``meta`` lacks what prediction needs.
        ChipSizeError: when the window is not a multiple of 32 (or of the generator's divisor).

    Example:
        >>> t = Translator.from_file("model.safetensors", device="cpu", overlap=32)  # doctest: +SKIP
        >>> pred = t.predict_array(scene)  # (bands, h, w) in, (target bands, h, w) out  # doctest: +SKIP
    """

    #: the bundle file this translator was loaded from (None when built from a module)
    source: str | None = None

    def __init__(
        self,
        generator: torch.nn.Module,
        meta: Mapping[str, Any],
        device: str | None = None,
        config: PredictConfig | None = None,
        **opts: Any,
    ) -> None:
        config = config or PredictConfig()
        if device is not None:
            opts["device"] = device
        config = replace(config, **opts) if opts else config
        self.meta = dict(meta)
        self.in_channels, self.out_channels = _channels(generator, meta)
        self.input = _side(meta, "input", self.in_channels)
        self.target = _side(meta, "target", self.out_channels)
        if len(self.input.bands) != self.in_channels:
            raise BundleError(
                f"The bundle lists {len(self.input.bands)} input band(s) but the generator takes {self.in_channels}."
            )
        divisor = max(32, int(getattr(generator, "required_divisor", 1) or 1))
        window = config.window or meta.get("chip_size")
        if window is None:
            raise BundleError("The bundle has no chip_size; pass window=... (a multiple of 32).")
        self.window = check_window(int(window), 32)
        if self.window % divisor:
            check_window(self.window, divisor)
        overlap = config.overlap
        if overlap is None:
            rec = meta.get("recommended_overlap")
            overlap = int(rec) if rec is not None and 0 <= int(rec) < self.window else self.window // 4
        if overlap >= self.window:
            raise InputError(
                f"Overlap {overlap} must be smaller than the window ({self.window} px); "
                f"try {self.window // 4} (a quarter of the window)."
            )
        self.overlap = int(overlap)
        if config.bands is not None and len(config.bands) != self.in_channels:
            raise BandIndexError(
                f"--bands lists {len(config.bands)} band(s) {list(config.bands)} but the model takes "
                f"{self.in_channels} input band(s) ({', '.join(self.input.band_names)}); give exactly {self.in_channels}."
            )
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        precision = config.precision if config.precision != "auto" else ("bf16" if cuda else "fp32")
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self.channels_last = config.channels_last if config.channels_last is not None else True
        self.config = replace(config, window=self.window, overlap=self.overlap, precision=precision)
        self.generator = generator.to(self.device).eval()
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        self._tta = _TTA_SETS[config.tta]
        self._cast = _TargetCast(self.target)
        log.debug(
            "Translator: window %d, overlap %d, batch %d, device %s, precision %s, tta %d",
            self.window, self.overlap, config.batch_size, self.device, precision, config.tta,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | None = "auto", **opts: Any) -> "Translator":
        """Load a model bundle (never unpickling anything) and wrap it.

        Args:
            path: the ``.safetensors`` bundle written by ``geop2p train``.
            device: ``auto``, ``cpu`` or ``cuda`` (None: ``config.device``).
            **opts: :class:`PredictConfig` fields (``window``, ``overlap``, ``tta``...).

        Raises:
            BundleError: missing file, not a bundle, or a pickle.

        Example:
            >>> t = Translator.from_file("run/model.safetensors", tta=2)  # doctest: +SKIP
        """
        from geop2p.models.bundle import load_bundle

        generator, header = load_bundle(path, device="cpu")
        meta = header.to_dict()
        translator = cls(generator, meta, device=device, **opts)
        translator.source = str(path)
        return translator

    # ------------------------------------------------------------------ checks
    def scene_bands(self, count: int, what: str, bands: Sequence[int] | None = None) -> list[int]:
        """The 1-based bands of a ``count``-band scene that feed the model; raise when they don't exist.

        Raises:
            BandIndexError: naming the scene, its band count and the bands the model needs.
        """
        bands = list(bands if bands is not None else (self.config.bands or self.input.bands))
        if len(bands) != self.in_channels:
            raise BandIndexError(
                f"{len(bands)} band(s) {bands} were chosen for {what} but the model takes {self.in_channels} "
                f"({', '.join(self.input.band_names)}); pass exactly {self.in_channels} with --bands."
            )
        missing = [b for b in bands if b < 1 or b > count]
        if missing:
            names = ", ".join(f"{b}={n}" for b, n in zip(bands, self.input.band_names))
            raise BandIndexError(
                f"{what} has {count} band(s) but the model reads band(s) {bands} ({names}); "
                f"band(s) {missing} do not exist. Use a scene with the bands the model was trained on, "
                "or pass --bands to choose which scene bands feed the model."
            )
        return check_bands(bands, count, what)

    def check_scene(self, path: str | os.PathLike, bands: Sequence[int] | None = None) -> list[int]:
        """Open ``path`` and check it has the bands the model needs; return them (1-based).

        Raises:
            RasterReadError: missing or unreadable scene.
            BandIndexError: the scene lacks bands.
        """
        info = raster_info(path)
        return self.scene_bands(info.count, f"scene '{path}'", bands)

    # ------------------------------------------------------------------ compute
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        total = None
        with torch.inference_mode(), torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            for k in self._tta:
                y = _dihedral_inverse(self.generator(_dihedral(x, k)), k).float()
                total = y if total is None else total + y
        if len(self._tta) > 1:
            total = total / len(self._tta)
        return total.cpu().numpy()

    def _predict_strip(self, plan: WindowPlan, strip: Strip, x: np.ndarray, tick: Callable[[int], None]) -> np.ndarray:
        wins = plan.windows(strip)
        win = plan.window
        out = np.empty((len(wins), self.out_channels, win, win), np.float32)
        bs = self.config.batch_size
        for i in range(0, len(wins), bs):
            chunk = wins[i : i + bs]
            batch = np.stack(
                [x[:, int(w.row_off) - strip.read_row_off :][:, :win, int(w.col_off) : int(w.col_off) + win] for w in chunk]
            )
            out[i : i + len(chunk)] = self._forward(batch)
            tick(len(chunk))
        return out

    def _prepare(self, data: np.ndarray, valid: np.ndarray, strip: Strip, plan: WindowPlan) -> np.ndarray:
        x = np.asarray(self.input.normalizer.normalize(data), dtype=np.float32)
        x[:, ~valid] = 0.0
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return np.ascontiguousarray(pad_to_window(x, strip.read_height, plan.padded_width))

    def _run(
        self,
        plan: WindowPlan,
        read: Callable[[Strip], tuple[np.ndarray, np.ndarray]],
        sink: Callable[[int, np.ndarray, np.ndarray], None],
        progress: Progress | None,
    ) -> None:
        """The streamed engine: reader thread → network (this thread) → writer thread."""
        pipe = _Pipeline()
        depth = self.config.queue_depth
        read_q: queue.Queue = queue.Queue(maxsize=depth)
        write_q: queue.Queue = queue.Queue(maxsize=depth)
        blender = _Blender(plan, self.out_channels, self.config.blend)
        total = plan.n_windows
        done = 0

        def reader() -> None:
            for strip in plan.strips:
                data, valid = read(strip)
                pipe.put(read_q, (strip, self._prepare(data, valid, strip, plan), valid))
            pipe.put(read_q, _DONE)

        def writer() -> None:
            while True:
                item = pipe.get(write_q)
                if item is _DONE:
                    return
                strip, preds, valid = item
                row_off, rows = blender.add(strip, preds)
                n = rows.shape[1]
                if n:
                    v = valid[:n]
                    sink(row_off, self._cast(rows, v), v)

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        t0 = time.perf_counter()
        threads = [pipe.start(reader, "geop2p-read"), pipe.start(writer, "geop2p-write")]
        try:
            while True:
                item = pipe.get(read_q)
                if item is _DONE:
                    break
                strip, x, valid = item
                pipe.put(write_q, (strip, self._predict_strip(plan, strip, x, tick), valid))
            pipe.put(write_q, _DONE)
            while threads[1].is_alive() and not pipe.stop.is_set():
                threads[1].join(0.05)
        except _Stopped:
            pass  # a thread failed; its error is raised below
        finally:
            # on success both threads are done; on any failure (here or in a thread) stop them
            pipe.stop.set()
            for t in threads:
                t.join()
        if pipe.errors:
            raise pipe.errors[0]
        log.debug("%d windows in %.2fs", total, time.perf_counter() - t0)

    # ------------------------------------------------------------------ arrays
    def _array_valid(self, array: np.ndarray, nodata: float | None) -> np.ndarray:
        """Valid where no band equals ``nodata`` and, for floats, no band is NaN."""
        valid = np.ones(array.shape[-2:], bool)
        if nodata is not None:
            valid &= ~(np.isnan(array).any(axis=0) if math.isnan(nodata) else (array == nodata).any(axis=0))
        if np.issubdtype(array.dtype, np.floating):
            valid &= ~np.isnan(array).any(axis=0)
        return valid

    def predict_array(
        self, array: np.ndarray, valid: np.ndarray | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        """Predict a ``(bands, height, width)`` array of raw input values, any size.

        ``bands`` are the model's input bands in order (``in_channels`` of them; a
        2-D array is accepted for one band).  Uses the same sliding windows,
        blending and casting as :meth:`predict_raster`.

        Args:
            array: raw input values (the scene's units and dtype).
            valid: ``(height, width)`` boolean validity; None derives it from the
                bundle's input nodata and NaNs.
            progress: called as ``progress(windows_done, windows_total)``.

        Returns:
            ``(target bands, height, width)`` in the target dtype; invalid pixels
            hold the target nodata (NaN for a float target without nodata, 0 for
            an integer target without nodata).

        Example:
            >>> pred = translator.predict_array(np.zeros((3, 300, 200), np.uint8))  # doctest: +SKIP
            >>> pred.shape  # doctest: +SKIP
            (1, 300, 200)
        """
        array = np.asarray(array)
        if array.ndim == 2 and self.in_channels == 1:
            array = array[None]
        if array.ndim != 3 or array.shape[0] != self.in_channels:
            raise InputError(
                f"predict_array expects (bands, height, width) with {self.in_channels} band(s) "
                f"({', '.join(self.input.band_names)}); got shape {array.shape}. Select the model's bands first."
            )
        height, width = array.shape[1:]
        if valid is None:
            valid = self._array_valid(array, self.input.nodata)
        else:
            valid = np.asarray(valid, bool)
            if valid.shape != (height, width):
                raise InputError(f"valid must have shape {(height, width)} like the array's rows/cols; got {valid.shape}.")
        plan = plan_windows(height, width, self.window, self.overlap, self.config.strip_rows)
        out = np.empty((self.out_channels, height, width), self.target.dtype)
        fill = self._fill_value()

        def read(strip: Strip) -> tuple[np.ndarray, np.ndarray]:
            r1 = min(strip.read_row_end, height)
            return array[:, strip.read_row_off : r1], valid[strip.read_row_off : r1]

        def sink(row_off: int, rows: np.ndarray, v: np.ndarray) -> None:
            block = out[:, row_off : row_off + rows.shape[1]]
            block[...] = rows
            if not v.all():
                block[:, ~v] = fill

        self._run(plan, read, sink, progress)
        return out

    def _fill_value(self) -> float:
        if self.target.nodata is not None:
            return self.target.nodata
        return float("nan") if np.issubdtype(self.target.dtype, np.floating) else 0

    def predict_dataarray(self, da: Any, progress: Progress | None = None) -> Any:
        """Predict an ``xarray.DataArray`` (``(band, y, x)`` or ``(y, x)``) with rioxarray georeferencing.

        When the array has exactly the model's number of bands they are used in
        order; otherwise the bundle's (or ``config.bands``') 1-based bands are
        selected.  Invalid pixels: the array's nodata (``da.rio.nodata``), NaN.

        Returns:
            A ``(band, y, x)`` DataArray in the target dtype with the same ``y``/``x``
            coordinates, ``rio.crs`` and ``rio.transform()``, the target nodata
            written with ``rio.write_nodata`` and band names in ``long_name``.

        Example:
            >>> import rioxarray  # doctest: +SKIP
            >>> da = rioxarray.open_rasterio("scene.tif")  # doctest: +SKIP
            >>> pred = translator.predict_dataarray(da)  # doctest: +SKIP
            >>> pred.rio.to_raster("scene_pred.tif")  # doctest: +SKIP
        """
        import rioxarray  # noqa: F401 - registers the .rio accessor
        import xarray as xr

        if da.ndim == 2:
            da = da.expand_dims("band")
        if da.ndim != 3:
            raise InputError(f"predict_dataarray expects a (band, y, x) or (y, x) DataArray; got dims {da.dims}.")
        y_dim, x_dim = da.rio.y_dim, da.rio.x_dim
        band_dim = next(d for d in da.dims if d not in (y_dim, x_dim))
        da = da.transpose(band_dim, y_dim, x_dim)
        count = da.sizes[band_dim]
        if count == self.in_channels and self.config.bands is None:
            idx = list(range(count))
        else:
            idx = [b - 1 for b in self.scene_bands(count, "the DataArray")]
        data = np.asarray(da.values)[idx]
        nodata = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
        valid = self._array_valid(data, None if nodata is None else float(nodata))
        pred = self.predict_array(data, valid, progress=progress)
        out = xr.DataArray(
            pred,
            dims=("band", y_dim, x_dim),
            coords={"band": np.arange(1, self.out_channels + 1), y_dim: da[y_dim].values, x_dim: da[x_dim].values},
            attrs={"long_name": tuple(self.target.band_names)},
            name=da.name,
        )
        if da.rio.crs is not None:
            out = out.rio.write_crs(da.rio.crs)
        out = out.rio.write_transform(da.rio.transform())
        nd = self.target.nodata
        if nd is None and np.issubdtype(self.target.dtype, np.floating):
            nd = float("nan")
        return out.rio.write_nodata(nd, encoded=False) if nd is not None else out

    # ------------------------------------------------------------------ rasters
    def predict_raster(
        self,
        src_path: str | os.PathLike,
        dst_path: str | os.PathLike | None = None,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        bands: Sequence[int] | None = None,
        cog: bool | None = None,
    ) -> Path:
        """Predict a whole raster into a GeoTIFF on exactly its grid, streamed strip by strip.

        Args:
            src_path: the scene (any GDAL raster).
            dst_path: the output (default ``<scene>_pred.tif`` beside the scene).
            overwrite: replace an existing output.
            progress: called as ``progress(windows_done, windows_total)``.
            bands: 1-based scene bands feeding the model (default: the bundle's, or ``config.bands``).
            cog: write a Cloud Optimized GeoTIFF (default: ``config.cog``).

        Returns:
            The output path (written whole: a temporary name is renamed when complete).

        Raises:
            RasterReadError: unreadable scene. BandIndexError: scene lacks bands.
            OutputExistsError: output exists and ``overwrite`` is False.

        Example:
            >>> translator.predict_raster("scene.tif", "pred.tif", overwrite=True)  # doctest: +SKIP
            PosixPath('pred.tif')
        """
        src_path = Path(src_path)
        dst_path = Path(dst_path) if dst_path is not None else default_output_path(src_path)
        band_idx = self.check_scene(src_path, bands)
        check_output_free(dst_path, overwrite)
        info = raster_info(src_path)
        grid = info.grid
        may_be_invalid = info.nodata is not None or info.has_mask or any(
            np.issubdtype(np.dtype(info.dtypes[b - 1]), np.floating) for b in band_idx
        )
        plan = plan_windows(grid.height, grid.width, self.window, self.overlap, self.config.strip_rows)
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

        tags = {"GEOP2P_SOURCE": src_path.name, "GEOP2P_WINDOW": str(self.window), "GEOP2P_OVERLAP": str(self.overlap)}
        if self.source:
            tags["GEOP2P_MODEL"] = Path(self.source).name
        writer = PredictionWriter(
            dst_path,
            grid,
            count=self.out_channels,
            dtype=self.target.dtype,
            nodata=self.target.nodata,
            descriptions=list(self.target.band_names),
            write_mask=self.target.nodata is None and may_be_invalid,
            cog=self.config.cog if cog is None else cog,
            compress=self.config.compress,
            tags=tags,
            overwrite=overwrite,
        )
        try:
            with bounded_block_cache(PREDICT_CACHE_MB), writer:
                self._run(plan, read, writer.write_rows, progress)
        finally:
            ctx = state.get("ctx")
            if ctx is not None:
                ctx.__exit__(None, None, None)
        log.debug("Wrote %s (%d×%d, %d window(s))", dst_path, grid.width, grid.height, plan.n_windows)
        return dst_path


# ---------------------------------------------------------------------------------------------- scenes
def default_output_path(scene: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """``<scene stem>_pred.tif`` beside the scene, or in ``out_dir``.

    Example:
        >>> default_output_path("data/s2.tif").as_posix()
        'data/s2_pred.tif'
    """
    scene = Path(scene)
    folder = Path(out_dir) if out_dir is not None else scene.parent
    return folder / f"{scene.stem}_pred.tif"


def scene_outputs(
    scenes: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """The output path of every scene; ``out`` only for a single scene, ``out_dir`` for many.

    Raises:
        InputError: ``out`` with several scenes, both ``out`` and ``out_dir``, or two scenes mapping to one output.

    Example:
        >>> [p.name for p in scene_outputs(["a.tif", "b.tif"], out_dir="preds")]
        ['a_pred.tif', 'b_pred.tif']
    """
    if not scenes:
        raise InputError("No scene given; pass one or more rasters to predict.")
    if out is not None and out_dir is not None:
        raise InputError("Give either -o/--out (one scene) or --out-dir (any number of scenes), not both.")
    if out is not None:
        if len(scenes) > 1:
            raise InputError(
                f"-o/--out names one output but {len(scenes)} scenes were given; use --out-dir DIR for several scenes."
            )
        outputs = [Path(out)]
    else:
        outputs = [default_output_path(s, out_dir) for s in scenes]
    seen: dict[Path, str] = {}
    for scene, path in zip(scenes, outputs):
        key = path.resolve()
        if key in seen:
            raise InputError(
                f"Scenes '{seen[key]}' and '{scene}' would both be written to '{path}'; "
                "rename one or predict them into different folders."
            )
        if key == Path(scene).resolve():
            raise InputError(f"The output '{path}' is the scene itself; choose another output name.")
        seen[key] = str(scene)
    return outputs


def _rank_world() -> tuple[int, int]:
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def _all_ranks_ok(ok: bool, world: int) -> bool:
    """True when every rank's up-front checks passed (gloo all-reduce under torchrun; ``ok`` alone otherwise)."""
    if world <= 1 or "MASTER_ADDR" not in os.environ or not torch.distributed.is_available():
        return ok
    dist = torch.distributed
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo")
    try:
        flag = torch.tensor([1 if ok else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())
    finally:
        if created:
            dist.destroy_process_group()


def predict_scenes(
    scenes: Sequence[str | os.PathLike],
    model: str | os.PathLike | Translator,
    out: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    config: PredictConfig | None = None,
    progress: Callable[[Path, int, int], None] | None = None,
) -> list[Path]:
    """Predict several scenes, shared out across ``torchrun`` ranks (rank r takes ``scenes[r::world]``).

    Every check (model readable and a bundle, every scene readable with the
    model's bands, every output free unless ``overwrite``) runs before anything
    is written.  Without ``torchrun`` (``WORLD_SIZE`` unset) one process does
    every scene; no process group is needed since ranks never talk to each other.

    Args:
        scenes: input rasters.
        model: a bundle path or a :class:`Translator`.
        out: output path (one scene only).
        out_dir: output folder (``<scene>_pred.tif`` in it); default: beside each scene.
        overwrite: replace existing outputs.
        config: prediction settings (device, window, overlap, tta, cog, bands...).
        progress: called as ``progress(scene, windows_done, windows_total)``.

    Returns:
        The outputs this rank wrote.

    Example:
        >>> predict_scenes(["a.tif", "b.tif"], "run/model.safetensors", out_dir="preds")  # doctest: +SKIP
        [PosixPath('preds/a_pred.tif'), PosixPath('preds/b_pred.tif')]
    """
    config = config or PredictConfig()
    outputs = scene_outputs(scenes, out, out_dir)
    translator = model if isinstance(model, Translator) else Translator.from_file(model, device=None, config=config)
    rank, world = _rank_world()
    try:
        for scene, dst in zip(scenes, outputs):
            translator.check_scene(scene)
            check_output_free(dst, overwrite)
    except Exception:
        _all_ranks_ok(False, world)
        raise
    # no rank writes before every rank has checked every scene and output
    if not _all_ranks_ok(True, world):
        raise InputError("Another torchrun rank found a problem with the scenes or outputs; see its error above.")
    mine = list(zip(scenes, outputs))[rank::world]
    if world > 1:
        log.info("rank %d/%d: %d of %d scene(s)", rank, world, len(mine), len(scenes))
    written = []
    for scene, dst in mine:
        cb = None
        if progress is not None:
            cb = (lambda s: (lambda done, total: progress(Path(s), done, total)))(scene)
        written.append(translator.predict_raster(scene, dst, overwrite=overwrite, progress=cb))
    return written
