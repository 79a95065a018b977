"""``torchrun ... tests/train/ddp_without_sync.py train ...``: geop2p's CLI with DistributedDataParallel disabled.

The control run of tests/train/test_distributed.py: every rank trains on its own
shard with its own, never averaged, gradients, as if gradient synchronisation
were removed from the trainer. Its bundle must differ from the single-process
run that the real DDP run matches; that is what shows the comparison can fail.
Nothing happens on import (pytest imports every module for its doctests).
"""

from __future__ import annotations

if __name__ == "__main__":
    import torch.nn.parallel

    def _no_sync(module, **_):  # the bare module: no gradient all-reduce, no parameter broadcast
        return module

    torch.nn.parallel.DistributedDataParallel = _no_sync  # before geop2p imports it
    from geop2p.cli import main

    main()
