"""Seeded image degradations on tensors: the forward models of the restoration tasks.

Thin seeded wrappers over :mod:`featstat.ops`, where each operator lives once; this module adds the tasks'
conventions: noise levels in 8-bit levels by default (``units=255``, passed to the operators explicitly),
per-image ranges of σ and JPEG quality, and the task presets (:data:`TASKS`, :class:`Degradation`).

Every function takes images N×C×H×W (float, values in [0, 1]) and returns a tensor on the same device with
the same dtype. Randomness (noise, blur kernels, JPEG qualities drawn from a range) comes from a
``torch.Generator`` or an int seed (``seed=``; None means seed 0; the 0.1 spelling ``generator=`` still works
with a DeprecationWarning); the same seed gives the same result on every device, because random numbers are
drawn on the generator's device (CPU by default) and then moved.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import ops
from .._checks import check_choice, check_tensor, legacy_arguments, make_generator
from ..ops import (
    BAYER_PATTERNS,
    RESIZE_METHODS,
    SR_SCALES,
    bayer_mask,
    bicubic_downsample,
    blur,
    demosaic_bilinear,
    resize_bicubic,
)
from ..ops.noise import sigma_range

__all__ = [
    "BAYER_PATTERNS",
    "RESIZE_METHODS",
    "SR_SCALES",
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

Generatorish = int | torch.Generator | None
_SEED_RENAMED = {"generator": "seed"}  # the 0.1 spelling
Sigma = float | tuple[float, float] | Sequence[float]


# -------------------------------------------------------------------------------------------------- noise


@legacy_arguments(renamed=_SEED_RENAMED)
def gaussian_noise(
    images: Tensor,
    sigma: Sigma,
    *,
    units: float | str = 255.0,
    clip: bool = False,
    seed: Generatorish = None,
) -> Tensor:
    """Add white Gaussian noise: ``y = x + (σ / units) · n``, n ~ N(0, 1) i.i.d. per pixel and channel.

    Args:
        images: N×C×H×W, values in [0, 1].
        sigma: standard deviation in ``units`` (default 8-bit levels: 25 → 25/255), or a pair (lo, hi) to
            draw one σ per image uniformly.
        units: the value of white in the units of ``sigma`` (255 for 8-bit levels, 1 for [0, 1]), or the
            names of :func:`featstat.ops.gaussian_noise` ("255", "unit").
        clip: clamp the result to [0, 1] (what saving the noisy image to a file would do; the Deep Image
            Prior reference code clips). Without clipping the noise is exactly Gaussian.
        seed: int or ``torch.Generator`` (default seed 0; 0.1 name ``generator``).

    Returns N×C×H×W with the dtype and device of ``images``: :func:`featstat.ops.gaussian_noise`.
    """
    x = check_tensor("images", images, ndim=4)
    return ops.gaussian_noise(x, sigma, units=units, clip=clip, seed=make_generator(seed))


# ------------------------------------------------------------------------------------------------ motion blur


@legacy_arguments(renamed=_SEED_RENAMED)
def camera_shake_kernel(
    size: int = 31,
    *,
    length: float | None = None,
    samples: int = 1000,
    seed: Generatorish = None,
) -> Tensor:
    """One random camera-shake blur kernel (size×size, float64, sums to one): see
    :func:`featstat.ops.camera_shake_kernel`. ``seed``: int or ``torch.Generator`` (default seed 0)."""
    return ops.camera_shake_kernel(size, length=length, samples=samples, seed=make_generator(seed))


@legacy_arguments(renamed=_SEED_RENAMED)
def random_motion_kernels(
    n: int, size: int = 31, *, seed: Generatorish = None, samples: int = 1000
) -> Tensor:
    """``n`` independent :func:`camera_shake_kernel` s, stacked n×size×size (float64)."""
    return ops.random_motion_kernels(n, size, seed=make_generator(seed), samples=samples)


@legacy_arguments(renamed=_SEED_RENAMED)
def motion_blur(
    images: Tensor,
    *,
    kernel_size: int = 21,
    noise_sigma: Sigma = (0.0, 2.55),
    units: float | str = 255.0,
    clip: bool = True,
    seed: Generatorish = None,
    return_kernels: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Camera-shake blur plus noise: ``y = k_i ∗ x_i + σ_i · n`` with a random kernel per image.

    Args:
        images: N×C×H×W in [0, 1].
        kernel_size: odd support of the kernels (the maximal blur extent, pixels).
        noise_sigma: noise level in ``units`` (default 8-bit levels), a number or a (lo, hi) range drawn per
            image (default 0 to 2.55, i.e. up to 1 % of the range).
        clip: clamp the result to [0, 1].
        seed: int or ``torch.Generator`` (default seed 0): the kernels are drawn first, then the noise.
        return_kernels: also return the N×k×k kernels (float64, CPU).

    The PDL paper follows Delbracio & Sapiro's burst-deblurring simulation: camera-shake kernels of varying
    intensity and additive noise of a random level; the maximal support and noise range did not survive in
    our copy of the paper. With 21 px and σ ∈ [0, 2.55] the degraded Kodak images score 27.1 dB PSNR on
    average, the paper's input row being 27.07 dB (on DIV2K), so these are the defaults.
    """
    x = check_tensor("images", images, ndim=4)
    if (
        not isinstance(kernel_size, int)
        or isinstance(kernel_size, bool)
        or kernel_size < 3
        or kernel_size % 2 == 0
    ):
        raise ValueError(f"kernel_size must be an odd integer >= 3 (pixels), got {kernel_size!r}")
    g = make_generator(seed)
    kernels = ops.random_motion_kernels(x.shape[0], kernel_size, seed=g)
    y = ops.gaussian_noise(blur(x, kernels), noise_sigma, units=units, clip=clip, seed=g)
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


