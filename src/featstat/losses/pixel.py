"""Pixel losses: L1, L2 (mean squared error), low-frequency L2 and total variation.

All take N×C×H×W tensors (images in [0, 1], or any maps: the values are not checked, only the shapes, so no
device sync happens) and return one value per sample with ``reduction="none"``, otherwise the mean or sum over
the batch. The pointwise losses need ``pred`` and ``target`` of the same shape; a target with batch size 1 is
compared with every prediction. Half-precision inputs are computed in float32 and the result is float32.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import (
    MAX_KERNEL_SIZE,
    check_choice,
    check_int,
    check_reduction,
    check_same_shape,
    check_tensor,
    check_values,
    compute_dtype,
    legacy_arguments,
)
from .._checks import reduce as _reduce
from ..ops import gaussian_kernel1d, separable_blur
from ..ops.blur import check_padding
from ..registry import LOSSES
from .base import FeatureLoss, float32_compute

__all__ = [
    "L1Loss",
    "L2Loss",
    "LowFrequencyL2Loss",
    "TotalVariationLoss",
    "gaussian_blur",
    "gaussian_kernel1d",
    "l1_loss",
    "l2_loss",
    "low_frequency_l2_loss",
    "total_variation",
]

PADDING_MODES = ("reflect", "replicate", "zeros", "circular")
TV_KINDS = ("anisotropic", "isotropic", "squared")


def _check_pair(pred: object, target: object) -> tuple[Tensor, Tensor]:
    pred = check_tensor("pred", pred)
    target = check_tensor("target", target)
    check_same_shape(pred, target)
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on the same device, got {pred.device} and {target.device}; "
            f"move one with .to(other.device)"
        )
    return pred, target


def _difference(pred: Tensor, target: Tensor) -> Tensor:
    dtype = compute_dtype(pred)
    return pred.to(dtype) - target.to(dtype)


def _per_sample_mean(values: Tensor) -> Tensor:
    return values.flatten(1).mean(dim=1)


# ------------------------------------------------------------------------------------------ L1 and L2


@legacy_arguments(positional=("reduction",))
@float32_compute
def l1_loss(pred: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean absolute error: per sample ``mean_{c,h,w} |pred − target|`` (shape N before reduction).

    Args:
        pred: N×C×H×W. target: N×C×H×W or 1×C×H×W (broadcast over the batch).
        reduction: "mean" (over the batch), "sum" or "none" (shape N).
    """
    check_reduction(reduction)
    pred, target = _check_pair(pred, target)
    return _reduce(_per_sample_mean(_difference(pred, target).abs()), reduction)


