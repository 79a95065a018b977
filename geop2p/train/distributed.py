"""Multi-process training glue for ``torchrun``: process group, rank helpers, reductions, sampling.

``torchrun --nproc_per_node N -m geop2p train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` reads them and starts a
process group (``gloo`` on CPU, ``nccl`` on CUDA). Without them everything is
a no-op single process, so the same code path serves both.

Example:
    >>> ctx = init_distributed("cpu")  # no torchrun variables: a single process
    >>> ctx.world_size, ctx.is_main
    (1, True)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from geop2p.errors import ConfigError

__all__ = ["DistributedContext", "init_distributed", "all_reduce_sum", "EpochSampler", "shutdown"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the CUDA device).
        backend: ``gloo``, ``nccl`` or None when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.enabled:
            dist.barrier()


def init_distributed(device_type: str) -> DistributedContext:
    """Start the process group from torchrun's environment variables, if any.

    Args:
        device_type: ``cpu`` or ``cuda``; selects ``gloo`` or ``nccl``.

    Raises:
        ConfigError: inconsistent environment variables.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"WORLD_SIZE={world} but RANK/LOCAL_RANK are missing or invalid ({exc}); launch with torchrun."
        ) from None
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    logger.info("Distributed training: rank %d of %d (%s)", rank, world, backend)
    return DistributedContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend)


def all_reduce_sum(tensor: torch.Tensor, ctx: DistributedContext, device: torch.device | None = None) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a copy; the input is unchanged).

    ``device`` is where the reduction runs (must be a CUDA device under nccl).
    """
    if not ctx.enabled:
        return tensor.clone()
    dev = device if device is not None else (torch.device("cuda", ctx.local_rank) if ctx.backend == "nccl"
                                             else torch.device("cpu"))
    t = tensor.detach().to(dev).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def shutdown(ctx: DistributedContext) -> None:
    """Destroy the process group started by :func:`init_distributed`."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


class EpochSampler(Sampler[int]):
    """A resumable, rank-sharded random order of indices, reproducible from ``(seed, epoch)``.

    Each epoch's permutation comes from a generator seeded with ``seed`` and
    ``epoch`` only, so no sampler state needs saving: a run resumed at step
    ``k`` of an epoch skips the first ``k × batch_size`` indices of this rank.
    Like :class:`torch.utils.data.DistributedSampler`, the permutation is padded
    (by repeating its start) to a multiple of ``world_size`` and dealt
    ``rank::world_size``, so every rank takes the same number of steps.

    Example:
        >>> s = EpochSampler(10, seed=0, shuffle=True)
        >>> s.set_epoch(1, start=0)
        >>> sorted(list(s)) == list(range(10))
        True
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 pad: bool = True) -> None:
        self.length = int(length)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start`` indices of this rank."""
        self.epoch = int(epoch)
        self.start = int(start)

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        if self.pad and self.world_size > 1 and order:
            extra = (-len(order)) % self.world_size
            order = order + (order * (extra // len(order) + 1))[:extra]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return max(0, len(self._indices()) - self.start)
