"""Spatial block split: fractions, determinism, and the buffer guarantee."""

from __future__ import annotations

import warnings

import pytest
from rasterio.windows import Window

from geop2p.chips import ChipSpec, chip_windows
from geop2p.errors import InputError
from geop2p.split import SplitSpec, assign_splits, window_gaps


def _windows(n=640, size=32, stride=32):
    return chip_windows(n, n, ChipSpec(size, stride))


@pytest.mark.parametrize("fractions", [(0.5, 0.2, 0.2), (0.9, 0.2, 0.1), (1.2, -0.1, -0.1), (0.5,), (0, 0.5, 0.5)])
def test_fractions_must_add_up(fractions):
    with pytest.raises(InputError, match="--split"):
        SplitSpec(fractions=fractions)


def test_bad_mode_lists_valid():
    with pytest.raises(InputError, match="blocks, random"):
        SplitSpec(mode="stripes")


def test_two_fractions_mean_no_test():
    assert SplitSpec(fractions=(0.75, 0.25)).fractions == (0.75, 0.25, 0.0)


@pytest.mark.parametrize("stride, buffer", [(32, 0), (32, 40), (16, 32)])
def test_no_val_test_pixel_within_buffer_of_train(stride, buffer):
    ws = _windows(stride=stride)
    labels = assign_splits(ws, SplitSpec(block_size=128, buffer=buffer, seed=3))
    train = [w for w, s in zip(ws, labels) if s == "train"]
    held = [w for w, s in zip(ws, labels) if s in ("val", "test")]
    assert train and held
    for h in held:
        for t in train:
            assert window_gaps(h, t) >= buffer


def test_fractions_roughly_respected_and_deterministic():
    ws = _windows()
    spec = SplitSpec(fractions=(0.6, 0.2, 0.2), block_size=64, buffer=0, seed=7)
    a = assign_splits(ws, spec)
    assert a == assign_splits(ws, spec)
    n = len(ws)
    assert abs(a.count("train") / n - 0.6) < 0.05
    assert abs(a.count("val") / n - 0.2) < 0.05
    assert a != assign_splits(ws, SplitSpec(fractions=(0.6, 0.2, 0.2), block_size=64, buffer=0, seed=8))


def test_chips_of_one_block_share_a_split():
    ws = _windows()
    labels = assign_splits(ws, SplitSpec(block_size=128, buffer=0, seed=1))
    by_block = {}
    for w, s in zip(ws, labels):
        key = ((w.row_off + 16) // 128, (w.col_off + 16) // 128)
        by_block.setdefault(key, set()).add(s)
    assert all(len(v) == 1 for v in by_block.values())


def test_random_warns_and_ignores_buffer():
    ws = _windows(n=320)
    with pytest.warns(UserWarning, match="Random split"):
        labels = assign_splits(ws, SplitSpec(mode="random", buffer=64, seed=0))
    assert None not in labels
    assert abs(labels.count("train") - 0.8 * len(ws)) <= 1


def test_blocks_mode_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assign_splits(_windows(n=128), SplitSpec())


def test_window_gaps():
    assert window_gaps(Window(0, 0, 32, 32), Window(32, 0, 32, 32)) == 0
    assert window_gaps(Window(0, 0, 32, 32), Window(16, 16, 32, 32)) == -16
    assert window_gaps(Window(0, 0, 32, 32), Window(0, 50, 32, 32)) == 18


@pytest.mark.parametrize("changes, message", [
    ({"seed": -1}, "seed must be a whole number between 0 and 4294967295, got -1"),
    ({"seed": 2**32}, "seed must be a whole number between 0"),
    ({"block_size": 99999999999999999999}, "block size must be at most 2147483647"),
    ({"buffer": 99999999999999999999}, "buffer must be at most 2147483647"),
    ({"block_size": float("inf")}, "block_size must be a whole number"),
    ({"seed": "7"}, "seed must be a whole number"),
])
def test_seed_block_size_and_buffer_are_bounded(changes, message):
    """issue 8, case 9: these ended in numpy tracebacks (negative seed, int64 overflow)."""
    with pytest.raises(InputError, match=message):
        SplitSpec(**changes)
    assert SplitSpec(seed=2**32 - 1, block_size=2**31 - 1, buffer=2**31 - 1).seed == 2**32 - 1
