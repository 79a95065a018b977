"""Run one geop2p command the way a user does (a subprocess in a working folder) and see what it left behind.

:func:`run_geop2p` snapshots every file under the working folder (size,
modification time and a hash) before and after the command, so a test can
assert the README's promise literally: exit code 1 (2 for a malformed command
line), one line on stderr, no traceback, and nothing created, deleted or
changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

__all__ = ["Outcome", "run_geop2p", "snapshot"]


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """``relative path -> (size, sha1)`` of every file and link under ``root`` (folders as ``(-1, "dir")``)."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in dirnames:
            p = here / name
            out[p.relative_to(root).as_posix() + "/"] = (-1, "link" if p.is_symlink() else "dir")
        for name in filenames:
            p = here / name
            if p.is_symlink():
                out[p.relative_to(root).as_posix()] = (-1, os.readlink(p))
                continue
            data = p.read_bytes()
            out[p.relative_to(root).as_posix()] = (len(data), hashlib.sha1(data).hexdigest())
    return out


@dataclass(frozen=True)
class Outcome:
    """What a command did: exit code, output, and the files it created, deleted or changed."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        """Everything, for assertion messages."""
        return (f"geop2p {' '.join(self.args)}\nrc={self.returncode}\nstderr:\n{self.stderr}\nstdout:\n{self.stdout}\n"
                f"created={self.created} deleted={self.deleted} changed={self.changed}")

    def assert_clean_refusal(self, returncode: int = 1, contains: str | None = None) -> None:
        """Exit ``returncode``, exactly one stderr line (no traceback), nothing created, deleted or changed."""
        text = self.describe()
        assert self.returncode == returncode, text
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout, text
        assert len(self.stderr_lines) == 1, text
        if contains is not None:
            assert contains.lower() in self.stderr.lower(), text
        assert not self.created and not self.deleted and not self.changed, text


def run_geop2p(args: Sequence[object], cwd: Path, timeout: float = 180, env: dict | None = None) -> Outcome:
    """Run ``python -m geop2p ARGS`` in ``cwd`` and compare the folder before and after."""
    before = snapshot(cwd)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    res = subprocess.run([sys.executable, "-m", "geop2p", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=full_env)
    after = snapshot(cwd)
    created = sorted(set(after) - set(before))
    deleted = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k] and before[k][0] != -1)
    return Outcome(tuple(map(str, args)), res.returncode, res.stdout, res.stderr, created, deleted, changed)
