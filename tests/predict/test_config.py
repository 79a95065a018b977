"""PredictConfig: the schema of `geop2p predict` (ConfigSchema conversion, unknown keys, range checks)."""

from __future__ import annotations

import pytest

from geop2p.errors import ConfigError, InputError, SizeMultipleError
from geop2p.predict import PRECISIONS, TTA_CHOICES, PredictConfig, check_window


def test_values_are_converted_by_type():
    cfg = PredictConfig.from_dict({"window": "256", "overlap": "64", "tta": "4", "bands": "3,2,1", "cog": "yes",
                                   "channels-last": "off"})
    assert (cfg.window, cfg.overlap, cfg.tta, cfg.bands, cfg.cog, cfg.channels_last) == (256, 64, 4, (3, 2, 1), True, False)
    assert PredictConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown prediction option\(s\) windw; valid prediction options: window"):
        PredictConfig.from_dict({"windw": 256})


def test_yaml_round_trip(tmp_path):
    cfg = PredictConfig(window=128, tta=8, bands=(1, 2), precision="bf16")
    path = tmp_path / "predict.yaml"
    path.write_text(cfg.to_yaml())
    assert PredictConfig.from_yaml(path) == cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"overlap": -1}, "non-negative"),
        ({"batch_size": 0}, "Batch size"),
        ({"tta": 3}, "TTA must be one of 1, 2, 4, 8"),
        ({"precision": "fp16"}, "valid: auto, fp32, bf16"),
        ({"blend": "max"}, "valid: hann, none"),
        ({"strip_rows": 0}, "strip_rows"),
        ({"queue_depth": 0}, "queue_depth"),
        ({"compress": "jpeg2000"}, "jpeg2000"),
        ({"batch_size": "many"}, "batch_size: expected a whole number"),
    ],
)
def test_bad_values(kwargs, match):
    with pytest.raises(InputError, match=match):
        PredictConfig(**kwargs)


def test_window_rule_is_the_size_multiple_error():
    assert check_window(256) == 256 and check_window(256.0) == 256
    for bad, use in ((200, 192), (10, 32), (0, 32)):
        with pytest.raises(SizeMultipleError, match=f"use --window {use}") as info:
            check_window(bad)
        assert info.value.flag == "--window" and info.value.divisor == 32
    with pytest.raises(SizeMultipleError, match=r"Window size 200 is not a multiple of 32 \(which the network needs\)"):
        PredictConfig(window=200)


def test_choices():
    assert TTA_CHOICES == (1, 2, 4, 8) and PRECISIONS == ("auto", "fp32", "bf16")
