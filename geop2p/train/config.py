"""`TrainConfig`: the one validated schema of a training run.

A YAML file (``--config train.yaml``) and the CLI flags both fill it; flags win.
Values are converted to each field's type by :class:`~geop2p.schema.ConfigSchema`
(``"8"`` becomes ``8``, ``"yes"`` becomes ``True``); an unknown key or a bad
value is a :class:`~geop2p.errors.ConfigError` that names the key and lists the
valid options or choices. The resolved config is saved as ``config.yaml`` in
the run folder.

Example:
    >>> cfg = TrainConfig().merge({"gan_mode": "lsgan", "epochs": "3"})
    >>> cfg.gan_mode, cfg.epochs, cfg.total_epochs
    ('lsgan', 3, 13)
    >>> TrainConfig.from_dict({"gan_mode": "wgan"})
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: gan_mode: 'wgan' is not valid; choose one of vanilla, lsgan, hinge.
    >>> TrainConfig.from_dict({"lr": "fast"})
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: lr: expected a number, got 'fast'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from geop2p.device import check_device_name
from geop2p.errors import ConfigError
from geop2p.schema import ConfigSchema

__all__ = ["TrainConfig", "CHOICES", "BEST_METRICS"]

#: metrics a run can select its best epoch by; True = higher is better
BEST_METRICS: dict[str, bool] = {
    "val_mae": False,
    "val_rmse": False,
    "val_psnr": True,
    "val_ssim": True,
    "val_l1": False,
}

CHOICES: dict[str, tuple[Any, ...]] = {
    "generator": ("smp-unet", "pix2pix-unet", "linear"),
    "gan_mode": ("vanilla", "lsgan", "hinge"),
    "d_norm": ("instance", "batch", "none"),
    "amp": ("auto", "bf16", "fp16", "none"),
    "channels_last": ("auto", "on", "off"),
    "normalization": ("percentile", "meanstd", "minmax"),
    "best_metric": tuple(BEST_METRICS),
}


@dataclass(frozen=True)
class TrainConfig(ConfigSchema):
    """Every setting of ``geop2p train``.

    Attributes:
        generator: ``smp-unet`` (default), ``pix2pix-unet`` (the paper's U-Net 256) or ``linear``.
        encoder: smp encoder name for ``smp-unet`` (e.g. ``resnet34``, ``mobilenet_v2``).
        encoder_weights: ``none``, ``imagenet`` (needs internet) or a local weights file.
        generator_params: extra architecture parameters (``encoder_depth``, ``decoder_channels``,
            ``ngf``, ``num_downs``, ``norm``, ``use_dropout``).
        epochs: epochs at the constant learning rate.
        decay_epochs: further epochs with the learning rate decaying linearly to 0.
        max_steps: stop after this many optimisation steps in total (None: no limit).
        batch_size: chips per step (per process under torchrun).
        lr: Adam learning rate of both networks.
        beta1, beta2: Adam betas.
        lambda_l1: weight of the masked L1 term in the generator loss.
        gan_mode: ``vanilla``, ``lsgan`` or ``hinge``.
        d_layers: PatchGAN layers (3 = 70×70 receptive field).
        d_ndf: filters of the discriminator's first layer.
        d_norm: ``instance``, ``batch`` or ``none``.
        spectral_norm: spectral normalisation in the discriminator.
        augment, flips, rot90: augmentation switches.
        normalization, norm_low, norm_high: how band values are scaled to [-1, 1].
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (checked by :func:`geop2p.device.check_device_name`).
        amp: mixed precision: ``auto`` (bf16 on CUDA, none on CPU), ``bf16``, ``fp16``, ``none``.
        channels_last: ``auto`` (on for CUDA), ``on``, ``off``.
        compile: wrap the generator with ``torch.compile``.
        workers: DataLoader worker processes.
        best_metric: metric choosing the best epoch (``val_mae`` default; psnr/ssim higher is better).
        seed: seeds weights, data order and augmentation (0 to 2**32 - 1).
        deterministic: ask torch for deterministic algorithms.
        recommended_overlap: overlap recorded in the bundle for predict (None: chip size // 4).
        n_samples: chips shown in ``samples/epoch_NNN.png`` (0 disables).
        log_every: steps between TensorBoard scalar writes.
    """

    what: ClassVar[str] = "training option"

    generator: str = "smp-unet"
    encoder: str = "resnet34"
    encoder_weights: str = "none"
    generator_params: dict = field(default_factory=dict)
    epochs: int = 10
    decay_epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    gan_mode: str = "vanilla"
    d_layers: int = 3
    d_ndf: int = 64
    d_norm: str = "instance"
    spectral_norm: bool = False
    augment: bool = True
    flips: bool = True
    rot90: bool = True
    normalization: str = "percentile"
    norm_low: float = 2
    norm_high: float = 98
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    workers: int = 2
    best_metric: str = "val_mae"
    seed: int = 0
    deterministic: bool = False
    recommended_overlap: int | None = None
    n_samples: int = 4
    log_every: int = 10

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        self.coerce_fields()
        for key, options in CHOICES.items():
            if getattr(self, key) not in options:
                raise ConfigError(
                    f"{key}: {getattr(self, key)!r} is not valid; choose one of {', '.join(map(str, options))}."
                )
        check_device_name(self.device)
        positive = ("batch_size", "d_layers", "d_ndf", "log_every")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}.")
        for key in ("epochs", "decay_epochs", "workers", "n_samples"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be 0 or more, got {getattr(self, key)}.")
        if self.epochs + self.decay_epochs < 1:
            raise ConfigError("epochs + decay_epochs must be at least 1 (e.g. --epochs 10 --decay-epochs 10).")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: must be at least 1 or unset, got {self.max_steps}.")
        if self.recommended_overlap is not None and self.recommended_overlap < 0:
            raise ConfigError(f"recommended_overlap: must be 0 or more, got {self.recommended_overlap}.")
        for key in ("lr", "lambda_l1"):
            value = getattr(self, key)
            if not 0 <= value < math.inf or (key == "lr" and value == 0):
                raise ConfigError(f"{key}: must be positive and finite, got {value}.")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed: must be a whole number from 0 to {2**32 - 1}, got {self.seed}; e.g. --seed 0.")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be in [0, 1), got {getattr(self, key)}.")
        if not 0 <= self.norm_low < self.norm_high <= 100:
            raise ConfigError(
                f"norm_low/norm_high: need 0 <= low < high <= 100, got {self.norm_low}/{self.norm_high}."
            )
        if not self.encoder:
            raise ConfigError("encoder: must name an smp encoder, e.g. resnet34.")

    # ------------------------------------------------------------------ derived
    @property
    def total_epochs(self) -> int:
        """``epochs + decay_epochs``."""
        return self.epochs + self.decay_epochs

    def generator_spec(self, in_channels: int, out_channels: int) -> dict[str, Any]:
        """The ``generator`` object of the bundle / ``build_generator`` spec."""
        params = dict(self.generator_params)
        if self.generator == "smp-unet":
            params.setdefault("encoder_name", self.encoder)
        return {"architecture": self.generator, "in_channels": int(in_channels), "out_channels": int(out_channels),
                "params": params}

    @property
    def pretrained_encoder(self) -> str | None:
        """``encoder_weights`` as :func:`~geop2p.models.load_encoder_weights` takes it: None for ``none``.

        Example:
            >>> TrainConfig().pretrained_encoder is None, TrainConfig(encoder_weights="imagenet").pretrained_encoder
            (True, 'imagenet')
        """
        return None if self.encoder_weights.lower() == "none" else self.encoder_weights
