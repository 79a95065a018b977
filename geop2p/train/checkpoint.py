"""``checkpoints/last.pt``: everything ``--resume`` needs, as tensors and plain values only.

The file is a ``torch.save`` of one dict::

    format, format_version, geop2p_version   "geop2p-checkpoint", 1, the writer's version
    config                                   TrainConfig.to_dict() of the run
    generator, discriminator                 state_dicts (Pix2PixTrainer.state_dict())
    opt_g, opt_d, sched_g, sched_d, scaler   optimiser, scheduler and grad-scaler states
    state                                    LoopState: epoch, step, best epoch and metrics
    rng                                      torch / numpy / python (/ cuda) RNG states
    data                                     TrainingData: the chips' manifest sha256, chip size, band names
                                             (absent in checkpoints of geop2p 0.1)

It holds no pickled objects, so it is read with ``torch.load(..., weights_only=True)``
and a file that needs unpickling is refused.

Example:
    >>> s = LoopState(epoch=1, global_step=12, best_value=2.5, best_epoch=1, best_metrics={"val_psnr": float("inf")})
    >>> LoopState.from_dict(s.to_dict()).best_metrics
    {'val_psnr': None}
    >>> d = TrainingData("ab12", 32, ("red", "green", "blue"), ("elevation",))
    >>> TrainingData.from_dict(d.to_dict()) == d
    True
"""

from __future__ import annotations

import math
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from geop2p import __version__
from geop2p.errors import ConfigError
from geop2p.io.atomic import atomic_path, write_error, writing
from geop2p.train.config import TrainConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "STRUCTURAL_KEYS",
    "TRAINER_KEYS",
    "Checkpoint",
    "LoopState",
    "TrainingData",
    "read_checkpoint",
    "rng_state",
    "set_rng_state",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "geop2p-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
#: the parts of :meth:`Pix2PixTrainer.state_dict`, in the order the file stores them
TRAINER_KEYS = ("generator", "discriminator", "opt_g", "opt_d", "sched_g", "sched_d", "scaler")
#: settings a resumed run must share with its checkpoint (the rest, e.g. max_steps, may change)
#: (the dataset options too: a pix2pix folder read in the other direction is another task on the same files)
STRUCTURAL_KEYS = ("generator", "encoder", "generator_params", "d_layers", "d_ndf", "d_norm", "spectral_norm",
                   "gan_mode", "batch_size", "seed", "normalization", "norm_low", "norm_high", "epochs",
                   "decay_epochs", "format", "direction", "load_size", "crop_size", "val_percent", "test_percent",
                   "split_seed")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class LoopState:
    """Where the epoch loop stands; mutable, updated by the loop after every step and validation.

    Attributes:
        epoch: the 0-based epoch in progress.
        step_in_epoch: steps already taken in that epoch.
        global_step: steps taken in total.
        best_value: the best value of the run's ``best_metric`` so far (None before the first finite one).
        best_epoch: the 1-based epoch of the bundle (0: none yet).
        best_metrics: that epoch's validation metrics.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (non-finite metrics become None)."""
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "best_value": self.best_value, "best_epoch": self.best_epoch,
                "best_metrics": {k: _finite(v) for k, v in self.best_metrics.items()}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "LoopState":
        """The state saved by :meth:`to_dict`."""
        return cls(epoch=doc["epoch"], step_in_epoch=doc["step_in_epoch"], global_step=doc["global_step"],
                   best_value=doc["best_value"], best_epoch=doc["best_epoch"],
                   best_metrics=dict(doc["best_metrics"]))


