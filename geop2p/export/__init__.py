"""Export paired, aligned, split chips from input and target rasters (``geop2p export-chips``).

* :mod:`~geop2p.export.config` — :class:`ExportConfig`, the options (the schema of ``export-config.yaml``).
* :mod:`~geop2p.export.plan` — :func:`plan_export`: every check and every chip decided before anything is written.
* :mod:`~geop2p.export.workers` — reading, checking and writing chips, in this process or in worker processes.
* :mod:`~geop2p.export.folder` — OUT_DIR: what it holds by its own records, what ``--overwrite`` may remove,
  what ``--resume`` must match.
* :mod:`~geop2p.export.notices` — the checks' log lines and warnings, held back until every check has passed.
* :mod:`~geop2p.export.run` — :func:`export_chips` (and :func:`check_export`, its checks alone): the lock, the
  export loop, the index and the manifest.

No torch here: chip export runs without the GPU stack.
"""

from geop2p.export.config import AOI_MODES, ExportConfig
from geop2p.export.plan import ExportPlan, plan_export
from geop2p.export.run import ExportSummary, check_export, export_chips

__all__ = ["AOI_MODES", "ExportConfig", "ExportPlan", "ExportSummary", "check_export", "plan_export", "export_chips"]
