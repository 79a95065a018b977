"""`evaluate`: score a model bundle on a split of a chip folder, next to a linear baseline.

For each target band: MAE and RMSE in the data's own units, PSNR and SSIM
(see :mod:`geop2p.metrics`), over valid pixels only — for the model and for
the obvious baseline, a per-pixel affine regression from the input bands to
the target bands fitted by least squares on the *train* split. The baseline
is fitted from streamed normal equations (``XᵀX`` and ``Xᵀy`` summed chip by
chip in float64, inputs standardised by the model's input normalizer for
conditioning), so no pixels are stored.

Example:
    >>> report = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
    >>> print(report.format_table())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from geop2p.datasets import PairedChipDataset, open_chip_dataset
from geop2p.errors import ChipFolderError, ChipSizeError, ConfigError
from geop2p.metrics import HIGHER_IS_BETTER, METRIC_NAMES, MetricAccumulator
from geop2p.normalize import Normalizer

__all__ = ["evaluate", "EvaluationReport", "LinearBaseline", "fit_linear_baseline"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearBaseline:
    """A per-pixel affine map ``y = [z, 1] @ coef`` with ``z = (x - offset) / scale`` (unclipped).

    Attributes:
        offset: per input band.
        scale: per input band.
        coef: (input bands + 1, target bands) float64.
        n_pixels: training pixels it was fitted on.
    """

    offset: tuple[float, ...]
    scale: tuple[float, ...]
    coef: np.ndarray
    n_pixels: int

    def features(self, x: np.ndarray) -> np.ndarray:
        """(N, Cin, H, W) raw input → (N, H, W, Cin + 1) standardised features with a bias column."""
        off = np.asarray(self.offset).reshape(1, -1, 1, 1)
        sc = np.asarray(self.scale).reshape(1, -1, 1, 1)
        z = ((x.astype(np.float64) - off) / sc).transpose(0, 2, 3, 1)
        return np.concatenate([z, np.ones(z.shape[:-1] + (1,))], axis=-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, Cin, H, W) raw input → (N, Cout, H, W) prediction in target units."""
        return (self.features(x) @ self.coef).transpose(0, 3, 1, 2)


def fit_linear_baseline(dataset: PairedChipDataset, input_normalizer: Normalizer) -> LinearBaseline | None:
    """Least-squares affine map from input to target bands over the valid pixels of ``dataset``.

    Returns None when the dataset has no valid pixel.

    Example:
        >>> base = fit_linear_baseline(open_chip_dataset("chips/", "train"), norm)  # doctest: +SKIP
    """
    cin = dataset.input_info.count
    xtx = np.zeros((cin + 1, cin + 1))
    xty = np.zeros((cin + 1, dataset.target_info.count))
    n = 0
    proto = LinearBaseline(input_normalizer.offset, input_normalizer.scale, np.zeros((cin + 1, 1)), 0)
    for i in range(len(dataset)):
        x, y, valid = dataset.read_raw(i)
        f = proto.features(x[None])[0][valid]  # (n, cin+1)
        t = y.astype(np.float64).transpose(1, 2, 0)[valid]
        xtx += f.T @ f
        xty += f.T @ t
        n += f.shape[0]
    if n == 0:
        return None
    coef = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    return LinearBaseline(proto.offset, proto.scale, coef, n)


@dataclass(frozen=True)
class EvaluationReport:
    """Per-band metrics of a model and of the linear baseline on one split.

    Attributes:
        model_path: the bundle evaluated.
        chips_dir: the chip folder.
        split: the split scored.
        n_chips: chips scored.
        band_names: target bands.
        model: ``MetricAccumulator.compute()`` of the model.
        baseline: the same for the linear baseline, or None (no train pixels to fit it).
        baseline_pixels: train pixels the baseline was fitted on.
    """

    model_path: str
    chips_dir: str
    split: str
    n_chips: int
    band_names: tuple[str, ...]
    model: dict[str, Any]
    baseline: dict[str, Any] | None
    baseline_pixels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return clean({
            "model_path": self.model_path, "chips_dir": self.chips_dir, "split": self.split,
            "n_chips": self.n_chips, "band_names": list(self.band_names), "model": self.model,
            "baseline": {"kind": "linear least squares on the train split", "train_pixels": self.baseline_pixels,
                         "metrics": self.baseline},
        })

    def format_table(self) -> str:
        """A plain-text table: one row per band and metric, model vs baseline, the better one marked."""
        head = f"{Path(self.model_path).name} on {self.n_chips} {self.split} chip(s) of {self.chips_dir}"
        width = max([len("band")] + [len(b) for b in self.band_names] + [len("mean")])
        lines = [head, f"{'band':<{width}}  {'metric':<6}  {'model':>12}  {'linear baseline':>15}  better"]
        for band in list(self.band_names) + (["mean"] if len(self.band_names) > 1 else []):
            m = self.model if band == "mean" else self.model["bands"][band]
            b = None if self.baseline is None else (self.baseline if band == "mean" else self.baseline["bands"][band])
            for k in METRIC_NAMES:
                mv, bv = m[k], (b[k] if b is not None else math.nan)
                if math.isnan(mv) or math.isnan(bv):
                    better = ""
                else:
                    model_wins = mv > bv if k in HIGHER_IS_BETTER else mv < bv
                    better = "model" if model_wins else ("tie" if mv == bv else "baseline")
                lines.append(f"{band:<{width}}  {k.upper():<6}  {mv:>12.4g}  {bv:>15.4g}  {better}")
        return "\n".join(lines)


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

    Example:
        >>> r = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
        >>> r.model["bands"]["elevation"]["mae"] < r.baseline["bands"]["elevation"]["mae"]  # doctest: +SKIP
        True
    """
    from geop2p.io.bundle_file import read_bundle_header
    from geop2p.models.bundle import load_bundle
    from geop2p.models import required_divisor
    from geop2p.device import resolve_device

    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    dev = resolve_device(device)
    meta = read_bundle_header(model_path).to_dict()
    in_norm = Normalizer.from_dict(meta["input"]["normalizer"])
    tg_norm = Normalizer.from_dict(meta["target"]["normalizer"])
    probe = open_chip_dataset(chips_dir, "all")
    for side, info, names in (("input", probe.input_info, meta["input"]["band_names"]),
                              ("target", probe.target_info, meta["target"]["band_names"])):
        if info.count != len(names):
            raise ChipFolderError(
                f"The model expects {len(names)} {side} band(s) ({', '.join(names)}) but the chips in '{chips_dir}' "
                f"have {info.count} ({', '.join(info.band_names)}); evaluate on chips exported with the model's bands."
            )
    if list(probe.input_info.band_names) != list(meta["input"]["band_names"]):
        logger.warning("Input band names differ: model %s, chips %s", meta["input"]["band_names"],
                       list(probe.input_info.band_names))
    ds = open_chip_dataset(chips_dir, split, input_normalizer=in_norm, target_normalizer=tg_norm)
    if len(ds) == 0:
        raise ChipFolderError(f"The {split} split of '{chips_dir}' is empty; choose another --split (train, val, test).")
    divisor = required_divisor(meta["generator"])
    if ds.chip_size % divisor:
        raise ChipSizeError(
            f"Chips are {ds.chip_size} px but the model's {meta['generator']['architecture']} needs sides divisible "
            f"by {divisor}; export chips with --size {max(divisor, ds.chip_size // divisor * divisor)}."
        )
    generator, _ = load_bundle(model_path, device=dev)
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
