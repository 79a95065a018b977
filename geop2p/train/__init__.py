"""Training: ``geop2p train`` as a library.

* :mod:`~geop2p.train.config` — :class:`TrainConfig`, the one schema of a run.
* :mod:`~geop2p.train.trainer` — :class:`Pix2PixTrainer`: networks, optimisers, losses; ``train_step``, ``validate``.
* :mod:`~geop2p.train.checkpoint` — ``checkpoints/last.pt`` (tensors and plain values only), the chips it records.
* :mod:`~geop2p.train.checks` — every check before a run writes or logs anything.
* :mod:`~geop2p.train.run` — :func:`train`: the checks, the epoch loop.
* :mod:`~geop2p.train.outputs` — the run folder while a run writes it: lock, one-line write errors, clean-up.
* :mod:`~geop2p.train.events` — TensorBoard scalars, written in the training thread.
* :mod:`~geop2p.train.distributed` — torchrun glue; :mod:`~geop2p.train.samples` — sample grids.

Importing the package does not import torch (what needs it is loaded on first
use), so ``geop2p train`` refuses a bad option or ``--out`` in a fraction of a second.
"""

import importlib
from typing import Any

from geop2p.train.config import BEST_METRICS, CHOICES, TrainConfig

__all__ = [
    "BEST_METRICS",
    "CHECKPOINT_FORMAT",
    "CHOICES",
    "Pix2PixTrainer",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "build_normalizers",
    "train",
]

#: the names that need torch, and their modules
_LAZY = {
    "CHECKPOINT_FORMAT": "geop2p.train.checkpoint",
    "Pix2PixTrainer": "geop2p.train.trainer",
    "TrainProgress": "geop2p.train.run",
    "TrainResult": "geop2p.train.run",
    "build_normalizers": "geop2p.train.checks",
    "train": "geop2p.train.run",
}


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY` are imported on first use: they need torch, the config does not."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
