"""QGIS Processing script: translate a raster layer with a geop2p model and add the result to the map.

Load it in QGIS: Processing Toolbox → Scripts (python icon) → *Add Script to
Toolbox…* and choose this file, or add this folder under Settings → Options →
Processing → Scripts → Scripts folder(s). geop2p must be installed in QGIS's
Python (see tools/qgis/README.md). The work is done by
``geop2p_qgis_core.py`` beside this file (tested without QGIS).
"""

from __future__ import annotations

import os
import sys

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

try:
    import geop2p_qgis_core as core
except ImportError:  # the core sits beside this file; QGIS may run the script from elsewhere
    _here = os.path.dirname(os.path.abspath(globals().get("__file__", "")))
    if _here and _here not in sys.path:
        sys.path.insert(0, _here)
    try:
        import geop2p_qgis_core as core
    except ImportError as exc:  # pragma: no cover - depends on the QGIS installation
        raise ImportError(
            "geop2p_qgis_core.py was not found next to geop2p_translate.py; keep both files in the same "
            "scripts folder (Settings → Options → Processing → Scripts)."
        ) from exc

DEVICES = ["auto", "cpu", "cuda"]


class Geop2pTranslateAlgorithm(QgsProcessingAlgorithm):
    """Run a geop2p model (pix2pix generator) over a raster layer."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    OVERWRITE = "OVERWRITE"
    OUTPUT = "OUTPUT"

    def name(self):
        return "geop2p_translate"

    def displayName(self):
        return "Translate raster (geop2p pix2pix)"

    def group(self):
        return "geop2p"

    def groupId(self):
        return "geop2p"

    def shortHelpString(self):
        return (
            "Translates a raster layer (e.g. a DEM, SAR or RGB image) into the target of a geop2p model "
            "(e.g. imagery, optical, map, multispectral) with the model's own sliding window and blending. "
            "The output has the input's CRS, transform and size, the target's bands and dtype, and nodata "
            "wherever the input was nodata. The model is the model.safetensors written by `geop2p train`."
        )

    def createInstance(self):
        return Geop2pTranslateAlgorithm()

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster layer"))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                "geop2p model (.safetensors)",
                behavior=QgsProcessingParameterFile.File,
                fileFilter="geop2p model (*.safetensors)",
            )
        )
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterBoolean(self.OVERWRITE, "Overwrite existing output", defaultValue=False)
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Translated raster"))

    def processAlgorithm(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("Choose an input raster layer.")
        model = self.parameterAsFile(parameters, self.MODEL, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        overwrite = self.parameterAsBoolean(parameters, self.OVERWRITE, context)
        device = DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        try:
            request = core.resolve_request(layer.source(), model, output, overwrite=overwrite)
            feedback.pushInfo(f"Translating {request.source} with {request.model.name} → {request.output}")
            path = core.run_translation(
                request, progress=feedback.setProgress, is_canceled=feedback.isCanceled, device=device
            )
        except core.TranslationCanceled as exc:
            raise QgsProcessingException(str(exc)) from exc
        except ImportError as exc:
            raise QgsProcessingException(
                f"geop2p is not installed in QGIS's Python ({exc}); see tools/qgis/README.md."
            ) from exc
        except (core.QgisInputError, ValueError, OSError) as exc:  # geop2p errors subclass these builtins
            raise QgsProcessingException(str(exc)) from exc
        # Processing adds OUTPUT to the map when the run ends ("Open output file after running algorithm");
        # make sure it does even for a default output name, and name the layer after the file.
        if context.willLoadLayerOnCompletion(str(path)):
            context.layerToLoadOnCompletionDetails(str(path)).name = path.stem
        else:
            context.addLayerToLoadOnCompletion(
                str(path), QgsProcessingContext.LayerDetails(path.stem, context.project(), self.OUTPUT)
            )
        return {self.OUTPUT: str(path)}
