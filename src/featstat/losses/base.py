"""The shape every featstat loss takes.

A loss is three small steps (see ``style.md``):

1. ``prepare_target(target)`` turns the target's features into the statistic the loss compares against
   (a Gram matrix, sorted projections, centred and normalised vectors, ...). The :class:`featstat.Objective`
   caches its result while the target does not change, so this runs once for a fixed target.
2. ``compare(pred, prepared)`` scores the prediction's features against that prepared target and returns
   one value per sample (shape N).
3. ``forward(pred, target)`` = ``reduce(compare(pred, prepare_target(target)), reduction)``.

``pred`` and ``target`` are feature maps N×C×H×W (or images, for pixel losses). A target with batch size 1
is compared with every prediction in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .._checks import (
    check_reduction,
    check_same_batch,
    check_same_shape,
    check_tensor,
    check_values,
    legacy_arguments,
    reduce,
)


class FeatureLoss(nn.Module):
    """Base class: subclasses implement ``compare`` and, when a target statistic is worth caching,
    ``prepare_target``. ``reduction`` (keyword-only) is one of "mean", "sum", "none" (one value per
    sample)."""

    #: True when pred and target must have the same spatial size (pointwise losses).
    pointwise: bool = False
    #: True when the loss compares the *distributions* of feature vectors (positions are samples): it accepts
    #: pred and target of different spatial sizes and can be a texture ``--statistic`` or a deep metric.
    distribution_statistic: bool = False
    #: False for terms on the prediction alone (total variation, diversity): objectives give them no target.
    needs_target: bool = True
    #: The functional twin: ``function(pred, target, reduction=...)`` (``function(pred, reduction=...)`` when
    #: ``needs_target`` is False) equals the module built with default options (the contract test checks it).
    function: Callable[..., Tensor] | None = None

    @legacy_arguments(positional=("reduction",))
    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def prepare_target(self, target: Tensor) -> Any:
        """Statistic of the target's features that ``compare`` needs (default: the features themselves)."""
        return target

    def compare(self, pred: Tensor, prepared: Any) -> Tensor:  # pragma: no cover - abstract
        """Per-sample loss (shape N) of ``pred`` against a prepared target."""
        raise NotImplementedError

    def check_pair(self, pred: object, target: object) -> None:
        """The checks every module form shares with its functional form: tensors, N×C×H×W, float, same
        channels, target batch 1 or N, same device (and same shape for pointwise losses); and, at this public
        boundary only, finite values (one device sync each, skipped when value checks are off:
        :func:`featstat.set_value_checks`). :class:`featstat.Objective` calls ``compare`` directly."""
        check_tensor("pred", pred)
        check_tensor("target", target)
        (check_same_shape if self.pointwise else check_same_batch)(pred, target)  # type: ignore[arg-type]
        check_values("pred", pred)  # type: ignore[arg-type]
        check_values("target", target)  # type: ignore[arg-type]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        self.check_pair(pred, target)
        return reduce(self.compare(pred, self.prepare_target(target)), self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
