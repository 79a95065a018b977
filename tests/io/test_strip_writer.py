"""PredictionWriter: grid, dtype, nodata/mask, tiling/compression, COG, atomicity."""

from __future__ import annotations

import contextlib
import os
import subprocess

import numpy as np
import pytest
import rasterio
from affine import Affine

from geop2p.errors import DiskFullError, InputError, OutputExistsError
from geop2p.grid import GeoGrid
from geop2p.io.strip_writer import PredictionWriter, WriteError
from tests.conftest import UTM31

GRID = GeoGrid(150, 97, Affine(10, 0, 500000, 0, -10, 5000000), UTM31)


def _write_in_strips(writer, data, valid, heights):
    row = 0
    for h in heights:
        writer.write_rows(row, data[:, row : row + h], None if valid is None else valid[:, row : row + h][0])
        row += h


@pytest.mark.parametrize("heights", [[150], [48, 38, 64], [1] * 150, [100, 50]])
def test_rows_written_in_strips_round_trip_exactly(tmp_path, rng, heights):
    data = rng.normal(size=(2, 150, 97)).astype(np.float32)
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, GRID, count=2, dtype="float32", nodata=-9999.0, descriptions=["a", "b"], blocksize=32) as w:
        _write_in_strips(w, data, None, heights)
    with rasterio.open(out) as src:
        assert src.crs == GRID.crs and src.transform == GRID.transform
        assert (src.height, src.width, src.count) == (150, 97, 2)
        assert src.dtypes == ("float32", "float32")
        assert src.nodata == -9999.0
        assert src.descriptions == ("a", "b")
        assert src.profile["tiled"] and src.block_shapes[0] == (32, 32)
        assert src.compression.name.lower() == "zstd"
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
        np.testing.assert_array_equal(src.read(), data)
    assert [p.name for p in tmp_path.iterdir()] == ["pred.tif"]


def test_nodata_written_at_invalid_pixels(tmp_path):
    data = np.full((1, 150, 97), 7, np.uint8)
    valid = np.ones((1, 150, 97), bool)
    valid[0, 10:20, 30:40] = False
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, GRID, count=1, dtype="uint8", nodata=0) as w:
        _write_in_strips(w, data, valid, [70, 80])
    with rasterio.open(out) as src:
        arr = src.read(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        np.testing.assert_array_equal(arr == 0, ~valid[0])
        np.testing.assert_array_equal(src.dataset_mask() > 0, valid[0])


def test_internal_mask_when_no_nodata(tmp_path):
    data = np.full((1, 150, 97), 3.5, np.float32)
    valid = np.ones((1, 150, 97), bool)
    valid[0, 100:, :5] = False
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, GRID, count=1, dtype="float32", nodata=None, write_mask=True) as w:
        _write_in_strips(w, data, valid, [50, 50, 50])
    assert not (tmp_path / "pred.tif.msk").exists(), "mask is internal"
    with rasterio.open(out) as src:
        assert src.nodata is None
        assert src.mask_flag_enums[0] == [rasterio.enums.MaskFlags.per_dataset]
        np.testing.assert_array_equal(src.dataset_mask() > 0, valid[0])
        np.testing.assert_array_equal(src.read(1), data[0])


def test_cog_has_overviews_and_tiles(tmp_path, rng):
    grid = GeoGrid(600, 700, Affine(10, 0, 500000, 0, -10, 5000000), UTM31)
    data = rng.integers(0, 255, size=(3, 600, 700)).astype(np.uint8)
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, grid, count=3, dtype="uint8", nodata=None, cog=True, blocksize=256) as w:
        w.write_rows(0, data[:, :300])
        w.write_rows(300, data[:, 300:])
    with rasterio.open(out) as src:
        assert src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1), "a COG carries overviews"
        assert src.block_shapes[0] == (256, 256)
        assert src.crs == grid.crs and src.transform == grid.transform
        np.testing.assert_array_equal(src.read(), data)
    assert [p.name for p in tmp_path.iterdir()] == ["pred.tif"], "no intermediate file left behind"


def test_existing_output_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "pred.tif"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        PredictionWriter(out, GRID, count=1, dtype="float32")
    assert out.read_bytes() == b"keep me"
    with PredictionWriter(out, GRID, count=1, dtype="float32", overwrite=True) as w:
        w.write_rows(0, np.zeros((1, 150, 97), np.float32))
    with rasterio.open(out) as src:
        assert src.count == 1


