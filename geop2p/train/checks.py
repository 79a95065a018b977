"""What :func:`geop2p.train.train` checks before it writes or logs anything.

A bad command must print exactly one line, so every check runs first and the
log lines of the checks themselves (a normalizer falling back to minmax, the
val split being empty) are held by :func:`logs_after_checks` and given out
only once every check has passed.

The checks: the run folder (:meth:`~geop2p.io.run_folder.RunFolder.check`), the
checkpoint and its settings on ``--resume``, the dataset folders (each one's
format, the format options against them, their agreement), the chip size
against the generator, the PatchGAN depth against the chip size, the encoder
weights, the recommended overlap, the chips a checkpoint was trained on, and
the first chip of each split (it must be readable).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from geop2p.datasets import (
    MultiFolderDataset,
    PairAugment,
    PairedChipDataset,
    Pix2PixAlignedDataset,
    detect_format,
    normalizer_from_stats,
    open_chip_dataset,
)
from geop2p.errors import ConfigError, SizeMultipleError
from geop2p.models import required_divisor
from geop2p.models.discriminator import deepest_fitting_layers, patch_output_size, receptive_field
from geop2p.normalize import Normalizer
from geop2p.tiling import check_overlap
from geop2p.train.config import TrainConfig

__all__ = [
    "PIX2PIX",
    "TrainData",
    "build_normalizers",
    "centre_crops",
    "check_networks",
    "dataset_folders",
    "folders_label",
    "logs_after_checks",
    "open_data",
    "probe_chips",
    "size_error",
]

#: the registry's name of the pix2pix aligned layout (the one whose chip size is --crop-size)
PIX2PIX = Pix2PixAlignedDataset.format_name

logger = logging.getLogger(__name__)


class _Hold(logging.Filter):
    """A filter that keeps every record it sees and lets none through."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def logs_after_checks() -> Iterator[None]:
    """Hold what geop2p logs in the block; log it after the block if it ends cleanly, drop it if it raises.

    Example:
        >>> import logging
        >>> seen = []
        >>> class Keep(logging.Handler):
        ...     def emit(self, record): seen.append((len(seen), record.getMessage()))
        >>> log, keep = logging.getLogger("geop2p.train.checks"), Keep()
        >>> log.addHandler(keep)
        >>> with logs_after_checks():
        ...     log.warning("a note"); seen.append("end of the checks")
        >>> seen
        ['end of the checks', (1, 'a note')]
        >>> try:
        ...     with logs_after_checks():
        ...         log.warning("dropped"); raise ValueError("bad input")
        ... except ValueError:
        ...     pass
        >>> len(seen), log.removeHandler(keep)
        (2, None)
    """
    hold = _Hold()
    names = ["geop2p"] + [n for n in logging.root.manager.loggerDict if n.startswith("geop2p.")]
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        lg.addFilter(hold)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(hold)
    for record in hold.records:
        logging.getLogger(record.name).handle(record)


def build_normalizers(stats: dict, cfg: TrainConfig) -> tuple[Normalizer, Normalizer]:
    """Input and target normalizers from a chip folder's statistics and the config's method.

    When the statistics hold no percentiles (an ArcGIS ``.emd``) and the method is
    ``percentile``, ``minmax`` is used instead, with a warning.
    """
    return tuple(  # type: ignore[return-value]
        normalizer_from_stats(stats.get(side), side, cfg.normalization, cfg.norm_low, cfg.norm_high)
        for side in ("input", "target")
    )


