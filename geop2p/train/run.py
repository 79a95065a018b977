"""`train`: fit a pix2pix generator on one dataset folder or several and write a run folder.

The algorithm is pix2pix's (see :class:`~geop2p.train.trainer.Pix2PixTrainer`):
a generator G (smp U-Net or the paper's U-Net 256) and a PatchGAN D on the
stacked (input, image) pair; D's loss is halved; G's loss is the adversarial
term plus ``lambda_l1`` × masked L1; Adam 2e-4 with betas (0.5, 0.999);
learning rate constant for ``epochs`` then decaying linearly to 0 over
``decay_epochs``. Invalid pixels are excluded from every loss and metric.

The data is one folder or several of any registered format (a geop2p chip
folder, ArcGIS tiles, paired folders, a pix2pix aligned folder), opened
together by :func:`~geop2p.datasets.open_chip_dataset` with the config's
``format`` and the format options that are set: several folders train as one
folder holding them all (same chips, same batches, merged statistics).

This module checks everything up front (:mod:`geop2p.train.checks`: run
folder, resume settings and data, datasets, chip size against the networks,
encoder weights, the first chips), takes the run folder's lock, then drives the
trainer epoch by epoch: validation at the end of each epoch (or at
``max_steps``), the best epoch's bundle, ``metrics.csv``, TensorBoard scalars,
sample grids and the checkpoint. Run folder (:class:`~geop2p.io.run_folder.RunFolder`)::

    RUN_DIR/
      config.yaml              the resolved TrainConfig
      metrics.csv              one row per validation (epoch end, or the stop at max_steps)
      tensorboard/             TensorBoard events (when tensorboard is installed)
      samples/epoch_NNN.png    input | prediction | target rows for a few val chips
      checkpoints/last.pt      everything --resume needs (tensors and plain values only)
      model.safetensors        the bundle of the best epoch (docs/formats.md)
      .geop2p-lock             while the run writes here (a second run on the folder is refused)

Every file appears whole or not at all; a failed write (a full disk, a
read-only file system) is one line. A fresh run that fails before its first
checkpoint removes what it wrote (and the folder, if it made it); one that
fails later keeps the folder, and its error says to continue with
``--resume``. A resumed run first removes what a killed run left after its
checkpoint: the rows of ``metrics.csv`` past the checkpoint's step and the
partial files of dead processes.

Under ``torchrun`` the same function runs DistributedDataParallel: each rank
reads its shard of every epoch, metrics are summed across ranks, and only rank
0 writes.

Example:
    >>> from geop2p.train import TrainConfig
    >>> result = train("chips/", "runs/dsm", TrainConfig(encoder="resnet18", epochs=5))  # doctest: +SKIP
    >>> result.bundle_path, result.metrics["val_mae"]  # doctest: +SKIP
    (PosixPath('runs/dsm/model.safetensors'), 1.84)
    >>> train(["chips_2023/", "chips_2024/"], "runs/both", TrainConfig())  # doctest: +SKIP
    >>> train("maps/", "runs/maps", TrainConfig(direction="BtoA", crop_size=256))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from geop2p.datasets import PairedChipDataset
from geop2p.device import resolve_device
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.bundle_header import BandSide, BundleHeader
from geop2p.io.run_folder import RunFolder, read_history, write_history
from geop2p.models.bundle import save_bundle
from geop2p.tiling import default_overlap
from geop2p.train.checkpoint import (
    Checkpoint,
    LoopState,
    TrainingData,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from geop2p.train.checks import (
    TrainData,
    build_normalizers,
    check_networks,
    dataset_folders,
    folders_label,
    logs_after_checks,
    open_data,
    probe_chips,
)
from geop2p.train.config import BEST_METRICS, TrainConfig
from geop2p.train.distributed import DistributedContext, EpochSampler, init_distributed, shutdown
from geop2p.train.outputs import RunOutputs, check_run_folder
from geop2p.train.samples import save_sample_grid
from geop2p.train.trainer import Pix2PixTrainer

__all__ = ["train", "TrainResult", "TrainProgress", "build_normalizers"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """One training step, as reported to the ``progress`` callback.

    Attributes:
        epoch: 1-based epoch number.
        step: global optimisation step (1-based).
        total_steps: steps the run will take.
        losses: ``g_gan``, ``g_l1``, ``d`` of this step.
        img_per_s: training throughput (all ranks).
        data_wait_s: seconds this step waited for its batch from the DataLoader.
        step_s: seconds of the whole step, waiting included.
    """

    epoch: int
    step: int
    total_steps: int
    losses: dict[str, float]
    img_per_s: float
    data_wait_s: float = 0.0
    step_s: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        run_dir: the run folder.
        bundle_path: ``run_dir / "model.safetensors"`` (best epoch).
        metrics: the best epoch's validation metrics (flat dict: ``val_mae``, ``val_mae_<band>``, ...).
        best_epoch: epoch of the bundle (1-based).
        steps: optimisation steps taken in total.
        history: every metrics.csv row.
    """

    run_dir: Path
    bundle_path: Path
    metrics: dict[str, float]
    best_epoch: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)


