#!/usr/bin/env python
"""Benchmarks of ``geop2p predict``: throughput, memory, seams (results go into BENCHMARKS.md).

1. Throughput: end-to-end megapixels/s of ``Translator.predict_raster`` on an
   N×N 3-band uint8 scene versus the bare network forward over the same windows
   (same batch size, same device, same precision, same host↔device copies, no
   reading, blending or writing), alternated and repeated in one process; medians.
   Goal: end-to-end >= 0.85 × bare.
2. Memory: peak RSS (VmHWM) of predicting H/4 × W and H × W scenes (same width,
   4× the height), each in a fresh subprocess.  Goal: ratio <= 1.2.
3. Seams: a small U-Net fitted briefly to a smooth mapping of a smooth synthetic
   scene; mean |gradient| of the prediction across window-boundary rows/columns
   versus elsewhere, for the default overlap with Hann blending, the same
   overlap with plain averaging (``blend="none"``) and no overlap.  Goal <= 1.05.

Random weights are fine for speed; nothing is downloaded (``encoder_weights=None``).
Check it at small sizes; the full sizes are for a quiet machine:

    python tools/bench_predict.py --scene-px 1024 --memory-px 1024 --seam-px 512 --seam-steps 20
    python tools/bench_predict.py                      # 8192² throughput, 4096/16384×16384 memory
"""

from __future__ import annotations

import argparse
import json
import os
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

from geop2p.models.bundle import save_bundle
from geop2p.models.generators import build_generator
from geop2p.predict import Translator
from geop2p.tiling import plan_windows


# ------------------------------------------------------------------------------------ fixtures
def make_bundle(path: Path, encoder: str, window: int, bands: int = 3, out_bands: int = 3, overlap: int | None = None):
    """An smp U-Net bundle with random weights: uint8 in, uint8 out."""
    spec = {"architecture": "smp-unet", "in_channels": bands, "out_channels": out_bands,
            "params": {"encoder_name": encoder}}
    gen = build_generator(spec)
    norm = lambda n: {"method": "minmax", "offset": [127.5] * n, "scale": [127.5] * n, "clip": True}  # noqa: E731
    meta = {
        "generator": gen.spec,
        "input": {"bands": list(range(1, bands + 1)), "band_names": [f"b{i}" for i in range(1, bands + 1)],
                  "dtype": "uint8", "nodata": None, "normalizer": norm(bands)},
        "target": {"band_names": [f"t{i}" for i in range(1, out_bands + 1)], "dtype": "uint8", "nodata": None,
                   "normalizer": norm(out_bands)},
        "chip_size": window,
        "recommended_overlap": window // 4 if overlap is None else overlap,
        "training": None,
    }
    save_bundle(path, gen, meta, overwrite=True)
    return gen, meta


