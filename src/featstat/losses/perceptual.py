"""Perceptual (feature reconstruction) loss of Johnson et al.: a pointwise distance between feature maps.

The prediction's and the target's features at the same layer are compared position by position, so both must
have the same shape (the distribution losses — Gram, contextual, projected — drop that requirement).
"""

from __future__ import annotations

from torch import Tensor

from .._checks import (
    check_choice,
    check_reduction,
    check_same_shape,
    check_tensor,
    compute_dtype,
    legacy_arguments,
)
from .._checks import reduce as _reduce
from ..registry import LOSSES
from .base import FeatureLoss, float32_compute

__all__ = ["PerceptualLoss", "perceptual_loss"]

NORMS = ("l1", "l2")


@legacy_arguments(renamed={"pred_feats": "pred", "target_feats": "target"}, positional=("reduction",))
@float32_compute
def perceptual_loss(pred: Tensor, target: Tensor, norm: str = "l1", *, reduction: str = "mean") -> Tensor:
    """Feature reconstruction loss: per sample ``mean_{c,h,w} |Δ|`` ("l1") or ``mean_{c,h,w} Δ²`` ("l2").

    ``Δ = pred − target`` (PDL paper eq. 6 with the L1 norm, Johnson et al. with the squared L2
    norm, both normalised by C·H·W).

    Args:
        pred: N×C×H×W features of the prediction (any real values).
        target: N×C×H×W or 1×C×H×W (broadcast over the batch) features of the target, same C, H, W.
        norm: "l1" or "l2".
        reduction: "mean", "sum" or "none" (shape N).

    Half-precision features are compared in float32; the result is float32 for them, else their dtype.
    0.1 names ``pred_feats``, ``target_feats`` and a positional ``reduction`` still work (deprecated).
    """
    check_reduction(reduction)
    check_choice("norm", norm, NORMS)
    pred = check_tensor("pred", pred)
    target = check_tensor("target", target)
    check_same_shape(pred, target, names=("pred", "target"))
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on the same device, got {pred.device} and "
            f"{target.device}"
        )
    dtype = compute_dtype(pred)
    diff = pred.to(dtype) - target.to(dtype)
    values = diff.abs() if norm == "l1" else diff.square()
    return _reduce(values.flatten(1).mean(dim=1), reduction)


@LOSSES.register("perceptual")
class PerceptualLoss(FeatureLoss):
    """Module form of :func:`perceptual_loss` (pointwise: pred and target features of the same shape)."""

    function = staticmethod(perceptual_loss)

    pointwise = True

    @legacy_arguments(positional=("reduction",))
    def __init__(self, norm: str = "l1", *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.norm = check_choice("norm", norm, NORMS)

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        return perceptual_loss(pred, prepared, norm=self.norm, reduction="none")

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, reduction={self.reduction!r}"
