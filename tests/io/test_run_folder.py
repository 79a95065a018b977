"""RunFolder: layout, what a run wrote (the rule behind --overwrite), the checks before a run writes, config.yaml
and metrics.csv."""

from __future__ import annotations

import os
import subprocess
import zipfile

import pytest

from geop2p.errors import ConfigError, OutputExistsError, WriteError
from geop2p.io.lock import LOCK_NAME
from geop2p.io.run_folder import RunFolder, read_history, write_history
from geop2p.train.config import TrainConfig


def test_layout(tmp_path):
    f = RunFolder(str(tmp_path / "run"))
    assert f.root == tmp_path / "run"
    assert [p.relative_to(f.root).as_posix() for p in (f.config_path, f.metrics_path, f.checkpoint_path,
                                                       f.samples_dir, f.tensorboard_dir, f.bundle_path)] == [
        "config.yaml", "metrics.csv", "checkpoints/last.pt", "samples", "tensorboard", "model.safetensors"]
    assert f.sample_path(0).name == "epoch_001.png"


def _fake_run(root, make_bundle_meta, checkpoint=True):
    """Every kind of file a run writes, written the way a run writes them."""
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    f = RunFolder(root)
    f.root.mkdir(parents=True, exist_ok=True)
    f.prepare()
    f.write_config(TrainConfig(generator="linear"))
    write_history(f.metrics_path, [{"epoch": 1, "step": 2, "val_mae": 1.0}])
    meta = make_bundle_meta(["red", "green", "blue"], ["elevation"], chip_size=32, overlap=8)
    save_bundle(f.bundle_path, build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1}), meta)
    if checkpoint:
        with zipfile.ZipFile(f.checkpoint_path, "w") as z:  # torch.save writes a zip
            z.writestr("archive/data.pkl", b"x")
    (f.checkpoint_path.parent / ".last.partial-99999999-0a1b2c3d.pt").write_bytes(b"half")
    (f.checkpoint_path.parent / ".last.partial-0a1b2c3d.pt").write_bytes(b"half, geop2p 0.1")
    (f.samples_dir / "epoch_001.png").write_bytes(b"\x89PNG")
    (f.samples_dir / ".epoch_002.partial-99999999-0a1b2c3d.png").write_bytes(b"\x89P")
    f.tensorboard_dir.mkdir()
    (f.tensorboard_dir / "events.out.tfevents.1700000000.host.99999999.0").write_bytes(b"ev")
    (f.root / ".metrics.partial-99999999-0a1b2c3d.csv").write_text("epoch,step\n")
    (f.root / LOCK_NAME).write_text('{"pid": 99999999}')
    return f


