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

__all__ = ["TrainConfig", "CHOICES", "BEST_METRICS", "DATASET_FORMATS", "DATASET_OPTIONS", "DIRECTIONS",
           "check_dataset_options"]

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


#: the dataset formats ``--format`` may force: the names of :data:`geop2p.datasets.FORMATS`, here without torch
#: so that the command line refuses a bad name at once (a test pins the two lists together)
DATASET_FORMATS: tuple[str, ...] = ("geop2p-chips", "arcgis-tiles", "paired-folders", "pix2pix-aligned")
#: the format options a user may set (train's config fields, evaluate's keywords); ``None`` means "not set"
DATASET_OPTIONS: tuple[str, ...] = ("direction", "load_size", "crop_size", "val_percent", "test_percent",
                                    "split_seed")
#: pix2pix translation directions (:data:`geop2p.datasets.DIRECTIONS`)
DIRECTIONS: tuple[str, str] = ("AtoB", "BtoA")


def check_dataset_options(format: str | None = None, **options: Any) -> dict[str, Any]:
    """Check ``--format`` and the format options without opening any folder; return the options that are set.

    Which folder takes which option is checked when the folders are opened
    (:func:`geop2p.datasets.open_chip_dataset`); this checks the values alone,
    so that a bad one is refused before torch is imported.

    Raises:
        ConfigError: an unknown format or option, or a value out of range (one line naming it).

    Example:
        >>> check_dataset_options(None, direction="BtoA", load_size=None, crop_size=128)
        {'direction': 'BtoA', 'crop_size': 128}
        >>> check_dataset_options(None, crop_size=300, load_size=286)
        Traceback (most recent call last):
        ...
        geop2p.errors.ConfigError: crop_size: 300 is larger than load_size 286; the crop is cut from the resized \
image (e.g. --load-size 286 --crop-size 256).
    """
    if format is not None and format not in DATASET_FORMATS:
        raise ConfigError(f"format: {format!r} is not valid; choose one of {', '.join(DATASET_FORMATS)}.")
    unknown = sorted(set(options) - set(DATASET_OPTIONS))
    if unknown:
        raise ConfigError(f"Unknown dataset option {unknown[0]!r}; valid options: {', '.join(DATASET_OPTIONS)}.")
    opts = {k: options[k] for k in DATASET_OPTIONS if options.get(k) is not None}
    if "direction" in opts and opts["direction"] not in DIRECTIONS:
        raise ConfigError(f"direction: {opts['direction']!r} is not valid; choose one of {', '.join(DIRECTIONS)}.")
    for key in ("load_size", "crop_size"):
        if key in opts and (not isinstance(opts[key], int) or opts[key] < 1):
            raise ConfigError(f"{key}: must be a whole number of pixels of at least 1, got {opts[key]!r}.")
    if "load_size" in opts and "crop_size" in opts and opts["crop_size"] > opts["load_size"]:
        raise ConfigError(f"crop_size: {opts['crop_size']} is larger than load_size {opts['load_size']}; the crop is "
                          "cut from the resized image (e.g. --load-size 286 --crop-size 256).")
    for key in ("val_percent", "test_percent"):
        if key in opts and not 0 <= opts[key] < 100:
            raise ConfigError(f"{key}: must be a whole percentage from 0 to 99, got {opts[key]!r}.")
    if opts.get("val_percent", 0) + opts.get("test_percent", 0) >= 100:
        raise ConfigError(f"val_percent + test_percent must leave some train pairs; got {opts['val_percent']} + "
                          f"{opts['test_percent']} (e.g. 10 and 10).")
    if "split_seed" in opts and not 0 <= opts["split_seed"] < 2**32:
        raise ConfigError(f"split_seed: must be a whole number from 0 to {2**32 - 1}, got {opts['split_seed']}.")
    return opts


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
        format: force this dataset format for every folder (``--format``; None: recognise each layout).
        direction: pix2pix aligned folders: ``AtoB`` or ``BtoA`` (None: the format's default, AtoB).
        load_size: pix2pix aligned folders: each half is resized to this square (None: 286).
        crop_size: pix2pix aligned folders: then cropped to this square, the chip size (None: 256).
        val_percent: name-hash splits (paired folders, ArcGIS tiles): percentage of val pairs (None: 10).
        test_percent: name-hash splits of paired folders: percentage of test pairs (None: 10).
        split_seed: seeds the name hash of paired folders (None: 0, ArcGIS's ``crc32(name)``).

    Only the dataset options that are set (not None) are passed to the folders; one that no given
    folder's format takes is refused when the folders are opened.
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
    format: str | None = None
    direction: str | None = None
    load_size: int | None = None
    crop_size: int | None = None
    val_percent: int | None = None
    test_percent: int | None = None
    split_seed: int | None = None

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
        check_dataset_options(self.format, **{k: getattr(self, k) for k in DATASET_OPTIONS})

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
    def dataset_options(self) -> dict[str, Any]:
        """The format options that are set, as :func:`~geop2p.datasets.open_chip_dataset` takes them.

        Example:
            >>> TrainConfig(direction="BtoA", crop_size=128).dataset_options
            {'direction': 'BtoA', 'crop_size': 128}
        """
        return {k: getattr(self, k) for k in DATASET_OPTIONS if getattr(self, k) is not None}

    @property
    def pretrained_encoder(self) -> str | None:
        """``encoder_weights`` as :func:`~geop2p.models.load_encoder_weights` takes it: None for ``none``.

        Example:
            >>> TrainConfig().pretrained_encoder is None, TrainConfig(encoder_weights="imagenet").pretrained_encoder
            (True, 'imagenet')
        """
        return None if self.encoder_weights.lower() == "none" else self.encoder_weights
