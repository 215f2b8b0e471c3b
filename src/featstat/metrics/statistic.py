"""Deep metrics from registered distribution losses: ``d(x, x0) = mean_l L(φ_l(x), φ_l(x0))``.

Any loss registered in :data:`featstat.registry.LOSSES` with the fact ``distribution_statistic = True`` (Gram,
CX, Chamfer, PDL, sliced Wasserstein, and any later one) is also a metric: the loss applied to the features
of a fixed backbone at some layers, reduced over layers. The metric registry lists these derived metrics
under the loss's name (when no hand-written metric has that name), so ``featstat eval --metrics chamfer``
works for every distribution statistic without a metric class of its own.

Images are N×3×H×W RGB in [0, 1]; pred and target may differ in size (the statistics compare distributions of
feature vectors). Default backbone VGG-16 at relu2_2, relu3_3, relu4_3 (the Gram metric's layers of Gondal et
al. 2018), layers averaged. Lower is better; identical images give the loss's value of identical features
(0 for a divergence).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .._checks import check_reduction, reduce
from ..registry import LOSSES
from .deep import DeepMetric, paper_gram_layers

__all__ = ["StatisticDistance", "statistic_distance"]

class StatisticDistance(DeepMetric):
    """A registered distribution loss on fixed deep features, averaged over layers. Lower is better.

    Args:
        loss: a loss name or alias with ``distribution_statistic = True`` (e.g. "chamfer", "swd").
        net, layers, weights, seed, normalize, layer_reduction, reduction, device: as :class:`DeepMetric`
            (default VGG-16 relu2_2, relu3_3, relu4_3; "mean" over layers).
        **loss_options: constructor options of the loss (``bandwidth=0.2`` for "contextual", ...).
    """

    default_net = "vgg"
    default_layer_reduction = "mean"

    def __init__(
        self,
        loss: str,
        net: str | None = None,
        layers: Sequence[str] | None = None,
        weights: str | os.PathLike[str] | None = "default",
        *,
        seed: int = 0,
        normalize: bool = False,
        layer_reduction: str | None = None,
        reduction: str = "mean",
        device: torch.device | str | None = None,
        **loss_options: Any,
    ) -> None:
        cls = LOSSES.get(loss)
        if not getattr(cls, "distribution_statistic", False):
            raise ValueError(
                f"loss {loss!r} is not a distribution statistic; choose one of "
                f"{', '.join(LOSSES.names(distribution_statistic=True))}"
            )
        super().__init__(
            net, layers, weights, loss=cls(**loss_options, reduction="none"), seed=seed, normalize=normalize,
            layer_reduction=layer_reduction, reduction=reduction, device=device,
        )  # fmt: skip
        self.loss_name = LOSSES.canonical(loss)

    def default_layers(self, arch: str) -> tuple[str, ...]:
        return paper_gram_layers(arch)

    def extra_repr(self) -> str:
        return f"loss={self.loss_name!r}, " + super().extra_repr()


def statistic_distance(
    pred: Tensor, target: Tensor, loss: str, *, reduction: str = "mean", **options: Any
) -> Tensor:
    """Functional form of :class:`StatisticDistance` (builds the module for this call; keep a
    :class:`StatisticDistance` to reuse its backbone). Images N×3×H×W in [0, 1]; one value per image
    before ``reduction``."""
    check_reduction(reduction)
    device = pred.device if isinstance(pred, Tensor) else None  # built where the images are
    return reduce(StatisticDistance(loss, device=device, **options).values(pred, target), reduction)

