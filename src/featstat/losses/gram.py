"""Gram (texture) loss of Gatys et al., optionally guided by region masks.

Conventions (see ``design.md``): for features F of one layer, reshaped to C×M (M = H·W positions),

    G = F Fᵀ / (C·H·W)                                          (C×C, one per sample)
    gram_loss = mean over the C×C entries of (G(x) − G(y))²     (one value per sample)

Relation to the papers: Gatys et al. (and eq. 1 of the texture-transfer SR paper, TSRN) write the per-layer
loss with the *unnormalised* Gram matrix Ĝ = F Fᵀ as E_l = Σ_ij (Ĝ_ij − Â_ij)² / (4 C² M²). Since
G = Ĝ / (C·M), our value is Σ_ij (Ĝ − Â)² / (C⁴ M²) = 4·E_l / C². To reproduce E_l multiply our value by C²/4;
the Improved-Texture-Networks thesis (eq. 2.5) uses ‖Ĝ − Â‖² = our value · C⁴ M². Because G is C×C
whatever the spatial size, x and y may have different H×W.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    check_finite,
    check_reduction,
    check_same_batch,
    check_tensor,
    compute_dtype,
    legacy_arguments,
)
from .._checks import reduce as _reduce
from ..registry import LOSSES
from .base import FeatureLoss, bmm32, float32_compute

__all__ = ["GramLoss", "gram_loss", "gram_matrix", "texture_loss"]

#: Smallest mask weight (in positions) a region's Gram matrix is divided by: empty regions give G = 0.
_MIN_REGION_WEIGHT = 1e-6


def _resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize N×R×h×w guidance masks to the feature map's H×W (antialiased bilinear), in float32 or "
    "float64."""
    m = mask.to(torch.float64 if mask.dtype == torch.float64 else torch.float32)
    if tuple(m.shape[2:]) == tuple(size):
        return m
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False, antialias=True)


def _check_mask(name: str, mask: object, f: Tensor, f_name: str) -> Tensor:
    mask = check_tensor(name, mask, floating=False)
    if mask.dtype == torch.bool or not mask.dtype.is_floating_point:
        mask = mask.float()
    if mask.shape[0] not in (1, f.shape[0]):
        raise ValueError(
            f"{name} batch size must be 1 or equal to {f_name}'s ({f.shape[0]}), got shape "
            f"{tuple(mask.shape)}"
        )
    if mask.device != f.device:
        raise ValueError(
            f"{name} is on {mask.device} but {f_name} on {f.device}; move it with .to({f_name}.device)"
        )
    check_finite(name, mask)  # a NaN weight in a guide would turn the whole Gram matrix into NaN
    return mask


class _SymmetricGram(torch.autograd.Function):
    """F Fᵀ for F of shape N×C×M, with the backward of a symmetric product: ∂L/∂F = (Ḡ + Ḡᵀ) F.

    One batched product in the backward instead of autograd's two (bmm's transposed-operand backward is
    also a slow path on CPU): 2–3× faster forward+backward than ``torch.bmm`` (BENCHMARKS.md).
    """

    @staticmethod
    def forward(ctx, feats: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(feats)
        return torch.bmm(feats, feats.transpose(1, 2))

    @staticmethod
    @float32_compute
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (feats,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), feats)


@float32_compute
def gram_matrix(f: Tensor, mask: Tensor | None = None) -> Tensor:
    """Normalised Gram matrices of feature maps.

    Args:
        f: N×C×H×W features.
        mask: optional N×R×h×w (or 1×R×h×w, shared by the batch) guidance masks with weights in [0, 1], at any
            resolution: they are resized to H×W with antialiased bilinear interpolation (area-like when
            shrinking). Boolean masks are accepted.

    Returns:
        Without mask: N×C×C, ``G = F Fᵀ / (C·H·W)`` with F = f reshaped to N×C×(H·W).
        With masks: N×R×C×C, one guided Gram matrix per region r (Gatys et al. 2017, guided Gram matrices with
        feature-space guidance channels T_r):

            G_r = F diag(T_r) Fᵀ / (C · Σ_p T_r[p])

        i.e. the T_r-weighted mean of f_p f_pᵀ over positions, divided by C. For a binary mask this is the
        Gram matrix of the masked features T_r ∘ F normalised by the region's area instead of the whole map,
        so a region's statistic does not depend on its size; an all-ones mask gives exactly the unmasked G. A
        region with zero weight gives G_r = 0.

    Half-precision features are multiplied in float32 and the result is float32 (else f's dtype).
    """
    f = check_tensor("f", f)
    dtype = compute_dtype(f)
    n, c, h, w = f.shape
    feats = f.to(dtype).reshape(n, c, h * w)
    if mask is None:
        return _SymmetricGram.apply(feats) / (c * h * w)
    mask = _check_mask("mask", mask, f, "f")
    weights = _resize_mask(mask, (h, w)).to(dtype).flatten(2)  # N'×R×M
    weights = weights.expand(n, -1, -1)
    area = weights.sum(dim=-1).clamp_min(_MIN_REGION_WEIGHT)  # N×R
    feats_t = feats.transpose(1, 2)
    # one region at a time: peak memory N×C×M instead of N×R×C×M
    grams = [bmm32(feats * weights[:, k, None, :], feats_t) for k in range(weights.shape[1])]
    return torch.stack(grams, dim=1) / (c * area)[..., None, None]


