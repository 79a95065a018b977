"""Reading, checking and writing chip pairs, in this process or in a pool of worker processes.

Each process holds one :class:`_Worker` (open datasets, chip profiles, the
GDAL environment).  Chips travel in batches of :data:`_BATCH` consecutive
tasks; a batch returns each chip's result with its train statistics reduced
to moments, plus one merged histogram per side, so little crosses the process
boundary.  :func:`_results` yields the batches in chip order whatever the
number of workers, which keeps the statistics (merged in that order) and so
the whole output identical for any ``workers``.  Worker processes are
started with ``spawn``, so they inherit no open dataset or GDAL state.

A worker process never outlives the export: a watchdog thread started by its
initializer ends it (and with it the pool's pipes, which lets the
``multiprocessing`` resource tracker end too) within about a second once its
parent is gone, even when the parent was killed with ``kill -9``.  A worker
that dies (killed, out of memory) stops the export with one
:class:`~geop2p.errors.WriteError` line; the chips written so far stay for ``--resume``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from rasterio.windows import Window

from geop2p.chips import chip_id
from geop2p.errors import WriteError
from geop2p.export.plan import ExportPlan
from geop2p.io.gdal_log import route_gdal_messages
from geop2p.io.chip_folder import ChipProfile, chip_env, chip_is_complete, read_chip, write_chip
from geop2p.io.sources import PairReader
from geop2p.stats import StatsPartial, merge_histograms

__all__: list[str] = []

#: ``(index in ExportPlan.windows, window, split)`` of one chip to export.
Task = tuple[int, Window, str]

#: how often (seconds) a worker process checks that its parent still runs
WATCHDOG_INTERVAL = 0.5


#: chips per worker call: large enough that per-call overhead and histograms shipped back are
#: small, small enough that the progress bar moves and the workers stay balanced
_BATCH = 16


@dataclass(frozen=True)
class _ChipResult:
    """What became of one chip: kept (written or reused) or skipped, its valid fraction, its train statistics."""

    index: int
    kept: bool
    reused: bool
    valid_fraction: float
    input_stats: StatsPartial | None
    target_stats: StatsPartial | None


@dataclass(frozen=True)
class _WorkerSetup:
    """What a worker process needs (pickled once per process)."""

    plan: ExportPlan
    out_dir: Path
    resume: bool
    parent: int = 0  # the pid of the export's main process (0: this process's parent)


class _Worker:
    """Per-process state: open datasets, profiles; processes one chip at a time."""

    def __init__(self, setup: _WorkerSetup) -> None:
        plan = setup.plan
        cfg = plan.config
        self.plan = plan
        self.resume = setup.resume
        self.out_dir = setup.out_dir
        self.env = chip_env()
        self.env.__enter__()
        self.reader = PairReader(plan.input, plan.target, plan.alignment)
        crs = plan.grid.crs
        self.profiles = {
            side: ChipProfile(stack.dtype, stack.count, stack.nodata, stack.band_names, crs, cfg.size, cfg.compress)
            for side, stack in (("input", plan.input), ("target", plan.target))
        }

    def close(self) -> None:
        """Close the datasets and leave the GDAL environment."""
        self.reader.close()
        self.env.__exit__(None, None, None)

    def process(self, task: Task) -> _ChipResult:
        """Read (or, resuming, reuse) one chip pair, check its valid fraction, write it."""
        index, window, split = task
        cid = chip_id(window)
        transform = self.plan.grid.window_transform(window)
        paths = {side: self.out_dir / side / f"{cid}.tif" for side in ("input", "target")}
        size = self.plan.config.size
        reused = self.resume and all(
            chip_is_complete(paths[s], transform, self.profiles[s], size) for s in ("input", "target")
        )
        if reused:
            x, valid, _ = read_chip(paths["input"])
            y, y_valid, _ = read_chip(paths["target"])
            valid &= y_valid
        else:
            x, y, valid = self.reader.read(window)
        fraction = float(np.count_nonzero(valid)) / valid.size
        if not reused:
            if fraction < self.plan.config.min_valid:
                return _ChipResult(index, False, False, fraction, None, None)
            write_chip(paths["input"], x, valid, transform, self.profiles["input"])
            write_chip(paths["target"], y, valid, transform, self.profiles["target"])
        if split == "train":
            return _ChipResult(
                index, True, reused, fraction, StatsPartial.from_array(x, valid), StatsPartial.from_array(y, valid)
            )
        return _ChipResult(index, True, reused, fraction, None, None)


@dataclass(frozen=True)
class _BatchResult:
    """The results of a run of consecutive chips: per-chip moments, one merged histogram per side."""

    chips: list[_ChipResult]
    input_hist: StatsPartial | None
    target_hist: StatsPartial | None


def _process_batch(worker: _Worker, batch: list[Task]) -> _BatchResult:
    results = [worker.process(task) for task in batch]
    input_hist = merge_histograms([r.input_stats for r in results])
    target_hist = merge_histograms([r.target_stats for r in results])
    slim = [
        replace(r, input_stats=r.input_stats.moments_only(), target_stats=r.target_stats.moments_only())
        if r.input_stats is not None else r
        for r in results
    ]
    return _BatchResult(slim, input_hist, target_hist)


_WORKER: _Worker | None = None


def _watch_parent(parent: int, interval: float = WATCHDOG_INTERVAL) -> None:
    """End this process as soon as ``parent`` is no longer its parent (it died; this process was re-parented)."""
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)


def start_watchdog(parent: int = 0, interval: float = WATCHDOG_INTERVAL) -> threading.Thread:
    """Start a daemon thread that ends this process when ``parent`` (default: its parent now) is no longer its parent."""
    thread = threading.Thread(target=_watch_parent, args=(parent or os.getppid(), interval), name="geop2p-watchdog",
                              daemon=True)
    thread.start()
    return thread


def _init_worker(setup: _WorkerSetup) -> None:
    global _WORKER
    start_watchdog(setup.parent)
    route_gdal_messages()
    _WORKER = _Worker(setup)


def _work(batch: list[Task]) -> _BatchResult:
    if _WORKER is None:  # internal invariant, not user input
        raise RuntimeError("export worker used before its initializer ran")
    return _process_batch(_WORKER, batch)


def _results(plan: ExportPlan, out: Path, resume: bool, tasks: list[Task]) -> Iterator[_BatchResult]:
    """Yield :class:`_BatchResult` objects in chip order, from this process or a pool of workers."""
    setup = _WorkerSetup(plan, out, resume, os.getpid())
    batches = [tasks[i : i + _BATCH] for i in range(0, len(tasks), _BATCH)]
    workers = min(plan.config.workers, max(1, len(batches)))
    if workers == 1:
        worker = _Worker(setup)
        try:
            for batch in batches:
                yield _process_batch(worker, batch)
        finally:
            worker.close()
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(setup,)) as pool:
        try:
            yield from pool.map(_work, batches)
        except BrokenProcessPool:
            raise WriteError(
                f"An export worker process died (killed, or out of memory?); the complete chips in '{out}' are "
                "kept: run the same command again with --resume (fewer --workers use less memory)."
            ) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
