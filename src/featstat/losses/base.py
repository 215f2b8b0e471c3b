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

Precision (design.md: "modules follow the input; half inputs compute in float32"): every loss and metric body
runs through :func:`float32_compute`. float16/bfloat16 tensors are converted to float32 on entry and
``torch.autocast`` is switched off inside, so a loss given half features, or called inside an autocast
region, returns float32 with the value and gradient of the float32 computation on the same (already rounded)
values. :class:`FeatureLoss` applies it to every subclass's ``forward``, ``prepare_target`` and ``compare``
(the :class:`~featstat.Objective` calls the last two directly, after running the extractor under the caller's
autocast); functional forms and custom autograd ``backward`` methods are decorated with it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
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

_F = TypeVar("_F", bound=Callable[..., Any])
_HALF = (torch.float16, torch.bfloat16)
#: The methods of a FeatureLoss subclass that :func:`float32_compute` wraps (see ``__init_subclass__``).
_FLOAT32_METHODS = ("forward", "prepare_target", "compare")


def _to_float32(value: Any) -> Any:
    return value.float() if isinstance(value, Tensor) and value.dtype in _HALF else value


def _autocast_enabled(kind: str) -> bool:
    """Whether autocast is on for device type ``kind``; False for types autocast does not know ("meta")."""
    try:
        return torch.is_autocast_enabled(kind)
    except RuntimeError:
        return False


def autocast_off(tensors: Iterable[object]) -> contextlib.AbstractContextManager[Any]:
    """A context with ``torch.autocast`` disabled on the device types of ``tensors`` where it is enabled
    (a no-op context, at the cost of one look-up per device type, where it is not)."""
    kinds = {t.device.type for t in tensors if isinstance(t, Tensor)}
    active = [k for k in kinds if _autocast_enabled(k)]
    if not active:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for kind in active:
        stack.enter_context(torch.autocast(device_type=kind, enabled=False))
    return stack


def float32_compute(fn: _F) -> _F:
    """Decorator: run ``fn`` with its float16/bfloat16 tensor arguments (positional or keyword, top level)
    converted to float32 and with autocast off on their devices; float32/float64 arguments are left as they
    are. The conversion is differentiable: a half argument's gradient is the float32 gradient rounded once to
    its own format. Applied twice (a subclass method calling its parent's) it costs one argument scan."""
    if getattr(fn, "_float32_compute", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_to_float32(a) for a in args)
        kwargs = {k: _to_float32(v) for k, v in kwargs.items()}
        with autocast_off((*args, *kwargs.values())):
            return fn(*args, **kwargs)

    wrapper._float32_compute = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class _Bmm(torch.autograd.Function):
    """``torch.bmm`` whose backward also runs with autocast off: autograd's own backward of a product runs
    in the autocast dtype when ``backward()`` is called inside an autocast region (its thread-local state
    applies to every node), which rounds a float32 loss's gradient to bfloat16/float16."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(a, b)
        return torch.bmm(a, b)

    @staticmethod
    @float32_compute
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        a, b = ctx.saved_tensors
        ga = torch.bmm(grad, b.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        gb = torch.bmm(a.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        return ga, gb


@float32_compute
def bmm32(a: Tensor, b: Tensor) -> Tensor:
    """Batched product B×n×k @ B×k×m (operands may be expanded views) in float32 with autocast off, in the
    forward and in the backward (see :class:`_Bmm`): for the products inside a loss body."""
    return _Bmm.apply(a, b)


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's own ``forward``/``prepare_target``/``compare`` computes in float32 with autocast
        off (:func:`float32_compute`), so no loss can forget it."""
        super().__init_subclass__(**kwargs)
        for name in _FLOAT32_METHODS:
            method = cls.__dict__.get(name)
            if callable(method):
                setattr(cls, name, float32_compute(method))

    @legacy_arguments(positional=("reduction",))
    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    @float32_compute
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

    @float32_compute
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        self.check_pair(pred, target)
        return reduce(self.compare(pred, self.prepare_target(target)), self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
