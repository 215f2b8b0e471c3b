"""One contract for every registered loss and metric (featstat.registry.LOSSES / METRICS), by parametrisation:
a new statistic that registers itself is checked here with no edit to this file.

Losses (modules built with their defaults, on N×C×H×W feature maps; distribution statistics get a target of
another spatial size, pointwise losses one of the same size):

- the module equals its functional twin (``cls.function``) for every reduction;
- reduction shapes: "none" → one value per sample (N), "mean"/"sum" → scalars that are the mean/sum of those;
- a target of batch 1 is compared with every prediction (the broadcast every loss documents);
- float16/bfloat16 inputs are computed in float32: the result is float32, finite, close to the float32 one;
- bad inputs (NaN, wrong rank, wrong channels) raise ValueError naming the argument;
- gradients reach ``pred`` and are finite (and not all zero).

Metrics (modules and functions on N×3×H×W images in [0, 1]; deep metrics on seeded random weights, which
needs no download): the same checks, where a metric is differentiable for the gradient check.
Every check runs on each device of the ``device`` fixture (CPU; CUDA when present).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch

from featstat.registry import LOSSES, METRICS

N = 3
REDUCTIONS = ("none", "mean", "sum")
HALF = (torch.float16, torch.bfloat16)

LOSS_NAMES = LOSSES.names()
METRIC_NAMES = METRICS.names()


# ----------------------------------------------------------------------------------------------- losses


def _loss_class(name: str) -> Any:
    return LOSSES.get(name)


def _loss_inputs(cls: Any, device: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(N, 4, 12, 12, generator=g)  # 12: above the 21×21 low-frequency blur's radius
    size = (11, 13) if getattr(cls, "distribution_statistic", False) else (12, 12)
    target = torch.rand(N, 4, *size, generator=g)
    return pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


def _call_loss(fn: Callable[..., torch.Tensor], cls: Any, pred: torch.Tensor, target: torch.Tensor, **kw: Any):  # noqa: E501
    return fn(pred, target, **kw) if getattr(cls, "needs_target", True) else fn(pred, **kw)


@pytest.fixture(params=LOSS_NAMES)
def loss_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry_holds_the_core_losses_and_metrics() -> None:
    """The parametrisation is over something (a broken discovery would make every test below vacuous)."""
    assert {"l1", "l2", "gram", "contextual", "projected_distribution", "total_variation"} <= set(LOSS_NAMES)
    assert {"psnr", "ssim", "lpips", "gram", "cx"} <= set(METRIC_NAMES)


def test_loss_module_equals_function(loss_name: str, device: str) -> None:
    cls = _loss_class(loss_name)
    fn = getattr(cls, "function", None)
    assert callable(fn), f"{cls.__name__} declares no functional twin: set `function = staticmethod(...)`"
    pred, target = _loss_inputs(cls, device)
    for reduction in REDUCTIONS:
        module = cls(reduction=reduction).to(device)
        torch.testing.assert_close(
            _call_loss(module, cls, pred, target),
            _call_loss(fn, cls, pred, target, reduction=reduction),
            msg=lambda m, r=reduction: f"{loss_name}, reduction={r}: {m}",
        )


def test_loss_reduction_shapes(loss_name: str, device: str) -> None:
    cls = _loss_class(loss_name)
    pred, target = _loss_inputs(cls, device)
    per = _call_loss(cls(reduction="none").to(device), cls, pred, target)
    assert per.shape == (N,)
    mean = _call_loss(cls(reduction="mean").to(device), cls, pred, target)
    total = _call_loss(cls(reduction="sum").to(device), cls, pred, target)
    assert mean.shape == () and total.shape == ()
    torch.testing.assert_close(mean, per.mean())
    torch.testing.assert_close(total, per.sum())
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="avg")


def test_loss_target_of_batch_one_broadcasts(loss_name: str, device: str) -> None:
    cls = _loss_class(loss_name)
    if not getattr(cls, "needs_target", True):
        pytest.skip(f"{loss_name} takes no target")
    pred, target = _loss_inputs(cls, device)
    one = target[:1]
    module = cls(reduction="none").to(device)
    got = module(pred, one)
    torch.testing.assert_close(got, module(pred, one.expand(N, -1, -1, -1)))
    for i in range(N):
        torch.testing.assert_close(got[i], module(pred[i : i + 1], one)[0])


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_loss_half_inputs_compute_in_float32(loss_name: str, device: str, dtype: torch.dtype) -> None:
    cls = _loss_class(loss_name)
    pred, target = _loss_inputs(cls, device, dtype)
    module = cls(reduction="none").to(device)
    got = _call_loss(module, cls, pred, target)
    assert got.dtype == torch.float32, f"{loss_name} on {dtype} returned {got.dtype}"
    assert bool(torch.isfinite(got).all())
    ref = _call_loss(module, cls, pred.float(), target.float())  # the same (rounded) values in float32
    torch.testing.assert_close(got, ref, rtol=2e-2, atol=2e-3)


def test_loss_bad_inputs_name_the_argument(loss_name: str, device: str) -> None:
    cls = _loss_class(loss_name)
    module = cls().to(device)
    pred, target = _loss_inputs(cls, device)
    needs_target = getattr(cls, "needs_target", True)
    bad_pred = pred.clone()
    bad_pred[1, 0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="pred"):
        _call_loss(module, cls, bad_pred, target)
    with pytest.raises(ValueError, match="pred"):
        _call_loss(module, cls, pred.reshape(-1), target)  # a flat vector: no loss takes one
    if needs_target:
        bad_target = target.clone()
        bad_target[0, 1, 0, 0] = float("inf")
        with pytest.raises(ValueError, match="target"):
            module(pred, bad_target)
        with pytest.raises(ValueError, match="target"):
            module(pred, target[0])
        with pytest.raises(ValueError, match="channel"):
            module(pred, target[:, :3])


def test_loss_gradients_reach_pred(loss_name: str, device: str) -> None:
    cls = _loss_class(loss_name)
    pred, target = _loss_inputs(cls, device, torch.float64)
    pred.requires_grad_(True)
    _call_loss(cls().to(device), cls, pred, target).backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())
    assert bool(pred.grad.abs().sum() > 0), f"{loss_name}: zero gradient"


# ----------------------------------------------------------------------------------------------- metrics

SIZE = 32  # every metric's default fits 32×32 except MS-SSIM's five scales
_SIZES = {"ms_ssim": 176}
#: options that only make a metric cheap enough for a test of its contract (defaults cost ~45 s per call for
#: the patch divergences: a 256² KDE grid over 100 projections, an exact EMD over every patch)
_CHEAP = {"grid_size": 32, "num_projections": 2, "emd_bins": 16, "stride": 4}


def _metric_class(info: Any) -> Any:
    module = info.module
    return module.func if hasattr(module, "func") else module


def _metric_options(name: str) -> dict[str, Any]:
    """Offline: deep metrics on seeded random weights (weights=None), never a download; the patch
    divergences' costly options (:data:`_CHEAP`) turned down where the metric has them."""
    cls = _metric_class(METRICS.get(name))
    params = inspect.signature(cls.__init__).parameters
    options: dict[str, Any] = dict(_CHEAP) if set(_CHEAP) <= set(params) else {}
    if getattr(cls, "backbone", False):
        options["weights"] = None
    return options


