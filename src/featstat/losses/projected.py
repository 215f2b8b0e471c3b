"""Projected distribution loss (PDL, Delbracio et al.) and sliced Wasserstein distance between feature sets.

The features of one layer, N×C×H×W, are seen per sample as a set of H·W vectors in R^C. They are projected on
K directions (rows of a K×C matrix Θ), and for each direction the 1-D Wasserstein-1 distance between the
empirical distributions of the prediction's and the target's projected values is computed by sorting (PDL
paper eqs. 2–3). The loss is the mean over the K directions (eq. 5 without the pixel term and weight, which
belong to the objective). Projections (PDL paper section 5.8):

- "identity" (Id, the paper's default): the C channels themselves, comparing the marginal distributions;
- "sphere" (RSP): random directions uniform on the unit sphere, i.e. a Monte-Carlo sliced Wasserstein (eq. 4);
- "r2p": each direction a random unit combination (cos θ, sin θ) of two distinct randomly picked channels;
- "rpp": the identity plus a small Gaussian perturbation (scale ``perturbation``, default 0.1), rows
  re-normalised; K a multiple of C stacks several independently perturbed identities.

Spatial sizes may differ between prediction and target: the 1-D distance is then integrated exactly over the
merged quantile grid (see :func:`wasserstein_1d`). Gradients flow through the sort, as with the paper's
``top_k``: the sorting permutation is held fixed in the backward pass.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from .._checks import (
    check_choice,
    check_finite,
    check_int,
    check_positive,
    check_reduction,
    check_same_batch,
    check_tensor,
    compute_dtype,
    legacy_arguments,
    make_generator,
)
from .._checks import reduce as _reduce
from ..registry import LOSSES
from .base import FeatureLoss, bmm32, float32_compute

__all__ = [
    "PROJECTIONS",
    "ProjectedDistributionLoss",
    "SlicedWassersteinLoss",
    "make_projections",
    "projected_distribution_loss",
    "sliced_wasserstein_loss",
    "wasserstein_1d",
]

PROJECTIONS = ("identity", "sphere", "r2p", "rpp")
#: Most directions a projection matrix may have (the papers use ≤ 1024; more is a units mistake).
MAX_PROJECTIONS = 1 << 16


# --------------------------------------------------------------------------------------------- 1-D W1


@functools.lru_cache(maxsize=64)
def _merged_grid_cpu(n: int, m: int) -> tuple[Tensor, Tensor, Tensor]:
    """Indices into sorted u (size n) and v (size m) and the lengths of the merged quantile intervals.

    The quantile functions of the two empirical distributions are step functions with jumps at k/n and l/m.
    On each interval of the merged grid both are constant: evaluate them at the interval's midpoint. Works in
    integers over L = lcm(n, m), so the grid is exact.
    """
    lcm = n * m // math.gcd(n, m)
    points = torch.cat(
        [
            torch.arange(n + 1, dtype=torch.int64) * (lcm // n),
            torch.arange(m + 1, dtype=torch.int64) * (lcm // m),
        ]
    )
    points = torch.unique(points)  # sorted
    left, right = points[:-1], points[1:]
    mid2 = left + right  # 2 × midpoint, in units of 1/L
    iu = (mid2 * n) // (2 * lcm)  # floor(midpoint · n): index of the quantile step of u
    iv = (mid2 * m) // (2 * lcm)
    weights = (right - left).to(torch.float64) / lcm
    return iu, iv, weights


@functools.lru_cache(maxsize=64)
def _merged_grid(n: int, m: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    with torch.inference_mode(False):  # cached: must stay usable by autograd even if first built under it
        iu, iv, w = _merged_grid_cpu(n, m)
        return iu.to(device), iv.to(device), w.to(device=device, dtype=dtype)


def _w1_sorted(us: Tensor, vs: Tensor) -> Tensor:
    """W1 between sorted samples ``us`` (..., n) and ``vs`` (..., m); leading dimensions broadcast."""
    n, m = us.shape[-1], vs.shape[-1]
    if vs.dtype != us.dtype:
        vs = vs.to(us.dtype)
    if n == m:
        return (us - vs).abs().mean(dim=-1)
    iu, iv, w = _merged_grid(n, m, us.device, us.dtype)
    diff = us.index_select(-1, iu) - vs.index_select(-1, iv)
    return diff.abs().matmul(w)


@float32_compute
def wasserstein_1d(u: Tensor, v: Tensor) -> Tensor:
    """Exact Wasserstein-1 distance between 1-D empirical distributions with equal weights (last dimension).

    ``W1 = ∫₀¹ |F⁻¹(t) − G⁻¹(t)| dt`` for the empirical quantile functions F⁻¹ of u (n samples) and G⁻¹ of v
    (m samples). Both are sorted; for n = m this is ``mean |sort(u) − sort(v)|`` (PDL paper eq. 3); for n ≠ m
    the integral is evaluated exactly on the merged grid {k/n} ∪ {l/m}, where both quantile functions are
    constant on each interval (equal to ``scipy.stats.wasserstein_distance``).

    Args:
        u: (..., n), v: (..., m) floating tensors; the leading dimensions broadcast against each other.

    Returns:
        (...) distances, in float32 for half inputs, else the inputs' dtype. Differentiable (through the
        sort).
    """
    u = check_tensor("u", u, ndim=tuple(range(1, 9)))
    v = check_tensor("v", v, ndim=tuple(range(1, 9)))
    if u.device != v.device:
        raise ValueError(f"u and v must be on the same device, got {u.device} and {v.device}")
    dtype = torch.promote_types(compute_dtype(u), compute_dtype(v))
    return _w1_sorted(_sorted(u.to(dtype)), _sorted(v.to(dtype)))


# ------------------------------------------------------------------------------------------ projections


@legacy_arguments(renamed={"generator": "seed"})
def make_projections(
    channels: int,
    kind: str = "sphere",
    count: int | None = None,
    seed: int | torch.Generator | None = None,
    *,
    perturbation: float = 0.1,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A K×C matrix of unit-norm projection directions (rows) for :func:`projected_distribution_loss`.

    Args:
        channels: C, the feature dimension.
        kind: "identity" (K must be C), "sphere" (uniform on the unit sphere: Gaussian rows, normalised),
            "r2p" (two distinct random channels i ≠ j per row, coefficients (cos θ, sin θ), θ uniform in [0,
            2π); needs C ≥ 2) or "rpp" (identity + ``perturbation``·Gaussian, rows normalised; K a multiple of
            C).
        count: K; None means C.
        seed: an int, a ``torch.Generator`` or None (seed 0). Same seed, same matrix: directions are drawn
            in float64 on the generator's device (CPU for seeds) and then moved to ``device``/``dtype``.
            (0.1 name: ``generator=``, still accepted with a DeprecationWarning.)
        perturbation: scale of the "rpp" perturbation (>= 0).
    """
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    check_choice("kind", kind, PROJECTIONS)
    if count is None:
        count = channels
    count = check_int("count (num_projections)", count, low=1, high=MAX_PROJECTIONS)
    perturbation = check_positive("perturbation", perturbation, allow_zero=True)
    g = make_generator(seed)
    gdev = g.device
    c = channels
    if kind == "identity":
        if count != c:
            raise ValueError(
                f"the 'identity' projection has exactly one direction per channel ({c}), got count={count}; "
                f"use num_projections=None, or 'rpp'/'sphere' for more directions"
            )
        w = torch.eye(c, dtype=torch.float64)
    elif kind == "sphere":
        w = torch.randn(count, c, generator=g, device=gdev, dtype=torch.float64)
    elif kind == "r2p":
        if c < 2:
            raise ValueError(
                f"the 'r2p' projection combines two distinct channels and needs channels >= 2, got {c}"
            )
        i = torch.randint(0, c, (count,), generator=g, device=gdev)
        j = (i + torch.randint(1, c, (count,), generator=g, device=gdev)) % c
        theta = torch.rand(count, generator=g, device=gdev, dtype=torch.float64) * (2 * math.pi)
        w = torch.zeros(count, c, device=gdev, dtype=torch.float64)
        rows = torch.arange(count, device=gdev)
        w[rows, i] = torch.cos(theta)
        w[rows, j] = torch.sin(theta)
    else:  # rpp
        if count % c != 0:
            raise ValueError(
                f"the 'rpp' projection stacks perturbed identities: count must be a multiple of "
                f"channels ({c}), got {count}"
            )
        eye = torch.eye(c, dtype=torch.float64, device=gdev).repeat(count // c, 1)
        w = eye + perturbation * torch.randn(count, c, generator=g, device=gdev, dtype=torch.float64)
    w = w / torch.linalg.vector_norm(w, dim=1, keepdim=True).clamp_min(1e-12)
    return w.to(device=device if device is not None else w.device, dtype=dtype)


def _check_projection_matrix(projections: object, channels: int) -> Tensor:
    w = check_tensor("projections", projections, ndim=2)
    check_finite("projections", w)
    if w.shape[1] != channels:
        raise ValueError(
            f"projections must be a K×C matrix with C = {channels} columns (the feature channels), got shape "
            f"{tuple(w.shape)}"
        )
    return w


def _project(x: Tensor, w: Tensor | None) -> Tensor:
    """Projected values of N×C×H×W ``x``: N×K×(H·W) (K = C and no product when ``w`` is None)."""
    dtype = compute_dtype(x)
    feats = x.to(dtype).flatten(2)  # N×C×M
    if w is not None:
        w = w.to(device=x.device, dtype=dtype)
        feats = bmm32(w.expand(feats.shape[0], -1, -1), feats)  # N×K×M
    return feats


def _project_sorted(x: Tensor, w: Tensor | None) -> Tensor:
    """Sorted projected values of ``x``: N×K×(H·W)."""
    return _sorted(_project(x, w))


def _uses_numpy_sort(t: Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


def _argsort(t: Tensor) -> Tensor:
    """Indices sorting ``t`` along its last dimension (NumPy's SIMD sort on CPU, see :func:`_sorted`)."""
    if _uses_numpy_sort(t):
        return torch.from_numpy(np.argsort(t.detach().numpy(), axis=-1))
    return torch.argsort(t.detach(), dim=-1)


def _sorted(t: Tensor) -> Tensor:
    """``t`` sorted along its last dimension; the gradient flows back through the permutation (the paper's
    ``top_k``).

    On CPU, float32/float64 rows are ordered with NumPy's SIMD sort (AVX-512/AVX2 where the CPU has it),
    several times faster than ``torch.sort`` (see BENCHMARKS.md); values are then gathered with autograd.
    Other devices and dtypes use ``torch.sort``.
    """
    if not _uses_numpy_sort(t):
        return torch.sort(t, dim=-1).values
    if not t.requires_grad:
        return torch.from_numpy(np.sort(t.numpy(), axis=-1))
    return torch.gather(t, -1, _argsort(t))


def _w1_to_sorted(values: Tensor, vs: Tensor) -> Tensor:
    """W1 between unsorted ``values`` (N×K×M) and sorted ``vs`` (N'×K×M'), shape N×K.

    For M = M' the k-th smallest value is matched with vs[k] by scattering vs to the positions of the
    values (no gradient needed for that), so the loss is mean |value − matched| and its backward is
    elementwise, with no gather/scatter through autograd. Same value as ``_w1_sorted(sort(values), vs)``.
    """
    if values.shape[-1] != vs.shape[-1] or vs.requires_grad:
        # different sizes, or a target that needs its gradient too: the plain sorted formulation
        return _w1_sorted(_sorted(values), vs)
    vs = vs.to(values.dtype).expand_as(values)
    matched = torch.empty_like(values, requires_grad=False).scatter_(-1, _argsort(values), vs)
    return (values - matched).abs().mean(dim=-1)


# ----------------------------------------------------------------------------------------------- losses


@legacy_arguments(renamed={"x": "pred", "y": "target"}, positional=("reduction", "projections"))
@float32_compute
def projected_distribution_loss(
    pred: Tensor,
    target: Tensor,
    projection: str = "identity",
    num_projections: int | None = None,
    seed: int | torch.Generator | None = 0,
    *,
    reduction: str = "mean",
    projections: Tensor | None = None,
    perturbation: float = 0.1,
) -> Tensor:
    """Projected distribution loss: per sample, the mean over K directions θ_k of W1(θ_kᵀ X, θ_kᵀ Y).

    PDL paper eq. 5 (distribution term): X = {x_p ∈ R^C} are the prediction's feature vectors at the H·W
    positions, Y the target's at H'·W' positions (sizes may differ). With ``projection="identity"`` this is
    the mean over channels of the 1-D W1 between the channel's marginal distributions (the paper's default),
    with "sphere" a sliced Wasserstein-1 distance.

    Args:
        pred: N×C×H×W prediction features. target: N'×C×H'×W' target features, N' ∈ {1, N} (broadcast).
        projection: "identity", "sphere", "r2p" or "rpp" (see :func:`make_projections`).
        num_projections: K; None means C.
        seed: seed or generator for the random directions (the same seed gives the same directions).
        reduction: "mean", "sum" or "none" (shape N).
        projections: an explicit K×C direction matrix; overrides ``projection``, ``num_projections``,
            ``seed``.
        perturbation: scale of the "rpp" perturbation.

    Returns float32 for half inputs, else pred's dtype. For repeated use with a fixed target, the module
    :class:`ProjectedDistributionLoss` draws the directions once and sorts the target once.
    """
    check_reduction(reduction)
    pred = check_tensor("pred", pred)
    target = check_tensor("target", target)
    check_same_batch(pred, target, names=("pred", "target"))
    if pred.device != target.device:
        raise ValueError(f"pred and target must be on the same device, got {pred.device} and {target.device}")
    c = pred.shape[1]
    if projections is not None:
        w: Tensor | None = _check_projection_matrix(projections, c)
    else:
        check_choice("projection", projection, PROJECTIONS)
        if projection == "identity" and num_projections in (None, c):
            w = None  # fast path: no product
        else:
            w = make_projections(
                c,
                projection,
                num_projections,
                seed,
                perturbation=perturbation,
                device=pred.device,
                dtype=compute_dtype(pred),
            )
    return _reduce(_w1_to_sorted(_project(pred, w), _project_sorted(target, w)).mean(dim=-1), reduction)


@legacy_arguments(renamed={"x": "pred", "y": "target"}, positional=("reduction",))
@float32_compute
def sliced_wasserstein_loss(
    pred: Tensor,
    target: Tensor,
    num_projections: int | None = None,
    seed: int | torch.Generator | None = 0,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Sliced Wasserstein-1 distance between feature sets: :func:`projected_distribution_loss` with random
    directions uniform on the sphere (``projection="sphere"``, the PDL paper's RSP; eq. 4 by Monte Carlo)."""
    return projected_distribution_loss(
        pred, target, projection="sphere", num_projections=num_projections, seed=seed, reduction=reduction
    )


@LOSSES.register("projected_distribution", "pdl")
class ProjectedDistributionLoss(FeatureLoss):
    """Module form of :func:`projected_distribution_loss`.

    Projection matrices (K×C) are drawn once per feature channel count C from ``seed`` — at construction for
    ``channels`` when given, otherwise on the first call that sees C — so one module can serve several layers
    (as an :class:`Objective` term over many layers does) and the same seed always gives the same matrix for
    a given C. They are non-persistent buffers (``projections_<C>``, reproducible from the seed) that move
    with ``.to()``; :meth:`projection_matrix` returns them. An explicit ``projections`` matrix fixes C.
    ``projection="identity"`` needs no matrix at all (and no product).

    ``prepare_target(target)`` projects and sorts the target once (N'×K×M', cacheable while the target is
    fixed); ``compare(pred, prepared)`` projects and sorts the prediction and returns one value per sample.
    """

    function = staticmethod(projected_distribution_loss)

    distribution_statistic = True

    projections: Tensor | None

    @legacy_arguments(positional=("reduction",))
    def __init__(
        self,
        projection: str = "identity",
        num_projections: int | None = None,
        seed: int | torch.Generator = 0,
        *,
        reduction: str = "mean",
        channels: int | None = None,
        perturbation: float = 0.1,
        projections: Tensor | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        self.projection = check_choice("projection", projection, PROJECTIONS)
        if num_projections is not None:
            check_int("num_projections", num_projections, low=1, high=MAX_PROJECTIONS)
        self.num_projections = num_projections
        if isinstance(seed, torch.Generator):  # the module stores an int: draw it from the generator
            seed = int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device).item())
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
        self.seed = seed
        self.perturbation = check_positive("perturbation", perturbation, allow_zero=True)
        matrix: Tensor | None = None
        if projections is not None:
            matrix = check_tensor("projections", projections, ndim=2).detach().clone()
            check_finite("projections", matrix)
            if channels is not None and matrix.shape[1] != channels:
                raise ValueError(
                    f"projections has {matrix.shape[1]} columns but channels={channels}; they must agree"
                )
        self.register_buffer("projections", matrix, persistent=False)
        if projections is None and channels is not None:
            self.projection_matrix(channels)  # draw now (validates num_projections against C)

    def projection_matrix(self, channels: int) -> Tensor | None:
        """The K×C direction matrix used for features with ``channels`` channels (None: identity)."""
        if self.projections is not None:
            if self.projections.shape[1] != channels:
                raise ValueError(
                    f"features have {channels} channels but this loss's explicit projection matrix is "
                    f"{tuple(self.projections.shape)} (K×C); was it built for another layer?"
                )
            return self.projections
        if self.projection == "identity" and self.num_projections in (None, channels):
            return None
        name = f"projections_{channels}"
        matrix = getattr(self, name, None)
        if matrix is None:
            with torch.inference_mode(False):  # a normal tensor, usable later with autograd
                matrix = make_projections(
                    channels, self.projection, self.num_projections, self.seed, perturbation=self.perturbation
                )
            self.register_buffer(name, matrix, persistent=False)
        return matrix

    def _matrix(self, x: Tensor) -> Tensor | None:
        c = x.shape[1]
        w = self.projection_matrix(c)
        if w is not None and w.device != x.device and self.projections is None:
            with torch.inference_mode(False):
                w = w.to(x.device)
            setattr(self, f"projections_{c}", w)  # keep it where the features are
        return w

    def prepare_target(self, target: Tensor) -> Tensor:
        target = check_tensor("target", target)
        return _project_sorted(target, self._matrix(target))

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        pred = check_tensor("pred", pred)
        prepared = check_tensor("prepared", prepared, ndim=3)
        w = self._matrix(pred)
        k = pred.shape[1] if w is None else w.shape[0]
        if prepared.shape[1] != k or prepared.shape[0] not in (1, pred.shape[0]):
            raise ValueError(
                f"pred of shape {tuple(pred.shape)} ({k} projections) does not match the prepared "
                f"target of shape {tuple(prepared.shape)} (N×K×positions, batch 1 or N); were they taken "
                f"from the same layer?"
            )
        if prepared.device != pred.device:
            raise ValueError(f"pred is on {pred.device} but the prepared target on {prepared.device}")
        return _w1_to_sorted(_project(pred, w), prepared).mean(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"projection={self.projection!r}, num_projections={self.num_projections}, seed={self.seed}, "
            f"reduction={self.reduction!r}"
        )


@LOSSES.register("sliced_wasserstein", "swd")
class SlicedWassersteinLoss(ProjectedDistributionLoss):
    """Sliced Wasserstein-1 loss: :class:`ProjectedDistributionLoss` with ``projection="sphere"``."""

    function = staticmethod(sliced_wasserstein_loss)

    @legacy_arguments(positional=("reduction",))
    def __init__(
        self,
        num_projections: int | None = None,
        seed: int | torch.Generator = 0,
        *,
        reduction: str = "mean",
        channels: int | None = None,
    ) -> None:
        super().__init__("sphere", num_projections, seed, reduction=reduction, channels=channels)
