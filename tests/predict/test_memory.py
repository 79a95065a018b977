"""The memory a prediction needs: the footprint of the engine's buffers, the refusal, and the measured factors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from geop2p.errors import ChipSizeError
from geop2p.predict.memory import activation_factor, available_memory, check_window_fits, footprint
from geop2p.tiling import plan_windows

KW = dict(in_channels=3, out_channels=1, batch_size=8, activation=160.0)


def test_footprint_counts_strips_windows_and_the_network():
    small = footprint(plan_windows(256, 256, 256, 64), **KW)
    # one 256² window: its input, output and activations (the network) dominate
    assert small.device == 1 * 256**2 * 4 * (2 * 3 + 2 * 1 + 160)
    assert 0 < small.host < small.device
    # a batch holds at most the windows of a strip; more windows per strip, a larger batch
    wide = footprint(plan_windows(256, 4096, 256, 64), **KW)
    assert wide.device == 8 * small.device
    # the strips grow with the scene's width, not its height
    tall = footprint(plan_windows(8192, 256, 256, 64), **KW)
    assert tall.host == small.host and tall.device == small.device
    # the window: quadratic
    big = footprint(plan_windows(65536, 65536, 65536, 0), **KW)
    assert big.total > 65536**2 * 4 * 160


def test_a_window_that_does_not_fit_is_refused_naming_the_largest_that_does():
    args = dict(window=4096, overlap=0, divisor=32, **KW)
    check_window_fits([(4096, 4096)], **args, available=(2**40, None))  # 1 TiB: fits
    with pytest.raises(ChipSizeError) as err:
        check_window_fits([(4096, 4096)], **args, available=(2**30, None))
    text = str(err.value)
    assert text.startswith("--window 4096 needs about ") and "only 1.0 GiB of RAM is available" in text
    largest = int(text.split("use --window ")[1].split()[0])
    assert largest % 32 == 0
    check_window_fits([(4096, 4096)], **{**args, "window": largest}, available=(2**30, None))
    with pytest.raises(ChipSizeError):
        check_window_fits([(4096, 4096)], **{**args, "window": largest + 32}, available=(2**30, None))


def test_on_cuda_the_network_must_fit_the_device_and_the_buffers_the_host():
    args = dict(window=2048, overlap=0, divisor=32, device="cuda", **KW)
    with pytest.raises(ChipSizeError, match="is free on cuda"):
        check_window_fits([(2048, 2048)], **args, available=(2**40, 2**30))
    check_window_fits([(2048, 2048)], **args, available=(2**40, 2**40))
    with pytest.raises(ChipSizeError, match="of RAM is available"):
        check_window_fits([(2048, 2**20)], **args, available=(2**30, 2**40))


def test_unknown_memory_is_not_refused():
    check_window_fits([(65536, 65536)], window=65536, overlap=0, divisor=32, **KW, available=(None, None))
    host, device = available_memory("cpu")
    assert device is None and (host is None or host > 0)


def test_translator_refuses_a_window_too_large_for_the_array_or_the_memory(make_translator):
    t = make_translator(window=256)
    with pytest.raises(ChipSizeError, match=r"larger than the largest scene \('the array', 40×40 px\)"):
        t.predict_array(np.zeros((2, 40, 40), np.float32))
    t = make_translator(window=2**20)
    with pytest.raises(ChipSizeError, match="of memory"):
        t.predict_array(np.zeros((2, 2, 2**20), np.float32))


def _peak_floats_per_pixel(spec: dict, size: int = 2048) -> float:
    """Growth of peak RSS per input pixel over a warmed-up baseline, batch 1, fp32, inference (in a subprocess).

    The growth includes the input and output tensors, so it is a little above the activations alone.
    """
    code = """
import json, resource, sys, torch
from geop2p.models import build_generator
spec, size = json.loads(sys.argv[1]), int(sys.argv[2])
g = build_generator(spec).eval()
torch.set_num_threads(1)
probe = max(64, g.required_divisor)
with torch.inference_mode():
    g(torch.zeros(1, spec["in_channels"], probe, probe))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.inference_mode():
    g(torch.zeros(1, spec["in_channels"], size, size))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""
    grown = int(subprocess.run([sys.executable, "-c", code, json.dumps(spec), str(size)], capture_output=True,
                               text=True, check=True).stdout)
    return grown / 4 / size**2


@pytest.mark.slow
@pytest.mark.parametrize("spec", [
    {"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1, "params": {"ngf": 64}},
    {"architecture": "pix2pix-unet", "in_channels": 3, "out_channels": 1, "params": {"ngf": 32, "num_downs": 5}},
    {"architecture": "smp-unet", "in_channels": 3, "out_channels": 1, "params": {"encoder_name": "resnet34"}},
    {"architecture": "smp-unet", "in_channels": 3, "out_channels": 1, "params": {"encoder_name": "resnet50"}},
    {"architecture": "linear", "in_channels": 3, "out_channels": 1},
], ids=lambda s: f"{s['architecture']}-{s.get('params', {})}")
def test_activation_factor_covers_measured_peak(spec):
    measured = _peak_floats_per_pixel(spec)
    assert measured <= activation_factor(spec), f"measured {measured:.1f} floats/px"
