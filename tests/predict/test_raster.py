"""A raster in, a GeoTIFF out: placed exactly like the scene (transform, GCPs, RPCs), and nothing left on failure."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import rasterio
import torch
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from geop2p.errors import RasterReadError
from geop2p.predict import Translator
from tests.fixtures.predict import identity_generator, identity_meta

ATOL = 1e-3
UTM31 = CRS.from_epsg(32631)


def _gcps():
    return [GroundControlPoint(0, 0, 500000.5, 5000000.25, z=12.0), GroundControlPoint(0, 70, 500700.0, 5000003.0, z=0.0),
            GroundControlPoint(90, 0, 499996.0, 4999100.0, z=0.0), GroundControlPoint(90, 70, 500702.5, 4999099.0, z=1.5),
            GroundControlPoint(45, 35, 500351.0, 4999551.0, z=0.0)]


def _key(gcps):
    return [(g.row, g.col, g.x, g.y, g.z, g.id, g.info) for g in gcps]


@pytest.mark.parametrize("cog", [False, True])
def test_a_scene_georeferenced_by_gcps_gives_a_prediction_with_exactly_its_gcps(make_translator, rng, tmp_path, cog):
    """3: GCPs (and their CRS) go over to the output; no transform, no CRS of its own, like the scene."""
    data = rng.uniform(-999, 999, (2, 90, 70)).astype(np.float32)
    src = tmp_path / "gcps.tif"
    with rasterio.open(src, "w", driver="GTiff", height=90, width=70, count=2, dtype="float32", gcps=_gcps(),
                       crs=UTM31) as dst:
        dst.write(data)
    out = make_translator().predict_raster(src, tmp_path / "pred.tif", cog=cog)
    with rasterio.open(src) as a, rasterio.open(out) as b:
        gcps_in, crs_in = a.gcps
        gcps_out, crs_out = b.gcps
        assert _key(gcps_out) == _key(gcps_in) and len(gcps_out) == 5
        assert crs_out == crs_in == UTM31
        assert b.crs is None and b.transform.is_identity and b.rpcs is None
        np.testing.assert_allclose(b.read(), data, atol=ATOL)


def test_a_scene_georeferenced_by_rpcs_gives_a_prediction_with_its_rpcs(make_translator, rng, tmp_path):
    from rasterio.rpc import RPC

    rpc = RPC(height_off=100, height_scale=50, lat_off=45.1, lat_scale=0.05, line_den_coeff=[1] + [0] * 19,
              line_num_coeff=[0, 0, -1] + [0] * 17, line_off=45, line_scale=45, long_off=3.2, long_scale=0.05,
              samp_den_coeff=[1] + [0] * 19, samp_num_coeff=[0, 1] + [0] * 18, samp_off=35, samp_scale=35)
    src = tmp_path / "rpcs.tif"
    with rasterio.open(src, "w", driver="GTiff", height=90, width=70, count=2, dtype="float32", rpcs=rpc) as dst:
        dst.write(rng.uniform(-9, 9, (2, 90, 70)).astype(np.float32))
    out = make_translator().predict_raster(src, tmp_path / "pred.tif")
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.rpcs.to_dict() == a.rpcs.to_dict()
        assert b.crs is None and b.gcps == ([], None)


def test_a_transform_scene_keeps_its_grid_and_gets_no_gcps(make_translator, scene, tmp_path):
    src = scene(50, 60)
    out = make_translator().predict_raster(src, tmp_path / "pred.tif")
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform) == (a.crs, a.transform) and b.gcps == ([], None)


# ---------------------------------------------------------------------------------------------- 2. partials
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_partial_left_by_a_killed_run_is_swept_before_writing_the_same_output(make_translator, scene, tmp_path):
    src = scene(40, 40)
    dead = _dead_pid()
    stale = tmp_path / f".pred.partial-{dead}-0123abcd.tif"
    stale.write_bytes(b"half a GeoTIFF")
    alive = tmp_path / f".pred.partial-{os.getpid()}-89abcdef.tif"  # a live process's partial stays
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.partial-{dead}-0123abcd.tif"  # another output's partial is not ours to remove
    other.write_bytes(b"another output")
    make_translator().predict_raster(src, tmp_path / "pred.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "pred.tif", "scene.tif"])


class _InterruptAfter(torch.nn.Module):
    """An identity generator that raises KeyboardInterrupt (as SIGTERM does in the CLI) on its n-th call."""

    def __init__(self, n: int):
        super().__init__()
        self.inner, self.n, self.calls = identity_generator(2), n, 0
        self.spec = self.inner.spec

    def forward(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.inner(x)


@pytest.mark.parametrize("cog", [False, True])
def test_an_interrupt_mid_scene_stops_both_threads_and_leaves_nothing(scene, tmp_path, cog):
    src = scene(400, 300)
    t = Translator(_InterruptAfter(5), identity_meta(2, chip_size=64), device="cpu", batch_size=2)
    out_dir = tmp_path / "preds" / "new"
    with pytest.raises(KeyboardInterrupt):
        t.predict_raster(src, out_dir / "pred.tif", cog=cog)
    assert not (tmp_path / "preds").exists(), "no partial, and the folders made for the output are gone"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]
    assert not [th for th in threading.enumerate() if th.name.startswith("geop2p-")], "reader and writer stopped"


def test_a_read_failure_mid_scene_leaves_nothing_but_existing_folders(make_translator, scene, tmp_path, monkeypatch):
    src = scene(300, 100)
    (tmp_path / "keep").mkdir()
    t = make_translator(batch_size=1)
    import geop2p.predict.raster as raster

    calls = {"n": 0}
    real = raster.valid_mask

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RasterReadError("Cannot read rows 96..160 of 'scene.tif' (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(raster, "valid_mask", failing)
    with pytest.raises(RasterReadError, match="simulated"):
        t.predict_raster(src, tmp_path / "keep" / "pred.tif")
    assert list((tmp_path / "keep").iterdir()) == [], "the existing folder stays, empty"
