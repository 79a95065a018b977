"""Band codes: which encoding each target gets, decoding, and the Raster Calculator expressions evaluated."""

from __future__ import annotations

import re

import numpy as np
import pytest

from geop2p.errors import InputError
from geop2p.formats import jsonsafe
from geop2p.onnx_export.encoding import SPLIT16_STEPS, BandCode, plan_band_codes, plane_names


def raster_calculator(expression: str, layers: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a QGIS Raster Calculator expression the way QgsRasterCalculator does it (float32, x / 0 → nodata).

    The tests under tests/qgis/ run the same expressions through QGIS's own QgsRasterCalculator.
    """
    code = re.sub(r'"([^"@]+)@1"', lambda m: f"L[{m.group(1)!r}]", expression)
    env = {"L": {k: np.asarray(v, np.float64) for k, v in layers.items()}}
    with np.errstate(divide="ignore", invalid="ignore"):
        out = eval(code, {"__builtins__": {}}, env)  # noqa: S307 - the expression is ours
    out = np.asarray(out, np.float64)
    return np.where(np.isfinite(out), out, np.nan)


def test_uint8_target_is_one_exact_byte_plane_with_the_nudge():
    codes, notes = plan_band_codes(["red", "nir"], [127.5, 100.0], [127.5, 100.0], "uint8", 0, "auto")
    assert [c.kind for c in codes] == ["byte", "byte"] and notes == []
    assert codes[0].planes == ("red",) and codes[0].nodata == 0 and codes[0].nudge == 1
    assert codes[0].max_error == 0
    expr = codes[0].expression()
    assert expr == '"red@1" / ("red@1" != 0)'
    got = raster_calculator(expr, {"red": np.array([0.0, 1.0, 255.0])})
    np.testing.assert_array_equal(got, [np.nan, 1.0, 255.0])


def test_uint8_without_nodata_says_invalid_pixels_keep_the_prediction():
    codes, notes = plan_band_codes(["grey"], [100.0], [50.0], "uint8", None, "auto")
    assert codes[0].nodata is None and codes[0].expression() == '"grey@1"'
    assert any("no nodata value" in n and "split16" in n for n in notes)


def test_float_target_gets_split16_over_the_tanh_range():
    codes, notes = plan_band_codes(["elev"], [2500.0], [250.0], "float32", -9999.0, "auto")
    (code,) = codes
    assert (code.kind, code.low, code.high, code.planes) == ("split16", 2250.0, 2750.0, ("elev_hi", "elev_lo"))
    assert code.step == pytest.approx(500.0 / SPLIT16_STEPS) and code.max_error == pytest.approx(code.step / 2)
    assert code.max_error / (code.high - code.low) < 1e-5  # far inside 1e-3 of the range
    values = np.array([0, 1, 32768, 65535], np.float64)  # code 0 = nodata, 1 = low, 65535 = high
    hi, lo = np.floor(values / 256), values % 256
    want = [np.nan, 2250.0, 2250.0 + 32767 * code.step, 2750.0]
    np.testing.assert_allclose(code.decode([hi, lo]), want)
    np.testing.assert_allclose(raster_calculator(code.expression(), {"elev_hi": hi, "elev_lo": lo}), want)
    assert notes == []


def test_integer_targets_that_fit_16_bits_are_exact():
    codes, _ = plan_band_codes(["count"], [500.0], [500.0], "uint16", 65535, "auto")
    (code,) = codes
    assert (code.kind, code.step, code.base, code.low, code.high) == ("split16", 1.0, 0.0, 0.0, 1000.0)
    assert code.max_error == 0 and code.expression().startswith('(-1 + "count_hi@1" * 256')
    hi, lo = np.array([0.0, 0.0, 3.0]), np.array([0.0, 1.0, 233.0])  # codes 0, 1, 1001
    np.testing.assert_array_equal(code.decode([hi, lo]), [np.nan, 0.0, 1000.0])
    np.testing.assert_array_equal(raster_calculator(code.expression(), {"count_hi": hi, "count_lo": lo}),
                                  [np.nan, 0.0, 1000.0])


def test_nudge_extends_an_integer_range_that_holds_the_nodata():
    codes, _ = plan_band_codes(["dn"], [50.0], [50.0], "int16", 100, "split16")
    assert (codes[0].low, codes[0].high, codes[0].nudge) == (0.0, 101.0, 101.0)


def test_wide_integer_band_is_not_exact_and_says_so():
    codes, notes = plan_band_codes(["big"], [0.0], [1e6], "int32", None, "auto")
    assert codes[0].step > 1 and any("more than the 65535 codes" in n for n in notes)


def test_byte_on_a_float_band_rounds_and_outside_0_255_is_refused():
    codes, notes = plan_band_codes(["refl"], [100.0], [90.0], "float32", None, "byte")
    assert codes[0].kind == "byte" and any("rounds it to whole units" in n for n in notes)
    with pytest.raises(InputError, match=r"cannot carry band 'dem': its output range -5\.\.305"):
        plan_band_codes(["dem"], [150.0], [155.0], "float32", None, "byte")
    with pytest.raises(InputError, match="leaves 0..255"):
        plan_band_codes(["s"], [0.0], [100.0], "int8", None, "byte")


def test_float_encoding_is_one_output():
    codes, _ = plan_band_codes(["a", "b"], [0.0, 0.0], [1.0, 1.0], "float32", None, "float")
    assert [c.kind for c in codes] == ["float", "float"]


def test_codes_round_trip_through_the_metadata_json():
    code = BandCode.split16("h", -1.5, 10.0, nodata=float("nan"))
    back = BandCode.from_dict(jsonsafe.loads(jsonsafe.dumps(code.to_dict())))
    assert back.planes == code.planes and back.step == code.step and np.isnan(back.nodata)


def test_plane_names_are_safe_and_unique():
    assert plane_names(["B04 (red)", "B04 (red)", "nir/2", "___"]) == ["B04_red", "B04_red_2", "nir_2", "band4"]
