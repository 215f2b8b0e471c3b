"""Distortion metrics: PSNR, SSIM and MS-SSIM, optionally on the luma (Y) channel with a border crop.

Conventions (what super-resolution papers report):

- Images are N×C×H×W float tensors in [0, 1]; ``data_range`` = 1.
- ``y_channel=True`` converts RGB to the Y channel of ITU-R BT.601 YCbCr, studio swing, as MATLAB's
  ``rgb2ycbcr`` does: ``Y = (16 + 65.481·R + 128.553·G + 24.966·B) / 255`` (so Y ∈ [16/255, 235/255]); the
  metric is then computed on that single channel, still with ``data_range`` = 1 (255 on the 8-bit scale).
  Values are not rounded to 8 bits first (BasicSR's float convention; MATLAB scripts that round differ by
  about 0.01 dB).
- ``crop_border=s`` removes ``s`` pixels on every side before comparing (SR papers crop the scale factor).

SSIM and MS-SSIM come from ``pytorch-msssim`` (Wang et al. 2004, eqs. 6–13; Wang, Simoncelli, Bovik 2003),
which matches scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``: an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03,
statistics over the "valid" part of the image (no padding), the mean over positions and then over channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_msssim
import torch
from torch import Tensor

from .._checks import (
    MAX_KERNEL_SIZE,
    check_int,
    check_number,
    check_positive,
    check_reduction,
    compute_dtype,
    reduce,
)
from ..losses.base import float32_compute
from ..ops import rgb_to_y as _ops_rgb_to_y
from .base import Metric, check_image_pair

__all__ = [
    "MSSSIM",
    "MS_SSIM_WEIGHTS",
    "PSNR",
    "SSIM",
    "ms_ssim",
    "prepare_for_distortion",
    "psnr",
    "rgb_to_y",
    "ssim",
]

#: MS-SSIM scale weights β_j = γ_j of Wang et al. 2003 (5 scales, finest first).
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def rgb_to_y(images: Tensor) -> Tensor:
    """Luma of RGB images in [0, 1]: N×3×H×W → N×1×H×W, ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``.

    The Y of ITU-R BT.601 YCbCr with studio swing (MATLAB ``rgb2ycbcr``), as SR papers use for PSNR/SSIM:
    :func:`featstat.ops.rgb_to_y` (``swing="studio"``).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must be RGB (N×3×H×W) to take the Y channel, got shape {tuple(images.shape)}; "
            f"pass y_channel=False for grayscale images"
        )
    return _ops_rgb_to_y(images, swing="studio")


def _check_crop(crop_border: int, x: Tensor) -> int:
    if not isinstance(crop_border, int) or isinstance(crop_border, bool) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0 (pixels per side), got {crop_border!r}")
    h, w = x.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(
            f"crop_border={crop_border} removes the whole image of size {h}×{w}; use a border smaller than "
            f"{(min(h, w) + 1) // 2}"
        )
    return crop_border


def prepare_for_distortion(
    pred: Tensor, target: Tensor, *, y_channel: bool = False, crop_border: int = 0, validate: bool = True
) -> tuple[Tensor, Tensor]:
    """Validate a pair, then optionally take the Y channel and crop ``crop_border`` pixels per side.

    Returns the two tensors in the compute dtype (float32 for half inputs).
    """
    pred, target = check_image_pair(pred, target, validate=validate)
    crop_border = _check_crop(crop_border, pred)
    dtype = compute_dtype(pred)
    pred, target = pred.to(dtype), target.to(dtype)
    if y_channel:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    if crop_border:
        s = crop_border
        pred, target = pred[..., s:-s, s:-s], target[..., s:-s, s:-s]
    return pred, target


# ------------------------------------------------------------------------------------------------ PSNR


