"""The result of ``geop2p evaluate``: per-band metrics of a model and of the linear baseline.

Example:
    >>> m = {"bands": {"dem": {"mae": 1.0, "rmse": 2.0, "psnr": 30.0, "ssim": float("nan")}},
    ...      "mae": 1.0, "rmse": 2.0, "psnr": 30.0, "ssim": float("nan")}
    >>> r = EvaluationReport("model.safetensors", "chips", "test", 2, ("dem",), m, None, 0)
    >>> r.to_dict()["model"]["ssim"], r.to_dict()["baseline"]["metrics"]
    ('nan', None)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from geop2p.errors import OutputExistsError
from geop2p.formats import jsonsafe
from geop2p.io.atomic import atomic_path, check_output_free, writing
from geop2p.metrics import HIGHER_IS_BETTER, METRIC_NAMES

__all__ = ["EvaluationReport", "check_report_path"]


def check_report_path(path: str | os.PathLike, overwrite: bool, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raise unless the JSON report can go to ``path`` without replacing anything it must not; writes nothing.

    Args:
        path: the ``--json`` file.
        overwrite: an existing report may be replaced.
        inputs: the model and the dataset folders: the report may be none of them, nor lie inside a folder.

    Raises:
        OutputExistsError: ``path`` is a folder, an input, inside an input folder, under a file, or
            exists and ``overwrite`` is False.

    Example:
        >>> check_report_path("model.safetensors", True, inputs=["model.safetensors", "chips"])
        Traceback (most recent call last):
        ...
        geop2p.errors.OutputExistsError: --json 'model.safetensors' is an input of this command; write the report \
to another file.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputExistsError(f"--json '{p}' is a folder; give a file name, e.g. '{p / 'report.json'}'.")
    here = p.resolve()
    for item in inputs:
        other = Path(item).resolve()
        if here == other:
            raise OutputExistsError(f"--json '{p}' is an input of this command; write the report to another file.")
        if other in here.parents:
            raise OutputExistsError(
                f"--json '{p}' is inside '{item}', an input of this command; write the report elsewhere."
            )
    check_output_free(p, overwrite)
    above = next((a for a in p.parents if a.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputExistsError(f"--json '{p}': '{above}' is a file, not a folder; give another file name.")


@dataclass(frozen=True)
class EvaluationReport:
    """Per-band metrics of a model and of the linear baseline on one split.

    Attributes:
        model_path: the bundle evaluated.
        chips_dir: the dataset folder(s), in words (``chips`` or ``chips_a, chips_b``).
        split: the split scored.
        n_chips: chips scored.
        band_names: target bands.
        model: ``MetricAccumulator.compute()`` of the model.
        baseline: the same for the linear baseline, or None (no train pixels to fit it).
        baseline_pixels: train pixels the baseline was fitted on.
        datasets: each folder and its format (``{"path": ..., "format": ...}``).
        preprocess: how the folders' files became chips (the dataset's ``preprocess``: for a pix2pix
            aligned folder its direction, load and crop sizes).
    """

    model_path: str
    chips_dir: str
    split: str
    n_chips: int
    band_names: tuple[str, ...]
    model: dict[str, Any]
    baseline: dict[str, Any] | None
    baseline_pixels: int
    datasets: tuple[Mapping[str, str], ...] = ()
    preprocess: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (:mod:`geop2p.formats.jsonsafe`: NaN/±inf become ``"nan"``/``"inf"``/``"-inf"``)."""
        return jsonsafe.to_json({
            "model_path": self.model_path, "chips_dir": self.chips_dir, "split": self.split,
            "datasets": [dict(d) for d in self.datasets],
            "preprocess": dict(self.preprocess) if self.preprocess is not None else None,
            "n_chips": self.n_chips, "band_names": list(self.band_names), "model": self.model,
            "baseline": {"kind": "linear least squares on the train split", "train_pixels": self.baseline_pixels,
                         "metrics": self.baseline},
        })

    def to_json(self) -> str:
        """The report as JSON text, written under the one JSON policy (:func:`geop2p.formats.jsonsafe.dumps`)."""
        return jsonsafe.dumps(self.to_dict(), indent=2)

    def write_json(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` to ``path``, whole or not at all.

        Raises:
            OutputExistsError: ``path`` exists and ``overwrite`` is False.
            WriteError: the write failed (read-only file system, full disk), as one line.
        """
        with writing(path), atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(self.to_json())
        return Path(path)

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
