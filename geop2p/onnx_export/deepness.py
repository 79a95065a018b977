"""The metadata Deepness 0.6.5 reads from an ONNX file, and the rules its code applies to it.

What the plugin's code does with each key (``deepness/processing/models/model_base.py``;
every value is ``json.loads``-ed, so strings are JSON-quoted):

* ``model_type`` (on load): ``"Regressor"`` picks the regression processor.
* ``class_names`` (on load): one ``{"0": name}`` dict per output names its layer.
* ``standardization_mean`` / ``standardization_std`` (on load): written as 0 and 1, so the
  network sees ``value / 255`` and the graph's ``× 255`` recovers the raw value.
* ``resolution`` (cm/px), ``tile_size``, ``tiles_overlap`` (%), ``reg_output_scaling``: applied
  **only when the user presses "Load default parameters"**; until then Deepness keeps its
  own defaults (3 cm/px, 15 % overlap). ``tile_size`` is the key the code reads; ``tiles_size``
  (the documentation's spelling) is written too and ignored by 0.6.5.

Overlap in pixels is ``int(tile * pct / 100 * 2) // 2`` (``common/processing_overlap.py:37``)
with a whole-number percentage (a ``QSpinBox``), and each tile keeps its centre minus
``overlap // 2`` on each side (``tile_params.py:99``): the overlap must be even, and only
some pixel counts are reachable with a whole percentage.

Example:
    >>> deepness_overlap_px(256, 25), overlap_percent(256, 64)
    (64, (25, 64))
    >>> overlap_percent(1024, 64)  # no whole percent gives 64 px of 1024: the nearest even overlap
    (4, 40)
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from geop2p import __version__
from geop2p.errors import InputError
from geop2p.formats import BundleHeader
from geop2p.onnx_export.encoding import BandCode

__all__ = [
    "DEEPNESS_MODEL_TYPE",
    "bundle_resolution",
    "deepness_metadata",
    "deepness_overlap_px",
    "overlap_percent",
]

logger = logging.getLogger(__name__)

DEEPNESS_MODEL_TYPE = "Regressor"


def deepness_overlap_px(tile: int, percent: int) -> int:
    """The overlap in pixels Deepness uses for ``percent`` % of a ``tile``-px tile (its own formula).

    Example:
        >>> deepness_overlap_px(64, 15)  # Deepness's default: odd
        9
    """
    return int(tile * percent / 100 * 2) // 2


def overlap_percent(tile: int, overlap: int) -> tuple[int, int]:
    """``(percent, pixels)``: the whole percentage to write for ``overlap`` px, and the pixels it gives.

    The exact overlap when a whole percentage reaches it, else the nearest *even* overlap
    (at most half the tile) one does.

    Raises:
        InputError: ``overlap`` is odd (Deepness would keep ``overlap // 2`` from one side and one
            pixel more from the other).

    Example:
        >>> overlap_percent(96, 16)
        (17, 16)
    """
    if overlap % 2:
        raise InputError(
            f"--overlap {overlap} is odd; Deepness crops half the overlap from each side of a tile "
            f"({overlap} // 2 = {overlap // 2}), so use an even overlap such as {overlap - 1} or {overlap + 1}."
        )
    reachable = [(p, deepness_overlap_px(tile, p)) for p in range(0, 100)]
    for p, px in reachable:
        if px == overlap:
            return p, px
    even = [(abs(px - overlap), px, p) for p, px in reachable if px % 2 == 0 and px <= tile // 2]
    _, px, p = min(even)
    return p, px


def bundle_resolution(header: BundleHeader) -> float | None:
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


def _class_names(codes: Sequence[BandCode]) -> list[dict[str, str]]:
    """One ``{"0": name}`` per output; a trailing ``_`` makes Deepness name the layer exactly ``name``."""
    if codes and codes[0].kind == "float":
        return [{str(i): c.band for i, c in enumerate(codes)}]
    return [{"0": f"{plane}_"} for c in codes for plane in c.planes]


def deepness_metadata(
    meta: BundleHeader | Mapping[str, Any],
    tile_size: int,
    overlap: int,
    resolution_m: float | None,
    input_scale: float,
    codes: Sequence[BandCode] | None = None,
    input_nodata: Sequence[float] = (),
) -> dict:
    """The Deepness metadata properties (as Python values) for a bundle's header (or its JSON document).

    Args:
        meta: the bundle's header.
        tile_size: the fixed tile side in pixels.
        overlap: the tile overlap in pixels (even; a whole percentage of the tile must reach it,
            see :func:`overlap_percent`).
        resolution_m: the pixel size in metres, or None.
        input_scale: what the graph multiplies its input by.
        codes: how each target band leaves the graph (default: one byte plane per band).
        input_nodata: raw values the graph treats as nodata.

    Example:
        >>> meta = {"input": {"band_names": ["elevation"]}, "target": {"band_names": ["red", "green", "blue"]}}
        >>> md = deepness_metadata(meta, 256, 64, 30.0, 255.0)
        >>> md["model_type"], md["tiles_overlap"], md["resolution"], md["class_names"][2]
        ('Regressor', 25, 3000.0, {'0': 'blue_'})
    """
    if isinstance(meta, BundleHeader):
        meta = meta.to_dict()
    in_bands = list(meta.get("input", {}).get("band_names") or [])
    out_bands = list(meta.get("target", {}).get("band_names") or [])
    n_in = len(in_bands) or int(meta.get("generator", {}).get("in_channels", 0))
    if codes is None:
        codes = [BandCode(b, "byte", 0.0, 255.0, planes=(b,)) for b in out_bands]
    percent, pixels = overlap_percent(int(tile_size), int(overlap))
    if pixels != overlap:
        raise InputError(
            f"--overlap {overlap} is not a whole percentage of the {tile_size} px tile in Deepness's rounding; "
            f"{percent} % gives {pixels} px."
        )
    md: dict[str, Any] = {
        "model_type": DEEPNESS_MODEL_TYPE,
        "class_names": _class_names(codes),
        "tile_size": int(tile_size),
        "tiles_size": int(tile_size),
        "tiles_overlap": percent,
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
        "input_nodata": [float(v) for v in input_nodata],
        "tile_overlap_px": int(overlap),
        "bands": [c.to_dict() for c in codes],
        "bundle": meta,
    }
    return md