@legacy_arguments(positional=("reduction",))
@float32_compute
def l2_loss(pred: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean squared error: per sample ``mean_{c,h,w} (pred − target)²`` (shape N before reduction).

    Args as :func:`l1_loss`.
    """
    check_reduction(reduction)
    pred, target = _check_pair(pred, target)
    return _reduce(_per_sample_mean(_difference(pred, target).square()), reduction)


# --------------------------------------------------------------------------------------- low frequency


def _blur(x: Tensor, kernel: Tensor, padding: str) -> Tensor:
    """Separable blur of N×C×H×W ``x`` (already in the compute dtype) with the 1-D ``kernel``: the one
    implementation, :func:`featstat.ops.separable_blur` (:func:`gaussian_kernel1d` is ``featstat.ops``'s)."""
    return separable_blur(x, kernel, padding)


_check_blur_args = check_padding  # padding name and reflect-size check, shared with featstat.ops


@float32_compute
def gaussian_blur(x: Tensor, kernel_size: int = 21, sigma: float = 3.0, padding: str = "reflect") -> Tensor:
    """Blur each channel of N×C×H×W ``x`` with a ``kernel_size``² Gaussian of std ``sigma`` (separable).

    ``padding``: "reflect" (default; mirror without repeating the edge pixel, scipy's mode "mirror"),
    "replicate" (scipy "nearest"), "zeros" (scipy "constant") or "circular" (scipy "wrap"). Returns the
    compute dtype (float32 for half inputs).
    """
    x = check_tensor("x", x)
    kernel = gaussian_kernel1d(kernel_size, sigma, dtype=torch.float64)
    _check_blur_args(x, kernel_size, padding, "x")
    return _blur(x.to(compute_dtype(x)), kernel, padding)


@legacy_arguments(positional=("reduction", "padding"))
@float32_compute
def low_frequency_l2_loss(
    pred: Tensor,
    target: Tensor,
    kernel_size: int = 21,
    sigma: float = 3.0,
    *,
    reduction: str = "mean",
    padding: str = "reflect",
) -> Tensor:
    """Low-frequency L2: mean squared error between Gaussian-blurred ``pred`` and ``target``.

    Per sample ``mean_{c,h,w} (g ∗ pred − g ∗ target)²`` with g a ``kernel_size``×``kernel_size`` Gaussian of
    standard deviation ``sigma`` (default 21×21, σ = 3: the contextual-loss paper's SR and surface-normal
    recipes, eq. 11 there, ``‖G(s)^LF − y^LF‖``; we use the mean of squares, like :func:`l2_loss`, so the
    weight does not depend on the image size). By linearity the blur is applied once, to the difference.

    Args:
        pred: N×C×H×W. target: N×C×H×W or 1×C×H×W. Same shape (pointwise loss).
        kernel_size: odd number of taps; sigma: in pixels.
        reduction: "mean", "sum" or "none" (shape N).
        padding: border handling of the blur (see :func:`gaussian_blur`); "reflect" needs H, W >
            kernel_size//2.
    """
    check_reduction(reduction)
    pred, target = _check_pair(pred, target)
    kernel = gaussian_kernel1d(kernel_size, sigma, dtype=torch.float64)
    _check_blur_args(pred, kernel_size, padding, "pred")
    diff = _difference(pred, target)  # batch of pred (a target of batch 1 broadcasts)
    return _reduce(_per_sample_mean(_blur(diff, kernel, padding).square()), reduction)


# -------------------------------------------------------------------------------------- total variation


@legacy_arguments(renamed={"x": "pred"}, positional=("reduction",))
@float32_compute
def total_variation(pred: Tensor, kind: str = "anisotropic", *, reduction: str = "mean") -> Tensor:
    """Total variation of N×C×H×W ``pred``, per sample, normalised by C·H·W (0.1 name of ``pred``: ``x``).

    With forward differences (each channel separately)
    ``Δh = pred[:, :, 1:, :] − pred[:, :, :-1, :]`` and ``Δw = pred[:, :, :, 1:] − pred[:, :, :, :-1]``:

    - "anisotropic" (default, L1 TV): ``(Σ|Δh| + Σ|Δw|) / (C·H·W)``;
    - "isotropic": ``Σ_{h<H−1, w<W−1} sqrt(Δh² + Δw²) / (C·H·W)``, the Euclidean norm of the gradient on the
      (H−1)×(W−1) grid where both differences exist (where it is 0 the gradient is taken as 0, so flat regions
      give finite gradients);
    - "squared" (Mahendran & Vedaldi's TV with β = 2): ``(ΣΔh² + ΣΔw²) / (C·H·W)``.

    Multiply by C·H·W for the un-normalised sums. ``reduction``: "mean", "sum" or "none" (shape N).
    """
    check_reduction(reduction)
    pred = check_tensor("pred", pred)
    check_choice("kind", kind, TV_KINDS)
    pred = pred.to(compute_dtype(pred))
    _, c, h, w = pred.shape
    dh = pred[:, :, 1:, :] - pred[:, :, :-1, :]
    dw = pred[:, :, :, 1:] - pred[:, :, :, :-1]
    if kind == "anisotropic":
        tv = dh.abs().flatten(1).sum(1) + dw.abs().flatten(1).sum(1)
    elif kind == "squared":
        tv = dh.square().flatten(1).sum(1) + dw.square().flatten(1).sum(1)
    else:
        grad = torch.stack([dh[:, :, :, :-1], dw[:, :, :-1, :]], dim=0)
        tv = torch.linalg.vector_norm(grad, dim=0).flatten(1).sum(1)  # backward is 0 where the norm is 0
    return _reduce(tv / (c * h * w), reduction)


# ------------------------------------------------------------------------------------------------ modules


@LOSSES.register("l1")
class L1Loss(FeatureLoss):
    """Module form of :func:`l1_loss` (pointwise; pred and target of the same shape)."""

    function = staticmethod(l1_loss)

    pointwise = True

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        return l1_loss(pred, prepared, reduction="none")


@LOSSES.register("l2", "mse")
class L2Loss(FeatureLoss):
    """Module form of :func:`l2_loss` (mean squared error; pointwise)."""

    function = staticmethod(l2_loss)

    pointwise = True

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        return l2_loss(pred, prepared, reduction="none")


@LOSSES.register("low_frequency_l2", "lf_l2")
class LowFrequencyL2Loss(FeatureLoss):
    """Module form of :func:`low_frequency_l2_loss` (21×21, σ = 3 by default).

    ``prepare_target`` blurs the target once (cacheable while the target is fixed); ``compare`` blurs the
    prediction and returns the per-sample mean squared error. The 1-D kernel is a (non-persistent) buffer,
    so it follows ``.to(device)``.
    """

    function = staticmethod(low_frequency_l2_loss)

    pointwise = True

    @legacy_arguments(positional=("reduction", "padding"))
    def __init__(
        self, kernel_size: int = 21, sigma: float = 3.0, *, reduction: str = "mean", padding: str = "reflect"
    ) -> None:
        super().__init__(reduction=reduction)
        self.kernel_size = check_int("kernel_size", kernel_size, low=1, high=MAX_KERNEL_SIZE, odd=True)
        self.sigma = float(sigma)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.register_buffer(
            "kernel", gaussian_kernel1d(kernel_size, sigma, dtype=torch.float64), persistent=False
        )

    def prepare_target(self, target: Tensor) -> Tensor:
        target = check_tensor("target", target)
        _check_blur_args(target, self.kernel_size, self.padding, "target")
        return _blur(target.to(compute_dtype(target)), self.kernel, self.padding)

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        pred, prepared = _check_pair(pred, prepared)
        _check_blur_args(pred, self.kernel_size, self.padding, "pred")
        blurred = _blur(pred.to(compute_dtype(pred)), self.kernel, self.padding)
        return _per_sample_mean((blurred - prepared.to(blurred.dtype)).square())

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, sigma={self.sigma}, padding={self.padding!r}, "
            f"reduction={self.reduction!r}"
        )


@LOSSES.register("total_variation", "tv")
class TotalVariationLoss(FeatureLoss):
    """Module form of :func:`total_variation`; a regulariser on the prediction alone.

    ``forward(pred, target=None)``: ``target`` is accepted so the loss fits the ``(pred, target)`` interface
    of an objective, and is not used.
    """

    function = staticmethod(total_variation)

    needs_target = False

    @legacy_arguments(positional=("reduction",))
    def __init__(self, kind: str = "anisotropic", *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.kind = check_choice("kind", kind, TV_KINDS)

    def prepare_target(self, target: Any) -> None:
        return None

    def compare(self, pred: Tensor, prepared: Any = None) -> Tensor:
        return total_variation(pred, kind=self.kind, reduction="none")

    def forward(self, pred: Tensor, target: Tensor | None = None) -> Tensor:
        check_values("pred", check_tensor("pred", pred, ndim=(2, 3, 4, 5)))
        return _reduce(self.compare(pred), self.reduction)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"
