"""``geop2p demo [--out DIR]``: the whole journey on a synthetic scene, no data and no network needed."""

from __future__ import annotations

import click

from geop2p.cli.options import overwrite_option

__all__ = ["command"]


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=str),
    default="demo-output",
    show_default=True,
    help="Folder for the scene, chips, run, prediction, preview.png and metrics.json.",
)
@overwrite_option
@click.option("--quick", is_flag=True, default=False, help="Tiny settings (a smoke test in well under a minute).")
def command(out_dir: str, overwrite: bool, quick: bool) -> None:
    """Build a synthetic DEM → imagery scene, then export chips, train, predict and evaluate.

    Takes about five minutes on two CPU cores (less on a GPU). At the end it
    prints the test-split metrics of the model next to a per-pixel linear
    baseline and writes preview.png (DEM | prediction | target).

    \b
    Example:
      geop2p demo --out demo-output
    """
    from geop2p.demo import run_demo

    result = run_demo(out_dir, overwrite=overwrite, quick=quick, progress=lambda line: click.echo(line, err=True))
    click.echo(result.summary())
