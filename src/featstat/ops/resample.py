"""Resampling: separable, linear, differentiable resizing of N×C×H×W maps.

Two families of operators, each one matrix per axis (out × in, float64 when built, rows summing to one) so
``resize(x) = A_h · x · A_wᵀ``:

- **Pillow-style kernels** (:func:`resize`, :func:`resample_matrix`, :class:`Downsampler`), ``kernel`` one of
  :data:`KERNELS` (``t`` in input pixels; a reduction by ``s`` evaluates ``k(t / s)`` over ``s × support``
  pixels when ``antialias``):

  - ``"lanczos2"``, ``"lanczos3"``: ``sinc(t)·sinc(t/a)`` for ``|t| < a`` (a = 2, 3);
  - ``"bicubic"``: Keys' cubic convolution with a = −0.5 (Pillow's and MATLAB's bicubic), support 2;
  - ``"bilinear"``: the triangle ``1 − |t|``, support 1; ``"box"``: 1 on (−½, ½], support ½.

  Edges (``edge``, :data:`EDGES`): ``"renormalise"`` drops the taps outside the image and rescales the rest
  to sum 1 (Pillow's ``Image.resize``), ``"replicate"`` repeats the border pixel (the reference Deep Image
  Prior ``Downsampler``, ``preserve_size=True``), ``"reflect"`` mirrors without repeating it. Output pixel
  ``i`` is centred at input coordinate ``(i + ½)·in/out`` (pixel centres at half-integers), as in Pillow;
  for an even reduction factor f the taps fall at half-integer offsets: the reference code's ``phase = ½``.

- **MATLAB ``imresize`` bicubic** (:func:`imresize`, :func:`imresize_matrix`): the same cubic (a = −0.5) and
  the same pixel centres, but the kernel is stretched by the *requested* scale (not the ratio of the rounded
  sizes), the output size is ``ceil(scale · in)``, and borders are mirrored *with* the edge pixel repeated
  (MATLAB's ``symmetric`` padding). This is how the low-resolution images of the SR benchmarks (Set5, Set14,
  DIV2K) were made. ``resize_bicubic(method="torch")`` uses ``F.interpolate(mode="bicubic",
  antialias=True)`` instead (Pillow's algorithm with PyTorch's kernel code; equal away from the borders).

Units: none (the operators are linear; images in [0, 1] stay near [0, 1], kernels with negative lobes may
overshoot slightly: clamp for display). No randomness.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_positive, check_tensor, compute_dtype

__all__ = [
    "EDGES",
    "KERNELS",
    "RESIZE_METHODS",
    "SR_SCALES",
    "Downsampler",
    "bicubic_downsample",
    "cubic",
    "imresize",
    "imresize_matrix",
    "resample_matrix",
    "resize",
    "resize_bicubic",
]

#: Kernels of :func:`resize` (Pillow-style resampling).
KERNELS = ("lanczos2", "lanczos3", "bicubic", "bilinear", "box")
#: Edge modes of :func:`resize`.
EDGES = ("renormalise", "replicate", "reflect")
#: ``method`` of :func:`resize_bicubic`: MATLAB ``imresize`` or ``F.interpolate`` (Pillow's algorithm).
RESIZE_METHODS = ("matlab", "torch")
#: Integer factors of :func:`bicubic_downsample` (the SR benchmarks' ×2, ×3, ×4, ×8).
SR_SCALES = (2, 3, 4, 8)

_SUPPORT = {"lanczos2": 2.0, "lanczos3": 3.0, "bicubic": 2.0, "bilinear": 1.0, "box": 0.5}


def check_size(name: str, value: object) -> int:
    """Raise unless ``value`` is a positive int (not a bool): a size in pixels."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel at offsets ``t`` (pixels) with parameter ``a`` (−0.5: MATLAB, Pillow).

    ``k(t) = (a+2)|t|³ − (a+3)|t|² + 1`` for ``|t| ≤ 1``, ``a|t|³ − 5a|t|² + 8a|t| − 4a`` for ``1 < |t| ≤ 2``,
    0 beyond (Keys 1981, eq. 15). float64.
    """
    ax = np.abs(np.asarray(t, dtype=np.float64))
    ax2, ax3 = ax**2, ax**3
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def _kernel(name: str, t: np.ndarray) -> np.ndarray:
    """The Pillow-style kernel ``name`` at offsets ``t`` (float64)."""
    t = np.asarray(t, dtype=np.float64)
    a = np.abs(t)
    if name in ("lanczos2", "lanczos3"):
        support = _SUPPORT[name]
        return np.where(a < support, np.sinc(t) * np.sinc(t / support), 0.0)
    if name == "bicubic":
        # the kernel of cubic(t) in Horner's form (Pillow's evaluation order): float64 results of the
        # DIP operators stay bit-identical to earlier releases (the two orders differ by ~1e-16)
        c = -0.5
        near = ((c + 2) * a - (c + 3)) * a * a + 1
        far = (((a - 5) * a + 8) * a - 4) * c
        return np.where(a < 1, near, np.where(a < 2, far, 0.0))
    if name == "bilinear":
        return np.where(a < 1, 1.0 - a, 0.0)
    return np.where((t > -0.5) & (t <= 0.5), 1.0, 0.0)  # box, as Pillow: (-1/2, 1/2]


# ---------------------------------------------------------------------------------------- Pillow-style


@functools.lru_cache(maxsize=64)
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


@functools.lru_cache(maxsize=64)
def _matrix_cached(
    in_size: int, out_size: int, kernel: str, antialias: bool, edge: str, device: str, dtype: torch.dtype
) -> Tensor:
    """The matrix on ``device``, built once per (sizes, kernel, device, dtype): no host-to-device copy per
    step. Internal: callers must not modify it."""
    return torch.from_numpy(_matrix_np(in_size, out_size, kernel, antialias, edge)).to(
        device=device, dtype=dtype
    )


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
    """The out_size × in_size matrix that resamples one axis with a Pillow-style kernel (rows sum to 1).

    ``antialias`` stretches the kernel by the reduction factor when ``out_size < in_size`` (as Pillow and
    ``F.interpolate(..., antialias=True)`` do); without it the kernel is sampled at input resolution.
    """
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    m = _matrix_np(
        check_size("in_size", in_size), check_size("out_size", out_size), kernel, bool(antialias), edge
    )
    return torch.from_numpy(m.copy()).to(device=device, dtype=dtype)  # a copy: the cached array stays intact


def _check_hw(size: object) -> tuple[int, int]:
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def resize(
    image: Tensor,
    size: Sequence[int],
    kernel: str = "bicubic",
    *,
    antialias: bool = True,
    edge: str = "renormalise",
) -> Tensor:
    """Resize N×C×H×W maps to ``size`` = (H', W') with a separable Pillow-style kernel; differentiable.

    Args:
        image: N×C×H×W floating tensor (any values; images in [0, 1] stay close to it, kernels with negative
            lobes may overshoot slightly — clamp for display).
        size: (H', W'), positive integers.
        kernel: "lanczos2", "lanczos3", "bicubic" (a = −0.5), "bilinear" or "box".
        antialias: widen the kernel by the reduction factor when shrinking (default; Pillow's behaviour).
        edge: "renormalise" (Pillow), "replicate" (reference DIP downsampler) or "reflect".

    Returns N×C×H'×W' in the input's dtype, computed in float32 (float64 for float64 inputs), outside any
    autocast region. ``resize(x, (h, w), "lanczos3")`` equals Pillow's ``Image.resize((w, h), LANCZOS)`` on
    float images; ``"bicubic"`` equals ``BICUBIC``, ``"box"`` ``BOX``.
    """
    x = check_tensor("image", image, ndim=4)
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    h_out, w_out = _check_hw(size)
    h_in, w_in = x.shape[-2:]
    dtype = compute_dtype(x)
    aa = bool(antialias)
    with torch.autocast(x.device.type, enabled=False):
        y = x.to(dtype)
        if h_out != h_in:
            y = torch.matmul(_matrix_cached(h_in, h_out, kernel, aa, edge, str(x.device), dtype), y)
        if w_out != w_in:
            y = torch.matmul(y, _matrix_cached(w_in, w_out, kernel, aa, edge, str(x.device), dtype).T)
    return y.to(x.dtype)


class Downsampler(nn.Module):
    """Reduce N×C×H×W by an integer ``factor`` (H, W divisible by it) with a Pillow-style kernel.

    Default: the public Deep Image Prior code's super-resolution operator — Lanczos-2 with replicate padding
    (``Downsampler(n_planes=3, factor, kernel_type="lanczos2", phase=0.5, preserve_size=True)``). Use
    ``kernel="lanczos3", edge="renormalise"`` for Pillow's ``ANTIALIAS`` resize, ``kernel="bicubic"`` for a
    bicubic degradation. No parameters or buffers (the matrices are cached per size, device and dtype).
    """

    def __init__(self, factor: int, kernel: str = "lanczos2", *, edge: str = "replicate") -> None:
        super().__init__()
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise ValueError(f"factor must be a positive integer (2, 4, 8, ...), got {factor!r}")
        self.factor = factor
        self.kernel = check_choice("kernel", kernel, KERNELS)
        self.edge = check_choice("edge", edge, EDGES)

    def forward(self, image: Tensor) -> Tensor:
        """N×C×H×W → N×C×(H/factor)×(W/factor)."""
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


# ------------------------------------------------------------------------------------- MATLAB imresize


@functools.lru_cache(maxsize=64)
def _imresize_np(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """A transcription of imresize's ``contributions``: output pixel x (1-based) maps to
    ``u = x/scale + 0.5·(1 − 1/scale)``; when shrinking (scale < 1) the kernel is stretched to
    ``scale·cubic(scale·t)`` with width 4/scale (antialiasing); weights are normalised to sum 1 and indices
    outside the image are mirrored (``symmetric`` padding)."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    t = u[:, None] - idx
    w = scale * cubic(scale * t) if scale < 1 else cubic(t)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return matrix


def imresize_matrix(in_len: int, out_len: int, scale: float | None = None) -> Tensor:
    """The out_len × in_len matrix (float64, CPU) of MATLAB ``imresize(…, 'bicubic')`` along one axis.

    ``scale`` sets the kernel (stretched by 1/scale when shrinking); default ``out_len / in_len``.
    """
    check_size("in_len", in_len)
    check_size("out_len", out_len)
    s = out_len / in_len if scale is None else check_positive("scale", scale)
    return torch.from_numpy(_imresize_np(in_len, out_len, float(s)).copy())


def imresize(images: Tensor, size: tuple[int, int] | None = None, *, scale: float | None = None) -> Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` (antialiased when shrinking); differentiable.

    ``images`` N×C×H×W (any values; not clamped). Give ``scale`` (output ``ceil(scale · H)`` ×
    ``ceil(scale · W)``, kernel set by ``scale``) or ``size`` = (H', W') (kernel set by the ratio per axis).
    Computed in float32 (float64 for float64 inputs); returns the input's dtype.
    """
    return resize_bicubic(images, size, scale=scale, method="matlab")


def resize_bicubic(
    images: Tensor,
    size: tuple[int, int] | None = None,
    *,
    scale: float | None = None,
    method: str = "matlab",
) -> Tensor:
    """Bicubic resize with antialiasing when shrinking; differentiable.

    Args:
        images: N×C×H×W (any values; not clamped, so results may overshoot [0, 1] slightly at edges).
        size: output (height, width); or give ``scale`` (output = ceil(scale · input), MATLAB's rule).
        method: "matlab" (default; exactly MATLAB's ``imresize(x, scale, 'bicubic')`` up to floating point,
            via separable interpolation matrices) or "torch" (``F.interpolate(…, mode="bicubic",
            antialias=True)``: Pillow's algorithm; identical away from the borders).

    With "matlab" and a ``scale`` the kernel is set by ``scale`` (as imresize does), with ``size`` by the
    ratio of the sizes (per axis).
    """
    x = check_tensor("images", images, ndim=4)
    check_choice("method", method, RESIZE_METHODS)
    h, w = x.shape[-2:]
    if (size is None) == (scale is None):
        raise ValueError("give exactly one of size=(height, width) and scale=")
    if scale is not None:
        check_positive("scale", scale)
        out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
        sh = sw = float(scale)
    else:
        if not isinstance(size, Sequence) or len(size) != 2:
            raise ValueError(f"size must be a (height, width) pair, got {size!r}")
        out_h, out_w = check_size("size[0]", size[0]), check_size("size[1]", size[1])
        sh, sw = out_h / h, out_w / w
    if method == "torch":
        return F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False, antialias=True)
    dtype = x.dtype if x.dtype == torch.float64 else torch.float32
    mh = torch.from_numpy(_imresize_np(h, out_h, sh)).to(device=x.device, dtype=dtype)
    mw = torch.from_numpy(_imresize_np(w, out_w, sw)).to(device=x.device, dtype=dtype)
    y = torch.matmul(mh, torch.matmul(x.to(dtype), mw.t()))
    return y.to(x.dtype)


def bicubic_downsample(images: Tensor, scale: int, *, method: str = "matlab") -> Tensor:
    """Downsample by an integer factor (2, 3, 4 or 8) with antialiased bicubic interpolation.

    ``images`` N×C×H×W with H and W multiples of ``scale`` (crop first: SR datasets "mod-crop" their
    ground truth); returns N×C×(H/scale)×(W/scale). ``method``: see :func:`resize_bicubic` (default MATLAB's
    imresize, the convention of SR benchmarks).
    """
    x = check_tensor("images", images, ndim=4)
    if scale not in SR_SCALES:
        raise ValueError(f"scale must be one of {SR_SCALES}, got {scale!r}")
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"images of size {h}×{w} are not multiples of scale {scale}; crop them first, e.g. "
            f"x[..., :{h - h % scale}, :{w - w % scale}]"
        )
    return resize_bicubic(x, scale=1.0 / scale, method=method)