def smooth_field(height: int, width: int, row0: int, seed: int, bands: int) -> np.ndarray:
    """Smooth, deterministic uint8-ranged values (sum of low-frequency sines), computable strip by strip."""
    rng = np.random.default_rng(seed)
    y = np.arange(row0, row0 + height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    out = np.zeros((bands, height, width), np.float32)
    for b in range(bands):
        for _ in range(4):
            fy, fx = rng.uniform(0.002, 0.02, size=2)
            py, px = rng.uniform(0, 2 * np.pi, size=2)
            out[b] += np.sin(fy * y + py) * np.cos(fx * x + px)
    return np.clip(127.5 + 30 * out, 0, 255)


def make_scene(path: Path, height: int, width: int, bands: int = 3, dtype: str = "uint8") -> Path:
    """Write a tiled scene strip by strip (bounded memory)."""
    profile = dict(driver="GTiff", height=height, width=width, count=bands, dtype=dtype, tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", crs=CRS.from_epsg(32631),
                   transform=Affine(10, 0, 500000, 0, -10, 5000000), BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, height, 1024):
            h = min(1024, height - r)
            dst.write(smooth_field(h, width, r, 0, bands).astype(dtype), window=Window(0, r, width, h))
    return path


# ------------------------------------------------------------------------------------ throughput
def bare_forward(t: Translator, height: int, width: int) -> float:
    """Seconds for the network alone over the windows predict would run (same batches, same device)."""
    import torch

    plan = plan_windows(height, width, t.window, t.overlap, t.config.strip_rows)
    bs = t.config.batch_size
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, size=(bs, t.in_channels, t.window, t.window)).astype(np.float32)
    t0 = time.perf_counter()
    for strip in plan.strips:
        n = len(plan.windows(strip))
        for i in range(0, n, bs):
            t._forward(batch[: min(bs, n - i)])
    if t.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_throughput(args, work: Path) -> dict:
    n = args.scene_px
    scene = make_scene(work / f"scene_{n}.tif", n, n)
    bundle = work / "model.safetensors"
    make_bundle(bundle, args.encoder, args.window)
    t = Translator.from_file(bundle, device=args.device, batch_size=args.batch_size, precision=args.precision)
    mpx = n * n / 1e6
    # warm-up (allocator, cudnn autotune)
    t._forward(np.zeros((t.config.batch_size, 3, t.window, t.window), np.float32))
    e2e, bare = [], []
    for _ in range(args.repeats):
        bare.append(bare_forward(t, n, n))
        t0 = time.perf_counter()
        t.predict_raster(scene, work / "pred.tif", overwrite=True)
        e2e.append(time.perf_counter() - t0)
    e2e_s, bare_s = statistics.median(e2e), statistics.median(bare)
    return {
        "scene": f"{n}x{n}x3 uint8", "encoder": args.encoder, "window": t.window, "overlap": t.overlap,
        "batch_size": t.config.batch_size, "device": str(t.device), "precision": t.config.precision,
        "channels_last": t.channels_last, "windows": plan_windows(n, n, t.window, t.overlap).n_windows,
        "end_to_end_s": round(e2e_s, 3), "bare_forward_s": round(bare_s, 3),
        "end_to_end_mpx_s": round(mpx / e2e_s, 3), "bare_forward_mpx_s": round(mpx / bare_s, 3),
        "ratio": round(bare_s / e2e_s, 3), "goal": ">= 0.85",
    }


# ------------------------------------------------------------------------------------ memory
def _peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args) -> None:
    t = Translator.from_file(args.bundle, device=args.device, batch_size=args.batch_size, precision=args.precision)
    before = _peak_rss_mib()
    t.predict_raster(args.memory_child, Path(args.memory_child).with_name("mem_pred.tif"), overwrite=True)
    print(json.dumps({"peak_rss_mib": round(_peak_rss_mib(), 1), "after_model_load_mib": round(before, 1)}))


