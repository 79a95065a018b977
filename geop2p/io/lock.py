"""A lock on an output folder, so that two geop2p processes never write one folder at once.

:class:`FolderLock` creates ``.geop2p-lock`` in the folder with an exclusive
create (``O_CREAT | O_EXCL``), holding the owner's pid, host, command and
start time as JSON.  A second process that finds the lock refuses with one
line naming the owner and the file.  A lock left behind by a process that died
(same host, pid no longer running) is stale: it is taken over with a log
message.  A lock from another host is never taken over, since its pid cannot be
checked from here; the message says how to remove it by hand.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with FolderLock(d, "export"):
    ...         held = (Path(d) / LOCK_NAME).is_file()
    ...     held, (Path(d) / LOCK_NAME).exists()
    (True, False)
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import sys
from pathlib import Path

from geop2p.errors import FolderLockedError, WriteError

__all__ = ["LOCK_NAME", "FolderLock", "pid_alive"]

log = logging.getLogger(__name__)

#: the lock file's name inside a locked folder
LOCK_NAME = ".geop2p-lock"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host (or exists but is not ours to signal).

    Example:
        >>> pid_alive(os.getpid())
        True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """An exclusive lock on ``folder`` for one geop2p process; use as a context manager.

    Args:
        folder: the folder to lock (must exist).
        what: how messages name the work (``"export"``, ``"training run"``).

    Raises:
        FolderLockedError: another running process holds the lock (named in the message).
        WriteError: the lock file cannot be created (read-only folder...).
    """

    def __init__(self, folder: str | os.PathLike, what: str = "command") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._held = False

    def _record(self) -> bytes:
        return json.dumps({
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:500],
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }).encode()

    def _owner(self) -> dict:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise WriteError(
                f"Cannot create the lock file '{self.path}' ({exc.strerror}); check that '{self.folder}' is writable."
            ) from None
        try:
            os.write(fd, self._record())
        finally:
            os.close(fd)
        return True

    def acquire(self) -> "FolderLock":
        """Take the lock (taking over a stale one); raise if another live process holds it."""
        for _ in range(3):
            if self._create():
                self._held = True
                return self
            owner = self._owner()
            pid, host = owner.get("pid"), owner.get("host")
            here = host == socket.gethostname()
            if isinstance(pid, int) and here and not pid_alive(pid):
                log.warning("Taking over a stale lock of '%s' left by pid %d, which is no longer running.",
                            self.folder, pid)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise WriteError(f"Cannot remove the stale lock '{self.path}' ({exc.strerror}).") from None
                continue
            if not owner:  # being written right now, or damaged: look once more
                continue
            since = owner.get("started", "?")
            who = f"pid {pid} on host {host}" if host else f"pid {pid}"
            hint = (
                "wait for it to finish" if here
                else f"wait for it to finish, or if it no longer runs on {host}, delete '{self.path}'"
            )
            raise FolderLockedError(
                f"'{self.folder}' is in use by another geop2p {self.what} ({who}, since {since}: "
                f"{owner.get('command', '?')}); {hint}."
            )
        raise FolderLockedError(
            f"Cannot lock '{self.folder}': '{self.path}' exists but cannot be read; if no geop2p command is "
            "running on this folder, delete that file."
        )

    def release(self) -> None:
        """Remove the lock file if this process holds it."""
        if self._held:
            self._held = False
            owner = self._owner()
            if owner.get("pid") in (os.getpid(), None):
                try:
                    self.path.unlink()
                except OSError:
                    pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
