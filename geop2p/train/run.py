"""`train`: fit a pix2pix generator on a chip folder and write a run folder.

The algorithm is pix2pix's (see :class:`~geop2p.train.trainer.Pix2PixTrainer`):
a generator G (smp U-Net or the paper's U-Net 256) and a PatchGAN D on the
stacked (input, image) pair; D's loss is halved; G's loss is the adversarial
term plus ``lambda_l1`` × masked L1; Adam 2e-4 with betas (0.5, 0.999);
learning rate constant for ``epochs`` then decaying linearly to 0 over
``decay_epochs``. Invalid pixels are excluded from every loss and metric.

This module checks everything up front (run folder, resume settings, datasets,
chip size against the generator, encoder weights), then drives the trainer
epoch by epoch: validation at the end of each epoch (or at ``max_steps``), the
best epoch's bundle, ``metrics.csv``, TensorBoard scalars, sample grids and the
checkpoint. Run folder (:class:`~geop2p.io.run_folder.RunFolder`)::

    RUN_DIR/
      config.yaml              the resolved TrainConfig
      metrics.csv              one row per validation (epoch end, or the stop at max_steps)
      tensorboard/             TensorBoard events (when tensorboard is installed)
      samples/epoch_NNN.png    input | prediction | target rows for a few val chips
      checkpoints/last.pt      everything --resume needs (tensors and plain values only)
      model.safetensors        the bundle of the best epoch (docs/formats.md)

Under ``torchrun`` the same function runs DistributedDataParallel: each rank
reads its shard of every epoch, metrics are summed across ranks, and only rank
0 writes.

Example:
    >>> from geop2p.train import TrainConfig
    >>> result = train("chips/", "runs/dsm", TrainConfig(encoder="resnet18", epochs=5))  # doctest: +SKIP
    >>> result.bundle_path, result.metrics["val_mae"]  # doctest: +SKIP
    (PosixPath('runs/dsm/model.safetensors'), 1.84)
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
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from geop2p.datasets import PairAugment, PairedChipDataset, normalizer_from_stats, open_chip_dataset
from geop2p.device import resolve_device
from geop2p.errors import ChipFolderError, ConfigError, SizeMultipleError
from geop2p.formats.bundle_header import BandSide, BundleHeader
from geop2p.io.run_folder import RunFolder, read_history, write_history
from geop2p.models import required_divisor
from geop2p.models.bundle import save_bundle
from geop2p.normalize import Normalizer
from geop2p.tiling import check_overlap, default_overlap
from geop2p.train.checkpoint import Checkpoint, LoopState, read_checkpoint, rng_state, set_rng_state, write_checkpoint
from geop2p.train.config import BEST_METRICS, TrainConfig
from geop2p.train.distributed import DistributedContext, EpochSampler, init_distributed, shutdown
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


def build_normalizers(stats: dict, cfg: TrainConfig) -> tuple[Normalizer, Normalizer]:
    """Input and target normalizers from a chip folder's statistics and the config's method.

    When the statistics hold no percentiles (an ArcGIS ``.emd``) and the method is
    ``percentile``, ``minmax`` is used instead, with a warning.
    """
    return tuple(  # type: ignore[return-value]
        normalizer_from_stats(stats.get(side), side, cfg.normalization, cfg.norm_low, cfg.norm_high)
        for side in ("input", "target")
    )


# ---------------------------------------------------------------------------------- checks before any output
@dataclass(frozen=True)
class _Data:
    """The opened splits: ``val`` is the train split when the val split is empty (``metrics_split`` says so)."""

    train: PairedChipDataset
    val: PairedChipDataset
    metrics_split: str
    input_normalizer: Normalizer
    target_normalizer: Normalizer


def _open_data(chips_dir: Path, cfg: TrainConfig) -> _Data:
    augment = PairAugment(flips=cfg.flips, rot90=cfg.rot90) if cfg.augment else None
    in_norm, tg_norm = build_normalizers(open_chip_dataset(chips_dir, "train", seed=cfg.seed).stats, cfg)
    norms = {"input_normalizer": in_norm, "target_normalizer": tg_norm, "seed": cfg.seed}
    train_ds = open_chip_dataset(chips_dir, "train", augment=augment, **norms)
    if len(train_ds) == 0:
        raise ChipFolderError(f"'{chips_dir}' has no train chips; re-export with a non-zero train fraction.")
    val_ds: PairedChipDataset = open_chip_dataset(chips_dir, "val", **norms)
    metrics_split = "val"
    if len(val_ds) == 0:
        logger.warning("The val split of '%s' is empty: epochs are scored on the train chips instead "
                       "(metrics.csv says so in metrics_split).", chips_dir)
        val_ds = open_chip_dataset(chips_dir, "train", **norms)
        metrics_split = "train"
    return _Data(train_ds, val_ds, metrics_split, in_norm, tg_norm)


def _check_networks(cfg: TrainConfig, data: _Data) -> None:
    """The chips suit the generator; the encoder weights and the recommended overlap are usable."""
    ds = data.train
    divisor = required_divisor(cfg.generator_spec(ds.input_info.count, ds.target_info.count))
    if ds.chip_size % divisor:
        raise SizeMultipleError(
            ds.chip_size, divisor, "--size", "Chip size", f"the {cfg.generator} generator needs it",
            "Re-export the chips with that size, or use a shallower network "
            "(generator_params: encoder_depth for smp-unet, num_downs for pix2pix-unet).")
    weights = cfg.pretrained_encoder
    if weights is not None and cfg.generator != "smp-unet":
        raise ConfigError(
            f"encoder_weights {cfg.encoder_weights!r} applies only to --generator smp-unet, not {cfg.generator}; "
            "use --encoder-weights none."
        )
    if weights is not None and weights != "imagenet" and not Path(weights).is_file() and ("/" in weights
                                                                                           or "." in weights):
        raise ConfigError(f"encoder_weights file '{weights}' does not exist; give a local file, 'imagenet' or 'none'.")
    if cfg.recommended_overlap is not None:
        check_overlap(cfg.recommended_overlap, ds.chip_size, "recommended_overlap")


def train(
    chips_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train a pix2pix model on a chip folder (or an ArcGIS Export Tiles folder).

    Args:
        chips_dir: output of ``geop2p export-chips`` (or an ArcGIS ``images/`` + ``images2/`` folder).
        out_dir: the run folder to create (or continue with ``resume``).
        config: the validated settings; default :class:`TrainConfig()`.
        resume: continue from ``out_dir/checkpoints/last.pt`` (model, optimisers, schedulers,
            scaler, RNG states, epoch and step restored).
        overwrite: replace an existing, non-empty ``out_dir``.
        progress: called after every step with a :class:`TrainProgress`.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError, ChipFolderError, SizeMultipleError, OutputExistsError: before anything is written.

    Example:
        >>> train("chips/", "runs/a", TrainConfig(generator="pix2pix-unet", max_steps=100))  # doctest: +SKIP
    """
    cfg = config if config is not None else TrainConfig()
    chips_dir, folder = Path(chips_dir), RunFolder(Path(out_dir))
    device = resolve_device(cfg.device)
    folder.check(chips_dir, resume, overwrite)
    ckpt = read_checkpoint(folder.checkpoint_path) if resume else None
    if ckpt is not None:
        ckpt.check_resumable(cfg)
    data = _open_data(chips_dir, cfg)
    _check_networks(cfg, data)

    ctx = init_distributed(device.type)
    try:
        if ctx.enabled and device.type == "cuda":
            device = torch.device("cuda", ctx.local_rank)
        return _Run(cfg, ctx, device, folder, data, ckpt, overwrite, progress).run()
    finally:
        shutdown(ctx)


