"""Input-size rules of the generators: height and width must be multiples of a divisor.

Example:
    >>> check_input_size(256, 256, 32)
    >>> padded_size(250, 32)
    256
"""

from __future__ import annotations

import torch

from geop2p.errors import ChipSizeError

__all__ = ["check_input_size", "padded_size", "skip_shape_checks"]


def padded_size(size: int, divisor: int) -> int:
    """The smallest multiple of ``divisor`` that is >= ``size``.

    Example:
        >>> padded_size(64, 32), padded_size(65, 32)
        (64, 96)
    """
    return -(-int(size) // int(divisor)) * int(divisor)


def check_input_size(height: int, width: int, divisor: int, architecture: str = "generator") -> None:
    """Raise :class:`ChipSizeError` unless ``height`` and ``width`` are multiples of ``divisor``.

    Example:
        >>> check_input_size(64, 48, 16, "pix2pix-unet")
    """
    if divisor <= 1:
        return
    if height % divisor or width % divisor:
        raise ChipSizeError(
            f"The {architecture} needs height and width divisible by {divisor}; got {height}x{width}. "
            f"Pad or crop the input to {padded_size(height, divisor)}x{padded_size(width, divisor)} "
            f"(or choose a chip size that is a multiple of {divisor})."
        )


def skip_shape_checks() -> bool:
    """True while scripting, tracing, compiling or exporting, where Python checks must not run."""
    compiler = getattr(torch, "compiler", None)
    return bool(
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or (compiler is not None and getattr(compiler, "is_compiling", lambda: False)())
        or (compiler is not None and getattr(compiler, "is_exporting", lambda: False)())
    )