def test_interrupted_write_leaves_nothing(tmp_path):
    out = tmp_path / "pred.tif"
    with pytest.raises(KeyboardInterrupt):
        with PredictionWriter(out, GRID, count=1, dtype="float32") as w:
            w.write_rows(0, np.zeros((1, 100, 97), np.float32))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_incomplete_output_is_discarded_on_close(tmp_path):
    out = tmp_path / "pred.tif"
    with pytest.raises(WriteError, match="Only 100 of 150 rows"):
        with PredictionWriter(out, GRID, count=1, dtype="float32", cog=True) as w:
            w.write_rows(0, np.zeros((1, 100, 97), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_rows_out_of_order_or_wrong_shape_are_programming_errors(tmp_path):
    with PredictionWriter(tmp_path / "p.tif", GRID, count=1, dtype="float32") as w:
        with pytest.raises(RuntimeError, match="in order"):
            w.write_rows(5, np.zeros((1, 5, 97), np.float32))
        with pytest.raises(ValueError, match="Expected rows of shape"):
            w.write_rows(0, np.zeros((2, 5, 97), np.float32))
        w.write_rows(0, np.zeros((1, 150, 97), np.float32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(compress="jpeg2000"), "valid: zstd, deflate, lzw, none"),
        (dict(count=0), "at least one band"),
        (dict(descriptions=["a", "b"]), "2 band descriptions for 1 band"),
        (dict(blocksize=100), "multiple of 16"),
    ],
)
def test_bad_writer_options(tmp_path, kwargs, match):
    opts = dict(count=1, dtype="float32")
    opts.update(kwargs)
    with pytest.raises(InputError, match=match):
        PredictionWriter(tmp_path / "p.tif", GRID, **opts)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- georeferencing
def _gcps():
    from rasterio.control import GroundControlPoint

    return [GroundControlPoint(0, 0, 500000.5, 5000000.25, z=12.0, id="a", info="corner"),
            GroundControlPoint(0, 97, 500970.0, 5000001.0, z=0.0), GroundControlPoint(150, 0, 499999.0, 4998500.0, z=0.0),
            GroundControlPoint(150, 97, 500971.0, 4998499.5, z=-3.5)]


def _gcp_tuple(g):
    return (g.row, g.col, g.x, g.y, g.z)  # GeoTIFF tie points carry no id or info


@pytest.mark.parametrize("cog", [False, True])
def test_gcps_are_written_exactly_and_no_transform(tmp_path, cog):
    grid = GeoGrid(150, 97, Affine.identity(), None)
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, grid, count=1, dtype="float32", gcps=(_gcps(), UTM31), cog=cog) as w:
        w.write_rows(0, np.ones((1, 150, 97), np.float32))
    with rasterio.open(out) as src:
        gcps, crs = src.gcps
        assert [_gcp_tuple(g) for g in gcps] == [_gcp_tuple(g) for g in _gcps()]
        assert crs == UTM31 and src.crs is None and src.transform.is_identity


def test_rpcs_are_written(tmp_path):
    from rasterio.rpc import RPC

    rpc = RPC(height_off=100, height_scale=50, lat_off=45.1, lat_scale=0.05, line_den_coeff=[1] + [0] * 19,
              line_num_coeff=[0, 0, -1] + [0] * 17, line_off=75, line_scale=75, long_off=3.2, long_scale=0.05,
              samp_den_coeff=[1] + [0] * 19, samp_num_coeff=[0, 1] + [0] * 18, samp_off=48, samp_scale=48,
              err_bias=0.5, err_rand=0.25)
    out = tmp_path / "pred.tif"
    with PredictionWriter(out, GeoGrid(150, 97, Affine.identity(), None), count=1, dtype="uint8", rpcs=rpc) as w:
        w.write_rows(0, np.ones((1, 150, 97), np.uint8))
    with rasterio.open(out) as src:
        assert src.rpcs.to_dict() == rpc.to_dict()


# ---------------------------------------------------------------------------------------------- failed writes
@contextlib.contextmanager
def _tmpfs(path, options):
    if os.geteuid() != 0:
        pytest.skip("a full-disk or read-only test mounts a small tmpfs, which needs root")
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip(f"cannot mount a tmpfs at {path}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.parametrize("rows, cog", [(150, False), (150, True), (600, False)])
def test_full_disk_is_one_disk_full_error_and_nothing_is_renamed(tmp_path, rng, capfd, rows, cog):
    """GDAL writes the last tiles at close and does not say when that fails: the block table tells."""
    grid = GeoGrid(rows, 97, GRID.transform, UTM31)
    data = rng.normal(size=(1, rows, 97)).astype(np.float32)  # incompressible
    with _tmpfs(tmp_path / "disk", "size=24k") as disk:
        with pytest.raises(DiskFullError, match=r"No space left on device while writing '.*pred.tif'; free space"):
            with PredictionWriter(disk / "pred.tif", grid, count=1, dtype="float32", cog=cog, blocksize=256) as w:
                w.write_rows(0, data)
        assert list(disk.iterdir()) == []
    assert "_tiffWriteProc" not in capfd.readouterr().err, "libtiff's messages go to logging"


def test_read_only_folder_is_one_line(tmp_path):
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        with pytest.raises(WriteError, match=r"Cannot write '.*pred.tif': Read-only file system; choose a folder"):
            with PredictionWriter(ro / "pred.tif", GRID, count=1, dtype="float32") as w:
                w.write_rows(0, np.zeros((1, 150, 97), np.float32))


def test_a_file_in_the_way_of_the_folder_is_one_line(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(WriteError, match=r"Cannot write '.*f/pred.tif'"):
        PredictionWriter(tmp_path / "f" / "pred.tif", GRID, count=1, dtype="float32").open()
    assert (tmp_path / "f").read_text() == "mine"