def _gram_distance(gx: Tensor, gy: Tensor) -> Tensor:
    """Per-sample loss between prepared Gram matrices (N×C×C or N×R×C×C; gy may have batch 1)."""
    gy = gy.to(gx.dtype)
    sq = (gx - gy).square()
    if gx.dim() == 3:
        return sq.flatten(1).mean(dim=1)
    return sq.flatten(2).mean(dim=2).sum(dim=1)  # sum over regions of the per-region mean


@legacy_arguments(
    renamed={"x": "pred", "y": "target", "mask_x": "mask_pred", "mask_y": "mask_target"},
    positional=("reduction", "mask_pred", "mask_target"),
)
@float32_compute
def gram_loss(
    pred: Tensor,
    target: Tensor,
    *,
    reduction: str = "mean",
    mask_pred: Tensor | None = None,
    mask_target: Tensor | None = None,
) -> Tensor:
    """Gram (texture) loss between the features ``pred`` (prediction) and ``target`` of one layer.

    Per sample ``mean_{i,j} (G(pred)_ij − G(target)_ij)²`` with ``G = F Fᵀ/(C·H·W)`` (see
    :func:`gram_matrix`). This is 4·E_l/C² in terms of Gatys' E_l = Σ(Ĝ − Â)²/(4C²M²) with unnormalised
    Ĝ = F Fᵀ and M = H·W (TSRN eq. 1): multiply by C²/4 to get E_l.

    With guidance masks (both ``mask_pred`` for pred and ``mask_target`` for target, N×R×h×w or 1×R×h×w,
    same R): the sum over the R regions of the per-region loss, ``Σ_r mean_{i,j} (G_r(pred) − G_r(target))²``,
    the semantically guided texture loss of TSRN eq. 4. TSRN multiplies the *images* by the masks before the
    network (pixel-space guidance) and normalises every region by the whole map (1/(4C²M²)), so there a region
    weighs with its area squared; we guide in feature space (Gatys' guided Gram matrices, the approach TSRN
    simplifies) and normalise each region by its own area, so small regions count as much as large ones and
    an all-ones mask (R = 1) equals the unmasked loss.

    Args:
        pred: N×C×H×W. target: N'×C×H'×W' with N' ∈ {1, N} (broadcast) and any H', W'.
        reduction: "mean", "sum" or "none" (shape N).
        mask_pred, mask_target: optional guidance masks for pred and target (give both or neither).

    0.1 spellings (``x``, ``y``, ``mask_x``, ``mask_y``, positional ``reduction`` and masks) still work, with
    a DeprecationWarning.
    """
    check_reduction(reduction)
    pred = check_tensor("pred", pred)
    target = check_tensor("target", target)
    check_same_batch(pred, target, names=("pred", "target"))
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on the same device, got {pred.device} and {target.device}"
        )
    if (mask_pred is None) != (mask_target is None):
        missing = "mask_target" if mask_target is None else "mask_pred"
        raise ValueError(
            f"{missing} is missing: give guidance masks for both pred and target (mask_pred, mask_target) "
            "or for neither; "
            f"use a mask of ones to compare a region with the whole of the other map"
        )
    if mask_pred is not None:
        mask_pred = _check_mask("mask_pred", mask_pred, pred, "pred")
        mask_target = _check_mask("mask_target", mask_target, target, "target")
        if mask_pred.shape[1] != mask_target.shape[1]:
            raise ValueError(
                f"mask_pred and mask_target must have the same number of regions (dimension 1), got "
                f"{tuple(mask_pred.shape)} and {tuple(mask_target.shape)}"
            )
    distance = _gram_distance(gram_matrix(pred, mask_pred), gram_matrix(target, mask_target))
    return _reduce(distance, reduction)


