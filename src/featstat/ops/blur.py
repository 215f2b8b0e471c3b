"""Blurs: Gaussian and box filters, convolution with per-image kernels, random camera-shake kernels.

All blurs keep the image size (the border is padded, ``padding`` below) and are linear and differentiable.
Camera-shake kernels are random and take a ``seed`` (int or ``torch.Generator``).

Padding names (:data:`PADDINGS`): "reflect" (mirror without repeating the edge pixel; SciPy's ``mirror``),
"replicate" (SciPy's ``nearest``), "zeros" (``constant``), "circular" (``wrap``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    MAX_KERNEL_SIZE,
    check_choice,
    check_int,
    check_number,
    check_positive,
    check_tensor,
    compute_dtype,
)
from .noise import Seed, seed_generator

__all__ = [
    "PADDINGS",
    "blur",
    "box_blur",
    "camera_shake_kernel",
    "check_padding",
    "gaussian_blur",
    "gaussian_kernel1d",
    "random_motion_kernels",
    "separable_blur",
]

PADDINGS = ("reflect", "replicate", "zeros", "circular")


def gaussian_kernel1d(
    kernel_size: int = 21,
    sigma: float = 3.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """A normalised 1-D Gaussian of ``kernel_size`` taps (odd) and standard deviation ``sigma`` (pixels).

    ``k[i] ∝ exp(−(i − r)² / (2σ²))`` for i = 0..2r, r = kernel_size // 2, summing to 1: the kernel
    ``scipy.ndimage.gaussian_filter`` uses with ``truncate = r / σ``. Computed in float64.
    """
    check_int("kernel_size", kernel_size, low=1, high=MAX_KERNEL_SIZE, odd=True)  # before any allocation
    sigma = check_number("sigma", sigma, low=1e-3, high=1e6)
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)  # (t/σ)², not t²/σ²: no 0/0 or inf/inf for extreme σ
    return (k / k.sum()).to(dtype=dtype, device=device)


def check_padding(x: Tensor, kernel_size: int, padding: str, name: str) -> None:
    """Raise unless ``padding`` is one of :data:`PADDINGS` and, for "reflect", N×C×H×W ``x`` (``name`` in the
    message) is larger than the kernel's radius in H and W."""
    check_choice("padding", padding, PADDINGS)
    r = kernel_size // 2
    if padding == "reflect" and (x.shape[2] <= r or x.shape[3] <= r):
        raise ValueError(
            f"{name} of shape {tuple(x.shape)} is too small for reflect padding of a "
            f"{kernel_size}×{kernel_size} kernel (height and width must exceed {r}); use "
            f"padding='replicate' or a smaller kernel_size"
        )


def separable_blur(images: Tensor, kernel: Tensor, padding: str = "reflect") -> Tensor:
    """Filter each channel of N×C×H×W ``images`` with the odd 1-D ``kernel`` along H, then along W.

    Correlation (the kernel is not flipped; the same for the symmetric kernels used here). Returns the
    compute dtype (float32 for half inputs) on the images' device; the output keeps H×W.
    """
    x = check_tensor("images", images, ndim=4)
    k1 = check_tensor("kernel", kernel, ndim=1)
    if k1.numel() % 2 == 0:
        raise ValueError(f"kernel must have an odd number of taps, got {k1.numel()}")
    check_padding(x, k1.numel(), padding, "images")
    x = x.to(compute_dtype(x))
    n, c, h, w = x.shape
    r = k1.numel() // 2
    y = x.reshape(n * c, 1, h, w)
    if r > 0:
        y = F.pad(y, (r, r, r, r), mode="constant" if padding == "zeros" else padding)
    k = k1.to(dtype=x.dtype, device=x.device)
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return y.reshape(n, c, h, w)


def gaussian_blur(
    images: Tensor, kernel_size: int = 21, sigma: float = 3.0, padding: str = "reflect"
) -> Tensor:
    """Blur each channel of N×C×H×W ``images`` with a ``kernel_size``² Gaussian of std ``sigma`` (pixels).

    Separable (:func:`gaussian_kernel1d`); equals ``scipy.ndimage.gaussian_filter(x, sigma,
    truncate=(kernel_size // 2) / sigma, mode=…)`` per channel. Returns the compute dtype.
    """
    return separable_blur(images, gaussian_kernel1d(kernel_size, sigma, dtype=torch.float64), padding)


def box_blur(images: Tensor, kernel_size: int = 3, padding: str = "reflect") -> Tensor:
    """The mean over a ``kernel_size``×``kernel_size`` window (odd) centred on each pixel, per channel.

    Equals ``scipy.ndimage.uniform_filter(x, kernel_size, mode=…)``. Returns the compute dtype.
    """
    k = check_int("kernel_size", kernel_size, low=1, high=MAX_KERNEL_SIZE, odd=True)
    return separable_blur(images, torch.full((k,), 1.0 / k, dtype=torch.float64), padding)


