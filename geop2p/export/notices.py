"""Hold the notices of an export's checks back until every check has passed.

Planning an export logs (``No test chips...``, ``Dropped 3 val/test
chips...``) and warns (a pixel-space pair, a random split); a later check can
still refuse the command.  The README promises that a refused command prints
one line, so :class:`DeferredNotices` collects what geop2p logs and warns
inside its block, and :meth:`DeferredNotices.release` passes it all on, in
order, once the command is known to go ahead.  Notices never released (the
command was refused) are dropped: the error says what matters.

Only geop2p's own loggers are held back; other libraries' messages pass
through as before.

Example:
    >>> import logging
    >>> log = logging.getLogger("geop2p.export.example")
    >>> with DeferredNotices() as notices:
    ...     log.warning("No test chips")
    >>> [r.getMessage() for r in notices.records]
    ['No test chips']
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

__all__ = ["DeferredNotices"]


class _Hold(logging.Filter):
    """A logger filter that keeps each record instead of letting it through."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


class DeferredNotices:
    """A context manager holding geop2p's log records and warnings until :meth:`release`.

    Attributes:
        records: the log records held, in order.
        warnings: the warnings held (:class:`warnings.WarningMessage`), in order.
    """

    def __init__(self, prefix: str = "geop2p") -> None:
        self.prefix = prefix
        self.records: list[logging.LogRecord] = []
        self.warnings: list[warnings.WarningMessage] = []
        self._hold = _Hold(self.records)
        self._loggers: list[logging.Logger] = []
        self._catch: warnings.catch_warnings | None = None

    def _geop2p_loggers(self) -> list[logging.Logger]:
        names = [self.prefix] + [n for n in logging.Logger.manager.loggerDict if n.startswith(self.prefix + ".")]
        return [logging.getLogger(n) for n in names]

    def __enter__(self) -> "DeferredNotices":
        self._loggers = self._geop2p_loggers()
        for logger in self._loggers:
            logger.addFilter(self._hold)
        self._catch = warnings.catch_warnings(record=True)
        self.warnings = self._catch.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for logger in self._loggers:
            logger.removeFilter(self._hold)
        self._loggers = []
        if self._catch is not None:
            self._catch.__exit__(*exc)
            self._catch = None

    def release(self) -> None:
        """Pass every held record and warning on (log records first, then warnings); hold nothing more."""
        records, caught = list(self.records), list(self.warnings)
        self.records.clear()
        self.warnings.clear()
        for record in records:
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        modules = _modules_by_file() if caught else {}
        for w in caught:
            module = modules.get(os.path.realpath(w.filename))
            # the module and its registry keep the filters ("ignore ... :rasterio.*") and "once per place" as they were
            registry = vars(sys.modules[module]).setdefault("__warningregistry__", {}) if module else None
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, module=module, registry=registry,
                                   source=w.source)


def _modules_by_file() -> dict[str, str]:
    """``real path of a module's file -> module name`` of every imported module."""
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            out.setdefault(os.path.realpath(path), name)
    return out
