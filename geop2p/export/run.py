"""Run a chip export (``geop2p export-chips``): the output folder, the export loop, the index and the manifest.

The export checks everything up front (:func:`~geop2p.export.plan.plan_export`)
before it creates the output folder.  Then it reads, checks and writes each
chip pair (in worker processes when ``workers > 1``, see
:mod:`geop2p.export.workers`).  Statistics of the train chips are merged in
chip order, so the output is identical whatever the number of workers.  The
index and then the manifest are written last; a folder without a manifest is
an unfinished export, which ``resume=True`` completes.

Example:
    >>> from geop2p.export import ExportConfig, export_chips
    >>> summary = export_chips("s1.tif", "s2.tif", "chips/",
    ...                        ExportConfig(size=256, input_bands=(1, 2), workers=4))  # doctest: +SKIP
    >>> summary.counts  # doctest: +SKIP
    {'train': 812, 'val': 95, 'test': 101}
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import yaml

from geop2p.chips import chip_id
from geop2p.errors import ChipSizeError, ConfigError, InputError, OutputExistsError
from geop2p.export.config import ExportConfig
from geop2p.export.plan import ExportPlan, Sources, plan_export
from geop2p.export.workers import Task, _ChipResult, _results
from geop2p.formats.chip_manifest import CONFIG_NAME, INDEX_NAME, MANIFEST_NAME, ChipManifest, ChipSide
from geop2p.io.chip_folder import IndexRow, read_manifest, write_index, write_manifest, write_text_atomic
from geop2p.io.sources import RasterStack, parse_sources
from geop2p.split import SPLITS
from geop2p.stats import StatsAccumulator

__all__ = ["ExportSummary", "ProgressCallback", "export_chips"]

log = logging.getLogger(__name__)

#: ``progress(done, total)``, called after each chip.
ProgressCallback = Callable[[int, int], None]


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

    Example:
        >>> ExportSummary(Path("chips"), {"train": 8, "val": 1, "test": 1}, 10, 0, 2, 3, 0, 1.5).total
        10
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


# ---------------------------------------------------------------------------------------------- output folder


def _is_chip_folder(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() or (path / MANIFEST_NAME).is_file()


def _config_document(plan: ExportPlan) -> dict:
    """The ``export-config.yaml`` document: the options (less ``workers``), the resampling used, the sources."""
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
        return _summary_from_manifest(out, read_manifest(out), time.perf_counter() - t0)
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


def _summary_from_manifest(out: Path, manifest: ChipManifest, seconds: float) -> ExportSummary:
    """The summary of a complete export found in ``out`` (nothing written by this run)."""
    skipped = manifest.skipped
    return ExportSummary(
        out, dict(manifest.counts), 0, manifest.total, skipped.get("low_valid", 0),
        skipped.get("buffer", 0), skipped.get("outside_aoi", 0), seconds,
    )


def _chip_results(plan: ExportPlan, out: Path, resume: bool, tasks: list[Task], in_acc: StatsAccumulator,
                  tg_acc: StatsAccumulator) -> Iterator[_ChipResult]:
    """Yield each chip's result in order; merge each batch's histograms into the accumulators."""
    for batch in _results(plan, out, resume, tasks):
        yield from batch.chips
        if batch.input_hist is not None:
            in_acc.add(batch.input_hist)
            tg_acc.add(batch.target_hist)


def _side(stack: RasterStack) -> ChipSide:
    """The manifest's description of one side of every chip pair."""
    doc = stack.to_dict()
    return ChipSide(tuple(doc["bands"]), tuple(doc["band_names"]), doc["dtype"], stack.nodata, tuple(doc["sources"]))


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
    manifest = ChipManifest(
        input=_side(plan.input),
        target=_side(plan.target),
        grid=plan.grid,
        chip_spec=cfg.chip_spec,
        alignment=plan.alignment.to_dict(),
        split=cfg.split_spec,
        counts=counts,
        stats={"input": in_acc.result(), "target": tg_acc.result()},
        aoi={"path": cfg.aoi, "mode": cfg.aoi_mode} if cfg.aoi else None,
        skipped={
            "low_valid": low_valid,
            "buffer": sum(1 for s in plan.splits if s is None),
            "outside_aoi": plan.outside_aoi,
        },
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    write_manifest(out, manifest)
    seconds = time.perf_counter() - t0
    log.info("Wrote %d chips (%s) in %.1f s.", len(rows), ", ".join(f"{k} {v}" for k, v in counts.items()), seconds)
    return ExportSummary(out, counts, written, reused, low_valid, manifest.skipped["buffer"], plan.outside_aoi, seconds)
