"""Window planning, strips, blending weights and padding (no torch, no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from geop2p.errors import ChipSizeError, Geop2pError, InputError
from geop2p.tiling import (
    blend_weights,
    pad_to_window,
    plan_windows,
    suggest_multiple,
    window_starts,
)


@pytest.mark.parametrize(
    "size, window, overlap, expected",
    [
        (150, 64, 16, (0, 48, 86)),
        (128, 64, 0, (0, 64)),
        (129, 64, 0, (0, 64, 65)),
        (64, 64, 32, (0,)),
        (20, 64, 16, (0,)),
        (200, 64, 32, (0, 32, 64, 96, 128, 136)),
    ],
)
def test_window_starts(size, window, overlap, expected):
    starts = window_starts(size, window, overlap)
    assert starts == expected
    if size >= window:
        assert all(0 <= s and s + window <= size for s in starts), "every window lies inside the raster"
        assert starts[-1] + window == size, "the last window ends on the raster's edge"


@pytest.mark.parametrize("height, width", [(150, 97), (64, 64), (20, 40), (300, 31), (1, 1)])
@pytest.mark.parametrize("overlap", [0, 16, 32])
@pytest.mark.parametrize("strip_rows", [1, 2, 5])
def test_windows_cover_every_pixel_and_strips_emit_each_row_once(height, width, overlap, strip_rows):
    plan = plan_windows(height, width, 64, overlap, strip_rows)
    cover = np.zeros((plan.padded_height, plan.padded_width), int)
    emitted = np.zeros(height, int)
    for strip in plan.strips:
        for w in plan.windows(strip):
            assert w.row_off >= strip.read_row_off and w.row_off + w.height <= strip.read_row_end
            assert w.row_off + w.height <= plan.padded_height and w.col_off + w.width <= plan.padded_width
            cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        emitted[strip.emit_row_off : strip.emit_row_off + strip.emit_height] += 1
        # rows emitted after this strip are not touched by any later strip
        for later in plan.strips[strip.index + 1 :]:
            assert later.read_row_off >= strip.emit_row_off + strip.emit_height
    assert (cover >= 1).all()
    assert (emitted == 1).all()
    assert plan.n_windows == sum(len(plan.windows(s)) for s in plan.strips)


def test_padding_plan_for_small_scene():
    plan = plan_windows(20, 40, 64, 16)
    assert plan.needs_padding
    assert (plan.padded_height, plan.padded_width) == (64, 64)
    assert plan.n_windows == 1
    big = plan_windows(64, 65, 64, 16)
    assert not big.needs_padding


def test_pad_to_window_reflects_bottom_right():
    a = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    p = pad_to_window(a, 6, 6)
    assert p.shape == (1, 6, 6)
    np.testing.assert_array_equal(p[:, :3, :4], a)
    np.testing.assert_array_equal(p[0, 3, :4], a[0, 1])  # reflection without repeating the edge row
    np.testing.assert_array_equal(p[0, :3, 4], a[0, :, 2])
    one = pad_to_window(np.ones((2, 1, 1)), 4, 4)
    assert one.shape == (2, 4, 4) and (one == 1).all()
    assert pad_to_window(a, 2, 2) is a


def test_blend_weights_shape_flat_interior_and_ramps():
    w = blend_weights(64, 16)
    assert w.shape == (64, 64) and w.dtype == np.float32
    assert (w[16:48, 16:48] == 1).all(), "flat interior"
    assert w[0, 0] < 0.01 and w.min() >= 1e-3, "ramped corners, floored"
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert not w.flags.writeable


def test_blend_weights_partition_of_unity_at_nominal_overlap():
    window, overlap = 64, 16
    w = blend_weights(window, overlap)[window // 2]  # a 1-D profile through the middle
    step = window - overlap
    total = np.zeros(step * 3 + window)
    for k in range(4):
        total[k * step : k * step + window] += w
    # inside the covered span (away from the outer ramps), the ramps sum to exactly one
    np.testing.assert_allclose(total[overlap : -overlap], 1.0, atol=1e-6)


def test_blend_weights_raster_edges_keep_full_weight():
    w = blend_weights(64, 16, top=True, left=True)
    assert (w[0, :48] == 1).all() and (w[:48, 0] == 1).all()
    assert w[63, 63] < 0.01
    full = blend_weights(64, 16, top=True, bottom=True, left=True, right=True)
    assert (full == 1).all()


def test_blend_none_is_uniform_and_zero_overlap_is_flat():
    assert (blend_weights(64, 16, kind="none") == 1).all()
    assert (blend_weights(64, 0) == 1).all()


def test_plan_weights_follow_raster_edges():
    plan = plan_windows(150, 97, 64, 16)
    strips = plan.strips
    first = plan.windows(strips[0])[0]
    w = plan.weights(first)
    assert w[0, 0] == 1 and w[63, 0] < 0.01 and w[0, 63] < 0.01
    last = plan.windows(strips[-1])[-1]
    w = plan.weights(last)
    assert w[63, 63] == 1 and w[0, 0] < 0.01


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(height=10, width=10, window=0, overlap=0), ChipSizeError, "positive integer"),
        (dict(height=10, width=10, window=64, overlap=33), InputError, "from 0 to 32"),
        (dict(height=10, width=10, window=64, overlap=-1), InputError, "from 0 to 32"),
        (dict(height=0, width=10, window=64, overlap=0), InputError, "positive height"),
        (dict(height=10, width=10, window=64, overlap=0, strip_rows=0), InputError, "strip_rows"),
    ],
)
def test_plan_windows_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        plan_windows(**kwargs)
    assert isinstance(info.value, Geop2pError)


def test_blend_weights_rejects_bad_kind_and_floor():
    with pytest.raises(InputError, match="valid kinds: hann, none"):
        blend_weights(64, 16, kind="gauss")
    with pytest.raises(InputError, match="floor"):
        blend_weights(64, 16, floor=0)


def test_suggest_multiple():
    assert suggest_multiple(200) == 192
    assert suggest_multiple(208) == 224
    assert suggest_multiple(3) == 32
