"""JPEG round trip: encode with Pillow (libjpeg) at a quality, decode, back to [0, 1] floats.

Deterministic (libjpeg's encoder and decoder have no randomness); not differentiable.
"""

from __future__ import annotations

import io as _io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._checks import check_choice, check_tensor

__all__ = ["SUBSAMPLINGS", "jpeg", "quantize_8bit"]

#: Chroma subsampling of colour JPEGs (Pillow's names); "4:2:0" is libjpeg's and Pillow's default.
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")


def quantize_8bit(images: Tensor) -> Tensor:
    """N×C×H×W floats → uint8 on the CPU: clamp to [0, 1], ×255, round half to even (as a PNG write does)."""
    x = check_tensor("images", images, ndim=4)
    return x.detach().to(device="cpu", dtype=torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)


def _check_quality(q: object, high: int) -> int:
    if isinstance(q, (int, np.integer)) and not isinstance(q, bool) and 1 <= int(q) <= high:
        return int(q)
    raise ValueError(f"quality must be an integer in [1, {high}] (libjpeg quality), got {q!r}")


def jpeg(images: Tensor, quality: int | Sequence[int], *, subsampling: str = "4:2:0") -> Tensor:
    """JPEG compression artefacts: encode each image at ``quality`` and decode it.

    Args:
        images: N×C×H×W in [0, 1], C = 1 (grayscale JPEG) or 3 (RGB → YCbCr JPEG).
        quality: libjpeg quality 1–100 for every image, or a sequence of N qualities (one per image).
        subsampling: chroma subsampling "4:4:4", "4:2:2" or "4:2:0" (colour images only).

    The image is first quantised to 8 bits (:func:`quantize_8bit`, as :func:`featstat.io.write_image`
    does), so the result equals writing a .jpg with Pillow and reading it back: N×C×H×W multiples of 1/255,
    dtype and device of ``images``.
    """
    x = check_tensor("images", images, ndim=4)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels for JPEG, got shape {tuple(x.shape)}")
    check_choice("subsampling", subsampling, SUBSAMPLINGS)
    if isinstance(quality, Sequence) and not isinstance(quality, str):
        qualities = [_check_quality(q, 100) for q in quality]
        if len(qualities) != x.shape[0]:
            raise ValueError(
                f"quality must be one integer or one per image ({x.shape[0]}), got {len(qualities)} values"
            )
    else:
        qualities = [_check_quality(quality, 100)] * x.shape[0]
    out = []
    for img, q in zip(quantize_8bit(x), qualities, strict=True):
        a = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        buffer = _io.BytesIO()
        pil.save(buffer, format="JPEG", quality=q, subsampling=subsampling)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            dec = np.asarray(decoded, dtype=np.uint8)
        dec = dec[:, :, None] if dec.ndim == 2 else dec
        out.append(torch.from_numpy(dec.copy()).permute(2, 0, 1))
    return (torch.stack(out).to(torch.float32) / 255.0).to(device=x.device, dtype=x.dtype)