@legacy_arguments(renamed=_SEED_RENAMED)
def jpeg(
    images: Tensor,
    quality: int | tuple[int, int] = 20,
    *,
    subsampling: str = "4:2:0",
    seed: Generatorish = None,
) -> Tensor:
    """JPEG compression artefacts: encode each image with Pillow (libjpeg) at ``quality`` and decode it.

    Args:
        images: N×C×H×W in [0, 1], C = 1 (grayscale JPEG) or 3 (RGB → YCbCr JPEG).
        quality: libjpeg quality 1–100, or a (lo, hi) pair to draw an integer quality per image.
        subsampling: chroma subsampling "4:4:4", "4:2:2" or "4:2:0" (libjpeg's and Pillow's default).
        seed: int or ``torch.Generator`` (default seed 0; only used with a quality range).

    The round trip is :func:`featstat.ops.jpeg` (8-bit quantisation first, as writing a .jpg with Pillow
    and reading it back). Not differentiable.
    """
    x = check_tensor("images", images, ndim=4)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels for JPEG, got shape {tuple(x.shape)}")
    lo, hi = _check_quality(quality)
    check_choice("subsampling", subsampling, ops.SUBSAMPLINGS)
    g = make_generator(seed)
    if lo == hi:
        return ops.jpeg(x, lo, subsampling=subsampling)
    qualities = torch.randint(lo, hi + 1, (x.shape[0],), generator=g, device=g.device).tolist()
    return ops.jpeg(x, qualities, subsampling=subsampling)


# ---------------------------------------------------------------------------------------------- Bayer CFA


@legacy_arguments(renamed=_SEED_RENAMED)
def bayer_mosaic(
    images: Tensor,
    pattern: str = "RGGB",
    *,
    noise_sigma: Sigma = 0.0,
    units: float | str = 255.0,
    clip: bool = True,
    seed: Generatorish = None,
) -> Tensor:
    """Raw sensor values of a Bayer camera: N×3×H×W RGB → N×1×H×W mosaic, plus optional Gaussian noise.

    ``raw[y, x] = rgb[c(y, x), y, x] + σ·n`` with c given by ``pattern`` (:func:`featstat.ops.bayer_mask`);
    ``noise_sigma`` in ``units`` (default 8-bit levels), a number or a (lo, hi) range per image.
    """
    raw = ops.bayer_mosaic(images, pattern)
    _, hi = sigma_range("noise_sigma", noise_sigma)
    if hi == 0:
        return raw
    return ops.gaussian_noise(raw, noise_sigma, units=units, clip=clip, seed=make_generator(seed))


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
    """The forward model of a task: ``degradation(clean, seed) → network input``.

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

    @legacy_arguments(renamed=_SEED_RENAMED)
    def __call__(self, clean: Tensor, seed: Generatorish = None) -> Tensor:
        o = self.options
        if self.task.startswith("sr"):
            return bicubic_downsample(clean, o["scale"], method=o["method"])
        if self.task == "denoise":
            return gaussian_noise(clean, _pair(o["sigma"]), units="255", clip=o["clip"], seed=seed)
        if self.task == "deblur":
            return motion_blur(
                clean,
                kernel_size=o["kernel_size"],
                noise_sigma=_pair(o["noise_sigma"]),
                units="255",
                clip=o["clip"],
                seed=seed,
            )
        if self.task == "jpeg":
            return jpeg(clean, _pair(o["quality"]), subsampling=o["subsampling"], seed=seed)
        if self.task == "demosaic":
            raw = bayer_mosaic(
                clean,
                o["pattern"],
                noise_sigma=_pair(o["noise_sigma"]),
                units="255",
                clip=o["clip"],
                seed=seed,
            )
            return demosaic_bilinear(raw, o["pattern"])
        return clean


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def make_degradation(task: str, **options: Any) -> Degradation:
    """The :class:`Degradation` of ``task`` with ``options`` overriding :data:`TASKS` ``[task]``."""
    return Degradation(task, options)
