"""One contract for every registered loss and metric (featstat.registry.LOSSES / METRICS), by parametrisation:
a new statistic that registers itself is checked here with no edit to this file.

Losses (modules built with their defaults, on N×C×H×W feature maps; distribution statistics get a target of
another spatial size, pointwise losses one of the same size):

- the module equals its functional twin (``cls.function``) for every reduction;
- reduction shapes: "none" → one value per sample (N), "mean"/"sum" → scalars that are the mean/sum of those;
- a target of batch 1 is compared with every prediction (the broadcast every loss documents);
- float16/bfloat16 inputs, and any call inside ``torch.autocast`` (bf16 and fp16), are computed in float32
  (design.md: "half inputs compute in float32"): the result is float32, and value and gradient equal the
  float32 computation on the same (already rounded) values, outside autocast, to float32 round-off
  (:data:`RTOL`); the forward and the backward both run inside the autocast region, as in a training step;
- bad inputs (NaN, wrong rank, wrong channels) raise ValueError naming the argument;
- gradients reach ``pred`` and are finite (and not all zero).

Metrics (modules and functions on N×3×H×W images in [0, 1]; deep metrics on seeded random weights, which
needs no download): the same checks, where a metric is differentiable for the gradient check. Under autocast
a deep metric's backbone runs in the autocast dtype (the caller's choice) and its statistic in float32: its
value equals the float32 statistic of the very features the backbone produced.
Every check runs on each device of the ``device`` fixture (CPU; CUDA when present).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from featstat.registry import LOSSES, METRICS

N = 3
REDUCTIONS = ("none", "mean", "sum")
HALF = (torch.float16, torch.bfloat16)

LOSS_NAMES = LOSSES.names()
METRIC_NAMES = METRICS.names()

#: Relative tolerance of the float32 rule: a half input or an autocast region may change nothing but the
#: float32 round-off of the same computation (other kernels or summation orders), far below 1e-4.
RTOL = 1e-4


def _assert_float32_equal(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    """``got`` is float32 and equals ``ref`` to :data:`RTOL`; the absolute floor (1e-4 of the largest
    entry) only matters for entries far below the others, which carry their round-off."""
    assert got.dtype == torch.float32, f"{what}: {got.dtype}, expected float32"
    atol = RTOL * float(ref.detach().abs().max()) + 1e-30
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=atol, msg=lambda m: f"{what}: {m}")


def _assert_rounded_gradient(got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """The gradient of a half leaf is the float32 gradient rounded once to the leaf's format (the upcast's
    backward): at most half an ulp of ``dtype`` away, hence rtol = eps of ``dtype`` (one ulp, the float32
    round-off of ``ref`` may cross a rounding boundary) and atol = the smallest subnormal of ``dtype``
    (gradients below it round to 0 in float16). Any float16/bfloat16 arithmetic inside the loss would be
    seen: it makes errors of many ulps."""
    assert got.dtype == dtype, f"{what}: gradient {got.dtype}, expected {dtype} (the leaf's)"
    info = torch.finfo(dtype)
    torch.testing.assert_close(got.float(), ref, rtol=info.eps, atol=info.smallest_normal * info.eps,
                               msg=lambda m: f"{what}: {m}")  # fmt: skip


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


#: Configurations beyond the defaults that the autocast check also runs: the contextual loss's memory-bounded
#: kernel over many row chunks (chunk_size far below the 144×143 pairs: 72 and 144 chunks, forward and
#: backward), with the papers' random sampling and the bilateral term; the symmetric Chamfer search.
_MORE_CONFIGS: dict[str, list[dict[str, Any]]] = {
    "contextual": [{"chunk_size": 300}, {"chunk_size": 100, "sample_size": 8, "spatial_weight": 0.1}],
    "chamfer": [{"symmetric": True}],
}


def _guided_gram() -> torch.nn.Module:
    """Gram loss with two fixed soft regions (its guided products are other kernels than the plain Gram's)."""
    from featstat.losses import GuidedGramLoss

    masks = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    return GuidedGramLoss(masks, masks.flip(-1), reduction="none")


#: Modules beyond the registered classes' that the autocast check also runs, by registered name.
_MORE_MODULES: dict[str, list[tuple[str, Callable[[], Any]]]] = {"gram": [("guided", _guided_gram)]}


def _loss_forms(name: str) -> list[tuple[str, Callable[[], Callable[..., torch.Tensor]]]]:
    """(label, factory) of the callables the float32 rule is checked on: the functional twin, the module
    with its defaults and with :data:`_MORE_CONFIGS`. A factory gives a fresh module for every evaluation
    (the same sampled positions for the reference and the checked call)."""
    cls = _loss_class(name)
    forms: list[tuple[str, Callable[[], Callable[..., torch.Tensor]]]] = [
        ("function", lambda: lambda *a: cls.function(*a, reduction="none"))
    ]
    for opts in [{}, *_MORE_CONFIGS.get(name, [])]:
        forms.append((f"module{opts or ''}", lambda o=opts: cls(**o, reduction="none")))
    return forms + _MORE_MODULES.get(name, [])


def _value_and_grad(fn: Callable[..., torch.Tensor], cls: Any, pred: torch.Tensor, target: torch.Tensor):
    """Per-sample values and the gradient of their sum with respect to ``pred`` (a leaf copy of it); the
    backward runs in the caller's context (inside autocast when the call is)."""
    leaf = pred.detach().clone().requires_grad_(True)
    value = _call_loss(fn, cls, leaf, target)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), grad


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_loss_half_inputs_and_autocast_compute_in_float32(
    loss_name: str, device: str, dtype: torch.dtype, one_thread: None
) -> None:
    """Half inputs (outside and inside autocast) and float32 inputs inside ``torch.autocast(dtype)``: float32
    value and gradient equal to the float32 computation outside autocast on the same values."""
    cls = _loss_class(loss_name)
    pred, target = _loss_inputs(cls, device)
    half_pred, half_target = pred.to(dtype), target.to(dtype)
    for label, make in _loss_forms(loss_name):
        what = f"{loss_name} {label} {dtype}"
        ref_value, ref_grad = _value_and_grad(make(), cls, half_pred.float(), half_target.float())
        assert bool(torch.isfinite(ref_value).all()) and bool(ref_grad.abs().sum() > 0), what
        value, grad = _value_and_grad(make(), cls, half_pred, half_target)
        _assert_float32_equal(value, ref_value, f"{what} half inputs: value")
        _assert_rounded_gradient(grad, ref_grad, dtype, f"{what} half inputs")
        with torch.autocast(torch.device(device).type, dtype=dtype):
            value, grad = _value_and_grad(make(), cls, half_pred, half_target)
        _assert_float32_equal(value, ref_value, f"{what} half inputs in autocast: value")
        _assert_rounded_gradient(grad, ref_grad, dtype, f"{what} half inputs in autocast")
        ref_value, ref_grad = _value_and_grad(make(), cls, pred, target)
        with torch.autocast(torch.device(device).type, dtype=dtype):
            value, grad = _value_and_grad(make(), cls, pred, target)
        _assert_float32_equal(value, ref_value, f"{what} float32 inputs in autocast: value")
        _assert_float32_equal(grad, ref_grad, f"{what} float32 inputs in autocast: gradient")


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


