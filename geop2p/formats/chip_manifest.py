"""The chip folder's manifest as a value object: :class:`ChipManifest` (docs/formats.md, "Chip folder").

``geop2p-chips.json`` is written last by ``export-chips``; its presence means
the export is complete.  This module is the only place that turns the JSON
document into Python values and back, and it checks what readers rely on
(format, version, sections, band counts) with errors that say how to fix the
folder.  The file itself is read and written by :mod:`geop2p.io.chip_folder`.

Example:
    >>> side = ChipSide((1,), ("elevation",), "float32", -9999.0)
    >>> side.count, side.to_dict()["nodata"]
    (1, -9999)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from geop2p import __version__
from geop2p.chips import ChipSpec
from geop2p.errors import ChipFolderError, Geop2pError
from geop2p.formats import jsonsafe
from geop2p.grid import GeoGrid
from geop2p.split import SPLITS, SplitSpec
from geop2p.stats import BandStats

__all__ = [
    "CHIPS_FORMAT",
    "CHIPS_FORMAT_VERSION",
    "CONFIG_NAME",
    "INDEX_LAYER",
    "INDEX_NAME",
    "MANIFEST_NAME",
    "STATS_NAME",
    "ChipManifest",
    "ChipSide",
]

CHIPS_FORMAT = "geop2p-chips"
CHIPS_FORMAT_VERSION = 1
MANIFEST_NAME = "geop2p-chips.json"
INDEX_NAME = "index.gpkg"
INDEX_LAYER = "chips"
CONFIG_NAME = "export-config.yaml"
#: the mergeable state of the train-split statistics (moments and histograms), so that folders exported
#: apart can be trained on together with exactly the statistics of one export of everything
STATS_NAME = "statistics.npz"


@dataclass(frozen=True)
class ChipSide:
    """What one side (input or target) of every chip pair holds.

    Attributes:
        bands: 1-based indexes into the stacked source bands.
        band_names: one name per band.
        dtype: the chips' data type.
        nodata: the chips' nodata value (NaN allowed), or None.
        sources: the source rasters' descriptions (``RasterInfo.to_dict()``), in stacking order.
    """

    bands: tuple[int, ...]
    band_names: tuple[str, ...]
    dtype: str
    nodata: float | None
    sources: tuple[dict[str, Any], ...] = ()

    @property
    def count(self) -> int:
        """Number of bands."""
        return len(self.band_names)

    @property
    def paths(self) -> tuple[str, ...]:
        """The source paths."""
        return tuple(str(s.get("path")) for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``input`` / ``target`` object."""
        return {
            "sources": [dict(s) for s in self.sources],
            "bands": list(self.bands),
            "band_names": list(self.band_names),
            "dtype": self.dtype,
            "nodata": jsonsafe.nodata_to_json(self.nodata),
        }

    @classmethod
    def from_dict(cls, doc: Any, side: str, source: str) -> "ChipSide":
        """Read one side; missing band names become ``band_<i>``.

        Raises:
            ChipFolderError: the section is missing or inconsistent.
        """
        if not isinstance(doc, Mapping):
            raise ChipFolderError(f"'{source}' lacks the '{side}' section; re-export the chips.")
        names = list(doc.get("band_names") or [])
        bands = list(doc.get("bands") or range(1, len(names) + 1))
        if not names:
            names = [f"band_{b}" for b in bands]
        if len(names) != len(bands) or not bands:
            raise ChipFolderError(
                f"'{source}': the {side} lists {len(bands)} band(s) but {len(names)} band name(s); re-export the chips."
            )
        try:
            nodata = jsonsafe.number(doc.get("nodata"))
            band_idx = tuple(int(b) for b in bands)
        except (TypeError, ValueError) as exc:
            raise ChipFolderError(f"'{source}': the {side} section is invalid ({exc}); re-export the chips.") from None
        sources = tuple(dict(s) for s in doc.get("sources") or [] if isinstance(s, Mapping))
        return cls(band_idx, tuple(str(n) for n in names), str(doc.get("dtype", "float32")), nodata, sources)


