"""checkpoints/last.pt: resume equality, refusals, and a round trip of trainer, loop and RNG states."""

from __future__ import annotations

import argparse
import random

import numpy as np
import pytest
import torch

from geop2p.errors import ConfigError
from geop2p.train import CHECKPOINT_FORMAT, Pix2PixTrainer, TrainConfig, train
from geop2p.train.checkpoint import (
    TRAINER_KEYS,
    Checkpoint,
    LoopState,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_resume_gives_the_same_weights(chip_folder_ro, tmp_path, tiny_config):
    cfg = tiny_config.merge({"epochs": 2, "decay_epochs": 2, "n_samples": 0, "deterministic": True})
    one = train(chip_folder_ro, tmp_path / "one", cfg.merge({"max_steps": 12}))
    train(chip_folder_ro, tmp_path / "two", cfg.merge({"max_steps": 7}))  # stops mid-epoch 2
    two = train(chip_folder_ro, tmp_path / "two", cfg.merge({"max_steps": 12}), resume=True)
    assert one.steps == two.steps == 12
    a = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    for part in ("generator", "discriminator"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert a["opt_g"]["state"][0]["step"] == b["opt_g"]["state"][0]["step"]
    assert a["sched_g"]["last_epoch"] == b["sched_g"]["last_epoch"] == 2


def test_resume_refuses_changed_structure(chip_folder_ro, tmp_path, tiny_config):
    train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"max_steps": 2, "n_samples": 0}))
    with pytest.raises(ConfigError, match="gan_mode: checkpoint 'vanilla' vs now 'hinge'"):
        train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"gan_mode": "hinge"}), resume=True)


def test_resume_refuses_a_file_that_is_not_a_checkpoint(chip_folder_ro, tmp_path, tiny_config):
    run = tmp_path / "run"
    train(chip_folder_ro, run, tiny_config.merge({"max_steps": 1, "n_samples": 0}))
    (run / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match="not a geop2p checkpoint readable without unpickling.*--overwrite"):
        train(chip_folder_ro, run, tiny_config, resume=True)


def _trainer(seed: int = 0) -> Pix2PixTrainer:
    torch.manual_seed(seed)
    cfg = TrainConfig(generator="linear", d_ndf=4, d_layers=1, device="cpu", epochs=1, decay_epochs=1)
    return Pix2PixTrainer(cfg, in_channels=2, out_channels=1)


def test_write_then_read_restores_every_part(tmp_path):
    trainer = _trainer()
    x = torch.rand(2, 2, 8, 8) * 2 - 1
    trainer.train_step({"input": x, "target": x[:, :1], "valid": torch.ones(2, 1, 8, 8)})
    trainer.step_schedulers()
    loop = LoopState(epoch=1, step_in_epoch=0, global_step=1, best_value=0.5, best_epoch=1,
                     best_metrics={"val_mae": 0.5, "val_psnr": float("inf")})
    path = write_checkpoint(tmp_path / "checkpoints" / "last.pt",
                            Checkpoint(trainer.config.to_dict(), trainer.state_dict(), loop, rng_state()))
    raw = torch.load(path, weights_only=True)  # nothing in it needs unpickling
    assert (raw["format"], raw["format_version"]) == (CHECKPOINT_FORMAT, 1)
    assert list(raw) == ["format", "format_version", "geop2p_version", "config", *TRAINER_KEYS, "state", "rng"]
    back = read_checkpoint(path)
    assert back.config == trainer.config.to_dict()
    assert back.loop == LoopState(1, 0, 1, 0.5, 1, {"val_mae": 0.5, "val_psnr": None})  # non-finite: None
    fresh = _trainer(seed=1)
    fresh.load_state_dict(back.trainer)
    for part in ("generator", "discriminator"):
        a, b = getattr(trainer, part).state_dict(), getattr(fresh, part).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    assert fresh.opt_g.state_dict()["state"][0]["step"] == trainer.opt_g.state_dict()["state"][0]["step"]
    assert fresh.sched_d.last_epoch == trainer.sched_d.last_epoch == 1 and fresh.lr == trainer.lr


def test_rng_states_round_trip():
    state = rng_state()
    draws = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1]) and draws[2] == again[2]


@pytest.mark.parametrize(
    "content, message",
    [
        (argparse.Namespace(a=1), "readable without unpickling objects"),
        ({"format": "something-else"}, "is not a geop2p training checkpoint"),
        ({"format": CHECKPOINT_FORMAT, "format_version": 2, "geop2p_version": "9.0"},
         "format_version 2 \\(written by geop2p 9.0\\); this geop2p reads 1"),
        ({"format": CHECKPOINT_FORMAT, "format_version": 1, "config": {}}, "lacks generator, discriminator"),
    ],
)
def test_read_refuses(tmp_path, content, message):
    path = tmp_path / "last.pt"
    torch.save(content, path)
    with pytest.raises(ConfigError, match=message):
        read_checkpoint(path)
