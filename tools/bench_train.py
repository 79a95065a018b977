"""Training throughput of geop2p: img/s, FLOPs per image and the share of step time spent waiting for data.

Runs the real :func:`geop2p.train.train` (real ChipDataset + DataLoader over a
generated chip folder of GeoTIFFs) for each generator and batch size, and
reports, after ``--warmup`` steps:

* img/s of the whole pix2pix step (G forward, D step, G step);
* FLOPs per image of one training step (G and D forward + backward), counted with
  ``torch.utils.flop_counter.FlopCounterMode`` — divide ``img/s × FLOPs`` by the
  card's peak to read the GPU figure as a share of it;
* the data-wait fraction: time the step loop waited on the DataLoader / step time
  (goal < 5 % with enough ``--workers``).

On CUDA the run uses the defaults of ``geop2p train`` there: bf16 autocast and channels_last.

Usage (the lead runs the big sizes on a quiet machine; check with a tiny one):

    python tools/bench_train.py                                   # 256 px, batch 1 and 8, CPU
    python tools/bench_train.py --device cuda --workers 8         # GPU
    python tools/bench_train.py --size 64 --batches 1,2 --steps 2 --warmup 1 --chips 8   # smoke test
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS

from geop2p.losses import GANLoss, masked_l1
from geop2p.models import build_discriminator, build_generator
from geop2p.stats import StatsAccumulator
from geop2p.train import TrainConfig, TrainProgress, train

ARCHS = {
    "smp-resnet34": {"generator": "smp-unet", "encoder": "resnet34"},
    "pix2pix-unet": {"generator": "pix2pix-unet"},
}


def write_bench_chips(root: Path, n_chips: int, size: int, seed: int = 0) -> Path:
    """A chip folder (docs/formats.md) of ``n_chips`` 3-band uint8 / 1-band float32 chips, all train."""
    import geopandas as gpd
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    crs = CRS.from_epsg(32631)
    acc_in, acc_tg = StatsAccumulator("uint8", ["red", "green", "blue"]), StatsAccumulator("float32", ["dsm"])
    rows, geoms = [], []
    for k in range(n_chips):
        col_off = k * size
        chip_id = f"{0:06d}_{col_off:06d}"
        tr = Affine(10, 0, 500000 + 10 * col_off, 0, -10, 5000000)
        x = rng.integers(0, 250, size=(3, size, size), dtype=np.uint8)
        y = (x.astype(np.float32).mean(axis=0, keepdims=True) * 0.5 + 100).astype(np.float32)
        valid = np.ones((size, size), bool)
        for sub, data, nodata in (("input", x, None), ("target", y, -9999.0)):
            with rasterio.open(root / sub / f"{chip_id}.tif", "w", driver="GTiff", height=size, width=size,
                               count=data.shape[0], dtype=data.dtype, crs=crs, transform=tr, nodata=nodata,
                               tiled=True, blockxsize=min(256, size), blockysize=min(256, size)) as dst:
                dst.write(data)
        acc_in.update(x, valid)
        acc_tg.update(y, valid)
        rows.append({"chip_id": chip_id, "split": "train", "row_off": 0, "col_off": col_off, "height": size,
                     "width": size, "valid_fraction": 1.0})
        geoms.append(box(tr.c, tr.f - 10 * size, tr.c + 10 * size, tr.f))
    gpd.GeoDataFrame(rows, geometry=geoms, crs=crs).to_file(root / "index.gpkg", layer="chips", driver="GPKG")
    manifest = {
        "format": "geop2p-chips", "format_version": 1, "geop2p_version": "bench",
        "input": {"sources": [], "bands": [1, 2, 3], "band_names": ["red", "green", "blue"], "dtype": "uint8",
                  "nodata": None},
        "target": {"sources": [], "bands": [1], "band_names": ["dsm"], "dtype": "float32", "nodata": -9999.0},
        "chip_spec": {"size": size, "stride": size, "min_valid": 0.0},
        "counts": {"train": n_chips, "val": 0, "test": 0},
        "stats": {"input": acc_in.result().to_dict(), "target": acc_tg.result().to_dict()},
    }
    (root / "geop2p-chips.json").write_text(json.dumps(manifest))
    return root


def flops_per_image(cfg: TrainConfig, size: int, device: torch.device) -> float:
    """FLOPs of one pix2pix training step (G fwd+bwd, D fwd+bwd twice) for one image."""
    from torch.utils.flop_counter import FlopCounterMode

    g = build_generator(cfg.generator_spec(3, 1)).to(device)
    d = build_discriminator(4, ndf=cfg.d_ndf, n_layers=cfg.d_layers, norm=cfg.d_norm).to(device)
    gan = GANLoss(cfg.gan_mode)
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    y = torch.rand(1, 1, size, size, device=device) * 2 - 1
    v = torch.ones(1, 1, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        fake = g(x)
        logits = d(torch.cat([torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)], 0))
        real_l, fake_l = logits.chunk(2)
        gan.discriminator(real_l, fake_l, v).backward()
        loss = gan.generator(d(torch.cat([x, fake], 1)), v) + 100 * masked_l1(fake, y, v)
        loss.backward()
    return float(counter.get_total_flops())


def bench_one(chips: Path, arch: str, batch: int, args: argparse.Namespace, work: Path) -> dict:
    cfg = TrainConfig(**ARCHS[arch], batch_size=batch, device=args.device, workers=args.workers,
                      epochs=1000, decay_epochs=0, max_steps=args.warmup + args.steps, n_samples=0,
                      augment=True)
    records: list[TrainProgress] = []
    run = work / f"run-{arch}-{batch}"
    train(chips, run, cfg, overwrite=True, progress=records.append)
    timed = records[args.warmup:]
    step_s = sum(r.step_s for r in timed)
    wait_s = sum(r.data_wait_s for r in timed)
    flops = flops_per_image(cfg, args.size, torch.device("cuda" if args.device == "cuda" else "cpu"))
    img_s = batch * len(timed) / step_s if step_s > 0 else float("nan")
    return {
        "arch": arch, "batch": batch, "size": args.size, "device": args.device,
        "img_per_s": round(img_s, 3),
        "median_step_ms": round(1000 * statistics.median(r.step_s for r in timed), 2),
        "data_wait_fraction": round(wait_s / step_s, 4) if step_s > 0 else None,
        "gflops_per_image": round(flops / 1e9, 2),
        "achieved_tflops": round(img_s * flops / 1e12, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="chip size in pixels")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated, from {', '.join(ARCHS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--chips", type=int, default=16, help="minimum chips in the generated folder")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    archs = [a for a in args.archs.split(",") if a]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        parser.error(f"unknown arch {unknown}; choose from {', '.join(ARCHS)}")
    if args.size % 256 and "pix2pix-unet" in archs:
        print(f"note: pix2pix-unet (num_downs 8) needs 256-px multiples; using num_downs "
              f"{int(np.log2(args.size & -args.size))} at {args.size} px", file=sys.stderr)
        ARCHS["pix2pix-unet"] = {"generator": "pix2pix-unet",
                                 "generator_params": {"num_downs": int(np.log2(args.size & -args.size))}}
    need = max(batches) * (args.warmup + args.steps)
    work = Path(tempfile.mkdtemp(prefix="geop2p-bench-"))
    try:
        chips = write_bench_chips(work / "chips", max(args.chips, need), args.size)  # one epoch: no mid-run validation
        results = [bench_one(chips, arch, b, args, work) for arch in archs for b in batches]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'arch':<14} {'batch':>5} {'img/s':>9} {'step ms':>9} {'data wait':>9} {'GFLOP/img':>10} {'TFLOP/s':>9}")
    for r in results:
        print(f"{r['arch']:<14} {r['batch']:>5} {r['img_per_s']:>9.2f} {r['median_step_ms']:>9.1f} "
              f"{100 * r['data_wait_fraction']:>8.1f}% {r['gflops_per_image']:>10.2f} {r['achieved_tflops']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
