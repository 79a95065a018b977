"""The embedded end-to-end demo: synthetic terrain → chips → pix2pix training → whole-scene prediction → evaluation.

``run_demo(out_dir)`` needs no data and no network.  It chains the same
library calls a user would (``export_chips``, ``train``, ``Translator``,
``evaluate``) on a scene from :mod:`geop2p.demo.scene` — a DEM of fractal
mountains in UTM 13N with shaded-relief imagery as the target — and writes::

    out_dir/
      scene/dem.tif, scene/rgb.tif     the paired scene (EPSG:32613, 30 m, with nodata)
      chips/                           the chip folder (docs/formats.md)
      run/                             the training run (model.safetensors, metrics.csv, samples/...)
      prediction.tif                   the DEM translated to imagery, same grid as dem.tif
      preview.png                      DEM | prediction | target, held-out test blocks outlined
      metrics.json                     model vs the per-pixel linear baseline on the test split, timings

Settings (:class:`DemoConfig`) are tuned to finish in about five minutes on
two CPU cores; ``quick=True`` shrinks everything for tests (well under a minute).
Augmentation is off on purpose: the imagery is lit from the north-west, so a
flipped or rotated DEM would ask for a different (mirrored) shading — the
rotations pix2pix usually gets for free would teach the network the wrong sun.

Example:
    >>> result = run_demo("demo-output")  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from geop2p.demo.preview import write_preview
from geop2p.demo.scene import write_demo_scene
from geop2p.errors import OutputExistsError
from geop2p.formats import jsonsafe
from geop2p.io.atomic import atomic_path

__all__ = ["DemoConfig", "DemoResult", "run_demo", "DEMO_OUTPUTS"]

logger = logging.getLogger(__name__)

#: What the demo writes in its folder; ``overwrite`` removes these and nothing else.
DEMO_OUTPUTS = ("scene", "chips", "run", "prediction.tif", "preview.png", "metrics.json")

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo run (the defaults are the ~5 minute run on 2 CPU cores).

    Attributes:
        size: side of the synthetic scene in pixels (30 m each).
        seed: seeds the terrain, the split and the training.
        chip_size: chip side in pixels.
        stride: chip stride in pixels.
        block_size: side of the spatial split blocks in pixels.
        buffer: pixels between train chips and val/test chips.
        encoder: smp encoder of the U-Net generator (random initial weights: no download).
        encoder_depth: U-Net depth (number of encoder stages).
        decoder_channels: decoder widths, one per stage.
        batch_size: chips per training step.
        max_steps: training steps.
        epochs: upper bound on epochs (``max_steps`` usually stops first).
        d_ndf: discriminator width.
        overlap: prediction window overlap in pixels.

    Example:
        >>> DemoConfig.quick().size < DemoConfig().size
        True
    """

    size: int = 1024
    seed: int = 0
    chip_size: int = 128
    stride: int = 64
    block_size: int = 256
    buffer: int = 0
    encoder: str = "resnet18"
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16)
    batch_size: int = 8
    max_steps: int = 500
    epochs: int = 100
    d_ndf: int = 32
    overlap: int = 64

    @classmethod
    def quick(cls) -> "DemoConfig":
        """Tiny settings for tests and smoke runs: a 192 px scene, 64 px chips, a few steps of a small U-Net."""
        return cls(
            size=192,
            chip_size=64,
            stride=64,
            block_size=64,
            buffer=0,
            encoder_depth=3,
            decoder_channels=(32, 16, 8),
            batch_size=4,
            max_steps=4,
            epochs=4,
            d_ndf=8,
            overlap=16,
        )


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo wrote, its metrics and how long each stage took.

    Attributes:
        out_dir: the demo folder.
        dem_path, rgb_path: the synthetic input and target scenes.
        chips_dir: the exported chip folder.
        run_dir: the training run folder.
        bundle_path: the trained model bundle.
        prediction_path: the predicted imagery (same grid as ``dem_path``).
        preview_path: ``preview.png``.
        metrics_path: ``metrics.json``.
        metrics: the evaluation report (``EvaluationReport.to_dict()``) on the test split.
        table: the evaluation report formatted as a table.
        timings: seconds per stage.
    """

    out_dir: Path
    dem_path: Path
    rgb_path: Path
    chips_dir: Path
    run_dir: Path
    bundle_path: Path
    prediction_path: Path
    preview_path: Path
    metrics_path: Path
    metrics: dict
    table: str
    timings: dict

    def summary(self) -> str:
        """A few lines for the terminal: the metrics table and where things are."""
        total = sum(self.timings.values())
        lines = [
            self.table.rstrip(),
            "",
            f"Demo finished in {total:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items())
            + ").",
            f"Preview (DEM | prediction | target, test blocks outlined): {self.preview_path}",
            f"Prediction: {self.prediction_path}   Model: {self.bundle_path}",
            f"Metrics: {self.metrics_path}",
        ]
        return "\n".join(lines)


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding demo outputs unless ``overwrite``; then remove only those outputs."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"'{out}' exists and is a file; choose a folder name for --out.")
    present = [name for name in DEMO_OUTPUTS if (out / name).exists()]
    if present and not overwrite:
        raise OutputExistsError(
            f"'{out}' already holds demo outputs ({', '.join(present)}); "
            "choose another --out folder or pass --overwrite to replace them."
        )
    for name in present:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


class _Clock:
    """Announces numbered stages and times them."""

    def __init__(self, say: ProgressCallback, n_stages: int) -> None:
        self.say = say
        self.n_stages = n_stages
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.say(f"[{len(self.timings) + 1}/{self.n_stages}] {message}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - t0


def run_demo(
    out_dir: str | os.PathLike = "demo-output",
    *,
    overwrite: bool = False,
    quick: bool = False,
    config: DemoConfig | None = None,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Run the whole journey on a synthetic scene and write the outputs listed in the module doc.

    Args:
        out_dir: the demo folder (created if needed).
        overwrite: replace earlier demo outputs in ``out_dir`` (other files are left alone).
        quick: tiny settings for tests (ignored when ``config`` is given).
        config: explicit settings.
        progress: called with one line per stage.

    Raises:
        OutputExistsError: ``out_dir`` holds demo outputs and ``overwrite`` is False.

    Example:
        >>> result = run_demo("demo-output", overwrite=True)  # doctest: +SKIP
        >>> result.metrics_path.name  # doctest: +SKIP
        'metrics.json'
    """
    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    say = progress or (lambda message: logger.info("%s", message))
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    clock = _Clock(say, 6)


    with clock.stage("scene", f"Writing a synthetic {cfg.size}×{cfg.size} px DEM → imagery scene (EPSG:32613, 30 m)"):
        dem_path, rgb_path = write_demo_scene(out / "scene", size=cfg.size, seed=cfg.seed)

    chips_dir = out / "chips"
    with clock.stage("export", f"Exporting {cfg.chip_size} px chips with a spatial train/val/test split"):
        _export(dem_path, rgb_path, chips_dir, cfg)

    run_dir = out / "run"
    with clock.stage("train", f"Training pix2pix (U-Net {cfg.encoder}, {cfg.max_steps} steps)"):
        bundle_path = _train(chips_dir, run_dir, cfg, say)

    prediction_path = out / "prediction.tif"
    with clock.stage("predict", "Predicting the whole scene with overlapping, blended windows"):
        _predict(bundle_path, dem_path, prediction_path, cfg)

    with clock.stage("evaluate", "Evaluating on the held-out test chips (model vs per-pixel linear baseline)"):
        from geop2p.evaluate import evaluate

        report = evaluate(bundle_path, chips_dir, split="test")
        metrics = report.to_dict()
        table = report.format_table()

    preview_path = out / "preview.png"
    metrics_path = out / "metrics.json"
    with clock.stage("preview", "Drawing preview.png and writing metrics.json"):
        write_preview(preview_path, dem_path, prediction_path, rgb_path, chips_dir / "index.gpkg")
    document = {
        "evaluation": metrics,
        "config": asdict(cfg),
        "timings_s": {k: round(v, 2) for k, v in clock.timings.items()},
        "outputs": {
            "dem": str(dem_path), "target": str(rgb_path), "chips": str(chips_dir), "run": str(run_dir),
            "model": str(bundle_path), "prediction": str(prediction_path), "preview": str(preview_path),
        },
    }
    with atomic_path(metrics_path, overwrite=True) as tmp:
        tmp.write_text(jsonsafe.dumps(document) + "\n", encoding="utf-8")
    return DemoResult(
        out_dir=out, dem_path=dem_path, rgb_path=rgb_path, chips_dir=chips_dir, run_dir=run_dir,
        bundle_path=bundle_path, prediction_path=prediction_path, preview_path=preview_path,
        metrics_path=metrics_path, metrics=metrics, table=table, timings=dict(clock.timings),
    )


