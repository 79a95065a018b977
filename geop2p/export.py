"""Export paired, aligned, split chips from an input and a target raster (``geop2p export-chips``).

The export checks everything up front — files exist and are readable
rasters, bands exist, the footprints overlap, chips fit in the overlap, the
AOI overlaps, split fractions add up — before it creates the output folder.
Then it tiles the overlap into chip windows, splits them into train / val /
test by spatial blocks, and reads, checks and writes each chip pair (in
worker processes when ``workers > 1``).  Statistics of the train chips are
merged in chip order, so the output is identical whatever the number of
workers.  The index and then the manifest are written last; a folder without
a manifest is an unfinished export, which ``resume=True`` completes.

Example:
    >>> from geop2p.export import ExportConfig, export_chips
    >>> summary = export_chips("s1.tif", "s2.tif", "chips/",
    ...                        ExportConfig(size=256, input_bands=(1, 2), workers=4))  # doctest: +SKIP
    >>> summary.counts  # doctest: +SKIP
    {'train': 812, 'val': 95, 'test': 101}
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml
from rasterio.windows import Window

from geop2p import __version__
from geop2p.chips import ChipSpec, chip_id, chip_windows
from geop2p.errors import ChipSizeError, ConfigError, InputError, NoOverlapError, OutputExistsError
from geop2p.grid import GeoGrid
from geop2p.io.chip_folder import (
    CONFIG_NAME,
    INDEX_NAME,
    MANIFEST_NAME,
    ChipProfile,
    IndexRow,
    chip_env,
    chip_is_complete,
    read_chip,
    write_chip,
    write_index,
    write_json_atomic,
    write_text_atomic,
)
from geop2p.io.compression import check_compression
from geop2p.io.sources import Alignment, PairReader, RasterStack, open_stack, parse_sources, plan_alignment
from geop2p.io.vector import aoi_window, check_aoi_overlap, read_aoi
from geop2p.split import SPLITS, Split, SplitSpec, assign_splits
from geop2p.stats import StatsAccumulator, StatsPartial, merge_histograms

__all__ = ["AOI_MODES", "ExportConfig", "ExportPlan", "ExportSummary", "plan_export", "export_chips"]

log = logging.getLogger(__name__)

#: How chips relate to an AOI: entirely inside it, or touching it.
AOI_MODES: tuple[str, str] = ("within", "intersects")

#: ``progress(done, total)``, called after each chip.
ProgressCallback = Callable[[int, int], None]

Sources = str | os.PathLike | Sequence[str | os.PathLike]


def _ints(value: Any, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be 1-based band indexes like 1,2,3; got {value!r}.") from None
    return out


@dataclass(frozen=True)
class ExportConfig:
    """Every option of a chip export (the schema of ``export-config.yaml``).

    Attributes:
        input_bands: 1-based indexes into the stacked input bands (default: all).
        target_bands: 1-based indexes into the stacked target bands (default: all).
        size: chip edge in pixels, a multiple of 32.
        stride: step between chips in pixels (default: ``size``).
        min_valid: smallest fraction of pixels valid in both rasters for a chip to be kept.
        resampling: how the target is resampled onto the input grid (default: see
            :func:`geop2p.io.sources.default_resampling`).
        aoi: a vector file; only chips inside it (or touching it, see ``aoi_mode``) are kept.
        aoi_mode: ``"within"`` or ``"intersects"``.
        split: train, val, test fractions (two values: no test).
        split_mode: ``"blocks"`` (spatial, default) or ``"random"`` (leaks; warns).
        block_size: spatial block edge in pixels.
        buffer: minimum distance in pixels between val/test and train chips (default: ``size``).
        seed: split seed.
        workers: worker processes (1: run in this process).
        compress: chip compression, one of ``deflate``, ``zstd``, ``lzw``, ``none``.

    Example:
        >>> cfg = ExportConfig(size=128)
        >>> cfg.chip_spec.stride, cfg.split_spec.buffer
        (128, 128)
    """

    input_bands: tuple[int, ...] | None = None
    target_bands: tuple[int, ...] | None = None
    size: int = 256
    stride: int | None = None
    min_valid: float = 0.95
    resampling: str | None = None
    aoi: str | None = None
    aoi_mode: str = "within"
    split: tuple[float, ...] = (0.8, 0.1, 0.1)
    split_mode: str = "blocks"
    block_size: int = 1024
    buffer: int | None = None
    seed: int = 0
    workers: int = 1
    compress: str = "deflate"
    chip_spec: ChipSpec = field(init=False, repr=False, compare=False)
    split_spec: SplitSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_bands", _ints(self.input_bands, "input_bands"))
        object.__setattr__(self, "target_bands", _ints(self.target_bands, "target_bands"))
        spec = ChipSpec(self.size, self.stride, self.min_valid)
        object.__setattr__(self, "chip_spec", spec)
        object.__setattr__(self, "size", spec.size)
        object.__setattr__(self, "stride", spec.stride)
        object.__setattr__(self, "min_valid", spec.min_valid)
        if self.split_mode not in ("blocks", "random"):
            raise InputError(f"Unknown split mode {self.split_mode!r}; valid modes: blocks, random.")
        buffer = spec.size if self.buffer is None else self.buffer
        sspec = SplitSpec(tuple(self.split), self.block_size, buffer, self.seed, self.split_mode)
        object.__setattr__(self, "split_spec", sspec)
        object.__setattr__(self, "split", sspec.fractions)
        object.__setattr__(self, "buffer", sspec.buffer)
        object.__setattr__(self, "block_size", sspec.block_size)
        object.__setattr__(self, "seed", sspec.seed)
        if self.aoi_mode not in AOI_MODES:
            raise InputError(f"Unknown AOI mode {self.aoi_mode!r}; valid modes: {', '.join(AOI_MODES)}.")
        if self.aoi is not None:
            object.__setattr__(self, "aoi", os.fspath(self.aoi))
        check_compression(self.compress)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers must be a whole number >= 1, got {self.workers!r}; use e.g. --workers 4.")
        if self.resampling is not None:
            from geop2p.io.sources import RESAMPLING_NAMES

            if self.resampling not in RESAMPLING_NAMES:
                raise InputError(
                    f"Unknown resampling {self.resampling!r}; valid names: {', '.join(RESAMPLING_NAMES)}."
                )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names (keys of :meth:`to_dict` and of ``export-config.yaml``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    def to_dict(self) -> dict:
        """The resolved options as plain JSON/YAML values.

        Example:
            >>> ExportConfig().to_dict()["stride"]
            256
        """
        out = {}
        for k in self.keys():
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ExportConfig":
        """Build from a dict such as :meth:`to_dict` output; unknown keys are refused (listing the valid ones).

        Example:
            >>> ExportConfig.from_dict({"size": 64}).stride
            64
        """
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise ConfigError(f"Unknown export option(s) {', '.join(unknown)}; valid options: {', '.join(cls.keys())}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def read_yaml(cls, path: str | os.PathLike) -> dict:
        """The options of a YAML file as a dict, keys checked (an ``export-config.yaml``'s ``sources`` are ignored).

        Example:
            >>> ExportConfig.read_yaml("export.yaml")  # doctest: +SKIP
            {'size': 256, 'workers': 4}
        """
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"Cannot read export config '{p}' ({str(exc).splitlines()[0]}); expected a YAML mapping.") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"Export config '{p}' must be a YAML mapping of options, got {type(data).__name__}.")
        data.pop("sources", None)
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise ConfigError(
                f"Unknown export option(s) {', '.join(unknown)} in '{p}'; valid options: {', '.join(cls.keys())}."
            )
        return data

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "ExportConfig":
        """Build from a YAML file of options (an ``export-config.yaml`` written by an export works).

        Example:
            >>> ExportConfig.from_yaml("chips/export-config.yaml")  # doctest: +SKIP
        """
        return cls.from_dict(cls.read_yaml(path))


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


@dataclass(frozen=True)
class ExportSummary:
    """What an export did.

    Attributes:
        out_dir: the chip folder.
        counts: chips per split in the folder.
        written: chips written by this run.
        reused: chips found complete and kept (``resume``).
        low_valid: windows skipped because fewer than ``min_valid`` of their pixels are valid.
        dropped_buffer: val/test windows dropped for lying within the buffer of train chips.
        outside_aoi: windows outside the AOI.
        seconds: wall time.
    """

    out_dir: Path
    counts: dict[str, int]
    written: int
    reused: int
    low_valid: int
    dropped_buffer: int
    outside_aoi: int
    seconds: float

    @property
    def total(self) -> int:
        """Chips in the folder."""
        return sum(self.counts.values())


# ---------------------------------------------------------------------------------------------- planning


def _filter_aoi(windows: list[Window], grid: GeoGrid, aoi, mode: str) -> list[Window]:
    import shapely

    shapely.prepare(aoi)
    footprints = np.array([grid.footprint(w) for w in windows], dtype=object)
    if mode == "within":
        keep = shapely.within(footprints, aoi)
    else:
        keep = shapely.intersects(footprints, aoi) & ~shapely.touches(footprints, aoi)
    return [w for w, k in zip(windows, keep) if k]


def _grow(window: Window, size: int, region: Window) -> Window:
    """Grow ``window`` (centred) to at least ``size`` pixels per side, staying inside ``region``."""

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


# ---------------------------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _ChipResult:
    index: int
    kept: bool
    reused: bool
    valid_fraction: float
    input_stats: StatsPartial | None
    target_stats: StatsPartial | None


@dataclass(frozen=True)
class _WorkerSetup:
    plan: ExportPlan
    out_dir: Path
    resume: bool


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
        self.reader.close()
        self.env.__exit__(None, None, None)

    def process(self, task: tuple[int, Window, str]) -> _ChipResult:
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


def _process_batch(worker: _Worker, batch: list[tuple[int, Window, str]]) -> _BatchResult:
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


def _init_worker(setup: _WorkerSetup) -> None:
    global _WORKER
    _WORKER = _Worker(setup)


def _work(batch: list[tuple[int, Window, str]]) -> _BatchResult:
    if _WORKER is None:  # internal invariant, not user input
        raise RuntimeError("export worker used before its initializer ran")
    return _process_batch(_WORKER, batch)


# ---------------------------------------------------------------------------------------------- output folder


def _is_chip_folder(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() or (path / MANIFEST_NAME).is_file()


def _config_document(plan: ExportPlan) -> dict:
    doc = plan.config.to_dict()
    doc.pop("workers")
    doc["resampling"] = plan.alignment.resampling
    doc["sources"] = {"input": list(plan.input.paths), "target": list(plan.target.paths)}
    return doc


def _prepare_out_dir(out: Path, plan: ExportPlan, overwrite: bool, resume: bool) -> bool:
    """Create or check the output folder; return True for a fresh export."""
    if overwrite and resume:
        raise InputError("--overwrite and --resume exclude each other: --resume completes, --overwrite starts again.")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"Output '{out}' is a file; expected a folder name for the chips.")
    if out.exists():
        if resume:
            config_path = out / CONFIG_NAME
            if not config_path.is_file():
                raise InputError(f"Cannot resume into '{out}': it has no {CONFIG_NAME}, so it is not a chip export.")
            try:
                previous = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(
                    f"Cannot resume into '{out}': its {CONFIG_NAME} is unreadable ({str(exc).splitlines()[0]}); "
                    "use --overwrite to start again."
                ) from exc
            if not isinstance(previous, dict):
                raise ConfigError(f"Cannot resume into '{out}': its {CONFIG_NAME} is not a mapping; use --overwrite.")
            current = _config_document(plan)
            diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            if diff:
                detail = "; ".join(f"{k}: {previous.get(k)!r} then, {current.get(k)!r} now" for k in diff)
                raise ConfigError(
                    f"Cannot resume into '{out}' with different settings ({detail}); "
                    "use the same options, or --overwrite to start again."
                )
            return False
        if not overwrite:
            raise OutputExistsError(
                f"Output folder '{out}' already exists; choose another folder, pass --overwrite to replace it, "
                "or --resume to finish an interrupted export."
            )
        if any(out.iterdir()) and not _is_chip_folder(out):
            raise OutputExistsError(
                f"'{out}' is not empty and is not a geop2p chip folder; refusing to delete it with --overwrite. "
                "Choose another output folder."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return True


def _remove_partials(out: Path) -> None:
    for sub in (out, out / "input", out / "target"):
        if sub.is_dir():
            for p in sub.glob(".*.partial-*"):
                p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- export


def export_chips(
    input: Sources,
    target: Sources,
    out_dir: str | os.PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportSummary:
    """Export aligned, split chip pairs of ``input`` and ``target`` into ``out_dir`` (see docs/formats.md).

    Args:
        input: input raster(s): a path, comma-joined paths, or a list; their bands are stacked in order.
        target: target raster(s), same forms; read onto the input grid.
        out_dir: the chip folder to create.
        config: export options.
        overwrite: replace an existing chip folder.
        resume: finish an interrupted export in ``out_dir`` (same options), keeping complete chips.
        progress: called as ``progress(done, total)`` after each chip.

    Returns:
        An :class:`ExportSummary`.

    Raises:
        Geop2pError: bad input, found before anything is written (and ``OutputExistsError`` for an existing folder).

    Example:
        >>> export_chips("sar.tif", "optical.tif", "chips", ExportConfig(size=256, workers=4))  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    plan = plan_export(parse_sources(input), parse_sources(target), config)
    out = Path(out_dir)
    if resume and (out / MANIFEST_NAME).is_file():
        _prepare_out_dir(out, plan, False, True)  # checks the settings match
        log.info("'%s' is already a complete export; nothing to do.", out)
        return _summary_from_manifest(out, plan, time.perf_counter() - t0)
    fresh = _prepare_out_dir(out, plan, overwrite, resume)
    try:
        return _run(plan, out, resume=not fresh, progress=progress, t0=t0)
    except KeyboardInterrupt:
        log.warning("Export interrupted; run the same command with --resume to finish it.")
        raise
    except BaseException:
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _summary_from_manifest(out: Path, plan: ExportPlan, seconds: float) -> ExportSummary:
    from geop2p.io.chip_folder import read_manifest

    manifest = read_manifest(out)
    skipped = manifest.skipped
    return ExportSummary(
        out, dict(manifest.counts), 0, manifest.total, skipped.get("low_valid", 0),
        skipped.get("buffer", 0), skipped.get("outside_aoi", 0), seconds,
    )


#: chips per worker call: large enough that per-call overhead and histograms shipped back are
#: small, small enough that the progress bar moves and the workers stay balanced
_BATCH = 16


def _results(plan: ExportPlan, out: Path, resume: bool, tasks: list) -> Any:
    """Yield :class:`_BatchResult` objects in chip order, from this process or a pool of workers."""
    setup = _WorkerSetup(plan, out, resume)
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
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _chip_results(plan: ExportPlan, out: Path, resume: bool, tasks: list, in_acc: StatsAccumulator,
                  tg_acc: StatsAccumulator) -> Any:
    """Yield each chip's result in order; merge each batch's histograms into the accumulators."""
    for batch in _results(plan, out, resume, tasks):
        yield from batch.chips
        if batch.input_hist is not None:
            in_acc.add(batch.input_hist)
            tg_acc.add(batch.target_hist)


def _run(plan: ExportPlan, out: Path, resume: bool, progress: ProgressCallback | None, t0: float) -> ExportSummary:
    cfg = plan.config
    write_text_atomic(out / CONFIG_NAME, yaml.safe_dump(_config_document(plan), sort_keys=False))
    (out / "input").mkdir(exist_ok=True)
    (out / "target").mkdir(exist_ok=True)
    if resume:
        _remove_partials(out)
    tasks = plan.tasks
    in_acc = StatsAccumulator(plan.input.dtype, plan.input.band_names)
    tg_acc = StatsAccumulator(plan.target.dtype, plan.target.band_names)
    rows: list[IndexRow] = []
    footprints = []
    written = reused = low_valid = 0
    log.info(
        "Exporting up to %d chips of %d px (%s) with %d worker(s) into '%s'.",
        len(tasks), cfg.size, ", ".join(f"{k} {v}" for k, v in plan.planned_counts().items()), cfg.workers, out,
    )
    for done, result in enumerate(_chip_results(plan, out, resume, tasks, in_acc, tg_acc), start=1):
        _, window, split = tasks[done - 1]
        if result.index != tasks[done - 1][0]:
            raise RuntimeError("chip results arrived out of order")  # internal invariant
        if not result.kept:
            low_valid += 1
        else:
            reused += result.reused
            written += not result.reused
            rows.append(
                IndexRow(chip_id(window), split, int(window.row_off), int(window.col_off),
                         int(window.height), int(window.width), round(result.valid_fraction, 6))
            )
            footprints.append(plan.grid.footprint(window))
            if result.input_stats is not None:
                in_acc.add(result.input_stats)
                tg_acc.add(result.target_stats)
        if progress is not None:
            progress(done, len(tasks))
    if not rows:
        raise ChipSizeError(
            f"No chip has at least {cfg.min_valid:g} of its pixels valid in both rasters; "
            "lower --min-valid, or check the nodata values and the overlap of input and target."
        )
    counts = {s: sum(1 for r in rows if r.split == s) for s in SPLITS}
    if counts["train"] == 0:
        log.warning("No train chip passed --min-valid %g; the statistics are empty.", cfg.min_valid)
    write_index(out / INDEX_NAME, rows, footprints, plan.grid.crs)
    manifest = {
        "format": "geop2p-chips",
        "format_version": 1,
        "geop2p_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "input": plan.input.to_dict(),
        "target": plan.target.to_dict(),
        "grid": plan.grid.to_dict(),
        "chip_spec": cfg.chip_spec.to_dict(),
        "alignment": plan.alignment.to_dict(),
        "aoi": {"path": cfg.aoi, "mode": cfg.aoi_mode} if cfg.aoi else None,
        "split": cfg.split_spec.to_dict(),
        "counts": counts,
        "skipped": {
            "low_valid": low_valid,
            "buffer": sum(1 for s in plan.splits if s is None),
            "outside_aoi": plan.outside_aoi,
        },
        "stats": {"input": in_acc.result().to_dict(), "target": tg_acc.result().to_dict()},
    }
    write_json_atomic(out / MANIFEST_NAME, manifest)
    seconds = time.perf_counter() - t0
    log.info("Wrote %d chips (%s) in %.1f s.", len(rows), ", ".join(f"{k} {v}" for k, v in counts.items()), seconds)
    return ExportSummary(
        out, counts, written, reused, low_valid, manifest["skipped"]["buffer"], plan.outside_aoi, seconds
    )
