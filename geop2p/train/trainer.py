"""`Pix2PixTrainer`: the networks, optimisers and losses of pix2pix, one training step and one validation.

The shape is TorchGeo's ``trainers/base.py`` without Lightning: the constructor
calls :meth:`~Pix2PixTrainer.configure_models`, :meth:`~Pix2PixTrainer.configure_optimizers`,
:meth:`~Pix2PixTrainer.configure_losses` and :meth:`~Pix2PixTrainer.configure_metrics`;
:meth:`~Pix2PixTrainer.train_step` takes one batch and returns its losses,
:meth:`~Pix2PixTrainer.validate` scores a loader. Every piece of state (G, D,
optimisers, schedulers, grad scaler) lives on the object, and
:meth:`~Pix2PixTrainer.state_dict` / :meth:`~Pix2PixTrainer.load_state_dict`
carry it through a checkpoint. The epoch loop, the data and the run folder are
:mod:`geop2p.train.run`'s.

One step, in this order (pix2pix's algorithm):

1. ``fake = G(x)``;
2. D on the real and fake pairs, concatenated into one batch (one DDP reduction);
   D's loss is halved; D steps;
3. G's loss: the adversarial term on D's verdict on ``(x, fake)`` (D frozen and
   called outside DDP, so only G's gradients are reduced) plus ``lambda_l1`` ×
   the masked L1; G steps; the grad scaler updates.

Example:
    >>> from geop2p.train.config import TrainConfig
    >>> _ = torch.manual_seed(0)
    >>> cfg = TrainConfig(generator="linear", d_ndf=4, d_layers=1, lr=1e-2, device="cpu")
    >>> trainer = Pix2PixTrainer(cfg, in_channels=2, out_channels=1)
    >>> x = torch.rand(4, 2, 16, 16) * 2 - 1
    >>> batch = {"input": x, "target": x[:, :1] - x[:, 1:] / 2, "valid": torch.ones(4, 1, 16, 16)}
    >>> sorted(trainer.train_step(batch))
    ['d', 'g_gan', 'g_l1']
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, ContextManager, Iterable, Mapping, Sequence

import torch
from torch import nn

from geop2p.device import resolve_device
from geop2p.losses import GANLoss, masked_l1
from geop2p.metrics import MetricAccumulator
from geop2p.models import build_discriminator, build_generator, load_encoder_weights
from geop2p.normalize import Normalizer
from geop2p.train.checkpoint import TRAINER_KEYS
from geop2p.train.config import TrainConfig
from geop2p.train.distributed import DistributedContext, all_reduce_sum

__all__ = ["Pix2PixTrainer", "amp_dtype", "lr_lambda"]

logger = logging.getLogger(__name__)


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``config.amp`` on ``device`` (``auto``: bf16 on CUDA, none on CPU).

    Example:
        >>> amp_dtype(TrainConfig(amp="auto"), torch.device("cpu")) is None
        True
    """
    if config.amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[config.amp]


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """The learning-rate factor of the 0-based epoch ``e``: 1 for ``epochs``, then down by ``1 / (decay_epochs + 1)``
    an epoch (the pix2pix reference's linear decay: it would reach 0 one epoch after the last).

    Example:
        >>> f = lr_lambda(TrainConfig(epochs=2, decay_epochs=2))
        >>> [round(f(e), 3) for e in range(4)]
        [1.0, 1.0, 0.667, 0.333]
    """
    epochs, decay = config.epochs, config.decay_epochs

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(decay + 1)

    return factor


