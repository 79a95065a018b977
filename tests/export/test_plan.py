"""plan_export: every check and every chip decided up front, nothing written."""

from __future__ import annotations

import os

import pytest
from rasterio.windows import Window

from geop2p.errors import BandIndexError, ChipSizeError, NoOverlapError
from geop2p.export import ExportConfig, ExportPlan, plan_export
from geop2p.export.plan import _grow
from geop2p.split import window_gaps
from tests.fixtures.export import ORIGIN

SMALL = dict(size=32, block_size=64, buffer=0, min_valid=0.5)


def test_plan_export_writes_nothing(pair, tmp_path):
    before = set(os.listdir(tmp_path))
    plan = plan_export(str(pair.input), str(pair.target), ExportConfig(**SMALL))
    assert len(plan.tasks) == 16 and sum(plan.planned_counts().values()) == 16
    assert set(os.listdir(tmp_path)) == before


def test_plan_is_on_the_input_grid_in_row_major_order(pair):
    plan = plan_export(pair.input, pair.target, ExportConfig(**SMALL))
    assert isinstance(plan, ExportPlan)
    assert plan.grid == plan.input.grid and plan.grid.transform == ORIGIN
    assert [(int(w.row_off), int(w.col_off)) for w in plan.windows] == [(r, c) for r in (0, 32, 64, 96)
                                                                        for c in (0, 32, 64, 96)]
    assert [t[0] for t in plan.tasks] == list(range(16)) and plan.outside_aoi == 0
    assert plan.alignment.mode == "warped" and plan.alignment.resampling == "bilinear"


def test_buffer_drops_are_not_tasks(pair):
    plan = plan_export(pair.input, pair.target, ExportConfig(size=32, stride=16, block_size=64, buffer=16,
                                                             min_valid=0.5, split=(0.5, 0.5)))
    dropped = plan.splits.count(None)
    assert dropped > 0 and len(plan.tasks) == len(plan.windows) - dropped
    assert plan.planned_counts()["test"] == 0
    train = [w for w, s in zip(plan.windows, plan.splits) if s == "train"]
    for _, w, s in plan.tasks:
        if s == "val":
            assert all(window_gaps(w, t) >= 16 for t in train)


def test_aoi_windows_and_outside_count(pair, aoi_files):
    plan = plan_export(pair.input, pair.target, ExportConfig(aoi=str(aoi_files.inside), **SMALL))
    assert len(plan.windows) == 9 and plan.outside_aoi == 0
    assert {int(w.row_off) for w in plan.windows} == {0, 32, 34}


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"input_bands": (1, 5)}, BandIndexError, "Band 5 does not exist"),
        ({"size": 160}, ChipSizeError, "do not fit in the overlap of input and target"),
    ],
)
def test_plan_refuses_bad_input(pair, changes, error, message):
    with pytest.raises(error, match=message):
        plan_export(pair.input, pair.target, ExportConfig(**dict(SMALL, **changes)))


def test_plan_refuses_aoi_outside(pair, aoi_files):
    with pytest.raises(NoOverlapError, match="does not overlap the rasters"):
        plan_export(pair.input, pair.target, ExportConfig(aoi=str(aoi_files.outside), **SMALL))


@pytest.mark.parametrize(
    "window, region, expected",
    [
        (Window(40, 40, 10, 10), Window(0, 0, 100, 100), Window(29, 29, 32, 32)),  # centred
        (Window(0, 0, 10, 10), Window(0, 0, 100, 100), Window(0, 0, 32, 32)),  # kept inside the region
        (Window(90, 5, 10, 40), Window(0, 0, 100, 100), Window(68, 5, 32, 40)),  # long enough rows untouched
        (Window(0, 0, 10, 10), Window(0, 0, 20, 100), Window(0, 0, 20, 32)),  # never wider than the region
    ],
)
def test_grow(window, region, expected):
    assert _grow(window, 32, region) == expected
