"""``export_onnx``: a geop2p bundle as a self-contained ONNX model for Deepness (or any ONNX runtime).

See :mod:`geop2p.onnx_export` for what the graph holds and why.

Example:
    >>> from geop2p.onnx_export import export_onnx
    >>> result = export_onnx("run/model.safetensors", "model.onnx")  # doctest: +SKIP
    >>> result.metadata["model_type"], result.output_names  # doctest: +SKIP
    ('Regressor', ('red', 'green', 'blue'))
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from geop2p import __version__
from geop2p.errors import InputError, MissingDependencyError, SizeMultipleError
from geop2p.formats import BundleHeader, jsonsafe
from geop2p.io.atomic import atomic_path, check_output_free
from geop2p.models import required_divisor
from geop2p.models.bundle import load_bundle
from geop2p.onnx_export.config import OnnxExportConfig
from geop2p.onnx_export.deepness import bundle_resolution, deepness_metadata, overlap_percent
from geop2p.onnx_export.encoding import BandCode, plan_band_codes
from geop2p.onnx_export.graph import DeepnessGraph, NormalizedGenerator
from geop2p.tiling import check_overlap

__all__ = ["ExportPlan", "OnnxExportResult", "export_onnx", "plan_export"]

logger = logging.getLogger(__name__)


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is installed in the dev environment
        raise MissingDependencyError(
            "ONNX export needs the 'onnx' package, which is not installed; "
            "install it with: pip install 'geop2p[onnx]'"
        ) from exc
    return onnx


@dataclass(frozen=True)
class OnnxExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        input_shape: ``(1, C_in, N, N)``.
        output_names: one per output (a byte plane, or the one float output).
        output_shapes: ``(1, 1, N, N)`` per plane (``(1, C_out, N, N)`` for ``float``).
        codes: how each target band is carried (:class:`~geop2p.onnx_export.encoding.BandCode`).
        overlap: the tile overlap in pixels Deepness will use after "Load default parameters".
        input_nodata: the raw values the graph treats as nodata (besides NaN).
        notes: the warnings about what Deepness cannot carry (also logged).
        metadata: the metadata properties as Python values (before JSON encoding).
    """

    path: Path
    input_shape: tuple[int, int, int, int]
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, int, int, int], ...]
    codes: tuple[BandCode, ...]
    overlap: int
    input_nodata: tuple[float, ...]
    notes: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def tile_size(self) -> int:
        """The fixed tile side in pixels."""
        return self.input_shape[-1]


@dataclass(frozen=True)
class ExportPlan:
    """Everything :func:`export_onnx` decides before tracing (no torch needed to make it).

    Attributes:
        tile: the fixed tile side in pixels.
        overlap: the overlap in pixels Deepness will use (even, a whole percentage of the tile).
        percent: the ``tiles_overlap`` percentage written.
        resolution_m: the pixel size in metres written as ``resolution``, or None.
        codes: one :class:`BandCode` per target band.
        input_nodata: raw values the graph treats as nodata (besides NaN).
        notes: what Deepness cannot carry, one sentence each (logged as warnings).
    """

    tile: int
    overlap: int
    percent: int
    resolution_m: float | None
    codes: tuple[BandCode, ...]
    input_nodata: tuple[float, ...]
    notes: tuple[str, ...]


def plan_export(header: BundleHeader, config: OnnxExportConfig = OnnxExportConfig()) -> ExportPlan:
    """Check a bundle's header against what Deepness 0.6.5 can carry and decide the export.

    Raises:
        SizeMultipleError: the tile size does not suit the generator.
        InputError: the overlap is odd or not from 0 to half the tile; ``byte`` asked for a band
            that leaves 0..255.
    """
    tile = int(config.tile_size) if config.tile_size is not None else header.chip_size
    divisor = int(required_divisor(header.generator))
    if tile % divisor:
        raise SizeMultipleError(tile, divisor, "--tile-size", "Tile size", f"which the {header.architecture} needs")
    wanted = config.overlap if config.overlap is not None else header.recommended_overlap
    wanted = check_overlap(wanted, tile, "--overlap")
    percent, overlap = overlap_percent(tile, wanted)
    notes: list[str] = []
    if overlap != wanted:
        notes.append(
            f"no whole percentage of the {tile} px tile gives {wanted} px of overlap in Deepness; tiles_overlap is "
            f"{percent} % = {overlap} px (choose \"[px]\" and type {wanted} for exactly {wanted} px)."
        )
    target = header.target
    codes, code_notes = plan_band_codes(
        target.band_names, target.normalizer.offset, target.normalizer.scale, target.dtype, target.nodata,
        config.encoding,
    )
    notes += code_notes
    if codes[0].kind == "float":
        notes.append(
            "--deepness-encoding float writes one float output for ONNX runtimes other than Deepness; Deepness "
            "keeps only its first channel and truncates it to a byte."
        )
    if config.input_scale != 255.0:
        notes.append(f"input_scale {config.input_scale:g}: the graph expects raw values, not Deepness's value / 255.")
    nodata = config.input_nodata
    if nodata is None:
        nd = header.input.nodata
        nodata = () if nd is None or math.isnan(nd) else (float(nd),)
    nodata = tuple(float(v) for v in nodata if not math.isnan(v))
    if not nodata:
        notes.append(
            "the graph knows no input nodata value (only NaN): Deepness pads tiles past the raster's top and right "
            "edges with 0 when the layer has no nodata, and the network takes that 0 as data; pass --input-nodata 0 "
            "if 0 is never valid, or give the layer a nodata value and pass it."
        )
    bands = header.input.source_bands
    if tuple(bands) != tuple(range(1, header.in_channels + 1)):
        notes.append(
            f"the model reads scene band(s) {list(bands)} ({', '.join(header.input.band_names)}); Deepness feeds "
            f"bands 1..{header.in_channels} unless you choose \"Advanced\" under Input channels mapping and pick them."
        )
    if header.in_channels == 1 and np.dtype(header.input.dtype) == np.float64:
        notes.append("Deepness refuses single-band Float64 layers (\"Invalid input layer data type!\"); save the "
                     "layer as Float32 first.")
    resolution = config.resolution_m if config.resolution_m is not None else bundle_resolution(header)
    if resolution is None:
        notes.append(
            "the bundle records no pixel size in metres, so the ONNX metadata has no 'resolution' and Deepness keeps "
            "3 cm/px; pass --resolution METRES (the training pixel size), or type the raster's pixel size in cm in "
            "\"Resolution [cm/px]:\"."
        )
    elif round(resolution * 100, 2) != round(resolution * 100, 6):
        notes.append(
            f"Deepness's \"Resolution [cm/px]:\" box keeps 2 decimals: {resolution * 100:g} cm/px becomes "
            f"{round(resolution * 100, 2):g}, and a layer at another pixel size is resampled (bilinear)."
        )
    return ExportPlan(tile, overlap, percent, resolution, codes, nodata, tuple(notes))


