"""Training: ``geop2p train`` as a library.

* :mod:`~geop2p.train.config` — :class:`TrainConfig`, the one schema of a run.
* :mod:`~geop2p.train.trainer` — :class:`Pix2PixTrainer`: networks, optimisers, losses; ``train_step``, ``validate``.
* :mod:`~geop2p.train.checkpoint` — ``checkpoints/last.pt`` (tensors and plain values only).
* :mod:`~geop2p.train.run` — :func:`train`: the checks, the epoch loop, the run folder.
* :mod:`~geop2p.train.distributed` — torchrun glue; :mod:`~geop2p.train.samples` — sample grids.
"""

from geop2p.train.checkpoint import CHECKPOINT_FORMAT
from geop2p.train.config import BEST_METRICS, CHOICES, TrainConfig
from geop2p.train.run import TrainProgress, TrainResult, build_normalizers, train
from geop2p.train.trainer import Pix2PixTrainer

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
