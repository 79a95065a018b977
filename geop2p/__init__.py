"""geop2p: georeferenced raster-to-raster translation with pix2pix.

The package is library first; the ``geop2p`` command is a thin wrapper.
Heavy parts (torch) are imported only by the modules that need them, so
``import geop2p`` and chip export stay light.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geop2p")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from geop2p.errors import Geop2pError  # noqa: E402
from geop2p.grid import GeoGrid  # noqa: E402

__all__ = ["GeoGrid", "Geop2pError", "__version__"]
