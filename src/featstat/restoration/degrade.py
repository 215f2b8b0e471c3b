"""Seeded image degradations on tensors: the forward models of the restoration tasks.

Every function takes images N×C×H×W (float, values in [0, 1]) and returns a tensor on the same device with
the same dtype. Randomness (noise, blur kernels, JPEG qualities drawn from a range) comes from a
``torch.Generator`` or an int seed (``generator=``); the same seed gives the same result on every device,
because random numbers are drawn on the generator's device (CPU by default) and then moved.

- :func:`gaussian_noise`: additive white Gaussian noise. ``sigma`` is given in 8-bit levels by default
  (``units=255``: σ = 25 means 25/255 on [0, 1] images, the convention of denoising papers); pass
  ``units=1`` for [0, 1] units. ``sigma=(lo, hi)`` draws one σ per image uniformly (blind denoising).
- :func:`camera_shake_kernel`, :func:`motion_blur`: camera-shake blur from random 2-D trajectories
  (Boracchi & Foi 2012, "Modeling the performance of image restoration from motion blur", the model the
  PDL paper's deblurring experiment follows) plus Gaussian noise of a random level.
- :func:`jpeg`: a real JPEG round trip through Pillow's libjpeg at quality q (8-bit quantisation first).
- :func:`resize_bicubic`, :func:`bicubic_downsample`: bicubic resizing with antialiasing. The default
  ``method="matlab"`` reproduces MATLAB's ``imresize`` (cubic a = −0.5, kernel widened by the scale when
  shrinking, symmetric borders), which made the LR images of every SR benchmark (Set5, Set14, DIV2K);
  ``method="torch"`` uses ``F.interpolate(mode="bicubic", antialias=True)`` (Pillow's algorithm: the same
  kernel, borders handled by renormalising the weights).
- :func:`bayer_mosaic`, :func:`demosaic_bilinear`: colour-filter-array sampling (RGGB by default) plus
  noise, and the classic bilinear demosaicking used as the network input of the demosaicking task.

:func:`make_degradation` builds the degradation of a named task (``sr2``, ``sr4``, ``sr8``, ``denoise``,
``deblur``, ``jpeg``, ``demosaic``, ``normals``) used by :mod:`featstat.restoration.data`.
"""

from __future__ import annotations

import functools
import io as _io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .._checks import check_choice, check_positive, check_tensor, make_generator

__all__ = [
    "BAYER_PATTERNS",
    "RESIZE_METHODS",
    "TASKS",
    "Degradation",
    "bayer_mask",
    "bayer_mosaic",
    "bicubic_downsample",
    "blur",
    "camera_shake_kernel",
    "demosaic_bilinear",
    "gaussian_noise",
    "jpeg",
    "make_degradation",
    "motion_blur",
    "random_motion_kernels",
    "resize_bicubic",
]

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
RESIZE_METHODS = ("matlab", "torch")
SR_SCALES = (2, 3, 4, 8)
Generatorish = int | torch.Generator | None
Sigma = float | tuple[float, float] | Sequence[float]


# ------------------------------------------------------------------------------------------------ helpers


def _check_images(name: str, x: object) -> Tensor:
    """Cheap checks: a float N×C×H×W tensor (values are not read, so no device sync)."""
    return check_tensor(name, x, ndim=4)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> Tensor:
    """n values uniform in [lo, hi] (float64, on CPU), drawn from ``g``."""
    u = torch.rand(n, generator=g, dtype=torch.float64, device=g.device).cpu()
    return lo + (hi - lo) * u


def _sigma_range(name: str, sigma: Sigma) -> tuple[float, float]:
    """(lo, hi) from a number or a pair; both ≥ 0 and lo ≤ hi."""
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        check_positive(name, float(sigma), allow_zero=True)
        return float(sigma), float(sigma)
    if isinstance(sigma, Sequence) and not isinstance(sigma, str) and len(sigma) == 2:
        lo, hi = (check_positive(name, float(v), allow_zero=True) for v in sigma)
        if lo > hi:
            raise ValueError(f"{name} range must be (low, high) with low <= high, got {tuple(sigma)}")
        return lo, hi
    raise ValueError(f"{name} must be a number >= 0 or a (low, high) pair, got {sigma!r}")


def _per_image(lo: float, hi: float, n: int, g: torch.Generator) -> Tensor:
    return torch.full((n,), lo, dtype=torch.float64) if lo == hi else _uniform(n, lo, hi, g)


