"""``geop2p train DATASET [DATASET ...] --out RUN_DIR``: fit a pix2pix model; a thin wrapper over
:func:`geop2p.train.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from geop2p.cli.options import overwrite_option
from geop2p.train.config import DATASET_FORMATS, DIRECTIONS

__all__ = ["command", "dataset_options"]


def dataset_options(command: Callable) -> Callable:
    """The ``--format`` and format options of ``train`` and ``evaluate`` (all default None: not set)."""
    options = [
        click.option("--format", "format_", type=click.Choice(DATASET_FORMATS), default=None,
                     help="Read every DATASET as this format instead of recognising each layout."),
        click.option("--direction", type=click.Choice(DIRECTIONS), default=None,
                     help="pix2pix aligned folders: translate A (left half) to B, or B to A [default: AtoB]."),
        click.option("--load-size", type=int, default=None,
                     help="pix2pix aligned folders: resize each half to this square first [default: 286]."),
        click.option("--crop-size", type=int, default=None,
                     help="pix2pix aligned folders: then crop this square, the chip size [default: 256]."),
        click.option("--val-percent", type=int, default=None,
                     help="Folders without a split (paired folders, ArcGIS tiles): percent of names hashed into "
                          "val [default: 10]."),
        click.option("--test-percent", type=int, default=None,
                     help="Paired folders without a split: percent of names hashed into test [default: 10]."),
        click.option("--split-seed", type=int, default=None,
                     help="Paired folders without a split: seed of the name hash [default: 0]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("train", context_settings={"show_default": True})
@click.argument("datasets", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="DATASET...")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run folder to create.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML file of training options; flags given here override it.")
@click.option("--generator", type=click.Choice(["smp-unet", "pix2pix-unet", "linear"]), default=None,
              help="Generator architecture [default: smp-unet].")
@click.option("--encoder", default=None, help="smp encoder of the U-Net, e.g. resnet34, mobilenet_v2 [default: resnet34].")
@click.option("--encoder-weights", default=None,
              help="none, imagenet (downloads; needs internet) or a local .safetensors/.pt file [default: none].")
@click.option("--epochs", type=int, default=None, help="Epochs at constant learning rate [default: 10].")
@click.option("--decay-epochs", type=int, default=None, help="Further epochs of linear decay to 0 [default: 10].")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (short runs).")
@click.option("--batch-size", type=int, default=None, help="Chips per step and process [default: 8].")
@click.option("--lr", type=float, default=None, help="Adam learning rate [default: 2e-4].")
@click.option("--lambda-l1", type=float, default=None, help="Weight of the masked L1 loss [default: 100].")
@click.option("--gan-mode", type=click.Choice(["vanilla", "lsgan", "hinge"]), default=None,
              help="Adversarial loss [default: vanilla].")
@click.option("--d-layers", type=int, default=None, help="PatchGAN layers; 3 = 70x70 patches [default: 3].")
@click.option("--d-norm", type=click.Choice(["instance", "batch", "none"]), default=None,
              help="Discriminator normalisation [default: instance].")
@click.option("--spectral-norm/--no-spectral-norm", default=None, help="Spectral norm in the discriminator.")
@click.option("--no-augment", is_flag=True, default=False, help="Turn off flips and 90-degree rotations.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where to train; auto picks CUDA when available [default: auto].")
@click.option("--compile", "compile_", is_flag=True, default=None, help="Wrap the generator in torch.compile.")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes [default: 2].")
@click.option("--best-metric", type=click.Choice(["val_mae", "val_rmse", "val_psnr", "val_ssim", "val_l1"]),
              default=None, help="Metric choosing the bundled epoch [default: val_mae].")
@click.option("--seed", type=int, default=None, help="Seed of weights, data order and augmentation [default: 0].")
@dataset_options
@click.option("--resume", is_flag=True, default=False, help="Continue RUN_DIR from checkpoints/last.pt.")
@overwrite_option
@click.pass_context
def command(ctx: click.Context, datasets: tuple[Path, ...], out_dir: Path, config_path: Path | None, resume: bool,
            overwrite: bool, no_augment: bool, compile_: bool | None, format_: str | None, **flags) -> None:
    """Train a pix2pix model on one DATASET folder or several trained on as one.

    \b
    A DATASET is the output of export-chips, an ArcGIS Export Tiles folder,
    paired folders (A/ and B/ of rasters) or a pix2pix aligned folder
    (train/, val/, test/ of A|B images); several must have the same bands.
    Writes RUN_DIR/model.safetensors (best epoch), config.yaml, metrics.csv,
    samples/, checkpoints/last.pt. Under torchrun the same command runs
    DistributedDataParallel:
      torchrun --nproc_per_node 4 -m geop2p train chips/ --out run/
      geop2p train chips_2023/ chips_2024/ --out run/
      geop2p train maps/ --direction BtoA --out run/
    """
    from geop2p.io.run_folder import RunFolder
    from geop2p.train.config import TrainConfig
    from geop2p.train.outputs import check_run_folder

    if config_path is not None:
        config = TrainConfig.from_yaml(config_path)
    elif resume and (out_dir / "config.yaml").is_file():
        config = TrainConfig.from_yaml(out_dir / "config.yaml")
    else:
        config = TrainConfig()
    overrides = dict(flags)
    overrides["compile"] = compile_
    overrides["format"] = format_
    if no_augment:
        overrides["augment"] = False
    config = config.merge(overrides)
    # the checks that need no torch first, so that a bad option or --out is one line at once
    check_run_folder(RunFolder(out_dir), datasets, resume, overwrite)
    from geop2p.train import train  # imports torch

    show = bool(ctx.obj and ctx.obj.get("progress"))
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(unit="step", dynamic_ncols=True, desc="train")

    def progress(p) -> None:
        if bar is None:
            return
        bar.total = p.total_steps
        bar.n = p.step
        bar.set_postfix(epoch=p.epoch, G=f"{p.losses['g_gan']:.3f}", L1=f"{p.losses['g_l1']:.4f}",
                        D=f"{p.losses['d']:.3f}", img_s=f"{p.img_per_s:.1f}", refresh=False)
        bar.refresh()

    try:
        result = train(list(datasets), out_dir, config, resume=resume, overwrite=overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    metric = config.best_metric
    value = result.metrics.get(metric)
    click.echo(f"Wrote {result.bundle_path} (best epoch {result.best_epoch}, {metric} = {value:.4g}, "
               f"{result.steps} steps)" if value is not None else f"Wrote {result.bundle_path}")
