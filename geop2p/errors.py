"""The error hierarchy of geop2p.

Every error geop2p raises on purpose derives from :class:`Geop2pError` and also
from the builtin exception it resembles, so ``except ValueError`` keeps working
for callers that do not know geop2p.  Messages say what was received, what was
expected and how to fix it; the CLI prints them as one line.
"""

from __future__ import annotations


class Geop2pError(Exception):
    """Root of every error geop2p raises on purpose."""


class InputError(Geop2pError, ValueError):
    """An argument or option has a value geop2p cannot use."""


class ConfigError(InputError):
    """A configuration file or value is invalid (unknown key, bad choice...)."""


class RasterReadError(Geop2pError, OSError):
    """A raster is missing, unreadable, corrupt or not a raster at all."""


class VectorReadError(Geop2pError, OSError):
    """A vector file (AOI) is missing or unreadable."""


class BandIndexError(Geop2pError, IndexError):
    """A requested band index does not exist in the raster."""


class GridMismatchError(Geop2pError, ValueError):
    """Two grids (CRS, transform, shape) disagree where they must agree."""


class NoOverlapError(GridMismatchError):
    """Two rasters, or a raster and an AOI, do not overlap."""


class ChipSizeError(InputError):
    """A chip or window size is unusable (not a multiple of 32, too large...)."""


class WriteError(Geop2pError, OSError):
    """An output raster could not be written (disk full, permissions, GDAL failure)."""


class OutputExistsError(Geop2pError, FileExistsError):
    """An output already exists and ``overwrite`` was not requested."""


class BundleError(Geop2pError, ValueError):
    """A file is not a valid geop2p model bundle (or is a pickle, which is refused)."""


class BundleNotFoundError(BundleError, FileNotFoundError):
    """The model file does not exist."""


class MissingDependencyError(Geop2pError, ImportError):
    """An optional dependency (e.g. onnx / onnxruntime for ONNX export) is not installed."""


class ChipFolderError(Geop2pError, ValueError):
    """A chip folder is missing its manifest, or its contents are inconsistent."""
