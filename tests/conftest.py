"""Shared test set-up: tiny seeded GeoTIFFs and the slow/gpu markers.

Area-specific fixtures live in ``tests/fixtures/<area>.py``; every module there
is loaded as a pytest plugin, so its fixtures are visible to all tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)

UTM31 = CRS.from_epsg(32631)
WGS84 = CRS.from_epsg(4326)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    import importlib.util

    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    has_cuda = False
    if any("gpu" in item.keywords for item in items) and importlib.util.find_spec("torch"):
        import torch

        has_cuda = torch.cuda.is_available()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


def write_raster(
    path: str | Path,
    data: np.ndarray,
    transform: Affine = Affine(10, 0, 500000, 0, -10, 5000000),
    crs: CRS | None = UTM31,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    mask: np.ndarray | None = None,
    **profile,
) -> Path:
    """Write ``data`` (bands, h, w) or (h, w) as a GeoTIFF and return its path."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    path = Path(path)
    kwargs = dict(
        driver="GTiff",
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        dtype=data.dtype,
        transform=transform,
        nodata=nodata,
    )
    if crs is not None:
        kwargs["crs"] = crs
    kwargs.update(profile)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **kwargs) as dst:
            dst.write(data)
            if descriptions:
                for i, d in enumerate(descriptions, start=1):
                    dst.set_band_description(i, d)
            if mask is not None:
                dst.write_mask(mask.astype(np.uint8) * 255)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (same numbers on every run)."""
    return np.random.default_rng(1234)


@pytest.fixture
def make_raster(tmp_path):
    """Factory: ``make_raster(name, data, **write_raster_kwargs)`` writes into tmp_path."""

    def _make(name: str, data: np.ndarray, **kwargs) -> Path:
        return write_raster(tmp_path / name, data, **kwargs)

    return _make
