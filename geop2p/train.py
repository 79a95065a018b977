"""`train`: fit a pix2pix generator on a chip folder and write a run folder.

The algorithm is pix2pix's: a generator G (smp U-Net or the paper's U-Net 256)
and a PatchGAN D on the stacked (input, image) pair; D's loss is halved; G's
loss is the adversarial term plus ``lambda_l1`` × masked L1; Adam 2e-4 with
betas (0.5, 0.999); learning rate constant for ``epochs`` then decaying
linearly to 0 over ``decay_epochs``. Invalid pixels are excluded from every
loss and metric.

Run folder::

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
    >>> from geop2p.train_config import TrainConfig
    >>> result = train("chips/", "runs/dsm", TrainConfig(encoder="resnet18", epochs=5))  # doctest: +SKIP
    >>> result.bundle_path, result.metrics["val_mae"]  # doctest: +SKIP
    (PosixPath('runs/dsm/model.safetensors'), 1.84)
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from geop2p import __version__
from geop2p.models.bundle import save_bundle
from geop2p.datasets import PairAugment, PairedChipDataset, normalizer_from_stats, open_chip_dataset
from geop2p.device import resolve_device
from geop2p.distributed import DistributedContext, EpochSampler, all_reduce_sum, init_distributed, shutdown
from geop2p.errors import ChipFolderError, ChipSizeError, ConfigError, OutputExistsError
from geop2p.io.atomic import atomic_path
from geop2p.losses import GANLoss, masked_l1
from geop2p.metrics import MetricAccumulator
from geop2p.models import build_discriminator, build_generator, load_encoder_weights, required_divisor
from geop2p.normalize import Normalizer
from geop2p.samples import save_sample_grid
from geop2p.train_config import BEST_METRICS, TrainConfig

__all__ = ["train", "TrainResult", "TrainProgress", "build_normalizers", "CHECKPOINT_FORMAT"]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "geop2p-checkpoint"
#: settings a resumed run must share with the checkpoint (the rest, e.g. max_steps, may change)
_STRUCTURAL_KEYS = ("generator", "encoder", "generator_params", "d_layers", "d_ndf", "d_norm", "spectral_norm",
                    "gan_mode", "batch_size", "seed", "normalization", "norm_low", "norm_high", "epochs",
                    "decay_epochs")
#: env var: a folder where each rank writes its final generator parameters (used by the DDP test)
RANK_WEIGHTS_ENV = "GEOP2P_RANK_WEIGHTS_DIR"


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


# ---------------------------------------------------------------------------------- set-up helpers
def build_normalizers(stats: dict, cfg: TrainConfig) -> tuple[Normalizer, Normalizer]:
    """Input and target normalizers from a chip folder's statistics and the config's method.

    When the statistics hold no percentiles (an ArcGIS ``.emd``) and the method is
    ``percentile``, ``minmax`` is used instead, with a warning.
    """
    return tuple(  # type: ignore[return-value]
        normalizer_from_stats(stats.get(side), side, cfg.normalization, cfg.norm_low, cfg.norm_high)
        for side in ("input", "target")
    )


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if cfg.amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[cfg.amp]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(v) for v in py_state[1]],
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import pickle

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ConfigError(
            f"Cannot resume from '{path}': it is not a geop2p checkpoint readable without unpickling objects "
            f"({str(exc).splitlines()[0][:160]}). Start a new run with --overwrite."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"'{path}' is not a geop2p training checkpoint; start a new run with --overwrite.")
    return ckpt


def _check_run_dir(run_dir: Path, chips_dir: Path, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: resume continues a run, overwrite replaces it.")
    if resume:
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise ConfigError(
                f"Nothing to resume: '{run_dir / 'checkpoints' / 'last.pt'}' does not exist. "
                "Drop --resume to start a new run."
            )
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(f"Run folder '{run_dir}' is a file; give a folder name for --out.")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"Run folder '{run_dir}' exists and is not empty; pass --resume to continue it, --overwrite to "
            "replace it, or choose another --out."
        )
    if overwrite and run_dir.is_dir():
        chips, run = chips_dir.resolve(), run_dir.resolve()
        if chips == run or run in chips.parents:
            raise ConfigError(
                f"--overwrite would delete '{run_dir}', which holds the chips '{chips_dir}'; choose another --out."
            )


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig) -> None:
    now = cfg.to_dict()
    diff = [k for k in _STRUCTURAL_KEYS if saved.get(k) != now.get(k)]
    if diff:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in diff)
        raise ConfigError(
            f"Cannot resume with changed settings ({detail}). Resume with the run's config.yaml, "
            "or start a new run."
        )


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - cfg.epochs) / float(cfg.decay_epochs + 1)

    return factor


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        logger.info("tensorboard is not installed; no TensorBoard events are written.")
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    _write_text_atomic(path, buf.getvalue())


def _read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------- the run
@dataclass
class _State:
    epoch: int = 0  # 0-based epoch in progress
    step_in_epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)


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
        ConfigError, ChipFolderError, ChipSizeError, OutputExistsError: before anything is written.

    Example:
        >>> train("chips/", "runs/a", TrainConfig(generator="pix2pix-unet", max_steps=100))  # doctest: +SKIP
    """
    cfg = config if config is not None else TrainConfig()
    chips_dir, run_dir = Path(chips_dir), Path(out_dir)
    device = resolve_device(cfg.device)

    # ----------------------------------------------------------------- checks before any output
    _check_run_dir(run_dir, chips_dir, resume, overwrite)
    ckpt = _load_checkpoint(run_dir / "checkpoints" / "last.pt") if resume else None
    if ckpt is not None:
        _check_resume_config(ckpt["config"], cfg)
    augment = PairAugment(flips=cfg.flips, rot90=cfg.rot90) if cfg.augment else None
    in_norm, tg_norm = build_normalizers(open_chip_dataset(chips_dir, "train", seed=cfg.seed).stats, cfg)
    train_ds = open_chip_dataset(chips_dir, "train", augment=augment, input_normalizer=in_norm,
                                 target_normalizer=tg_norm, seed=cfg.seed)
    if len(train_ds) == 0:
        raise ChipFolderError(f"'{chips_dir}' has no train chips; re-export with a non-zero train fraction.")
    val_ds: PairedChipDataset = open_chip_dataset(chips_dir, "val", input_normalizer=in_norm,
                                                  target_normalizer=tg_norm, seed=cfg.seed)
    metrics_split = "val"
    if len(val_ds) == 0:
        logger.warning("The val split of '%s' is empty: epochs are scored on the train chips instead "
                       "(metrics.csv says so in metrics_split).", chips_dir)
        val_ds = open_chip_dataset(chips_dir, "train", input_normalizer=in_norm, target_normalizer=tg_norm,
                                   seed=cfg.seed)
        metrics_split = "train"
    cin, cout = train_ds.input_info.count, train_ds.target_info.count
    spec = cfg.generator_spec(cin, cout)
    divisor = required_divisor(spec)
    if train_ds.chip_size % divisor:
        raise ChipSizeError(
            f"Chips are {train_ds.chip_size} px but the {cfg.generator} generator needs sides divisible by "
            f"{divisor}; re-export chips with --size {max(divisor, train_ds.chip_size // divisor * divisor)} or "
            "use a shallower network (generator_params: encoder_depth / num_downs)."
        )
    weights = None if cfg.encoder_weights.lower() == "none" else cfg.encoder_weights
    if weights is not None and cfg.generator != "smp-unet":
        raise ConfigError(
            f"encoder_weights {cfg.encoder_weights!r} applies only to --generator smp-unet, not {cfg.generator}; "
            "use --encoder-weights none."
        )
    if weights is not None and weights != "imagenet" and not Path(weights).is_file() and ("/" in weights
                                                                                           or "." in weights):
        raise ConfigError(f"encoder_weights file '{weights}' does not exist; give a local file, 'imagenet' or 'none'.")

    # ----------------------------------------------------------------- processes, seeds, networks
    ctx = init_distributed(device.type)
    try:
        if ctx.enabled and device.type == "cuda":
            device = torch.device("cuda", ctx.local_rank)
        return _run(cfg, ctx, device, chips_dir, run_dir, train_ds, val_ds, metrics_split, in_norm, tg_norm,
                    spec, weights, ckpt, overwrite, progress)
    finally:
        shutdown(ctx)


