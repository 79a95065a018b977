#!/usr/bin/env python
"""Imagery → map: an orthophoto → a rendered map of the same area (the pix2pix "aerial → map" task, georeferenced).

No Python package ships such a pair, so bring your own (see README.md) laid out as

    data/imagery_to_map/orthophoto.tif   RGB uint8 orthophoto (e.g. a national 0.5–1 m orthophoto in its projected CRS)
    data/imagery_to_map/map.tif          the map rendered as an RGB uint8 GeoTIFF over the same extent
                                         (e.g. QGIS: Project → Import/Export → Export Map to Image, with a world file)

The map is resampled onto the orthophoto grid with nearest neighbour (no blended colours).

    python examples/imagery_to_map/run.py    # settings in config.yaml
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
              "Bring an orthophoto GeoTIFF and the same area's map rendered as a GeoTIFF; see examples/imagery_to_map/README.md for how to make and lay them out.", file=sys.stderr)
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
