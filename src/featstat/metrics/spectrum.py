"""Mean radial power spectrum of images (contextual-loss paper, supplementary Fig. 4) and a spectral distance.

Natural images have a power spectrum falling roughly as 1/f² (Ruderman 1994; van der Schaaf & van Hateren
1996); images restored for high PSNR lack the high frequencies, perceptually trained ones less so. For each
image (N×C×H×W):

1. one channel: the BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` for RGB (``channel="luma"``), the channel
   mean (``"mean"``) or a given channel index;
2. the image mean is subtracted and a separable window applied (``"hann"`` by default, against the
   leakage of the image borders; ``None`` for none);
3. ``P(f) = |FFT|² / Σ window²``: the periodogram, normalised so that white noise of variance σ² has
   P = σ² at every frequency;
4. radial average: frequencies in cycles per pixel, ``|f| = sqrt(f_x² + f_y²)``, averaged over ``n_bins``
   equal rings between 0 and the Nyquist frequency 0.5 (the DC term and the corners beyond 0.5 are left out).

Images of different sizes share the same frequency axis (cycles per pixel), so a set of images of any sizes
can be averaged (:func:`mean_power_spectrum`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_finite, check_reduction, check_tensor, check_values, compute_dtype, reduce
from ..losses.base import float32_compute
from ..ops import rgb_to_y
from .base import Metric

__all__ = [
    "SpectrumDistance",
    "mean_power_spectrum",
    "radial_power_spectrum",
    "spectral_slope",
    "spectrum_distance",
]

def _to_channel(images: Tensor, channel: str | int) -> Tensor:
    c = images.shape[1]
    if isinstance(channel, int) and not isinstance(channel, bool):
        if not 0 <= channel < c:
            raise ValueError(f"channel index must be in 0..{c - 1}, got {channel}")
        return images[:, channel]
    if channel == "mean":
        return images.mean(dim=1)
    if channel == "luma":
        if c == 1:
            return images[:, 0]
        if c != 3:
            raise ValueError(
                f"channel='luma' needs 1 or 3 channels, got {c}; pass channel='mean' or an index"
            )
        return rgb_to_y(images, swing="full")[:, 0]  # BT.601 luma 0.299 R + 0.587 G + 0.114 B
    raise ValueError(f"channel must be 'luma', 'mean' or a channel index, got {channel!r}")


@float32_compute
def radial_power_spectrum(
    images: Tensor, *, n_bins: int | None = None, window: str | None = "hann", channel: str | int = "luma"
) -> tuple[Tensor, Tensor]:
    """Radially averaged power spectrum of each image.

    Args:
        images: N×C×H×W (values need not be in [0, 1]; finite).
        n_bins: rings between 0 and 0.5 cycles/pixel (default ``min(H, W) // 2``, one per frequency step of
            the shorter side).
        window: "hann" or None.
        channel: "luma" (RGB → BT.601 luma; 1 channel as is), "mean", or a channel index.

    Returns:
        (frequencies (n_bins,): ring centres in cycles/pixel, power N×n_bins), in the compute dtype
        (float32 for half inputs). A ring with no frequency in it (only possible with more rings than the
        default) is NaN.
    """
    x = check_tensor("images", images, ndim=4)
    check_finite("images", x)
    h, w = x.shape[-2:]
    if min(h, w) < 4:
        raise ValueError(f"images must be at least 4×4 pixels for a spectrum, got {tuple(x.shape)}")
    if n_bins is None:
        n_bins = min(h, w) // 2
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    dtype = compute_dtype(x)
    g = _to_channel(x.to(dtype), channel)
    g = g - g.mean(dim=(-2, -1), keepdim=True)
    if window == "hann":
        win = torch.outer(
            torch.hann_window(h, periodic=False, dtype=dtype, device=x.device),
            torch.hann_window(w, periodic=False, dtype=dtype, device=x.device),
        )
    elif window is None:
        win = torch.ones(h, w, dtype=dtype, device=x.device)
    else:
        raise ValueError(f"window must be 'hann' or None, got {window!r}")
    power = torch.fft.fft2(g * win).abs().square() / win.square().sum()  # N×H×W
    fy = torch.fft.fftfreq(h, dtype=dtype, device=x.device)
    fx = torch.fft.fftfreq(w, dtype=dtype, device=x.device)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    ring = torch.ceil(radius / 0.5 * n_bins).long() - 1  # ring b holds (b/n, (b+1)/n]·0.5; DC → -1
    keep = (ring >= 0) & (ring < n_bins)
    idx = ring[keep]
    counts = torch.bincount(idx, minlength=n_bins).to(dtype)
    flat = power[:, keep]  # N×K
    sums = torch.zeros(flat.shape[0], n_bins, dtype=dtype, device=x.device).index_add_(1, idx, flat)
    spectrum = sums / counts.where(counts > 0, torch.full_like(counts, float("nan")))
    freqs = (torch.arange(n_bins, dtype=dtype, device=x.device) + 0.5) * (0.5 / n_bins)
    return freqs, spectrum


def mean_power_spectrum(
    images: Tensor | Sequence[Tensor],
    *,
    n_bins: int | None = None,
    window: str | None = "hann",
    channel: str | int = "luma",
) -> tuple[Tensor, Tensor]:
    """Mean radial power spectrum of a set of images (a batch, or a list of 1×C×H×W / N×C×H×W tensors of any
    sizes). ``n_bins`` defaults to ``min side // 2`` of the smallest image so every ring has frequencies in it
    for every image. Returns (frequencies (n_bins,), mean power (n_bins,)); see
    :func:`radial_power_spectrum`."""
    batches = [images] if isinstance(images, Tensor) else list(images)
    if not batches:
        raise ValueError("images is empty; give at least one image")
    for i, b in enumerate(batches):
        check_tensor(f"images[{i}]", b, ndim=4)
    if n_bins is None:
        n_bins = min(min(b.shape[-2:]) for b in batches) // 2
    total, count, freqs = None, 0, None
    for b in batches:
        freqs, p = radial_power_spectrum(b, n_bins=n_bins, window=window, channel=channel)
        s = p.sum(dim=0)
        total = s if total is None else total + s.to(total)
        count += p.shape[0]
    assert total is not None and freqs is not None
    return freqs, total / count


def spectral_slope(frequencies: Tensor, power: Tensor, *, fmin: float = 0.02, fmax: float = 0.5) -> Tensor:
    """Least-squares slope of log10(power) against log10(frequency) on [fmin, fmax] (≈ −2 for natural
    images). ``power`` is (B,) or N×B; returns a scalar or N slopes."""
    sel = (frequencies >= fmin) & (frequencies <= fmax)
    p = power[..., sel]
    ok = torch.isfinite(p) & (p > 0)
    if not bool(ok.all()) or int(sel.sum()) < 2:
        raise ValueError(
            f"spectral_slope needs at least 2 rings with positive power in [{fmin}, {fmax}] cycles/pixel"
        )
    lx = torch.log10(frequencies[sel])
    ly = torch.log10(p)
    lx0 = lx - lx.mean()
    return ((ly - ly.mean(dim=-1, keepdim=True)) * lx0).sum(dim=-1) / lx0.square().sum()


#: Power floor relative to the larger spectrum's peak (120 dB): a ring empty on one side counts that much.
DYNAMIC_RANGE = 1e-12


@float32_compute
def spectrum_distance(
    pred: Tensor,
    target: Tensor,
    *,
    n_bins: int | None = None,
    window: str | None = "hann",
    channel: str | int = "luma",
    reduction: str = "mean",
) -> Tensor:
    """Log-spectral distance in dB between the radial power spectra of ``pred`` and ``target``:
    ``sqrt(mean_b (10·log10(P_pred(b) / P_target(b)))²)`` per image (0 for equal spectra, lower is better).

    Sizes may differ (the rings are in cycles/pixel; ``n_bins`` defaults to the smaller image's
    min side // 2).
    Target batch 1 broadcasts. A ring with power on one side only is a real difference, never skipped:
    powers are floored at 10⁻¹² of the larger spectrum's peak (so such a ring counts up to 120 dB). Rings
    empty on both sides are equal and count 0. A flat image therefore never matches a texture.
    """
    check_reduction(reduction)
    pred = check_values("pred", check_tensor("pred", pred, ndim=4))  # finite; obeys the value-check switch
    target = check_values("target", check_tensor("target", target, ndim=4))
    if target.shape[0] not in (1, pred.shape[0]):
        raise ValueError(f"target batch size must be 1 or {pred.shape[0]}, got shape {tuple(target.shape)}")
    if n_bins is None:
        n_bins = min(*pred.shape[-2:], *target.shape[-2:]) // 2
    _, pp = radial_power_spectrum(pred, n_bins=n_bins, window=window, channel=channel)
    _, pt = radial_power_spectrum(target, n_bins=n_bins, window=window, channel=channel)
    pt = pt.to(pp)
    tiny = torch.finfo(pp.dtype).tiny
    peak = torch.maximum(pp.amax(dim=-1, keepdim=True), pt.amax(dim=-1, keepdim=True))
    floor = (peak * DYNAMIC_RANGE).clamp_min(tiny)
    both_empty = (pp <= floor) & (pt <= floor)
    diff = 10 * (torch.log10(torch.maximum(pp, floor)) - torch.log10(torch.maximum(pt, floor)))
    diff = torch.where(both_empty, torch.zeros_like(diff), diff)
    values = torch.sqrt(diff.square().mean(dim=-1))
    return reduce(values, reduction)


class SpectrumDistance(Metric):
    """Module form of :func:`spectrum_distance` (log-spectral distance in dB, lower is better)."""

    higher_is_better = False

    def __init__(
        self,
        *,
        n_bins: int | None = None,
        window: str | None = "hann",
        channel: str | int = "luma",
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_bins, self.window, self.channel = n_bins, window, channel

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        return spectrum_distance(pred, target, n_bins=self.n_bins, window=self.window, channel=self.channel,
                                 reduction="none")  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"n_bins={self.n_bins}, window={self.window!r}, channel={self.channel!r}, "
            f"reduction={self.reduction!r}"
        )
