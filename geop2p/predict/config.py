"""How to predict: :class:`PredictConfig`, the one schema of ``geop2p predict``, and the window-size rule.

Example:
    >>> PredictConfig.from_dict({"window": "256", "tta": 4, "bands": "3,2,1"}).bands
    (3, 2, 1)
    >>> PredictConfig(window=200)
    Traceback (most recent call last):
    ...
    geop2p.errors.SizeMultipleError: Window size 200 is not a multiple of 32 (which the network needs); use --window 192.
"""

from __future__ import annotations

from dataclasses import dataclass

from geop2p.device import check_device_name
from geop2p.errors import InputError, SizeMultipleError
from geop2p.io.compression import check_compression
from geop2p.schema import ConfigSchema
from geop2p.tiling import BLEND_KINDS

__all__ = ["PRECISIONS", "TTA_CHOICES", "PredictConfig", "check_window"]

#: how many dihedral transforms test-time augmentation averages
TTA_CHOICES = (1, 2, 4, 8)
#: ``auto``: bf16 autocast on CUDA, fp32 on the CPU
PRECISIONS = ("auto", "fp32", "bf16")


def check_window(window: int, divisor: int = 32) -> int:
    """Return ``window`` if it is a positive multiple of ``divisor`` (32 by default), else raise.

    Raises:
        SizeMultipleError: naming the nearest valid size.

    Example:
        >>> check_window(256)
        256
        >>> check_window(300, 64)
        Traceback (most recent call last):
        ...
        geop2p.errors.SizeMultipleError: Window size 300 is not a multiple of 64 (which the network needs); use --window 320.
    """
    try:
        whole = int(window) == window and not isinstance(window, bool)
    except (TypeError, ValueError):
        whole = False
    if not whole or window < divisor or window % divisor:
        raise SizeMultipleError(int(window) if whole else window, divisor, "--window", "Window size",
                                "which the network needs")
    return int(window)


@dataclass(frozen=True)
class PredictConfig(ConfigSchema):
    """How to predict; ``None`` fields are resolved from the model bundle.

    The device name is checked here by the one device rule
    (:func:`geop2p.device.check_device_name`); whether CUDA is there is checked
    when a translator is built (:func:`geop2p.device.resolve_device`).

    Attributes:
        window: window size in pixels, a multiple of 32 (None: the bundle's chip size).
        overlap: pixels shared by neighbouring windows, 0 to ``window // 2``
            (None: the bundle's ``recommended_overlap``).
        batch_size: windows per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        tta: 1 (none), 2 (horizontal flip), 4 (flips), 8 (flips and rotations).
        cog: write a Cloud Optimized GeoTIFF with overviews.
        bands: 1-based scene bands that feed the model (None: the bands the bundle was trained on).
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16`` (autocast). On a
            CPU with AMX / AVX-512 BF16, bf16 ran 3.8× faster than fp32 on the demo's trained model
            (``tools/bench_precision.py``) at +0.2 % MAE (mean 0.23 DN off the fp32 prediction): a
            good trade for imagery targets, but for float targets such as elevation the ~0.4 %-of-
            range rounding of the network output can matter, so fp32 stays the CPU default.
        channels_last: channels-last memory format (None: on; measured 1.25× faster than
            contiguous on the CPU in fp32 with the same results).
        strip_rows: window rows per strip (memory ~ a few strips).
        blend: ``hann`` (seamless) or ``none`` (plain averaging; for comparisons only).
        compress: GeoTIFF compression (``zstd``, ``deflate``, ``lzw``, ``none``).
        queue_depth: strips buffered between the reader, the network and the writer.

    Example:
        >>> PredictConfig(window=256, overlap=64, tta=4).tta
        4
        >>> PredictConfig(tta=3)
        Traceback (most recent call last):
        ...
        geop2p.errors.InputError: TTA must be one of 1, 2, 4, 8 (transforms averaged), got 3.
    """

    what = "prediction option"

    window: int | None = None
    overlap: int | None = None
    batch_size: int = 8
    device: str = "auto"
    tta: int = 1
    cog: bool = False
    bands: tuple[int, ...] | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    strip_rows: int = 1
    blend: str = "hann"
    compress: str = "zstd"
    queue_depth: int = 2

    def __post_init__(self) -> None:
        self.coerce_fields()
        check_device_name(self.device)
        if self.window is not None:
            check_window(self.window)
        if self.overlap is not None and self.overlap < 0:
            raise InputError(f"Overlap must be a non-negative number of pixels, got {self.overlap!r}.")
        if self.batch_size < 1:
            raise InputError(f"Batch size must be a positive integer, got {self.batch_size!r}.")
        if self.tta not in TTA_CHOICES:
            raise InputError(f"TTA must be one of {', '.join(map(str, TTA_CHOICES))} (transforms averaged), got {self.tta!r}.")
        if self.precision not in PRECISIONS:
            raise InputError(f"Unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}.")
        if self.blend not in BLEND_KINDS:
            raise InputError(f"Unknown blend {self.blend!r}; valid: {', '.join(BLEND_KINDS)}.")
        check_compression(self.compress)
        if self.strip_rows < 1:
            raise InputError(f"strip_rows must be a positive integer, got {self.strip_rows!r}.")
        if self.queue_depth < 1:
            raise InputError(f"queue_depth must be a positive integer, got {self.queue_depth!r}.")
