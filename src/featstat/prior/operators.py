"""Degradation operators for Deep Image Prior: differentiable resampling, noise, JPEG, masks.

Resampling (:func:`resize`, :class:`Downsampler`) is separable: each axis is a matrix ``A`` (out × in) built
in float64 from a kernel stretched by the scale factor when reducing (antialiasing), so
``resize(x) = A_h · x · A_wᵀ`` is linear, exact and differentiable (two small matrix products per image).

Kernels (``t`` in input pixels, reduction by ``s`` evaluates ``k(t / s)`` over ``s × support`` pixels):

- ``"lanczos2"``, ``"lanczos3"``: ``sinc(t)·sinc(t/a)`` for ``|t| < a`` (a = 2, 3);
- ``"bicubic"``: Keys' cubic convolution with a = −0.5 (Pillow's and MATLAB's bicubic), support 2;
- ``"bilinear"``: the triangle ``1 − |t|``, support 1; ``"box"``: 1 on (−½, ½], support ½.

Edges (``edge``): ``"renormalise"`` drops the taps that fall outside the image and rescales the rest to sum 1
(Pillow's ``Image.resize`` — the reference for the tests), ``"replicate"`` repeats the border pixel (the
reference Deep Image Prior ``Downsampler``, ``preserve_size=True``), ``"reflect"`` mirrors without repeating
it. Output pixel ``i`` is centred at input coordinate ``(i + ½)·in/out`` (pixel centres at half-integers),
as in Pillow; for an even reduction factor f the kernel taps fall at half-integer offsets, which is the
reference code's ``phase = 0.5``.

Super-resolution in the paper (eq. 7.5) minimises ``‖d(x) − x₀‖²`` with ``d`` a Lanczos downsampler. The
public code uses Lanczos-2 (``kernel_type="lanczos2"``, 4f × 4f taps, replicate padding): that is
``Downsampler(f)`` here, the default. Its low-resolution test images were made with Pillow's
``ANTIALIAS`` (= Lanczos-3, renormalised edges): ``resize(hr, (H // f, W // f), "lanczos3")``.
"""

from __future__ import annotations

import io as _io
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_positive, check_tensor, compute_dtype, make_generator

__all__ = [
    "EDGES",
    "KERNELS",
    "Downsampler",
    "add_gaussian_noise",
    "jpeg_compress",
    "random_mask",
    "resample_matrix",
    "resize",
]

KERNELS = ("lanczos2", "lanczos3", "bicubic", "bilinear", "box")
EDGES = ("renormalise", "replicate", "reflect")

_SUPPORT = {"lanczos2": 2.0, "lanczos3": 3.0, "bicubic": 2.0, "bilinear": 1.0, "box": 0.5}


