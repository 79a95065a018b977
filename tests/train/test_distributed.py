"""torchrun with 2 CPU processes (gloo): a DDP run learns what one process learns from the same chips.

The comparison: 2 ranks with batch b against 1 process with batch 2b. The
EpochSampler deals rank r the indices ``perm[r::2]`` of the epoch's
permutation, so step k of rank 0 reads ``perm[4k], perm[4k+2]`` and rank 1
``perm[4k+1], perm[4k+3]``: together exactly the chips ``perm[4k:4k+4]`` of
the single process's step k. Neither network normalises (``norm: none``,
``d_norm: none``) nor drops out, augmentation is seeded by chip index, and
every chip is fully valid, so each loss (a mean over the batch's pixels or
patches) of the big batch is the average of the two ranks' losses and its
gradient the average of theirs: what DDP's all-reduce computes. The weights
agree up to float rounding (summation order): 7.5e-9 at most, measured.

Why no instance norm, although it keeps no batch statistics: a bias just before
an affine-free instance norm has zero gradient in exact arithmetic, so its
computed gradient is rounding noise, and Adam (which divides by the gradient's
magnitude) turns that noise into steps of about lr in arbitrary directions.
Those biases then differ by ~1e-3 between any two summation orders.

Without gradient synchronisation each rank would step on the gradient of its
own two chips only: a different update from the first step on (Adam's first
step is about lr × sign(gradient), so parameters move by up to lr = 2e-4 in
other directions each step). The control run (``ddp_without_sync.py``: DDP
replaced by the bare module) is 1.5e-3 away, far outside the tolerance: the
comparison fails when the sync is gone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geop2p.io.bundle_file import read_bundle_tensors
from geop2p.train import TrainConfig, train
from geop2p.train.distributed import EpochSampler, init_distributed
from tests.fixtures.train import write_chip_folder

ROOT = Path(__file__).resolve().parents[2]
#: no normalisation layers and no dropout: nothing in G or D depends on how a batch is split (see the module doc)
TINY_YAML = ("generator: pix2pix-unet\ngenerator_params: {ngf: 8, num_downs: 6, norm: none, use_dropout: false}\n"
             "d_ndf: 8\nd_layers: 2\nd_norm: none\nn_samples: 1\nworkers: 0\ndevice: cpu\nmax_steps: 4\n")
BATCH = 2  # per rank
#: measured: |DDP - single| <= 7.5e-9 (float32 rounding); without gradient sync 1.5e-3
ATOL, RTOL = 1e-6, 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sampler_shards_cover_the_epoch_and_resume():
    shards = []
    for rank in range(3):
        s = EpochSampler(10, seed=1, rank=rank, world_size=3)
        s.set_epoch(2)
        shards.append(list(s))
    assert [len(x) for x in shards] == [4, 4, 4]
    assert set(sum(shards, [])) == set(range(10))
    s = EpochSampler(10, seed=1)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:] and len(s) == 6
    s.set_epoch(3)
    assert list(s) != full


def test_two_ranks_together_read_the_single_process_batches():
    one = EpochSampler(20, seed=0)
    ranks = [EpochSampler(20, seed=0, rank=r, world_size=2) for r in range(2)]
    for s in (one, *ranks):
        s.set_epoch(0)
    big, shards = list(one), [list(s) for s in ranks]
    for k in range(5):
        assert set(big[2 * BATCH * k: 2 * BATCH * (k + 1)]) == set(
            shards[0][BATCH * k: BATCH * (k + 1)] + shards[1][BATCH * k: BATCH * (k + 1)])


def test_single_process_context():
    ctx = init_distributed("cpu")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.enabled) == (1, 0, True, False)


@pytest.fixture(scope="module")
def ddp_setup(tmp_path_factory):
    """All-valid chips, the tiny config, and the single-process run with batch 2b."""
    root = tmp_path_factory.mktemp("ddp")
    chips = write_chip_folder(root / "chips", nodata_chips=0)
    config = root / "tiny.yaml"
    config.write_text(TINY_YAML)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(chips, root / "single", TrainConfig.from_yaml(config).replace(batch_size=2 * BATCH))
    finally:
        torch.set_num_threads(before)
    return chips, config, read_bundle_tensors(single.bundle_path)


def _torchrun(entry: list[str], chips: Path, config: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), *entry, "train", str(chips), "--out", str(out), "--config", str(config),
           "--batch-size", str(BATCH)]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)


def _initial_generator(config: Path) -> dict[str, np.ndarray]:
    """The generator's weights before training: seeded as train() seeds, built first."""
    from geop2p.models import build_generator

    torch.manual_seed(TrainConfig.from_yaml(config).seed)
    g = build_generator(TrainConfig.from_yaml(config).generator_spec(3, 1))
    return {k: v.detach().numpy() for k, v in g.state_dict().items()}


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a)


def test_torchrun_two_ranks_match_one_process_with_twice_the_batch(ddp_setup, tmp_path):
    chips, config, single = ddp_setup
    proc = _torchrun(["-m", "geop2p"], chips, config, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["state"]["global_step"] == 4
    assert (tmp_path / "run" / "model.safetensors").is_file()
    ddp = read_bundle_tensors(tmp_path / "run" / "model.safetensors")
    for k in single:
        np.testing.assert_allclose(ddp[k], single[k], rtol=RTOL, atol=ATOL, err_msg=k)
    # the weights moved: this is not the agreement of two untrained networks
    assert _max_diff(ddp, _initial_generator(config)) > 100 * ATOL


def test_without_gradient_sync_the_comparison_fails(ddp_setup, tmp_path):
    chips, config, single = ddp_setup
    proc = _torchrun([str(ROOT / "tests" / "train" / "ddp_without_sync.py")], chips, config, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    unsynced = read_bundle_tensors(tmp_path / "run" / "model.safetensors")
    assert _max_diff(unsynced, single) > 100 * ATOL
    assert not all(np.allclose(unsynced[k], single[k], rtol=RTOL, atol=ATOL) for k in single)
