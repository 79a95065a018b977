"""`geop2p train` through click's CliRunner."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from geop2p.cli import cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY_YAML = "generator: pix2pix-unet\ngenerator_params: {ngf: 8, num_downs: 6}\nd_ndf: 8\nd_layers: 2\n" \
            "workers: 0\nn_samples: 1\n"


@pytest.fixture
def tiny_yaml(tmp_path):
    p = tmp_path / "train.yaml"
    p.write_text(TINY_YAML)
    return p


def test_train_cli_full_run(chip_folder_ro, tmp_path, tiny_yaml):
    run = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(run), "--config", str(tiny_yaml),
                                   "--epochs", "1", "--decay-epochs", "1", "--batch-size", "4", "--device", "cpu",
                                   "--gan-mode", "lsgan", "--no-augment", "--best-metric", "val_ssim"])
    assert res.exit_code == 0, res.output
    assert "model.safetensors" in res.output and "val_ssim" in res.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    # flags override the YAML, the YAML overrides defaults
    assert (saved["gan_mode"], saved["augment"], saved["batch_size"], saved["d_ndf"], saved["best_metric"]) == (
        "lsgan", False, 4, 8, "val_ssim")
    # refuses to overwrite, then resumes with the run's own config.yaml
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(run)])
    assert res.exit_code == 1 and "--overwrite" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(run), "--resume", "--epochs", "1",
                                   "--decay-epochs", "1"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gan-mode", "wgan"], "'wgan' is not one of 'vanilla', 'lsgan', 'hinge'"),
        (["--batch-size", "0"], "batch_size: must be at least 1"),
        (["--device", "tpu"], "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
        (["--resume", "--overwrite"], "exclude each other"),
        (["--resume"], "Nothing to resume"),
        (["--encoder-weights", "weights/enc.pth"], "applies only to --generator smp-unet"),
    ],
)
def test_train_cli_bad_options(chip_folder_ro, tmp_path, tiny_yaml, args, message):
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(tmp_path / "run"),
                                   "--config", str(tiny_yaml), *args])
    assert res.exit_code != 0
    assert message in res.output
    assert not (tmp_path / "run").exists()


def test_train_cli_bad_config_and_folder(tmp_path, tiny_yaml, chip_folder_ro):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(tmp_path / "run"), "--config", str(bad)])
    assert res.exit_code == 1 and "learning_rate" in res.output and "valid training options:" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(cli, ["train", str(empty), "--out", str(tmp_path / "run"), "--config", str(tiny_yaml)])
    assert res.exit_code == 1 and "ArcGIS Export Tiles" in res.output
    assert not (tmp_path / "run").exists()


def test_train_cli_on_arcgis_tiles(arcgis_tiles, tmp_path, tiny_yaml):
    res = CliRunner().invoke(cli, ["train", str(arcgis_tiles), "--out", str(tmp_path / "run"), "--config",
                                   str(tiny_yaml), "--max-steps", "2", "--batch-size", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "seed: must be a whole number"),
    (["--load-size", "0"], "load_size: must be a whole number of pixels of at least 1, got 0"),
    (["--load-size", "200", "--crop-size", "256"], "crop_size: 256 is larger than load_size 200"),
    (["--val-percent", "60", "--test-percent", "40"], "val_percent + test_percent must leave some train pairs"),
    (["--out", "thesis.docx"], "is a file"),
    (["--out", "photos", "--overwrite"], "'photos' holds 'cat.jpg', which geop2p did not write"),
])
def test_train_refuses_options_and_out_before_importing_torch(tmp_path, args, message):
    """The checks that need no torch run first, so such a command is refused at once."""
    import subprocess
    import sys

    (tmp_path / "thesis.docx").write_text("mine")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_text("a cat")
    code = ("import sys\nfrom geop2p.cli import cli\n"
            "try:\n    cli(sys.argv[1:], prog_name='geop2p')\n"
            "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n")
    res = subprocess.run([sys.executable, "-c", code, "train", "chips", "--out", "run", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["False", "1"], res.stdout + res.stderr
    assert message in res.stderr


def test_train_cli_on_several_folders(chip_parts, tmp_path, tiny_yaml, monkeypatch):
    from geop2p.io.bundle_file import read_bundle_header

    monkeypatch.chdir(chip_parts.a.parent)  # relative paths, as a user types them
    run = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", "a", "b", "--out", str(run), "--config", str(tiny_yaml), "--max-steps",
                                   "1", "--batch-size", "4", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert read_bundle_header(run / "model.safetensors").training["datasets"] == [
        {"path": str(chip_parts.a.resolve()), "format": "geop2p-chips"},
        {"path": str(chip_parts.b.resolve()), "format": "geop2p-chips"}]  # recorded absolute
    # --resume on one of the two is refused (the union is what the run trained on)
    res = CliRunner().invoke(cli, ["train", "a", "--out", str(run), "--resume"])
    assert res.exit_code == 1 and "these are not the chips the run started on" in res.output


def test_train_cli_format_and_pix2pix_options(pix2pix_folder, tmp_path):
    from geop2p.io.bundle_file import read_bundle_header

    run = tmp_path / "run"
    args = ["train", str(pix2pix_folder), "--out", str(run), "--generator", "linear", "--d-layers", "2",
            "--workers", "0", "--max-steps", "2", "--batch-size", "2", "--device", "cpu", "--format", "pix2pix-aligned",
            "--direction", "BtoA", "--load-size", "36", "--crop-size", "32"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["format"], saved["direction"], saved["load_size"], saved["crop_size"], saved["val_percent"]) == (
        "pix2pix-aligned", "BtoA", 36, 32, None)
    pre = read_bundle_header(run / "model.safetensors").training["preprocess"]
    assert (pre["direction"], pre["load_size"], pre["crop_size"]) == ("BtoA", 36, 32)
    # resume reads them back from config.yaml; changing one is refused
    res = CliRunner().invoke(cli, ["train", str(pix2pix_folder), "--out", str(run), "--resume", "--max-steps", "3"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["train", str(pix2pix_folder), "--out", str(run), "--resume", "--max-steps", "4",
                                   "--direction", "AtoB"])
    assert res.exit_code == 1 and "direction: checkpoint 'BtoA' vs now 'AtoB'" in res.output


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "Missing argument 'DATASET...'"),
    (["chips", "--format", "tiles"], 2, "'tiles' is not one of 'geop2p-chips', 'arcgis-tiles', 'paired-folders', "
                                        "'pix2pix-aligned'"),
    (["chips", "--direction", "A2B"], 2, "'A2B' is not one of 'AtoB', 'BtoA'"),
])
def test_train_cli_dataset_usage_errors(tmp_path, args, code, message):
    res = CliRunner().invoke(cli, ["train", *args, "--out", str(tmp_path / "run")])
    assert res.exit_code == code and message in res.output, res.output
    assert not (tmp_path / "run").exists()


def test_train_cli_an_option_no_folder_takes(chip_folder_ro, tmp_path, tiny_yaml):
    res = CliRunner().invoke(cli, ["train", str(chip_folder_ro), "--out", str(tmp_path / "run"), "--config",
                                   str(tiny_yaml), "--crop-size", "64"])
    assert res.exit_code == 1 and "'crop_size' applies to pix2pix-aligned folders only" in res.output
    assert not (tmp_path / "run").exists()
