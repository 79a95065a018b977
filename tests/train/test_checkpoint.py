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


# ---------------------------------------------------------------------------------- resume on other chips
SMALL = dict(generator="linear", d_ndf=4, d_layers=2, workers=0, device="cpu", batch_size=2, n_samples=0, epochs=2,
             decay_epochs=0)


@pytest.fixture(scope="module")
def run_on_32px(tmp_path_factory):
    """A run of one epoch on 2 × 3 chips of 32 px (3 input bands, 1 target), and its chips."""
    from tests.fixtures.train import write_chip_folder

    root = tmp_path_factory.mktemp("run32")
    chips = write_chip_folder(root / "chips", rows=2, cols=3, size=32)
    train(chips, root / "run", TrainConfig(**SMALL, max_steps=2))
    return root


def _edited(chips, tmp_path, change):
    import json
    import shutil

    copy = shutil.copytree(chips, tmp_path / "edited")
    doc = json.loads((copy / "geop2p-chips.json").read_text())
    change(doc)
    (copy / "geop2p-chips.json").write_text(json.dumps(doc, indent=2))
    return copy


@pytest.mark.parametrize("other, message", [
    ("64px", r"trained on 32 px chips, 3 input band\(s\) \(red, green, blue\), 1 target band\(s\) \(elevation\), "
             r"these chips are 64 px chips, 3 input band\(s\)"),
    ("2-bands", r"these chips are 32 px chips, 2 input band\(s\) \(red, green\)"),
    ("manifest-claims-64px", r"trained on 32 px chips.*these chips are 64 px chips"),
    ("manifest-edited", r"these are not the chips the run started on \(their manifest sha256 is [0-9a-f]{12}…"),
    ("re-exported", r"these are not the chips the run started on"),
])
def test_resume_refuses_other_chips_and_writes_nothing(run_on_32px, tmp_path, other, message):
    from tests.bad_input.harness import snapshot
    from tests.fixtures.train import write_chip_folder

    chips = run_on_32px / "chips"
    other_chips = {
        "64px": lambda: write_chip_folder(tmp_path / "c64", rows=1, cols=3, size=64),
        "2-bands": lambda: write_chip_folder(tmp_path / "c2", rows=2, cols=3, size=32, n_input_bands=2),
        "manifest-claims-64px": lambda: _edited(chips, tmp_path, lambda d: d["chip_spec"].update(size=64)),
        "manifest-edited": lambda: _edited(chips, tmp_path, lambda d: d.update(created="2026-02-02T00:00:00+00:00")),
        "re-exported": lambda: write_chip_folder(tmp_path / "again", rows=2, cols=3, size=32, seed=1),
    }[other]()
    before = snapshot(run_on_32px)
    with pytest.raises(ConfigError, match=rf"Cannot resume '.*last.pt' on '{other_chips}': .*{message}.*"
                                          r"Resume with the run's own chips, or start a new run"):
        train(other_chips, run_on_32px / "run", TrainConfig(**SMALL), resume=True)
    assert snapshot(run_on_32px) == before


def test_the_checkpoint_records_its_chips(run_on_32px):
    from geop2p.io.chip_folder import manifest_sha256

    data = read_checkpoint(run_on_32px / "run" / "checkpoints" / "last.pt").data
    assert data.source_sha256 == manifest_sha256(run_on_32px / "chips") and data.chip_size == 32
    assert (data.input_bands, data.target_bands) == (("red", "green", "blue"), ("elevation",))


def test_a_checkpoint_without_a_chips_record_is_checked_by_its_networks(run_on_32px, tmp_path):
    """Checkpoints of geop2p 0.1 hold no record of their chips: 2-band chips fail on the weights, in one line."""
    import shutil

    from tests.fixtures.train import write_chip_folder

    run = shutil.copytree(run_on_32px / "run", tmp_path / "run")
    doc = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    del doc["data"]
    torch.save(doc, run / "checkpoints" / "last.pt")
    assert read_checkpoint(run / "checkpoints" / "last.pt").data is None
    two = write_chip_folder(tmp_path / "c2", rows=2, cols=3, size=32, n_input_bands=2)
    with pytest.raises(ConfigError, match=r"last.pt' does not fit these chips' networks \(.*size mismatch"):
        train(two, run, TrainConfig(**SMALL), resume=True)
    assert train(run_on_32px / "chips", run, TrainConfig(**SMALL), resume=True).steps == 4
