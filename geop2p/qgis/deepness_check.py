"""Does a Deepness export agree with ``geop2p predict``?  Measured band by band, zone by zone.

:func:`check_export` runs the exported ONNX model through
:func:`geop2p.onnx_export.emulate_regression` (what Deepness 0.6.5's code does:
its tile grid, centre-crop stitching and uint8 buffer), decodes each band, and
compares it with the raster ``geop2p predict`` writes (the
:class:`~geop2p.predict.Translator`, Hann-blended windows) on valid pixels.
Differences are ``|Δ| / range`` with ``range`` the band's output range
(``2 · scale`` of the target normaliser), reported in three zones:

* ``edge/nodata``: within ``margin`` px of an invalid pixel or the raster's border
  (Deepness pads past the top/right border; both see nodata set to 0);
* ``seams``: within ``margin`` px of a Deepness tile seam (where the tile a pixel is
  copied from changes), outside the first zone;
* ``interior``: the rest.

Run it from a shell (``layers.npy``: what the plugin returned, e.g. the harness's
``result_raw.npy``, to compare the real plugin instead of the emulation)::

    python -m geop2p.qgis.deepness_check run/model.safetensors model.onnx scene.tif [--layers layers.npy]

Example:
    >>> import numpy as np
    >>> stats = zone_stats("all", np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 1.002]), 1.0, 1e-3)
    >>> stats.pixels, round(stats.max, 6), stats.over
    (3, 0.002, 0.3333333333333333)
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geop2p.onnx_export import DeepnessGrid, decode_layers, emulate_regression
from geop2p.onnx_export.encoding import BandCode

__all__ = ["AgreementReport", "ZoneStats", "check_export", "compare", "zone_masks", "zone_stats"]

ZONES = ("interior", "seams", "edge/nodata")


@dataclass(frozen=True)
class ZoneStats:
    """``|Δ| / range`` over one zone of one band.

    Attributes:
        zone: ``all``, ``interior``, ``seams`` or ``edge/nodata``.
        pixels: valid pixels in the zone.
        max: the largest ``|Δ| / range``.
        p999: its 99.9th percentile.
        mean: its mean.
        over: the fraction of pixels above the tolerance.
    """

    zone: str
    pixels: int
    max: float
    p999: float
    mean: float
    over: float


def zone_stats(zone: str, got: np.ndarray, want: np.ndarray, value_range: float, tolerance: float) -> ZoneStats:
    """The statistics of ``|got - want| / value_range`` (flat arrays of one zone's valid pixels)."""
    if got.size == 0:
        return ZoneStats(zone, 0, 0.0, 0.0, 0.0, 0.0)
    d = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)) / value_range
    d = np.where(np.isnan(d), np.inf, d)  # a valid pixel decoded as nodata counts as the worst
    return ZoneStats(zone, int(d.size), float(d.max()), float(np.quantile(d, 0.999)), float(d.mean()),
                     float((d > tolerance).mean()))


