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


def nearest_multiple(value: int, multiple: int) -> int:
    """The multiple of ``multiple`` nearest to ``value`` (at least ``multiple``; ties round up).

    Example:
        >>> nearest_multiple(250, 32), nearest_multiple(10, 32), nearest_multiple(200, 32)
        (256, 32, 192)
    """
    return max(multiple, int((int(value) + multiple // 2) // multiple) * multiple)


class SizeMultipleError(ChipSizeError):
    """A size (chip, window, tile) is not a multiple of what the network needs; the message names the fix.

    The message is built from the fields, so every size check in geop2p says the
    same thing the same way: what was received, the divisor and why, and the
    nearest size to use with the flag that sets it.

    Attributes:
        size: the size received, in pixels.
        divisor: what it must be a multiple of.
        flag: the option that sets it (``--size``, ``--window``, ``--tile-size``).
        what: how the message names the size (``Chip size``, ``Window size``...).
        reason: why the divisor (e.g. ``the U-Net halves it 5 times``), or None.
        hint: a further sentence of advice, or None.

    Example:
        >>> print(SizeMultipleError(250, 32, "--size", "Chip size", "the U-Net halves it 5 times"))
        Chip size 250 is not a multiple of 32 (the U-Net halves it 5 times); use --size 256.
        >>> print(SizeMultipleError(300, 64, "--window", "Window size"))
        Window size 300 is not a multiple of 64; use --window 320.
    """

    def __init__(
        self,
        size: int,
        divisor: int,
        flag: str,
        what: str = "Size",
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.size, self.divisor, self.flag, self.what = size, int(divisor), flag, what
        self.reason, self.hint = reason, hint
        whole = isinstance(size, int) and not isinstance(size, bool)
        self.suggestion = nearest_multiple(size, self.divisor) if whole else self.divisor
        why = f" ({reason})" if reason else ""
        message = f"{what} {size!r} is not a multiple of {self.divisor}{why}; use {flag} {self.suggestion}."
        if hint:
            message += f" {hint}"
        super().__init__(message)

    def __reduce__(self):  # keeps the fields through pickling (worker processes)
        return (type(self), (self.size, self.divisor, self.flag, self.what, self.reason, self.hint))


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


class FolderLockedError(Geop2pError, BlockingIOError):
    """Another geop2p process holds the lock of an output folder (or a stale lock could not be taken over)."""


class DiskFullError(WriteError):
    """The disk filled up (ENOSPC) while geop2p was writing an output."""


class ChipFolderError(Geop2pError, ValueError):
    """A chip folder is missing its manifest, or its contents are inconsistent."""
