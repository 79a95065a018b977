"""Is bf16 inference accurate enough, and how much faster is it? fp32 vs bf16 (+ channels_last) on a trained model.

Predicts the same scene with a trained bundle three ways, in one process,
interleaved over ``--repeats`` rounds (medians):

* ``fp32``: float32 eager;
* ``fp32+cl``: float32 with channels_last memory format;
* ``bf16``: bf16 autocast;
* ``bf16+cl``: bf16 autocast and channels_last memory format.

and reports, for each, megapixels/s and the speed-up over fp32; the mean and
maximum absolute difference from the fp32 prediction, in the target's units;
and, when ``--target`` is given, each variant's MAE against that target over
pixels valid in both, so the cost of bf16 can be read against the model's
own error.

A trained model is needed (random weights say nothing about accuracy); the
demo makes one in a few minutes::

    geop2p demo --out demo-output
    python tools/bench_precision.py --model demo-output/run/model.safetensors \\
        --scene demo-output/scene/dem.tif --target demo-output/scene/rgb.tif
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from geop2p.predict import Translator

VARIANTS = {"fp32": dict(precision="fp32", channels_last=False),
            "fp32+cl": dict(precision="fp32", channels_last=True),
            "bf16": dict(precision="bf16", channels_last=False),
            "bf16+cl": dict(precision="bf16", channels_last=True)}


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        data = src.read().astype(np.float64)
        valid = (src.read_masks() > 0).all(axis=0)
    return data, valid


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a trained bundle (.safetensors)")
    p.add_argument("--scene", type=Path, required=True, help="scene to predict (the model's input)")
    p.add_argument("--target", type=Path, help="the true target on the scene's grid, for MAE")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    translators = {name: Translator.from_file(args.model, device="cpu", batch_size=args.batch_size, **opts)
                   for name, opts in VARIANTS.items()}
    with rasterio.open(args.scene) as src:
        mpx = src.width * src.height / 1e6
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {name: Path(tmp) / f"{name}.tif" for name in VARIANTS}
        for _ in range(args.repeats):
            for name, t in translators.items():
                t0 = time.perf_counter()
                t.predict_raster(args.scene, outputs[name], overwrite=True)
                seconds[name].append(time.perf_counter() - t0)
        preds = {name: _read(path) for name, path in outputs.items()}
    ref, ref_valid = preds["fp32"]
    truth = _read(args.target) if args.target else None

    print(f"\n{args.model.name} on {args.scene.name} ({mpx:.2f} Mpx), batch {args.batch_size}, "
          f"median of {args.repeats} interleaved rounds\n")
    print("| variant | Mpx/s | × fp32 | mean abs diff vs fp32 | max abs diff vs fp32 |"
          + (" MAE vs target |" if truth else ""))
    print("| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if truth else ""))
    fp32_s = statistics.median(seconds["fp32"])
    for name in VARIANTS:
        s = statistics.median(seconds[name])
        data, valid = preds[name]
        both = valid & ref_valid
        diff = np.abs(data - ref)[:, both]
        row = f"| {name} | {mpx / s:.3f} | {fp32_s / s:.2f} | {diff.mean():.4f} | {diff.max():.4f} |"
        if truth is not None:
            t_data, t_valid = truth
            m = both & t_valid
            row += f" {np.abs(data - t_data)[:, m].mean():.4f} |"
        print(row)
    print("\nseconds per round: " + "; ".join(f"{n} " + ", ".join(f"{x:.2f}" for x in v) for n, v in seconds.items()))


if __name__ == "__main__":
    main()
