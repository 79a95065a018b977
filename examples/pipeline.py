"""The pipeline every example runs: export → train → predict → evaluate, settings from its config.yaml.

Each ``examples/<case>/run.py`` describes its data and calls :func:`run_example`.
A config's ``data:`` maps ``input`` and ``target`` (and optionally ``aoi``) to
paths relative to the repository root; ``input``/``target`` may join several
single-band files with commas, as ``geop2p export-chips`` accepts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]


def stack_bands(sources: list[str], dst: Path) -> Path:
    """Write single-band ``sources`` (same grid) as one multi-band GeoTIFF ``dst`` (predict reads one raster)."""
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


def run_example(
    here: Path,
    description: str,
    missing_hint: str,
    argv: list[str] | None = None,
    predict_scene: Callable[[str, Path], Path | str] | None = None,
) -> int:
    """Run the example in folder ``here``; return the process exit code (2 when its data is missing).

    Args:
        here: the example's folder (holds config.yaml).
        description: the ``--help`` text.
        missing_hint: printed when a data file is missing: what to bring, or how to fetch it.
        argv: command-line arguments (default: ``sys.argv[1:]``).
        predict_scene: maps the (comma-joined) input and the output folder to the raster to predict
            (default: the input itself).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=here / "config.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "examples" / here.name)
    parser.add_argument("--max-steps", type=int, default=None, help="override train.max_steps (smoke runs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(args.config.read_text())

    paths = {k: ",".join(str(ROOT / p.strip()) for p in str(v).split(",")) for k, v in cfg["data"].items()}
    missing = [p for v in paths.values() for p in v.split(",") if not Path(p).exists()]
    if missing:
        print(f"Missing input data: {', '.join(missing)}.\n{missing_hint}", file=sys.stderr)
        return 2

    from geop2p.evaluate import evaluate
    from geop2p.export import ExportConfig, export_chips
    from geop2p.predict import Translator
    from geop2p.train import TrainConfig, train

    export_opts = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["export"].items()}
    if "aoi" in paths:
        export_opts["aoi"] = paths["aoi"]
    train_opts = dict(cfg["train"])
    if args.max_steps is not None:
        train_opts["max_steps"] = args.max_steps
    export_config = ExportConfig(**export_opts)  # validate both configs before writing anything
    train_config = TrainConfig.from_dict(train_opts)

    out = args.out
    summary = export_chips(paths["input"], paths["target"], out / "chips", config=export_config,
                           overwrite=args.overwrite)
    print(f"Exported chips: {summary}")
    result = train(out / "chips", out / "run", train_config, overwrite=args.overwrite)
    scene = predict_scene(paths["input"], out) if predict_scene else paths["input"]
    prediction = Translator.from_file(result.bundle_path).predict_raster(
        scene, out / "prediction.tif", overwrite=args.overwrite
    )
    report = evaluate(result.bundle_path, out / "chips", split="test")
    print(report.format_table())
    print(f"Prediction: {prediction}\nModel: {result.bundle_path}\nTraining samples: {out / 'run' / 'samples'}")
    return 0
