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

import contextlib
import datetime as _dt
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import yaml

from geop2p.chips import chip_id
from geop2p.errors import ChipSizeError, Geop2pError, OutputExistsError, WriteError
from geop2p.export.config import ExportConfig
from geop2p.export.folder import (
    SIDES,
    ExportFolder,
    OutDir,
    check_same_settings,
    inspect_out_dir,
    is_partial,
    read_records,
    resolved_path,
)
from geop2p.export.notices import DeferredNotices
from geop2p.export.plan import ExportPlan, Sources, plan_export
from geop2p.export.workers import Task, _ChipResult, _results
from geop2p.formats.chip_manifest import CONFIG_NAME, INDEX_NAME, MANIFEST_NAME, ChipManifest, ChipSide
from geop2p.io.atomic import write_error
from geop2p.io.chip_folder import (
    RESUME_HINT,
    IndexRow,
    read_manifest,
    write_index,
    write_manifest,
    write_text_atomic,
)
from geop2p.io.gdal_log import route_gdal_messages
from geop2p.io.lock import LOCK_NAME, FolderLock
from geop2p.io.sources import RasterStack, parse_sources
from geop2p.split import SPLITS
from geop2p.stats import StatsAccumulator

__all__ = ["ExportSummary", "ProgressCallback", "check_export", "config_document", "export_chips"]

log = logging.getLogger(__name__)

_ROOT_PARTIALS = frozenset(Path(n).stem for n in (MANIFEST_NAME, INDEX_NAME, CONFIG_NAME))
_CHIP_PARTIALS = re.compile(r".+")

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


# ---------------------------------------------------------------------------------------------- checks


def config_document(plan: ExportPlan) -> dict:
    """The ``export-config.yaml`` document: the options (less ``workers``), the resampling used, the sources.

    Source (and AOI) paths are recorded resolved and absolute, so that ``--resume`` recognises the same
    rasters named another way.
    """
    doc = plan.config.to_dict()
    doc.pop("workers")
    doc["resampling"] = plan.alignment.resampling
    if doc.get("aoi"):
        doc["aoi"] = resolved_path(doc["aoi"])
    doc["sources"] = {"input": [resolved_path(p) for p in plan.input.paths],
                      "target": [resolved_path(p) for p in plan.target.paths]}
    return doc


def _protected(input: Sources, target: Sources, config: ExportConfig) -> list[str]:
    """The command's inputs: what ``--overwrite`` must never delete."""
    return [*parse_sources(input), *parse_sources(target), *([config.aoi] if config.aoi else [])]


def _validate(input: Sources, target: Sources, out: Path, config: ExportConfig, overwrite: bool, resume: bool,
              held: contextlib.ExitStack | None) -> tuple[ExportPlan, OutDir]:
    """Every check an export makes before it writes: OUT_DIR, its lock (into ``held``), the plan, the settings."""
    if overwrite and resume:
        inspect_out_dir(out, overwrite, resume)  # raises: the two exclude each other
    if held is not None and (overwrite or resume) and out.is_dir():
        held.enter_context(FolderLock(out, "export"))  # before the folder is read, so no other export changes it
    state = inspect_out_dir(out, overwrite, resume, _protected(input, target, config))
    plan = plan_export(input, target, config)
    if resume and state.records is not None and state.records.config is not None:
        check_same_settings(out, state.records.config, config_document(plan))
    return plan, state


def check_export(
    input: Sources,
    target: Sources,
    out_dir: str | os.PathLike,
    config: ExportConfig = ExportConfig(),
    *,
    overwrite: bool = False,
    resume: bool = False,
) -> ExportPlan:
    """Make every check :func:`export_chips` makes (OUT_DIR included) and return the plan; write nothing.

    What planning logs or warns is passed on only once every check has passed.

    Raises:
        Geop2pError: as :func:`export_chips` would, before it writes anything.

    Example:
        >>> check_export("s1.tif", "s2.tif", "chips", ExportConfig(size=256)).planned_counts()  # doctest: +SKIP
        {'train': 830, 'val': 101, 'test': 97}
    """
    with DeferredNotices() as notices:
        plan, _ = _validate(input, target, Path(out_dir), config, overwrite, resume, None)
    notices.release()
    return plan


# ---------------------------------------------------------------------------------------------- output folder


def _create(out: Path, held: contextlib.ExitStack) -> list[Path]:
    """Create OUT_DIR (and missing parents) and lock it; return the folders made, deepest first.

    Refuses if another export created OUT_DIR meanwhile.
    """
    made = [out]
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        made.append(parent)
        parent = parent.parent
    try:
        out.mkdir(parents=True)
    except FileExistsError:
        _created_by_another(out)
    except OSError as exc:
        raise write_error(out, exc, RESUME_HINT) from None
    held.enter_context(FolderLock(out, "export"))
    return made