@legacy_arguments(renamed={"pred_feats": "pred", "target_feats": "target"}, positional=("reduction",))
def texture_loss(
    pred: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Multi-layer texture loss ``Σ_l w_l · gram_loss(pred[l], target[l])``.

    Args:
        pred, target: layer name → N×C_l×H_l×W_l features (as a feature extractor returns them).
        layer_weights: layer name → weight w_l; the layers used are its keys. None: every layer of
            ``pred`` with weight 1 (Gatys: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1; TSRN: conv2_2,
            conv3_4, conv4_4, conv5_2).
        reduction: "mean", "sum" or "none" (shape N).

    A convenience: :class:`featstat.Objective` does the same with a shared, cached feature pass.
    """
    check_reduction(reduction)
    if not isinstance(pred, Mapping) or not isinstance(target, Mapping):
        raise ValueError(
            "pred and target must be dicts mapping layer names to feature tensors, got "
            f"{type(pred).__name__} and {type(target).__name__}"
        )
    weights = dict(layer_weights) if layer_weights is not None else dict.fromkeys(pred, 1.0)
    if not weights:
        raise ValueError("layer_weights is empty (or pred has no layers); name at least one layer")
    total: Tensor | None = None
    for layer, weight in weights.items():
        for name, feats in (("pred", pred), ("target", target)):
            if layer not in feats:
                raise ValueError(f"{name} has no layer {layer!r}; it has {sorted(feats)}")
        term = float(weight) * gram_loss(pred[layer], target[layer], reduction="none")
        total = term if total is None else total + term
    assert total is not None
    return _reduce(total, reduction)


@LOSSES.register("gram", "texture")
class GramLoss(FeatureLoss):
    """Module form of :func:`gram_loss` for one layer.

    ``prepare_target(target, mask=None)`` computes the target's Gram matrix once (an :class:`Objective` caches
    it while the target is fixed); ``compare(pred, prepared, mask=None)`` computes the prediction's and
    returns the per-sample loss. For guided (masked) Gram losses pass masks to both, or call ``loss(pred,
    target, mask_pred=..., mask_target=...)``.
    """

    function = staticmethod(gram_loss)

    distribution_statistic = True

    def prepare_target(self, target: Tensor, mask: Tensor | None = None) -> Tensor:
        target = check_tensor("target", target)
        return gram_matrix(target, mask)

    def compare(self, pred: Tensor, prepared: Tensor, mask: Tensor | None = None) -> Tensor:
        pred = check_tensor("pred", pred)
        prepared = check_tensor("prepared", prepared, ndim=(3, 4))
        guided = prepared.dim() == 4
        if guided != (mask is not None):
            raise ValueError(
                "mask must be given for pred exactly when the target was prepared with a mask (guided Gram "
                f"loss); prepared target has shape {tuple(prepared.shape)}, mask is "
                f"{'missing' if mask is None else 'given'}"
            )
        c = pred.shape[1]
        if prepared.shape[-1] != c or prepared.shape[0] not in (1, pred.shape[0]):
            raise ValueError(
                f"pred of shape {tuple(pred.shape)} does not match the prepared target Gram matrix of shape "
                f"{tuple(prepared.shape)} (channels must agree, batch must be 1 or N); were they "
                f"taken from the same layer?"
            )
        gx = gram_matrix(pred, mask)
        if guided and gx.shape[1] != prepared.shape[1]:
            raise ValueError(
                f"mask has {gx.shape[1]} regions but the target was prepared with {prepared.shape[1]}"
            )
        return _gram_distance(gx, prepared)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask_pred: Tensor | None = None,
        mask_target: Tensor | None = None,
    ) -> Tensor:
        if (mask_pred is None) != (mask_target is None):
            raise ValueError("give both mask_pred and mask_target, or neither")
        self.check_pair(pred, target)
        return _reduce(
            self.compare(pred, self.prepare_target(target, mask_target), mask_pred), self.reduction
        )


class GuidedGramLoss(GramLoss):
    """:class:`GramLoss` with its guidance masks bound: the guided Gram loss of fixed regions (Gatys et al.
    2017, "Controlling perceptual factors in neural style transfer"; TSRN eq. 4), usable as an
    :class:`~featstat.Objective` term, whose ``prepare_target``/``compare`` take no masks.

    ``mask_pred`` guides the prediction's features and ``mask_target`` the target's: N×R×h×w or 1×R×h×w
    weights in [0, 1] with the same R, at any resolution (resized to each layer, see :func:`gram_matrix`).
    Region r of the prediction is compared only with region r of the target. They are buffers (they move
    with ``.to()``).
    """

    @legacy_arguments(positional=("reduction",))
    def __init__(self, mask_pred: Tensor, mask_target: Tensor, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        mask_pred = check_tensor("mask_pred", mask_pred, ndim=4, floating=False)
        mask_target = check_tensor("mask_target", mask_target, ndim=4, floating=False)
        if mask_pred.shape[1] != mask_target.shape[1]:
            raise ValueError(
                f"mask_pred and mask_target must have the same number of regions (dimension 1), got "
                f"{tuple(mask_pred.shape)} and {tuple(mask_target.shape)}"
            )
        self.register_buffer("mask_pred", mask_pred.float())
        self.register_buffer("mask_target", mask_target.float())

    def prepare_target(self, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return super().prepare_target(target, self.mask_target if mask is None else mask)

    def compare(self, pred: Tensor, prepared: Tensor, mask: Tensor | None = None) -> Tensor:
        return super().compare(pred, prepared, self.mask_pred if mask is None else mask)
