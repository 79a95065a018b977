"""``evaluate()``: score a model bundle on a split of a chip folder, next to the linear baseline.

For each target band: MAE and RMSE in the data's own units, PSNR and SSIM
(see :mod:`geop2p.metrics`), over valid pixels only — for the model and for
the obvious baseline (:mod:`geop2p.evaluate.baseline`) fitted on the *train*
split.

Example:
    >>> report = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
    >>> print(report.format_table())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import numpy as np
import torch

from geop2p.datasets import open_chip_dataset
from geop2p.device import resolve_device
from geop2p.errors import ChipFolderError, ConfigError, SizeMultipleError
from geop2p.evaluate.baseline import fit_linear_baseline
from geop2p.evaluate.report import EvaluationReport
from geop2p.io.bundle_file import read_bundle_header
from geop2p.metrics import MetricAccumulator
from geop2p.models import required_divisor
from geop2p.models.bundle import load_bundle
from geop2p.train.checks import logs_after_checks

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)


def evaluate(
    model_path: str | os.PathLike,
    chips_dir: str | os.PathLike,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Score a model bundle on one split of a chip folder, next to a linear baseline fitted on train.

    Args:
        model_path: a ``.safetensors`` bundle written by ``geop2p train``.
        chips_dir: a geop2p chip folder (or ArcGIS Export Tiles folder) with the model's bands.
        split: ``train``, ``val`` or ``test``.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: chips per forward pass.
        progress: called as ``progress(done, total)`` after each batch.

    Raises:
        BundleError: not a geop2p bundle (pickles are refused, never loaded).
        ChipFolderError: empty split, or the chips' bands do not match the model's.
        SizeMultipleError: the chips' size does not suit the model's generator.
        RasterReadError: the split's first chip cannot be read.

    Every check runs before anything is logged.

    Example:
        >>> r = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
        >>> r.model["bands"]["elevation"]["mae"] < r.baseline["bands"]["elevation"]["mae"]  # doctest: +SKIP
        True
    """
    with logs_after_checks():  # every check first: a bad command prints one line, no note before it
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        dev = resolve_device(device)
        header = read_bundle_header(model_path)
        in_norm, tg_norm = header.input.normalizer, header.target.normalizer
        probe = open_chip_dataset(chips_dir, "all")
        for side, info, names in (("input", probe.input_info, header.input.band_names),
                                  ("target", probe.target_info, header.target.band_names)):
            if info.count != len(names):
                raise ChipFolderError(
                    f"The model expects {len(names)} {side} band(s) ({', '.join(names)}) but the chips in "
                    f"'{chips_dir}' have {info.count} ({', '.join(info.band_names)}); evaluate on chips exported "
                    "with the model's bands."
                )
        ds = open_chip_dataset(chips_dir, split, input_normalizer=in_norm, target_normalizer=tg_norm)
        if len(ds) == 0:
            raise ChipFolderError(
                f"The {split} split of '{chips_dir}' is empty; choose another --split (train, val, test).")
        divisor = required_divisor(header.generator)
        if ds.chip_size % divisor:
            raise SizeMultipleError(ds.chip_size, divisor, "--size", "Chip size",
                                    f"the model's {header.architecture} needs it",
                                    "Export the chips again with that size.")
        generator, _ = load_bundle(model_path, device=dev)
        ds.read_raw(0)  # an unreadable first chip fails here
        if list(probe.input_info.band_names) != list(header.input.band_names):
            logger.warning("Input band names differ: model %s, chips %s", list(header.input.band_names),
                           list(probe.input_info.band_names))
    generator.eval()
    train_ds = open_chip_dataset(chips_dir, "train", input_normalizer=in_norm, target_normalizer=tg_norm)
    baseline = fit_linear_baseline(train_ds, in_norm) if len(train_ds) else None
    if baseline is None:
        logger.warning("No valid train pixels in '%s': the linear baseline is not reported.", chips_dir)

    data_range = [2.0 * s for s in tg_norm.scale]
    names = list(ds.target_info.band_names)
    acc_model = MetricAccumulator(names, data_range)
    acc_base = MetricAccumulator(names, data_range)
    total = len(ds)
    for start in range(0, total, batch_size):
        idx = range(start, min(start + batch_size, total))
        items = [ds[i] for i in idx]
        x = torch.stack([it["input"] for it in items]).to(dev)
        y_raw = torch.stack([it["target_raw"] for it in items])
        valid = torch.stack([it["valid"] for it in items])
        with torch.no_grad():
            pred = generator(x).float().cpu()
        acc_model.update(tg_norm.denormalize(pred), y_raw, valid)
        if baseline is not None:
            raw_x = np.stack([ds.read_raw(i)[0] for i in idx])
            acc_base.update(torch.from_numpy(baseline.predict(raw_x)), y_raw, valid)
        if progress is not None:
            progress(idx.stop, total)
    return EvaluationReport(
        model_path=str(model_path), chips_dir=str(chips_dir), split=split, n_chips=total,
        band_names=tuple(names), model=acc_model.compute(),
        baseline=acc_base.compute() if baseline is not None else None,
        baseline_pixels=baseline.n_pixels if baseline is not None else 0,
    )
