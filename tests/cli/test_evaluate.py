"""`geop2p evaluate` through click's CliRunner."""

from __future__ import annotations

import json
import pickle

import pytest
from click.testing import CliRunner

from geop2p.cli import cli
from geop2p.train import train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def bundle(chip_folder_ro, tmp_path, tiny_config):
    return train(chip_folder_ro, tmp_path / "run", tiny_config.merge({"max_steps": 5, "n_samples": 0})).bundle_path


def test_evaluate_cli_table_and_json(bundle, chip_folder_ro, tmp_path):
    out = tmp_path / "report.json"
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), str(chip_folder_ro), "--split", "val", "--json",
                                   str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "linear baseline" in res.output and "elevation" in res.output and "RMSE" in res.output
    doc = json.loads(out.read_text())
    assert doc["split"] == "val" and set(doc["model"]["bands"]["elevation"]) == {"mae", "rmse", "psnr", "ssim"}
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), str(chip_folder_ro), "--json", str(out)])
    assert res.exit_code == 1 and "--overwrite" in res.output


def test_evaluate_cli_refuses_a_pickle(chip_folder_ro, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps({"state_dict": {}}))
    res = CliRunner().invoke(cli, ["evaluate", str(bad), str(chip_folder_ro)])
    assert res.exit_code == 1 and "pickle" in res.output.lower() and "Traceback" not in res.output


def test_evaluate_cli_bad_split_and_missing_model(chip_folder_ro, tmp_path):
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "m.safetensors"), str(chip_folder_ro),
                                   "--split", "holdout"])
    assert res.exit_code == 2 and "'holdout' is not one of 'train', 'val', 'test'" in res.output
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "m.safetensors"), str(chip_folder_ro)])
    assert res.exit_code == 1 and "m.safetensors" in res.output


def test_evaluate_refuses_a_model_that_is_not_a_bundle_before_importing_torch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "model.pt").write_bytes(pickle.dumps({"state_dict": {}}))
    code = ("import sys\nfrom geop2p.cli import cli\n"
            "try:\n    cli(sys.argv[1:], prog_name='geop2p')\n"
            "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n")
    res = subprocess.run([sys.executable, "-c", code, "evaluate", "model.pt", "chips"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["False", "1"], res.stdout + res.stderr
    assert "never unpickles" in res.stderr


def test_evaluate_cli_on_several_folders(bundle, chip_parts, tmp_path):
    out = tmp_path / "report.json"
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), str(chip_parts.a), str(chip_parts.b), "--split", "val",
                                   "--json", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"2 val chip(s) of {chip_parts.a}, {chip_parts.b}" in res.output
    doc = json.loads(out.read_text())
    assert [d["path"] for d in doc["datasets"]] == [str(chip_parts.a), str(chip_parts.b)]
    # the report may not go inside any of the folders
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), str(chip_parts.a), str(chip_parts.b), "--json",
                                   str(chip_parts.b / "report.json")])
    assert res.exit_code == 1 and "an input of this command" in res.output
    assert not (chip_parts.b / "report.json").exists()


def test_evaluate_cli_format_and_direction(pix2pix_folder, tmp_path):
    from geop2p.train import TrainConfig

    run = tmp_path / "run"
    train(pix2pix_folder, run, TrainConfig(generator="linear", d_ndf=4, d_layers=2, device="cpu", workers=0,
                                           batch_size=2, n_samples=0, max_steps=1, load_size=36, crop_size=32))
    base = ["evaluate", str(run / "model.safetensors"), str(pix2pix_folder), "--device", "cpu", "--format",
            "pix2pix-aligned"]
    res = CliRunner().invoke(cli, [*base, "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    pre = json.loads((tmp_path / "r.json").read_text())["preprocess"]
    assert (pre["direction"], pre["load_size"], pre["crop_size"], pre["crop"]) == ("AtoB", 36, 32, "centre")
    res = CliRunner().invoke(cli, [*base, "--direction", "BtoA"])
    assert res.exit_code == 1 and "was trained AtoB" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, [*base, "--direction", "sideways"])
    assert res.exit_code == 2 and "'sideways' is not one of 'AtoB', 'BtoA'" in res.output


def test_evaluate_refuses_a_bad_option_before_importing_torch(tmp_path, make_bundle_meta):
    import subprocess
    import sys

    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    meta = make_bundle_meta(["red", "green", "blue"], ["elevation"], chip_size=32, overlap=8)
    save_bundle(tmp_path / "model.safetensors", build_generator(
        {"architecture": "linear", "in_channels": 3, "out_channels": 1}), meta)
    code = ("import sys\nfrom geop2p.cli import cli\n"
            "try:\n    cli(sys.argv[1:], prog_name='geop2p')\n"
            "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n")
    res = subprocess.run([sys.executable, "-c", code, "evaluate", "model.safetensors", "chips", "--crop-size", "0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["False", "1"], res.stdout + res.stderr
    assert "crop_size: must be a whole number of pixels of at least 1, got 0" in res.stderr
