"""What :func:`geop2p.train.train` checks before it writes or logs anything.

A bad command must print exactly one line, so every check runs first and the
log lines of the checks themselves (a normalizer falling back to minmax, the
val split being empty) are held by :func:`logs_after_checks` and given out
only once every check has passed.

The checks: the run folder (:meth:`~geop2p.io.run_folder.RunFolder.check`), the
checkpoint and its settings on ``--resume``, the datasets, the chip size
against the generator, the PatchGAN depth against the chip size, the encoder
weights, the recommended overlap, the chips a checkpoint was trained on, and
the first chip of each split (it must be readable).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from geop2p.datasets import PairAugment, PairedChipDataset, normalizer_from_stats, open_chip_dataset
from geop2p.errors import ChipFolderError, ConfigError, SizeMultipleError
from geop2p.models import required_divisor
from geop2p.models.discriminator import deepest_fitting_layers, patch_output_size, receptive_field
from geop2p.normalize import Normalizer
from geop2p.tiling import check_overlap
from geop2p.train.config import TrainConfig

__all__ = ["TrainData", "build_normalizers", "check_networks", "logs_after_checks", "open_data", "probe_chips"]

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


@dataclass(frozen=True)
class TrainData:
    """The opened splits: ``val`` is the train split when the val split is empty (``metrics_split`` says so)."""

    train: PairedChipDataset
    val: PairedChipDataset
    metrics_split: str
    input_normalizer: Normalizer
    target_normalizer: Normalizer


def open_data(chips_dir: Path, cfg: TrainConfig) -> TrainData:
    """Open the train and val splits with the config's normalizers and augmentation.

    Raises:
        ChipFolderError: not a dataset, or no train chips.
    """
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
    return TrainData(train_ds, val_ds, metrics_split, in_norm, tg_norm)


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
        raise SizeMultipleError(
            ds.chip_size, divisor, "--size", "Chip size", f"the {cfg.generator} generator needs it",
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
