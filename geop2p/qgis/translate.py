"""What the QGIS Processing script ``tools/qgis/geop2p_translate.py`` does, without QGIS.

The script (a ``QgsProcessingAlgorithm`` in one self-contained file, the only
file a QGIS scripts folder needs) gathers the user's choices and hands them to
:func:`resolve_request` and :func:`run_translation`; this module holds every
rule, so it is tested without QGIS and the script file holds no dataclass
(QGIS's script loader executes each ``.py`` without registering it in
``sys.modules``, where a dataclass with string annotations fails).

Example:
    >>> default_output_path(Path("/d/scene.tif"), Path("/r/model.safetensors")).name
    'scene_pred.tif'
    >>> req = resolve_request("scene.tif", "model.safetensors", "")  # doctest: +SKIP
    >>> run_translation(req, progress=print, device="cpu")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from geop2p.errors import Geop2pError, InputError

__all__ = [
    "DEVICES",
    "MODEL_FILE_FILTER",
    "QgisInputError",
    "TranslationCanceled",
    "TranslateRequest",
    "check_device",
    "default_output_path",
    "layer_source_path",
    "resolve_request",
    "run_translation",
]

#: QGIS's placeholder for "save to a temporary file"; ``parameterAsOutputLayer`` turns it into a real path
TEMPORARY_OUTPUT = "TEMPORARY_OUTPUT"
RASTER_SUFFIXES = (".tif", ".tiff")
#: the choices of the script's "Device" parameter
DEVICES = ("auto", "cpu", "cuda")
#: the "geop2p model" file parameter's filter: "All files" too, so QGIS lets a .pt through to
#: :func:`resolve_request`, which says why it is refused (a .safetensors-only filter makes QGIS answer
#: "Incorrect parameter value for MODEL" first)
MODEL_FILE_FILTER = "geop2p model (*.safetensors);;All files (*.*)"


class QgisInputError(InputError):
    """A choice made in the QGIS dialog cannot be used (the message says how to fix it)."""


class TranslationCanceled(Geop2pError, RuntimeError):
    """The user pressed Cancel in QGIS; no output file is left behind."""


@dataclass(frozen=True)
class TranslateRequest:
    """A resolved translation job.

    Attributes:
        source: the raster file to translate.
        model: the geop2p model bundle (``.safetensors``).
        output: the GeoTIFF to write.
        overwrite: replace ``output`` if it exists.
    """

    source: Path
    model: Path
    output: Path
    overwrite: bool = False


def layer_source_path(source: str) -> Path:
    """The file behind a QGIS raster layer's ``source()`` string.

    QGIS appends options after ``|`` (e.g. ``scene.tif|layername=x``); GDAL
    virtual paths (``/vsizip/...``) are kept as they are. Web and database layers
    (WMS, XYZ, PostGIS) have no file and are refused.

    Example:
        >>> layer_source_path("/vsizip/data/scenes.zip/scene.tif|option=1").name
        'scene.tif'
    """
    text = (source or "").strip()
    if not text:
        raise QgisInputError("The input layer has no source; choose a raster layer that is a file (e.g. a GeoTIFF).")
    lowered = text.lower()
    if any(key in lowered for key in ("url=", "type=xyz", "dbname=", "contextualwmslegend")) or lowered.startswith(
        ("http://", "https://", "wms:", "postgresraster:")
    ):
        raise QgisInputError(
            f"The input layer '{text[:80]}' is a web or database layer, not a file; "
            "save it as a GeoTIFF first (right-click → Export → Save As…) and translate that file."
        )
    path = Path(text.split("|", 1)[0])
    if not str(path).startswith("/vsi") and not path.is_file():
        raise QgisInputError(f"The input layer's file '{path}' does not exist; reload the layer or pick another one.")
    return path


def default_output_path(source: Path, model: Path) -> Path:
    """``<scene>_<model>_pred.tif`` beside the scene (a model named ``model`` gives ``<scene>_pred.tif``).

    Example:
        >>> default_output_path(Path("/d/scene.tif"), Path("/r/dem2rgb.safetensors")).as_posix()
        '/d/scene_dem2rgb_pred.tif'
    """
    stem = source.stem if not str(source).startswith("/vsi") else Path(str(source).rstrip("/")).stem
    folder = source.parent if not str(source).startswith("/vsi") else Path.cwd()
    tag = "" if model.stem == "model" else f"_{model.stem}"
    return folder / f"{stem}{tag}_pred.tif"


def resolve_request(
    source: str,
    model: str | os.PathLike | None,
    output: str | os.PathLike | None,
    overwrite: bool = False,
) -> TranslateRequest:
    """Check the dialog's choices and turn them into a :class:`TranslateRequest`.

    Args:
        source: the input layer's ``source()`` string.
        model: path of a geop2p ``.safetensors`` bundle.
        output: the output path, as ``parameterAsOutputLayer`` gives it (QGIS turns "Save to temporary
            file" into a path under its processing folder); empty = ``<scene>_pred.tif`` beside the scene.
        overwrite: replace an existing output.

    Raises:
        QgisInputError: with one line saying what is wrong and how to fix it.

    Example:
        >>> resolve_request("scene.tif", "run/model.safetensors", "")  # doctest: +SKIP
    """
    src = layer_source_path(source)
    if not model:
        raise QgisInputError("No model chosen; pick the model.safetensors written by `geop2p train`.")
    model_path = Path(model)
    if not model_path.is_file():
        raise QgisInputError(f"Model file '{model_path}' does not exist; pick the model.safetensors of a training run.")
    if model_path.suffix.lower() != ".safetensors":
        raise QgisInputError(
            f"Model file '{model_path.name}' is not a .safetensors geop2p bundle; "
            "geop2p never loads pickled (.pt/.pth) models. Use the model.safetensors written by `geop2p train`."
        )
    out_text = str(output).strip() if output is not None else ""
    if out_text == TEMPORARY_OUTPUT:
        raise QgisInputError(
            "The output is QGIS's TEMPORARY_OUTPUT placeholder; resolve it with parameterAsOutputLayer() "
            "(which gives a real file path) before calling geop2p."
        )
    if not out_text:
        out = default_output_path(src, model_path)
    else:
        out = Path(out_text)
        if out.suffix.lower() not in RASTER_SUFFIXES:
            raise QgisInputError(f"Output '{out.name}' must be a GeoTIFF (.tif or .tiff); choose a name ending in .tif.")
    if out.resolve() == src.resolve():
        raise QgisInputError(f"Output '{out}' is the input file itself; choose another output name.")
    if out.exists() and not overwrite:
        raise QgisInputError(f"Output '{out}' already exists; choose another name or tick 'Overwrite existing output'.")
    return TranslateRequest(src, model_path, out, bool(overwrite))


def check_device(device: str) -> str:
    """Return ``device`` if geop2p can use it here; else a :class:`QgisInputError` worded for the dialog.

    Example:
        >>> check_device("cpu")
        'cpu'
        >>> check_device("tpu")
        Traceback (most recent call last):
        ...
        geop2p.qgis.translate.QgisInputError: Device 'tpu' is not one of auto, cpu, cuda; choose one in the Device list.
    """
    if device not in DEVICES:
        raise QgisInputError(f"Device {device!r} is not one of {', '.join(DEVICES)}; choose one in the Device list.")
    if device == "cuda":
        from geop2p.device import resolve_device
        from geop2p.errors import ConfigError

        try:
            resolve_device(device)
        except ConfigError:
            raise QgisInputError(
                "Device 'cuda' was chosen but CUDA is not available in QGIS's Python; set the Device parameter "
                "to cpu (or auto)."
            ) from None
    return device


def run_translation(
    request: TranslateRequest,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    device: str = "auto",
    translator_factory: Callable[..., Any] | None = None,
) -> Path:
    """Translate ``request.source`` with the model and write ``request.output``; return the output path.

    Args:
        request: from :func:`resolve_request`.
        progress: called with a percentage 0..100 (QGIS's ``feedback.setProgress``).
        is_canceled: polled between windows (QGIS's ``feedback.isCanceled``); when it
            returns True the run stops with :class:`TranslationCanceled` and no output is left.
        device: ``auto``, ``cpu`` or ``cuda`` (checked by :func:`check_device`).
        translator_factory: builds the translator from a model path (default
            ``geop2p.predict.Translator.from_file``); a seam for tests.

    Example:
        >>> run_translation(resolve_request("scene.tif", "model.safetensors", None))  # doctest: +SKIP
    """
    if translator_factory is None:
        from geop2p.predict import Translator

        def translator_factory(path, device="auto"):
            return Translator.from_file(path, device=device)

    def on_progress(done: float, total: float | None = None) -> None:
        if is_canceled is not None and is_canceled():
            raise TranslationCanceled("Canceled by the user; no output was written.")
        if progress is not None:
            fraction = done / total if total else done
            progress(max(0.0, min(100.0, 100.0 * float(fraction))))

    check_device(device)
    translator = translator_factory(str(request.model), device=device)
    on_progress(0.0, 1.0)
    translator.predict_raster(
        str(request.source), str(request.output), overwrite=request.overwrite, progress=on_progress
    )
    if progress is not None:
        progress(100.0)
    return request.output
