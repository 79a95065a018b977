"""geop2p inside QGIS: what the Processing script ``tools/qgis/geop2p_translate.py`` calls, and a Deepness check.

Nothing here imports QGIS: :mod:`geop2p.qgis.translate` resolves the Processing
dialog's choices and runs the :class:`~geop2p.predict.Translator`;
:mod:`geop2p.qgis.deepness_check` measures how a Deepness export
(:mod:`geop2p.onnx_export`) agrees with ``geop2p predict``.

Example:
    >>> from geop2p.qgis import MODEL_FILE_FILTER
    >>> MODEL_FILE_FILTER
    'geop2p model (*.safetensors);;All files (*.*)'
"""

from __future__ import annotations

from geop2p.qgis.translate import (
    DEVICES,
    MODEL_FILE_FILTER,
    TEMPORARY_OUTPUT,
    QgisInputError,
    TranslateRequest,
    TranslationCanceled,
    check_device,
    default_output_path,
    layer_source_path,
    resolve_request,
    run_translation,
)

__all__ = [
    "DEVICES",
    "MODEL_FILE_FILTER",
    "QgisInputError",
    "TEMPORARY_OUTPUT",
    "TranslateRequest",
    "TranslationCanceled",
    "check_device",
    "default_output_path",
    "layer_source_path",
    "resolve_request",
    "run_translation",
]