def test_a_runs_own_files_are_owned_and_nothing_else(tmp_path, make_bundle_meta):
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    folder = f.owned(TrainConfig)
    assert folder.foreign() == []
    assert len(folder.owned()) == 11
    mine = ["thesis.docx", "photos/cat.jpg", "samples/holiday.jpg", "checkpoints/best.pt", "tensorboard/notes.txt",
            "samples/old/epoch_001.png", ".config.yaml.bak"]
    for rel in mine:
        (f.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (f.root / rel).write_text("the user's")
    os.symlink(tmp_path, f.root / "link")
    foreign = sorted(p.relative_to(f.root).as_posix() for p in f.owned(TrainConfig).foreign())
    assert foreign == sorted(mine + ["photos", "samples/old", "link"])


@pytest.mark.parametrize("name, content", [
    ("metrics.csv", b"name,phone\nada,123\n"),  # not a run's metrics
    ("model.safetensors", b"my own model"),  # not a geop2p bundle
    ("checkpoints/last.pt", b"not a torch file"),
])
def test_a_file_with_a_runs_name_but_not_its_content_is_foreign(tmp_path, make_bundle_meta, name, content):
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    (f.root / name).write_bytes(content)
    assert [p.relative_to(f.root).as_posix() for p in f.owned(TrainConfig).foreign()] == [name]


@pytest.mark.parametrize("config", ["learning_rate: 0.1\n", "not: [valid\n", "- a list\n"])
def test_without_a_training_config_nothing_but_the_lock_is_owned(tmp_path, make_bundle_meta, config):
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    f.config_path.write_text(config)
    owned = f.owned(TrainConfig)
    assert [p.name for p in owned.owned()] == [LOCK_NAME]
    assert "config.yaml" in [p.name for p in owned.foreign()]


def test_check_new_resumed_and_overwritten_runs(tmp_path, make_bundle_meta):
    chips = tmp_path / "chips"
    chips.mkdir()
    f = RunFolder(tmp_path / "run")
    f.check(chips, resume=False, overwrite=False, config_type=TrainConfig)  # a new folder: fine
    with pytest.raises(ConfigError, match="exclude each other"):
        f.check(chips, resume=True, overwrite=True, config_type=TrainConfig)
    with pytest.raises(ConfigError, match="Nothing to resume.*Drop --resume"):
        f.check(chips, resume=True, overwrite=False, config_type=TrainConfig)
    f.root.mkdir()
    f.check(chips, resume=False, overwrite=False, config_type=TrainConfig)  # empty: fine
    (f.root / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="--resume to continue it, --overwrite"):
        f.check(chips, resume=False, overwrite=False, config_type=TrainConfig)
    with pytest.raises(OutputExistsError, match="holds 'notes.txt', which geop2p did not write"):
        f.check(chips, resume=False, overwrite=True, config_type=TrainConfig)
    (f.root / "notes.txt").unlink()
    _fake_run(f.root, make_bundle_meta)
    f.check(chips, resume=False, overwrite=True, config_type=TrainConfig)
    f.check(chips, resume=True, overwrite=False, config_type=TrainConfig)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        RunFolder(tmp_path / "file").check(chips, resume=False, overwrite=False, config_type=TrainConfig)
    with pytest.raises(OutputExistsError, match="'.*file' is a file, so run folder .* cannot be made in it"):
        RunFolder(tmp_path / "file" / "run").check(chips, resume=False, overwrite=False, config_type=TrainConfig)


def test_a_run_that_stopped_before_its_first_checkpoint_says_overwrite(tmp_path, make_bundle_meta):
    f = _fake_run(tmp_path / "run", make_bundle_meta, checkpoint=False)
    with pytest.raises(OutputExistsError, match="stopped before its first checkpoint .*pass --overwrite"):
        f.check(tmp_path, resume=False, overwrite=False, config_type=TrainConfig)
    with pytest.raises(ConfigError, match="Nothing to resume: the run .* stopped before its first checkpoint.*"
                                          "--overwrite instead of --resume"):
        f.check(tmp_path / "chips", resume=True, overwrite=False, config_type=TrainConfig)


def test_overwrite_never_deletes_the_chips(tmp_path, make_bundle_meta):
    outer = tmp_path / "work"
    (outer / "chips").mkdir(parents=True)
    (outer / "chips" / "geop2p-chips.json").write_text("{}")
    for run in (outer, outer / "chips"):
        with pytest.raises(OutputExistsError, match="an input of this command"):
            RunFolder(run).check(outer / "chips", resume=False, overwrite=True, config_type=TrainConfig)
    # even inside a real run folder
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    (f.root / "chips").mkdir()
    with pytest.raises(OutputExistsError, match="holds .*chips', an input"):
        f.clear(TrainConfig, protected=[f.root / "chips"])
    assert f.checkpoint_path.is_file()


def test_clear_deletes_only_what_a_run_wrote_and_keeps_the_lock(tmp_path, make_bundle_meta):
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    assert f.clear(TrainConfig) == 10
    assert sorted(p.name for p in f.root.iterdir()) == [LOCK_NAME]
    (f.root / LOCK_NAME).unlink()
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    (f.root / "thesis.docx").write_text("mine")
    with pytest.raises(OutputExistsError, match="thesis.docx"):
        f.clear(TrainConfig)
    assert f.checkpoint_path.is_file() and len(list(f.root.rglob("*"))) == 15
    # a failed run's own clean-up removes what it wrote, and leaves what is not its own
    assert f.remove_written(TrainConfig) == 10
    assert sorted(p.name for p in f.root.iterdir()) == [LOCK_NAME, "thesis.docx"]


def test_a_symlinked_run_folder_is_followed_and_the_link_kept(tmp_path, make_bundle_meta):
    target = _fake_run(tmp_path / "elsewhere", make_bundle_meta)
    link = tmp_path / "run"
    link.symlink_to(target.root)
    f = RunFolder(link)
    f.check(tmp_path / "chips", resume=False, overwrite=True, config_type=TrainConfig)
    f.clear(TrainConfig)
    assert link.is_symlink() and link.resolve() == target.root.resolve()
    assert sorted(p.name for p in target.root.iterdir()) == [LOCK_NAME]
    (target.root / "photo.jpg").write_text("mine")
    _fake_run(target.root, make_bundle_meta)
    with pytest.raises(OutputExistsError, match="photo.jpg"):
        RunFolder(link).check(tmp_path / "chips", resume=False, overwrite=True, config_type=TrainConfig)
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError, match="symbolic link to .*nowhere', which does not exist"):
        RunFolder(broken).check(tmp_path / "chips", resume=False, overwrite=True, config_type=TrainConfig)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_a_read_only_file_system_is_one_line_at_the_first_write(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    try:
        for run in (mount / "run", mount / "a" / "run"):
            with pytest.raises(WriteError, match="Read-only file system; choose a folder you can write to"):
                RunFolder(run).create()
        assert RunFolder(mount).create() == []
        with pytest.raises(WriteError, match="Cannot create the lock file .*Read-only file system"):
            RunFolder(mount).lock().acquire()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_sweep_partials_removes_only_those_of_dead_processes(tmp_path, make_bundle_meta):
    f = _fake_run(tmp_path / "run", make_bundle_meta)
    live = f.checkpoint_path.parent / f".last.partial-{os.getpid()}-0a1b2c3d.pt"
    live.write_bytes(b"being written")
    removed = sorted(p.name for p in f.sweep_partials())
    assert removed == [".epoch_002.partial-99999999-0a1b2c3d.png", ".last.partial-99999999-0a1b2c3d.pt",
                       ".metrics.partial-99999999-0a1b2c3d.csv"]
    assert live.exists()


def test_create_reports_the_folders_it_made(tmp_path):
    assert RunFolder(tmp_path / "a" / "b").create() == [tmp_path / "a" / "b", tmp_path / "a"]
    assert RunFolder(tmp_path / "a" / "b").create() == []


def test_prepare_and_config(tmp_path):
    f = RunFolder(tmp_path / "run")
    f.root.mkdir()
    (f.root / "old.txt").write_text("x")
    f.prepare()
    assert (f.root / "old.txt").exists() and f.samples_dir.is_dir() and f.checkpoint_path.parent.is_dir()
    cfg = TrainConfig(batch_size=3, generator_params={"ngf": 8})
    f.write_config(cfg)
    assert TrainConfig.from_yaml(f.config_path) == cfg
    assert f.config_path.read_text().startswith("generator: smp-unet\n")  # schema order
    assert f.is_run(TrainConfig)


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


def test_history_until_a_step_drops_what_came_after_the_checkpoint(tmp_path):
    path = write_history(tmp_path / "metrics.csv", [{"epoch": e, "step": 2 * e} for e in (1, 2, 3, 3)])
    assert [r["epoch"] for r in read_history(path, until_step=4)] == ["1", "2"]
    assert len(read_history(path, until_step=99)) == 4
