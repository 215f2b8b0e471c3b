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

__all__ = ["SWINGS", "is_grayscale", "lab_to_rgb", "rgb_to_lab", "rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

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


# -- CIE L*a*b* (sRGB, D65) --------------------------------------------------------------------------------

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # fmt: skip
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_LAB_EPS, _LAB_KAPPA = 216 / 24389, 24389 / 27


def _srgb_to_linear(c: Tensor) -> Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: Tensor) -> Tensor:
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp(min=0) ** (1 / 2.4) - 0.055)


def _mix(x: Tensor, matrix: np.ndarray) -> Tensor:
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,njhw->nihw", m, x)


def rgb_to_lab(images: Tensor) -> Tensor:
    """sRGB images in [0, 1] (N×3×H×W) → CIE L*a*b* (D65): L ∈ [0, 100], a, b ≈ [−128, 127] (N×3×H×W).

    sRGB transfer curve, the sRGB→XYZ matrix of IEC 61966-2-1, white D65, CIE 1976 with the exact
    ε = 216/24389 and κ = 24389/27; within 0.01 of scikit-image's ``rgb2lab`` (slightly other matrix digits).
    Computed in the images' dtype (use float32 or float64)."""
    x = _rgb("images", images)
    white = torch.as_tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    xyz = _mix(_srgb_to_linear(x), _RGB_TO_XYZ) / white
    f = torch.where(xyz > _LAB_EPS, xyz.clamp(min=_LAB_EPS) ** (1 / 3), (_LAB_KAPPA * xyz + 16) / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIE L*a*b* (D65, N×3×H×W) → sRGB, clipped to [0, 1] (colours outside the sRGB gamut are clipped)."""
    x = check_tensor("lab", lab, ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"lab must have 3 channels (L, a, b), got shape {tuple(x.shape)}")
    fy = (x[:, 0] + 16) / 116
    f = torch.stack([fy + x[:, 1] / 500, fy, fy - x[:, 2] / 200], dim=1)
    xyz = torch.where(f**3 > _LAB_EPS, f**3, (116 * f - 16) / _LAB_KAPPA)
    xyz = xyz * torch.as_tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return _linear_to_srgb(_mix(xyz, np.linalg.inv(_RGB_TO_XYZ))).clamp(0, 1)
