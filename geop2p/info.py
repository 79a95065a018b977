"""What a path holds — a chip folder, a raster or a model bundle — as a JSON-ready dict and as text (``geop2p info``).

Nothing here imports torch: a bundle's header is read without its tensors, so
``geop2p info model.safetensors`` answers in the time it takes to read a few
kilobytes.

Example:
    >>> print(format_description({"kind": "raster", "path": "a.tif", "width": 3, "height": 2, "count": 1,
    ...     "dtypes": ["uint8"], "descriptions": [None], "nodata": 0, "has_mask": False, "crs": None,
    ...     "res": [1.0, 1.0], "bounds": [0, 0, 3, 2]}).splitlines()[1])
      size: 3 × 2 px, 1 band(s), dtypes uint8
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import rasterio
from rasterio.errors import NotGeoreferencedWarning

from geop2p.errors import ChipFolderError
from geop2p.formats import jsonsafe
from geop2p.formats.bundle_header import BUNDLE_SUFFIX, BundleHeader
from geop2p.formats.chip_manifest import CONFIG_NAME, INDEX_NAME, MANIFEST_NAME
from geop2p.io.bundle_file import read_bundle_header
from geop2p.io.chip_folder import read_manifest
from geop2p.io.read import raster_info
from geop2p.io.sources import probe_raster
from geop2p.normalize import Normalizer

__all__ = ["describe", "describe_bundle", "describe_chip_folder", "describe_raster", "format_description"]


def _crs_name(wkt: str | None) -> str | None:
    if not wkt:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_user_input(wkt)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


# ---------------------------------------------------------------------------------------------- describing
def describe_chip_folder(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a chip folder: counts per split, bands, dtypes, nodata, CRS, chip spec, split, stats.

    Raises:
        ChipFolderError: no (valid) manifest.

    Example:
        >>> describe_chip_folder("chips")["input"]["band_names"]  # doctest: +SKIP
        ['red', 'green', 'blue']
    """
    root = Path(path)
    manifest = read_manifest(root)
    doc = manifest.to_dict()
    sides = {}
    for side in ("input", "target"):
        s = doc[side]
        sides[side] = {"sources": [src.get("path") for src in s["sources"]], "bands": s["bands"],
                       "band_names": s["band_names"], "dtype": s["dtype"], "nodata": s["nodata"]}
    on_disk = {side: len(list((root / side).glob("*.tif"))) for side in ("input", "target")}
    return {
        "kind": "chips",
        "path": str(root),
        "format_version": doc["format_version"],
        "geop2p_version": doc["geop2p_version"],
        "created": doc["created"],
        "counts": doc["counts"],
        "files_on_disk": on_disk,
        "crs": _crs_name(doc["grid"].get("crs")),
        "chip_spec": doc["chip_spec"],
        "alignment": doc["alignment"],
        "split": doc["split"],
        "aoi": doc["aoi"],
        "input": sides["input"],
        "target": sides["target"],
        "stats": doc["stats"],
    }


