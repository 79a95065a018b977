"""``geop2p predict SCENE.tif [MORE.tif ...] --model MODEL.safetensors``: a thin wrapper over :func:`geop2p.predict.predict_scenes`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from geop2p.cli.options import IntList, device_option, overwrite_option
from geop2p.io.compression import COMPRESSIONS

__all__ = ["command"]


@click.command("predict")
@click.argument("scenes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--model", "model", required=True, type=click.Path(path_type=Path),
              help="Model bundle (.safetensors) written by `geop2p train`.")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output GeoTIFF (one scene only). Default: <scene>_pred.tif beside the scene.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the outputs (<scene>_pred.tif each); use it for several scenes.")
@click.option("--window", type=int, default=None,
              help="Window size in pixels, a multiple of 32. Default: the model's chip size.")
@click.option("--overlap", type=int, default=None,
              help="Pixels shared by neighbouring windows, blended with cosine ramps. "
                   "Default: the model's recommended overlap; at most half the window.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Windows per forward pass.")
@device_option
@click.option("--tta", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help="Test-time augmentation: average 1 (none), 2 (h-flip), 4 (flips) or 8 (flips+rotations).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA, fp32 on CPU.")
@click.option("--bands", type=IntList(), default=None,
              help="1-based scene bands that feed the model, e.g. 4,3,2. Default: the bands it was trained on.")
@click.option("--cog", is_flag=True, default=False, help="Write a Cloud Optimized GeoTIFF with overviews.")
@click.option("--compress", type=click.Choice(COMPRESSIONS), default="zstd",
              show_default=True, help="GeoTIFF compression (with a predictor).")
@click.option("--strip-rows", type=int, default=1, show_default=True, hidden=True,
              help="Window rows read and blended together (memory grows with it).")
@overwrite_option
@click.pass_context
def command(ctx: click.Context, scenes, model, out, out_dir, window, overlap, batch_size, device, tta, precision,
            bands, cog, compress, strip_rows, overwrite) -> None:
    """Translate SCENES with a trained model into rasters on exactly the scenes' grids.

    Every check (model, scenes, bands, window size and memory, outputs) runs
    before anything is written or logged; each output appears only when
    complete, and an interrupted run (Ctrl-C, SIGTERM) leaves nothing.  Under
    `torchrun --nproc_per_node N -m geop2p predict ...` the scenes are shared
    out across the ranks.

    \b
    Examples:
      geop2p predict scene.tif --model run/model.safetensors
      geop2p predict a.tif b.tif --model run/model.safetensors --out-dir preds --cog
    """
    from geop2p.io.bundle_file import read_bundle_header
    from geop2p.predict import PredictConfig, predict_scenes, scene_outputs
    from geop2p.predict.preflight import check_request, resolve_window

    config = PredictConfig(
        window=window, overlap=overlap, batch_size=batch_size, device=device, tta=int(tta), cog=cog,
        bands=tuple(bands) if bands else None, precision=precision, strip_rows=strip_rows, compress=compress,
    )
    # every check that needs no torch first, so a bad command is one line, at once
    outputs = scene_outputs(list(scenes), out, out_dir)
    header = read_bundle_header(model)
    size, _ = resolve_window(header, config.window, config.overlap)
    check_request(list(scenes), outputs, header, window=size, bands=config.bands, overwrite=overwrite, out_dir=out_dir)

    from geop2p.predict import Translator  # imports torch

    translator = Translator.from_file(model, device=None, config=config)

    show = bool(ctx.obj and ctx.obj.get("progress"))
    bars: dict[Path, object] = {}
    rank = int(os.environ.get("RANK", "0") or 0)

    def progress(scene: Path, done: int, total: int) -> None:
        if not show:
            return
        from tqdm import tqdm

        bar = bars.get(scene)
        if bar is None:
            bar = bars[scene] = tqdm(total=total, desc=scene.name, unit="win", position=rank, leave=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    try:
        written = predict_scenes(list(scenes), translator, out, out_dir, overwrite=overwrite, config=config,
                                 progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    for path in written:
        click.echo(str(path))
