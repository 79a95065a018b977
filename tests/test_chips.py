"""Chip spec validation and chip windows: cover the region, never leave it, never drop an edge."""

from __future__ import annotations

import pytest
from rasterio.windows import Window

from geop2p.chips import ChipSpec, chip_id, chip_windows, nearest_multiple
from geop2p import errors
from geop2p.errors import ChipSizeError, InputError, SizeMultipleError


@pytest.mark.parametrize("size, suggestion", [(250, 256), (100, 96), (10, 32), (48, 64)])
def test_size_not_multiple_of_32_suggests_nearest(size, suggestion):
    with pytest.raises(ChipSizeError, match=f"--size {suggestion}"):
        ChipSpec(size)
    assert nearest_multiple(size) == suggestion


def test_size_error_is_the_one_size_multiple_message():
    with pytest.raises(SizeMultipleError) as info:
        ChipSpec(100)
    assert str(info.value) == "Chip size 100 is not a multiple of 32 (the U-Net halves it 5 times); use --size 96."
    assert (info.value.size, info.value.divisor, info.value.flag, info.value.suggestion) == (100, 32, "--size", 96)
    for size in (0, -64, 16):
        with pytest.raises(SizeMultipleError, match=f"Chip size {size} is not a multiple of 32.*use --size 32"):
            ChipSpec(size)


@pytest.mark.parametrize("value, multiple", [(250, 32), (10, 32), (48, 32), (100, 64), (0, 32), (-40, 32), (250.0, 32)])
def test_nearest_multiple_is_the_errors_rule(value, multiple):
    assert nearest_multiple(value, multiple) == errors.nearest_multiple(value, multiple)


@pytest.mark.parametrize("stride", [0, -32, 1.5])
def test_stride_must_be_positive_whole(stride):
    with pytest.raises(InputError, match="Stride"):
        ChipSpec(64, stride)


@pytest.mark.parametrize("min_valid", [0, -0.1, 1.01, "a"])
def test_min_valid_range(min_valid):
    with pytest.raises(InputError, match="min_valid"):
        ChipSpec(64, None, min_valid)


def test_stride_defaults_to_size():
    assert ChipSpec(64).stride == 64


def _covered(windows, height, width):
    import numpy as np

    cover = np.zeros((height, width), int)
    for w in windows:
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    return cover


@pytest.mark.parametrize("height, width, size, stride", [(64, 64, 64, 64), (100, 130, 32, 32), (97, 200, 64, 48), (64, 65, 64, 64)])
def test_windows_cover_everything_and_stay_inside(height, width, size, stride):
    ws = chip_windows(height, width, ChipSpec(size, stride))
    cover = _covered(ws, height, width)
    assert (cover > 0).all()
    for w in ws:
        assert w.width == size and w.height == size
        assert 0 <= w.row_off and w.row_off + size <= height
        assert 0 <= w.col_off and w.col_off + size <= width
    assert len({(w.row_off, w.col_off) for w in ws}) == len(ws)


def test_last_window_shifted_back():
    ws = chip_windows(100, 64, ChipSpec(32))
    assert sorted({w.row_off for w in ws}) == [0, 32, 64, 68]
    assert sorted({w.col_off for w in ws}) == [0, 32]


def test_row_major_order():
    ws = chip_windows(64, 96, ChipSpec(32))
    assert [(w.row_off, w.col_off) for w in ws] == [(0, 0), (0, 32), (0, 64), (32, 0), (32, 32), (32, 64)]


def test_region_is_respected():
    region = Window(10, 20, 70, 40)
    ws = chip_windows(100, 100, ChipSpec(32), region)
    assert sorted({w.col_off for w in ws}) == [10, 42, 48]
    assert sorted({w.row_off for w in ws}) == [20, 28]


def test_region_smaller_than_chip():
    with pytest.raises(ChipSizeError, match=r"64×64 pixels do not fit in the overlap, which is 40×70 pixels.*--size 32"):
        chip_windows(100, 100, ChipSpec(64), Window(0, 0, 70, 40), what="the overlap")
    with pytest.raises(ChipSizeError, match=r"which is 20×70 pixels.*use larger rasters"):
        chip_windows(100, 100, ChipSpec(32), Window(0, 0, 70, 20), what="the overlap")


def test_chip_id():
    assert chip_id(Window(256, 1024, 256, 256)) == "001024_000256"


def test_size_and_stride_are_bounded():
    """issue 8, case 9: --size/--stride 99999999999999999999 are one line, not a traceback later on."""
    from geop2p.chips import MAX_CHIP_SIZE

    with pytest.raises(ChipSizeError, match=f"larger than the largest chip geop2p cuts, {MAX_CHIP_SIZE} px"):
        ChipSpec(99999999999999999999)
    with pytest.raises(InputError, match="Stride must be a positive whole number of pixels \\(at most 2147483647\\)"):
        ChipSpec(64, 99999999999999999999)
    with pytest.raises(InputError, match="Stride"):
        ChipSpec(64, float("nan"))
    assert ChipSpec(MAX_CHIP_SIZE, 2**31 - 1).stride == 2**31 - 1