def _created_by_another(out: Path) -> None:
    """OUT_DIR appeared while this export was planned: name the export that holds it, or say it exists."""
    deadline = time.monotonic() + 2.0
    while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    lock = FolderLock(out, "export")
    lock.acquire()  # raises FolderLockedError, naming the other export, while it runs
    lock.release()
    raise OutputExistsError(
        f"Output folder '{out}' was created by another process while this export was being checked; "
        "choose another folder, or pass --resume or --overwrite."
    )


def _remove_partials(out: Path) -> None:
    """Remove the temporary files of killed exports (this one holds the lock: no other export writes here)."""
    for sub, stems in ((out, _ROOT_PARTIALS), *((out / side, _CHIP_PARTIALS) for side in SIDES)):
        if sub.is_dir():
            for p in sub.glob(".*.partial-*"):
                if is_partial(p.name, stems):
                    with contextlib.suppress(OSError):
                        p.unlink()


def _discard(out: Path) -> None:
    """Remove what a failed export wrote into ``out`` (never another file; never the folder itself)."""
    with contextlib.suppress(Geop2pError, OSError):
        ExportFolder(out, read_records(out)).remove()


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

    Everything is checked before anything is written (OUT_DIR, its lock, the sources, the options); what the
    checks log or warn is passed on once they have all passed.  The folder is locked for the whole export, so
    a second export into it is refused.  ``overwrite`` removes only what geop2p wrote there, by the folder's
    own records (see :mod:`geop2p.export.folder`); a full disk stops the export with one line, keeping every
    complete chip for ``resume``.

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
        Geop2pError: bad input, found before anything is written (``OutputExistsError`` for an existing
            folder, ``FolderLockedError`` when another export writes into it); ``DiskFullError`` /
            ``WriteError`` when an output cannot be written.

    Example:
        >>> export_chips("sar.tif", "optical.tif", "chips", ExportConfig(size=256, workers=4))  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    route_gdal_messages()
    out = Path(out_dir)
    created: list[Path] = []
    try:
        with contextlib.ExitStack() as held:
            notices = DeferredNotices()
            with notices:
                plan, state = _validate(input, target, out, config, overwrite, resume, held)
                if resume and state.complete:
                    log.info("'%s' is already a complete export; nothing to do.", out)
                else:
                    log.info(
                        "Exporting up to %d chips of %d px (%s) with %d worker(s) into '%s'.",
                        len(plan.tasks), config.size,
                        ", ".join(f"{k} {v}" for k, v in plan.planned_counts().items()), config.workers, out,
                    )
            if resume and state.complete:
                notices.release()
                return _summary_from_manifest(out, read_manifest(out), time.perf_counter() - t0)
            if not state.exists:
                created = _create(out, held)
            elif overwrite:
                state.folder().remove(_protected(input, target, config))
            resuming = resume and state.exists
            try:
                return _run(plan, out, resuming, notices, progress, t0)
            except KeyboardInterrupt:
                notices.release()
                log.warning("Export interrupted; run the same command with --resume to finish it.")
                raise
            except WriteError:
                raise  # complete chips stay, for --resume (the error says so)
            except BaseException:
                if not resuming:
                    _discard(out)
                raise
    except BaseException:
        for folder in created:  # only those left empty: an export that stopped before writing anything
            with contextlib.suppress(OSError):
                folder.rmdir()
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


def _run(plan: ExportPlan, out: Path, resume: bool, notices: DeferredNotices, progress: ProgressCallback | None,
         t0: float) -> ExportSummary:
    """Write the chips, the index and the manifest; pass the checks' notices on once the first chip is kept."""
    cfg = plan.config
    write_text_atomic(out / CONFIG_NAME, yaml.safe_dump(config_document(plan), sort_keys=False))
    for side in SIDES:
        try:
            (out / side).mkdir(exist_ok=True)
        except OSError as exc:
            raise write_error(out / side, exc, RESUME_HINT) from None
    if resume:
        _remove_partials(out)
    tasks = plan.tasks
    in_acc = StatsAccumulator(plan.input.dtype, plan.input.band_names)
    tg_acc = StatsAccumulator(plan.target.dtype, plan.target.band_names)
    rows: list[IndexRow] = []
    footprints = []
    written = reused = low_valid = 0
    for done, result in enumerate(_chip_results(plan, out, resume, tasks, in_acc, tg_acc), start=1):
        _, window, split = tasks[done - 1]
        if result.index != tasks[done - 1][0]:
            raise RuntimeError("chip results arrived out of order")  # internal invariant
        if not result.kept:
            low_valid += 1
        else:
            if not rows:
                notices.release()  # the export goes ahead: a command that is refused prints one line only
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
