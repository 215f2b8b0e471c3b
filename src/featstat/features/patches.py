"""Raw-patch features: every k×k patch of the input (RGB pixels or normal maps) as one feature vector.

This is the feature the contextual-loss papers use on raw data, e.g. for surface normals "CX on 5×5
patches with stride 2": each patch is flattened channel-major (c, dy, dx), the same order as ``F.unfold``,
and the result keeps the feature-map form N×(C·k·k)×H'×W' so it plugs into any loss that takes extractor
features.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_tensor


class PatchExtractor(nn.Module):
    """k×k patches with stride s, no padding.

    Input N×C×H×W (any C, floating); output ``{name: N×(C·k·k)×H'×W'}`` with H' = (H − k) // s + 1 (same for
    W'); channel ``c·k² + dy·k + dx`` holds ``x[:, c, i·s + dy, j·s + dx]`` at position (i, j). No
    normalisation or preprocessing: values keep the input's range.

    Args:
        size: patch side k (default 5).
        stride: step s between patches (default 2).
        name: key of the output dict (default ``f"patch{size}"``).
    """

    def __init__(self, size: int = 5, stride: int = 2, name: str | None = None) -> None:
        super().__init__()
        for arg, value in (("size", size), ("stride", stride)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.size, self.stride = size, stride
        self.name = name if name is not None else f"patch{size}"
        self.layers = [self.name]
        self.min_size = size

    @property
    def cache_key(self) -> tuple:
        """Hashable identity (the same role as :attr:`FeatureExtractor.cache_key`)."""
        return ("patch", self.size, self.stride, self.name)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = check_tensor("images", images, ndim=4)
        n, c, h, w = x.shape
        if h < self.size or w < self.size:
            k = self.size
            raise ValueError(f"images must be at least {k}×{k} pixels (the patch size), got {tuple(x.shape)}")
        rows, cols = (h - self.size) // self.stride + 1, (w - self.size) // self.stride + 1
        patches = F.unfold(x, self.size, stride=self.stride)  # N×(C·k·k)×(H'·W')
        return {self.name: patches.view(n, c * self.size * self.size, rows, cols)}

    def extra_repr(self) -> str:
        return f"size={self.size}, stride={self.stride}, name={self.name!r}"
