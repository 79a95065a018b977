"""``geop2p info PATH``: summarise a chip folder, a raster or a model bundle (a wrapper over :func:`geop2p.info.describe`)."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command("info")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(path: str, as_json: bool) -> None:
    """Summarise PATH: a chip folder (counts per split, bands, dtypes, CRS, stats), any raster, or a model bundle.

    \b
    Examples:
      geop2p info chips/
      geop2p info scene.tif --json
      geop2p info run/model.safetensors
    """
    from geop2p.formats import jsonsafe
    from geop2p.info import describe, format_description

    description = describe(path)
    click.echo(jsonsafe.dumps(description) if as_json else format_description(description))
