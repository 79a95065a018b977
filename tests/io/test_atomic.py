"""geop2p.io.atomic: outputs appear whole or not at all."""

from __future__ import annotations

import pytest

from geop2p.errors import OutputExistsError
from geop2p.io import atomic_path


def test_renamed_only_on_success(tmp_path):
    final = tmp_path / "out.txt"
    with atomic_path(final) as tmp:
        tmp.write_text("done")
        assert not final.exists()
        assert tmp.parent == final.parent and tmp.name.startswith(".")
    assert final.read_text() == "done"
    assert list(tmp_path.iterdir()) == [final]


def test_failure_leaves_nothing(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        with atomic_path(final):
            pass
    with atomic_path(final, overwrite=True) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new"


def test_folders_too(tmp_path):
    final = tmp_path / "dir"
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("x")
    assert (final / "a").read_text() == "x"
