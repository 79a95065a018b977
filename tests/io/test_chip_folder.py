"""Chip files: written whole, read back and compared before they get their final name (issue 8, case 2)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from geop2p.errors import WriteError
from geop2p.io.chip_folder import ChipProfile, _check_written, chip_env, chip_is_complete, read_chip, write_chip
from tests.fixtures.export import UTM31

T = Affine(10, 0, 500000, 0, -10, 5000000)
PROFILE = ChipProfile("float32", 2, -9999.0, ("a", "b"), UTM31, 32)


def _chip(rng) -> tuple[np.ndarray, np.ndarray]:
    data = rng.random((2, 32, 32), dtype=np.float32)
    valid = np.ones((32, 32), bool)
    valid[:4, :7] = False
    return data, valid


def test_write_chip_round_trip_leaves_only_the_chip(tmp_path, rng):
    data, valid = _chip(rng)
    expected = data.copy()
    expected[:, ~valid] = -9999.0
    with chip_env():
        write_chip(tmp_path / "000000_000000.tif", data, valid, T, PROFILE)
    assert [p.name for p in tmp_path.iterdir()] == ["000000_000000.tif"]
    back, back_valid, transform = read_chip(tmp_path / "000000_000000.tif")
    np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(back_valid, valid)
    assert transform == T and chip_is_complete(tmp_path / "000000_000000.tif", T, PROFILE, 32)


def _written(path, data, valid):
    with chip_env():
        with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=2, dtype="float32", transform=T,
                           crs=UTM31, nodata=-9999.0, tiled=True, blockxsize=16, blockysize=16) as dst:
            dst.write(data)
            dst.write_mask(np.where(valid, np.uint8(255), np.uint8(0)))
    return path


@pytest.mark.parametrize("damage", ["empty", "truncated", "other-pixels", "other-mask"])
def test_a_chip_that_does_not_read_back_as_written_is_a_write_error(damage, tmp_path, rng):
    """What a full disk leaves behind a close GDAL reports as fine: the check refuses to give it its name."""
    data, valid = _chip(rng)
    tmp = _written(tmp_path / ".000000_000000.partial-1-0a1b2c3d.tif", data, valid)
    if damage == "empty":
        tmp.write_bytes(b"")
    elif damage == "truncated":
        tmp.write_bytes(tmp.read_bytes()[:-600])
    elif damage == "other-pixels":
        data = data + 1
    else:
        valid = ~valid
    with pytest.raises(WriteError, match=r"'.*000000_000000.tif'.*--resume"):
        _check_written(tmp, tmp_path / "000000_000000.tif", data, valid)
    assert not (tmp_path / "000000_000000.tif").exists()


def test_a_whole_chip_passes_the_check(tmp_path, rng):
    data, valid = _chip(rng)
    tmp = _written(tmp_path / "chip.tif", data, valid)
    _check_written(tmp, tmp_path / "final.tif", data, valid)
