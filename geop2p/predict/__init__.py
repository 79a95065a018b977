"""Whole-scene prediction: a :class:`Translator` turns arrays, DataArrays or rasters into predictions.

* :mod:`~geop2p.predict.config` — :class:`PredictConfig` (the schema of ``geop2p predict``) and the window rule.
* :mod:`~geop2p.predict.translator` — :class:`Translator`: a generator and its bundle header.
* :mod:`~geop2p.predict.engine` — the streamed sliding-window pipeline, the blender and the target cast.
* :mod:`~geop2p.predict.tta` — the dihedral transforms of test-time augmentation.
* :mod:`~geop2p.predict.adapters` — ``xarray.DataArray`` in and out.
* :mod:`~geop2p.predict.scenes` — output names and ``torchrun`` scene sharing.
* :mod:`~geop2p.predict.preflight` — every check before anything is written (no torch).
* :mod:`~geop2p.predict.grid_match` — the warning when a scene's pixels differ from the model's.
* :mod:`~geop2p.predict.memory` — the memory a window needs, and the largest that fits.
* :mod:`~geop2p.predict.raster` — a raster in, a GeoTIFF on exactly its grid out.

Importing the package does not import torch (``Translator`` is loaded on first
use), so ``geop2p predict`` refuses a bad command in a fraction of a second.

Example:
    >>> t = Translator.from_file("run/model.safetensors")  # doctest: +SKIP
    >>> predict_scenes(["a.tif", "b.tif"], t, out_dir="preds")  # doctest: +SKIP
    [PosixPath('preds/a_pred.tif'), PosixPath('preds/b_pred.tif')]
"""

import importlib
from typing import Any

from geop2p.predict.config import PRECISIONS, TTA_CHOICES, PredictConfig, check_window
from geop2p.predict.scenes import default_output_path, predict_scenes, scene_outputs

__all__ = [
    "PRECISIONS",
    "TTA_CHOICES",
    "PredictConfig",
    "Translator",
    "check_window",
    "default_output_path",
    "predict_scenes",
    "scene_outputs",
]


def __getattr__(name: str) -> Any:
    """``Translator`` is imported on first use: it needs torch, the checks do not."""
    if name == "Translator":
        return importlib.import_module("geop2p.predict.translator").Translator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