# ---------------------------------------------------------------------------------- the run
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        logger.info("tensorboard is not installed; no TensorBoard events are written.")
        return None
    return SummaryWriter(log_dir=str(log_dir))


class _Run:
    """One call of :func:`train` after its checks: the trainer, the samplers, the loop state and the outputs."""

    def __init__(self, cfg: TrainConfig, ctx: DistributedContext, device: torch.device, folder: RunFolder,
                 data: _Data, ckpt: Checkpoint | None, overwrite: bool,
                 progress: Callable[[TrainProgress], None] | None) -> None:
        self.cfg, self.ctx, self.folder, self.data, self.progress = cfg, ctx, folder, data, progress
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
        if ckpt is not None:
            self.trainer.load_state_dict(ckpt.trainer)
            self.state = ckpt.loop
            set_rng_state(ckpt.rng)
            self.history = read_history(folder.metrics_path)
            logger.info("Resuming at epoch %d, step %d", self.state.epoch + 1, self.state.global_step)
        self.writer = None
        if ctx.is_main:
            folder.prepare(clear=overwrite and ckpt is None)
            folder.write_config(cfg)
            self.writer = _tensorboard(folder.tensorboard_dir)
        ctx.barrier()

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

    def _loader(self, ds: PairedChipDataset, sampler: EpochSampler, shuffle_epoch: int, drop: bool) -> DataLoader:
        # a generator of its own, so creating the loader draws nothing from torch's global RNG
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + shuffle_epoch)
        return DataLoader(ds, batch_size=self.cfg.batch_size, sampler=sampler, num_workers=self.cfg.workers,
                          drop_last=drop, pin_memory=self.trainer.device.type == "cuda", generator=gen,
                          persistent_workers=False)

    def run(self) -> TrainResult:
        """Train until ``total_steps`` or the last epoch; validate, bundle and checkpoint after each period."""
        cfg, state = self.cfg, self.state
        done = state.global_step >= self.total_steps
        while not done and state.epoch < cfg.total_epochs:
            done = self._epoch()
        if self.writer is not None:
            self.writer.close()
        self.ctx.barrier()
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
            if self.writer is not None and state.global_step % cfg.log_every == 0:
                for k, val in losses.items():
                    self.writer.add_scalar(f"train/loss_{k}", val, state.global_step)
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
                             Checkpoint(cfg.to_dict(), self.trainer.state_dict(), state, rng_state()))
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
                save_bundle(self.folder.bundle_path, self.trainer.generator, self._header(), overwrite=True)
            write_history(self.folder.metrics_path, self.history)
            if self.writer is not None:
                for k, v in metrics.items():
                    if isinstance(v, float) and math.isfinite(v):
                        self.writer.add_scalar(k, v, state.global_step)
                self.writer.flush()
        logger.info("epoch %d step %d: %s", epoch + 1, state.global_step,
                    ", ".join(f"{k}={metrics[k]:.4g}" for k in ("val_l1", "val_mae", "val_rmse", "val_psnr",
                                                                  "val_ssim")))

    def _write_samples(self, epoch: int) -> None:
        items = [self.data.val[i] for i in self.sample_idx]
        x = torch.stack([it["input"] for it in items])
        pred = self.trainer.predict(x)
        save_sample_grid(self.folder.sample_path(epoch), x.numpy(), pred.numpy(),
                         torch.stack([it["target"] for it in items]).numpy(),
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
            training={"chips_manifest_sha256": ds.source_sha256, "steps": state.global_step,
                      "epochs": cfg.total_epochs, "best_epoch": state.best_epoch, "best_metric": cfg.best_metric,
                      "best_metrics": dict(state.best_metrics), "metrics_split": self.data.metrics_split,
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        )
