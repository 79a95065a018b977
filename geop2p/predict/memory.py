"""How much memory a prediction needs, and the largest window that fits: ``--window 65536`` is refused, not tried.

The engine (:mod:`geop2p.predict.engine`) holds a few strips of the scene
and a few batches of windows at a time.  :func:`footprint` adds up what it
holds, from the same :class:`~geop2p.tiling.WindowPlan`:

* **strips** (host memory): the input of ``queue_depth + 2`` strips (the
  reader's, the queued ones and the one being cut into windows), each a
  window row high and as wide as the padded scene, plus the blender's
  accumulator and weight sum and the cast rows on their way to the writer;
* **windows** (host memory): the predictions of ``queue_depth + 2`` strips of
  windows, the batch being stacked, and the cached blending weights;
* **network** (on the device): a batch of input and output windows, the TTA
  sum, and the network's activations: ``batch × window² ×`` a per-pixel
  factor :func:`activation_factor`, measured for each architecture.

Why a measured factor
    Activations dominate for a U-Net: at batch 1 in inference, the peak
    resident memory grows by about 1.3 × ``ngf`` floats per input pixel for
    the paper's U-Net (83 floats at ``ngf`` 64, 40 at 32) and 110–145 for
    smp's U-Net (resnet18/34 and efficientnet-b0 about 110, resnet50 145),
    measured on the CPU in fp32 as the growth of peak RSS between 1024² and
    2048² inputs (``tests/predict/test_memory.py::test_activation_factor_covers_measured_peak``
    repeats the measurement at 2048², slow-marked).  The factors below carry a
    margin over these: ``1.5 × ngf`` and 160 (times the last decoder width / 16).

:func:`check_window_fits` compares the footprint with the memory available
(host: ``MemAvailable`` and the cgroup's limit; CUDA: the device's free
memory) and refuses, in one line naming the largest window that fits, when it
does not fit.  geop2p refuses rather than clamps: a different window gives a
(slightly) different prediction, which should be the user's choice.

Example:
    >>> from geop2p.tiling import plan_windows
    >>> plan = plan_windows(96, 96, window=32, overlap=8)
    >>> need = footprint(plan, in_channels=3, out_channels=1, batch_size=8, activation=4.0)
    >>> need.host < 2**20, need.device < 2**20
    (True, True)
    >>> activation_factor({"architecture": "pix2pix-unet", "params": {"ngf": 64}})
    96.0
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from geop2p.errors import ChipSizeError
from geop2p.tiling import plan_windows

__all__ = ["Footprint", "activation_factor", "available_memory", "check_window_fits", "footprint"]

FLOAT = 4  # bytes of a float32
#: peak activation floats per input pixel for architectures not measured (the smp U-Net's value)
DEFAULT_ACTIVATION = 160.0
#: the share of the available memory a prediction may plan to use
USABLE = 0.9


def activation_factor(spec: Mapping[str, Any]) -> float:
    """Peak activation floats per input pixel of a generator at batch 1 in inference (see the module doc).

    Args:
        spec: the bundle's ``generator`` object (``architecture``, ``in_channels``, ``out_channels``, ``params``).

    Example:
        >>> activation_factor({"architecture": "linear", "in_channels": 3, "out_channels": 1})
        4.0
        >>> activation_factor({"architecture": "smp-unet", "params": {"decoder_channels": [256, 128, 64, 32, 32]}})
        320.0
    """
    params = dict(spec.get("params") or {})
    architecture = spec.get("architecture")
    if architecture == "linear":
        return float(int(spec.get("in_channels", 1)) + int(spec.get("out_channels", 1)))
    if architecture == "pix2pix-unet":
        return 1.5 * float(params.get("ngf") or 64)
    if architecture == "smp-unet":
        decoder = params.get("decoder_channels") or [16]
        return DEFAULT_ACTIVATION * max(1.0, float(decoder[-1]) / 16.0)
    return DEFAULT_ACTIVATION


@dataclass(frozen=True)
class Footprint:
    """Bytes a prediction holds at once: ``host`` (strips, windows) and ``device`` (the network's batch).

    On the CPU both are host memory.
    """

    host: int
    device: int

    @property
    def total(self) -> int:
        """Both together (what a CPU prediction needs)."""
        return self.host + self.device


def footprint(
    plan,
    *,
    in_channels: int,
    out_channels: int,
    batch_size: int,
    activation: float,
    queue_depth: int = 2,
    tta: int = 1,
) -> Footprint:
    """What the engine holds at once while predicting ``plan`` (a :class:`~geop2p.tiling.WindowPlan`).

    Args:
        plan: the windows and strips.
        in_channels, out_channels: the network's bands.
        batch_size: windows per forward pass.
        activation: the network's activation floats per pixel (:func:`activation_factor`).
        queue_depth: strips buffered between the stages.
        tta: transforms averaged (adds a sum buffer).

    Example:
        >>> plan = plan_windows(65536, 65536, window=65536, overlap=0)
        >>> footprint(plan, in_channels=3, out_channels=1, batch_size=8, activation=4.0).total > 100 * 2**30
        True
    """
    window_px = plan.window * plan.window
    read_height = max(s.read_height for s in plan.strips)
    strip_px = read_height * plan.padded_width
    windows_per_strip = max(len(s.row_starts) for s in plan.strips) * len(plan.col_starts)
    batch = min(int(batch_size), windows_per_strip)
    in_flight = int(queue_depth) + 2
    # input strips (float32 + validity), blender accumulator + weight sum, cast rows and the writer's buffer
    strips = strip_px * (FLOAT * in_channels * in_flight + in_flight + FLOAT * (2 * out_channels + 1))
    # window predictions of the strips in flight, the stacked batch, the blending weights (up to 9 kinds)
    windows = window_px * FLOAT * (in_flight * windows_per_strip * out_channels + batch * in_channels + 9)
    # the batch on the device: input (+ a channels-last copy), output, TTA sum, activations
    sums = 1 if tta > 1 else 0
    network = batch * window_px * FLOAT * (2 * in_channels + (2 + sums) * out_channels + activation)
    return Footprint(host=int(strips + windows), device=int(network))


def _cgroup_room() -> int | None:
    """Bytes the cgroup (v2) still lets this process allocate, or None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _host_available() -> int | None:
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            available = None
    room = _cgroup_room()
    if room is not None:
        available = room if available is None else min(available, room)
    return available


def available_memory(device: Any = "cpu") -> tuple[int | None, int | None]:
    """``(host bytes, device bytes)`` available now; device is None on the CPU, either is None when unknown.

    Example:
        >>> host, device = available_memory("cpu")
        >>> device is None and (host is None or host > 0)
        True
    """
    host = _host_available()
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind != "cuda":
        return host, None
    import torch

    try:
        free, _ = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):
        return host, None
    return host, int(free)