def describe_raster(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a raster: size, bands, dtypes, nodata, CRS, transform, resolution, bounds, mask.

    The first and last pixel of every band are read, so a truncated file is reported as such.

    Raises:
        RasterReadError: missing, not a raster, or truncated/corrupt.

    Example:
        >>> describe_raster("scene.tif")["crs"]  # doctest: +SKIP
        'EPSG:32631'
    """
    # inside an Env, GDAL's warnings about damaged files go to rasterio's logger instead of raw to stderr
    with rasterio.Env(), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        info = raster_info(path)
        probe_raster(path)
    d = info.to_dict()
    grid = info.grid
    return {
        "kind": "raster",
        "path": str(path),
        "width": grid.width,
        "height": grid.height,
        "count": info.count,
        "dtypes": list(info.dtypes),
        "nodata": d["nodata"],
        "descriptions": list(info.descriptions),
        "has_mask": info.has_mask,
        "crs": _crs_name(d["crs"]),
        "transform": d["transform"],
        "res": list(grid.res),
        "bounds": list(grid.bounds),
    }


def describe_bundle(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a model bundle: its header document (tensors are not read).

    Example:
        >>> describe_bundle("run/model.safetensors")["chip_size"]  # doctest: +SKIP
        256
    """
    return {"kind": "bundle", "path": str(path), **read_bundle_header(path).to_dict()}


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Describe ``path``: a chip folder, a ``.safetensors`` model bundle, or any raster GDAL reads.

    Raises:
        ChipFolderError: a folder that is not a (finished) chip folder.
        RasterReadError: a file that does not exist or is not a raster.
        BundleError: a ``.safetensors`` file that is not a geop2p bundle.

    Example:
        >>> describe("scene.tif")["kind"]  # doctest: +SKIP
        'raster'
    """
    p = Path(path)
    if p.is_dir():
        if not any((p / name).is_file() for name in (MANIFEST_NAME, CONFIG_NAME, INDEX_NAME)):
            raise ChipFolderError(
                f"'{p}' is a folder but not a geop2p chip folder (no {MANIFEST_NAME}); "
                "give a chip folder, a raster file or a model bundle (.safetensors)."
            )
        return describe_chip_folder(p)
    if p.suffix.lower() == BUNDLE_SUFFIX:
        return describe_bundle(p)
    return describe_raster(p)


# ---------------------------------------------------------------------------------------------- text
def _fmt(v: Any) -> str:
    return f"{v:.10g}" if isinstance(v, float) else str(v)


def _stats_lines(stats: Mapping[str, Any] | None) -> list[str]:
    lines = []
    for b in (stats or {}).get("bands", []):
        pct = b.get("percentiles") or {}
        lines.append(
            f"      {b.get('name')}: n={b.get('count')} min={_fmt(b.get('min'))} max={_fmt(b.get('max'))} "
            f"mean={_fmt(b.get('mean'))} std={_fmt(b.get('std'))} "
            + " ".join(f"p{k}={_fmt(v)}" for k, v in pct.items())
        )
    return lines


def _chips_text(d: Mapping[str, Any]) -> list[str]:
    counts, spec, split, align = d["counts"], d["chip_spec"], d["split"], d["alignment"]
    lines = [
        f"chip folder {d['path']} (format {d['format_version']}, geop2p {d['geop2p_version']}, {d['created']})",
        f"  chips: {sum(counts.values())} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")",
        f"  chip size {spec.get('size')} px, stride {spec.get('stride')}, min valid {spec.get('min_valid')}",
        f"  CRS: {d.get('crs') or 'none (pixel space)'}",
        f"  split: {split.get('mode')} {split.get('fractions')}, block {split.get('block_size')} px, "
        f"buffer {split.get('buffer')} px, seed {split.get('seed')}",
        f"  target alignment: {align.get('mode')}, resampling {align.get('resampling')}",
    ]
    if d.get("aoi"):
        lines.append(f"  AOI: {d['aoi'].get('path')} ({d['aoi'].get('mode')})")
    for side in ("input", "target"):
        s = d[side]
        lines.append(
            f"  {side}: {', '.join(map(str, s['sources']))} bands {s['bands']} {s['band_names']}, "
            f"dtype {s['dtype']}, nodata {s['nodata']}"
        )
        lines.append("    train statistics:")
        lines.extend(_stats_lines((d.get("stats") or {}).get(side)))
    return lines


def _raster_text(d: Mapping[str, Any]) -> list[str]:
    return [
        f"raster {d['path']}",
        f"  size: {d['width']} × {d['height']} px, {d['count']} band(s), dtypes {', '.join(sorted(set(d['dtypes'])))}",
        f"  bands: {', '.join(str(x) if x else f'band_{i}' for i, x in enumerate(d['descriptions'], start=1))}",
        f"  nodata: {d['nodata']}, mask: {'yes' if d['has_mask'] else 'no'}",
        f"  CRS: {d['crs'] or 'none (pixel space)'}",
        f"  resolution: {_fmt(d['res'][0])} × {_fmt(d['res'][1])}",
        f"  bounds (left, bottom, right, top): {', '.join(_fmt(v) for v in d['bounds'])}",
    ]


def _normalizer_lines(norm: Normalizer, names: tuple[str, ...]) -> list[str]:
    if norm.method == "percentile":
        title = f"percentile {norm.low:g}-{norm.high:g}"
    elif norm.method == "meanstd":
        title = "mean ± 3 std"
    else:
        title = norm.method
    title += ", clipped to [-1, 1]" if norm.clip else ""
    lines = [f"    normalizer: {title}"]
    lines += [f"      {n}: [{o - s:.6g}, {o + s:.6g}] -> [-1, 1]" for n, o, s in zip(names, norm.offset, norm.scale)]
    return lines


def _params(spec: Mapping[str, Any]) -> str:
    parts = [f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in (spec.get("params") or {}).items()]
    return f" ({', '.join(parts)})" if parts else ""


def _bundle_text(d: Mapping[str, Any]) -> list[str]:
    header = BundleHeader.from_dict({k: v for k, v in d.items() if k not in ("kind", "path")}, d["path"])
    spec = header.generator
    lines = [
        f"model bundle {d['path']} (format {header.format_version}, geop2p {header.geop2p_version})",
        f"  generator: {header.architecture}{_params(spec)}, {header.in_channels} → {header.out_channels} bands",
    ]
    for title, side in (("input", header.input), ("target", header.target)):
        nodata = "none" if side.nodata is None else _fmt(side.nodata)
        where = f", source bands {','.join(map(str, side.bands))}" if side.bands else ""
        lines.append(f"  {title}: {', '.join(side.band_names)} ({side.dtype}, nodata {nodata}{where})")
        lines += _normalizer_lines(side.normalizer, side.band_names)
    lines.append(f"  chip size {header.chip_size} px, recommended overlap {header.recommended_overlap} px")
    if header.input.pixel_size:
        x, y = header.input.pixel_size
        lines.append(f"  trained at {x:g} × {y:g} CRS units per pixel, {header.input.crs}")
    training = dict(header.training or {})
    if not training:
        return lines + ["  training: no provenance recorded"]
    lines.append("  training:")
    best = training.pop("best_metrics", None) or {}
    for key, value in training.items():
        lines.append(f"    {key.replace('_', ' ')}: {value}")
    if best:
        shown = []
        for k, v in best.items():
            try:
                shown.append(f"{k}={jsonsafe.number(v):.4g}")
            except (TypeError, ValueError):
                shown.append(f"{k}={v}")
        lines.append(f"    best metrics: {', '.join(shown)}")
    return lines


def format_description(description: Mapping[str, Any]) -> str:
    """The text ``geop2p info`` prints for a :func:`describe` result."""
    render = {"chips": _chips_text, "raster": _raster_text, "bundle": _bundle_text}[description["kind"]]
    return "\n".join(render(description))