def rng_state() -> dict[str, Any]:
    """The torch, numpy, python (and CUDA) RNG states as tensors and plain values (``weights_only``-loadable).

    Example:
        >>> state = rng_state()
        >>> a = torch.rand(1); set_rng_state(state); bool(torch.equal(a, torch.rand(1)))
        True
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(v) for v in py_state[1]],
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the states :func:`rng_state` took."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class TrainingData:
    """What a run trains on, recorded in its checkpoint so that ``--resume`` refuses other chips.

    Attributes:
        source_sha256: the dataset's identity (sha256 of a chip folder's manifest, or of the folders'
            identities for several folders; the bundle's ``training.chips_manifest_sha256``).
        chip_size: chip side in pixels.
        input_bands: the input band names.
        target_bands: the target band names.
    """

    source_sha256: str
    chip_size: int
    input_bands: tuple[str, ...]
    target_bands: tuple[str, ...]

    @classmethod
    def of(cls, dataset: Any) -> "TrainingData":
        """The identity of a :class:`~geop2p.datasets.PairedChipDataset`."""
        return cls(str(dataset.source_sha256), int(dataset.chip_size), tuple(dataset.input_info.band_names),
                   tuple(dataset.target_info.band_names))

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"source_sha256": self.source_sha256, "chip_size": self.chip_size,
                "input_bands": list(self.input_bands), "target_bands": list(self.target_bands)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "TrainingData":
        """The identity saved by :meth:`to_dict`."""
        return cls(str(doc["source_sha256"]), int(doc["chip_size"]), tuple(map(str, doc["input_bands"])),
                   tuple(map(str, doc["target_bands"])))

    def describe(self) -> str:
        """In words, for messages: ``32 px chips, 3 input band(s) (red, green, blue), 1 target band(s) (...)``."""
        return (f"{self.chip_size} px chips, {len(self.input_bands)} input band(s) ({', '.join(self.input_bands)}), "
                f"{len(self.target_bands)} target band(s) ({', '.join(self.target_bands)})")


@dataclass(frozen=True)
class Checkpoint:
    """The contents of ``checkpoints/last.pt``.

    Attributes:
        config: the run's config as a dict (``TrainConfig.to_dict()``).
        trainer: :meth:`Pix2PixTrainer.state_dict` (networks, optimisers, schedulers, scaler).
        loop: the epoch loop's state.
        rng: :func:`rng_state` at the time of writing.
        geop2p_version: the version that wrote it.
        data: the chips the run trains on (None in checkpoints of geop2p 0.1).
    """

    config: dict[str, Any]
    trainer: dict[str, Any]
    loop: LoopState
    rng: dict[str, Any]
    geop2p_version: str = __version__
    data: TrainingData | None = None

    def check_resumable(self, config: TrainConfig) -> None:
        """Raise unless ``config`` keeps every :data:`STRUCTURAL_KEYS` setting of the checkpoint's run.

        Raises:
            ConfigError: naming each changed setting with both values.
        """
        now = config.to_dict()
        diff = [k for k in STRUCTURAL_KEYS if self.config.get(k) != now.get(k)]
        if diff:
            detail = "; ".join(f"{k}: checkpoint {self.config.get(k)!r} vs now {now.get(k)!r}" for k in diff)
            raise ConfigError(
                f"Cannot resume with changed settings ({detail}). Resume with the run's config.yaml, "
                "or start a new run."
            )

    def check_data(self, data: TrainingData, path: str | Path, chips_dir: str | Path) -> None:
        """Raise unless ``data`` (the chips given now) are the chips the checkpoint's run trained on.

        Band counts and the chip size are compared first (so the message says what differs), then the
        dataset's identity (a manifest edited or re-exported since). A checkpoint of geop2p 0.1 holds
        no identity; only its networks' shapes are checked, when they are loaded.

        Raises:
            ConfigError: naming both sides.
        """
        was = self.data
        if was is None:
            return
        fix = "Resume with the run's own chips, or start a new run (another --out, or --overwrite)."
        if (was.chip_size, len(was.input_bands), len(was.target_bands)) != (
                data.chip_size, len(data.input_bands), len(data.target_bands)):
            raise ConfigError(
                f"Cannot resume '{path}' on '{chips_dir}': the run trained on {was.describe()}, these chips are "
                f"{data.describe()}. {fix}"
            )
        if was.source_sha256 != data.source_sha256:
            raise ConfigError(
                f"Cannot resume '{path}' on '{chips_dir}': these are not the chips the run started on (their "
                f"manifest sha256 is {data.source_sha256[:12]}…, the run's was {was.source_sha256[:12]}…; the "
                f"folder was re-exported or edited). {fix}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes (layout in the module doc)."""
        doc = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
               "geop2p_version": self.geop2p_version, "config": self.config,
               **{k: self.trainer[k] for k in TRAINER_KEYS},
               "state": self.loop.to_dict(), "rng": self.rng}
        if self.data is not None:
            doc["data"] = self.data.to_dict()
        return doc


def write_checkpoint(path: str | Path, checkpoint: Checkpoint, resume: str | None = None) -> Path:
    """``torch.save`` ``checkpoint`` to ``path`` atomically (a crash leaves the previous file intact).

    Args:
        path: ``checkpoints/last.pt``.
        checkpoint: what to write.
        resume: how to finish after a failed write, for the message (see :func:`geop2p.io.atomic.write_error`).

    Raises:
        WriteError: the write failed (:class:`~geop2p.errors.DiskFullError` for a full disk), as one line;
            the previous checkpoint is left as it was, and no partial file.
    """
    with writing(path, resume), atomic_path(path, overwrite=True) as tmp:
        try:
            torch.save(checkpoint.to_dict(), tmp)
        except RuntimeError as exc:  # torch's zip writer: "unexpected pos ...", "file write failed"
            raise write_error(path, exc, resume) from exc
    return Path(path)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint without unpickling anything.

    Raises:
        ConfigError: the file needs unpickling, is not a geop2p checkpoint, comes from a newer format or
            lacks a part; the message says to start a new run.
    """
    path = Path(path)
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ConfigError(
            f"Cannot resume from '{path}': it is not a geop2p checkpoint readable without unpickling objects "
            f"({str(exc).splitlines()[0][:160]}). Start a new run with --overwrite."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"'{path}' is not a geop2p training checkpoint; start a new run with --overwrite.")
    if doc.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise ConfigError(
            f"'{path}' has checkpoint format_version {doc.get('format_version')!r} (written by geop2p "
            f"{doc.get('geop2p_version', '?')}); this geop2p reads {CHECKPOINT_FORMAT_VERSION}. "
            "Resume with that geop2p, or start a new run with --overwrite."
        )
    missing = [k for k in ("config", *TRAINER_KEYS, "state", "rng") if k not in doc]
    if missing:
        raise ConfigError(
            f"'{path}' lacks {', '.join(missing)}; it cannot be resumed. Start a new run with --overwrite."
        )
    try:
        loop = LoopState.from_dict(doc["state"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"'{path}' has an unreadable loop state; start a new run with --overwrite.") from None
    try:
        data = TrainingData.from_dict(doc["data"]) if doc.get("data") is not None else None
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"'{path}' has an unreadable record of its chips; start a new run with --overwrite.") from None
    return Checkpoint(config=dict(doc["config"]), trainer={k: doc[k] for k in TRAINER_KEYS}, loop=loop,
                      rng=doc["rng"], geop2p_version=str(doc.get("geop2p_version", "?")), data=data)