def _gib(n: float) -> str:
    """Bytes for a message: ``512 MiB``, ``12.5 GiB``, ``176.0 TiB``."""
    if n >= 2**40:
        return f"{n / 2**40:.1f} TiB"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:.0f} MiB"


def check_window_fits(
    sizes: Sequence[tuple[int, int]],
    *,
    window: int,
    overlap: int,
    divisor: int,
    in_channels: int,
    out_channels: int,
    batch_size: int,
    activation: float,
    queue_depth: int = 2,
    tta: int = 1,
    strip_rows: int = 1,
    device: Any = "cpu",
    available: tuple[int | None, int | None] | None = None,
) -> None:
    """Refuse a window whose prediction would not fit in memory for the largest of ``sizes`` (``(height, width)``).

    Args:
        sizes: the scenes' (or arrays') sizes.
        window, overlap, divisor: the window, its overlap and what the window must be a multiple of.
        in_channels, out_channels, batch_size, activation, queue_depth, tta, strip_rows: as for :func:`footprint`.
        device: where the network runs (``cpu``, ``cuda``...).
        available: ``(host, device)`` bytes available (default: :func:`available_memory`).

    Raises:
        ChipSizeError: naming the memory needed, what is available and the largest window that fits.

    Example:
        >>> check_window_fits([(4096, 4096)], window=4096, overlap=0, divisor=32, in_channels=3, out_channels=1,
        ...                   batch_size=8, activation=160.0, available=(2**30, None))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geop2p.errors.ChipSizeError: --window 4096 needs about 12.5 GiB of memory ... only 1.0 GiB of RAM is available; use --window 384 or less, or a smaller --batch-size.
    """
    if not sizes:
        return
    host, dev = available if available is not None else available_memory(device)
    on_device = dev is not None
    if host is None and not on_device:
        return
    kind = getattr(device, "type", str(device).split(":")[0])

    def need(w: int, size: tuple[int, int]) -> Footprint:
        plan = plan_windows(size[0], size[1], w, min(overlap, w // 2), strip_rows)
        return footprint(plan, in_channels=in_channels, out_channels=out_channels, batch_size=batch_size,
                         activation=activation, queue_depth=queue_depth, tta=tta)

    def fits(w: int) -> tuple[bool, Footprint, str]:
        worst = None
        for size in sizes:
            f = need(w, size)
            if worst is None or f.total > worst.total:
                worst = f
            if on_device:
                if f.device > USABLE * dev:
                    return False, f, f"only {_gib(dev)} is free on {kind}"
                if host is not None and f.host > USABLE * host:
                    return False, f, f"only {_gib(host)} of RAM is available"
            elif f.total > USABLE * host:
                return False, f, f"only {_gib(host)} of RAM is available"
        return True, worst, ""

    ok, worst, where = fits(window)
    if ok:
        return
    needed = worst.device if on_device and where.endswith(f"free on {kind}") else worst.total
    largest = 0
    lo, hi = 1, max(1, window // divisor - 1)
    while lo <= hi:  # the largest multiple of the divisor that fits (memory grows with the window)
        mid = (lo + hi) // 2
        if fits(mid * divisor)[0]:
            largest, lo = mid * divisor, mid + 1
        else:
            hi = mid - 1
    advice = f"use --window {largest} or less, or a smaller --batch-size" if largest else (
        "even the smallest window does not fit; use a smaller --batch-size or free memory"
    )
    raise ChipSizeError(
        f"--window {window} needs about {_gib(needed)} of memory for batches of up to {batch_size} window(s) "
        f"(input, network activations and blending buffers) but {where}; {advice}."
    )

