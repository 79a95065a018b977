"""Describe what a path holds — a chip folder, a raster, or a model bundle — as a JSON-ready dict (``geop2p info``).

Example:
    >>> describe("chips/")["counts"]  # doctest: +SKIP
    {'train': 120, 'val': 15, 'test': 14}
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from rasterio.errors import NotGeoreferencedWarning

from geop2p.errors import ChipFolderError
from geop2p.io.chip_folder import CONFIG_NAME, INDEX_NAME, MANIFEST_NAME, read_manifest
from geop2p.io.read import raster_info

__all__ = ["describe", "describe_chip_folder", "describe_raster"]


def _crs_name(wkt: str | None) -> str | None:
    if not wkt:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_user_input(wkt)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def describe_chip_folder(path: str | os.PathLike) -> dict:
    """Summary of a chip folder: counts per split, bands, dtypes, nodata, CRS, chip spec, split, stats.

    Raises:
        ChipFolderError: no (valid) manifest.

    Example:
        >>> describe_chip_folder("chips")["input"]["band_names"]  # doctest: +SKIP
        ['red', 'green', 'blue']
    """
    root = Path(path)
    doc = read_manifest(root).to_dict()
    sides = {}
    for side in ("input", "target"):
        s = doc.get(side, {})
        sides[side] = {
            "sources": [src.get("path") for src in s.get("sources", [])],
            "bands": s.get("bands"),
            "band_names": s.get("band_names"),
            "dtype": s.get("dtype"),
            "nodata": s.get("nodata"),
        }
    on_disk = {side: len(list((root / side).glob("*.tif"))) for side in ("input", "target")}
    return {
        "kind": "chips",
        "path": str(root),
        "format_version": doc.get("format_version"),
        "geop2p_version": doc.get("geop2p_version"),
        "created": doc.get("created"),
        "counts": doc.get("counts"),
        "files_on_disk": on_disk,
        "crs": _crs_name((doc.get("grid") or {}).get("crs")),
        "chip_spec": doc.get("chip_spec"),
        "alignment": doc.get("alignment"),
        "split": doc.get("split"),
        "aoi": doc.get("aoi"),
        "input": sides["input"],
        "target": sides["target"],
        "stats": doc.get("stats"),
    }


def describe_raster(path: str | os.PathLike) -> dict:
    """Summary of a raster: size, bands, dtypes, nodata, CRS, transform, resolution, bounds, mask.

    Example:
        >>> describe_raster("scene.tif")["crs"]  # doctest: +SKIP
        'EPSG:32631'
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        info = raster_info(path)
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


def describe(path: str | os.PathLike) -> dict:
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
        if not (p / MANIFEST_NAME).is_file() and not (p / CONFIG_NAME).is_file() and not (p / INDEX_NAME).is_file():
            raise ChipFolderError(
                f"'{p}' is a folder but not a geop2p chip folder (no {MANIFEST_NAME}); "
                "give a chip folder, a raster file or a model bundle (.safetensors)."
            )
        return describe_chip_folder(p)
    if p.suffix.lower() == ".safetensors":
        from geop2p.io.bundle_file import read_bundle_header

        return {"kind": "bundle", "path": str(p), **read_bundle_header(p).to_dict()}
    return describe_raster(p)
