"""Benchmark ``geop2p export-chips`` against a bare rasterio loop (the floor).

Writes a 3-band uint8 input and a 1-band float32 target (DEFLATE, tiled) of
``--size-px`` pixels per side, then, each in a fresh subprocess:

* ``bare``: reads every chip window of both rasters and writes each as a
  GeoTIFF with the same creation options, with no checks, masks, stats or split;
* ``export`` with 1 and 2 workers (size 256, stride 256).

Prints a markdown table: chips/s, MB/s (uncompressed pixels read), ratio to the
bare loop, 2-worker speed-up and peak RSS (the largest process: the main one
or a worker), plus the 1-worker exporter's peak RSS at half the raster size,
to show memory does not grow with the raster.

Usage:
    python tools/bench_export.py --size-px 1024            # quick check
    python tools/bench_export.py --size-px 8192 --repeats 3  # the BENCHMARKS.md numbers
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

CHIP = 256
PROFILE = dict(driver="GTiff", tiled=True, blockxsize=256, blockysize=256, compress="deflate")


def write_data(folder: Path, size: int) -> tuple[Path, Path]:
    """Write input.tif (3×uint8) and target.tif (1×float32) of size×size, block by block (flat memory)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    crs = CRS.from_epsg(32631)
    inp, tgt = folder / "input.tif", folder / "target.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(inp, "w", width=size, height=size, count=3, dtype="uint8", crs=crs, transform=t,
                       predictor=2, **PROFILE) as a, \
            rasterio.open(tgt, "w", width=size, height=size, count=1, dtype="float32", crs=crs, transform=t,
                          predictor=3, **PROFILE) as b:
        step = 1024
        for r in range(0, size, step):
            for c in range(0, size, step):
                h, w = min(step, size - r), min(step, size - c)
                yy, xx = np.mgrid[r : r + h, c : c + w] / 512.0
                base = np.sin(yy) * np.cos(xx)
                x = np.stack([base * 100 + 120 + rng.normal(0, 8, (h, w)) for _ in range(3)]).clip(0, 254).astype(np.uint8)
                win = Window(c, r, w, h)
                a.write(x, window=win)
                b.write((base * 400 + 1000 + rng.normal(0, 2, (h, w))).astype(np.float32)[None], window=win)
    return inp, tgt


def _bare(inp: Path, tgt: Path, out: Path) -> int:
    out.mkdir(parents=True)
    n = 0
    with rasterio.open(inp) as a, rasterio.open(tgt) as b:
        for r in range(0, a.height - CHIP + 1, CHIP):
            for c in range(0, a.width - CHIP + 1, CHIP):
                win = Window(c, r, CHIP, CHIP)
                t = a.window_transform(win)
                for src, sub, pred in ((a, "i", 2), (b, "t", 3)):
                    data = src.read(window=win)
                    with rasterio.open(out / f"{sub}_{r}_{c}.tif", "w", width=CHIP, height=CHIP, count=data.shape[0],
                                       dtype=data.dtype, crs=src.crs, transform=t, predictor=pred, **PROFILE) as dst:
                        dst.write(data)
                n += 1
    return n


def _export(inp: Path, tgt: Path, out: Path, workers: int) -> int:
    from geop2p.export import ExportConfig, export_chips

    summary = export_chips(inp, tgt, out, ExportConfig(size=CHIP, stride=CHIP, min_valid=0.5, workers=workers))
    return summary.total


def _child(args: argparse.Namespace) -> None:
    """Run one measurement in this (fresh) process and print JSON."""
    inp, tgt, out = Path(args.input), Path(args.target), Path(args.out)
    t0 = time.perf_counter()
    n = _bare(inp, tgt, out) if args.child == "bare" else _export(inp, tgt, out, args.workers)
    seconds = time.perf_counter() - t0
    peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"chips": n, "seconds": seconds, "peak_mb": peak_kb / 1024}))


def _measure(kind: str, inp: Path, tgt: Path, work: Path, workers: int = 1) -> dict:
    out = work / f"out-{kind}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", kind, "--input", str(inp), "--target", str(tgt), "--out", str(out),
           "--workers", str(workers)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{res.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-px", type=int, default=8192, help="raster width and height in pixels (default 8192)")
    p.add_argument("--repeats", type=int, default=1, help="rounds; each round runs every variant once, side by side; medians are reported")
    p.add_argument("--work-dir", help="where to write the rasters and chips (default: a temporary folder)")
    p.add_argument("--child", choices=["bare", "export"], help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args)
        return
    if args.size_px < CHIP:
        raise SystemExit(f"--size-px must be at least {CHIP}")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="geop2p-bench-"))
    try:
        inp, tgt = write_data(work / "data", args.size_px)
        mb_per_chip = CHIP * CHIP * (3 * 1 + 1 * 4) / 1e6
        variants = (("bare rasterio loop", "bare", 1), ("export, 1 worker", "export", 1),
                    ("export, 2 workers", "export", 2))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
        for _ in range(args.repeats):  # interleaved rounds, so machine noise hits every variant alike
            for name, kind, workers in variants:
                runs[name].append(_measure(kind, inp, tgt, work, workers))
        rows = {}
        for name, rs in runs.items():
            rows[name] = {"chips": rs[0]["chips"], "seconds": statistics.median(r["seconds"] for r in rs),
                          "peak_mb": max(r["peak_mb"] for r in rs), "all": [r["seconds"] for r in rs]}
        half = max(CHIP * 2, args.size_px // 2)
        small_in, small_tg = write_data(work / "data-half", half)
        small = _measure("export", small_in, small_tg, work, 1)
        floor = rows["bare rasterio loop"]["chips"] / rows["bare rasterio loop"]["seconds"]
        one = rows["export, 1 worker"]["chips"] / rows["export, 1 worker"]["seconds"]
        print(f"\nChip export, {args.size_px}×{args.size_px} px, 3×uint8 input + 1×float32 target, "
              f"chips {CHIP} px, stride {CHIP}, median of {args.repeats} interleaved round(s)\n")
        print("| variant | chips | seconds | chips/s | MB/s | × bare loop | × 1 worker | peak RSS (MB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in rows.items():
            rate = r["chips"] / r["seconds"]
            print(f"| {name} | {r['chips']} | {r['seconds']:.2f} | {rate:.1f} | {rate * mb_per_chip:.1f} | "
                  f"{rate / floor:.2f} | {rate / one:.2f} | {r['peak_mb']:.0f} |")
        for name, r in rows.items():
            print(f"- {name}: seconds per round {', '.join(f'{t:.2f}' for t in r['all'])}")
        ratios = [e / b for b, e in zip(rows["bare rasterio loop"]["all"], rows["export, 1 worker"]["all"])]
        speedups = [a / b for a, b in zip(rows["export, 1 worker"]["all"], rows["export, 2 workers"]["all"])]
        print(f"- per-round export(1)/bare time ratio: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"per-round 2-worker speed-up: {', '.join(f'{x:.2f}' for x in speedups)}")
        print(f"\nPeak RSS of the 1-worker export at {half}×{half} px: {small['peak_mb']:.0f} MB "
              f"(vs {rows['export, 1 worker']['peak_mb']:.0f} MB at {args.size_px}×{args.size_px} px).")
        print("Goals: export ≥ 0.7× the bare loop at 1 worker; ≥ 1.7× its 1-worker speed at 2 workers; "
              "flat peak memory.")
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
