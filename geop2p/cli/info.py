"""``geop2p info PATH``: summarise a chip folder, a raster or a model bundle (a wrapper over :func:`geop2p.io.describe.describe`)."""

from __future__ import annotations

import json

import click

__all__ = ["command"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def _stats_lines(stats: dict | None) -> list[str]:
    lines = []
    for b in (stats or {}).get("bands", []):
        pct = b.get("percentiles") or {}
        lines.append(
            f"    {b.get('name')}: n={b.get('count')} min={_fmt(b.get('min'))} max={_fmt(b.get('max'))} "
            f"mean={_fmt(b.get('mean'))} std={_fmt(b.get('std'))} "
            + " ".join(f"p{k}={_fmt(v)}" for k, v in pct.items())
        )
    return lines


def _chips_text(d: dict) -> list[str]:
    counts = d.get("counts") or {}
    spec = d.get("chip_spec") or {}
    split = d.get("split") or {}
    align = d.get("alignment") or {}
    lines = [
        f"chip folder {d['path']} (format {d.get('format_version')}, geop2p {d.get('geop2p_version')}, {d.get('created')})",
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
        lines.extend("  " + line for line in _stats_lines((d.get("stats") or {}).get(side)))
    return lines


def _raster_text(d: dict) -> list[str]:
    return [
        f"raster {d['path']}",
        f"  size: {d['width']} × {d['height']} px, {d['count']} band(s), dtypes {', '.join(sorted(set(d['dtypes'])))}",
        f"  bands: {', '.join(str(x) if x else f'band_{i}' for i, x in enumerate(d['descriptions'], start=1))}",
        f"  nodata: {d['nodata']}, mask: {'yes' if d['has_mask'] else 'no'}",
        f"  CRS: {d['crs'] or 'none (pixel space)'}",
        f"  resolution: {_fmt(d['res'][0])} × {_fmt(d['res'][1])}",
        f"  bounds (left, bottom, right, top): {', '.join(_fmt(v) for v in d['bounds'])}",
    ]


def _bundle_text(d: dict) -> list[str]:
    gen = d.get("generator") or {}
    lines = [
        f"model bundle {d['path']} (format {d.get('format_version')}, geop2p {d.get('geop2p_version')})",
        f"  generator: {gen.get('architecture')} {gen.get('params', {})}, "
        f"{gen.get('in_channels')} → {gen.get('out_channels')} channels",
        f"  chip size {d.get('chip_size')}, recommended overlap {d.get('recommended_overlap')}",
    ]
    for side in ("input", "target"):
        s = d.get(side) or {}
        lines.append(f"  {side}: bands {s.get('band_names')}, dtype {s.get('dtype')}, nodata {s.get('nodata')}")
    training = d.get("training") or {}
    if training:
        lines.append(
            "  training: " + ", ".join(f"{k} {training[k]}" for k in ("epochs", "steps", "best_epoch", "best_metric") if k in training)
        )
    return lines


@click.command("info")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(path: str, as_json: bool) -> None:
    """Summarise PATH: a chip folder (counts per split, bands, dtypes, CRS, stats), any raster, or a model bundle.

    \b
    Examples:
      geop2p info chips/
      geop2p info scene.tif --json
      geop2p info run/model.safetensors
    """
    from geop2p.io.describe import describe

    d = describe(path)
    if as_json:
        click.echo(json.dumps(d, indent=2, default=str))
        return
    text = {"chips": _chips_text, "raster": _raster_text, "bundle": _bundle_text}[d["kind"]](d)
    click.echo("\n".join(text))