def _run(cfg, ctx: DistributedContext, device, chips_dir, run_dir, train_ds, val_ds, metrics_split, in_norm, tg_norm,
         spec, weights, ckpt, overwrite, progress) -> TrainResult:
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    _seed_everything(cfg.seed)
    G = build_generator(spec)
    if weights is not None:
        load_encoder_weights(G, weights)
    resolved_spec = dict(G.spec)
    cin, cout = train_ds.input_info.count, train_ds.target_info.count
    D = build_discriminator(cin + cout, ndf=cfg.d_ndf, n_layers=cfg.d_layers, norm=cfg.d_norm,
                            spectral_norm=cfg.spectral_norm)
    G.to(device)
    D.to(device)
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, _lr_lambda(cfg))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, _lr_lambda(cfg))
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    state = _State()
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        G.load_state_dict(ckpt["generator"])
        D.load_state_dict(ckpt["discriminator"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        sched_g.load_state_dict(ckpt["sched_g"])
        sched_d.load_state_dict(ckpt["sched_d"])
        scaler.load_state_dict(ckpt["scaler"])
        s = ckpt["state"]
        state = _State(epoch=s["epoch"], step_in_epoch=s["step_in_epoch"], global_step=s["global_step"],
                       best_value=s["best_value"], best_epoch=s["best_epoch"], best_metrics=dict(s["best_metrics"]))
        _set_rng_state(ckpt["rng"])
        history = _read_csv(run_dir / "metrics.csv")
        logger.info("Resuming at epoch %d, step %d", state.epoch + 1, state.global_step)

    G_train: torch.nn.Module = G
    D_train: torch.nn.Module = D
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        G_train = DDP(G, device_ids=ids)
        D_train = DDP(D, device_ids=ids)
    if cfg.compile:
        G_train = torch.compile(G_train)
    gan = GANLoss(cfg.gan_mode)

    # ----------------------------------------------------------------- outputs (rank 0)
    writer = None
    if ctx.is_main:
        if overwrite and ckpt is None and run_dir.is_dir():
            shutil.rmtree(run_dir)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "samples").mkdir(exist_ok=True)
        _write_text_atomic(run_dir / "config.yaml", cfg.to_yaml())
        writer = _tensorboard(run_dir)
    ctx.barrier()

    sampler = EpochSampler(len(train_ds), seed=cfg.seed, shuffle=True, rank=ctx.rank, world_size=ctx.world_size)
    per_rank = len(sampler)
    drop_last = per_rank >= cfg.batch_size
    steps_per_epoch = per_rank // cfg.batch_size if drop_last else math.ceil(per_rank / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.total_epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    val_sampler = EpochSampler(len(val_ds), shuffle=False, rank=ctx.rank, world_size=ctx.world_size, pad=False)
    bundle_path = run_dir / "model.safetensors"
    sample_idx = list(range(min(cfg.n_samples, len(val_ds))))
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext

    def loader(ds, smp, batch, shuffle_epoch: int, drop: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + shuffle_epoch)
        return DataLoader(ds, batch_size=batch, sampler=smp, num_workers=cfg.workers, drop_last=drop,
                          pin_memory=device.type == "cuda", generator=gen,
                          persistent_workers=False)

    def to_dev(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.ndim == 4 else t

    def validate(epoch: int, partial: bool) -> dict[str, Any]:
        G.eval()
        acc = MetricAccumulator(train_ds.target_info.band_names,
                                [2.0 * s for s in tg_norm.scale])
        l1 = torch.zeros(2, dtype=torch.float64)
        val_sampler.set_epoch(0)
        with torch.no_grad():
            for batch in loader(val_ds, val_sampler, cfg.batch_size, 0, False):
                x, y, v = to_dev(batch["input"]), to_dev(batch["target"]), to_dev(batch["valid"])
                with autocast():
                    pred = G(x)
                pred = pred.float()
                n_valid = float(v.sum()) * pred.shape[1]
                l1 += torch.tensor([float(masked_l1(pred, y, v)) * n_valid, n_valid], dtype=torch.float64)
                acc.update(tg_norm.denormalize(pred), to_dev(batch["target_raw"]), v)
        acc.load_state(all_reduce_sum(acc.state, ctx, device if ctx.backend == "nccl" else None))
        l1 = all_reduce_sum(l1, ctx, device if ctx.backend == "nccl" else None)
        metrics = acc.flat("val")
        metrics["val_l1"] = float(l1[0] / l1[1]) if l1[1] > 0 else math.nan
        if ctx.is_main and sample_idx:
            items = [val_ds[i] for i in sample_idx]
            x = torch.stack([it["input"] for it in items])
            with torch.no_grad(), autocast():
                p = G(to_dev(x)).float().cpu()
            save_sample_grid(run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", x.numpy(), p.numpy(),
                             torch.stack([it["target"] for it in items]).numpy(),
                             torch.stack([it["valid"] for it in items]).numpy())
        G.train()
        return metrics

    def checkpoint() -> None:
        if not ctx.is_main:
            return
        obj = {
            "format": CHECKPOINT_FORMAT, "format_version": 1, "geop2p_version": __version__,
            "config": cfg.to_dict(),
            "generator": G.state_dict(), "discriminator": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
            "scaler": scaler.state_dict(),
            "state": {"epoch": state.epoch, "step_in_epoch": state.step_in_epoch, "global_step": state.global_step,
                      "best_value": state.best_value, "best_epoch": state.best_epoch,
                      "best_metrics": {k: _finite(v) for k, v in state.best_metrics.items()}},
            "rng": _rng_state(),
        }
        with atomic_path(run_dir / "checkpoints" / "last.pt", overwrite=True) as tmp:
            torch.save(obj, tmp)

    def bundle_meta() -> dict[str, Any]:
        overlap = cfg.recommended_overlap if cfg.recommended_overlap is not None else train_ds.chip_size // 4
        return {
            "format": "geop2p-model", "format_version": 1, "geop2p_version": __version__,
            "generator": resolved_spec,
            "input": {"bands": list(train_ds.input_info.bands), "band_names": list(train_ds.input_info.band_names),
                      "dtype": train_ds.input_info.dtype, "nodata": train_ds.input_info.nodata,
                      "normalizer": in_norm.to_dict(),
                      "pixel_size": list(train_ds.pixel_size) if train_ds.pixel_size else None,
                      "crs": train_ds.crs},
            "target": {"band_names": list(train_ds.target_info.band_names), "dtype": train_ds.target_info.dtype,
                       "nodata": train_ds.target_info.nodata, "normalizer": tg_norm.to_dict()},
            "chip_size": train_ds.chip_size,
            "recommended_overlap": int(overlap),
            "training": {"chips_manifest_sha256": train_ds.source_sha256, "steps": state.global_step,
                         "epochs": cfg.total_epochs, "best_epoch": state.best_epoch,
                         "best_metric": cfg.best_metric,
                         "best_metrics": {k: _finite(v) for k, v in state.best_metrics.items()},
                         "metrics_split": metrics_split,
                         "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        }

    def end_of_period(epoch: int, partial: bool, losses: dict[str, float], seconds: float, images: int,
                      lr: float) -> None:
        metrics = validate(epoch, partial)
        value = metrics[cfg.best_metric]
        higher = BEST_METRICS[cfg.best_metric]
        better = not math.isnan(value) and (
            state.best_value is None or (value > state.best_value if higher else value < state.best_value))
        if better:
            state.best_value, state.best_epoch, state.best_metrics = value, epoch + 1, dict(metrics)
        row = {"epoch": epoch + 1, "step": state.global_step, "partial_epoch": int(partial),
               "lr": lr, "metrics_split": metrics_split,
               **{f"train_loss_{k}": v for k, v in losses.items()}, **metrics,
               "is_best": int(better), "seconds": round(seconds, 3),
               "img_per_s": round(images / seconds, 3) if seconds > 0 else None}
        history.append(row)
        if ctx.is_main:
            if better:
                save_bundle(bundle_path, G, bundle_meta(), overwrite=True)
            _write_csv(run_dir / "metrics.csv", history)
            if writer is not None:
                for k, v in metrics.items():
                    if isinstance(v, float) and math.isfinite(v):
                        writer.add_scalar(k, v, state.global_step)
                writer.flush()
        logger.info("epoch %d step %d: %s", epoch + 1, state.global_step,
                    ", ".join(f"{k}={metrics[k]:.4g}" for k in ("val_l1", "val_mae", "val_rmse", "val_psnr",
                                                                  "val_ssim")))

    # ----------------------------------------------------------------- loop
    G.train()
    D.train()
    D_plain = D
    done = state.global_step >= total_steps
    while not done and state.epoch < cfg.total_epochs:
        epoch = state.epoch
        train_ds.set_epoch(epoch)
        sampler.set_epoch(epoch, start=state.step_in_epoch * cfg.batch_size)
        sums = {"g_gan": 0.0, "g_l1": 0.0, "d": 0.0}
        n_steps = 0
        t0 = time.perf_counter()
        t_last = t0
        for batch in loader(train_ds, sampler, cfg.batch_size, epoch, drop_last):
            wait = time.perf_counter() - t_last
            x, y, v = to_dev(batch["input"]), to_dev(batch["target"]), to_dev(batch["valid"])
            with autocast():
                fake = G_train(x)
            # discriminator: real and fake pairs in one forward (one DDP reduction)
            with autocast():
                pairs = torch.cat([torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)], 0)
                real_logits, fake_logits = D_train(pairs).chunk(2)
            loss_d = gan.discriminator(real_logits, fake_logits, v)
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(loss_d).backward()
            scaler.step(opt_d)
            # generator: D is frozen and called outside DDP, so only G's gradients are reduced
            D_plain.requires_grad_(False)
            with autocast():
                g_logits = D_plain(torch.cat([x, fake], 1))
            loss_g_gan = gan.generator(g_logits, v)
            loss_l1 = masked_l1(fake.float(), y, v)
            loss_g = loss_g_gan + cfg.lambda_l1 * loss_l1
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            scaler.step(opt_g)
            scaler.update()
            D_plain.requires_grad_(True)
            state.global_step += 1
            state.step_in_epoch += 1
            n_steps += 1
            losses = {"g_gan": loss_g_gan.item(), "g_l1": loss_l1.item(), "d": loss_d.item()}
            for k in sums:
                sums[k] += losses[k]
            now = time.perf_counter()
            step_s = now - t_last
            rate = x.shape[0] * ctx.world_size / max(step_s, 1e-9)
            if progress is not None and ctx.is_main:
                progress(TrainProgress(epoch + 1, state.global_step, total_steps, losses, rate, wait, step_s))
            t_last = time.perf_counter()
            if writer is not None and state.global_step % cfg.log_every == 0:
                for k, val in losses.items():
                    writer.add_scalar(f"train/loss_{k}", val, state.global_step)
            if state.global_step >= total_steps:
                done = True
                break
        seconds = time.perf_counter() - t0
        images = n_steps * cfg.batch_size * ctx.world_size
        mean_losses = {k: (s / n_steps if n_steps else math.nan) for k, s in sums.items()}
        epoch_complete = state.step_in_epoch >= steps_per_epoch
        lr_used = sched_g.get_last_lr()[0]
        if epoch_complete:
            sched_g.step()
            sched_d.step()
            state.epoch += 1
            state.step_in_epoch = 0
        end_of_period(epoch, not epoch_complete, mean_losses, seconds, images, lr_used)
        checkpoint()
        ctx.barrier()

    if writer is not None:
        writer.close()
    debug_dir = os.environ.get(RANK_WEIGHTS_ENV)
    if debug_dir:
        from safetensors.torch import save_file

        Path(debug_dir).mkdir(parents=True, exist_ok=True)
        save_file({k: p.detach().cpu().contiguous() for k, p in G.named_parameters()},
                  str(Path(debug_dir) / f"rank{ctx.rank}.safetensors"))
    ctx.barrier()
    if ctx.is_main and not bundle_path.exists():
        raise ChipFolderError(
            f"No epoch produced a finite {cfg.best_metric}; the {metrics_split} chips may have no valid pixels."
        )
    return TrainResult(run_dir=run_dir, bundle_path=bundle_path,
                       metrics={k: v for k, v in state.best_metrics.items()}, best_epoch=state.best_epoch,
                       steps=state.global_step, history=history)
