"""Remove only what geop2p wrote: the rule behind every ``--overwrite`` of an output folder.

An :class:`OwnedFolder` is a folder together with a test that says, for each
path in it, whether geop2p wrote it — a test built by the command from the
folder's *own records* (the chip manifest and index, a run's files), never from
a file name alone.  :meth:`OwnedFolder.check` refuses, naming the file, when
the folder holds anything else (the user's ``thesis.docx``, or the rasters the
command is about to read); :meth:`OwnedFolder.remove` then deletes exactly the
owned files and the sub-folders they leave empty.  The folder itself stays.

A folder reached through a symbolic link is used through it: its files are
checked and removed as for any folder, and the link itself is never removed.
Symbolic links *inside* the folder are never followed: a link geop2p did not
write is a foreign file like any other.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a.tif").write_text("x")
    ...     _ = (Path(d) / "notes.txt").write_text("mine")
    ...     folder = OwnedFolder(d, "chip folder", lambda p: p.suffix == ".tif")
    ...     [p.name for p in folder.foreign()]
    ['notes.txt']
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from geop2p.errors import OutputExistsError, WriteError

__all__ = ["OwnedFolder"]


class OwnedFolder:
    """A folder and the test of which of its paths geop2p wrote.

    Args:
        root: the folder.
        kind: how messages name it (``"chip folder"``, ``"run folder"``).
        is_owned: ``is_owned(relative_posix_path) -> bool`` for every file, link and sub-folder under
            ``root`` (sub-folders geop2p made, such as ``input``, must answer True too).
    """

    def __init__(self, root: str | os.PathLike, kind: str, is_owned: Callable[[PurePosixPath], bool]) -> None:
        self.root = Path(root)
        self.kind = kind
        self.is_owned = is_owned

    def _entries(self) -> Iterable[tuple[Path, PurePosixPath, bool]]:
        """``(path, relative path, is_folder)`` of everything under the folder, links not followed."""
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath)
            links = [d for d in dirnames if (here / d).is_symlink()]
            for name in sorted(filenames) + sorted(links):
                path = here / name
                yield path, PurePosixPath(path.relative_to(self.root).as_posix()), False
            dirnames[:] = sorted(d for d in dirnames if d not in links)
            for name in dirnames:
                path = here / name
                yield path, PurePosixPath(path.relative_to(self.root).as_posix()), True

    def foreign(self) -> list[Path]:
        """Every file, link or sub-folder under the folder that geop2p did not write, in a stable order."""
        return [path for path, rel, _ in self._entries() if not self.is_owned(rel)]

    def owned(self) -> list[Path]:
        """Every file (not folder) under the folder that geop2p wrote."""
        return [path for path, rel, is_dir in self._entries() if not is_dir and self.is_owned(rel)]

    def check(self, protected: Iterable[str | os.PathLike] = ()) -> None:
        """Refuse to touch the folder when it holds ``protected`` paths (the command's inputs) or foreign files.

        Raises:
            OutputExistsError: naming the first such file.
        """
        root = self.root.resolve()
        for p in protected:
            path = Path(p).resolve()
            if path == root or root in path.parents:
                raise OutputExistsError(
                    f"'{self.root}' holds '{p}', an input of this command; refusing to overwrite the {self.kind}. "
                    "Choose an output folder that does not hold the inputs."
                )
        foreign = self.foreign()
        if foreign:
            more = f" (and {len(foreign) - 1} other file(s))" if len(foreign) > 1 else ""
            raise OutputExistsError(
                f"'{self.root}' holds '{foreign[0].relative_to(self.root)}'{more}, which geop2p did not write; "
                f"refusing to delete it with --overwrite. Move it away, or choose another output folder."
            )

    def remove(self, protected: Iterable[str | os.PathLike] = (), keep: Iterable[str | os.PathLike] = ()) -> int:
        """:meth:`check`, then delete the owned files and the sub-folders left empty; return how many files.

        Args:
            protected: the command's inputs (refused when inside the folder).
            keep: owned files to leave in place (the lock the calling process holds).

        Raises:
            OutputExistsError: see :meth:`check`.
            WriteError: a file could not be deleted.
        """
        self.check(protected)
        return self.delete_owned(keep)

    def delete_owned(self, keep: Iterable[str | os.PathLike] = ()) -> int:
        """Delete the owned files (but ``keep``) and owned sub-folders left empty, leaving anything else in place.

        This is the clean-up of a run that failed in a folder it may share with the user's files; use
        :meth:`remove` to replace a folder's contents.

        Raises:
            WriteError: a file could not be deleted.
        """
        kept = {Path(k).absolute() for k in keep}
        files = [f for f in self.owned() if f.absolute() not in kept]
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise WriteError(f"Cannot delete '{path}' ({exc.strerror}) while replacing the {self.kind}.") from None
        folders = [path for path, rel, is_dir in self._entries() if is_dir and self.is_owned(rel)]
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        return len(files)