def blur(images: Tensor, kernels: Tensor, *, padding: str = "reflect") -> Tensor:
    """Convolve each image with a kernel: ``kernels`` k×k (shared) or N×k×k (one per image), k odd.

    This is a true convolution (the kernel is flipped), so a kernel with its mass right of centre shifts the
    image right. ``padding``: "reflect", "replicate" or "circular" (the output keeps the input's size).
    Kernels are used as given (a camera-shake kernel sums to one, preserving brightness). Computed in the
    images' dtype.
    """
    x = check_tensor("images", images, ndim=4)
    k = check_tensor("kernels", kernels, ndim=(2, 3))
    check_choice("padding", padding, ("reflect", "replicate", "circular"))
    if k.dim() == 2:
        k = k.unsqueeze(0).expand(x.shape[0], -1, -1)
    if k.shape[0] != x.shape[0] or k.shape[1] != k.shape[2] or k.shape[1] % 2 == 0:
        raise ValueError(
            f"kernels must be k×k or N×k×k with k odd and N = {x.shape[0]} (the batch size), got shape "
            f"{tuple(kernels.shape)}"
        )
    n, c, h, w = x.shape
    r = k.shape[-1] // 2
    if padding == "reflect" and (h <= r or w <= r):
        raise ValueError(
            f"images of shape {tuple(x.shape)} are too small for reflect padding of a {2 * r + 1}-pixel "
            f"kernel; use padding='replicate' or smaller kernels"
        )
    weight = k.flip(-1, -2).to(device=x.device, dtype=x.dtype)
    weight = weight.unsqueeze(1).repeat_interleave(c, dim=0)  # (N·C)×1×k×k
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode=padding)
    return F.conv2d(y, weight, groups=n * c).reshape(n, c, h, w)


# ------------------------------------------------------------------------------------ camera shake


def _trajectory(rng: np.random.Generator, samples: int, length: float) -> np.ndarray:
    """A random camera-shake trajectory (complex positions, pixels) after Boracchi & Foi 2012.

    A particle moves with constant speed (total path ``length`` pixels over ``samples`` steps); at every step
    its velocity is perturbed by Gaussian jitter, pulled back toward the origin (centripetal term) and, with a
    small probability, reversed by an abrupt shake. The "anxiety", centripetal strength, shake probability and
    jitter are drawn per trajectory (uniform in [0, 0.1], [0, 0.7], [0, 0.2], [0, 10]), as in the authors'
    public MATLAB code, so the kernels range from smooth lines to jerky curves.
    """
    anxiety = 0.1 * rng.uniform()
    centripetal = 0.7 * rng.uniform()
    big_shake = 0.2 * rng.uniform()
    jitter = 10.0 * rng.uniform()
    step = length / (samples - 1)
    v = step * np.exp(1j * 2 * np.pi * rng.uniform())
    shakes = rng.uniform(size=samples) < big_shake * anxiety
    turn = rng.uniform(size=samples) - 0.5
    noise = rng.standard_normal(samples) + 1j * rng.standard_normal(samples)
    x = np.zeros(samples, dtype=np.complex128)
    for t in range(samples - 1):
        nxt = 2 * v * np.exp(1j * (np.pi + turn[t])) if shakes[t] else 0.0
        dv = nxt + anxiety * (jitter * noise[t] - centripetal * x[t]) * step
        v = v + dv
        speed = abs(v)
        v = v / speed * step if speed > 0 else step
        x[t + 1] = x[t] + v
    return x


def camera_shake_kernel(
    size: int = 31,
    *,
    seed: Seed,
    length: float | None = None,
    samples: int = 1000,
) -> Tensor:
    """One random camera-shake blur kernel, ``size``×``size`` (odd), non-negative, summing to one (float64).

    A trajectory (Boracchi & Foi 2012, "Modeling the performance of image restoration from motion blur") of
    total path ``length`` pixels (default: drawn uniformly in [size/4, 2·size], so the blur intensity varies)
    is centred on its mean position — the blurred image is not shifted on average — shrunk if it does not fit
    in the kernel's support, and rasterised with bilinear weights (each of the ``samples`` positions spreads
    unit mass over its four neighbouring pixels), then normalised to sum 1.

    ``seed``: int or ``torch.Generator``; one 62-bit integer is drawn from it to seed a NumPy generator.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3 (kernel side in pixels), got {size!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    g = seed_generator(seed)
    draw = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    rng = np.random.default_rng(draw)
    if length is None:
        length = float(rng.uniform(size / 4, 2 * size))
    check_positive("length", length)
    x = _trajectory(rng, samples, float(length))
    x = x - x.mean()
    half = (size - 1) / 2 - 1e-6
    extent = max(np.abs(x.real).max(), np.abs(x.imag).max())
    if extent > half:
        x = x * (half / extent)
    cols, rows = x.real + (size - 1) / 2, x.imag + (size - 1) / 2
    c0, r0 = np.floor(cols).astype(int), np.floor(rows).astype(int)
    fc, fr = cols - c0, rows - r0
    kernel = np.zeros((size, size))
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        rr, cc = np.clip(r0 + dr, 0, size - 1), np.clip(c0 + dc, 0, size - 1)
        np.add.at(kernel, (rr, cc), w)
    return torch.from_numpy(kernel / kernel.sum())


def random_motion_kernels(n: int, size: int = 31, *, seed: Seed, samples: int = 1000) -> Tensor:
    """``n`` independent :func:`camera_shake_kernel` s from one ``seed``, stacked n×size×size (float64)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = seed_generator(seed)
    return torch.stack([camera_shake_kernel(size, seed=g, samples=samples) for _ in range(n)])