def _metric_inputs(
    name: str, device: str, dtype: torch.dtype = torch.float32, seed: int = 0, size: int | None = None
):
    g = torch.Generator().manual_seed(seed)
    s = size or _SIZES.get(name, SIZE)
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


@contextmanager
def _extractor_outputs(module: torch.nn.Module, replay: list[dict[str, torch.Tensor]] | None = None
                       ) -> Iterator[list[dict[str, torch.Tensor]]]:  # fmt: skip
    """Record the backbone's outputs of a deep metric, in call order, or (``replay``) replace them by the
    given ones, so that the statistic can be recomputed on the very features an autocast pass produced."""
    seen: list[dict[str, torch.Tensor]] = []

    def hook(_m: torch.nn.Module, _args: Any, out: dict[str, torch.Tensor]) -> Any:
        seen.append(out)
        return None if replay is None else replay[len(seen) - 1]

    handle = module.extractor.register_forward_hook(hook)  # type: ignore[union-attr]
    try:
        yield seen
    finally:
        handle.remove()


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_metric_half_inputs_and_autocast_compute_in_float32(
    metric_name: str, device: str, dtype: torch.dtype, one_thread: None
) -> None:
    """Half images (outside and inside autocast) and float32 images inside ``torch.autocast(dtype)``: a
    float32 value equal to the float32 computation on the same values outside autocast, for the module and
    the function. Deep metrics: outside autocast half images run through the float32 backbone (the same
    reference); inside, the backbone runs in ``dtype`` and the value equals the float32 statistic of the
    features it produced (recomputed outside autocast from them)."""
    info = METRICS.get(metric_name)
    module = _metric_module(metric_name, device, reduction="none")
    opts = _metric_options(metric_name)
    deep = bool(getattr(_metric_class(info), "backbone", False))
    # deep metrics on small images: a half-precision backbone pass is ~30× slower than float32 on CPUs
    # without native bfloat16 (AlexNet's LPIPS layers need 32×32)
    size = (SIZE if metric_name == "lpips" else 16) if deep else None
    pred, target = _metric_inputs(metric_name, device, size=size)
    half = (pred.to(dtype), target.to(dtype))
    kind = torch.device(device).type
    reference = module(half[0].float(), half[1].float())
    forms = [("module", module), ("function", lambda p, t: info.function(p, t, **opts, reduction="none"))]
    for label, fn in forms[: 1 if deep else 2]:  # a deep functional call builds this same module per call
        what = f"{metric_name} {label} {dtype}"
        _assert_float32_equal(fn(*half), reference, f"{what} half images")
        if deep:
            continue
        with torch.autocast(kind, dtype=dtype):
            got = fn(*half)
        _assert_float32_equal(got, reference, f"{what} half images in autocast")
        with torch.autocast(kind, dtype=dtype):
            got = fn(pred, target)
        _assert_float32_equal(got, fn(pred, target), f"{what} float32 images in autocast")
    if not deep:
        return
    what = f"{metric_name} {dtype}"
    module.objective.clear_cache()  # type: ignore[union-attr]
    with torch.autocast(kind, dtype=dtype), _extractor_outputs(module) as feats:
        got = module(pred, target)
    assert feats and all(f.dtype == dtype for out in feats for f in out.values()), (
        f"{what}: the backbone did not run in the caller's autocast dtype"
    )
    module.objective.clear_cache()  # type: ignore[union-attr]
    with _extractor_outputs(module, [{k: f.float() for k, f in out.items()} for out in feats]):
        ref = module(pred, target)
    _assert_float32_equal(got, ref, f"{what} images in autocast (the float32 statistic of its features)")


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
