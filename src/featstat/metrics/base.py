"""The shape every featstat metric takes: a function on tensors and a module holding its configuration.

A metric compares a batch of predictions with a batch of references and returns one value per image (shape N)
before ``reduction``. Each metric class says whether a higher value means "more similar"
(:attr:`Metric.higher_is_better`), which is what tables, the 2AFC harness and the CLI use to rank results.

Precision: half-precision images are computed in float32 and ``torch.autocast`` is off inside a metric's
computation (its functions are decorated with :func:`featstat.losses.base.float32_compute`); the value is
float32. A deep metric's backbone is the exception: it runs under the caller's autocast (see ``deep.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from torch import Tensor, nn

from .._checks import (
    check_image,
    check_reduction,
    check_same_batch,
    check_same_shape,
    check_tensor,
    legacy_arguments,
    reduce,
)

__all__ = ["Metric", "MetricInfo", "check_image_pair"]


class MetricInfo(NamedTuple):
    """A registry entry: the functional form, the module class and the direction of the metric."""

    function: Any
    module: type[Metric]
    higher_is_better: bool


def check_image_pair(
    pred: object,
    target: object,
    *,
    channels: int | None = None,
    same_size: bool = True,
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    """Validate a prediction/reference pair of image batches (N×C×H×W, float, values in [0, 1]).

    ``target`` may have batch size 1 (compared with every prediction). With ``same_size`` the spatial sizes
    must agree (pointwise metrics); distribution metrics pass ``same_size=False``. ``validate`` also checks
    values (finite, in [0, 1]): one device sync each, done once at the public boundary.
    """
    pred = check_tensor("pred", pred, ndim=4, channels=channels)
    target = check_tensor("target", target, ndim=4, channels=channels)
    if validate:  # on detached views: reading values of a tensor that requires grad would warn
        check_image("pred", pred.detach(), channels=channels)
        check_image("target", target.detach(), channels=channels)
    if same_size:
        check_same_shape(pred, target)
    else:
        check_same_batch(pred, target)
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on the same device, got {pred.device} and {target.device}; "
            f"move one with .to(other.device)"
        )
    return pred, target


class Metric(nn.Module):
    """Base class of featstat metrics: ``forward(pred, target)`` = ``reduce(values(pred, target))``.

    Subclasses implement :meth:`values` (one value per image, shape N) and set :attr:`higher_is_better`.
    ``reduction`` is "mean" (default), "sum" or "none" (the N per-image values).
    """

    #: True when larger values mean the prediction is closer to the reference (PSNR, SSIM).
    higher_is_better: ClassVar[bool] = False
    #: True when pred and target must have the same spatial size (pointwise metrics).
    same_size: ClassVar[bool] = True
    #: True for metrics on the features of a backbone (they take ``weights=``; CLI ``--random-weights``).
    backbone: ClassVar[bool] = False
    #: True when ``weights="auto"`` (the best trained features on this machine) suits the metric.
    auto_weights: ClassVar[bool] = False
    #: True for metrics with the SR papers' options ``y_channel`` and ``crop_border``.
    luma_options: ClassVar[bool] = False

    @legacy_arguments(positional=("reduction",))
    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def values(self, pred: Tensor, target: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Per-image values, shape N."""
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return reduce(self.values(pred, target), self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
