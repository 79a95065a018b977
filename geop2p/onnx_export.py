"""Export a geop2p model bundle to ONNX for the Deepness QGIS plugin (or any ONNX runtime).

The exported graph is self-contained: it takes pixel values and returns the
prediction in the target's own units (metres, reflectance, DN...), with the
bundle's normalisation and de-normalisation *inside* the graph::

    input (1, C_in, N, N) float32  = raw pixel value / input_scale
      → raw = input * input_scale
      → z   = clip((raw - in_offset) / in_scale, -1, 1)      (the bundle's input Normalizer)
      → y   = generator(z)                                   (tanh, in [-1, 1])
      → out = y * out_scale + out_offset                     (the bundle's target Normalizer, inverted)
    output (1, C_out, N, N) float32 in target units

The input is a fixed square tile (``N`` = the bundle's chip size unless
``tile_size`` says otherwise, a multiple of the generator's divisor) with
batch 1: older Deepness versions refuse any other batch size.

**What Deepness feeds the network** (``deepness/processing/models/model_base.py``
and ``preprocessing_utils.py``): it reads the layer's pixel values, divides them
by 255 (``normalize_values_to_01``), then standardises with the
``standardization_mean``/``standardization_std`` metadata (identity when
absent), and transposes to NCHW.  So the default ``input_scale = 255`` undoes
exactly that division, and the metadata sets standardisation to the identity
(mean 0, std 1) so nothing else is applied: the graph sees the raw values it
was trained on, whatever the layer's dtype (uint8 RGB, float32 DEM, uint16
reflectance...).  For other consumers that feed raw values, use
``input_scale=1``.

**Why ``model_type = "Regressor"``**: Deepness has Segmentor (argmax over
class channels → categories), Detector (boxes), Recognition (embeddings),
Superresolution (output grid ``scale_factor`` times finer than the input) and
Regressor ("a metric per pixel").  A pix2pix translation is a per-pixel
continuous value on the *same* grid as the input, which is what Regressor does:
each output channel becomes a float32 layer named from ``class_names``
(here the target band names), tiles are stitched by their centres and
``reg_output_scaling`` (written as 1.0) multiplies the output.  Superresolution
with scale 1 would also run, but it is meant for upsampling and its stitching
ignores the overlap margins.  Limits of Deepness, not of this file: it writes
one single-band layer per output band (an RGB prediction becomes three layers;
merge them with *Raster → Miscellaneous → Merge* or ``gdalbuildvrt -separate``)
and it does not apply the input's nodata mask.

Metadata written (``model.metadata_props``, JSON-encoded values, as Deepness
parses them): ``model_type``, ``class_names``, ``resolution`` (centimetres per
pixel; Deepness resamples the layer to it), ``tiles_size`` (the name in
Deepness's documentation) and ``tile_size`` (the name its code reads),
``tiles_overlap`` (percent of the tile), ``standardization_mean``,
``standardization_std``, ``reg_output_scaling``, plus ``geop2p`` (the bundle's
metadata document with the graph's ``input_scale``) for provenance.

Example:
    >>> from geop2p.onnx_export import export_onnx
    >>> result = export_onnx("run/model.safetensors", "model.onnx")  # doctest: +SKIP
    >>> result.metadata["model_type"]  # doctest: +SKIP
    'Regressor'
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from geop2p import __version__
from geop2p.errors import ChipSizeError, InputError, MissingDependencyError, SizeMultipleError
from geop2p.formats import BundleHeader, jsonsafe
from geop2p.io.atomic import atomic_path, check_output_free
from geop2p.models import required_divisor
from geop2p.models.bundle import load_bundle
from geop2p.normalize import Normalizer
from geop2p.tiling import check_overlap

__all__ = [
    "DEEPNESS_MODEL_TYPE",
    "OnnxExportConfig",
    "OnnxExportResult",
    "MissingDependencyError",
    "NormalizedGenerator",
    "deepness_metadata",
    "export_onnx",
]

logger = logging.getLogger(__name__)

DEEPNESS_MODEL_TYPE = "Regressor"
#: Deepness divides layer values by this before feeding the network.
DEEPNESS_INPUT_SCALE = 255.0


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
class OnnxExportConfig:
    """Options of :func:`export_onnx`.

    Attributes:
        tile_size: side of the fixed square input in pixels; ``None`` = the bundle's chip size.
            Must be a multiple of the generator's divisor (32 for an smp U-Net).
        overlap: overlap between tiles in pixels, 0 to half the tile, written as Deepness's
            ``tiles_overlap`` percentage; ``None`` = the bundle's ``recommended_overlap``.
        opset: ONNX opset version.
        input_scale: the graph multiplies its input by this before normalising;
            255 matches Deepness (which divides pixel values by 255), 1 feeds raw values.
        resolution_m: pixel size the model was trained at, in metres (written in cm for
            Deepness); ``None`` = taken from the bundle if it records one, else left out.

    Example:
        >>> OnnxExportConfig(tile_size=256, overlap=64).opset
        17
    """

    tile_size: int | None = None
    overlap: int | None = None
    opset: int = 17
    input_scale: float = DEEPNESS_INPUT_SCALE
    resolution_m: float | None = None

    def __post_init__(self) -> None:
        if self.tile_size is not None and (int(self.tile_size) != self.tile_size or self.tile_size < 1):
            raise ChipSizeError(f"--tile-size must be a positive whole number of pixels, got {self.tile_size}.")
        if self.overlap is not None and (int(self.overlap) != self.overlap or self.overlap < 0):
            raise InputError(f"--overlap must be a whole number of pixels >= 0, got {self.overlap}.")
        if not 7 <= int(self.opset) <= 23:
            raise InputError(f"--opset must be between 7 and 23 (17 is a safe choice), got {self.opset}.")
        if not (isinstance(self.input_scale, (int, float)) and math.isfinite(self.input_scale) and self.input_scale > 0):
            raise InputError(
                f"input_scale must be a positive number (255 for Deepness, 1 for raw values), got {self.input_scale}."
            )
        if self.resolution_m is not None and not (math.isfinite(self.resolution_m) and self.resolution_m > 0):
            raise InputError(f"--resolution must be a positive pixel size in metres, got {self.resolution_m}.")


@dataclass(frozen=True)
class OnnxExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ``.onnx`` file.
        input_shape: ``(1, C_in, N, N)``.
        output_shape: ``(1, C_out, N, N)``.
        metadata: the metadata properties as Python values (before JSON encoding).
    """

    path: Path
    input_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    metadata: dict[str, Any] = field(default_factory=dict)