def _dilate(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` grown by ``margin`` px (a square structuring element)."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for k in range(1, margin + 1):
            grown[tuple(slice(k, None) if a == axis else slice(None) for a in range(2))] |= out[
                tuple(slice(None, -k) if a == axis else slice(None) for a in range(2))]
            grown[tuple(slice(None, -k) if a == axis else slice(None) for a in range(2))] |= out[
                tuple(slice(k, None) if a == axis else slice(None) for a in range(2))]
        out = grown
    return out


def zone_masks(grid: DeepnessGrid, valid: np.ndarray, margin: int) -> dict[str, np.ndarray]:
    """Boolean ``(H, W)`` masks of the three zones (see the module docstring), each within ``valid``."""
    border = np.zeros_like(valid)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    edge = _dilate(~valid | border, margin)
    source, _ = grid.source_of()
    seam = np.zeros_like(valid)
    seam[:, 1:] |= source[:, 1:] != source[:, :-1]
    seam[1:, :] |= source[1:, :] != source[:-1, :]
    seams = _dilate(seam, margin) & ~edge
    return {"interior": valid & ~edge & ~seams, "seams": valid & seams, "edge/nodata": valid & edge}


@dataclass(frozen=True)
class AgreementReport:
    """Per band and zone, how the Deepness result differs from ``geop2p predict``.

    Attributes:
        bands: band names.
        ranges: each band's output range in target units.
        stats: ``stats[b]`` = one :class:`ZoneStats` for ``all`` and one per zone.
        tolerance: the acceptance threshold on ``|Δ| / range``.
        nodata_ok: the pixels ``geop2p predict`` marks invalid are nodata in the decoded bands.
    """

    bands: tuple[str, ...]
    ranges: tuple[float, ...]
    stats: tuple[tuple[ZoneStats, ...], ...]
    tolerance: float
    nodata_ok: bool

    @property
    def worst(self) -> float:
        """The largest ``|Δ| / range`` over all bands and valid pixels."""
        return max(s[0].max for s in self.stats)

    def format_table(self) -> str:
        """A text table: band, zone, pixels, max, p99.9, mean, fraction over the tolerance."""
        rows = [f"{'band':<10} {'zone':<12} {'pixels':>8} {'max':>10} {'p99.9':>10} {'mean':>10} {'>tol':>8}"]
        for band, zones in zip(self.bands, self.stats):
            for z in zones:
                rows.append(f"{band:<10} {z.zone:<12} {z.pixels:>8} {z.max:>10.3g} {z.p999:>10.3g} {z.mean:>10.3g} "
                            f"{z.over:>8.2%}")
        rows.append(f"|Δ|/range tolerance {self.tolerance:g}; worst {self.worst:.3g}; "
                    f"invalid pixels decoded as nodata: {self.nodata_ok}")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"tolerance": self.tolerance, "worst": self.worst, "nodata_ok": self.nodata_ok,
                "bands": [{"band": b, "range": r, "zones": [vars(z) for z in zs]}
                          for b, r, zs in zip(self.bands, self.ranges, self.stats)]}


def compare(decoded: np.ndarray, reference: np.ndarray, valid: np.ndarray, codes: Sequence[BandCode],
            ranges: Sequence[float], grid: DeepnessGrid, margin: int = 16, tolerance: float = 1e-3) -> AgreementReport:
    """Compare decoded Deepness bands with ``geop2p predict``'s bands (both ``(bands, H, W)``) on ``valid``."""
    zones = zone_masks(grid, valid, margin)
    stats = []
    nodata_ok = True
    for b, (code, rng) in enumerate(zip(codes, ranges)):
        got, want = decoded[b], reference[b].astype(np.float64)
        row = [zone_stats("all", got[valid], want[valid], rng, tolerance)]
        row += [zone_stats(z, got[zones[z]], want[zones[z]], rng, tolerance) for z in ZONES]
        stats.append(tuple(row))
        if code.kind == "split16" or code.nodata is not None:
            nodata_ok &= bool(np.isnan(got[~valid]).all())
    return AgreementReport(tuple(c.band for c in codes), tuple(float(r) for r in ranges), tuple(stats),
                           tolerance, nodata_ok)


def check_export(
    bundle: str | Path, onnx_path: str | Path, scene: str | Path, *, layers: np.ndarray | None = None,
    margin: int = 16, tolerance: float = 1e-3, device: str = "cpu", predict_options: dict[str, Any] | None = None,
) -> tuple[AgreementReport, np.ndarray, np.ndarray]:
    """Emulate Deepness on ``scene`` with ``onnx_path`` (or take the plugin's ``layers``) and compare.

    Args:
        bundle: the model bundle ``onnx_path`` was exported from.
        onnx_path: the exported model.
        scene: the raster, as the Deepness layer (its nodata pads the tiles past its edges).
        layers: what the plugin returned, ``(n_outputs, H, W)``; None runs the emulation.
        margin: the width in pixels of the seam and edge/nodata zones.
        tolerance: the threshold on ``|Δ| / range`` the report counts.
        device: where ``geop2p predict`` runs.
        predict_options: :class:`~geop2p.predict.PredictConfig` fields for ``geop2p predict``
            (default: none, i.e. the command's defaults).

    Returns:
        ``(report, decoded, reference)``: the report, the decoded Deepness bands (float64, NaN = nodata)
        and ``geop2p predict``'s raster.
    """
    import onnx
    import onnxruntime as ort
    import rasterio

    from geop2p.formats import jsonsafe
    from geop2p.io.read import read_raster
    from geop2p.predict import Translator

    model = onnx.load(str(onnx_path))
    meta = jsonsafe.loads({p.key: p.value for p in model.metadata_props}["geop2p"])
    codes = [BandCode.from_dict(c) for c in meta["bands"]]
    tile = int(model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value)
    overlap = int(meta["tile_overlap_px"])
    translator = Translator.from_file(bundle, device=device, **(predict_options or {}))
    bands = translator.input.source_bands
    data, valid = read_raster(scene, bands=bands)
    with rasterio.open(scene) as src:
        layer_nodata = src.nodata
    if layers is None:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        layers = emulate_regression(lambda x: session.run(None, {name: x}), data, tile, overlap, layer_nodata)
    decoded = decode_layers(np.asarray(layers), codes)
    with tempfile.TemporaryDirectory() as tmp:
        out = translator.predict_raster(scene, Path(tmp) / "pred.tif")
        with rasterio.open(out) as src:
            reference = src.read()
    ranges = [2 * abs(s) for s in translator.target.normalizer.scale]
    grid = DeepnessGrid(data.shape[1], data.shape[2], tile, overlap)
    return compare(decoded, reference, valid, codes, ranges, grid, margin, tolerance), decoded, reference


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m geop2p.qgis.deepness_check MODEL ONNX SCENE [--layers L.npy] [--margin 16] [--json OUT]``."""
    parser = argparse.ArgumentParser(prog="python -m geop2p.qgis.deepness_check", description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("onnx")
    parser.add_argument("scene")
    parser.add_argument("--layers", help="the plugin's result (n_outputs, H, W) as .npy, instead of the emulation")
    parser.add_argument("--margin", type=int, default=16)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    layers = np.load(args.layers) if args.layers else None
    report, _, _ = check_export(args.model, args.onnx, args.scene, layers=layers, margin=args.margin,
                                tolerance=args.tolerance)
    print(report.format_table())
    if args.json:
        from geop2p.formats import jsonsafe

        Path(args.json).write_text(jsonsafe.dumps(report.to_dict()), encoding="utf-8")


if __name__ == "__main__":
    main()
