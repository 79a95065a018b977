"""Many scenes: output names, and sharing the scenes out across ``torchrun`` ranks.

Example:
    >>> default_output_path("data/s2.tif").as_posix()
    'data/s2_pred.tif'
    >>> [p.name for p in scene_outputs(["a.tif", "b.tif"], out_dir="preds")]
    ['a_pred.tif', 'b_pred.tif']
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from geop2p.errors import InputError
from geop2p.predict.config import PredictConfig
from geop2p.predict.grid_match import grid_warning
from geop2p.predict.preflight import check_request

if TYPE_CHECKING:
    from geop2p.predict.translator import Translator

__all__ = ["default_output_path", "predict_scenes", "scene_outputs"]

log = logging.getLogger(__name__)


def default_output_path(scene: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """``<scene stem>_pred.tif`` beside the scene, or in ``out_dir``.

    Example:
        >>> default_output_path("data/s2.tif", "preds").as_posix()
        'preds/s2_pred.tif'
    """
    scene = Path(scene)
    folder = Path(out_dir) if out_dir is not None else scene.parent
    return folder / f"{scene.stem}_pred.tif"


def scene_outputs(
    scenes: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """The output path of every scene; ``out`` only for a single scene, ``out_dir`` for many.

    Raises:
        InputError: ``out`` with several scenes, both ``out`` and ``out_dir``, or two scenes mapping to one output.

    Example:
        >>> [p.name for p in scene_outputs(["a.tif", "b.tif"], out_dir="preds")]
        ['a_pred.tif', 'b_pred.tif']
        >>> scene_outputs(["a.tif", "b.tif"], out="o.tif")
        Traceback (most recent call last):
        ...
        geop2p.errors.InputError: -o/--out names one output but 2 scenes were given; use --out-dir DIR for several scenes.
    """
    if not scenes:
        raise InputError("No scene given; pass one or more rasters to predict.")
    if out is not None and out_dir is not None:
        raise InputError("Give either -o/--out (one scene) or --out-dir (any number of scenes), not both.")
    if out is not None:
        if len(scenes) > 1:
            raise InputError(
                f"-o/--out names one output but {len(scenes)} scenes were given; use --out-dir DIR for several scenes."
            )
        outputs = [Path(out)]
    else:
        outputs = [default_output_path(s, out_dir) for s in scenes]
    seen: dict[Path, str] = {}
    for scene, path in zip(scenes, outputs):
        key = path.resolve()
        if key in seen:
            raise InputError(
                f"Scenes '{seen[key]}' and '{scene}' would both be written to '{path}'; "
                "rename one or predict them into different folders."
            )
        if key == Path(scene).resolve():
            raise InputError(f"The output '{path}' is the scene itself; choose another output name.")
        seen[key] = str(scene)
    return outputs


def _rank_world() -> tuple[int, int]:
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def _all_ranks_ok(ok: bool, world: int) -> bool:
    """True when every rank's up-front checks passed (gloo all-reduce under torchrun; ``ok`` alone otherwise)."""
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return ok
    import torch

    if not torch.distributed.is_available():
        return ok
    dist = torch.distributed
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo")
    try:
        flag = torch.tensor([1 if ok else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())
    finally:
        if created:
            dist.destroy_process_group()


def predict_scenes(
    scenes: Sequence[str | os.PathLike],
    model: "str | os.PathLike | Translator",
    out: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    config: PredictConfig | None = None,
    progress: Callable[[Path, int, int], None] | None = None,
) -> list[Path]:
    """Predict several scenes, shared out across ``torchrun`` ranks (rank r takes ``scenes[r::world]``).

    Every check (model readable and a bundle; every scene readable, whole,
    real-valued and with the model's bands; the window no larger than the
    scenes need and fitting in memory; every output writable and free unless
    ``overwrite``; see :mod:`geop2p.predict.preflight`) runs before anything is
    written or logged, on every rank.  Then a scene whose pixel size or CRS
    differs from the model's training grid gets one warning line each
    (:func:`~geop2p.predict.grid_match.grid_warning`).  Without ``torchrun``
    (``WORLD_SIZE`` unset) one process does every scene; under it the ranks
    agree (a gloo all-reduce) that all checks passed before any of them writes.

    Args:
        scenes: input rasters.
        model: a bundle path or a :class:`~geop2p.predict.Translator`.
        out: output path (one scene only).
        out_dir: output folder (``<scene>_pred.tif`` in it); default: beside each scene.
        overwrite: replace existing outputs.
        config: prediction settings (device, window, overlap, tta, cog, bands...).
        progress: called as ``progress(scene, windows_done, windows_total)``.

    Returns:
        The outputs this rank wrote.

    Example:
        >>> predict_scenes(["a.tif", "b.tif"], "run/model.safetensors", out_dir="preds")  # doctest: +SKIP
        [PosixPath('preds/a_pred.tif'), PosixPath('preds/b_pred.tif')]
    """
    from geop2p.predict.translator import Translator

    config = config or PredictConfig()
    outputs = scene_outputs(scenes, out, out_dir)
    translator = model if isinstance(model, Translator) else Translator.from_file(model, device=None, config=config)
    rank, world = _rank_world()
    try:
        checks = check_request(scenes, outputs, translator.header, window=translator.window,
                               bands=translator.config.bands, overwrite=overwrite, out_dir=out_dir,
                               divisor=translator.divisor)
        translator.check_sizes([c.info.grid.shape for c in checks], [str(c.path) for c in checks])
    except Exception:
        _all_ranks_ok(False, world)
        raise
    # no rank writes before every rank has checked every scene and output
    if not _all_ranks_ok(True, world):
        raise InputError("Another torchrun rank found a problem with the scenes or outputs; see its error above.")
    if rank == 0:
        for check in checks:
            warning = grid_warning(check.info, translator.input)
            if warning:
                log.warning("%s", warning)
    mine = list(zip(scenes, outputs))[rank::world]
    if world > 1:
        log.info("rank %d/%d: %d of %d scene(s)", rank, world, len(mine), len(scenes))
    written = []
    for scene, dst in mine:
        cb = None
        if progress is not None:
            cb = (lambda s: (lambda done, total: progress(Path(s), done, total)))(scene)
        written.append(translator.predict_raster(scene, dst, overwrite=overwrite, progress=cb))
    return written
