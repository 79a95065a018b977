"""`TrainConfig`: the one validated schema of a training run.

A YAML file (``--config train.yaml``) and the CLI flags both fill it; flags win.
An unknown key or a bad value is a :class:`~geop2p.errors.ConfigError` that
lists the valid keys or choices. The resolved config is saved as
``config.yaml`` in the run folder.

Example:
    >>> cfg = TrainConfig().merge({"gan_mode": "lsgan", "epochs": 3})
    >>> cfg.gan_mode, cfg.total_epochs
    ('lsgan', 13)
    >>> TrainConfig.from_dict({"gan_mode": "wgan"})
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: gan_mode: 'wgan' is not valid; choose one of vanilla, lsgan, hinge.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from geop2p.errors import ConfigError

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
    "device": ("auto", "cpu", "cuda"),
    "amp": ("auto", "bf16", "fp16", "none"),
    "channels_last": ("auto", "on", "off"),
    "normalization": ("percentile", "meanstd", "minmax"),
    "best_metric": tuple(BEST_METRICS),
}


@dataclass(frozen=True)
class TrainConfig:
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
        device: ``auto``, ``cpu`` or ``cuda``.
        amp: mixed precision: ``auto`` (bf16 on CUDA, none on CPU), ``bf16``, ``fp16``, ``none``.
        channels_last: ``auto`` (on for CUDA), ``on``, ``off``.
        compile: wrap the generator with ``torch.compile``.
        workers: DataLoader worker processes.
        best_metric: metric choosing the best epoch (``val_mae`` default; psnr/ssim higher is better).
        seed: seeds weights, data order and augmentation.
        deterministic: ask torch for deterministic algorithms.
        recommended_overlap: overlap recorded in the bundle for predict (None: chip size // 4).
        n_samples: chips shown in ``samples/epoch_NNN.png`` (0 disables).
        log_every: steps between TensorBoard scalar writes.
    """

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
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), f.type))
        for key, options in CHOICES.items():
            if getattr(self, key) not in options:
                raise ConfigError(
                    f"{key}: {getattr(self, key)!r} is not valid; choose one of {', '.join(map(str, options))}."
                )
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
            if not getattr(self, key) >= 0 or (key == "lr" and self.lr == 0):
                raise ConfigError(f"{key}: must be positive, got {getattr(self, key)}.")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be in [0, 1), got {getattr(self, key)}.")
        if not 0 <= self.norm_low < self.norm_high <= 100:
            raise ConfigError(
                f"norm_low/norm_high: need 0 <= low < high <= 100, got {self.norm_low}/{self.norm_high}."
            )
        if not isinstance(self.generator_params, dict):
            raise ConfigError(
                f"generator_params: expected a mapping such as {{encoder_depth: 4}}, got "
                f"{type(self.generator_params).__name__}."
            )
        if not self.encoder:
            raise ConfigError("encoder: must name an smp encoder, e.g. resnet34.")

    # ------------------------------------------------------------------ construction
    @classmethod
    def keys(cls) -> list[str]:
        """All valid configuration keys."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TrainConfig":
        """Build from a mapping; unknown keys are an error listing the valid ones."""
        data = dict(data or {})
        data = {k.replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise ConfigError(
                f"Unknown training option(s) {', '.join(unknown)}; valid keys: {', '.join(cls.keys())}."
            )
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a YAML mapping of options (e.g. ``train.yaml``).

        Example:
            >>> cfg = TrainConfig.from_yaml("train.yaml")  # doctest: +SKIP
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file '{p}' not found; give a YAML file of training options.")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"Cannot parse '{p}' as YAML: {str(exc).splitlines()[0]}.") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"'{p}' must hold a mapping of options (key: value), got {type(data).__name__}.")
        return cls.from_dict(data)

    def merge(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A new config with ``overrides`` applied; keys whose value is None are ignored."""
        data = self.to_dict()
        extra = {k.replace("-", "_"): v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(extra) - set(self.keys()))
        if unknown:
            raise ConfigError(
                f"Unknown training option(s) {', '.join(unknown)}; valid keys: {', '.join(self.keys())}."
            )
        data.update(extra)
        return TrainConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (YAML/JSON ready)."""
        return {f.name: (dict(getattr(self, f.name)) if f.name == "generator_params" else getattr(self, f.name))
                for f in fields(self)}

    def to_yaml(self) -> str:
        """The config as YAML text (keys in schema order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

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

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turn YAML/CLI values into the field's type, or raise a ConfigError naming the key."""
    ann = str(annotation)
    if value is None:
        if "None" in ann:
            return None
        raise ConfigError(f"{name}: a value is required.")
    try:
        if ann.startswith("bool"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
                return value.lower() in ("true", "yes", "on", "1")
            raise ValueError
        if ann.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if ann.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if ann.startswith("str"):
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if ann.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        kind = ann.split(" ")[0].split("|")[0]
        raise ConfigError(f"{name}: expected {kind}, got {value!r}.") from None
    return value
