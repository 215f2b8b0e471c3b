"""Seeded sampling of feature positions (the contextual-loss papers' 65×65 random sampling).

Positions are flat indices ``row·W + col`` into an h×w map. Sampling happens on the CPU from a
``torch.Generator`` (or an int seed), so the same seed gives the same positions on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_tensor, legacy_arguments, make_generator


@legacy_arguments(renamed={"generator": "seed"})
def sample_positions(h: int, w: int, count: int, seed: int | torch.Generator | None = None) -> Tensor:
    """``count`` flat positions (int64, shape ``count``) in an h×w map.

    Without replacement when ``count ≤ h·w`` (distinct positions), with replacement otherwise.
    ``seed``: an int (None: 0) or a ``torch.Generator`` (advanced by the call); 0.1 name ``generator=``.
    """
    for arg, value in (("h", h), ("w", w), ("count", count)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    g = make_generator(seed)
    total = h * w
    if count <= total:
        return torch.randperm(total, generator=g)[:count]
    return torch.randint(total, (count,), generator=g)


def gather_positions(features: Tensor, index: Tensor) -> Tensor:
    """Features at flat positions: N×C×H×W and ``index`` (K) → N×C×K×1 (still a feature map)."""
    x = check_tensor("features", features, ndim=4, floating=False)
    if index.dim() != 1 or index.dtype != torch.long:
        raise ValueError(
            f"index must be a 1-D int64 tensor of flat positions, got {index.dtype} {tuple(index.shape)}"
        )
    return x.flatten(2)[:, :, index.to(x.device)].unsqueeze(-1)


def sample_features(
    pred: Tensor, target: Tensor, size: int = 65, seed: int | torch.Generator | None = 0
) -> tuple[Tensor, Tensor]:
    """Sample ``size``² positions of two feature maps (N×C×H×W each), as the contextual-loss papers do.

    Equal spatial sizes: the SAME positions in both (so pred and target features stay paired). Different
    sizes: independent positions (pred's drawn first). A map with at most ``size``² positions is returned
    whole (all positions, in order). Returns maps of shape N×C×K×1, K = min(size², h·w).
    """
    check_tensor("pred", pred, ndim=4, floating=False)
    check_tensor("target", target, ndim=4, floating=False)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    g = make_generator(seed)
    count = size * size

    def take(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h * w <= count:
            return x.flatten(2).unsqueeze(-1)
        return gather_positions(x, sample_positions(h, w, count, g))

    if pred.shape[-2:] == target.shape[-2:]:
        h, w = pred.shape[-2:]
        if h * w <= count:
            return pred.flatten(2).unsqueeze(-1), target.flatten(2).unsqueeze(-1)
        index = sample_positions(h, w, count, g)
        return gather_positions(pred, index), gather_positions(target, index)
    return take(pred), take(target)
