"""``geop2p export-chips INPUT TARGET OUT_DIR``: a thin wrapper over :func:`geop2p.export.export_chips`."""

from __future__ import annotations

import click

from geop2p.cli.options import FloatList, IntList, overwrite_option
from geop2p.io.compression import COMPRESSIONS

__all__ = ["command"]


class SplitParam(click.ParamType):
    """``0.8,0.1,0.1`` (spatial blocks), ``random`` or ``random:0.7,0.2,0.1``."""

    name = "split"

    def convert(self, value, param, ctx):  # noqa: D102
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        mode = "blocks"
        if text.startswith("random"):
            mode, text = "random", text[len("random") :].lstrip(":")
        fractions = FloatList().convert(text, param, ctx) if text else [0.8, 0.1, 0.1]
        return (mode, tuple(fractions))


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


@click.command("export-chips")
@click.argument("input", metavar="INPUT")
@click.argument("target", metavar="TARGET")
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options (e.g. a previous export-config.yaml); flags override it.")
@click.option("--input-bands", type=IntList(), help="1-based bands of the (stacked) INPUT, e.g. 1,2,3. Default: all.")
@click.option("--target-bands", type=IntList(), help="1-based bands of the (stacked) TARGET, e.g. 4. Default: all.")
@click.option("--size", type=int, default=256, show_default=True, help="Chip size in pixels (a multiple of 32).")
@click.option("--stride", type=int, help="Step between chips in pixels. Default: --size (no overlap).")
@click.option("--min-valid", type=float, default=0.95, show_default=True, help="Keep chips with at least this fraction of pixels valid in both rasters.")
@click.option("--resampling", help="Resampling of the target onto the input grid (nearest, bilinear, cubic, average, mode...). Default: nearest for colour-table targets, else bilinear.")
@click.option("--aoi", type=click.Path(dir_okay=False), help="Vector file of the area of interest (any format geopandas reads).")
@click.option("--aoi-mode", type=click.Choice(["within", "intersects"]), default="within", show_default=True, help="Keep chips inside the AOI, or touching it.")
@click.option("--split", "split", type=SplitParam(), default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions by spatial blocks; 'random' or 'random:0.7,0.2,0.1' for a (leaky) per-chip split.")
@click.option("--block-size", type=int, default=1024, show_default=True, help="Spatial block size of the split, in pixels.")
@click.option("--buffer", type=int, help="Min. distance in pixels between val/test and train chips. Default: --size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--compress", type=click.Choice(COMPRESSIONS), default="deflate", show_default=True, help="Chip compression.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the planned chips per split; write nothing.")
@overwrite_option
@click.option("--resume", is_flag=True, help="Finish an interrupted export in OUT_DIR (same options), keeping complete chips.")
@click.option("--progress/--no-progress", default=None, help="Draw a progress bar (default: when stderr is a terminal).")
@click.pass_context
def command(ctx: click.Context, input: str, target: str, out_dir: str, config_file: str | None, dry_run: bool,
            overwrite: bool, resume: bool, progress: bool | None, **options) -> None:
    """Cut aligned INPUT/TARGET chip pairs into OUT_DIR, split into train/val/test.

    INPUT and TARGET are a raster path or several joined by commas (their bands
    are stacked in order).  The target is reprojected onto the input grid when
    needs be.  OUT_DIR gets geop2p-chips.json, index.gpkg, input/ and target/.

    \b
    Examples:
      geop2p export-chips s1.tif s2.tif chips/ --size 256 --workers 4
      geop2p export-chips stack.tif stack.tif chips/ --input-bands 4 --target-bands 1,2,3
      geop2p export-chips vv.tif,vh.tif optical.tif chips/ --aoi fields.gpkg --split 0.7,0.15,0.15
    """
    from geop2p.export import ExportConfig, check_export, export_chips

    mode, fractions = options.pop("split")
    values = dict(options, split=fractions, split_mode=mode)
    if config_file:
        base = ExportConfig.read_yaml(config_file)
        explicit = {k: v for k, v in values.items() if _given(ctx, "split" if k == "split_mode" else k)}
        values = {**base, **explicit}
    config = ExportConfig.from_dict({k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()})
    if dry_run:
        plan = check_export(input, target, out_dir, config, overwrite=overwrite, resume=resume)
        counts = plan.planned_counts()
        click.echo(
            f"{len(plan.tasks)} chips of {config.size} px planned ("
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f"), target alignment: {plan.alignment.mode} ({plan.alignment.resampling}); "
            f"{plan.splits.count(None)} dropped by the split buffer, {plan.outside_aoi} outside the AOI."
        )
        return
    show = ctx.obj.get("progress", False) if progress is None and ctx.obj else bool(progress)
    bar = None
    callback = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="chip", desc="export-chips", leave=False)

        def callback(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    try:
        summary = export_chips(input, target, out_dir, config, overwrite=overwrite, resume=resume, progress=callback)
    finally:
        if bar is not None:
            bar.close()
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    extra = f" ({summary.reused} kept from before)" if summary.reused else ""
    click.echo(f"{summary.total} chips ({counts}) in {summary.out_dir}{extra}; "
               f"skipped {summary.low_valid} below --min-valid, {summary.dropped_buffer} in the split buffer.")
