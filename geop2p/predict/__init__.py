"""Whole-scene prediction: a :class:`Translator` turns arrays, DataArrays or rasters into predictions.

* :mod:`~geop2p.predict.config` — :class:`PredictConfig` (the schema of ``geop2p predict``) and the window rule.
* :mod:`~geop2p.predict.translator` — :class:`Translator`: a generator and its bundle header.
* :mod:`~geop2p.predict.engine` — the streamed sliding-window pipeline, the blender and the target cast.
* :mod:`~geop2p.predict.tta` — the dihedral transforms of test-time augmentation.
* :mod:`~geop2p.predict.adapters` — ``xarray.DataArray`` in and out.
* :mod:`~geop2p.predict.scenes` — output names and ``torchrun`` scene sharing.

Example:
    >>> t = Translator.from_file("run/model.safetensors")  # doctest: +SKIP
    >>> predict_scenes(["a.tif", "b.tif"], t, out_dir="preds")  # doctest: +SKIP
    [PosixPath('preds/a_pred.tif'), PosixPath('preds/b_pred.tif')]
"""

from geop2p.predict.config import PRECISIONS, TTA_CHOICES, PredictConfig, check_window
from geop2p.predict.scenes import default_output_path, predict_scenes, scene_outputs
from geop2p.predict.translator import Translator

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