def _kernel(name: str, t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    a = np.abs(t)
    if name in ("lanczos2", "lanczos3"):
        support = _SUPPORT[name]
        return np.where(a < support, np.sinc(t) * np.sinc(t / support), 0.0)
    if name == "bicubic":
        c = -0.5
        near = ((c + 2) * a - (c + 3)) * a * a + 1
        far = (((a - 5) * a + 8) * a - 4) * c
        return np.where(a < 1, near, np.where(a < 2, far, 0.0))
    if name == "bilinear":
        return np.where(a < 1, 1.0 - a, 0.0)
    return np.where((t > -0.5) & (t <= 0.5), 1.0, 0.0)  # box, as Pillow: (-1/2, 1/2]


def _check_size(name: str, v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


@lru_cache(maxsize=64)
def _matrix_np(in_size: int, out_size: int, kernel: str, antialias: bool, edge: str) -> np.ndarray:
    scale = in_size / out_size
    filterscale = max(scale, 1.0) if antialias else 1.0
    support = _SUPPORT[kernel] * filterscale
    m = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        centre = (i + 0.5) * scale
        lo = math.floor(centre - support + 0.5)
        hi = math.floor(centre + support + 0.5)
        if edge == "renormalise":
            lo, hi = max(lo, 0), min(hi, in_size)
        taps = np.arange(lo, hi)
        w = _kernel(kernel, (taps - centre + 0.5) / filterscale)
        total = w.sum()
        if total != 0:
            w = w / total
        if edge == "replicate":
            taps = np.clip(taps, 0, in_size - 1)
        elif edge == "reflect":
            if in_size == 1:
                taps = np.zeros_like(taps)
            else:
                period = 2 * (in_size - 1)
                taps = np.mod(taps, period)
                taps = np.where(taps >= in_size, period - taps, taps)
        np.add.at(m[i], taps, w)
    return m


@lru_cache(maxsize=64)
def _matrix_cached(
    in_size: int, out_size: int, kernel: str, antialias: bool, edge: str, device: str, dtype: torch.dtype
) -> Tensor:
    """The matrix on ``device``, built once per (sizes, kernel, device, dtype): no host-to-device copy per
    step. Internal: callers must not modify it."""
    return torch.from_numpy(_matrix_np(in_size, out_size, kernel, antialias, edge)).to(
        device=device, dtype=dtype
    )


def _matrix(
    n_in: int, n_out: int, kernel: str, antialias: bool, edge: str, device: torch.device, dtype: torch.dtype
) -> Tensor:
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    return _matrix_cached(n_in, n_out, kernel, bool(antialias), edge, str(device), dtype)


def resample_matrix(
    in_size: int,
    out_size: int,
    kernel: str = "bicubic",
    *,
    antialias: bool = True,
    edge: str = "renormalise",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The out_size × in_size matrix that resamples one axis (rows sum to 1).

    ``antialias`` stretches the kernel by the reduction factor when ``out_size < in_size`` (as Pillow and
    ``F.interpolate(..., antialias=True)`` do); without it the kernel is sampled at input resolution.
    """
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    m = _matrix_np(
        _check_size("in_size", in_size), _check_size("out_size", out_size), kernel, bool(antialias), edge
    )
    return torch.from_numpy(m).to(device=device, dtype=dtype)


def resize(
    image: Tensor,
    size: Sequence[int],
    kernel: str = "bicubic",
    *,
    antialias: bool = True,
    edge: str = "renormalise",
) -> Tensor:
    """Resize N×C×H×W maps to ``size`` = (H', W') with a separable kernel; differentiable.

    Args:
        image: N×C×H×W floating tensor (any values; images in [0, 1] stay close to it, kernels with negative
            lobes may overshoot slightly — clamp for display).
        size: (H', W'), positive integers.
        kernel: "lanczos2", "lanczos3", "bicubic" (a = −0.5), "bilinear" or "box".
        antialias: widen the kernel by the reduction factor when shrinking (default; Pillow's behaviour).
        edge: "renormalise" (Pillow), "replicate" (reference DIP downsampler) or "reflect".

    Returns N×C×H'×W' in the input's dtype, computed in float32 (float64 for float64 inputs), outside any
    autocast region. ``resize(x, (h, w), "lanczos3")`` equals Pillow's ``Image.resize((w, h), LANCZOS)`` on
    float images; ``"bicubic"`` equals ``BICUBIC``.
    """
    x = check_tensor("image", image, ndim=4)
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    h_out, w_out = int(size[0]), int(size[1])
    h_in, w_in = x.shape[-2:]
    dtype = compute_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        y = x.to(dtype)
        if h_out != h_in:
            y = torch.matmul(_matrix(h_in, h_out, kernel, antialias, edge, x.device, dtype), y)
        if w_out != w_in:
            y = torch.matmul(y, _matrix(w_in, w_out, kernel, antialias, edge, x.device, dtype).T)
    return y.to(x.dtype)


class Downsampler(nn.Module):
    """The super-resolution degradation ``d``: reduce N×C×H×W by an integer ``factor`` (H, W divisible by it).

    Default: the public Deep Image Prior code's operator — Lanczos-2 with replicate padding
    (``Downsampler(n_planes=3, factor, kernel_type="lanczos2", phase=0.5, preserve_size=True)``). Use
    ``kernel="lanczos3", edge="renormalise"`` for Pillow's ``ANTIALIAS`` resize, ``kernel="bicubic"`` for
    a bicubic degradation (MATLAB ``imresize``-style data such as Set5's LR images).
    """

    def __init__(self, factor: int, kernel: str = "lanczos2", *, edge: str = "replicate") -> None:
        super().__init__()
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise ValueError(f"factor must be a positive integer (2, 4, 8, ...), got {factor!r}")
        self.factor = factor
        self.kernel = check_choice("kernel", kernel, KERNELS)
        self.edge = check_choice("edge", edge, EDGES)

    def forward(self, image: Tensor) -> Tensor:
        x = check_tensor("image", image, ndim=4)
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(
                f"image is {h}×{w} pixels, not divisible by the factor {self.factor}; crop it to "
                f"{h - h % self.factor}×{w - w % self.factor} first"
            )
        return resize(x, (h // self.factor, w // self.factor), self.kernel, edge=self.edge)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, kernel={self.kernel!r}, edge={self.edge!r}"


# ------------------------------------------------------------------------------------- other degradations


def add_gaussian_noise(
    image: Tensor, sigma: float, *, seed: int | torch.Generator | None = 0, clip: bool = True
) -> Tensor:
    """``image + N(0, sigma²)`` per value, clipped to [0, 1] by default (the paper's σ = 25 is 25/255).

    The reference code clips the noisy image (``np.clip(x + noise, 0, 1)``); so does this by default.
    """
    x = check_tensor("image", image, ndim=4)
    check_positive("sigma", sigma, allow_zero=True)
    g = make_generator(seed, x.device) if seed is not None else None
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=torch.float32)
    y = x.float() + sigma * noise
    return (y.clamp(0, 1) if clip else y).to(x.dtype)


def jpeg_compress(image: Tensor, quality: int = 10) -> Tensor:
    """Encode each image as a JPEG of ``quality`` (1–95, Pillow) in memory and decode it: the blocking and
    ringing artefacts of a heavily compressed photo. Input and output N×C×H×W in [0, 1], C = 1 or 3."""
    x = check_tensor("image", image, ndim=4)
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer from 1 to 95, got {quality!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels for JPEG, got shape {tuple(x.shape)}")
    from PIL import Image

    out = []
    for img in x.detach().float().clamp(0, 1).cpu():
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        buffer = _io.BytesIO()
        pil.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            dec = np.asarray(decoded.convert("L" if arr.shape[2] == 1 else "RGB"), dtype=np.float32) / 255.0
        dec = dec[:, :, None] if dec.ndim == 2 else dec
        out.append(torch.from_numpy(np.ascontiguousarray(dec.transpose(2, 0, 1))))
    return torch.stack(out).to(device=x.device, dtype=x.dtype)


def random_mask(
    size: Sequence[int],
    drop: float,
    *,
    seed: int | torch.Generator | None = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A 1×1×H×W inpainting mask: each pixel is missing (0) with probability ``drop``, known (1) otherwise
    (the paper's Bernoulli masks, e.g. ``drop = 0.5``); all channels of a pixel share its value."""
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    if not isinstance(drop, (int, float)) or not 0.0 <= drop < 1.0:
        raise ValueError(f"drop must be a fraction in [0, 1) of pixels to remove, got {drop!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = make_generator(seed, dev) if seed is not None else None
    u = torch.rand((1, 1, int(size[0]), int(size[1])), generator=g, device=dev)
    return (u >= drop).to(dtype)
