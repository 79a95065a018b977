"""torchrun with 2 CPU processes (gloo): gradients are synchronised, ranks end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from geop2p.distributed import EpochSampler, init_distributed
from geop2p.train import RANK_WEIGHTS_ENV


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


def test_single_process_context():
    ctx = init_distributed("cpu")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.enabled) == (1, 0, True, False)


def test_torchrun_two_ranks_keep_identical_weights(chip_folder_ro, tmp_path):
    weights_dir = tmp_path / "ranks"
    env = dict(os.environ, OMP_NUM_THREADS="1", **{RANK_WEIGHTS_ENV: str(weights_dir)})
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "geop2p", "train", str(chip_folder_ro), "--out", str(tmp_path / "run"),
           "--generator", "pix2pix-unet", "--batch-size", "2", "--max-steps", "4", "--workers", "0",
           "--device", "cpu", "--config", str(_tiny_yaml(tmp_path))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = load_file(str(weights_dir / "rank0.safetensors"))
    r1 = load_file(str(weights_dir / "rank1.safetensors"))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # the ranks trained (on different shards) — so equality above needs synchronised gradients
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["state"]["global_step"] == 4
    assert (tmp_path / "run" / "model.safetensors").is_file()


def _tiny_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text("generator_params: {ngf: 8, num_downs: 6}\nd_ndf: 8\nd_layers: 2\nn_samples: 1\n")
    return p
