"""Bayer colour-filter-array sampling (mosaic) and bilinear demosaicking.

``pattern`` (:data:`BAYER_PATTERNS`) names the colours of the top-left 2×2 block row by row: "RGGB" has R at
(0, 0), G at (0, 1) and (1, 0), B at (1, 1), repeated over the image. No randomness (sensor noise is
:func:`featstat.ops.gaussian_noise` on the mosaic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_tensor
from .resample import check_size

__all__ = ["BAYER_PATTERNS", "bayer_mask", "bayer_mosaic", "demosaic_bilinear"]

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


def bayer_mask(
    height: int,
    width: int,
    pattern: str = "RGGB",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The 1×3×H×W sampling mask of a Bayer colour filter array: 1 where the sensor records that colour."""
    check_choice("pattern", pattern, BAYER_PATTERNS)
    check_size("height", height)
    check_size("width", width)
    mask = torch.zeros(1, 3, height, width, dtype=dtype, device=device)
    channel = {"R": 0, "G": 1, "B": 2}
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mask[0, channel[colour], dy::2, dx::2] = 1
    return mask


def bayer_mosaic(images: Tensor, pattern: str = "RGGB") -> Tensor:
    """Raw sensor values of a Bayer camera: N×3×H×W RGB → N×1×H×W, ``raw[y, x] = rgb[c(y, x), y, x]``."""
    x = check_tensor("images", images, ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"images must be RGB (N×3×H×W) to mosaic, got shape {tuple(x.shape)}")
    mask = bayer_mask(x.shape[2], x.shape[3], pattern, device=x.device, dtype=x.dtype)
    return (x * mask).sum(dim=1, keepdim=True)


def demosaic_bilinear(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Bilinear demosaicking: N×1×H×W mosaic → N×3×H×W RGB.

    Each colour plane keeps its recorded samples and fills the others with the mean of the nearest recorded
    neighbours (green: the 4-neighbourhood; red/blue: 2 or 4 neighbours), i.e. the convolution of the masked
    plane with [[0,1,0],[1,4,1],[0,1,0]]/4 (green) and [[1,2,1],[2,4,2],[1,2,1]]/4 (red, blue), with mirrored
    borders. Exact on images linear in x and y (away from the border row and column).
    """
    r = check_tensor("raw", raw, ndim=4, channels=1)
    h, w = r.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"raw must be at least 2×2 pixels, got shape {tuple(r.shape)}")
    mask = bayer_mask(h, w, pattern, device=r.device, dtype=r.dtype)
    planes = r * mask  # N×3×H×W, zeros where not recorded
    k_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=r.dtype, device=r.device) / 4
    k_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=r.dtype, device=r.device) / 4
    weight = torch.stack([k_rb, k_g, k_rb]).unsqueeze(1)  # 3×1×3×3
    padded = F.pad(planes, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, weight, groups=3)
