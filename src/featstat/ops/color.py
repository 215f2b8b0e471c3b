"""Colour conversions of N×C×H×W images in [0, 1]: RGB ↔ YCbCr (ITU-R BT.601), luma, grayscale detection.

Two conventions of BT.601 YCbCr, named by ``swing``:

- ``"studio"`` (MATLAB ``rgb2ycbcr``; what super-resolution papers use for PSNR/SSIM on Y):
  ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` ∈ [16/255, 235/255],
  ``Cb = (128 − 37.797 R − 74.203 G + 112 B) / 255``, ``Cr = (128 + 112 R − 93.786 G − 18.214 B) / 255``
  ∈ [16/255, 240/255];
- ``"full"`` (JPEG/JFIF): ``Y = 0.299 R + 0.587 G + 0.114 B`` ∈ [0, 1],
  ``Cb = 0.5 − 0.168736 R − 0.331264 G + 0.5 B``, ``Cr = 0.5 + 0.5 R − 0.418688 G − 0.081312 B`` ∈ [0, 1].

The inverses use the exact inverse matrices (float64), so ``ycbcr_to_rgb(rgb_to_ycbcr(x))`` returns ``x``
up to rounding. Linear (affine) and differentiable; computed in the images' dtype. No randomness.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_number, check_tensor

__all__ = ["SWINGS", "is_grayscale", "rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

SWINGS = ("studio", "full")

# rows Y, Cb, Cr; columns R, G, B (on the [0, 1] scale) and the offsets
_MATRIX = {
    "studio": np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
    / 255.0,
    "full": np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]),
}
_OFFSET = {"studio": np.array([16.0, 128.0, 128.0]) / 255.0, "full": np.array([0.0, 0.5, 0.5])}
_Y_WEIGHTS_255 = (65.481, 128.553, 24.966)


def _rgb(name: str, images: object) -> Tensor:
    x = check_tensor(name, images, ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"{name} must be RGB (N×3×H×W), got shape {tuple(x.shape)}")
    return x


def _affine(x: Tensor, matrix: np.ndarray, offset: np.ndarray) -> Tensor:
    m = torch.from_numpy(matrix).to(device=x.device, dtype=x.dtype)
    b = torch.from_numpy(offset).to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return torch.einsum("oc,nchw->nohw", m, x) + b


def rgb_to_y(images: Tensor, *, swing: str = "studio") -> Tensor:
    """Luma of RGB images: N×3×H×W → N×1×H×W (the Y of :func:`rgb_to_ycbcr`).

    "studio": ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, computed in that order (MATLAB
    ``rgb2ycbcr``); "full": ``0.299 R + 0.587 G + 0.114 B``.
    """
    x = _rgb("images", images)
    check_choice("swing", swing, SWINGS)
    if swing == "studio":
        w = torch.tensor(_Y_WEIGHTS_255, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (16.0 + (x * w).sum(dim=1, keepdim=True)) / 255.0
    w = torch.tensor(_MATRIX["full"][0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def rgb_to_ycbcr(images: Tensor, *, swing: str = "studio") -> Tensor:
    """RGB → YCbCr (BT.601; ``swing`` "studio" or "full", see the module docstring): N×3×H×W → N×3×H×W."""
    x = _rgb("images", images)
    check_choice("swing", swing, SWINGS)
    return _affine(x, _MATRIX[swing], _OFFSET[swing])


def ycbcr_to_rgb(images: Tensor, *, swing: str = "studio") -> Tensor:
    """YCbCr → RGB, the exact inverse of :func:`rgb_to_ycbcr` (not clamped: out-of-gamut values stay)."""
    x = check_tensor("images", images, ndim=4, channels=3)
    check_choice("swing", swing, SWINGS)
    inv = np.linalg.inv(_MATRIX[swing])
    return _affine(x, inv, -inv @ _OFFSET[swing])


def is_grayscale(images: Tensor, *, tol: float = 0.0) -> Tensor:
    """Per image, whether it carries no colour: N×C×H×W → N booleans.

    True for one channel, or for three channels whose values differ by at most ``tol`` at every pixel
    (``max |R − G|, |G − B| ≤ tol``; 0 = exactly equal, 1/255 = within one 8-bit level). Reads values (one
    device sync when the caller uses the result).
    """
    x = check_tensor("images", images, ndim=4)
    tol = check_number("tol", tol, low=0.0)
    if x.shape[1] == 1:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    if x.shape[1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(x.shape)}")
    spread = torch.maximum((x[:, 0] - x[:, 1]).abs(), (x[:, 1] - x[:, 2]).abs())
    return spread.flatten(1).amax(dim=1) <= tol
