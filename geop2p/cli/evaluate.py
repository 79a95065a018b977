"""``geop2p evaluate MODEL DATASET [DATASET ...]``: per-band metrics of a model next to a linear baseline."""

from __future__ import annotations

from pathlib import Path

import click

from geop2p.cli.options import device_option, overwrite_option
from geop2p.cli.train import dataset_options

__all__ = ["command"]


@click.command("evaluate", context_settings={"show_default": True})
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("datasets", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="DATASET...")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", help="Chips to score.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--batch-size", type=int, default=8, help="Chips per forward pass.")
@device_option
@dataset_options
@overwrite_option
@click.pass_context
def command(ctx: click.Context, model: Path, datasets: tuple[Path, ...], split: str, json_out: Path | None,
            batch_size: int, device: str, overwrite: bool, format_: str | None, **options) -> None:
    """Score MODEL on a split of one DATASET folder or several: MAE/RMSE (data units), PSNR, SSIM per target band.

    The same metrics are shown for a per-pixel linear regression from the input
    bands to the target bands fitted on the train split, so you see at once
    whether the GAN beats the obvious. A pix2pix aligned DATASET is read with
    the model's own direction, load size and crop size unless given here.
    """
    from geop2p.io.bundle_file import read_bundle_header
    from geop2p.train.config import check_dataset_options

    read_bundle_header(model)  # a file that is not a bundle is refused before torch is imported
    check_dataset_options(format_, **options)  # and so is a bad option value
    from geop2p.evaluate import check_report_path, evaluate

    if json_out is not None:
        check_report_path(json_out, overwrite, inputs=(model, *datasets))
    report = evaluate(model, list(datasets), split=split, device=device, batch_size=batch_size, format=format_,
                      **options)
    click.echo(report.format_table())
    if json_out is not None:
        report.write_json(json_out, overwrite=overwrite)
        click.echo(f"Wrote {json_out}")
