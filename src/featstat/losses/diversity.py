"""Diversity (entropy) term of Improved Texture Networks (Ulyanov, Vedaldi & Lempitsky, CVPR 2017).

A generator trained only with a texture loss may map every noise input to the same image. Minimising the KL
divergence to the (quasi-uniform) Julesz ensemble adds the negative entropy of the generated distribution
(thesis eq. 3.6), which the Kozachenko–Leonenko estimator approximates from the distance ρ_i of each sample of
a batch to its nearest neighbour in the batch (eqs. 3.8–3.9): H ≈ (D/N) Σ_i ln ρ_i + const. The learning
objective (eq. 3.10) is

    E(g) = (1/N) Σ_i [ L(g(z_i))/T − λ ln min_{j≠i} ‖g(z_i) − g(z_j)‖ ].

This module implements the second term without λ (the objective's weight): per sample ``−ln(ρ_i + eps)``.
Normalisation: ρ_i is the plain Euclidean distance between the flattened samples, as in eq. 3.10; the factor D
of eq. 3.9 is absorbed into λ, as the thesis does. Dividing ρ by √D (a per-pixel RMS distance) would only add
the constant ½·ln D to the loss and change neither its gradient nor the optimum.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import (
    check_positive,
    check_reduction,
    check_tensor,
    check_values,
    compute_dtype,
    legacy_arguments,
)
from .._checks import reduce as _reduce
from ..registry import LOSSES
from .base import FeatureLoss, float32_compute

__all__ = ["DiversityLoss", "diversity_loss", "nearest_neighbour_distance"]


@legacy_arguments(renamed={"x": "pred"})
@float32_compute
def nearest_neighbour_distance(pred: Tensor) -> tuple[Tensor, Tensor]:
    """Distance from each sample of the batch to its nearest other sample, and that neighbour's index.

    Args:
        pred: N×... (N ≥ 2), each sample flattened to a vector of D = numel/N components.

    Returns:
        (ρ, j*): ρ of shape N (Euclidean, differentiable, computed directly from x_i − x_j* so there is no
        cancellation when samples are close), j* of shape N (int64). The search itself runs without gradient;
        as in eq. 3.11 the gradient flows only through each sample's nearest pair.
    """
    pred = check_tensor("pred", pred, ndim=(2, 3, 4, 5))
    n = pred.shape[0]
    if n < 2:
        raise ValueError(
            f"pred must hold a batch of at least 2 samples to measure diversity (nearest neighbours within "
            f"the batch), got shape {tuple(pred.shape)}; increase the batch size"
        )
    flat = pred.to(compute_dtype(pred)).reshape(n, -1)
    with torch.no_grad():
        dist = torch.cdist(flat[None], flat[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
        dist.fill_diagonal_(float("inf"))
        nearest = dist.argmin(dim=1)
    rho = torch.linalg.vector_norm(flat - flat[nearest], dim=1)
    return rho, nearest


@legacy_arguments(renamed={"x": "pred"}, positional=("reduction",))
@float32_compute
def diversity_loss(pred: Tensor, eps: float = 1e-8, *, reduction: str = "mean") -> Tensor:
    """Negative Kozachenko–Leonenko entropy term: per sample ``−ln(min_{j≠i} ‖x_i − x_j‖ + eps)``.

    Improved Texture Networks, thesis eq. 3.10 (second term, without λ): with reduction "mean" this is
    ``−mean_i ln ρ_i``; lower means a more diverse batch. Identical samples give ``−ln(eps)`` and a zero
    gradient (the direction to push them apart is undefined).

    Args:
        pred: a batch of N ≥ 2 generated images or features, N×C×H×W (or N×D, N×...), flattened per sample.
        eps: added to the distance before the log (keeps the loss finite for coinciding samples).
        reduction: "mean", "sum" or "none" (shape N).

    Returns float32 for half inputs, else pred's dtype.
    """
    check_reduction(reduction)
    eps = check_positive("eps", eps)
    rho, _ = nearest_neighbour_distance(pred)
    return _reduce(-torch.log(rho + eps), reduction)


@LOSSES.register("diversity")
class DiversityLoss(FeatureLoss):
    """Module form of :func:`diversity_loss`; a term on the generated batch alone.

    ``forward(pred, target=None)``: ``target`` is accepted for the ``(pred, target)`` interface of an
    objective and is not used.
    """

    function = staticmethod(diversity_loss)

    needs_target = False

    @legacy_arguments(positional=("reduction",))
    def __init__(self, eps: float = 1e-8, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.eps = check_positive("eps", eps)

    def prepare_target(self, target: Any) -> None:
        return None

    def compare(self, pred: Tensor, prepared: Any = None) -> Tensor:
        return diversity_loss(pred, eps=self.eps, reduction="none")

    def forward(self, pred: Tensor, target: Tensor | None = None) -> Tensor:
        check_values("pred", check_tensor("pred", pred, ndim=(2, 3, 4, 5)))
        return _reduce(self.compare(pred), self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"
