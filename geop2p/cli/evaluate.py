"""``geop2p evaluate MODEL CHIPS_DIR``: per-band metrics of a model next to a linear baseline."""

from __future__ import annotations

from pathlib import Path

import click

from geop2p.cli.options import device_option, overwrite_option

__all__ = ["command"]


@click.command("evaluate", context_settings={"show_default": True})
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("chips_dir", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", help="Chips to score.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--batch-size", type=int, default=8, help="Chips per forward pass.")
@device_option
@overwrite_option
@click.pass_context
def command(ctx: click.Context, model: Path, chips_dir: Path, split: str, json_out: Path | None, batch_size: int,
            device: str, overwrite: bool) -> None:
    """Score MODEL on a split of CHIPS_DIR: MAE/RMSE (data units), PSNR, SSIM per target band.

    The same metrics are shown for a per-pixel linear regression from the input
    bands to the target bands fitted on the train split, so you see at once
    whether the GAN beats the obvious.
    """
    from geop2p.io.bundle_file import read_bundle_header

    read_bundle_header(model)  # a file that is not a bundle is refused before torch is imported
    from geop2p.evaluate import check_report_path, evaluate

    if json_out is not None:
        check_report_path(json_out, overwrite, inputs=(model, chips_dir))
    report = evaluate(model, chips_dir, split=split, device=device, batch_size=batch_size)
    click.echo(report.format_table())
    if json_out is not None:
        report.write_json(json_out, overwrite=overwrite)
        click.echo(f"Wrote {json_out}")
