"""TrainConfig: schema, YAML, merge, validation."""

from __future__ import annotations

import pytest
import yaml

from geop2p.errors import ConfigError
from geop2p.train import TrainConfig


def test_defaults_are_pix2pix():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.lambda_l1, cfg.d_layers, cfg.gan_mode) == (
        2e-4, 0.5, 0.999, 100.0, 3, "vanilla")
    assert cfg.generator_spec(3, 1) == {"architecture": "smp-unet", "in_channels": 3, "out_channels": 1,
                                        "params": {"encoder_name": "resnet34"}}


def test_yaml_round_trip_and_flags_override(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("gan_mode: lsgan\nbatch-size: 4\nepochs: 3\ngenerator_params: {encoder_depth: 4}\n")
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.gan_mode, cfg.batch_size, cfg.generator_params) == ("lsgan", 4, {"encoder_depth": 4})
    merged = cfg.merge({"batch_size": 2, "epochs": None, "gan_mode": None})
    assert (merged.batch_size, merged.epochs, merged.gan_mode) == (2, 3, "lsgan")
    saved = tmp_path / "config.yaml"
    saved.write_text(merged.to_yaml())
    assert TrainConfig.from_yaml(saved) == merged


@pytest.mark.parametrize(
    "data, message",
    [
        ({"gan_mod": "lsgan"}, "Unknown training option.*gan_mod.*valid training options: generator, encoder"),
        ({"gan_mode": "wgan"}, "gan_mode: 'wgan' is not valid; choose one of vanilla, lsgan, hinge"),
        ({"d_norm": "group"}, "choose one of instance, batch, none"),
        ({"best_metric": "mae"}, "choose one of val_mae"),
        ({"batch_size": 0}, "batch_size: must be at least 1"),
        ({"batch_size": "eight"}, "batch_size: expected a whole number, got 'eight'"),
        ({"lr": -1}, "lr: must be positive"),
        ({"lr": "inf"}, "lr: must be positive and finite, got inf"),
        ({"lambda_l1": "nan"}, "lambda_l1: must be positive and finite"),
        ({"seed": -1}, "seed: must be a whole number from 0 to 4294967295, got -1"),
        ({"seed": 2**32}, "seed: must be a whole number from 0 to 4294967295"),
        ({"beta1": 1.5}, r"beta1: must be in \[0, 1\)"),
        ({"epochs": 0, "decay_epochs": 0}, "epochs \\+ decay_epochs"),
        ({"spectral_norm": "maybe"}, "spectral_norm: expected true or false, got 'maybe'"),
        ({"norm_low": 99, "norm_high": 2}, "norm_low/norm_high"),
        ({"generator": "resnet"}, "choose one of smp-unet, pix2pix-unet, linear"),
    ],
)
def test_bad_values(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_yaml(bad)
    bad.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match="Cannot read .* as YAML"):
        TrainConfig.from_yaml(bad)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("seed", None, r"^seed: a value is required \(a whole number\), got null\.$"),
        ("batch_size", "x", r"^batch_size: expected a whole number, got 'x'\.$"),
        ("lr", "fast", r"^lr: expected a number, got 'fast'\.$"),
        ("max_steps", "many", r"^max_steps: expected a whole number or null, got 'many'\.$"),
        ("generator_params", [4], r"^generator_params: expected a mapping \(key: value\), got \[4\]\.$"),
        ("augment", 2, r"^augment: expected true or false, got 2\.$"),
    ],
)
def test_bad_types_are_one_error_naming_the_key(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({key: value})
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(path)


def test_values_are_converted_by_their_type_hints():
    cfg = TrainConfig.from_dict({"batch_size": "4", "lr": "1e-3", "spectral_norm": "yes", "max_steps": "20",
                                 "norm_low": 1, "recommended_overlap": None, "seed": 7.0})
    assert (cfg.batch_size, cfg.lr, cfg.spectral_norm, cfg.max_steps, cfg.norm_low, cfg.seed) == (
        4, 1e-3, True, 20, 1.0, 7)
    assert type(cfg.norm_low) is float and type(cfg.seed) is int and cfg.recommended_overlap is None
    assert cfg.replace(batch_size="2").batch_size == 2
    with pytest.raises(ConfigError, match="^seed: expected a whole number, got 1.5"):
        cfg.replace(seed=1.5)


def test_encoder_weights_none_means_no_pretrained_encoder():
    assert TrainConfig(encoder_weights="None").pretrained_encoder is None
    assert TrainConfig(encoder_weights="weights/enc.pth").pretrained_encoder == "weights/enc.pth"


def test_the_dataset_format_names_and_options_are_the_registrys():
    """The config lists them without torch (the CLI refuses a bad --format at once): they must be the registry's."""
    from geop2p.datasets import DIRECTIONS as DATASET_DIRECTIONS
    from geop2p.datasets import FORMATS, OPTIONS
    from geop2p.train.config import DATASET_FORMATS, DATASET_OPTIONS, DIRECTIONS

    assert DATASET_FORMATS == tuple(f.name for f in FORMATS)
    assert DIRECTIONS == DATASET_DIRECTIONS
    assert set(DATASET_OPTIONS) == set(OPTIONS) - {"random_crop"}  # evaluate and train choose the crop themselves


def test_dataset_options_are_passed_only_when_set(tmp_path):
    cfg = TrainConfig()
    assert (cfg.format, cfg.direction, cfg.load_size, cfg.crop_size, cfg.val_percent, cfg.test_percent,
            cfg.split_seed) == (None,) * 7 and cfg.dataset_options == {}
    cfg = TrainConfig.from_dict({"format": "pix2pix-aligned", "direction": "BtoA", "load-size": "300",
                                 "crop_size": 256})
    assert cfg.dataset_options == {"direction": "BtoA", "load_size": 300, "crop_size": 256}
    assert cfg.format == "pix2pix-aligned"
    (tmp_path / "config.yaml").write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(tmp_path / "config.yaml") == cfg  # what --resume reads back


@pytest.mark.parametrize(
    "data, message",
    [
        ({"format": "tiles"}, "format: 'tiles' is not valid; choose one of geop2p-chips, arcgis-tiles, "
                              "paired-folders, pix2pix-aligned"),
        ({"direction": "A2B"}, "direction: 'A2B' is not valid; choose one of AtoB, BtoA"),
        ({"load_size": 0}, "load_size: must be a whole number of pixels of at least 1, got 0"),
        ({"crop_size": -4}, "crop_size: must be a whole number of pixels of at least 1, got -4"),
        ({"load_size": 200, "crop_size": 256}, "crop_size: 256 is larger than load_size 200"),
        ({"val_percent": 100}, "val_percent: must be a whole percentage from 0 to 99, got 100"),
        ({"test_percent": -1}, "test_percent: must be a whole percentage from 0 to 99, got -1"),
        ({"val_percent": 60, "test_percent": 40}, "val_percent \\+ test_percent must leave some train pairs"),
        ({"split_seed": 2**32}, "split_seed: must be a whole number from 0 to 4294967295"),
    ],
)
def test_bad_dataset_options(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)