class NormalizedGenerator(nn.Module):
    """``raw / input_scale → normalize → generator → denormalize`` as one module (what the ONNX graph holds).

    Args:
        generator: the bundle's generator (output in [-1, 1]).
        input_normalizer: maps raw input values to the network range.
        target_normalizer: maps the network range back to target units.
        input_scale: the module's input is multiplied by this first.

    Example:
        >>> g = nn.Conv2d(1, 1, 1)
        >>> m = NormalizedGenerator(g, Normalizer.identity(1), Normalizer.identity(1), 1.0)
        >>> m(torch.zeros(1, 1, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """

    def __init__(
        self,
        generator: nn.Module,
        input_normalizer: Normalizer,
        target_normalizer: Normalizer,
        input_scale: float = DEEPNESS_INPUT_SCALE,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.clip_input = bool(input_normalizer.clip)
        self.input_scale = float(input_scale)
        in_off, in_sc = input_normalizer.linear_params(like=torch.zeros(1))
        out_off, out_sc = target_normalizer.linear_params(like=torch.zeros(1))
        self.register_buffer("in_offset", in_off.unsqueeze(0))
        self.register_buffer("in_scale", in_sc.unsqueeze(0))
        self.register_buffer("out_offset", out_off.unsqueeze(0))
        self.register_buffer("out_scale", out_sc.unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        raw = x * self.input_scale
        z = (raw - self.in_offset) / self.in_scale
        if self.clip_input:
            z = torch.clamp(z, -1.0, 1.0)
        return self.generator(z) * self.out_scale + self.out_offset


def _bundle_resolution(header: BundleHeader) -> float | None:
    """The training pixel size in metres, from the bundle's ``input.pixel_size`` and ``input.crs``.

    ``None`` when the bundle records no pixel size (older bundles, pixel-space
    chips) or its CRS is not in metres (e.g. degrees of EPSG:4326), where a
    pixel size in metres would be a guess.
    """
    size, crs = header.input.pixel_size, header.input.crs
    if not size or not crs:
        return None
    from rasterio.crs import CRS

    try:
        units = CRS.from_user_input(crs).linear_units.lower()
    except Exception:  # an unparsable CRS string: no resolution rather than a wrong one
        return None
    if units not in ("metre", "meter", "m"):
        return None
    return float(size[0])


def deepness_metadata(
    meta: BundleHeader | Mapping[str, Any], tile_size: int, overlap: int, resolution_m: float | None,
    input_scale: float,
) -> dict:
    """The Deepness metadata properties (as Python values) for a bundle's header (or its JSON document).

    Example:
        >>> meta = {"input": {"band_names": ["elevation"]}, "target": {"band_names": ["red", "green", "blue"]}}
        >>> md = deepness_metadata(meta, 256, 64, 30.0, 255.0)
        >>> md["model_type"], md["tiles_overlap"], md["resolution"], md["class_names"][2]
        ('Regressor', 25, 3000.0, 'blue')
    """
    if isinstance(meta, BundleHeader):
        meta = meta.to_dict()
    in_bands = list(meta.get("input", {}).get("band_names") or [])
    out_bands = list(meta.get("target", {}).get("band_names") or [])
    n_in = len(in_bands) or int(meta.get("generator", {}).get("in_channels", 0))
    md: dict[str, Any] = {
        "model_type": DEEPNESS_MODEL_TYPE,
        "class_names": {i: name for i, name in enumerate(out_bands)},
        "tiles_size": int(tile_size),
        "tile_size": int(tile_size),
        "tiles_overlap": int(round(100.0 * overlap / tile_size)),
        "standardization_mean": [0.0] * n_in,
        "standardization_std": [1.0] * n_in,
        "reg_output_scaling": 1.0,
    }
    if resolution_m is not None:
        md["resolution"] = round(float(resolution_m) * 100.0, 6)
    md["geop2p"] = {
        "geop2p_version": __version__,
        "input_scale": float(input_scale),
        "input_band_names": in_bands,
        "target_band_names": out_bands,
        "bundle": meta,
    }
    return md


def _resolve_tile(header: BundleHeader, config: OnnxExportConfig) -> tuple[int, int]:
    """``(tile, overlap)``: the tile (default the chip size) checked against the generator's divisor, the overlap
    (default the bundle's recommended one) by the one overlap rule, :func:`geop2p.tiling.check_overlap`.
    """
    tile = int(config.tile_size) if config.tile_size is not None else header.chip_size
    divisor = int(required_divisor(header.generator))
    if tile % divisor:
        raise SizeMultipleError(tile, divisor, "--tile-size", "Tile size", f"which the {header.architecture} needs")
    overlap = config.overlap if config.overlap is not None else header.recommended_overlap
    return tile, check_overlap(overlap, tile, "--overlap")


def export_onnx(
    model_path: str | os.PathLike,
    out_path: str | os.PathLike,
    config: OnnxExportConfig = OnnxExportConfig(),
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> OnnxExportResult:
    """Export the bundle at ``model_path`` as a self-contained ONNX model at ``out_path``.

    Everything is checked (bundle readable, tile size, overlap, output free)
    before the file is written; the file appears whole or not at all.

    Args:
        model_path: a geop2p model bundle (``.safetensors``).
        out_path: the ``.onnx`` file to write.
        config: tile size, overlap, opset, input scale, resolution.
        overwrite: replace an existing ``out_path``.
        progress: called with a short message at each stage (load, export, metadata, check).

    Raises:
        BundleError: the model is missing, not a bundle, or a pickle.
        SizeMultipleError: the tile size does not suit the generator.
        InputError: the overlap is not from 0 to half the tile.
        OutputExistsError: ``out_path`` exists and ``overwrite`` is False.
        MissingDependencyError: the ``onnx`` package is missing.

    Example:
        >>> export_onnx("run/model.safetensors", "model.onnx", OnnxExportConfig(tile_size=256))  # doctest: +SKIP
    """
    say = progress or (lambda message: None)
    onnx = _require_onnx()
    out = Path(out_path)
    check_output_free(out, overwrite)
    if out.suffix.lower() != ".onnx":
        logger.warning("Output '%s' does not end in .onnx; QGIS/Deepness look for .onnx files.", out)

    say("loading the bundle")
    generator, header = load_bundle(model_path, device="cpu")
    generator = generator.eval().cpu().float()
    tile, overlap = _resolve_tile(header, config)
    in_norm, out_norm = header.input.normalizer, header.target.normalizer
    n_in, n_out = in_norm.n_bands, out_norm.n_bands
    resolution = config.resolution_m if config.resolution_m is not None else _bundle_resolution(header)
    if resolution is None:
        logger.warning(
            "The bundle records no pixel size, so the ONNX metadata has no 'resolution'; Deepness will ask for one. "
            "Pass --resolution METRES to record the resolution the model was trained at."
        )
    wrapper = NormalizedGenerator(generator, in_norm, out_norm, config.input_scale).eval()

    say("tracing the graph")
    dummy = torch.rand(1, n_in, tile, tile)
    buffer = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo, which traces smp encoders less reliably
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (dummy,),
            buffer,
            input_names=["input"],
            output_names=["output"],
            opset_version=int(config.opset),
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())

    say("writing metadata")
    metadata = deepness_metadata(header, tile, overlap, resolution, config.input_scale)
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = jsonsafe.dumps(value, indent=None)
    model.producer_name = "geop2p"
    model.producer_version = __version__
    model.doc_string = (
        f"geop2p pix2pix generator {header.architecture}: "
        f"{n_in} input band(s) -> {n_out} target band(s); input = raw / {config.input_scale:g}, "
        "output in target units."
    )

    say("checking and saving")
    onnx.checker.check_model(model)
    with atomic_path(out, overwrite=overwrite) as tmp:
        onnx.save(model, str(tmp))
    logger.info("Wrote %s (%d→%d bands, %d px tiles, %d px overlap)", out, n_in, n_out, tile, overlap)
    return OnnxExportResult(out, (1, n_in, tile, tile), (1, n_out, tile, tile), metadata)
