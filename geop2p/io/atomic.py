"""Outputs that appear whole or not at all.

Write to a temporary name in the destination's folder; rename onto the final
name only when the block succeeds; remove the temporary file otherwise.

Example:
    >>> with atomic_path("out.tif", overwrite=True) as tmp:  # doctest: +SKIP
    ...     write_everything_to(tmp)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from geop2p.errors import OutputExistsError

__all__ = ["atomic_path", "check_output_free", "temporary_sibling", "output_mode"]


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
    """A unique hidden name in the same folder as ``path`` (same suffix, so drivers are guessed right)."""
    p = Path(path)
    return p.with_name(f".{p.stem}.partial-{uuid.uuid4().hex[:8]}{p.suffix}")


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
