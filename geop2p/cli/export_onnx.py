"""``geop2p export-onnx MODEL -o model.onnx``: a self-contained ONNX model for QGIS (Deepness)."""

from __future__ import annotations

import click

from geop2p.cli.options import overwrite_option

__all__ = ["command"]


@click.command("export-onnx")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The .onnx file to write.",
)
@click.option(
    "--tile-size",
    type=int,
    default=None,
    help="Side of the fixed square input in pixels [default: the model's chip size].",
)
@click.option(
    "--overlap",
    type=int,
    default=None,
    help="Overlap between tiles in pixels, stored as Deepness's percentage [default: the model's recommended overlap].",
)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset version.")
@click.option(
    "--resolution",
    "resolution_m",
    type=float,
    default=None,
    help="Pixel size the model was trained at, in metres (Deepness resamples the layer to it).",
)
@click.option(
    "--raw-input",
    is_flag=True,
    default=False,
    help="The graph takes raw pixel values instead of values divided by 255 (for consumers other than Deepness).",
)
@overwrite_option
def command(
    model: str,
    output: str,
    tile_size: int | None,
    overlap: int | None,
    opset: int,
    resolution_m: float | None,
    raw_input: bool,
    overwrite: bool,
) -> None:
    """Export MODEL (a geop2p .safetensors bundle) to ONNX with normalisation inside the graph.

    The result loads in the Deepness QGIS plugin as a Regressor with no Python
    set-up: tile size, overlap, resolution and output band names travel in its
    metadata.

    \b
    Example:
      geop2p export-onnx run/model.safetensors -o model.onnx --resolution 30
    """
    from geop2p.onnx_export import DEEPNESS_INPUT_SCALE, OnnxExportConfig, export_onnx

    config = OnnxExportConfig(
        tile_size=tile_size,
        overlap=overlap,
        opset=opset,
        input_scale=1.0 if raw_input else DEEPNESS_INPUT_SCALE,
        resolution_m=resolution_m,
    )
    result = export_onnx(model, output, config, overwrite=overwrite)
    md = result.metadata
    click.echo(
        f"Wrote {result.path}: input {list(result.input_shape)} (raw / {config.input_scale:g}), "
        f"output {list(result.output_shape)} in target units; "
        f"Deepness {md['model_type']}, tiles {md['tiles_size']} px, overlap {md['tiles_overlap']} %"
        + (f", resolution {md['resolution'] / 100:g} m." if "resolution" in md else ", no resolution recorded.")
    )
