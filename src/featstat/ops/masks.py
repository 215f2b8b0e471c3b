"""Random inpainting masks (seeded)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .noise import Seed, seed_generator

__all__ = ["random_mask"]


def random_mask(
    size: Sequence[int],
    drop: float,
    *,
    seed: Seed,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A 1×1×H×W inpainting mask: each pixel is missing (0) with probability ``drop``, known (1) otherwise
    (Bernoulli masks, e.g. ``drop = 0.5`` in Deep Image Prior); all channels of a pixel share its value.

    ``size`` = (H, W). ``seed``: int or ``torch.Generator``; H·W uniforms are drawn on the generator's device
    (``pixel missing ⇔ u < drop``) and the mask is moved to ``device`` (default: the generator's device).
    """
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    if not isinstance(drop, (int, float)) or isinstance(drop, bool) or not 0.0 <= drop < 1.0:
        raise ValueError(f"drop must be a fraction in [0, 1) of pixels to remove, got {drop!r}")
    g = seed_generator(seed)
    u = torch.rand((1, 1, int(size[0]), int(size[1])), generator=g, device=g.device)
    return (u >= drop).to(dtype=dtype, device=device if device is not None else g.device)
