"""The sliding-window engine: reader thread → network (calling thread) → writer thread, blended, streamed.

The engine knows windows, strips, batches and blending (:mod:`geop2p.tiling`);
it knows nothing of rasters, bundles or normalisers.  :func:`run_pipeline`
takes three callables and a :class:`~geop2p.tiling.WindowPlan`:

1. ``read(strip)`` runs on a **reader thread**, one strip of window rows at a
   time (with the halo rows its windows overlap into); it returns the strip's
   network input ``(channels, rows, width)`` (already in the network's range)
   and its validity ``(rows, width)``.  The engine reflect-pads the input up to
   whole windows (a scene smaller than a window).
2. ``predict(batch)`` runs on the **calling thread**: ``(B, channels, w, w)``
   windows in, ``(B, out, w, w)`` float32 predictions out, ``batch_size``
   windows at a time in row-major order.
3. The **writer thread** blends the window predictions into a float32 buffer a
   strip high, with Hann/cosine weights normalised by the summed weights,
   and hands every row no later window can touch to ``sink(row_off, rows,
   valid)``, top to bottom.

Reading, compute and writing overlap through bounded queues (``queue_depth``
strips each), so memory is a few strips, not the scene.  When any stage
fails, or the caller is interrupted (Ctrl-C, or SIGTERM, which the CLI turns
into the same ``KeyboardInterrupt``), every stage stops and both threads are
joined before the error is raised in the caller, so the writer can then remove
its partial output safely.

:class:`TargetCast` turns blended rows from the network's range into a
target's units and dtype (the last step before a sink writes them).

Example:
    >>> import numpy as np
    >>> from geop2p.tiling import plan_windows
    >>> plan = plan_windows(100, 70, window=64, overlap=16)
    >>> image = np.random.default_rng(0).uniform(-1, 1, (1, 100, 70)).astype(np.float32)
    >>> out = np.zeros_like(image)
    >>> def read(strip):
    ...     rows = slice(strip.read_row_off, min(strip.read_row_end, 100))
    ...     return image[:, rows], np.ones((rows.stop - rows.start, 70), bool)
    >>> def sink(row_off, rows, valid):
    ...     out[:, row_off : row_off + rows.shape[1]] = rows
    >>> run_pipeline(plan, read, lambda batch: batch, sink, channels=1)
    >>> bool(np.allclose(out, image, atol=1e-6))
    True
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from geop2p.normalize import Normalizer
from geop2p.tiling import Strip, WindowPlan, pad_to_window

__all__ = ["Progress", "TargetCast", "run_pipeline"]

log = logging.getLogger(__name__)

#: ``progress(windows_done, windows_total)``
Progress = Callable[[int, int], None]
Read = Callable[[Strip], "tuple[np.ndarray, np.ndarray]"]
Predict = Callable[[np.ndarray], np.ndarray]
Sink = Callable[[int, np.ndarray, np.ndarray], None]


# ---------------------------------------------------------------------------------------------- threads
class _Stopped(Exception):
    """Raised inside a pipeline stage when another stage failed."""


_DONE = object()


class _Pipeline:
    """Bounded queues between threads that give up as soon as any stage fails."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.finished: list[threading.Event] = []

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
        finished = threading.Event()
        self.finished.append(finished)

        def run() -> None:
            try:
                target()
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self.errors.append(exc)
                self.stop.set()
            finally:
                finished.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread


def _wait_all(pipe: _Pipeline) -> None:
    """Wait until every stage thread has finished, even through further interrupts (a second Ctrl-C or SIGTERM).

    It waits on each thread's own "finished" event rather than in ``Thread.join``:
    an interrupted ``join`` (Python 3.11) marks a thread as stopped while it
    still runs, and the caller would then remove the file the writer is writing.
    The last interrupt is raised again once every thread has finished.
    """
    interrupt: BaseException | None = None
    for finished in pipe.finished:
        while True:
            try:
                if finished.wait(0.05):
                    break
            except KeyboardInterrupt as exc:
                interrupt = exc
    if interrupt is not None:
        raise interrupt


# ---------------------------------------------------------------------------------------------- blending
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