def export_onnx(
    model_path: str | os.PathLike,
    out_path: str | os.PathLike,
    config: OnnxExportConfig = OnnxExportConfig(),
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> OnnxExportResult:
    """Export the bundle at ``model_path`` as a self-contained ONNX model at ``out_path``.

    Everything is checked (bundle readable, tile size, overlap, encoding, output free)
    before the file is written; the file appears whole or not at all. What Deepness
    cannot carry is logged as a warning and listed in ``result.notes``.

    Args:
        model_path: a geop2p model bundle (``.safetensors``).
        out_path: the ``.onnx`` file to write.
        config: tile size, overlap, opset, input scale, resolution, encoding, input nodata.
        overwrite: replace an existing ``out_path``.
        progress: called with a short message at each stage (load, export, metadata, check).

    Raises:
        BundleError: the model is missing, not a bundle, or a pickle.
        SizeMultipleError: the tile size does not suit the generator.
        InputError: the overlap is odd or not from 0 to half the tile; a band cannot be carried by
            the encoding asked for; ``out_path`` is a folder.
        OutputExistsError: ``out_path`` exists and ``overwrite`` is False.
        MissingDependencyError: the ``onnx`` package is missing.

    Example:
        >>> export_onnx("run/model.safetensors", "model.onnx", OnnxExportConfig(tile_size=256))  # doctest: +SKIP
    """
    say = progress or (lambda message: None)
    onnx = _require_onnx()
    out = Path(out_path)
    if out.is_dir():
        raise InputError(f"Output '{out}' is a folder; give the .onnx file to write, e.g. {out / 'model.onnx'}.")
    check_output_free(out, overwrite)
    if out.suffix.lower() != ".onnx":
        logger.warning("Output '%s' does not end in .onnx; QGIS/Deepness look for .onnx files.", out)

    say("loading the bundle")
    generator, header = load_bundle(model_path, device="cpu")
    generator = generator.eval().cpu().float()
    plan = plan_export(header, config)
    for note in plan.notes:
        logger.warning("Deepness: %s", note)
    tile = plan.tile
    in_norm, out_norm = header.input.normalizer, header.target.normalizer
    n_in, n_out = in_norm.n_bands, out_norm.n_bands
    core = NormalizedGenerator(generator, in_norm, out_norm, config.input_scale, plan.input_nodata)
    graph = DeepnessGraph(core, plan.codes).eval()
    if plan.codes[0].kind == "float":
        names: tuple[str, ...] = ("output",)
        shapes: tuple[tuple[int, int, int, int], ...] = ((1, n_out, tile, tile),)
    else:
        names = tuple(p for c in plan.codes for p in c.planes)
        shapes = tuple((1, 1, tile, tile) for _ in names)

    say("tracing the graph")
    dummy = torch.rand(1, n_in, tile, tile)
    buffer = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo, which traces smp encoders less reliably
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            (dummy,),
            buffer,
            input_names=["input"],
            output_names=list(names),
            opset_version=int(config.opset),
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())

    say("writing metadata")
    metadata = deepness_metadata(
        header, tile, plan.overlap, plan.resolution_m, config.input_scale, plan.codes, plan.input_nodata
    )
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = jsonsafe.dumps(value, indent=None)
    model.producer_name = "geop2p"
    model.producer_version = __version__
    model.doc_string = (
        f"geop2p pix2pix generator {header.architecture}: {n_in} input band(s) -> {n_out} target band(s) as "
        f"{len(names)} output(s) ({plan.codes[0].kind}); input = raw / {config.input_scale:g}."
    )

    say("checking and saving")
    onnx.checker.check_model(model)
    with atomic_path(out, overwrite=overwrite) as tmp:
        onnx.save(model, str(tmp))
    logger.info("Wrote %s (%d→%d bands as %d outputs, %d px tiles, %d px overlap)", out, n_in, n_out, len(names),
                tile, plan.overlap)
    return OnnxExportResult(
        out, (1, n_in, tile, tile), names, shapes, plan.codes, plan.overlap, plan.input_nodata, plan.notes, metadata
    )
