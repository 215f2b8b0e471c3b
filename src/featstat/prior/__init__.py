"""Deep Image Prior (Ulyanov, Vedaldi and Lempitsky 2018; thesis chapter 7): restore one image with no
training data by fitting a randomly initialised generator to it.

Example (offline, on your own photo)::

    import featstat
    from featstat import prior

    noisy = featstat.read_image("photo.png")                       # 1×3×H×W in [0, 1]
    result = prior.denoise(noisy, steps=1800, progress=True, checkpoint="run.pt")
    result.save("out/")                # result.png, average.png, curves.png, run.json

    lr = featstat.read_image("small.png")
    sr = prior.super_resolve(lr, 4)                                # Lanczos-2 downsampler, 2000 steps

Tasks: :func:`denoise`, :func:`super_resolve`, :func:`inpaint`, :func:`remove_jpeg_artifacts`,
:func:`flash_no_flash`, :func:`invert_features`; the loop: :func:`solve` with :class:`FitOptions`;
operators: :func:`resize`, :class:`Downsampler`, :func:`add_gaussian_noise`, :func:`jpeg_compress`,
:func:`random_mask`. Networks live in :mod:`featstat.nets.hourglass`.
"""

from .engine import PRECISIONS, FitOptions, PriorResult, Problem, psnr, resolve_precision, solve
from .operators import (
    EDGES,
    KERNELS,
    Downsampler,
    add_gaussian_noise,
    jpeg_compress,
    random_mask,
    resample_matrix,
    resize,
)
from .tasks import (
    PRESETS,
    TASKS,
    NetPreset,
    denoise,
    flash_no_flash,
    inpaint,
    inpainting_loss,
    invert_features,
    remove_jpeg_artifacts,
    statistics_objective,
    super_resolve,
)

__all__ = [
    "EDGES",
    "KERNELS",
    "PRECISIONS",
    "PRESETS",
    "TASKS",
    "Downsampler",
    "FitOptions",
    "NetPreset",
    "PriorResult",
    "Problem",
    "add_gaussian_noise",
    "denoise",
    "flash_no_flash",
    "inpaint",
    "inpainting_loss",
    "invert_features",
    "jpeg_compress",
    "psnr",
    "random_mask",
    "remove_jpeg_artifacts",
    "resample_matrix",
    "resize",
    "resolve_precision",
    "solve",
    "statistics_objective",
    "super_resolve",
]