@float32_compute
def psnr(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10·log10(data_range² / MSE)``.

    Args:
        pred, target: N×C×H×W images in [0, 1] (target batch 1 is compared with every prediction).
        data_range: peak value (1 for [0, 1] images).
        y_channel: compare the BT.601 luma only (needs RGB); see the module docstring.
        crop_border: pixels removed on each side first.
        reduction: "mean" (the average of per-image PSNRs, what papers report), "sum" or "none" (shape N).

    MSE is the mean over C·H·W of each image; identical images give +inf. Higher is better.
    """
    check_reduction(reduction)
    check_positive("data_range", data_range)
    p, t = prepare_for_distortion(pred, target, y_channel=y_channel, crop_border=crop_border)
    mse = (p - t).square().flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(data_range**2 / mse)
    return reduce(values, reduction)


# ------------------------------------------------------------------------------------------------ SSIM


def _check_window(
    win_size: int, win_sigma: float, k1: float = 0.01, k2: float = 0.03, weights: object = None
) -> list[float] | None:
    """The one check of (MS-)SSIM options, shared by the functions and the modules. Values that would turn
    into NaN or overflow (k = 0 makes flat regions 0/0, a tiny σ a 0/0 window) are refused here."""
    check_int("win_size", win_size, low=3, high=MAX_KERNEL_SIZE, odd=True)
    check_number("win_sigma", win_sigma, low=0.05, high=1e3, hint="the papers use 1.5")
    for name, k in (("k1", k1), ("k2", k2)):
        check_number(name, k, low=1e-6, high=1.0, hint="the SSIM paper uses k1=0.01, k2=0.03; 0 gives 0/0")
    if weights is None:
        return None
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        raise ValueError(f"weights must be a sequence of numbers (one per scale), got {weights!r}")
    w = [check_number(f"weights[{i}]", v, low=0.0) for i, v in enumerate(weights)]  # type: ignore[union-attr]
    if not w or sum(w) <= 0:
        raise ValueError(f"weights must be a non-empty sequence of numbers >= 0, not all 0, got {weights!r}")
    return w


@float32_compute
def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    y_channel: bool = False,
    crop_border: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image, via ``pytorch_msssim.ssim``.

    ``SSIM = mean over valid positions and channels of l·c·s`` with Gaussian-weighted local statistics
    (window ``win_size`` taps, σ ``win_sigma``), C1 = (k1·data_range)², C2 = (k2·data_range)². Identical
    images give 1; the range is [-1, 1]. Higher is better.

    Args:
        pred, target: N×C×H×W images in [0, 1], both sides at least ``win_size`` pixels after cropping.
        y_channel, crop_border: see the module docstring.
        reduction: "mean", "sum" or "none" (shape N).
    """
    check_reduction(reduction)
    check_positive("data_range", data_range)
    _check_window(win_size, win_sigma, k1, k2)
    p, t = prepare_for_distortion(pred, target, y_channel=y_channel, crop_border=crop_border)
    h, w = p.shape[-2:]
    if min(h, w) < win_size:
        raise ValueError(
            f"pred must be at least win_size={win_size} pixels on each side for SSIM (after cropping), got "
            f"{h}×{w}; use a smaller win_size or larger images"
        )
    t = t.expand_as(p)
    values = pytorch_msssim.ssim(
        p, t, data_range=data_range, size_average=False, win_size=win_size, win_sigma=win_sigma, K=(k1, k2)
    )
    return reduce(values, reduction)


@float32_compute
def ms_ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    win_sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    k1: float = 0.01,
    k2: float = 0.03,
    y_channel: bool = False,
    crop_border: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003, eq. 7) per image, via ``pytorch_msssim.ms_ssim``.

    ``MS-SSIM = Π_{j<M} cs_j^{β_j} · ssim_M^{β_M}`` over M = len(``weights``) scales, each 2×2 average-pooled
    from the previous (odd sizes are zero-padded by one pixel first, as pytorch-msssim does); negative cs and
    ssim values are clamped to 0. Identical images give 1. Higher is better.

    pytorch-msssim always requires the shorter side (after cropping) to exceed ``(win_size − 1)·16`` (160
    pixels for the default window), whatever the number of scales; smaller images raise a ``ValueError``.
    """
    check_reduction(reduction)
    check_positive("data_range", data_range)
    w = _check_window(win_size, win_sigma, k1, k2, weights)
    assert w is not None
    p, t = prepare_for_distortion(pred, target, y_channel=y_channel, crop_border=crop_border)
    need = (win_size - 1) * 16
    h, wd = p.shape[-2:]
    if min(h, wd) <= need:
        raise ValueError(
            f"pred must be larger than {need} pixels on its shorter side for MS-SSIM with "
            f"win_size={win_size} "
            f"(pytorch-msssim downsamples 4 times), got {h}×{wd}; use ssim(), a smaller win_size (e.g. 7 "
            f"needs > 96) or larger images"
        )
    t = t.expand_as(p)
    values = pytorch_msssim.ms_ssim(
        p, t, data_range=data_range, size_average=False, win_size=win_size, win_sigma=win_sigma,
        weights=w, K=(k1, k2),
    )  # fmt: skip
    return reduce(values, reduction)


# ----------------------------------------------------------------------------------------------- modules


class PSNR(Metric):
    """Module form of :func:`psnr` (higher is better)."""

    higher_is_better = True
    luma_options = True

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        y_channel: bool = False,
        crop_border: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.data_range = check_positive("data_range", data_range)
        self.y_channel, self.crop_border = bool(y_channel), crop_border

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        return psnr(pred, target, data_range=self.data_range, y_channel=self.y_channel,
                    crop_border=self.crop_border, reduction="none")  # fmt: skip

    def extra_repr(self) -> str:
        return f"y_channel={self.y_channel}, crop_border={self.crop_border}, reduction={self.reduction!r}"


class SSIM(Metric):
    """Module form of :func:`ssim` (higher is better)."""

    higher_is_better = True
    luma_options = True

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        win_size: int = 11,
        win_sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        y_channel: bool = False,
        crop_border: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        _check_window(win_size, win_sigma, k1, k2)
        self.options = dict(data_range=check_positive("data_range", data_range), win_size=win_size,
                            win_sigma=win_sigma, k1=k1, k2=k2, y_channel=bool(y_channel),
                            crop_border=crop_border)  # fmt: skip

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        return ssim(pred, target, reduction="none", **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items()) + f", reduction={self.reduction!r}"


class MSSSIM(Metric):
    """Module form of :func:`ms_ssim` (higher is better)."""

    higher_is_better = True
    luma_options = True

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        win_size: int = 11,
        win_sigma: float = 1.5,
        weights: Sequence[float] = MS_SSIM_WEIGHTS,
        k1: float = 0.01,
        k2: float = 0.03,
        y_channel: bool = False,
        crop_border: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        w = _check_window(win_size, win_sigma, k1, k2, weights)
        self.options = dict(data_range=check_positive("data_range", data_range), win_size=win_size,
                            win_sigma=win_sigma, weights=tuple(w or ()), k1=k1, k2=k2,
                            y_channel=bool(y_channel), crop_border=crop_border)  # fmt: skip

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        return ms_ssim(pred, target, reduction="none", **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items()) + f", reduction={self.reduction!r}"
