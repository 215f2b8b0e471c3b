"""Degradation operators for Deep Image Prior: differentiable resampling, noise, JPEG, masks.

The operators live once in :mod:`featstat.ops`; this module re-exports the resampling (:func:`resize`,
:func:`resample_matrix`, :class:`Downsampler`, :data:`KERNELS`, :data:`EDGES`) and keeps Deep Image Prior's
spellings as thin seeded wrappers: :func:`add_gaussian_noise` (σ on the [0, 1] scale: ``units="unit"``),
:func:`jpeg_compress` (qualities 1–95, Pillow's default subsampling) and :func:`random_mask` (seed 0 by
default; ``seed=None`` draws from torch's global generator of the device).

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

from collections.abc import Sequence

import torch
from torch import Tensor

from .. import ops
from .._checks import check_positive, check_tensor, make_generator
from ..ops import EDGES, KERNELS, Downsampler, resample_matrix, resize

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


def _generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator:
    """A generator on ``device`` from a seed; for None, torch's global generator of that device (so the draws
    are those of an unseeded ``torch.rand``/``torch.randn`` there)."""
    if seed is not None:
        return make_generator(seed, device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.init()
        return torch.cuda.default_generators[index]
    return torch.default_generator


def add_gaussian_noise(
    image: Tensor, sigma: float, *, seed: int | torch.Generator | None = 0, clip: bool = True
) -> Tensor:
    """``image + N(0, sigma²)`` per value, σ on the [0, 1] scale (the paper's σ = 25 is 25/255), clipped to
    [0, 1] by default, as the reference code does (``np.clip(x + noise, 0, 1)``).

    ``image`` N×C×H×W; computed in float32, returned in its dtype. ``seed``: int (a generator on the
    image's device), a ``torch.Generator``, or None (torch's global generator). Wraps
    :func:`featstat.ops.gaussian_noise` with ``units="unit"``.
    """
    x = check_tensor("image", image, ndim=4)
    check_positive("sigma", sigma, allow_zero=True)
    g = _generator(seed, x.device)
    y = ops.gaussian_noise(x.float(), float(sigma), units="unit", clip=clip, seed=g)
    return y.to(x.dtype)


def jpeg_compress(image: Tensor, quality: int = 10) -> Tensor:
    """Encode each image as a JPEG of ``quality`` (1–95, Pillow) in memory and decode it: the blocking and
    ringing artefacts of a heavily compressed photo. Input and output N×C×H×W in [0, 1], C = 1 or 3.
    :func:`featstat.ops.jpeg` with 4:2:0 chroma subsampling (Pillow's default)."""
    x = check_tensor("image", image, ndim=4)
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer from 1 to 95, got {quality!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels for JPEG, got shape {tuple(x.shape)}")
    return ops.jpeg(x, quality, subsampling="4:2:0")


def random_mask(
    size: Sequence[int],
    drop: float,
    *,
    seed: int | torch.Generator | None = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A 1×1×H×W inpainting mask: each pixel is missing (0) with probability ``drop``, known (1) otherwise
    (the paper's Bernoulli masks, e.g. ``drop = 0.5``); all channels of a pixel share its value. Drawn on
    ``device`` (default CPU) from ``seed`` (None: torch's global generator); :func:`featstat.ops.random_mask`.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return ops.random_mask(size, drop, seed=_generator(seed, dev), device=dev, dtype=dtype)
