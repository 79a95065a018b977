"""OUT_DIR: what --overwrite may remove (by the folder's own records), links, locks, and what --resume must match."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath

import pytest
import yaml

from geop2p.errors import ConfigError, FolderLockedError, InputError, OutputExistsError
from geop2p.export import ExportConfig, check_export, export_chips
from geop2p.export.folder import FolderRecords, read_config_document, read_records
from geop2p.io.lock import LOCK_NAME

SMALL = dict(size=32, block_size=64, buffer=0, min_valid=0.5)


@pytest.fixture
def done(pair, tmp_path) -> Path:
    """A complete export of ``pair`` in tmp_path/chips."""
    out = tmp_path / "chips"
    export_chips(pair.input, pair.target, out, ExportConfig(**SMALL))
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- 1. records


def test_complete_export_owns_its_fixed_files_and_the_chips_its_index_lists(done):
    records = read_records(done)
    assert records.complete and records.config is not None and len(records.chip_ids) == 16
    own = records.is_owned
    some = sorted(records.chip_ids)[0]
    for rel in ("geop2p-chips.json", "index.gpkg", "export-config.yaml", LOCK_NAME, "input", "target",
                f"input/{some}.tif", f"target/{some}.tif", f"input/{some}.tif.aux.xml", "index.gpkg-wal",
                ".index.partial-123-0a1b2c3d.gpkg", f"input/.{some}.partial-77-deadbeef.tif"):
        assert own(PurePosixPath(rel)), rel
    for rel in ("notes.txt", "input/999999_999999.tif", "input/notes.txt", "input/dem.tif", "photos",
                "photos/000000_000000.tif", ".thesis.partial-1-0a1b2c3d.docx", "input/sub/000000_000000.tif"):
        assert not own(PurePosixPath(rel)), rel


def test_unfinished_export_owns_files_named_like_chips():
    records = FolderRecords(None, {"size": 32, "sources": {"input": [], "target": []}}, None)
    assert records.is_owned(PurePosixPath("input/123456_000032.tif"))
    assert records.is_owned(PurePosixPath("target/1234567_0000032.tif"))  # rasters over a million pixels
    assert not records.is_owned(PurePosixPath("input/12345_000032.tif"))
    assert not records.is_owned(PurePosixPath("input/000000_000032.tiff"))


@pytest.mark.parametrize("text, problem", [
    ("", "not a mapping"),
    ("- a\n", "not a mapping"),
    ("size: 32\n", "records no input and target sources"),
    ("size: 31\nsources: {input: [a.tif], target: [b.tif]}\n", "not a geop2p export configuration"),
    ("colour: red\nsources: {input: [a.tif], target: [b.tif]}\n", "not a geop2p export configuration"),
    ("size: [\n", "unreadable"),
])
def test_a_config_that_is_not_geop2p_s_makes_no_chip_folder(text, problem, tmp_path):
    (tmp_path / "export-config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        read_config_document(tmp_path / "export-config.yaml")
    records = read_records(tmp_path)
    assert not records.is_export and problem in records.config_problem
    assert not records.is_owned(PurePosixPath("export-config.yaml"))


# ---------------------------------------------------------------------------------------------- 1. --overwrite


def test_overwrite_of_an_unfinished_export_removes_only_what_geop2p_wrote(pair, done):
    (done / "geop2p-chips.json").unlink()
    (done / "index.gpkg").unlink()
    (done / "input" / ".000000_000000.partial-99999999-0a1b2c3d.tif").write_bytes(b"half")
    (done / LOCK_NAME).write_text(json.dumps({"pid": 99999999, "host": os.uname().nodename}))  # a dead export's
    summary = export_chips(pair.input, pair.target, done, ExportConfig(**dict(SMALL, size=64)), overwrite=True)
    assert summary.total == 4 and len(list((done / "input").glob("*.tif"))) == 4
    assert not list(done.rglob(".*partial*")) and not (done / LOCK_NAME).exists()


@pytest.mark.parametrize("extra", ["notes.txt", "input/999999_999999.tif", "photos/a.jpg"])
def test_overwrite_refuses_a_chip_folder_holding_anything_else_and_changes_nothing(extra, pair, done):
    (done / extra).parent.mkdir(exist_ok=True)
    (done / extra).write_text("mine")
    before = _tree(done)
    with pytest.raises(OutputExistsError, match=f"holds '{extra.split('/')[0] if extra.startswith('photos') else extra}'"):
        export_chips(pair.input, pair.target, done, ExportConfig(**SMALL), overwrite=True)
    assert _tree(done) == before


def test_overwrite_refuses_a_folder_holding_the_inputs(pair, done):
    inside = done / "dem.tif"
    shutil.copy(pair.input, inside)
    before = _tree(done)
    with pytest.raises(OutputExistsError, match=r"holds '.*dem.tif', an input of this command"):
        export_chips(inside, pair.target, done, ExportConfig(**SMALL), overwrite=True)
    with pytest.raises(OutputExistsError, match="an input of this command"):  # the inputs are the chips themselves
        export_chips(done / "input" / "000000_000000.tif", pair.target, done, ExportConfig(**SMALL), overwrite=True)
    assert _tree(done) == before


def test_overwrite_refuses_the_aoi_inside_the_folder(pair, done, aoi_files):
    shutil.copy(aoi_files.inside, done / "aoi.gpkg")
    with pytest.raises(OutputExistsError, match="an input of this command"):
        export_chips(pair.input, pair.target, done, ExportConfig(**SMALL, aoi=str(done / "aoi.gpkg")), overwrite=True)


# ---------------------------------------------------------------------------------------------- 4. links


def test_overwrite_through_a_link_follows_it_and_keeps_the_link(pair, done, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(done)
    summary = export_chips(pair.input, pair.target, link, ExportConfig(**dict(SMALL, size=64)), overwrite=True)
    assert summary.total == 4 and link.is_symlink() and os.readlink(link) == str(done)
    assert len(list((done / "input").glob("*.tif"))) == 4
    (done / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        export_chips(pair.input, pair.target, link, ExportConfig(**SMALL), overwrite=True)
    assert link.is_symlink() and (done / "notes.txt").exists()


def test_dangling_link_is_one_error(pair, tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError, match="is a symbolic link to .*nowhere', which does not exist"):
        export_chips(pair.input, pair.target, tmp_path / "gone", ExportConfig(**SMALL))
    assert (tmp_path / "gone").is_symlink() and not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------------------------------------- 3. the lock


def test_a_live_lock_refuses_overwrite_and_resume_and_a_stale_one_is_taken_over(pair, done, caplog):
    record = {"pid": os.getpid(), "host": os.uname().nodename, "command": "geop2p export-chips ..."}
    (done / LOCK_NAME).write_text(json.dumps(record))
    before = _tree(done)
    for flags in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(FolderLockedError, match=f"in use by another geop2p export \\(pid {os.getpid()}"):
            export_chips(pair.input, pair.target, done, ExportConfig(**SMALL), **flags)
    assert _tree(done) == before
    (done / LOCK_NAME).write_text(json.dumps({**record, "pid": 99999999}))
    summary = export_chips(pair.input, pair.target, done, ExportConfig(**SMALL), resume=True)
    assert summary.total == 16 and not (done / LOCK_NAME).exists()
    assert "Taking over a stale lock" in caplog.text


# ---------------------------------------------------------------------------------------------- 6. --resume


def test_resume_accepts_the_same_rasters_spelled_another_way(pair, tmp_path, monkeypatch):
    monkeypatch.chdir(pair.input.parent)
    out = tmp_path / "chips"
    export_chips("input.tif", "./target.tif", out, ExportConfig(**SMALL))
    recorded = yaml.safe_load((out / "export-config.yaml").read_text())["sources"]
    assert recorded == {"input": [str(pair.input.resolve())], "target": [str(pair.target.resolve())]}
    (out / "geop2p-chips.json").unlink()
    summary = export_chips(str(pair.input.resolve()), f"../{pair.target.parent.name}/target.tif", out,
                           ExportConfig(**SMALL), resume=True)
    assert summary.reused == 16 and summary.written == 0


def test_resume_of_an_older_export_that_recorded_relative_paths(pair, tmp_path, monkeypatch):
    monkeypatch.chdir(pair.input.parent)
    out = tmp_path / "chips"
    export_chips("input.tif", "target.tif", out, ExportConfig(**SMALL))
    doc = yaml.safe_load((out / "export-config.yaml").read_text())
    doc["sources"] = {"input": ["input.tif"], "target": ["target.tif"]}  # what geop2p 0.1 wrote
    (out / "export-config.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (out / "geop2p-chips.json").unlink()
    assert export_chips(pair.input, pair.target, out, ExportConfig(**SMALL), resume=True).reused == 16


def test_resume_still_refuses_other_rasters(pair, stack4, done):
    (done / "geop2p-chips.json").unlink()
    with pytest.raises(ConfigError, match="different settings.*sources"):
        export_chips(pair.input, stack4, done, ExportConfig(**dict(SMALL, target_bands=(1,))), resume=True)


def test_overwrite_and_resume_exclude_each_other_even_on_a_complete_export(pair, done):
    before = _tree(done)
    with pytest.raises(InputError, match="exclude each other"):
        export_chips(pair.input, pair.target, done, ExportConfig(**SMALL), overwrite=True, resume=True)
    assert _tree(done) == before


def test_resume_into_a_folder_left_empty_by_a_killed_export_starts_it(pair, tmp_path):
    out = tmp_path / "chips"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 99999999, "host": os.uname().nodename}))
    assert export_chips(pair.input, pair.target, out, ExportConfig(**SMALL), resume=True).total == 16


# ---------------------------------------------------------------------------------------------- 10, 11. checks first


def test_out_dir_that_is_a_file_is_an_input_error(pair, tmp_path):
    (tmp_path / "thesis.docx").write_text("mine")
    for call in (export_chips, check_export):
        with pytest.raises(OutputExistsError, match="is a file; expected a folder name"):
            call(pair.input, pair.target, tmp_path / "thesis.docx", ExportConfig(**SMALL))
    with pytest.raises(OutputExistsError, match="is a file, not a folder"):
        export_chips(pair.input, pair.target, tmp_path / "thesis.docx" / "chips", ExportConfig(**SMALL))


def test_refused_commands_log_nothing_before_the_error(pair, done, caplog):
    """Planning warns "No test chips" here; a refusal found after planning must not let it out."""
    (done / "geop2p-chips.json").unlink()
    caplog.set_level("INFO")
    with pytest.raises(ConfigError, match="different settings"):
        export_chips(pair.input, pair.target, done, ExportConfig(**dict(SMALL, seed=5)), resume=True)
    assert not [r for r in caplog.records if r.name.startswith("geop2p")]
    export_chips(pair.input, pair.target, done, ExportConfig(**SMALL), resume=True)
    assert "No test chips" in caplog.text  # released once the export goes ahead


def test_dry_run_checks_the_output_folder_too(pair, done):
    with pytest.raises(OutputExistsError, match="already exists"):
        check_export(pair.input, pair.target, done, ExportConfig(**SMALL))
    (done / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        check_export(pair.input, pair.target, done, ExportConfig(**SMALL), overwrite=True)
    assert check_export(pair.input, pair.target, done.parent / "new", ExportConfig(**SMALL)).planned_counts()


def test_a_refusal_found_late_leaves_no_folder_behind(tmp_path):
    """No chip passes --min-valid: found only after reading them all; the folders made for it go again."""
    import numpy as np

    from geop2p.errors import ChipSizeError
    from tests.conftest import write_raster
    from tests.fixtures.export import ORIGIN, UTM31

    holes = write_raster(tmp_path / "holes.tif", np.full((1, 64, 64), 255, np.uint8), ORIGIN, UTM31, nodata=255)
    with pytest.raises(ChipSizeError, match="No chip has at least"):
        export_chips(holes, holes, tmp_path / "a" / "b" / "chips", ExportConfig(**SMALL))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holes.tif"]
