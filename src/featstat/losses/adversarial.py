"""Adversarial (GAN) losses on discriminator logits: non-saturating (Goodfellow et al. 2014, as SRGAN uses
it) and least-squares (Mao et al. 2017).

With D(·) the discriminator's logit and σ the logistic function:

=================  ==============================================  ==========================================
kind               discriminator loss                              generator loss
=================  ==============================================  ==========================================
"nonsaturating"    −log σ(D(y)) − log(1 − σ(D(G(s))))              −log σ(D(G(s)))   (SRGAN eq. 6)
                   = softplus(−D(y)) + softplus(D(G(s)))           = softplus(−D(G(s)))
"lsgan"            ½ (D(y) − 1)² + ½ D(G(s))²                      ½ (D(G(s)) − 1)²   (a = 0, b = c = 1)
=================  ==============================================  ==========================================

Logits may be one per image (shape N) or a map (N×…, e.g. a patch discriminator): per-sample values are the
mean over the non-batch dimensions, then ``reduction`` ("mean", "sum", "none"). Computed in float32 for
half-precision logits (softplus is the numerically stable form of the logs).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_reduction, check_tensor, compute_dtype, legacy_arguments
from .._checks import reduce as _reduce
from .base import FeatureLoss, float32_compute

__all__ = [
    "GAN_KINDS",
    "DiscriminatorLoss",
    "GeneratorAdversarialLoss",
    "discriminator_loss",
    "generator_adversarial_loss",
]

GAN_KINDS = ("nonsaturating", "lsgan")


def _logits(name: str, x: object) -> Tensor:
    t = check_tensor(name, x, ndim=(1, 2, 3, 4))
    return t.to(compute_dtype(t))


def _per_sample(values: Tensor) -> Tensor:
    return values if values.dim() == 1 else values.flatten(1).mean(dim=1)


@legacy_arguments(renamed={"fake_logits": "pred"}, positional=("reduction",))
@float32_compute
def generator_adversarial_loss(
    pred: Tensor, kind: str = "nonsaturating", *, reduction: str = "mean"
) -> Tensor:
    """The generator's adversarial loss on the discriminator's logits for generated images (see the table).

    Args:
        pred: D(G(s)), the logits of the prediction, shape N or N×… (0.1 name: ``fake_logits``).
        kind: "nonsaturating" (−log σ(D), SRGAN) or "lsgan" (½(D − 1)²).
        reduction: "mean", "sum" or "none" (shape N).
    """
    check_reduction(reduction)
    check_choice("kind", kind, GAN_KINDS)
    f = _logits("pred", pred)
    values = F.softplus(-f) if kind == "nonsaturating" else 0.5 * (f - 1).square()
    return _reduce(_per_sample(values), reduction)


@legacy_arguments(positional=("reduction",))
@float32_compute
def discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, kind: str = "nonsaturating", *, reduction: str = "mean"
) -> Tensor:
    """The discriminator's loss for logits of real images D(y) and generated images D(G(s)) (same shape).

    The one public loss whose arguments are not ``(pred, target)``: both are predictions of D, of two kinds.

    Minimising it trains D to output large logits (σ → 1; LSGAN: 1) on real images and small ones (σ → 0;
    LSGAN: 0) on generated ones.
    """
    check_reduction(reduction)
    check_choice("kind", kind, GAN_KINDS)
    r = _logits("real_logits", real_logits)
    f = _logits("fake_logits", fake_logits)
    if r.shape != f.shape:
        raise ValueError(
            f"real_logits and fake_logits must have the same shape, got {tuple(r.shape)} and {tuple(f.shape)}"
        )
    if kind == "nonsaturating":
        values = F.softplus(-r) + F.softplus(f)
    else:
        values = 0.5 * (r - 1).square() + 0.5 * f.square()
    return _reduce(_per_sample(values), reduction)


class GeneratorAdversarialLoss(FeatureLoss):
    """Module form of :func:`generator_adversarial_loss`: ``forward(pred)`` (no target)."""

    @legacy_arguments(positional=("reduction",))
    def __init__(self, kind: str = "nonsaturating", *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.kind = check_choice("kind", kind, GAN_KINDS)

    def prepare_target(self, target: object) -> None:
        return None

    def compare(self, pred: Tensor, prepared: object = None) -> Tensor:
        return generator_adversarial_loss(pred, self.kind, reduction="none")

    @legacy_arguments(renamed={"fake_logits": "pred"})
    def forward(self, pred: Tensor, target: object = None) -> Tensor:  # type: ignore[override]
        """``pred``: the discriminator's logits for generated images (0.1 name: ``fake_logits``)."""
        return _reduce(self.compare(pred), self.reduction)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"


class DiscriminatorLoss(FeatureLoss):
    """Module form of :func:`discriminator_loss`: ``forward(real_logits, fake_logits)``."""

    @legacy_arguments(positional=("reduction",))
    def __init__(self, kind: str = "nonsaturating", *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.kind = check_choice("kind", kind, GAN_KINDS)

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        # pred = real logits, prepared = fake logits (the FeatureLoss (pred, target) slot order)
        return discriminator_loss(pred, prepared, self.kind, reduction="none")

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # type: ignore[override]
        return _reduce(self.compare(real_logits, fake_logits), self.reduction)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"
