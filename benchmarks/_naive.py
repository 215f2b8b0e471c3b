"""Straightforward reference formulations, used only as the baseline in benchmarks.

These are written the way most public implementations write them (full N×M matrices, autograd through
every step), so the benchmarks can report time and memory ratios measured in the same run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contextual_loss_full(x: Tensor, y: Tensor, bandwidth: float = 0.1) -> Tensor:
    """Cosine contextual loss with the whole N×M distance matrix held in memory (batch mean)."""
    mu = y.mean(dim=(0, 2, 3), keepdim=True)
    xn = F.normalize(x - mu, dim=1).flatten(2)  # B×C×N
    yn = F.normalize(y - mu, dim=1).flatten(2)  # B×C×M
    cos = torch.bmm(xn.transpose(1, 2), yn)  # B×N×M
    dist = (1 - cos) / 2
    rel = dist / (dist.min(dim=2, keepdim=True)[0] + 1e-5)
    w = torch.exp((1 - rel) / bandwidth)
    cx = w / w.sum(dim=2, keepdim=True)
    return -torch.log(cx.max(dim=1)[0].mean(dim=1)).mean()


def chamfer_full(x: Tensor, y: Tensor) -> Tensor:
    """Cosine Chamfer distance (1/N) Σ_i min_j d_ij with the whole N×M matrix (batch mean)."""
    mu = y.mean(dim=(0, 2, 3), keepdim=True)
    xn = F.normalize(x - mu, dim=1).flatten(2)
    yn = F.normalize(y - mu, dim=1).flatten(2)
    dist = (1 - torch.bmm(xn.transpose(1, 2), yn)) / 2
    return dist.min(dim=2)[0].mean()


def gram_loss_unbatched(x: Tensor, y: Tensor) -> Tensor:
    """Gram loss with one ``mm`` per sample and layer, as tutorial code writes it (batch mean)."""
    total = 0.0
    for a, b in zip(x, y, strict=True):
        c, h, w = a.shape
        fa, fb = a.reshape(c, h * w), b.reshape(c, h * w)
        ga, gb = fa @ fa.t() / (c * h * w), fb @ fb.t() / (c * h * w)
        total = total + ((ga - gb) ** 2).mean()
    return total / x.shape[0]