def dataset_folders(chips_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """One folder or several as a list of paths.

    Raises:
        ConfigError: an empty list.

    Example:
        >>> dataset_folders("chips"), dataset_folders(["a", Path("b")])
        ([PosixPath('chips')], [PosixPath('a'), PosixPath('b')])
    """
    folders = [Path(chips_dir)] if isinstance(chips_dir, (str, os.PathLike)) else [Path(f) for f in chips_dir]
    if not folders:
        raise ConfigError("No dataset folder given; give at least one folder to train or evaluate on.")
    return folders


def folders_label(folders: Sequence[Path]) -> str:
    """The folders in words, for messages: ``chips`` or ``chips_a, chips_b``.

    Example:
        >>> folders_label([Path("chips_a"), Path("chips_b")])
        'chips_a, chips_b'
    """
    return ", ".join(str(f) for f in folders)


def centre_crops(formats: Sequence[str]) -> dict[str, Any]:
    """The option that makes pix2pix aligned folders crop in the centre whatever the split (for scoring on train
    images); nothing when no folder is one.

    Example:
        >>> centre_crops(["geop2p-chips", "pix2pix-aligned"]), centre_crops(["geop2p-chips"])
        ({'random_crop': False}, {})
    """
    return {"random_crop": False} if PIX2PIX in formats else {}


def size_error(size: int, divisor: int, formats: Sequence[str], reason: str, hint: str) -> SizeMultipleError:
    """The error for chips that do not suit a generator: pix2pix aligned folders' chip size is ``--crop-size``,
    the others' ``--size`` (at export).

    Example:
        >>> print(size_error(250, 32, ["pix2pix-aligned"], "the smp-unet generator needs it", "Re-export."))
        Crop size 250 is not a multiple of 32 (the smp-unet generator needs it); use --crop-size 256. Keep \
--load-size at least as large.
    """
    if formats and all(f == PIX2PIX for f in formats):
        return SizeMultipleError(size, divisor, "--crop-size", "Crop size", reason,
                                 "Keep --load-size at least as large.")
    return SizeMultipleError(size, divisor, "--size", "Chip size", reason, hint)


@dataclass(frozen=True)
class TrainData:
    """The opened splits: ``val`` is the train split when the val split is empty (``metrics_split`` says so).

    Attributes:
        train: the train split (augmented).
        val: what epochs are scored on.
        metrics_split: ``val``, or ``train`` when the val split is empty.
        input_normalizer: the input normalizer of both.
        target_normalizer: the target normalizer of both.
        folders: the dataset folders, as given.
        formats: each folder's format name.
    """

    train: PairedChipDataset
    val: PairedChipDataset
    metrics_split: str
    input_normalizer: Normalizer
    target_normalizer: Normalizer
    folders: tuple[Path, ...] = ()
    formats: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """What the bundle's ``training`` records of the data.

        ``chips_manifest_sha256`` (the dataset's identity: a chip folder's manifest, or the union of several
        folders), ``preprocess`` (how files became chips: the dataset's :attr:`~PairedChipDataset.preprocess`),
        ``datasets`` (each folder's absolute path and format) and, for pix2pix aligned folders,
        ``source_sizes``: the distinct ``[width, height]`` of one half of the train images before they were
        resized to ``load_size`` squared.
        """
        train = self.train
        doc: dict[str, Any] = {
            "chips_manifest_sha256": train.source_sha256,
            "preprocess": train.preprocess,
            "datasets": [{"path": str(f.resolve()), "format": fmt} for f, fmt in zip(self.folders, self.formats)],
        }
        members = train.members if isinstance(train, MultiFolderDataset) else [train]
        sizes = sorted({size for m in members if isinstance(m, Pix2PixAlignedDataset) for size in m.source_sizes})
        if sizes:
            doc["source_sizes"] = [list(size) for size in sizes]
        return doc


def open_data(chips_dir: str | os.PathLike | Sequence[str | os.PathLike], cfg: TrainConfig) -> TrainData:
    """Open the train and val splits of one folder or several, with the config's format, options, normalizers
    and augmentation.

    The normalizers are the (merged) train statistics' under ``cfg.normalization``, or the layout's
    fixed scaling (pix2pix aligned folders: ``x / 127.5 - 1`` whatever the setting).  An empty val split
    is replaced by the train split, without augmentation and (pix2pix) with centre crops.

    Raises:
        ConfigError: an option no given folder's format takes, a folder given twice.
        ChipFolderError: a folder that is missing or of no format, folders that disagree, no train pairs.
    """
    folders = dataset_folders(chips_dir)
    formats = tuple(detect_format(f, cfg.format).name for f in folders)
    opts = dict(format=cfg.format, **cfg.dataset_options)
    augment = PairAugment(flips=cfg.flips, rot90=cfg.rot90) if cfg.augment else None
    probe = open_chip_dataset(folders, "train", seed=cfg.seed, **opts)
    probe.check_not_empty()
    in_norm, tg_norm = probe.default_normalizers(cfg.normalization, cfg.norm_low, cfg.norm_high)
    norms = {"input_normalizer": in_norm, "target_normalizer": tg_norm, "seed": cfg.seed}
    train_ds = open_chip_dataset(folders, "train", augment=augment, **norms, **opts)
    train_ds.check_not_empty()
    val_ds: PairedChipDataset = open_chip_dataset(folders, "val", **norms, **opts)
    metrics_split = "val"
    if len(val_ds) == 0:
        logger.warning("The val split of %s is empty: epochs are scored on the train chips instead "
                       "(metrics.csv says so in metrics_split).", train_ds.label)
        val_ds = open_chip_dataset(folders, "train", **norms, **opts, **centre_crops(formats))
        metrics_split = "train"
    return TrainData(train_ds, val_ds, metrics_split, in_norm, tg_norm, tuple(folders), formats)


def check_networks(cfg: TrainConfig, data: TrainData) -> None:
    """The chips suit the generator and the PatchGAN; the encoder weights and the recommended overlap are usable.

    Raises:
        SizeMultipleError: the chip size is not a multiple of the generator's divisor.
        ConfigError: ``d_layers`` leaves no PatchGAN output on these chips, unusable encoder weights.
        InputError: a recommended overlap out of range.
    """
    ds = data.train
    divisor = required_divisor(cfg.generator_spec(ds.input_info.count, ds.target_info.count))
    if ds.chip_size % divisor:
        raise size_error(
            ds.chip_size, divisor, data.formats, f"the {cfg.generator} generator needs it",
            "Re-export the chips with that size, or use a shallower network "
            "(generator_params: encoder_depth for smp-unet, num_downs for pix2pix-unet).")
    if patch_output_size(ds.chip_size, cfg.d_layers) < 1:
        deepest = deepest_fitting_layers(ds.chip_size)
        fix = (f"use --d-layers {deepest} or fewer ({deepest} sees {receptive_field(deepest)}x"
               f"{receptive_field(deepest)} px patches)" if deepest else "export larger chips")
        raise ConfigError(
            f"d_layers {cfg.d_layers} is too deep for {ds.chip_size} px chips: the PatchGAN would leave no "
            f"output cell; {fix}."
        )
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


def probe_chips(data: TrainData) -> None:
    """Read the first chip pair of the train and val splits, so an unreadable folder fails before the run starts.

    Raises:
        RasterReadError, ChipFolderError: the chip cannot be read or does not match the folder's description.
    """
    for ds in (data.train, data.val):
        if len(ds):
            ds.read_raw(0)
