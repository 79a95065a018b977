"""``geop2p export-onnx MODEL -o model.onnx``: a self-contained ONNX model for QGIS (Deepness)."""

from __future__ import annotations

import click

from geop2p.cli.options import FloatList, overwrite_option

__all__ = ["command", "describe"]


def describe(result) -> str:
    """What ``export-onnx`` prints: the export, the Deepness steps, the decoding expressions, the stacking."""
    md = result.metadata
    codes = result.codes
    kind = codes[0].kind
    scale = md["geop2p"]["input_scale"]
    res = f"resolution {md['resolution'] / 100:g} m" if "resolution" in md else "no resolution recorded"
    lines = [
        f"Wrote {result.path}: input {list(result.input_shape)} (raw / {scale:g}), "
        f"{len(result.output_names)} output(s) ({kind}: {', '.join(result.output_names)}); "
        f"Deepness {md['model_type']}, tiles {md['tile_size']} px, overlap {md['tiles_overlap']} % "
        f"({result.overlap} px), {res}."
    ]
    if kind == "float":
        lines.append("One float32 output in the target's units, for ONNX runtimes other than Deepness.")
        return "\n".join(lines)
    nodata = ", ".join(f"{v:g}" for v in result.input_nodata) or "none but NaN"
    lines += [
        'In Deepness: "Browse..." to this file, then press "Load default parameters" (without it Deepness uses '
        '3 cm/px and 15 % overlap), "Processed area mask: Entire layer", "Run".',
        f"Input nodata handled inside the graph: {nodata} (the layer's nodata must be one of these).",
        'Decode each band with Raster > Raster Calculator... (Deepness adds the layers '
        f"{', '.join(result.output_names)} in the group \"model_output\"):",
    ]
    width = max(len(c.band) for c in codes)
    for code in codes:
        error = f"  (error <= {code.max_error:.3g})" if code.max_error else ""
        lines.append(f"  {code.band:<{width}}  {code.expression()}{error}")
    if kind == "split16":
        lines.append("Code 0 (hi = lo = 0) is nodata: an invalid input pixel; the expressions write nodata there.")
    else:
        marked = [c for c in codes if c.nodata is not None]
        if marked:
            lines.append(f"{marked[0].nodata:g} is nodata (an invalid input pixel); the expressions write nodata there.")
    lines.append(
        'Stack the bands: Raster > Miscellaneous > Build Virtual Raster..., tick "Place each input file into a '
        'separate band" (or Raster > Miscellaneous > Merge..., same option), inputs in the order above.'
    )
    return "\n".join(lines)


@click.command("export-onnx")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=str), help="The .onnx file to write.")
@click.option(
    "--tile-size",
    type=int,
    default=None,
    help="Side of the fixed square input in pixels, a multiple of the network's divisor [default: the model's chip size].",
)
@click.option(
    "--overlap",
    type=int,
    default=None,
    help="Overlap between Deepness tiles in pixels (even), stored as its whole percentage "
    "[default: the model's recommended overlap].",
)
@click.option(
    "--deepness-encoding",
    "encoding",
    type=click.Choice(["auto", "byte", "split16", "float"]),
    default="auto",
    show_default=True,
    help="How target bands leave the graph (Deepness keeps one byte per output): byte = one whole-number 0..255 "
    "output per band; split16 = a 16-bit code per band as two byte outputs, code 0 = nodata; auto = byte for "
    "uint8 targets, split16 otherwise; float = one float output for other ONNX runtimes.",
)
@click.option(
    "--input-nodata",
    "input_nodata",
    type=FloatList(),
    default=None,
    help="Raw input values the graph treats as nodata, comma-separated (NaN always is) [default: the model's "
    "input nodata]. Add 0 when the layers have no nodata: Deepness pads past the edges with 0.",
)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset version (11 or later).")
@click.option(
    "--resolution",
    "resolution_m",
    type=float,
    default=None,
    help="Pixel size the model was trained at, in metres [default: the model's, when its CRS is in metres].",
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
    encoding: str,
    input_nodata: list[float] | None,
    opset: int,
    resolution_m: float | None,
    raw_input: bool,
    overwrite: bool,
) -> None:
    """Export MODEL (a geop2p .safetensors bundle) to ONNX with normalisation and nodata inside the graph.

    The result loads in the Deepness QGIS plugin (0.6.5) as a Regressor: one
    output per byte plane, because Deepness keeps channel 0 of each output in
    a uint8 buffer. A uint8 target gets one exact output per band; any other
    target two per band (a 16-bit code over the band's range, code 0 = nodata),
    decoded with the Raster Calculator expressions this command prints.

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
        encoding=encoding,
        input_nodata=tuple(input_nodata) if input_nodata is not None else None,
    )
    result = export_onnx(model, output, config, overwrite=overwrite)
    click.echo(describe(result))