# ---------------------------------------------------------------------------------------------- casting
@dataclass(frozen=True)
class TargetCast:
    """De-normalise, round/clip to the target dtype and keep valid values off the nodata value.

    Attributes:
        normalizer: the target's normalizer (network range → units).
        dtype: the target's data type.
        nodata: the target's nodata value, or None.

    Example:
        >>> cast = TargetCast(Normalizer.identity(1), np.dtype("uint8"), nodata=0)
        >>> cast(np.array([[[-3.0, 0.2, 7.6, 300.0]]]), np.ones((1, 4), bool)).tolist()
        [[[1, 1, 8, 255]]]
        >>> cast.fill_value
        0.0
    """

    normalizer: Normalizer
    dtype: np.dtype
    nodata: float | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.nodata is not None:
            object.__setattr__(self, "nodata", float(self.nodata))

    @property
    def fill_value(self) -> float:
        """What invalid pixels hold: the nodata value, else NaN for a float dtype, else 0."""
        if self.nodata is not None:
            return self.nodata
        return float("nan") if np.issubdtype(self.dtype, np.floating) else 0

    def __call__(self, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``rows`` ``(bands, n, width)`` in the network's range → target units and dtype (``valid``: ``(n, width)``)."""
        values = self.normalizer.denormalize(rows)
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


# ---------------------------------------------------------------------------------------------- engine
def _predict_strip(
    plan: WindowPlan, strip: Strip, x: np.ndarray, predict: Predict, channels: int, batch_size: int,
    tick: Callable[[int], None],
) -> np.ndarray:
    wins = plan.windows(strip)
    win = plan.window
    out = np.empty((len(wins), channels, win, win), np.float32)
    for i in range(0, len(wins), batch_size):
        chunk = wins[i : i + batch_size]
        batch = np.stack(
            [x[:, int(w.row_off) - strip.read_row_off :][:, :win, int(w.col_off) : int(w.col_off) + win] for w in chunk]
        )
        out[i : i + len(chunk)] = predict(batch)
        tick(len(chunk))
    return out


def run_pipeline(
    plan: WindowPlan,
    read: Read,
    predict: Predict,
    sink: Sink,
    *,
    channels: int,
    batch_size: int = 8,
    blend: str = "hann",
    queue_depth: int = 2,
    progress: Progress | None = None,
) -> None:
    """Predict every window of ``plan`` and hand the blended rows to ``sink``, streamed strip by strip.

    Args:
        plan: the windows and strips (:func:`geop2p.tiling.plan_windows`).
        read: ``read(strip) -> (x, valid)`` on the reader thread: ``x`` the network input of the
            strip's rows ``strip.read_row_off`` up to ``min(strip.read_row_end, plan.height)``,
            ``(channels, rows, plan.width)`` float32; ``valid`` ``(rows, plan.width)`` bool.
        predict: ``predict(batch) -> preds`` on the calling thread, ``(B, C, w, w)`` → ``(B, channels, w, w)``.
        sink: ``sink(row_off, rows, valid)`` on the writer thread, called top to bottom with
            blended rows ``(channels, n, plan.width)`` float32 in the network's range and their validity.
        channels: how many bands ``predict`` returns.
        batch_size: windows per ``predict`` call.
        blend: ``hann`` or ``none`` (:data:`geop2p.tiling.BLEND_KINDS`).
        queue_depth: strips buffered between the stages.
        progress: called as ``progress(windows_done, windows_total)`` after each batch.

    Raises:
        Whatever a stage raised first; the other stages are stopped and joined before it is raised.
    """
    pipe = _Pipeline()
    read_q: queue.Queue = queue.Queue(maxsize=queue_depth)
    write_q: queue.Queue = queue.Queue(maxsize=queue_depth)
    blender = _Blender(plan, channels, blend)
    total = plan.n_windows
    done = 0

    def reader() -> None:
        for strip in plan.strips:
            x, valid = read(strip)
            x = np.ascontiguousarray(pad_to_window(x, strip.read_height, plan.padded_width))
            pipe.put(read_q, (strip, x, valid))
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
                sink(row_off, rows, valid[:n])

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
            pipe.put(write_q, (strip, _predict_strip(plan, strip, x, predict, channels, batch_size, tick), valid))
        pipe.put(write_q, _DONE)
        while threads[1].is_alive() and not pipe.stop.is_set():
            threads[1].join(0.05)
    except _Stopped:
        pass  # a thread failed; its error is raised below
    finally:
        # on success both threads are done; on any failure (here or in a thread, Ctrl-C and
        # SIGTERM included) stop them, and wait until they have: only then may the caller
        # close and remove the output the writer thread writes into
        pipe.stop.set()
        _wait_all(pipe)
        for t in threads:
            t.join()
    if pipe.errors:
        raise pipe.errors[0]
    log.debug("%d windows in %.2fs", total, time.perf_counter() - t0)