def _check_units(units: float) -> float:
    return check_positive("units", units)


# -------------------------------------------------------------------------------------------------- noise


def gaussian_noise(
    images: Tensor,
    sigma: Sigma,
    *,
    units: float = 255.0,
    clip: bool = False,
    generator: Generatorish = None,
) -> Tensor:
    """Add white Gaussian noise: ``y = x + (σ / units) · n``, n ~ N(0, 1) i.i.d. per pixel and channel.

    Args:
        images: N×C×H×W, values in [0, 1].
        sigma: standard deviation in ``units`` (default 8-bit levels: 25 → 25/255), or a pair (lo, hi) to
            draw one σ per image uniformly.
        units: the value of white in the units of ``sigma`` (255 for 8-bit levels, 1 for [0, 1]).
        clip: clamp the result to [0, 1] (what saving the noisy image to a file would do; the Deep Image
            Prior reference code clips). Without clipping the noise is exactly Gaussian.
        generator: seed or ``torch.Generator`` (default seed 0).

    Returns N×C×H×W with the dtype and device of ``images``.
    """
    x = _check_images("images", images)
    lo, hi = _sigma_range("sigma", sigma)
    scale = _check_units(units)
    g = make_generator(generator)
    sig = _per_image(lo, hi, x.shape[0], g) / scale
    noise = torch.randn(x.shape, generator=g, dtype=torch.float32, device=g.device)
    noise = noise.to(device=x.device, dtype=x.dtype) * sig.to(device=x.device, dtype=x.dtype).view(
        -1, 1, 1, 1
    )
    y = x + noise
    return y.clamp(0, 1) if clip else y


# ------------------------------------------------------------------------------------------------ motion blur


def _trajectory(
    rng: np.random.Generator, samples: int, length: float
) -> np.ndarray:  # pragma: no branch - a loop
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
    length: float | None = None,
    samples: int = 1000,
    generator: Generatorish = None,
) -> Tensor:
    """One random camera-shake blur kernel, ``size``×``size`` (odd), non-negative, summing to one (float64).

    A trajectory (:func:`_trajectory`, Boracchi & Foi 2012) of total path ``length`` pixels (default: drawn
    uniformly in [size/4, 2·size], so the blur intensity varies) is centred on its mean position — the
    blurred image is not shifted on average — shrunk if it does not fit in the kernel's support, and
    rasterised with bilinear weights (each of the ``samples`` positions spreads unit mass over its four
    neighbouring pixels), then normalised to sum 1.

    ``generator``: seed or ``torch.Generator``; a NumPy generator is seeded from it (one 63-bit draw).
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3 (kernel side in pixels), got {size!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    g = make_generator(generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    rng = np.random.default_rng(seed)
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


def random_motion_kernels(
    n: int, size: int = 31, *, generator: Generatorish = None, samples: int = 1000
) -> Tensor:
    """``n`` independent :func:`camera_shake_kernel` s, stacked n×size×size (float64)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = make_generator(generator)
    return torch.stack([camera_shake_kernel(size, generator=g, samples=samples) for _ in range(n)])


def blur(images: Tensor, kernels: Tensor, *, padding: str = "reflect") -> Tensor:
    """Convolve each image with a kernel: ``kernels`` k×k (shared) or N×k×k (one per image), k odd.

    This is a true convolution (the kernel is flipped), so a kernel with its mass right of centre shifts the
    image right. ``padding``: "reflect", "replicate" or "circular" (the output keeps the input's size).
    Kernels are used as given (the blur of :func:`camera_shake_kernel` sums to one, preserving brightness).
    """
    x = _check_images("images", images)
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


