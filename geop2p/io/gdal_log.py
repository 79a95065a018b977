"""GDAL's own messages through Python logging, never raw on stderr.

rasterio already logs what GDAL reports through ``CPLError`` (logger
``rasterio._err``).  Some messages bypass it: GDAL's TIFF driver reports a
failed write (``_tiffWriteProc: No space left on device``) through libtiff's
global error handler, whose default prints straight to the process's stderr.
:func:`route_gdal_messages` replaces libtiff's error and warning handlers with
ones that log to ``geop2p.gdal`` at DEBUG level (``-v`` shows them), so a
failing command prints its one line of explanation and nothing else.

It finds the libtiff that rasterio's GDAL uses (the copy bundled in a wheel,
or the system one) with :mod:`ctypes`; when there is none to find, it does
nothing.  Installing twice is harmless.

Example:
    >>> route_gdal_messages() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import threading

__all__ = ["route_gdal_messages"]

log = logging.getLogger("geop2p.gdal")

_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
_lock = threading.Lock()
_installed: list = []  # keeps the C callbacks alive for the life of the process


def _libtiff() -> ctypes.CDLL | None:
    import rasterio

    bundled = glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libtiff*.so*"))
    candidates = bundled or [ctypes.util.find_library("tiff")]
    for name in candidates:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _format(fmt: bytes | None, args: int | None) -> str:
    libc = ctypes.CDLL(None)
    buf = ctypes.create_string_buffer(2048)
    try:
        libc.vsnprintf(buf, len(buf), fmt or b"", ctypes.c_void_p(args))
    except (OSError, AttributeError, ctypes.ArgumentError):
        return (fmt or b"").decode("utf-8", "replace")
    return buf.value.decode("utf-8", "replace")


def _forward(kind: str):
    def handler(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        try:
            where = (module or b"libtiff").decode("utf-8", "replace")
            log.debug("GDAL/libtiff %s: %s: %s", kind, where, _format(fmt, args))
        except Exception:  # noqa: BLE001 - a C callback must never raise
            pass

    return _HANDLER(handler)


def route_gdal_messages() -> bool:
    """Send libtiff's error and warning messages to the ``geop2p.gdal`` logger; True when installed.

    Idempotent and thread-safe; returns False (and changes nothing) where no
    libtiff can be found.
    """
    with _lock:
        if _installed:
            return True
        lib = _libtiff()
        if lib is None:
            return False
        try:
            for name, kind in (("TIFFSetErrorHandler", "error"), ("TIFFSetWarningHandler", "warning")):
                setter = getattr(lib, name)
                setter.restype = ctypes.c_void_p
                setter.argtypes = [_HANDLER]
                callback = _forward(kind)
                setter(callback)
                _installed.append(callback)
        except AttributeError:
            return False
        return True
