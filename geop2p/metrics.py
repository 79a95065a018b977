"""Per-band image-translation metrics in the data's own units, over valid pixels only.

For each target band:

* **MAE** and **RMSE** over all valid pixels of all chips (data units, e.g. metres).
* **PSNR** ``= 10·log10(R² / MSE)`` from the pooled MSE, where ``R`` is the band's
  data range — by default the span the target normalizer maps to [-1, 1]
  (``2 × scale``; for percentile scaling the 2–98 % range of the training data).
* **SSIM** with an 11×11 Gaussian window (σ = 1.5) and the usual constants
  ``C1 = (0.01·R)²``, ``C2 = (0.03·R)²``. Masking uses normalized convolution:
  local means, variances and covariance are Gaussian-weighted averages over the
  *valid* neighbours only, so nodata and the chip border never bias them; the
  SSIM map is averaged over valid pixels whose window is at least half valid.

A :class:`MetricAccumulator` streams batches into a small float64 tensor of
sums that can be all-reduced across ranks (``state`` / ``load_state``), then
:meth:`MetricAccumulator.compute` gives the numbers.

Example:
    >>> import torch
    >>> acc = MetricAccumulator(["dsm"], data_range=[10.0])
    >>> t = torch.rand(2, 1, 32, 32) * 10
    >>> acc.update(t + 1.0, t, torch.ones(2, 1, 32, 32))
    >>> round(acc.compute()["bands"]["dsm"]["mae"], 6)
    1.0
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from geop2p.errors import InputError

__all__ = ["MetricAccumulator", "METRIC_NAMES", "masked_ssim_map", "masked_ssim_sums", "gaussian_window"]

METRIC_NAMES: tuple[str, ...] = ("mae", "rmse", "psnr", "ssim")
#: higher-is-better metrics (the others are lower-is-better)
HIGHER_IS_BETTER: frozenset[str] = frozenset({"psnr", "ssim"})

_COUNT, _ABS, _SQ, _SSIM, _SSIM_N = range(5)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A normalized 2-D Gaussian kernel shaped (1, 1, size, size)."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def masked_ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    data_range: Sequence[float],
    window: int = 11,
    sigma: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked SSIM map of each band, and where it counts.

    Local means, variances and the covariance are Gaussian-weighted averages
    over the *valid* neighbours of each pixel (normalized convolution; outside
    the image counts as invalid); variances are population variances (as
    ``skimage.metrics.structural_similarity(..., use_sample_covariance=False)``).

    Args:
        pred: (N, C, H, W) in data units.
        target: (N, C, H, W) in data units.
        valid: (N, 1, H, W), 1 = valid.
        data_range: one ``R`` per band.

    Returns:
        ``(ssim, use)``: float64 (N, C, H, W) SSIM values, and a boolean (N, C, H, W) mask of the
        pixels that count: valid pixels whose window holds at least half of the Gaussian weight in
        valid pixels.

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> s, use = masked_ssim_map(x, x, torch.ones(1, 1, 16, 16), [1.0])
        >>> bool(torch.allclose(s[use], torch.ones(()).double()))
        True
    """
    n, c, h, w = pred.shape
    k = gaussian_window(window, sigma).to(pred.device)
    pad = window // 2
    x = pred.double().reshape(n * c, 1, h, w)
    y = target.double().reshape(n * c, 1, h, w)
    m = valid.double().expand(n, c, h, w).reshape(n * c, 1, h, w)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, k, padding=pad)

    wsum = blur(m)
    safe = wsum.clamp_min(1e-12)
    mu_x, mu_y = blur(m * x) / safe, blur(m * y) / safe
    var_x = (blur(m * x * x) / safe - mu_x**2).clamp_min(0)
    var_y = (blur(m * y * y) / safe - mu_y**2).clamp_min(0)
    cov = blur(m * x * y) / safe - mu_x * mu_y
    r = torch.as_tensor(list(data_range), dtype=torch.float64, device=pred.device).repeat(n).reshape(n * c, 1, 1, 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    use = (m > 0) & (wsum >= 0.5)
    return ssim.reshape(n, c, h, w), use.reshape(n, c, h, w)


def masked_ssim_sums(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    data_range: Sequence[float],
    window: int = 11,
    sigma: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per band, the sum of the masked SSIM map (:func:`masked_ssim_map`) and the number of pixels summed.

    Returns:
        ``(ssim_sum, count)``, each a float64 tensor of shape (C,).
    """
    ssim, use = masked_ssim_map(pred, target, valid, data_range, window, sigma)
    return (ssim * use).sum(dim=(0, 2, 3)), use.double().sum(dim=(0, 2, 3))


class MetricAccumulator:
    """Streaming per-band MAE / RMSE / PSNR / SSIM over valid pixels.

    Args:
        band_names: one name per target band.
        data_range: per band ``R`` used by PSNR and SSIM (data units).
        ssim: compute SSIM (the costliest metric) — default True.

    Example:
        >>> acc = MetricAccumulator(["a", "b"], data_range=[1.0, 1.0])
        >>> acc.state.shape
        torch.Size([2, 5])
    """

    def __init__(self, band_names: Sequence[str], data_range: Sequence[float], ssim: bool = True) -> None:
        self.band_names = [str(b) for b in band_names]
        if len(data_range) != len(self.band_names):
            raise InputError(
                f"MetricAccumulator got {len(data_range)} data ranges for {len(self.band_names)} bands; "
                "give one per band."
            )
        self.data_range = [float(r) if float(r) > 0 else 1.0 for r in data_range]
        self.with_ssim = ssim
        self.state = torch.zeros(len(self.band_names), 5, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` (N, C, H, W) in data units, ``valid`` (N, 1, H, W)."""
        if pred.shape != target.shape or pred.shape[1] != len(self.band_names):
            raise InputError(
                f"Metric update got prediction {tuple(pred.shape)} and target {tuple(target.shape)}; expected "
                f"equal shapes with {len(self.band_names)} band(s) on axis 1."
            )
        pred = pred.detach().double()
        target = target.detach().double()
        m = valid.detach().double().expand_as(pred)
        diff = (pred - target) * m
        s = torch.zeros_like(self.state)
        s[:, _COUNT] = m.sum(dim=(0, 2, 3)).cpu()
        s[:, _ABS] = diff.abs().sum(dim=(0, 2, 3)).cpu()
        s[:, _SQ] = (diff**2).sum(dim=(0, 2, 3)).cpu()
        if self.with_ssim:
            ss, sn = masked_ssim_sums(pred, target, valid.detach(), self.data_range)
            s[:, _SSIM] = ss.cpu()
            s[:, _SSIM_N] = sn.cpu()
        self.state += s

    def load_state(self, state: torch.Tensor) -> None:
        """Replace the sums (e.g. with their all-reduced total across ranks)."""
        self.state = state.detach().to(torch.float64).cpu().clone()

    def compute(self) -> dict:
        """``{"mae", "rmse", "psnr", "ssim"}`` averaged over bands plus ``"bands": {name: {...}}``.

        Metrics of a band without valid pixels are NaN.
        """
        bands = {}
        for i, name in enumerate(self.band_names):
            n = float(self.state[i, _COUNT])
            if n == 0:
                bands[name] = {k: math.nan for k in METRIC_NAMES}
                continue
            mae = float(self.state[i, _ABS]) / n
            mse = float(self.state[i, _SQ]) / n
            psnr = math.inf if mse == 0 else 10 * math.log10(self.data_range[i] ** 2 / mse)
            sn = float(self.state[i, _SSIM_N])
            ssim = float(self.state[i, _SSIM]) / sn if sn > 0 else math.nan
            bands[name] = {"mae": mae, "rmse": math.sqrt(mse), "psnr": psnr, "ssim": ssim}
        out: dict = {}
        for k in METRIC_NAMES:
            vals = [b[k] for b in bands.values() if not math.isnan(b[k])]
            out[k] = sum(vals) / len(vals) if vals else math.nan
        out["bands"] = bands
        return out

    def flat(self, prefix: str) -> dict[str, float]:
        """Metrics as a flat dict: ``{prefix}_mae`` … and ``{prefix}_mae_{band}`` … for CSV rows."""
        res = self.compute()
        flat = {f"{prefix}_{k}": res[k] for k in METRIC_NAMES}
        for band, vals in res["bands"].items():
            for k in METRIC_NAMES:
                flat[f"{prefix}_{k}_{band}"] = vals[k]
        return flat
