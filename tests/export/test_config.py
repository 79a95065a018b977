"""ExportConfig: conversion of YAML/flag values, unknown keys, range checks, the export-config.yaml round trip."""

from __future__ import annotations

import re

import pytest

from geop2p.errors import ConfigError, InputError
from geop2p.export import AOI_MODES, ExportConfig


def test_config_rejects_unknown_key():
    with pytest.raises(InputError, match="Unknown export option.*valid export options: input_bands"):
        ExportConfig.from_dict({"sise": 32})


@pytest.mark.parametrize(
    "data, key",
    [
        ({"split": 0.8}, "split"),
        ({"split": None}, "split"),
        ({"split": "0.8,abc"}, "split"),
        ({"seed": None}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"size": "abc"}, "size"),
        ({"size": None}, "size"),
        ({"stride": "wide"}, "stride"),
        ({"min_valid": "most"}, "min_valid"),
        ({"block_size": [64]}, "block_size"),
        ({"workers": True}, "workers"),
        ({"input_bands": "1,x"}, "input_bands"),
        ({"target_bands": 2.5}, "target_bands"),
        ({"compress": None}, "compress"),
    ],
)
def test_bad_values_are_one_config_error_naming_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        ExportConfig.from_dict(data)
    assert type(info.value) is ConfigError
    message = str(info.value)
    assert re.match(rf"{key}(\[\d+\])?: ", message) and len(message.splitlines()) == 1
    assert re.search(r"(expected .+, got .+|a value is required .+, got null)\.$", message)


def test_values_are_converted_to_their_types():
    cfg = ExportConfig.from_dict({"input_bands": "1,2, 3", "target_bands": [4], "size": "64", "stride": 32.0,
                                  "min_valid": "0.5", "split": "0.7,0.3", "seed": "7", "workers": "2",
                                  "buffer": "0", "block-size": 128})
    assert cfg.input_bands == (1, 2, 3) and cfg.target_bands == (4,)
    assert (cfg.size, cfg.stride, cfg.min_valid) == (64, 32, 0.5)
    assert cfg.split == (0.7, 0.3, 0.0) and cfg.seed == 7 and cfg.workers == 2
    assert (cfg.buffer, cfg.block_size) == (0, 128)
    assert cfg.chip_spec.to_dict() == {"size": 64, "stride": 32, "min_valid": 0.5}
    assert cfg.split_spec.to_dict() == {"mode": "blocks", "fractions": [0.7, 0.3, 0.0], "block_size": 128,
                                        "buffer": 0, "seed": 7}


def test_defaults_and_derived_specs():
    cfg = ExportConfig()
    assert cfg.to_dict() == {
        "input_bands": None, "target_bands": None, "size": 256, "stride": 256, "min_valid": 0.95,
        "resampling": None, "aoi": None, "aoi_mode": "within", "split": [0.8, 0.1, 0.1], "split_mode": "blocks",
        "block_size": 1024, "buffer": 256, "seed": 0, "workers": 1, "compress": "deflate",
    }
    assert ExportConfig(size=128).split_spec.buffer == 128
    assert ExportConfig(size=128, buffer=0).split_spec.buffer == 0
    assert "chip_spec" not in ExportConfig.keys() and "split_spec" not in ExportConfig.keys()
    assert AOI_MODES == ("within", "intersects")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"workers": 0}, "workers must be a whole number >= 1, got 0"),
        ({"aoi_mode": "inside"}, "Unknown AOI mode 'inside'; valid modes: within, intersects"),
        ({"split_mode": "stripes"}, "Unknown split mode 'stripes'; valid modes: blocks, random"),
        ({"resampling": "linear"}, "Unknown resampling 'linear'; valid names: nearest, bilinear"),
        ({"compress": "zip"}, "zip"),
        ({"size": 100}, r"Chip size 100 is not a multiple of 32 \(the U-Net halves it 5 times\); use --size 96\."),
        ({"split": (0.7, 0.1, 0.1)}, "add up to 0.9"),
        ({"buffer": -1}, "buffer must be >= 0"),
    ],
)
def test_range_checks(changes, message):
    with pytest.raises(InputError, match=message):
        ExportConfig(**changes)


def test_yaml_round_trip_ignores_sources(tmp_path):
    cfg = ExportConfig(size=64, input_bands=(1, 2), split=(0.5, 0.5), aoi="park.gpkg", workers=3)
    doc = tmp_path / "export-config.yaml"
    doc.write_text(cfg.to_yaml() + "sources:\n  input: [a.tif]\n  target: [b.tif]\n")
    assert ExportConfig.from_yaml(doc) == cfg
    assert ExportConfig.read_yaml(doc)["size"] == 64 and "sources" not in ExportConfig.read_yaml(doc)


@pytest.mark.parametrize(
    "text, message",
    [
        ("- 1\n- 2\n", "must hold a mapping of export options"),
        ("size: [1\n", "Cannot read"),
        ("sise: 64\n", r"Unknown export option\(s\) sise in '.*bad.yaml'; valid export options: input_bands"),
    ],
)
def test_bad_yaml_files(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ExportConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        ExportConfig.read_yaml(tmp_path / "missing.yaml")
