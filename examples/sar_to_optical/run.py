#!/usr/bin/env python
"""SAR → optical: Sentinel-1 GRD backscatter (σ0 in dB, VV and VH) → Sentinel-2 L2A true colour.

No Python package ships such a pair, so bring your own (see README.md) laid out as

    data/sar_to_optical/s1_sigma0_db.tif   2 bands float32: VV, VH in dB (terrain-corrected, e.g. EPSG:326xx, 10 m)
    data/sar_to_optical/s2_l2a_rgb.tif     3 bands uint16: B4, B3, B2 surface reflectance × 10000, same area and date ±days

Both are read as they are: the S2 image is reprojected onto the S1 grid if they differ.

    python examples/sar_to_optical/run.py    # settings in config.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "examples" / HERE.name)
    parser.add_argument("--max-steps", type=int, default=None, help="override train.max_steps (smoke runs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(args.config.read_text())

    paths = {k: ROOT / v for k, v in cfg["data"].items()}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        print(f"Missing input data: {', '.join(missing)}.\n"
              "Bring a Sentinel-1 σ0 dB (VV, VH) GeoTIFF and a Sentinel-2 L2A RGB GeoTIFF of the same area; see examples/sar_to_optical/README.md for how to make and lay them out.", file=sys.stderr)
        return 2

    from geop2p.evaluate import evaluate
    from geop2p.export import ExportConfig, export_chips
    from geop2p.predict import Translator
    from geop2p.train import train
    from geop2p.train_config import TrainConfig

    export_opts = dict(cfg["export"])
    export_opts = {k: tuple(v) if isinstance(v, list) else v for k, v in export_opts.items()}
    train_opts = dict(cfg["train"])
    if args.max_steps is not None:
        train_opts["max_steps"] = args.max_steps
    export_config = ExportConfig(**export_opts)  # validate both configs before writing anything
    train_config = TrainConfig.from_dict(train_opts)

    out = args.out
    summary = export_chips(str(paths["input"]), str(paths["target"]), out / "chips", config=export_config,
                           overwrite=args.overwrite)
    print(f"Exported chips: {summary}")
    result = train(out / "chips", out / "run", train_config, overwrite=args.overwrite)
    prediction = Translator.from_file(result.bundle_path).predict_raster(
        paths["input"], out / "prediction.tif", overwrite=args.overwrite
    )
    report = evaluate(result.bundle_path, out / "chips", split="test")
    print(report.format_table())
    print(f"Prediction: {prediction}\nModel: {result.bundle_path}\nTraining samples: {out / 'run' / 'samples'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