def _metric_inputs(name: str, device: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    s = _SIZES.get(name, SIZE)
    pred = torch.rand(N, 3, s, s, generator=g)
    target = (0.7 * pred + 0.3 * torch.rand(N, 3, s, s, generator=g)).clamp(0, 1)  # related, not equal
    return pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


@pytest.fixture(params=METRIC_NAMES)
def metric_name(request: pytest.FixtureRequest) -> str:
    return request.param


def _metric_module(name: str, device: str, **kw: Any) -> torch.nn.Module:
    return METRICS.get(name).module(**_metric_options(name), **kw).to(device)


def test_metric_module_equals_function(metric_name: str, device: str) -> None:
    info = METRICS.get(metric_name)
    pred, target = _metric_inputs(metric_name, device)
    module = _metric_module(metric_name, device)
    for reduction in REDUCTIONS:
        module.reduction = reduction  # one build (a deep metric's backbone) for the three reductions
        torch.testing.assert_close(
            module(pred, target),
            info.function(pred, target, **_metric_options(metric_name), reduction=reduction),
            msg=lambda m, r=reduction: f"{metric_name}, reduction={r}: {m}",
        )


def test_metric_reduction_shapes(metric_name: str, device: str) -> None:
    info = METRICS.get(metric_name)
    pred, target = _metric_inputs(metric_name, device)
    opts = _metric_options(metric_name)
    per = info.function(pred, target, **opts, reduction="none")
    assert per.shape == (N,)
    mean = info.function(pred, target, **opts, reduction="mean")
    total = info.function(pred, target, **opts, reduction="sum")
    assert mean.shape == () and total.shape == ()
    torch.testing.assert_close(mean, per.mean())
    torch.testing.assert_close(total, per.sum())
    params = inspect.signature(_metric_class(info).__init__).parameters
    assert params["reduction"].kind is inspect.Parameter.KEYWORD_ONLY


def test_metric_target_of_batch_one_broadcasts_or_is_refused(metric_name: str, device: str) -> None:
    """A reference of batch 1 is compared with every prediction, or refused with a ValueError naming it."""
    module = _metric_module(metric_name, device, reduction="none")
    pred, target = _metric_inputs(metric_name, device)
    one = target[:1]
    try:
        got = module(pred, one)
    except ValueError as err:
        assert "target" in str(err) or "batch" in str(err), err
        return
    torch.testing.assert_close(got, module(pred, one.expand(N, -1, -1, -1)))


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_metric_half_inputs_compute_in_float32(metric_name: str, device: str, dtype: torch.dtype) -> None:
    module = _metric_module(metric_name, device, reduction="none")
    pred, target = _metric_inputs(metric_name, device, dtype)
    got = module(pred, target)
    assert got.dtype == torch.float32, f"{metric_name} on {dtype} returned {got.dtype}"
    assert bool(torch.isfinite(got).all())
    ref = module(pred.float(), target.float())
    torch.testing.assert_close(got, ref, rtol=2e-2, atol=2e-2)


def test_metric_bad_inputs_name_the_argument(metric_name: str, device: str) -> None:
    module = _metric_module(metric_name, device)
    pred, target = _metric_inputs(metric_name, device)
    for arg in ("pred", "target"):
        bad = {"pred": pred.clone(), "target": target.clone()}
        bad[arg][0, 0, 1, 1] = float("nan")
        with pytest.raises(ValueError, match=arg):
            module(bad["pred"], bad["target"])
        short = {"pred": pred, "target": target, arg: (pred if arg == "pred" else target)[0]}
        with pytest.raises(ValueError, match=arg):
            module(short["pred"], short["target"])
    with pytest.raises(ValueError, match=r"channel|shape"):
        module(pred, target[:, :2])  # the channels of pred and target disagree


def test_metric_gradients_are_finite_where_differentiable(metric_name: str, device: str) -> None:
    module = _metric_module(metric_name, device)
    pred, target = _metric_inputs(metric_name, device)
    pred = pred.clone().requires_grad_(True)
    value = module(pred, target)
    if not value.requires_grad:
        pytest.skip(f"{metric_name} is not differentiable (histograms, ranks or thresholds)")
    value.backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())
