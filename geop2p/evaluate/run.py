"""``evaluate()``: score a model bundle on a split of one dataset folder or several, next to the linear baseline.

For each target band: MAE and RMSE in the data's own units, PSNR and SSIM
(see :mod:`geop2p.metrics`), over valid pixels only — for the model and for
the obvious baseline (:mod:`geop2p.evaluate.baseline`) fitted on the *train*
split of the same folders.

The folders are opened as ``train`` opens them (:func:`~geop2p.datasets.open_chip_dataset`,
with ``format`` and the format options that are set), and the way the model
was trained: the options its bundle records (``training.preprocess``) are the
defaults for folders of the layouts it was trained on — a pix2pix aligned
folder's direction, load size and crop size, a name-hash split's percentages
and seed (so the test split is training's).  An option given here wins, but a
direction contrary to the model's is refused.  Pix2pix images are cropped in
the centre on every split, so the scored crops are those of training's
validation.

Example:
    >>> report = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
    >>> print(report.format_table())  # doctest: +SKIP
    >>> evaluate("run/model.safetensors", ["chips_a/", "chips_b/"], split="val")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from geop2p.datasets import ArcGISTilesDataset, PairedFoldersDataset, detect_format, open_chip_dataset
from geop2p.device import resolve_device
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.evaluate.baseline import fit_linear_baseline
from geop2p.evaluate.report import EvaluationReport
from geop2p.formats.bundle_header import BundleHeader
from geop2p.io.bundle_file import read_bundle_header
from geop2p.metrics import MetricAccumulator
from geop2p.models import required_divisor
from geop2p.models.bundle import load_bundle
from geop2p.train.checks import PIX2PIX, centre_crops, dataset_folders, folders_label, logs_after_checks, size_error
from geop2p.train.config import check_dataset_options

__all__ = ["evaluate", "trained_options"]

#: per layout, the settings of ``training.preprocess`` that evaluate reads the folders with by default
_RECORDED: dict[str, tuple[str, ...]] = {
    PIX2PIX: ("direction", "load_size", "crop_size"),
    PairedFoldersDataset.format_name: ("val_percent", "test_percent", "split_seed"),
    ArcGISTilesDataset.format_name: ("val_percent",),
}

logger = logging.getLogger(__name__)


def trained_options(header: BundleHeader, formats: Sequence[str] | None = None) -> dict[str, Any]:
    """The format options a model's bundle records it was trained with (``training.preprocess``): a pix2pix
    aligned folder's direction, load size and crop size, a name-hash split's percentages and seed; ``{}`` for
    layouts without options and bundles written before ``training.preprocess``.

    Args:
        header: the model's bundle header.
        formats: only the options recorded for these layouts (default: every layout's).

    Example:
        >>> from geop2p.formats.bundle_header import BandSide
        >>> from geop2p.normalize import Normalizer
        >>> scale = Normalizer("minmax", (127.5,) * 3, (127.5,) * 3, True)
        >>> side = BandSide(("red", "green", "blue"), "uint8", None, scale)
        >>> pre = {"layout": "pix2pix-aligned", "direction": "BtoA", "load_size": 286, "crop_size": 256,
        ...        "resample": "bicubic", "crop": "random"}
        >>> header = BundleHeader({"architecture": "linear"}, side, side, 256, 64, training={"preprocess": pre})
        >>> trained_options(header), trained_options(header, ["geop2p-chips"])
        ({'direction': 'BtoA', 'load_size': 286, 'crop_size': 256}, {})
    """
    pre: Any = (header.training or {}).get("preprocess") or {}
    several = isinstance(pre, Mapping) and pre.get("layout") == "multi-folder"  # folders of several layouts
    layouts = (pre.get("folders") or ()) if several else [pre]
    out: dict[str, Any] = {}
    for layout in layouts:
        if not isinstance(layout, Mapping) or (formats is not None and layout.get("layout") not in formats):
            continue
        for key in _RECORDED.get(layout.get("layout"), ()):
            if layout.get(key) is not None:
                out.setdefault(key, layout[key])
    return out


def _folder_options(header: BundleHeader, formats: Sequence[str], given: dict[str, Any], model: str) -> dict[str, Any]:
    """The format options to open the folders with: what was given, else what the model was trained with on
    folders of the given layouts; pix2pix aligned folders are cropped in the centre on every split."""
    trained = trained_options(header, formats)
    if "direction" in given and trained.get("direction", given["direction"]) != given["direction"]:
        raise ConfigError(
            f"'{model}' was trained {trained['direction']} (its bundle's training.preprocess) but --direction "
            f"{given['direction']} was given: that scores the reverse translation. Leave --direction out."
        )
    return {**trained, **given, **centre_crops(formats)}


def evaluate(
    model_path: str | os.PathLike,
    chips_dir: str | os.PathLike | Sequence[str | os.PathLike],
    split: str = "test",
    device: str = "auto",
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    format: str | None = None,
    **options: Any,
) -> EvaluationReport:
    """Score a model bundle on one split of one dataset folder or several, next to a linear baseline fitted on
    the train split of the same folders.

    Args:
        model_path: a ``.safetensors`` bundle written by ``geop2p train``.
        chips_dir: a dataset folder with the model's bands (a geop2p chip folder, ArcGIS Export Tiles,
            paired folders, a pix2pix aligned folder), or a list of them scored as one.
        split: ``train``, ``val`` or ``test``.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: chips per forward pass.
        progress: called as ``progress(done, total)`` after each batch.
        format: force this format for every folder instead of recognising each layout.
        **options: format options, ``None`` meaning not set: ``direction``, ``load_size``, ``crop_size``
            (pix2pix aligned folders), ``val_percent``, ``test_percent``, ``split_seed`` (name-hash splits);
            default: the model's, from its bundle, else the format's.

    Raises:
        BundleError: not a geop2p bundle (pickles are refused, never loaded).
        ConfigError: an unknown or out-of-range option, one no given folder's format takes, a direction
            contrary to the model's.
        ChipFolderError: a missing folder or one of no format, folders that disagree, an empty split, or
            chips whose bands do not match the model's.
        SizeMultipleError: the chips' size does not suit the model's generator (``--crop-size`` for pix2pix
            aligned folders, else ``--size``).
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
        given = check_dataset_options(format, **options)
        dev = resolve_device(device)
        header = read_bundle_header(model_path)
        in_norm, tg_norm = header.input.normalizer, header.target.normalizer
        folders = dataset_folders(chips_dir)
        formats = [detect_format(f, format).name for f in folders]
        opts = dict(format=format, **_folder_options(header, formats, given, str(model_path)))
        probe = open_chip_dataset(folders, "all", **opts)
        for side, info, names in (("input", probe.input_info, header.input.band_names),
                                  ("target", probe.target_info, header.target.band_names)):
            if info.count != len(names):
                raise ChipFolderError(
                    f"The model expects {len(names)} {side} band(s) ({', '.join(names)}) but the chips in "
                    f"{probe.label} have {info.count} ({', '.join(info.band_names)}); evaluate on chips exported "
                    "with the model's bands."
                )
        norms = dict(input_normalizer=in_norm, target_normalizer=tg_norm)
        ds = open_chip_dataset(folders, split, **norms, **opts)
        if len(ds) == 0:
            raise ChipFolderError(
                f"The {split} split of {ds.label} is empty; choose another --split (train, val, test).")
        divisor = required_divisor(header.generator)
        if ds.chip_size % divisor:
            raise size_error(ds.chip_size, divisor, formats, f"the model's {header.architecture} needs it",
                             "Export the chips again with that size.")
        train_ds = open_chip_dataset(folders, "train", **norms, **opts)
        generator, _ = load_bundle(model_path, device=dev)
        ds.read_raw(0)  # an unreadable first chip fails here
        if list(probe.input_info.band_names) != list(header.input.band_names):
            logger.warning("Input band names differ: model %s, chips %s", list(header.input.band_names),
                           list(probe.input_info.band_names))
    generator.eval()
    baseline = fit_linear_baseline(train_ds, in_norm) if len(train_ds) else None
    if baseline is None:
        logger.warning("No valid train pixels in %s: the linear baseline is not reported.", train_ds.label)

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
        model_path=str(model_path), chips_dir=folders_label(folders), split=split, n_chips=total,
        band_names=tuple(names), model=acc_model.compute(),
        baseline=acc_base.compute() if baseline is not None else None,
        baseline_pixels=baseline.n_pixels if baseline is not None else 0,
        datasets=tuple({"path": str(f), "format": fmt} for f, fmt in zip(folders, formats)),
        preprocess=ds.preprocess,
    )
