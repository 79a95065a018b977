"""The torch modules the ONNX graph is traced from.

:class:`NormalizedGenerator` is the bundle's generator between its normalisers,
with the Translator's rule for invalid pixels (``predict/translator.py``)::

    raw     = input * input_scale                    (undoes Deepness's / 255)
    invalid = any band NaN or equal to an input nodata value (baked in at export)
    z       = clip((raw - in_offset) / in_scale, -1, 1), then 0 where invalid or not finite
    y       = generator(z)                           (tanh, in [-1, 1])
    units   = y * out_scale + out_offset             (the target normaliser, inverted)

:class:`DeepnessGraph` turns ``units`` into the byte planes of
:mod:`geop2p.onnx_export.encoding`, one ``(1, 1, N, N)`` output per plane
(or one ``(1, C, N, N)`` float output).

A raw value ``v`` reaches the graph as ``float32(v / 255)`` and comes back as
``v`` within a few float32 ulps, so a nodata value matches within a relative
``1e-6`` (exactly, for 0).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from geop2p.normalize import Normalizer
from geop2p.onnx_export.config import DEEPNESS_INPUT_SCALE
from geop2p.onnx_export.encoding import BandCode

__all__ = ["DeepnessGraph", "NODATA_RTOL", "NormalizedGenerator"]

#: how close (relative) a value recovered from Deepness's ``/ 255`` must be to a nodata value to match it
NODATA_RTOL = 1e-6


class NormalizedGenerator(nn.Module):
    """``raw / input_scale → validity → normalize → generator → denormalize`` as one module.

    Args:
        generator: the bundle's generator (output in [-1, 1]).
        input_normalizer: maps raw input values to the network range.
        target_normalizer: maps the network range back to target units.
        input_scale: the module's input is multiplied by this first.
        input_nodata: raw values that mark a pixel invalid (in any band); NaN always does.

    Example:
        >>> g = nn.Conv2d(1, 1, 1)
        >>> m = NormalizedGenerator(g, Normalizer.identity(1), Normalizer.identity(1), 1.0)
        >>> m(torch.zeros(1, 1, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """

    def __init__(
        self,
        generator: nn.Module,
        input_normalizer: Normalizer,
        target_normalizer: Normalizer,
        input_scale: float = DEEPNESS_INPUT_SCALE,
        input_nodata: Sequence[float] = (),
    ) -> None:
        super().__init__()
        self.generator = generator
        self.clip_input = bool(input_normalizer.clip)
        self.input_scale = float(input_scale)
        self.input_nodata = tuple(float(v) for v in input_nodata if not math.isnan(float(v)))
        in_off, in_sc = input_normalizer.linear_params(like=torch.zeros(1))
        out_off, out_sc = target_normalizer.linear_params(like=torch.zeros(1))
        self.register_buffer("in_offset", in_off.unsqueeze(0))
        self.register_buffer("in_scale", in_sc.unsqueeze(0))
        self.register_buffer("out_offset", out_off.unsqueeze(0))
        self.register_buffer("out_scale", out_sc.unsqueeze(0))

    def invalid(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` bool: the Translator's invalid pixels (any band NaN or nodata)."""
        bad = torch.isnan(raw)
        for value in self.input_nodata:
            tol = abs(value) * NODATA_RTOL
            bad = bad | ((raw == value) if tol == 0 else (torch.abs(raw - value) <= tol))
        return bad.to(torch.float32).amax(dim=1, keepdim=True) > 0

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, invalid)``: the generator's output in [-1, 1] and the invalid mask, for module input ``x``."""
        raw = x * self.input_scale
        invalid = self.invalid(raw)
        z = (raw - self.in_offset) / self.in_scale
        if self.clip_input:
            z = torch.clamp(z, -1.0, 1.0)
        # the Translator: invalid pixels → 0 (the middle of the range), then NaN/±inf → 0
        z = torch.where(invalid | ~torch.isfinite(z), torch.zeros_like(z), z)
        return self.generator(z), invalid

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y, _ = self.network(x)
        return y * self.out_scale + self.out_offset


class DeepnessGraph(nn.Module):
    """A :class:`NormalizedGenerator` whose output is encoded band by band (:class:`BandCode`).

    ``forward`` returns one tensor per plane, in the order of the codes' ``planes``:
    ``(B, 1, H, W)`` float32 whole numbers 0..255 (``byte`` and ``split16``), or one
    ``(B, C, H, W)`` tensor in target units (``float``; invalid pixels hold the target nodata,
    NaN when it has none).

    Example:
        >>> core = NormalizedGenerator(nn.Identity(), Normalizer.identity(1), Normalizer("minmax", (500.0,), (500.0,), True), 1.0)
        >>> graph = DeepnessGraph(core, [BandCode.split16("h", 0.0, 1000.0)])
        >>> hi, lo = graph(torch.tensor([[[[-1.0, 0.0, 1.0]]]]))
        >>> (hi * 256 + lo).flatten().tolist()
        [1.0, 32768.0, 65535.0]
    """

    def __init__(self, core: NormalizedGenerator, codes: Sequence[BandCode]) -> None:
        super().__init__()
        self.core = core
        self.codes = tuple(codes)

    def _whole(self, units: torch.Tensor, code: BandCode, valid: torch.Tensor) -> torch.Tensor:
        """Rounded and clipped to the band's whole range, nudged off the nodata (``TargetCast``)."""
        v = torch.clamp(torch.round(units), code.low, code.high)
        if code.nudge is not None and code.nodata is not None:
            v = torch.where(valid & (v == code.nodata), torch.full_like(v, code.nudge), v)
        return v

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # noqa: D102
        core = self.core
        y, invalid = core.network(x)
        valid = ~invalid
        if self.codes and self.codes[0].kind == "float":
            units = y * core.out_scale + core.out_offset
            parts = []
            for i, code in enumerate(self.codes):
                band = units[:, i : i + 1]
                if code.integer:
                    band = self._whole(band, code, valid)
                fill = code.nodata if code.nodata is not None else float("nan")
                parts.append(torch.where(invalid, torch.full_like(band, fill), band))
            return (torch.cat(parts, dim=1),)
        outputs: list[torch.Tensor] = []
        for i, code in enumerate(self.codes):
            yi = y[:, i : i + 1]
            units = yi * core.out_scale[:, i : i + 1] + core.out_offset[:, i : i + 1]
            if code.kind == "byte":
                v = self._whole(units, code, valid)
                if code.nodata is not None:
                    v = torch.where(invalid, torch.full_like(v, code.nodata), v)
                outputs.append(v)
                continue
            if code.integer:
                q = self._whole(units, code, valid) - code.base
                if code.step != 1.0:
                    q = torch.round(q / code.step)
            else:  # from y directly: exact to float32 whatever the band's offset
                t = torch.clamp(yi * torch.sign(core.out_scale[:, i : i + 1]), -1.0, 1.0)
                q = torch.round((t + 1.0) * ((code.high - code.low) / 2.0 / code.step))
            c = torch.clamp(q, 0.0, 65534.0) + 1.0
            c = torch.where(invalid, torch.zeros_like(c), c)
            hi = torch.floor(c / 256.0)
            outputs.extend([hi, c - hi * 256.0])
        return tuple(outputs)