@dataclass(frozen=True)
class ChipManifest:
    """The checked contents of ``geop2p-chips.json``.

    Attributes:
        input: the input side of every chip.
        target: the target side.
        grid: the input grid the chips are windows of.
        chip_spec: chip size, stride and valid fraction.
        alignment: how the target was read on the input grid (``mode``, ``resampling``...).
        split: how chips were divided into train/val/test.
        counts: chips per split.
        stats: ``{"input": BandStats, "target": BandStats}`` over the train chips (empty when there are none).
        aoi: ``{"path", "mode"}`` or None.
        skipped: windows skipped, by reason (``low_valid``, ``buffer``, ``outside_aoi``).
        geop2p_version: the version that wrote it.
        created: ISO 8601 time of writing.
        format_version: the manifest format's version.
    """

    input: ChipSide
    target: ChipSide
    grid: GeoGrid
    chip_spec: ChipSpec
    alignment: dict[str, Any]
    split: SplitSpec
    counts: dict[str, int]
    stats: dict[str, BandStats] = field(default_factory=dict)
    aoi: dict[str, Any] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    geop2p_version: str = __version__
    created: str = ""
    format_version: int = CHIPS_FORMAT_VERSION

    @property
    def total(self) -> int:
        """Chips in the folder."""
        return sum(self.counts.values())

    def stats_dict(self, side: str) -> dict[str, Any] | None:
        """``BandStats.to_dict()`` of ``side`` (None when the folder has no statistics for it)."""
        stats = self.stats.get(side)
        return stats.to_dict() if stats is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (docs/formats.md) as plain values."""
        return jsonsafe.to_json({
            "format": CHIPS_FORMAT,
            "format_version": self.format_version,
            "geop2p_version": self.geop2p_version,
            "created": self.created,
            "input": self.input.to_dict(),
            "target": self.target.to_dict(),
            "grid": self.grid.to_dict(),
            "chip_spec": self.chip_spec.to_dict(),
            "alignment": dict(self.alignment),
            "aoi": dict(self.aoi) if self.aoi else None,
            "split": self.split.to_dict(),
            "counts": {s: int(self.counts.get(s, 0)) for s in SPLITS},
            "skipped": dict(self.skipped),
            "stats": {side: s.to_dict() for side, s in self.stats.items()},
        })

    @classmethod
    def from_dict(cls, doc: Any, source: str = MANIFEST_NAME) -> "ChipManifest":
        """Read and check a manifest document.

        Raises:
            ChipFolderError: another format or version, a missing or inconsistent section.
        """
        if not isinstance(doc, Mapping) or doc.get("format") != CHIPS_FORMAT:
            raise ChipFolderError(f"'{source}' is not a geop2p chip manifest (expected \"format\": \"{CHIPS_FORMAT}\").")
        version = doc.get("format_version")
        if version != CHIPS_FORMAT_VERSION:
            raise ChipFolderError(
                f"'{source}' has format_version {version!r}; this geop2p ({__version__}) reads version "
                f"{CHIPS_FORMAT_VERSION}. Re-export the chips with this version of geop2p."
            )
        for key in ("input", "target", "chip_spec", "grid", "split"):
            if not isinstance(doc.get(key), Mapping):
                raise ChipFolderError(f"'{source}' lacks the '{key}' section; re-export the chips.")
        try:
            spec = doc["chip_spec"]
            chip_spec = ChipSpec(int(spec["size"]), int(spec.get("stride", spec["size"])),
                                 float(spec.get("min_valid", 0.95)))
            split = doc["split"]
            split_spec = SplitSpec(tuple(split.get("fractions", (0.8, 0.1, 0.1))), int(split.get("block_size", 1024)),
                                   int(split.get("buffer", 0)), int(split.get("seed", 0)), split.get("mode", "blocks"))
            grid = GeoGrid.from_dict(doc["grid"])
            stats = {side: BandStats.from_dict(s) for side, s in (doc.get("stats") or {}).items()
                     if isinstance(s, Mapping) and s.get("bands")}
            counts = {s: int((doc.get("counts") or {}).get(s, 0)) for s in SPLITS}
            skipped = {str(k): int(v) for k, v in (doc.get("skipped") or {}).items()}
        except (Geop2pError, KeyError, TypeError, ValueError) as exc:
            raise ChipFolderError(f"'{source}' is damaged ({exc}); re-export the chips.") from None
        return cls(
            input=ChipSide.from_dict(doc["input"], "input", source),
            target=ChipSide.from_dict(doc["target"], "target", source),
            grid=grid,
            chip_spec=chip_spec,
            alignment=dict(doc.get("alignment") or {}),
            split=split_spec,
            counts=counts,
            stats=stats,
            aoi=dict(doc["aoi"]) if isinstance(doc.get("aoi"), Mapping) else None,
            skipped=skipped,
            geop2p_version=str(doc.get("geop2p_version", "?")),
            created=str(doc.get("created", "")),
            format_version=version,
        )
