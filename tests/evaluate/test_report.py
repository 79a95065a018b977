"""EvaluationReport: JSON through the one policy (non-finite numbers as strings) and the text table."""

from __future__ import annotations

import json
import math

import pytest

from geop2p.evaluate import EvaluationReport
from geop2p.formats import jsonsafe


def _metrics(mae, rmse, psnr, ssim):
    values = {"mae": mae, "rmse": rmse, "psnr": psnr, "ssim": ssim}
    return {"bands": {"dem": dict(values)}, **values}


def _report(baseline):
    return EvaluationReport("run/model.safetensors", "chips", "test", 3, ("dem",),
                            _metrics(1.0, 2.0, float("inf"), float("nan")), baseline, 100 if baseline else 0)


def test_json_writes_non_finite_numbers_as_strings():
    doc = _report(_metrics(2.0, 3.0, 20.0, 0.5)).to_dict()
    assert doc["model"]["psnr"] == "inf" and doc["model"]["ssim"] == "nan"
    assert doc["model"]["bands"]["dem"]["ssim"] == "nan"
    assert doc["baseline"] == {"kind": "linear least squares on the train split", "train_pixels": 100,
                               "metrics": _metrics(2.0, 3.0, 20.0, 0.5)}
    text = _report(None).to_json()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back["baseline"]["metrics"] is None and back["band_names"] == ["dem"]
    assert math.isnan(jsonsafe.number(back["model"]["ssim"]))


def test_table_marks_the_better_side():
    table = _report(_metrics(2.0, 1.0, 20.0, 0.5)).format_table()
    lines = {line.split()[1]: line.split() for line in table.splitlines()[2:]}
    assert table.splitlines()[0] == "model.safetensors on 3 test chip(s) of chips"
    assert lines["MAE"][-1] == "model" and lines["RMSE"][-1] == "baseline"
    assert lines["PSNR"][-1] == "model"  # inf beats 20
    assert lines["SSIM"] == ["dem", "SSIM", "nan", "0.5"]  # no verdict when a side is NaN


def test_the_json_report_path_is_checked_before_anything_is_scored(tmp_path):
    from geop2p.errors import OutputExistsError
    from geop2p.evaluate import check_report_path

    model, chips = tmp_path / "model.safetensors", tmp_path / "chips"
    model.write_bytes(b"x")
    chips.mkdir()
    (tmp_path / "thesis.docx").write_text("mine")
    inputs = (model, chips)
    check_report_path(tmp_path / "report.json", False, inputs)
    check_report_path(tmp_path / "new" / "report.json", False, inputs)  # a missing folder is made when writing
    for path, overwrite, message in [
        (chips, True, "is a folder; give a file name"),
        (model, True, "is an input of this command"),
        (chips / "geop2p-chips.json", True, "is inside '.*chips', an input"),
        (tmp_path / "thesis.docx", False, "already exists"),
        (tmp_path / "thesis.docx" / "report.json", False, "thesis.docx' is a file, not a folder"),
    ]:
        with pytest.raises(OutputExistsError, match=message):
            check_report_path(path, overwrite, inputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips", "model.safetensors", "thesis.docx"]


def test_write_json_is_whole_or_nothing(tmp_path):
    from geop2p.errors import OutputExistsError

    m = {"bands": {"dem": {"mae": 1.0, "rmse": 2.0, "psnr": 30.0, "ssim": 0.5}}, "mae": 1.0, "rmse": 2.0,
         "psnr": 30.0, "ssim": 0.5}
    report = EvaluationReport("model.safetensors", "chips", "test", 2, ("dem",), m, None, 0)
    path = report.write_json(tmp_path / "r.json")
    assert json.loads(path.read_text())["split"] == "test"
    with pytest.raises(OutputExistsError):
        report.write_json(path)
    report.write_json(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
