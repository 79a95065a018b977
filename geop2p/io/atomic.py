"""Outputs that appear whole or not at all.

Write to a temporary name in the destination's folder; rename onto the final
name only when the block succeeds; remove the temporary file otherwise.

Example:
    >>> with atomic_path("out.tif", overwrite=True) as tmp:  # doctest: +SKIP
    ...     write_everything_to(tmp)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from geop2p.errors import DiskFullError, Geop2pError, OutputExistsError, WriteError

__all__ = [
    "atomic_path",
    "check_output_free",
    "disk_is_full",
    "output_mode",
    "sweep_partials",
    "temporary_sibling",
    "write_error",
    "writing",
]

#: free space below which a failed write is blamed on a full disk (GDAL does not always say ENOSPC)
_FULL_BYTES = 1024 * 1024


def disk_is_full(exc: BaseException, path: str | os.PathLike) -> bool:
    """True when ``exc`` (raised while writing ``path``) comes from a full disk.

    Python says so with ``ENOSPC``; GDAL and SQLite sometimes only say "write
    failed" (no error code), so the free space of the file system holding
    ``path`` decides then. An error with another code is not a full disk.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, OSError) and exc.errno not in (None, 0, errno.EIO):
        return False
    text = str(exc).lower()
    if "no space left" in text or "disk is full" in text or "disk full" in text:
        return True
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < _FULL_BYTES


def write_error(path: str | os.PathLike, exc: BaseException, resume: str | None = None) -> WriteError:
    """The one-line error for a failed write of ``path``: :class:`DiskFullError` for a full disk, else WriteError.

    Args:
        path: what was being written.
        exc: the low-level error.
        resume: how to finish afterwards, e.g. ``"run again with --resume"`` (default: run the command again).

    Example:
        >>> print(write_error("/out/a.tif", OSError(errno.ENOSPC, "No space left on device")))
        No space left on device while writing '/out/a.tif'; free space and run the command again.
        >>> print(write_error("/ro/a.tif", PermissionError(errno.EACCES, "Permission denied")))
        Cannot write '/ro/a.tif': Permission denied; choose a folder you can write to.
    """
    again = resume or "run the command again"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WriteError(f"Cannot write '{path}': {exc.strerror}; choose a folder you can write to.")
    if disk_is_full(exc, path):
        return DiskFullError(f"No space left on device while writing '{path}'; free space and {again}.")
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return WriteError(f"Cannot write '{path}' ({detail}); check the disk and the folder's permissions, then {again}.")


@contextlib.contextmanager
def writing(path: str | os.PathLike, resume: str | None = None) -> Iterator[None]:
    """Turn any low-level failure while writing ``path`` into one clear :class:`WriteError` (see :func:`write_error`).

    geop2p's own errors pass through unchanged.

    Example:
        >>> with writing("/nonexistent/folder/out.tif"):  # doctest: +ELLIPSIS
        ...     open("/nonexistent/folder/out.tif", "w")
        Traceback (most recent call last):
        ...
        geop2p.errors.WriteError: Cannot write '/nonexistent/folder/out.tif' (...
    """
    try:
        yield
    except Geop2pError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, RasterioIOError, pyogrio's and safetensors' errors alike
        library = type(exc).__module__.split(".")[0] in ("rasterio", "pyogrio", "safetensors")
        torch_write = isinstance(exc, RuntimeError) and "writ" in str(exc).lower()  # torch.save: "file write failed"
        if isinstance(exc, OSError) or library or torch_write:
            raise write_error(path, exc, resume) from exc
        raise


def output_mode() -> int:
    """Permission bits of a new output file: ``0o666`` less the process's umask (what ``open()`` would give).

    Some writers (safetensors, for one) create their files ``0o600``; outputs
    renamed into place by :func:`atomic_path` get these bits instead, like
    every other file geop2p writes.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_output_free(path: str | os.PathLike, overwrite: bool, flag: str = "--overwrite") -> None:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``overwrite`` is False."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(f"Output '{p}' already exists; choose another name or pass {flag} to replace it.")


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A unique hidden name beside ``path``: ``.{stem}.partial-{pid}-{random}{suffix}`` (same suffix, so GDAL
    guesses the driver right; the pid lets a later run tell a stale partial from a live one).

    Example:
        >>> name = temporary_sibling("out/scene_pred.tif").name
        >>> name.startswith(f".scene_pred.partial-{os.getpid()}-") and name.endswith(".tif")
        True
    """
    p = Path(path)
    return p.with_name(f".{p.stem}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}{p.suffix}")


def sweep_partials(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a *dead* process left for ``path`` (killed with ``kill -9``, power cut...).

    Only names :func:`temporary_sibling` makes for this very ``path`` are
    considered, with their sidecars (GDAL's ``.aux.xml``/``.msk``, SQLite's
    ``-wal``/``-shm``); those of a process that is still running are kept, and so
    are names without a pid (geop2p 0.1's, whose owner cannot be known).

    Returns:
        The files removed.
    """
    from geop2p.io.lock import pid_alive

    p = Path(path)
    removed = []
    prefix = f".{p.stem}.partial-"
    if not p.parent.is_dir():
        return removed
    for candidate in p.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        try:
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
            removed.append(candidate)
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block ends cleanly.

    Works for files and folders. On any exception the temporary is removed and
    ``path`` is left as it was.
    """
    final = Path(path)
    check_output_free(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    try:
        yield tmp
        if final.exists() and final.is_dir() and not tmp.is_dir():
            raise OutputExistsError(f"Output '{final}' is a folder; expected a file name.")
        if final.is_dir() and tmp.is_dir():
            shutil.rmtree(final)
        if tmp.is_file():
            os.chmod(tmp, output_mode())
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # a clean-up failure must not hide the real error
                tmp.unlink()
        # sidecars written beside the temporary file: GDAL's .aux.xml / .msk, SQLite's -wal / -shm
        for side in tmp.parent.glob(tmp.name + "*"):
            with contextlib.suppress(OSError):
                side.unlink()
        raise
