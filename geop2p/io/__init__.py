"""Raster and vector I/O: the only part of geop2p that opens files with rasterio.

Submodules, one job each:

* :mod:`geop2p.io.read` — open a raster with clear errors; read bands + validity mask.
* :mod:`geop2p.io.atomic` — outputs that appear whole or not at all.

Other submodules (sources for stacked/aligned reading, chip writing, strip
writing for prediction, vectors) live beside these.
"""

from geop2p.io.atomic import atomic_path, check_output_free
from geop2p.io.read import RasterInfo, open_raster, raster_info, read_raster

__all__ = ["RasterInfo", "open_raster", "raster_info", "read_raster", "atomic_path", "check_output_free"]
