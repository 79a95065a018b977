"""A small working folder like a user's: valid rasters, a chip folder, a model, a few files of their own.

``workspace`` is a fresh copy of it for each test, so a test can run a command
in it and then assert that nothing was created, deleted or changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from tests.conftest import write_raster

UTM31 = CRS.from_epsg(32631)
ORIGIN = Affine(10, 0, 500000, 0, -10, 5000000)


def _build(root: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 250, (3, 96, 96), dtype=np.uint8)
    y = (x.astype(np.float32).mean(axis=0, keepdims=True) * 2.0 + 10.0).astype(np.float32)
    write_raster(root / "input.tif", x, ORIGIN, UTM31, nodata=255, descriptions=["red", "green", "blue"])
    write_raster(root / "target.tif", y, ORIGIN, UTM31, nodata=-9999.0, descriptions=["elevation"])
    (root / "thesis.docx").write_bytes(b"PK\x03\x04 the user's own work")
    from geop2p.export import ExportConfig, export_chips

    export_chips(root / "input.tif", root / "target.tif", root / "chips",
                 ExportConfig(size=32, block_size=32, buffer=0, split=(0.6, 0.2, 0.2), seed=1))
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle
    from tests.fixtures.model_core import bundle_meta

    generator = build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1})
    meta = bundle_meta(["red", "green", "blue"], ["elevation"], in_nodata=255, chip_size=32, overlap=8)
    meta["input"]["pixel_size"], meta["input"]["crs"] = [10.0, 10.0], "EPSG:32631"
    save_bundle(root / "model.safetensors", generator, meta)


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory) -> Path:
    """The working folder, built once per test session."""
    root = tmp_path_factory.mktemp("workspace-template")
    _build(root)
    return root


@pytest.fixture
def workspace(workspace_template, tmp_path) -> Path:
    """A fresh copy of the working folder for one test."""
    dst = tmp_path / "ws"
    shutil.copytree(workspace_template, dst, symlinks=True)
    return dst
