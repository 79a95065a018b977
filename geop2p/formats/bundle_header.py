"""The model bundle's JSON header as a value object: :class:`BundleHeader` (docs/formats.md, "Model bundle").

A bundle is one ``.safetensors`` file: the generator's tensors plus one JSON
document under the metadata key ``"geop2p"``.  This module is that document,
read (:meth:`BundleHeader.from_dict`, which checks everything a reader relies
on) and written (:meth:`BundleHeader.to_dict`) in one place.  It needs no
torch and no rasters: ``geop2p info model.safetensors`` reads a header without
loading a network.  The file itself is read and written by
:mod:`geop2p.io.bundle_file`; the generator's parameters are resolved against
the architecture registry only when a network is built (:mod:`geop2p.models`).

Example:
    >>> from geop2p.normalize import Normalizer
    >>> side = BandSide(("dem",), "float32", -9999.0, Normalizer.identity(1))
    >>> rgb = BandSide(("r", "g", "b"), "uint8", None, Normalizer.identity(3))
    >>> h = BundleHeader({"architecture": "linear", "in_channels": 1, "out_channels": 3, "params": {}},
    ...                  side, rgb, chip_size=64, recommended_overlap=16)
    >>> BundleHeader.from_dict(h.to_dict()) == h
    True
    >>> h.in_channels, h.out_channels, h.target.band_names
    (1, 3, ('r', 'g', 'b'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from geop2p import __version__
from geop2p.errors import BundleError, ConfigError
from geop2p.formats import jsonsafe
from geop2p.normalize import Normalizer

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "BUNDLE_SUFFIX",
    "METADATA_KEY",
    "RASTER_DTYPES",
    "BandSide",
    "BundleHeader",
]

BUNDLE_FORMAT = "geop2p-model"
BUNDLE_FORMAT_VERSION = 1
BUNDLE_SUFFIX = ".safetensors"
#: the safetensors metadata key holding the JSON document
METADATA_KEY = "geop2p"
#: the data types a side may have (GDAL's integer and float types that numpy shares)
RASTER_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


def _fail(source: str, message: str) -> BundleError:
    return BundleError(f"{source}: {message}")


@dataclass(frozen=True)
class BandSide:
    """One side (input or target) of a bundle: what the bands are and how they are scaled.

    Attributes:
        band_names: one name per band, in the network's channel order.
        dtype: the data type of the rasters this side was trained on.
        nodata: their nodata value (NaN allowed), or None.
        normalizer: raw values ↔ the network's range.
        bands: input only: the 1-based source bands the model reads (None: 1..n).
        pixel_size: input only: the chips' pixel size (x, y) in CRS units (None: pixel space / unknown).
        crs: input only: the chips' CRS as a string (None: pixel space / unknown).
    """

    band_names: tuple[str, ...]
    dtype: str
    nodata: float | None
    normalizer: Normalizer
    bands: tuple[int, ...] | None = None
    pixel_size: tuple[float, float] | None = None
    crs: str | None = None

    @property
    def count(self) -> int:
        """Number of bands."""
        return len(self.band_names)

    @property
    def source_bands(self) -> tuple[int, ...]:
        """The 1-based bands read from a scene (``bands``, else ``1..count``)."""
        return self.bands if self.bands is not None else tuple(range(1, self.count + 1))

    def to_dict(self, with_grid: bool = False) -> dict[str, Any]:
        """The JSON object of this side (``with_grid``: include ``pixel_size`` and ``crs``, as the input side does)."""
        doc: dict[str, Any] = {}
        if self.bands is not None:
            doc["bands"] = list(self.bands)
        doc.update(
            band_names=list(self.band_names),
            dtype=self.dtype,
            nodata=jsonsafe.nodata_to_json(self.nodata),
            normalizer=self.normalizer.to_dict(),
        )
        if with_grid:
            doc["pixel_size"] = list(self.pixel_size) if self.pixel_size is not None else None
            doc["crs"] = self.crs
        return doc

    @classmethod
    def from_dict(cls, doc: Any, side: str, n_channels: int, source: str) -> "BandSide":
        """Read and check one side against the generator's channel count.

        Raises:
            BundleError: naming the key and what was expected.
        """
        if not isinstance(doc, Mapping):
            raise _fail(source, f"header has no '{side}' object; expected band names, dtype, nodata and normalizer.")
        names = doc.get("band_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _fail(source, f"'{side}.band_names' must be a list of strings; got {names!r}.")
        if len(names) != n_channels:
            raise _fail(
                source,
                f"'{side}.band_names' lists {len(names)} band(s) but the generator has {n_channels} "
                f"{'input' if side == 'input' else 'output'} channel(s).",
            )
        bands = doc.get("bands")
        if bands is not None and (
            not isinstance(bands, list)
            or len(bands) != n_channels
            or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in bands)
        ):
            raise _fail(source, f"'{side}.bands' must list {n_channels} 1-based band indexes; got {bands!r}.")
        dtype = doc.get("dtype")
        if dtype not in RASTER_DTYPES:
            raise _fail(source, f"'{side}.dtype' is {dtype!r}; expected one of {', '.join(RASTER_DTYPES)}.")
        try:
            nodata = jsonsafe.number(doc.get("nodata"))
        except ValueError:
            raise _fail(source, f"'{side}.nodata' is {doc.get('nodata')!r}; expected a number, \"nan\" or null.") from None
        if nodata is not None and math.isfinite(nodata):
            info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
            if not info.min <= nodata <= info.max:
                raise _fail(source, f"'{side}.nodata' {nodata:g} does not fit the dtype {dtype}.")
        try:
            normalizer = Normalizer.from_dict(doc.get("normalizer"))
        except ConfigError as exc:
            raise _fail(source, f"'{side}.normalizer' is invalid: {exc}") from None
        if normalizer.n_bands != n_channels:
            raise _fail(
                source, f"'{side}.normalizer' has {normalizer.n_bands} band(s) but '{side}.band_names' has {n_channels}."
            )
        pixel_size = doc.get("pixel_size")
        if pixel_size is not None:
            ok = isinstance(pixel_size, list) and len(pixel_size) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in pixel_size
            )
            if not ok:
                raise _fail(source, f"'{side}.pixel_size' must be [x, y] > 0 in CRS units or null; got {pixel_size!r}.")
            pixel_size = (float(pixel_size[0]), float(pixel_size[1]))
        crs = doc.get("crs")
        if crs is not None and not isinstance(crs, str):
            raise _fail(source, f"'{side}.crs' must be a CRS string (e.g. EPSG:32631) or null; got {crs!r}.")
        return cls(tuple(names), str(dtype), nodata, normalizer, tuple(bands) if bands is not None else None,
                   pixel_size, crs)


def _check_generator(doc: Any, source: str) -> dict[str, Any]:
    """The generator spec's structure (the architecture's own parameters are checked when it is built)."""
    if not isinstance(doc, Mapping):
        raise _fail(source, f"'generator' must be an object like {{'architecture': 'smp-unet', ...}}; got {doc!r}.")
    unknown = sorted(set(doc) - {"architecture", "in_channels", "out_channels", "params"})
    if unknown:
        raise _fail(source, f"'generator' has unknown keys {unknown}; expected architecture, in_channels, "
                            "out_channels, params.")
    if not isinstance(doc.get("architecture"), str) or not doc["architecture"]:
        raise _fail(source, f"'generator.architecture' must name an architecture; got {doc.get('architecture')!r}.")
    for key in ("in_channels", "out_channels"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(source, f"'generator.{key}' must be a positive integer (a band count); got {value!r}.")
    params = doc.get("params") or {}
    if not isinstance(params, Mapping):
        raise _fail(source, f"'generator.params' must be an object; got {params!r}.")
    return {"architecture": doc["architecture"], "in_channels": doc["in_channels"],
            "out_channels": doc["out_channels"], "params": dict(params)}


@dataclass(frozen=True)
class BundleHeader:
    """The checked JSON document of a model bundle.

    Attributes:
        generator: ``{"architecture", "in_channels", "out_channels", "params"}``.
        input: the input side (with the source bands, pixel size and CRS of the chips).
        target: the target side.
        chip_size: the chips' side in pixels.
        recommended_overlap: overlap between prediction windows, in pixels (0 to ``chip_size // 2``).
        training: provenance (steps, epochs, best metrics, manifest hash...) or None.
        geop2p_version: the version that wrote the bundle.
        format_version: the bundle format's version.
    """

    generator: dict[str, Any]
    input: BandSide
    target: BandSide
    chip_size: int
    recommended_overlap: int
    training: dict[str, Any] | None = None
    geop2p_version: str = __version__
    format_version: int = BUNDLE_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def architecture(self) -> str:
        """The generator's architecture name."""
        return self.generator["architecture"]

    @property
    def in_channels(self) -> int:
        """Input bands the generator takes."""
        return int(self.generator["in_channels"])

    @property
    def out_channels(self) -> int:
        """Target bands the generator gives."""
        return int(self.generator["out_channels"])

    def replace(self, **changes: Any) -> "BundleHeader":
        """A copy with ``changes`` (checked again)."""
        return BundleHeader.from_dict(replace(self, **changes).to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (docs/formats.md) as plain values."""
        doc = {
            "format": BUNDLE_FORMAT,
            "format_version": self.format_version,
            "geop2p_version": self.geop2p_version,
            "generator": dict(self.generator),
            "input": self.input.to_dict(with_grid=True),
            "target": self.target.to_dict(),
            "chip_size": self.chip_size,
            "recommended_overlap": self.recommended_overlap,
            "training": self.training,
        }
        doc.update(self.extra)
        return jsonsafe.to_json(doc)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "model bundle") -> "BundleHeader":
        """Read and check a bundle's JSON document.

        Keys this version does not know are kept in ``extra`` (and written back).

        Raises:
            BundleError: wrong format or version, missing keys, channel counts that disagree
                between the generator, the band names and the normalizers, a bad chip size or overlap.

        Example:
            >>> BundleHeader.from_dict({"format": "something-else"})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            geop2p.errors.BundleError: model bundle: header format is 'something-else'; expected 'geop2p-model'...
        """
        if not isinstance(doc, Mapping):
            raise _fail(source, f"the geop2p header must be a JSON object; got {type(doc).__name__}.")
        if doc.get("format") != BUNDLE_FORMAT:
            raise _fail(source, f"header format is {doc.get('format')!r}; expected {BUNDLE_FORMAT!r} (a geop2p model).")
        version = doc.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_FORMAT_VERSION:
            raise _fail(
                source,
                f"format_version {version} was written by a newer geop2p ({doc.get('geop2p_version', '?')}); "
                f"this geop2p {__version__} reads format_version {BUNDLE_FORMAT_VERSION}. Upgrade geop2p.",
            )
        if version != BUNDLE_FORMAT_VERSION:
            raise _fail(source, f"unsupported format_version {version!r}; expected {BUNDLE_FORMAT_VERSION}.")
        generator = _check_generator(doc.get("generator"), source)
        input_side = BandSide.from_dict(doc.get("input"), "input", generator["in_channels"], source)
        target_side = BandSide.from_dict(doc.get("target"), "target", generator["out_channels"], source)
        chip = doc.get("chip_size")
        if isinstance(chip, bool) or not isinstance(chip, int) or chip < 1:
            raise _fail(source, f"'chip_size' must be a positive integer (pixels); got {chip!r}.")
        overlap = doc.get("recommended_overlap")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= chip // 2:
            raise _fail(source, f"'recommended_overlap' must be an integer from 0 to chip_size // 2 = {chip // 2}; "
                                f"got {overlap!r}.")
        training = doc.get("training")
        if training is not None and not isinstance(training, Mapping):
            raise _fail(source, f"'training' must be an object or null; got {type(training).__name__}.")
        known = {"format", "format_version", "geop2p_version", "generator", "input", "target", "chip_size",
                 "recommended_overlap", "training"}
        return cls(
            generator=generator,
            input=input_side,
            target=target_side,
            chip_size=chip,
            recommended_overlap=overlap,
            training=dict(training) if training is not None else None,
            geop2p_version=str(doc.get("geop2p_version", "?")),
            format_version=version,
            extra={k: v for k, v in doc.items() if k not in known},
        )