# ---------------------------------------------------------------------- stages
def _export(dem_path: Path, rgb_path: Path, chips_dir: Path, cfg: DemoConfig) -> None:
    from geop2p.export import ExportConfig, export_chips

    config = ExportConfig(
        size=cfg.chip_size,
        stride=cfg.stride,
        min_valid=0.9,
        split=(0.7, 0.1, 0.2),
        block_size=cfg.block_size,
        buffer=cfg.buffer,
        seed=cfg.seed,
    )
    export_chips(str(dem_path), str(rgb_path), chips_dir, config=config)


def _train(chips_dir: Path, run_dir: Path, cfg: DemoConfig, say: ProgressCallback | None = None) -> Path:
    from geop2p.train import TrainConfig, train

    config = TrainConfig(
        generator="smp-unet",
        encoder=cfg.encoder,
        encoder_weights="none",
        generator_params={"encoder_depth": cfg.encoder_depth, "decoder_channels": list(cfg.decoder_channels)},
        epochs=cfg.epochs,
        decay_epochs=0,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        d_ndf=cfg.d_ndf,
        augment=False,
        workers=0,
        seed=cfg.seed,
        recommended_overlap=cfg.overlap,
    )
    every = max(1, cfg.max_steps // 6)

    def report(p) -> None:  # a line every sixth of the run, so a terminal sees it move
        if say is not None and (p.step % every == 0 or p.step == p.total_steps):
            losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(p.losses.items()))
            say(f"      step {p.step}/{p.total_steps} (epoch {p.epoch}): {losses}; {p.img_per_s:.1f} img/s")

    result = train(chips_dir, run_dir, config, progress=report)
    return Path(result.bundle_path)


def _predict(bundle_path: Path, dem_path: Path, prediction_path: Path, cfg: DemoConfig) -> None:
    from geop2p.predict import Translator

    translator = Translator.from_file(bundle_path, overlap=cfg.overlap)
    translator.predict_raster(dem_path, prediction_path, overwrite=True)
