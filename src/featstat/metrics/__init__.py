"""Metrics: distortion (PSNR, SSIM, MS-SSIM), deep-feature (LPIPS-style, Gram, CX, PDL), normal-map angular
errors, power spectra, patch-distribution divergences and the 2AFC harness.

Every metric is a function (``featstat.metrics.psnr(pred, target)``) and a module (``PSNR()``), takes images
N×C×H×W in [0, 1], returns one value per image with ``reduction="none"`` (default "mean"), and says whether
higher is better. :data:`METRICS` maps the names used by the CLI (``featstat eval --metrics psnr,lpips``) to
``MetricInfo(function, module, higher_is_better)``; :func:`build_metric` makes a module by name.

Example::

    from featstat import metrics
    metrics.psnr(pred, target, y_channel=True, crop_border=4, reduction="none")   # SR-paper PSNR per image
    metrics.ssim(pred, target)                                                     # mean SSIM of the batch
    lp = metrics.LPIPS("alex")            # torchvision AlexNet + LPIPS v0.1 heads (when available)
    lp(pred, target)
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from .base import Metric, MetricInfo, check_image_pair
from .deep import (
    LPIPS,
    LPIPS_LAYERS,
    NETS,
    CXDistance,
    DeepMetric,
    GramDistance,
    PDLDistance,
    cx_distance,
    gram_distance,
    load_lpips_heads,
    lpips,
    lpips_from_features,
    paper_gram_layers,
    pdl_distance,
    unit_normalize,
)
from .distortion import MS_SSIM_WEIGHTS, MSSSIM, PSNR, SSIM, ms_ssim, psnr, rgb_to_y, ssim
from .kde import kde2d
from .normals import ANGULAR_STATISTICS, AngularError, angular_error, angular_error_stats, angular_statistic
from .patches import PatchDivergence, patch_divergence, patch_divergences, random_projections_2d
from .spectrum import (
    SpectrumDistance,
    mean_power_spectrum,
    radial_power_spectrum,
    spectral_slope,
    spectrum_distance,
)
from .twoafc import TwoAFCResult, find_subsets, format_table, list_triplets, score_2afc, twoafc_scores


def _registry() -> dict[str, MetricInfo]:
    reg: dict[str, MetricInfo] = {
        "psnr": MetricInfo(psnr, PSNR, True),
        "ssim": MetricInfo(ssim, SSIM, True),
        "ms_ssim": MetricInfo(ms_ssim, MSSSIM, True),
        "lpips": MetricInfo(lpips, LPIPS, False),
        "gram": MetricInfo(gram_distance, GramDistance, False),
        "cx": MetricInfo(cx_distance, CXDistance, False),
        "pdl": MetricInfo(pdl_distance, PDLDistance, False),
        "spectrum": MetricInfo(spectrum_distance, SpectrumDistance, False),
    }
    for d in ("kl", "chi2", "emd"):
        reg[f"patch_{d}"] = MetricInfo(
            functools.partial(patch_divergence, divergence=d), functools.partial(PatchDivergence, d), False
        )
    for stat, higher in ANGULAR_STATISTICS.items():
        reg[f"angular_{stat}"] = MetricInfo(
            functools.partial(angular_statistic, statistic=stat),
            functools.partial(AngularError, stat),
            higher,
        )
    return reg


#: Metric name → MetricInfo(function, module class (or factory), higher_is_better).
METRICS: dict[str, MetricInfo] = _registry()

#: Other names accepted by :func:`get_metric`.
ALIASES: dict[str, str] = {
    "msssim": "ms_ssim",
    "ms-ssim": "ms_ssim",
    "texture": "gram",
    "contextual": "cx",
    "projected_distribution": "pdl",
    "lsd": "spectrum",
}

#: Groups of metric names accepted by the CLI's ``--metrics``.
GROUP_NAMES: dict[str, tuple[str, ...]] = {
    "angular": tuple(f"angular_{s}" for s in ANGULAR_STATISTICS),
    "patch": ("patch_kl", "patch_chi2", "patch_emd"),
}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (an alias resolves); ``ValueError`` listing the names if unknown."""
    key = ALIASES.get(name, name)
    if key not in METRICS:
        close = difflib.get_close_matches(name, [*METRICS, *ALIASES], n=2)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown metric {name!r}{hint} Known metrics: {', '.join(METRICS)}")
    return key


def get_metric(name: str) -> MetricInfo:
    """``MetricInfo(function, module, higher_is_better)`` of a metric by name or alias."""
    return METRICS[canonical_name(name)]


def build_metric(name: str, **options: Any) -> Metric:
    """A metric module by name, with constructor options (e.g. ``build_metric("lpips", net="vgg")``)."""
    return get_metric(name).module(**options)


__all__ = [
    "ALIASES",
    "ANGULAR_STATISTICS",
    "GROUP_NAMES",
    "LPIPS",
    "LPIPS_LAYERS",
    "METRICS",
    "MSSSIM",
    "MS_SSIM_WEIGHTS",
    "NETS",
    "PSNR",
    "SSIM",
    "AngularError",
    "CXDistance",
    "DeepMetric",
    "GramDistance",
    "Metric",
    "MetricInfo",
    "PDLDistance",
    "PatchDivergence",
    "SpectrumDistance",
    "TwoAFCResult",
    "angular_error",
    "angular_error_stats",
    "angular_statistic",
    "build_metric",
    "canonical_name",
    "check_image_pair",
    "cx_distance",
    "find_subsets",
    "format_table",
    "get_metric",
    "gram_distance",
    "kde2d",
    "list_triplets",
    "load_lpips_heads",
    "lpips",
    "lpips_from_features",
    "mean_power_spectrum",
    "ms_ssim",
    "paper_gram_layers",
    "patch_divergence",
    "patch_divergences",
    "pdl_distance",
    "psnr",
    "radial_power_spectrum",
    "random_projections_2d",
    "rgb_to_y",
    "score_2afc",
    "spectral_slope",
    "spectrum_distance",
    "ssim",
    "twoafc_scores",
    "unit_normalize",
]
