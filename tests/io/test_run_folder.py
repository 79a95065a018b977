"""RunFolder: layout, the checks before a run writes, config.yaml and metrics.csv; no torch."""

from __future__ import annotations

import pytest

from geop2p.errors import ConfigError, OutputExistsError
from geop2p.io.run_folder import RunFolder, read_history, write_history
from geop2p.train.config import TrainConfig


def test_layout(tmp_path):
    f = RunFolder(str(tmp_path / "run"))
    assert f.root == tmp_path / "run"
    assert [p.relative_to(f.root).as_posix() for p in (f.config_path, f.metrics_path, f.checkpoint_path,
                                                       f.samples_dir, f.tensorboard_dir, f.bundle_path)] == [
        "config.yaml", "metrics.csv", "checkpoints/last.pt", "samples", "tensorboard", "model.safetensors"]
    assert f.sample_path(0).name == "epoch_001.png"


def test_check_new_resumed_and_overwritten_runs(tmp_path):
    chips = tmp_path / "chips"
    chips.mkdir()
    f = RunFolder(tmp_path / "run")
    f.check(chips, resume=False, overwrite=False)  # a new folder: fine
    with pytest.raises(ConfigError, match="exclude each other"):
        f.check(chips, resume=True, overwrite=True)
    with pytest.raises(ConfigError, match="Nothing to resume"):
        f.check(chips, resume=True, overwrite=False)
    f.root.mkdir()
    f.check(chips, resume=False, overwrite=False)  # empty: fine
    (f.root / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="--resume to continue it, --overwrite"):
        f.check(chips, resume=False, overwrite=False)
    f.check(chips, resume=False, overwrite=True)
    f.checkpoint_path.parent.mkdir()
    f.checkpoint_path.write_bytes(b"")
    f.check(chips, resume=True, overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        RunFolder(tmp_path / "file").check(chips, resume=False, overwrite=False)


def test_overwrite_never_deletes_the_chips(tmp_path):
    outer = tmp_path / "work"
    (outer / "chips").mkdir(parents=True)
    for run in (outer, outer / "chips"):
        with pytest.raises(ConfigError, match="holds the chips"):
            RunFolder(run).check(outer / "chips", resume=False, overwrite=True)


def test_prepare_and_config(tmp_path):
    f = RunFolder(tmp_path / "run")
    f.root.mkdir()
    (f.root / "old.txt").write_text("x")
    f.prepare(clear=False)
    assert (f.root / "old.txt").exists() and f.samples_dir.is_dir() and f.checkpoint_path.parent.is_dir()
    f.prepare(clear=True)
    assert not (f.root / "old.txt").exists() and f.samples_dir.is_dir()
    cfg = TrainConfig(batch_size=3, generator_params={"ngf": 8})
    f.write_config(cfg)
    assert TrainConfig.from_yaml(f.config_path) == cfg
    assert f.config_path.read_text().startswith("generator: smp-unet\n")  # schema order


def test_history_round_trip_keeps_columns_of_every_row(tmp_path):
    path = tmp_path / "metrics.csv"
    assert read_history(path) == []
    rows = [{"epoch": 1, "val_mae": 1.5, "img_per_s": None}, {"epoch": 2, "val_mae": float("nan"), "extra": 3}]
    write_history(path, rows)
    assert path.read_text().splitlines() == ["epoch,val_mae,img_per_s,extra", "1,1.5,,", "2,nan,,3"]
    back = read_history(path)
    write_history(path, back + [{"epoch": 3}])
    assert [r["epoch"] for r in read_history(path)] == ["1", "2", "3"]
    assert not list(tmp_path.glob(".*partial*"))  # written atomically: no temporary left