def train(
    chips_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train a pix2pix model on one dataset folder or several trained on as one.

    Args:
        chips_dir: a dataset folder, or a list of them: outputs of ``geop2p export-chips``, ArcGIS
            ``images/`` + ``images2/`` folders, paired ``A/`` + ``B/`` folders, pix2pix aligned folders
            (each recognised by its layout, or all read as ``config.format``). Several folders must agree
            on bands, data type kinds and chip size; their statistics are merged.
        out_dir: the run folder to create (or continue with ``resume``).
        config: the validated settings; default :class:`TrainConfig()`.
        resume: continue from ``out_dir/checkpoints/last.pt`` (model, optimisers, schedulers,
            scaler, RNG states, epoch and step restored) on the same chips (the same folders, with the
            same dataset options).
        overwrite: replace the run in ``out_dir``: only the files a run wrote are deleted, and only
            when nothing else is there (see :meth:`~geop2p.io.run_folder.RunFolder.owned`).
        progress: called after every step with a :class:`TrainProgress`.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError, ChipFolderError, SizeMultipleError, OutputExistsError, FolderLockedError, WriteError,
        RasterReadError: before anything is written or logged.
        WriteError: a write failed during the run (:class:`~geop2p.errors.DiskFullError` for a full disk).

    Example:
        >>> train("chips/", "runs/a", TrainConfig(generator="pix2pix-unet", max_steps=100))  # doctest: +SKIP
    """
    cfg = config if config is not None else TrainConfig()
    folder = RunFolder(Path(out_dir))
    ctx: DistributedContext | None = None
    try:
        with logs_after_checks():
            folders = dataset_folders(chips_dir)
            device = resolve_device(cfg.device)
            check_run_folder(folder, folders, resume, overwrite)
            ckpt = read_checkpoint(folder.checkpoint_path) if resume else None
            if ckpt is not None:
                ckpt.check_resumable(cfg)
            data = open_data(folders, cfg)
            check_networks(cfg, data)
            if ckpt is not None:
                ckpt.check_data(TrainingData.of(data.train), folder.checkpoint_path, folders_label(folders))
            probe_chips(data)
            ctx = init_distributed(device.type)
            if ctx.enabled and device.type == "cuda":
                device = torch.device("cuda", ctx.local_rank)
            run = _Run(cfg, ctx, device, folder, data, ckpt, progress)
            run.take_folder()
        return run.run(overwrite, folders)
    finally:
        if ctx is not None:
            shutdown(ctx)


# ---------------------------------------------------------------------------------- the run
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Run:
    """One call of :func:`train` after its checks: the trainer, the samplers, the loop state and the outputs."""

    def __init__(self, cfg: TrainConfig, ctx: DistributedContext, device: torch.device, folder: RunFolder,
                 data: TrainData, ckpt: Checkpoint | None,
                 progress: Callable[[TrainProgress], None] | None) -> None:
        self.cfg, self.ctx, self.folder, self.data, self.progress = cfg, ctx, folder, data, progress
        self.identity = TrainingData.of(data.train)
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        _seed_everything(cfg.seed)
        info = data.train.target_info
        self.trainer = Pix2PixTrainer(cfg, data.train.input_info.count, info.count,
                                      target_normalizer=data.target_normalizer, band_names=info.band_names,
                                      device=device, ctx=ctx)
        self.state = LoopState()
        self.history: list[dict[str, Any]] = []
        checkpoint_step: int | None = None
        if ckpt is not None:
            try:
                self.trainer.load_state_dict(ckpt.trainer)
            except (RuntimeError, KeyError, ValueError) as exc:
                detail = " ".join(str(exc).split())[:160]
                raise ConfigError(
                    f"'{folder.checkpoint_path}' does not fit these chips' networks ({detail}); resume with the "
                    "run's own chips, or start a new run."
                ) from None
            self.state = ckpt.loop
            set_rng_state(ckpt.rng)
            self.history = read_history(folder.metrics_path, until_step=self.state.global_step)
            checkpoint_step = self.state.global_step
            logger.info("Resuming at epoch %d, step %d", self.state.epoch + 1, self.state.global_step)
        self.out = RunOutputs(folder, checkpoint_step)

        self.sampler = EpochSampler(len(data.train), seed=cfg.seed, shuffle=True, rank=ctx.rank,
                                    world_size=ctx.world_size)
        per_rank = len(self.sampler)
        self.drop_last = per_rank >= cfg.batch_size
        self.steps_per_epoch = (per_rank // cfg.batch_size if self.drop_last
                                else math.ceil(per_rank / cfg.batch_size))
        self.total_steps = self.steps_per_epoch * cfg.total_epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.val_sampler = EpochSampler(len(data.val), shuffle=False, rank=ctx.rank, world_size=ctx.world_size,
                                        pad=False)
        self.sample_idx = list(range(min(cfg.n_samples, len(data.val))))

    def take_folder(self) -> None:
        """Rank 0: make the run folder if needed and lock it (the last check: a folder in use is refused)."""
        if self.ctx.is_main:
            self.out.take()

    # ------------------------------------------------------------------ the loop
    def _loader(self, ds: PairedChipDataset, sampler: EpochSampler, shuffle_epoch: int, drop: bool) -> DataLoader:
        # a generator of its own, so creating the loader draws nothing from torch's global RNG
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + shuffle_epoch)
        return DataLoader(ds, batch_size=self.cfg.batch_size, sampler=sampler, num_workers=self.cfg.workers,
                          drop_last=drop, pin_memory=self.trainer.device.type == "cuda", generator=gen,
                          persistent_workers=False)

    def run(self, overwrite: bool, folders: Sequence[Path]) -> TrainResult:
        """Train until ``total_steps`` or the last epoch; validate, bundle and checkpoint after each period."""
        cfg, state, out = self.cfg, self.state, self.out
        try:
            if self.ctx.is_main:
                out.start(cfg, self.history, overwrite, folders)
            self.ctx.barrier()
            done = state.global_step >= self.total_steps
            while not done and state.epoch < cfg.total_epochs:
                done = self._epoch()
            if self.ctx.is_main:
                out.close_events()
            self.ctx.barrier()
        except BaseException as exc:
            if self.ctx.is_main:
                out.stopped(exc, state.global_step)
            raise
        finally:
            out.release()
        if self.ctx.is_main and not self.folder.bundle_path.exists():
            raise ChipFolderError(
                f"No epoch produced a finite {cfg.best_metric}; the {self.data.metrics_split} chips may have no "
                "valid pixels."
            )
        return TrainResult(run_dir=self.folder.root, bundle_path=self.folder.bundle_path,
                           metrics=dict(state.best_metrics), best_epoch=state.best_epoch,
                           steps=state.global_step, history=self.history)

    def _epoch(self) -> bool:
        """Train the rest of the current epoch (or up to ``total_steps``); True when the run is done."""
        cfg, state, ctx = self.cfg, self.state, self.ctx
        epoch = state.epoch
        self.data.train.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start=state.step_in_epoch * cfg.batch_size)
        sums = {"g_gan": 0.0, "g_l1": 0.0, "d": 0.0}
        n_steps = 0
        done = False
        t0 = time.perf_counter()
        t_last = t0
        for batch in self._loader(self.data.train, self.sampler, epoch, self.drop_last):
            wait = time.perf_counter() - t_last
            losses = self.trainer.train_step(batch)
            state.global_step += 1
            state.step_in_epoch += 1
            n_steps += 1
            for k in sums:
                sums[k] += losses[k]
            step_s = time.perf_counter() - t_last
            rate = len(batch["input"]) * ctx.world_size / max(step_s, 1e-9)
            if self.progress is not None and ctx.is_main:
                self.progress(TrainProgress(epoch + 1, state.global_step, self.total_steps, losses, rate, wait,
                                            step_s))
            t_last = time.perf_counter()
            if ctx.is_main and state.global_step % cfg.log_every == 0:
                self.out.scalars({f"train/loss_{k}": val for k, val in losses.items()}, state.global_step)
            if state.global_step >= self.total_steps:
                done = True
                break
        seconds = time.perf_counter() - t0
        images = n_steps * cfg.batch_size * ctx.world_size
        mean_losses = {k: (s / n_steps if n_steps else math.nan) for k, s in sums.items()}
        epoch_complete = state.step_in_epoch >= self.steps_per_epoch
        lr_used = self.trainer.lr
        if epoch_complete:
            self.trainer.step_schedulers()
            state.epoch += 1
            state.step_in_epoch = 0
        self._end_of_period(epoch, not epoch_complete, mean_losses, seconds, images, lr_used)
        if ctx.is_main:
            write_checkpoint(self.folder.checkpoint_path,
                             Checkpoint(cfg.to_dict(), self.trainer.state_dict(), state, rng_state(),
                                        data=self.identity), resume=self.out.again())
            self.out.checkpoint_step = state.global_step
        ctx.barrier()
        return done

    def _end_of_period(self, epoch: int, partial: bool, losses: dict[str, float], seconds: float, images: int,
                       lr: float) -> None:
        """Validate; keep the bundle if the epoch is the best so far; write metrics.csv, TensorBoard, samples."""
        cfg, state = self.cfg, self.state
        self.val_sampler.set_epoch(0)
        metrics = self.trainer.validate(self._loader(self.data.val, self.val_sampler, 0, False))
        if self.ctx.is_main and self.sample_idx:
            self._write_samples(epoch)
        value = metrics[cfg.best_metric]
        higher = BEST_METRICS[cfg.best_metric]
        better = not math.isnan(value) and (
            state.best_value is None or (value > state.best_value if higher else value < state.best_value))
        if better:
            state.best_value, state.best_epoch, state.best_metrics = value, epoch + 1, dict(metrics)
        row = {"epoch": epoch + 1, "step": state.global_step, "partial_epoch": int(partial),
               "lr": lr, "metrics_split": self.data.metrics_split,
               **{f"train_loss_{k}": v for k, v in losses.items()}, **metrics,
               "is_best": int(better), "seconds": round(seconds, 3),
               "img_per_s": round(images / seconds, 3) if seconds > 0 else None}
        self.history.append(row)
        if self.ctx.is_main:
            if better:
                with self.out.writing(self.folder.bundle_path):
                    save_bundle(self.folder.bundle_path, self.trainer.generator, self._header(), overwrite=True)
            with self.out.writing(self.folder.metrics_path):
                write_history(self.folder.metrics_path, self.history)
            self.out.scalars({k: v for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)},
                             state.global_step, flush=True)
        logger.info("epoch %d step %d: %s", epoch + 1, state.global_step,
                    ", ".join(f"{k}={metrics[k]:.4g}" for k in ("val_l1", "val_mae", "val_rmse", "val_psnr",
                                                                  "val_ssim")))

    def _write_samples(self, epoch: int) -> None:
        items = [self.data.val[i] for i in self.sample_idx]
        x = torch.stack([it["input"] for it in items])
        pred = self.trainer.predict(x)
        path = self.folder.sample_path(epoch)
        with self.out.writing(path):
            save_sample_grid(path, x.numpy(), pred.numpy(), torch.stack([it["target"] for it in items]).numpy(),
                             torch.stack([it["valid"] for it in items]).numpy())

    def _header(self) -> BundleHeader:
        """The bundle header of the generator as it is now (the best epoch so far)."""
        cfg, ds, state = self.cfg, self.data.train, self.state
        inp, tgt = ds.input_info, ds.target_info
        overlap = cfg.recommended_overlap if cfg.recommended_overlap is not None else default_overlap(ds.chip_size)
        pixel_size = (float(ds.pixel_size[0]), float(ds.pixel_size[1])) if ds.pixel_size else None
        return BundleHeader(
            generator=dict(self.trainer.generator.spec),
            input=BandSide(tuple(inp.band_names), inp.dtype, inp.nodata, self.data.input_normalizer,
                           bands=tuple(inp.bands), pixel_size=pixel_size, crs=ds.crs),
            target=BandSide(tuple(tgt.band_names), tgt.dtype, tgt.nodata, self.data.target_normalizer),
            chip_size=ds.chip_size,
            recommended_overlap=int(overlap),
            training={**self.data.record(), "steps": state.global_step,
                      "epochs": cfg.total_epochs, "best_epoch": state.best_epoch, "best_metric": cfg.best_metric,
                      "best_metrics": dict(state.best_metrics), "metrics_split": self.data.metrics_split,
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        )
