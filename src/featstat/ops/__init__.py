"""Image operators on tensors: one copy of each, shared by metrics and every product.

Pure tensor functions on N×C×H×W float images in [0, 1] (unless a function says otherwise): no file I/O
(that is :mod:`featstat.io`), and no randomness without a ``seed: int | torch.Generator`` argument (required;
draws happen on the generator's device, CPU for an int, so one seed gives the same result on every device).
Noise levels carry explicit units (``units="unit"`` for σ on [0, 1], ``units="255"`` for 8-bit levels).
This layer imports only :mod:`featstat._checks`, torch, NumPy and Pillow. See ``docs/ops.md``.

- resampling (:mod:`.resample`): :func:`resize` / :func:`resample_matrix` / :class:`Downsampler` (Pillow-style
  Lanczos-2/3, bicubic, bilinear, box; edges renormalise / replicate / reflect), :func:`imresize` /
  :func:`resize_bicubic` / :func:`bicubic_downsample` (MATLAB ``imresize`` bicubic, or ``F.interpolate``);
- noise (:mod:`.noise`): :func:`gaussian_noise`;
- JPEG (:mod:`.jpeg`): :func:`jpeg`, :func:`quantize_8bit`;
- blurs (:mod:`.blur`): :func:`gaussian_blur`, :func:`box_blur`, :func:`blur` (per-image kernels),
  :func:`camera_shake_kernel`, :func:`random_motion_kernels`;
- Bayer CFA (:mod:`.bayer`): :func:`bayer_mask`, :func:`bayer_mosaic`, :func:`demosaic_bilinear`;
- colour (:mod:`.color`): :func:`rgb_to_y`, :func:`rgb_to_ycbcr`, :func:`ycbcr_to_rgb`, :func:`is_grayscale`,
  :func:`rgb_to_lab`, :func:`lab_to_rgb`;
- masks (:mod:`.masks`): :func:`random_mask`.
"""

from .bayer import BAYER_PATTERNS, bayer_mask, bayer_mosaic, demosaic_bilinear
from .blur import (
    PADDINGS,
    blur,
    box_blur,
    camera_shake_kernel,
    gaussian_blur,
    gaussian_kernel1d,
    random_motion_kernels,
    separable_blur,
)
from .color import SWINGS, is_grayscale, lab_to_rgb, rgb_to_lab, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from .jpeg import SUBSAMPLINGS, jpeg, quantize_8bit
from .masks import random_mask
from .noise import UNITS, gaussian_noise, white_level
from .resample import (
    EDGES,
    KERNELS,
    RESIZE_METHODS,
    SR_SCALES,
    Downsampler,
    bicubic_downsample,
    imresize,
    imresize_matrix,
    resample_matrix,
    resize,
    resize_bicubic,
)

__all__ = [
    "BAYER_PATTERNS",
    "EDGES",
    "KERNELS",
    "PADDINGS",
    "RESIZE_METHODS",
    "SR_SCALES",
    "SUBSAMPLINGS",
    "SWINGS",
    "UNITS",
    "Downsampler",
    "bayer_mask",
    "bayer_mosaic",
    "bicubic_downsample",
    "blur",
    "box_blur",
    "camera_shake_kernel",
    "demosaic_bilinear",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gaussian_noise",
    "imresize",
    "imresize_matrix",
    "is_grayscale",
    "jpeg",
    "lab_to_rgb",
    "quantize_8bit",
    "random_mask",
    "random_motion_kernels",
    "resample_matrix",
    "resize",
    "resize_bicubic",
    "rgb_to_lab",
    "rgb_to_y",
    "rgb_to_ycbcr",
    "separable_blur",
    "white_level",
    "ycbcr_to_rgb",
]
