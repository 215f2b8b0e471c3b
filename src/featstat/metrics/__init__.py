"""Metrics: distortion (PSNR, SSIM, MS-SSIM), deep-feature (LPIPS-style, Gram, CX, PDL), normal-map angular
errors, power spectra, patch-distribution divergences and the 2AFC harness.

Every metric is a function (``featstat.metrics.psnr(pred, target)``) and a module (``PSNR()``), takes images
N×C×H×W in [0, 1], returns one value per image with ``reduction="none"`` (default "mean"), and says whether
higher is better. :data:`METRICS` maps the names used by the CLI (``featstat eval --metrics psnr,lpips``) to
``MetricInfo(function, module, higher_is_better)`` (the metric registry; every distribution loss is also a
derived deep metric, :class:`StatisticDistance`); :func:`build_metric` makes a module by name.

Example::

    from featstat import metrics
    metrics.psnr(pred, target, y_channel=True, crop_border=4, reduction="none")   # SR-paper PSNR per image
    metrics.ssim(pred, target)                                                     # mean SSIM of the batch
    lp = metrics.LPIPS("alex")            # torchvision AlexNet + LPIPS v0.1 heads (when available)
    lp(pred, target)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ..registry import LOSSES as _LOSSES
from ..registry import METRICS as _METRICS
from ..registry import AliasView, Registry
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
from .statistic import StatisticDistance, statistic_distance
from .twoafc import TwoAFCResult, find_subsets, format_table, list_triplets, score_2afc, twoafc_scores


def register_metric(
    name: str, function: Any, module: Any, *aliases: str, higher_is_better: bool | None = None
) -> MetricInfo:
    """Register a metric: its functional form, its module class (or a factory of it) and aliases. The
    direction is the class's fact (:attr:`Metric.higher_is_better`) unless given (per-instance facts)."""
    if higher_is_better is None:
        higher_is_better = metric_class(module).higher_is_better
    return _METRICS.register_value(name, MetricInfo(function, module, bool(higher_is_better)), *aliases)


def metric_class(module: Any) -> type[Metric]:
    """The Metric class behind a registry entry's ``module`` (a class or a functools.partial of one)."""
    while isinstance(module, functools.partial):
        module = module.func
    return module


def _derived_from_losses() -> dict[str, MetricInfo]:
    """A metric for each distribution loss with no hand-written metric of its name (or alias)."""
    taken = {*_METRICS.registered_names(), *_METRICS.registered_aliases()}
    out: dict[str, MetricInfo] = {}
    for loss in _LOSSES.names(distribution_statistic=True):
        if loss in taken or any(a in taken for a in _LOSSES.aliases_of(loss)):
            continue
        function = functools.partial(statistic_distance, loss=loss)
        out[loss] = MetricInfo(function, functools.partial(StatisticDistance, loss), False)
    return out


def _derived_aliases() -> dict[str, str]:
    derived = _derived_from_losses()
    return {a: n for a, n in _LOSSES.aliases.items() if n in derived and a not in _METRICS.registered_names()}


_METRICS.set_derived(_derived_from_losses, _derived_aliases)

register_metric("psnr", psnr, PSNR)
register_metric("ssim", ssim, SSIM)
register_metric("ms_ssim", ms_ssim, MSSSIM, "msssim", "ms-ssim")
register_metric("lpips", lpips, LPIPS)
register_metric("gram", gram_distance, GramDistance, "texture")
register_metric("cx", cx_distance, CXDistance, "contextual")
register_metric("pdl", pdl_distance, PDLDistance, "projected_distribution")
register_metric("spectrum", spectrum_distance, SpectrumDistance, "lsd")
for _d in ("kl", "chi2", "emd"):
    _fn = functools.partial(patch_divergence, divergence=_d)
    register_metric(f"patch_{_d}", _fn, functools.partial(PatchDivergence, _d))
for _stat, _higher in ANGULAR_STATISTICS.items():
    register_metric(
        f"angular_{_stat}",
        functools.partial(angular_statistic, statistic=_stat),
        functools.partial(AngularError, _stat),
        higher_is_better=_higher,
    )

#: Metric name → MetricInfo(function, module class (or factory), higher_is_better): the metric registry
#: (:data:`featstat.registry.METRICS`), a read-only mapping; distribution losses appear as derived metrics.
METRICS: Registry[MetricInfo] = _METRICS

#: Other names accepted by :func:`get_metric` (alias → name; a live view of the registry).
ALIASES: Mapping[str, str] = AliasView(_METRICS)

#: Groups of metric names accepted by the CLI's ``--metrics``.
GROUP_NAMES: dict[str, tuple[str, ...]] = {
    "angular": tuple(f"angular_{s}" for s in ANGULAR_STATISTICS),
    "patch": ("patch_kl", "patch_chi2", "patch_emd"),
}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (an alias resolves); a ``ValueError`` names the closest and the
    choices."""
    return METRICS.canonical(name)


def get_metric(name: str) -> MetricInfo:
    """``MetricInfo(function, module, higher_is_better)`` of a metric by name or alias."""
    return METRICS.get(name)


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
    "StatisticDistance",
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
    "metric_class",
    "ms_ssim",
    "paper_gram_layers",
    "patch_divergence",
    "patch_divergences",
    "pdl_distance",
    "psnr",
    "radial_power_spectrum",
    "random_projections_2d",
    "register_metric",
    "rgb_to_y",
    "score_2afc",
    "spectral_slope",
    "spectrum_distance",
    "ssim",
    "statistic_distance",
    "twoafc_scores",
    "unit_normalize",
]