class Pix2PixTrainer:
    """Generator, PatchGAN discriminator, their Adam optimisers and schedulers, and the pix2pix step.

    Args:
        config: the run's settings (networks, optimiser, losses, amp, channels_last, compile).
        in_channels: input bands.
        out_channels: target bands.
        target_normalizer: turns predictions back into data units for the metrics (default: identity).
        band_names: the target bands' names in metric keys (default ``band_1``...).
        device: where the networks live (default: ``config.device`` resolved).
        ctx: the (possibly single-process) distributed context; under torchrun G and D are wrapped
            in DistributedDataParallel and metrics are summed over ranks.

    Attributes:
        generator, discriminator: the bare networks (their ``state_dict`` is what is saved).
        opt_g, opt_d, sched_g, sched_d, scaler: optimisers, learning-rate schedulers, grad scaler.
        gan: the adversarial loss.
    """

    def __init__(
        self,
        config: TrainConfig,
        in_channels: int,
        out_channels: int,
        *,
        target_normalizer: Normalizer | None = None,
        band_names: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        ctx: DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.device = resolve_device(config.device) if device is None else torch.device(device)
        self.ctx = ctx if ctx is not None else DistributedContext()
        self.target_normalizer = target_normalizer or Normalizer.identity(self.out_channels)
        self.band_names = list(band_names) if band_names is not None else [
            f"band_{i}" for i in range(1, self.out_channels + 1)]
        self.amp_dtype = amp_dtype(config, self.device)
        self.channels_last = config.channels_last == "on" or (
            config.channels_last == "auto" and self.device.type == "cuda")
        self.configure_models()
        self.configure_optimizers()
        self.configure_losses()
        self.configure_metrics()

    # ------------------------------------------------------------------ configure
    def configure_models(self) -> None:
        """Build G (then load its encoder weights) and D, move them to the device; wrap them for DDP/compile.

        The order (G, its pretrained encoder, D) fixes which random numbers each
        network's initialisation draws: keep it, or seeded runs change.
        """
        cfg = self.config
        self.generator: nn.Module = build_generator(cfg.generator_spec(self.in_channels, self.out_channels))
        if cfg.pretrained_encoder is not None:
            load_encoder_weights(self.generator, cfg.pretrained_encoder)
        self.discriminator: nn.Module = build_discriminator(
            self.in_channels + self.out_channels, ndf=cfg.d_ndf, n_layers=cfg.d_layers, norm=cfg.d_norm,
            spectral_norm=cfg.spectral_norm)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        if self.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self._g_train: nn.Module = self.generator
        self._d_train: nn.Module = self.discriminator
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self._d_train = DistributedDataParallel(self.discriminator, device_ids=ids)
        if cfg.compile:
            self._g_train = torch.compile(self._g_train)

    def configure_optimizers(self) -> None:
        """Adam for G, then for D (lr, betas from the config), each with the linear-decay schedule."""
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=betas)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lr_lambda(cfg))
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lr_lambda(cfg))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def configure_losses(self) -> None:
        """The adversarial loss of ``gan_mode`` (the L1 term is :func:`~geop2p.losses.masked_l1`)."""
        self.gan = GANLoss(self.config.gan_mode)

    def configure_metrics(self) -> None:
        """Per-band data ranges for PSNR/SSIM: the span of [-1, 1] in data units (2 × the normalizer's scale)."""
        self.metric_range = [2.0 * s for s in self.target_normalizer.scale]

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> ContextManager[Any]:
        """The mixed-precision context of the run (a null context without amp)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on the device (channels_last for 4-d tensors when that is on)."""
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last and t.ndim == 4 else t

    @property
    def lr(self) -> float:
        """The generator's current learning rate."""
        return self.sched_g.get_last_lr()[0]

    def step_schedulers(self) -> None:
        """Advance both learning-rate schedules by one epoch."""
        self.sched_g.step()
        self.sched_d.step()

    # ------------------------------------------------------------------ train, validate, predict
    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of D then G on ``batch`` (``input``, ``target``, ``valid``).

        Returns:
            ``{"g_gan", "g_l1", "d"}``: the generator's adversarial and L1 losses and D's loss.
        """
        cfg, gan = self.config, self.gan
        self.generator.train()
        self.discriminator.train()
        x, y, v = self.to_device(batch["input"]), self.to_device(batch["target"]), self.to_device(batch["valid"])
        with self.autocast():
            fake = self._g_train(x)
        # discriminator: real and fake pairs in one forward (one DDP reduction)
        with self.autocast():
            pairs = torch.cat([torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)], 0)
            real_logits, fake_logits = self._d_train(pairs).chunk(2)
        loss_d = gan.discriminator(real_logits, fake_logits, v)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        # generator: D is frozen and called outside DDP, so only G's gradients are reduced
        self.discriminator.requires_grad_(False)
        with self.autocast():
            g_logits = self.discriminator(torch.cat([x, fake], 1))
        loss_g_gan = gan.generator(g_logits, v)
        loss_l1 = masked_l1(fake.float(), y, v)
        loss_g = loss_g_gan + cfg.lambda_l1 * loss_l1
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.discriminator.requires_grad_(True)
        return {"g_gan": loss_g_gan.item(), "g_l1": loss_l1.item(), "d": loss_d.item()}

    @torch.no_grad()
    def validate(self, loader: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, float]:
        """Score G (eval mode) on ``loader``: masked L1 and MAE/RMSE/PSNR/SSIM in data units, summed over ranks.

        Batches need ``input``, ``target``, ``target_raw`` (data units) and ``valid``.

        Returns:
            ``val_mae``, ``val_rmse``, ``val_psnr``, ``val_ssim``, the same per band (``val_mae_<band>``...)
            and ``val_l1`` (in the network's range); NaN where no pixel was valid.
        """
        self.generator.eval()
        acc = MetricAccumulator(self.band_names, self.metric_range)
        l1 = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            x, y, v = self.to_device(batch["input"]), self.to_device(batch["target"]), self.to_device(batch["valid"])
            with self.autocast():
                pred = self.generator(x)
            pred = pred.float()
            n_valid = float(v.sum()) * pred.shape[1]
            l1 += torch.tensor([float(masked_l1(pred, y, v)) * n_valid, n_valid], dtype=torch.float64)
            acc.update(self.target_normalizer.denormalize(pred), self.to_device(batch["target_raw"]), v)
        reduce_on = self.device if self.ctx.backend == "nccl" else None
        acc.load_state(all_reduce_sum(acc.state, self.ctx, reduce_on))
        l1 = all_reduce_sum(l1, self.ctx, reduce_on)
        metrics = acc.flat("val")
        metrics["val_l1"] = float(l1[0] / l1[1]) if l1[1] > 0 else float("nan")
        self.generator.train()
        return metrics

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """G's output (eval mode, float32, on the CPU) for a normalized input batch; G is left in training mode."""
        self.generator.eval()
        with self.autocast():
            out = self.generator(self.to_device(x)).float().cpu()
        self.generator.train()
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, schedulers and scaler, keyed as in the checkpoint file.

        The tensors are the live ones (as ``nn.Module.state_dict`` gives them): save them, or
        ``copy.deepcopy`` them, before training on if they are to be kept in memory.
        """
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (strictly: every part must be present)."""
        missing = [k for k in TRAINER_KEYS if k not in state]
        if missing:
            raise KeyError(f"trainer state lacks {', '.join(missing)}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.scaler.load_state_dict(state["scaler"])