def bench_memory(args, work: Path) -> dict:
    width = args.memory_px
    bundle = work / "model.safetensors"
    if not bundle.exists():
        make_bundle(bundle, args.encoder, args.window)
    result = {"width": width, "encoder": args.encoder}
    for height in (width // 4, width):
        scene = make_scene(work / f"mem_{height}x{width}.tif", height, width)
        cmd = [sys.executable, __file__, "--memory-child", str(scene), "--bundle", str(bundle),
               "--device", args.device, "--batch-size", str(args.batch_size), "--precision", args.precision]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result[f"{height}x{width}"] = json.loads(out)
        scene.unlink()
    small, big = (result[f"{h}x{width}"]["peak_rss_mib"] for h in (width // 4, width))
    result["ratio"] = round(big / small, 3)
    result["goal"] = "<= 1.2"
    return result


# ------------------------------------------------------------------------------------ seams
def _fit_smooth_model(args, px: int):
    """An smp U-Net fitted briefly to a smooth per-pixel mapping of a smooth scene (normalised units)."""
    import torch

    torch.manual_seed(0)
    x = smooth_field(px, px, 0, 1, 3) / 127.5 - 1
    y = np.tanh(0.8 * x[[1, 2, 0]] - 0.3 * x[[2, 0, 1]])  # smooth, cross-band, in (-1, 1)
    spec = {"architecture": "smp-unet", "in_channels": 3, "out_channels": 3, "params": {"encoder_name": args.encoder}}
    gen = build_generator(spec)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    w = args.window
    gen.train()
    for _ in range(args.seam_steps):
        r, c = rng.integers(0, px - w + 1, size=(2, 4))
        xb = torch.from_numpy(np.stack([x[:, i : i + w, j : j + w] for i, j in zip(r, c)]))
        yb = torch.from_numpy(np.stack([y[:, i : i + w, j : j + w] for i, j in zip(r, c)]))
        loss = (gen(xb) - yb).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen.eval()
    return gen, x, float(loss.detach())


def seam_ratio(pred: np.ndarray, window: int, overlap: int) -> float:
    """Mean |gradient| across rows/columns where a window starts or ends, over the mean elsewhere."""
    h, w = pred.shape[-2:]
    p = pred.astype(np.float64)
    gx = np.abs(np.diff(p, axis=-1)).mean(axis=(0, 1))  # gx[j]: between column j and j+1
    gy = np.abs(np.diff(p, axis=-2)).mean(axis=(0, 2))

    def edges(size):
        plan = plan_windows(size, size, window, overlap)
        idx = set()
        for s in plan.row_starts:
            if s > 0:
                idx.add(s - 1)
            if s + window < size:
                idx.add(s + window - 1)
        mask = np.zeros(size - 1, bool)
        mask[sorted(idx)] = True
        return mask

    mx, my = edges(w), edges(h)
    boundary = np.concatenate([gx[mx], gy[my]]).mean()
    elsewhere = np.concatenate([gx[~mx], gy[~my]]).mean()
    return float(boundary / elsewhere)


def bench_seams(args) -> dict:
    px = args.seam_px
    gen, x, loss = _fit_smooth_model(args, px)
    norm = {"method": "minmax", "offset": [0.0] * 3, "scale": [1.0] * 3, "clip": False}
    meta = {"generator": gen.spec,
            "input": {"bands": [1, 2, 3], "band_names": ["a", "b", "c"], "dtype": "float32", "nodata": None,
                      "normalizer": norm},
            "target": {"band_names": ["a", "b", "c"], "dtype": "float32", "nodata": None, "normalizer": norm},
            "chip_size": args.window, "recommended_overlap": args.window // 4}
    results = {"scene_px": px, "fit_steps": args.seam_steps, "final_l1": round(loss, 4), "goal": "<= 1.05"}
    default = Translator(gen, meta, device=args.device).overlap
    for name, opts in {
        f"hann_overlap_{default}": dict(blend="hann"),
        f"plain_average_overlap_{default}": dict(blend="none"),
        "no_overlap": dict(overlap=0, blend="none"),
    }.items():
        t = Translator(gen, meta, device=args.device, precision="fp32", **opts)
        pred = t.predict_array(x.astype(np.float32))
        results[name] = round(seam_ratio(pred, t.window, t.overlap), 4)
    return results


# ------------------------------------------------------------------------------------ main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scene-px", type=int, default=8192, help="throughput scene side (pixels)")
    p.add_argument("--memory-px", type=int, default=16384, help="memory scenes' width; heights width/4 and width")
    p.add_argument("--seam-px", type=int, default=1024, help="seam scene side (pixels)")
    p.add_argument("--seam-steps", type=int, default=150, help="training steps of the seam model")
    p.add_argument("--encoder", default="resnet18", help="smp encoder (random weights)")
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-seams", action="store_true")
    p.add_argument("--work-dir", type=Path, default=None, help="where scenes are written (default: a temp dir)")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    p.add_argument("--bundle", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp)
        report = {"cpu_count": os.cpu_count()}
        if not args.skip_throughput:
            report["throughput"] = bench_throughput(args, work)
            print(json.dumps({"throughput": report["throughput"]}), flush=True)
        if not args.skip_memory:
            report["memory"] = bench_memory(args, work)
            print(json.dumps({"memory": report["memory"]}), flush=True)
        if not args.skip_seams:
            report["seams"] = bench_seams(args)
            print(json.dumps({"seams": report["seams"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
