"""QGIS Processing script: translate a raster layer with a geop2p model and add the result to the map.

Copy this one file into a QGIS scripts folder (Processing Toolbox → Scripts
(python icon) → "Add Script to Toolbox...", or Settings → Options →
Processing → Scripts → "Scripts folder(s)"). geop2p itself must be installed
in the Python QGIS runs (see tools/qgis/README.md): every rule lives in
``geop2p.qgis``, so this file holds only the QGIS algorithm (QGIS's script
loader runs every ``.py`` of a scripts folder, without registering it as a
module, so keep no other geop2p file there).
"""

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

try:  # the algorithm loads without geop2p, and says how to install it when run
    from geop2p import qgis as core
except ImportError as exc:  # pragma: no cover - depends on the QGIS installation
    core = None
    GEOP2P_IMPORT_ERROR = str(exc)
else:
    GEOP2P_IMPORT_ERROR = ""

DEVICES = ["auto", "cpu", "cuda"]
MODEL_FILE_FILTER = "geop2p model (*.safetensors);;All files (*.*)"


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
                fileFilter=MODEL_FILE_FILTER,
            )
        )
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterBoolean(self.OVERWRITE, "Overwrite existing output", defaultValue=False)
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Translated raster"))

    def processAlgorithm(self, parameters, context, feedback):
        if core is None:
            raise QgsProcessingException(
                f"geop2p is not installed in the Python QGIS runs ({GEOP2P_IMPORT_ERROR}); install it in a venv "
                "made with --system-site-packages and put its site-packages on PYTHONPATH (tools/qgis/README.md)."
            )
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("Choose an input raster layer.")
        model = self.parameterAsFile(parameters, self.MODEL, context)
        # a real path even for "Save to temporary file" (TEMPORARY_OUTPUT)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        overwrite = self.parameterAsBoolean(parameters, self.OVERWRITE, context)
        device = DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        try:
            request = core.resolve_request(layer.source(), model, output, overwrite=overwrite)
            feedback.pushInfo(f"Translating {request.source} with {request.model.name} -> {request.output}")
            path = core.run_translation(
                request, progress=feedback.setProgress, is_canceled=feedback.isCanceled, device=device
            )
        except (core.TranslationCanceled, ValueError, OSError, ImportError) as exc:
            # geop2p's errors subclass these builtins and say what to do in one line
            raise QgsProcessingException(str(exc)) from exc
        # Processing adds OUTPUT to the map when the run ends ("Open output file after running algorithm");
        # name the layer after the file.
        if context.willLoadLayerOnCompletion(str(path)):
            context.layerToLoadOnCompletionDetails(str(path)).name = path.stem
        return {self.OUTPUT: str(path)}