def motion_blur(
    images: Tensor,
    *,
    kernel_size: int = 21,
    noise_sigma: Sigma = (0.0, 2.55),
    units: float = 255.0,
    clip: bool = True,
    generator: Generatorish = None,
    return_kernels: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Camera-shake blur plus noise: ``y = k_i ∗ x_i + σ_i · n`` with a random kernel per image.

    Args:
        images: N×C×H×W in [0, 1].
        kernel_size: odd support of the kernels (the maximal blur extent, pixels).
        noise_sigma: noise level in ``units`` (default 8-bit levels), a number or a (lo, hi) range drawn per
            image (default 0 to 2.55, i.e. up to 1 % of the range).
        clip: clamp the result to [0, 1].
        generator: seed or ``torch.Generator``.
        return_kernels: also return the N×k×k kernels (float64, CPU).

    The PDL paper follows Delbracio & Sapiro's burst-deblurring simulation: camera-shake kernels of varying
    intensity and additive noise of a random level; the maximal support and noise range did not survive in
    our copy of the paper. With 21 px and σ ∈ [0, 2.55] the degraded Kodak images score 27.1 dB PSNR on
    average, the paper's input row being 27.07 dB (on DIV2K), so these are the defaults.
    """
    x = _check_images("images", images)
    if (
        not isinstance(kernel_size, int)
        or isinstance(kernel_size, bool)
        or kernel_size < 3
        or kernel_size % 2 == 0
    ):
        raise ValueError(f"kernel_size must be an odd integer >= 3 (pixels), got {kernel_size!r}")
    g = make_generator(generator)
    kernels = random_motion_kernels(x.shape[0], kernel_size, generator=g)
    y = gaussian_noise(blur(x, kernels), noise_sigma, units=units, clip=clip, generator=g)
    return (y, kernels) if return_kernels else y


# ----------------------------------------------------------------------------------------------------- JPEG


def _check_quality(quality: object) -> tuple[int, int]:
    def ok(q: object) -> bool:
        return isinstance(q, (int, np.integer)) and not isinstance(q, bool) and 1 <= int(q) <= 100

    if ok(quality):
        return int(quality), int(quality)  # type: ignore[arg-type]
    if isinstance(quality, Sequence) and len(quality) == 2 and all(ok(q) for q in quality):
        lo, hi = int(quality[0]), int(quality[1])
        if lo <= hi:
            return lo, hi
    raise ValueError(
        f"quality must be an integer in [1, 100] or a (low, high) pair of them with low <= high, got "
        f"{quality!r}"
    )


def jpeg(
    images: Tensor,
    quality: int | tuple[int, int] = 20,
    *,
    subsampling: str = "4:2:0",
    generator: Generatorish = None,
) -> Tensor:
    """JPEG compression artefacts: encode each image with Pillow (libjpeg) at ``quality`` and decode it.

    Args:
        images: N×C×H×W in [0, 1], C = 1 (grayscale JPEG) or 3 (RGB → YCbCr JPEG).
        quality: libjpeg quality 1–100, or a (lo, hi) pair to draw an integer quality per image.
        subsampling: chroma subsampling "4:4:4", "4:2:2" or "4:2:0" (libjpeg's and Pillow's default).
        generator: seed or ``torch.Generator`` (only used with a quality range).

    The image is first quantised to 8 bits exactly as :func:`featstat.io.write_image` does (clamp to [0, 1],
    ×255, round), so the result equals writing a .jpg with Pillow and reading it back. Not differentiable.
    """
    x = _check_images("images", images)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels for JPEG, got shape {tuple(x.shape)}")
    lo, hi = _check_quality(quality)
    check_choice("subsampling", subsampling, ("4:4:4", "4:2:2", "4:2:0"))
    g = make_generator(generator)
    if lo == hi:
        qualities = [lo] * x.shape[0]
    else:
        qualities = torch.randint(lo, hi + 1, (x.shape[0],), generator=g, device=g.device).tolist()
    arr = x.detach().to(device="cpu", dtype=torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)
    out = []
    for img, q in zip(arr, qualities, strict=True):
        a = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        buffer = _io.BytesIO()
        pil.save(buffer, format="JPEG", quality=int(q), subsampling=subsampling)
        buffer.seek(0)
        dec = np.asarray(Image.open(buffer), dtype=np.uint8)
        dec = dec[:, :, None] if dec.ndim == 2 else dec
        out.append(torch.from_numpy(dec.copy()).permute(2, 0, 1))
    return (torch.stack(out).to(torch.float32) / 255.0).to(device=x.device, dtype=x.dtype)


# -------------------------------------------------------------------------------------------------- resize


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a (a = −0.5: MATLAB, Pillow)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


@functools.lru_cache(maxsize=64)
def _matlab_weights(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The out_len × in_len interpolation matrix of MATLAB ``imresize(…, 'bicubic')`` along one axis.

    A transcription of imresize's ``contributions``: output pixel x (1-based) maps to
    ``u = x/scale + 0.5·(1 − 1/scale)``; when shrinking (scale < 1) the kernel is stretched to
    ``scale·cubic(scale·t)`` with width 4/scale (antialiasing); weights are normalised to sum 1 and indices
    outside the image are mirrored (``symmetric`` padding).
    """
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    t = u[:, None] - idx
    w = scale * _cubic(scale * t) if scale < 1 else _cubic(t)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return matrix


def _check_size(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


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
        size: output (height, width); or give ``scale`` (output = round(scale · input), MATLAB's rule).
        method: "matlab" (default; exactly MATLAB's ``imresize(x, scale, 'bicubic')`` up to floating point,
            via separable interpolation matrices) or "torch" (``F.interpolate(…, mode="bicubic",
            antialias=True)``: Pillow's algorithm; identical away from the borders).

    With "matlab" and a ``scale`` the kernel is set by ``scale`` (as imresize does), with ``size`` by the
    ratio of the sizes (per axis).
    """
    x = _check_images("images", images)
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
        out_h, out_w = _check_size("size[0]", size[0]), _check_size("size[1]", size[1])
        sh, sw = out_h / h, out_w / w
    if method == "torch":
        return F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False, antialias=True)
    dtype = x.dtype if x.dtype == torch.float64 else torch.float32
    mh = torch.from_numpy(_matlab_weights(h, out_h, sh)).to(device=x.device, dtype=dtype)
    mw = torch.from_numpy(_matlab_weights(w, out_w, sw)).to(device=x.device, dtype=dtype)
    y = torch.matmul(mh, torch.matmul(x.to(dtype), mw.t()))
    return y.to(x.dtype)


def bicubic_downsample(images: Tensor, scale: int, *, method: str = "matlab") -> Tensor:
    """Downsample by an integer factor (2, 3, 4 or 8) with antialiased bicubic interpolation.

    ``images`` N×C×H×W with H and W multiples of ``scale`` (crop first: SR datasets "mod-crop" their
    ground truth); returns N×C×(H/scale)×(W/scale). ``method``: see :func:`resize_bicubic` (default MATLAB's
    imresize, the convention of SR benchmarks).
    """
    x = _check_images("images", images)
    if scale not in SR_SCALES:
        raise ValueError(f"scale must be one of {SR_SCALES}, got {scale!r}")
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"images of size {h}×{w} are not multiples of scale {scale}; crop them first, e.g. "
            f"x[..., :{h - h % scale}, :{w - w % scale}]"
        )
    return resize_bicubic(x, scale=1.0 / scale, method=method)


# ---------------------------------------------------------------------------------------------- Bayer CFA


def bayer_mask(
    height: int,
    width: int,
    pattern: str = "RGGB",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The 1×3×H×W sampling mask of a Bayer colour filter array: 1 where the sensor records that colour.

    ``pattern`` names the colours of the top-left 2×2 block row by row: "RGGB" has R at (0, 0), G at (0, 1)
    and (1, 0), B at (1, 1), repeated over the image.
    """
    check_choice("pattern", pattern, BAYER_PATTERNS)
    _check_size("height", height)
    _check_size("width", width)
    mask = torch.zeros(1, 3, height, width, dtype=dtype, device=device)
    channel = {"R": 0, "G": 1, "B": 2}
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mask[0, channel[colour], dy::2, dx::2] = 1
    return mask


def bayer_mosaic(
    images: Tensor,
    pattern: str = "RGGB",
    *,
    noise_sigma: Sigma = 0.0,
    units: float = 255.0,
    clip: bool = True,
    generator: Generatorish = None,
) -> Tensor:
    """Raw sensor values of a Bayer camera: N×3×H×W RGB → N×1×H×W mosaic, plus optional Gaussian noise.

    ``raw[y, x] = rgb[c(y, x), y, x] + σ·n`` with c given by ``pattern`` (see :func:`bayer_mask`);
    ``noise_sigma`` in ``units`` (default 8-bit levels), a number or a (lo, hi) range per image.
    """
    x = _check_images("images", images)
    if x.shape[1] != 3:
        raise ValueError(f"images must be RGB (N×3×H×W) to mosaic, got shape {tuple(x.shape)}")
    mask = bayer_mask(x.shape[2], x.shape[3], pattern, device=x.device, dtype=x.dtype)
    raw = (x * mask).sum(dim=1, keepdim=True)
    _, hi = _sigma_range("noise_sigma", noise_sigma)
    if hi == 0:
        return raw
    return gaussian_noise(raw, noise_sigma, units=units, clip=clip, generator=generator)


def demosaic_bilinear(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Bilinear demosaicking: N×1×H×W mosaic → N×3×H×W RGB.

    Each colour plane keeps its recorded samples and fills the others with the mean of the nearest recorded
    neighbours (green: the 4-neighbourhood; red/blue: 2 or 4 neighbours), i.e. the convolution of the masked
    plane with [[0,1,0],[1,4,1],[0,1,0]]/4 (green) and [[1,2,1],[2,4,2],[1,2,1]]/4 (red, blue), with mirrored
    borders.
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


# -------------------------------------------------------------------------------------------- task presets

#: Restoration tasks and the default options of their degradation.
TASKS: dict[str, dict[str, Any]] = {
    "sr2": {"scale": 2, "method": "matlab"},
    "sr4": {"scale": 4, "method": "matlab"},
    "sr8": {"scale": 8, "method": "matlab"},
    "denoise": {"sigma": 25.0, "clip": True},
    "deblur": {"kernel_size": 21, "noise_sigma": [0.0, 2.55], "clip": True},
    "jpeg": {"quality": 20, "subsampling": "4:2:0"},
    "demosaic": {"pattern": "RGGB", "noise_sigma": [0.0, 5.0], "clip": True},
    "normals": {},
}


@dataclass
class Degradation:
    """The forward model of a task: ``degradation(clean, generator) → network input``.

    ``task`` is a key of :data:`TASKS`; ``options`` override its defaults (e.g. ``{"sigma": 50}`` for
    denoise, ``{"quality": [10, 40]}`` for JPEG). Attributes: ``scale`` (the SR factor, 1 otherwise) and
    ``multiple`` (crop sizes of clean images must be multiples of it: the SR factor, 2 for demosaicking).
    Options are plain numbers, strings and lists, so a degradation can be stored in a checkpoint or TOML.

    - sr2/sr4/sr8: ``bicubic_downsample(clean, scale, method=method)``.
    - denoise: ``gaussian_noise(clean, sigma, clip=clip)`` (σ in 8-bit levels; default 25, clipped).
    - deblur: ``motion_blur(clean, kernel_size=…, noise_sigma=…)``.
    - jpeg: ``jpeg(clean, quality, subsampling=…)``.
    - demosaic: ``demosaic_bilinear(bayer_mosaic(clean, pattern, noise_sigma=…))``: the network refines the
      bilinear interpolation of a noisy RGGB mosaic (the mosaic itself is recoverable from it exactly).
    - normals: the identity; inputs and targets are separate images (photographs and normal maps).
    """

    task: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("task", self.task, tuple(TASKS))
        if not isinstance(self.options, Mapping):
            raise ValueError(f"options must be a dict of degradation options, got {self.options!r}")
        unknown = set(self.options) - set(TASKS[self.task])
        if unknown:
            raise ValueError(
                f"unknown options {sorted(unknown)} for task {self.task!r}; it takes "
                f"{sorted(TASKS[self.task])}"
            )
        self.options = {**TASKS[self.task], **dict(self.options)}
        if self.task == "normals":
            return
        # validate the options now, not at the first training step
        side = 16
        if self.task == "deblur" and isinstance(self.options["kernel_size"], int):
            side = max(side, self.options["kernel_size"] + 1)
        self(torch.zeros(1, 3, side + side % 2, side + side % 2), 0)

    @property
    def scale(self) -> int:
        return int(self.options.get("scale", 1))

    @property
    def multiple(self) -> int:
        return self.scale if self.task.startswith("sr") else (2 if self.task == "demosaic" else 1)

    def __call__(self, clean: Tensor, generator: Generatorish = None) -> Tensor:
        o = self.options
        if self.task.startswith("sr"):
            return bicubic_downsample(clean, o["scale"], method=o["method"])
        if self.task == "denoise":
            return gaussian_noise(clean, _pair(o["sigma"]), clip=o["clip"], generator=generator)
        if self.task == "deblur":
            return motion_blur(
                clean,
                kernel_size=o["kernel_size"],
                noise_sigma=_pair(o["noise_sigma"]),
                clip=o["clip"],
                generator=generator,
            )
        if self.task == "jpeg":
            return jpeg(clean, _pair(o["quality"]), subsampling=o["subsampling"], generator=generator)
        if self.task == "demosaic":
            raw = bayer_mosaic(
                clean, o["pattern"], noise_sigma=_pair(o["noise_sigma"]), clip=o["clip"], generator=generator
            )
            return demosaic_bilinear(raw, o["pattern"])
        return clean


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def make_degradation(task: str, **options: Any) -> Degradation:
    """The :class:`Degradation` of ``task`` with ``options`` overriding :data:`TASKS` ``[task]``."""
    return Degradation(task, options)
