"""``geop2p evaluate``: score a model bundle on a split of a chip folder, next to a linear baseline.

* :mod:`~geop2p.evaluate.baseline` — :class:`LinearBaseline` and :func:`fit_linear_baseline`.
* :mod:`~geop2p.evaluate.report` — :class:`EvaluationReport` (table and JSON), :func:`check_report_path`.
* :mod:`~geop2p.evaluate.run` — :func:`evaluate`.

Example:
    >>> report = evaluate("run/model.safetensors", "chips/", split="test")  # doctest: +SKIP
    >>> print(report.format_table())  # doctest: +SKIP
"""

from geop2p.evaluate.baseline import LinearBaseline, fit_linear_baseline
from geop2p.evaluate.report import EvaluationReport, check_report_path
from geop2p.evaluate.run import evaluate

__all__ = ["evaluate", "EvaluationReport", "LinearBaseline", "check_report_path", "fit_linear_baseline"]
