"""Export paired, aligned, split chips from input and target rasters (``geop2p export-chips``).

* :mod:`~geop2p.export.config` — :class:`ExportConfig`, the options (the schema of ``export-config.yaml``).
* :mod:`~geop2p.export.plan` — :func:`plan_export`: every check and every chip decided before anything is written.
* :mod:`~geop2p.export.workers` — reading, checking and writing chips, in this process or in worker processes.
* :mod:`~geop2p.export.run` — :func:`export_chips`: the output folder, the export loop, the index and the manifest.

No torch here: chip export runs without the GPU stack.
"""

from geop2p.export.config import AOI_MODES, ExportConfig
from geop2p.export.plan import ExportPlan, plan_export
from geop2p.export.run import ExportSummary, export_chips

__all__ = ["AOI_MODES", "ExportConfig", "ExportPlan", "ExportSummary", "plan_export", "export_chips"]
