"""Contextual loss (CX), its bilateral variant (CoBi) and the Chamfer distance baseline.

Mechrez, Talmi, Zelnik-Manor, "The Contextual Loss for Image Transformation with Non-Aligned Data"
(ECCV 2018) and "Maintaining Natural Image Statistics with the Contextual Loss" (ACCV 2018), eqs. 8–10.
Features x (prediction, N points) and y (target, M points) are the spatial positions of N×C×H×W maps;
the two maps may have different sizes.

    cosine:  d_ij = (1 − cos(x_i − μ_y, y_j − μ_y)) / 2          μ_y = mean of the target's features
    l2:      d_ij = ‖x_i − y_j‖²
    d̃_ij = d_ij / (min_k d_ik + 1e-5)
    A_ij = exp((1 − d̃_ij)/h) / Σ_l exp((1 − d̃_il)/h)             (the paper writes exp(1 − d̃/h); after
                                                                   normalisation over l both are identical)
    CX(x, y) = (1/M) Σ_j max_i A_ij ∈ (0, 1],    loss = −log CX

Bilateral CX (Zhang et al., "Zoom to Learn, Learn to Zoom", CVPR 2019) adds a spatial term to the
distance: d_ij + w_s · ‖p_i − q_j‖²/2 with positions p, q normalised to [0, 1] on each map.

Chamfer (eq. 10): CD(x, y) = (1/N) Σ_i min_j d_ij (asymmetric; ``symmetric=True`` adds CD(y, x)).

Memory: the N×M matrices are never formed whole (see ``_cx_kernel``): peak extra memory is a few
buffers of ``chunk_size`` elements, so 128×128 maps (16,384² pairs) run without the papers' 65×65
sampling. Sampling stays available (``sample_size``) to reproduce the papers' setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    check_choice,
    check_int,
    check_number,
    check_positive,
    check_reduction,
    check_same_batch,
    check_same_device,
    check_tensor,
    compute_dtype,
    legacy_arguments,
    make_generator,
    reduce,
)
from ..features.sampling import sample_positions
from ..registry import LOSSES
from ._cx_kernel import contextual_column_max, nearest_rows
from .base import FeatureLoss, float32_compute

DISTANCES = ("cosine", "l2")
#: elements per N×M chunk: 16 MiB in float32. 2²² rather than 2²⁰: with another process on the cores, two
#: threads over many small chunks slowed 128²×256 fwd+bwd to 19.9 s (11.4 s with 2²², 8.5 s on one thread);
#: the extra peak memory is ~100 MiB (benchmarks/results/cx-chunks-under-load.json)
DEFAULT_CHUNK = 1 << 22
#: Smallest bandwidth: the kernel's 1/(h·(min d + 1e-5)) must stay finite in float32 (h = 1e-40 gave NaN).
MIN_BANDWIDTH = 1e-6


def _check_bandwidth(bandwidth: object) -> float:
    return check_number(
        "bandwidth", bandwidth, low=MIN_BANDWIDTH, hint="the papers use 0.1 (SR) to 0.5 (style); smaller "
        "values overflow float32 in exp((1 - d/min d)/h)"
    )


def _check_chunk_size(chunk_size: object) -> int:
    return check_int("chunk_size", chunk_size, low=1)


_XY = {"x": "pred", "y": "target"}


@dataclass
class ContextualTarget:
    """A target prepared once: the target's mean feature and its augmented rows (B×M×K')."""

    mean: Tensor  # B×1×C, μ_y (zeros when the distance needs no centring)
    rows: Tensor  # B×M×K'
    distance: str
    spatial_weight: float
    size: tuple[int, int]  # H, W of the target map


def _points(f: Tensor) -> Tensor:
    """N×C×H×W → N×(H·W)×C in the compute dtype (float32 for half inputs)."""
    return f.flatten(2).transpose(1, 2).to(compute_dtype(f))


def _positions(h: int, w: int, like: Tensor) -> Tensor:
    """(H·W)×2 pixel-centre coordinates normalised to (0, 1), row-major like ``_points``."""
    ys = (torch.arange(h, device=like.device, dtype=like.dtype) + 0.5) / h
    xs = (torch.arange(w, device=like.device, dtype=like.dtype) + 0.5) / w
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def _augment(feat: Tensor, const: Tensor, pos: Tensor | None, pos_scale: float, side: str) -> Tensor:
    """Rows [feat, a, 1, pos] (prediction side) or [feat, 1, b, pos] (target side) so d = X·Y."""
    b, n, _ = feat.shape
    one = torch.ones(b, n, 1, dtype=feat.dtype, device=feat.device)
    cols = [feat, const.unsqueeze(-1), one] if side == "pred" else [feat, one, const.unsqueeze(-1)]
    if pos is not None:
        cols.append((pos_scale * pos).expand(b, -1, -1))
    return torch.cat(cols, dim=-1)


def _check_pair(pred: Tensor, target: Tensor) -> None:
    check_tensor("pred", pred, ndim=4)
    check_tensor("target", target, ndim=4)
    check_same_batch(pred, target, names=("pred", "target"))


@legacy_arguments(renamed={"y": "target"})
@float32_compute
def prepare_contextual_target(
    target: Tensor, distance: str = "cosine", spatial_weight: float = 0.0
) -> ContextualTarget:
    """Centre (cosine: and normalise) the target's features once; reusable for many predictions."""
    check_tensor("target", target, ndim=4)
    check_choice("distance", distance, DISTANCES)
    check_positive("spatial_weight", spatial_weight, allow_zero=True)
    pts = _points(target)
    mean = pts.mean(dim=1, keepdim=True)
    centred = pts - mean
    pos = _positions(target.shape[2], target.shape[3], pts) if spatial_weight else None
    if distance == "cosine":
        feat, const = F.normalize(centred, dim=-1, eps=1e-12), torch.zeros_like(pts[..., 0])
    else:
        feat, const = centred, centred.square().sum(-1)
    if pos is not None:
        const = const + 0.5 * spatial_weight * pos.square().sum(-1)
    rows = _augment(feat, const, pos, 1.0, "target")
    return ContextualTarget(mean, rows, distance, float(spatial_weight), (target.shape[2], target.shape[3]))


def _prediction_rows(x: Tensor, target: ContextualTarget) -> Tensor:
    pts = _points(x)
    centred = pts - target.mean.to(pts.dtype)
    w = target.spatial_weight
    pos = _positions(x.shape[2], x.shape[3], pts) if w else None
    if target.distance == "cosine":
        feat = -0.5 * F.normalize(centred, dim=-1, eps=1e-12)
        const = torch.full_like(pts[..., 0], 0.5)
    else:
        feat, const = -2.0 * centred, centred.square().sum(-1)
    if pos is not None:
        const = const + 0.5 * w * pos.square().sum(-1)
    return _augment(feat, const, pos, -w, "pred")


def _select_rows(rows: Tensor, index: Tensor | None) -> Tensor:
    return rows if index is None else rows[:, index]


@legacy_arguments(renamed={**_XY, "x_index": "pred_index", "y_index": "target_index"})
@float32_compute
def contextual_similarity(
    pred: Tensor,
    target: Tensor | ContextualTarget,
    bandwidth: float = 0.1,
    distance: str = "cosine",
    *,
    spatial_weight: float = 0.0,
    chunk_size: int = DEFAULT_CHUNK,
    pred_index: Tensor | None = None,
    target_index: Tensor | None = None,
) -> Tensor:
    """CX(pred, target) ∈ (0, 1] per sample (shape N); 1: every target feature has a distinct close match.

    pred: N×C×H×W prediction features; target: N×C×H'×W' (or 1×C×H'×W') target features, or a
    :class:`ContextualTarget` from :func:`prepare_contextual_target`. ``pred_index``/``target_index``
    optionally select flat spatial positions (the papers' random sampling). Computed in float32 for half
    inputs. (0.1 names: ``x``, ``y``, ``x_index``, ``y_index``; still accepted, with a DeprecationWarning.)
    """
    _check_bandwidth(bandwidth)
    _check_chunk_size(chunk_size)
    if isinstance(target, ContextualTarget):
        check_tensor("pred", pred, ndim=4)
        prepared = target
        if prepared.rows.shape[0] not in (1, pred.shape[0]):
            raise ValueError(
                f"the prepared target has batch size {prepared.rows.shape[0]} but pred has shape "
                f"{tuple(pred.shape)}; the target batch must be 1 or N"
            )
        check_same_device(pred, prepared.rows, names=("pred", "the prepared target"))
        if prepared.rows.shape[-1] - 2 - (2 if prepared.spatial_weight else 0) != pred.shape[1]:
            raise ValueError(
                f"pred has {pred.shape[1]} channels but the prepared target was built for others"
            )
    else:
        _check_pair(pred, target)
        prepared = prepare_contextual_target(target, distance, spatial_weight)
    xr = _select_rows(_prediction_rows(pred, prepared), pred_index)
    yr = _select_rows(prepared.rows, target_index)
    return contextual_column_max(xr, yr.to(xr.dtype), float(bandwidth), chunk_size).mean(dim=1)


@legacy_arguments(renamed=_XY, positional=("reduction",))
@float32_compute
def contextual_loss(
    pred: Tensor,
    target: Tensor,
    bandwidth: float = 0.1,
    distance: str = "cosine",
    *,
    reduction: str = "mean",
    spatial_weight: float = 0.0,
    chunk_size: int = DEFAULT_CHUNK,
) -> Tensor:
    """Contextual loss −log CX(pred, target) on feature maps (Mechrez et al. 2018, eq. 8).

    Args:
        pred: prediction features N×C×H×W (any float dtype; half types are computed in float32).
        target: target features N×C×H'×W' or 1×C×H'×W'; H'×W' may differ from H×W.
        bandwidth: h > 0; 0.1 in the SR/non-aligned papers, 0.5 is common for style.
        distance: "cosine" (features centred on the target's mean) or "l2" (squared Euclidean).
        reduction: "mean", "sum" or "none" (one value per sample, ≥ 0, 0 when pred equals target).
        spatial_weight: w_s > 0 gives the bilateral loss (CoBi), typically 0.1.
        chunk_size: elements of the N×M matrices processed at once (memory/speed trade-off).

    0.1 names ``x``, ``y`` and a positional ``reduction`` still work, with a DeprecationWarning.
    """
    check_reduction(reduction)
    cx = contextual_similarity(
        pred, target, bandwidth, distance, spatial_weight=spatial_weight, chunk_size=chunk_size
    )
    return reduce(-torch.log(cx), reduction)


@legacy_arguments(renamed=_XY, positional=("reduction",))
@float32_compute
def bilateral_contextual_loss(
    pred: Tensor,
    target: Tensor,
    bandwidth: float = 0.1,
    spatial_weight: float = 0.1,
    distance: str = "cosine",
    *,
    reduction: str = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> Tensor:
    """Bilateral contextual loss (CoBi): :func:`contextual_loss` with distance d_ij + w_s·‖p_i − q_j‖²/2."""
    check_positive("spatial_weight", spatial_weight)
    return contextual_loss(
        pred, target, bandwidth, distance, reduction=reduction, spatial_weight=spatial_weight,
        chunk_size=chunk_size,
    )


@legacy_arguments(renamed=_XY, positional=("reduction",))
@float32_compute
def chamfer_distance(
    pred: Tensor,
    target: Tensor,
    distance: str = "cosine",
    *,
    reduction: str = "mean",
    symmetric: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> Tensor:
    """Chamfer distance CD(pred, target) = (1/N) Σ_i min_j d_ij (contextual-loss paper, eq. 10).

    Same distances and shapes as :func:`contextual_loss`; ``symmetric`` adds CD(target, pred) computed with
    the same (target-centred) features. The nearest neighbours are found chunk by chunk without gradient,
    then the chosen distances are recomputed with autograd, so the gradient is exact and memory bounded.
    """
    check_reduction(reduction)
    _check_pair(pred, target)
    _check_chunk_size(chunk_size)
    prepared = prepare_contextual_target(target, distance)
    xr, yr = _prediction_rows(pred, prepared), prepared.rows
    yr = yr.to(xr.dtype).expand(xr.shape[0], -1, -1)
    nn_of_x = nearest_rows(xr, yr, chunk_size)
    d = (xr * torch.gather(yr, 1, nn_of_x[..., None].expand(-1, -1, yr.shape[-1]))).sum(-1)
    values = d.clamp_min(0).mean(dim=1)
    if symmetric:
        # Swap roles: rows of target as queries. d_ij = X_i·Y_j is symmetric in which side we scan from.
        nn_of_y = nearest_rows(yr, xr, chunk_size)
        d_y = (yr * torch.gather(xr, 1, nn_of_y[..., None].expand(-1, -1, xr.shape[-1]))).sum(-1)
        values = values + d_y.clamp_min(0).mean(dim=1)
    return reduce(values, reduction)


def _sample_index(
    h: int, w: int, size: int, generator: torch.Generator, device: torch.device
) -> Tensor | None:
    """Flat indices of size×size random positions, or None (every position) when the map is that small."""
    if h * w <= size * size:
        return None
    return sample_positions(h, w, size * size, generator).to(device)


@LOSSES.register("contextual", "cx")
class ContextualLoss(FeatureLoss):
    """Contextual loss module (cosine or L2 distance, optional bilateral term and random sampling).

    ``prepare_target`` centres and normalises the target's features once, so a fixed target is
    processed once per run. ``sample_size`` (e.g. 65, the papers' 65×65) compares random subsets of
    positions, drawn from a generator seeded with ``seed`` (the same positions in pred and target when
    their maps have equal size, as in the papers' code); None (default) uses every position.
    """

    function = staticmethod(contextual_loss)

    distribution_statistic = True

    def __init__(
        self,
        bandwidth: float = 0.1,
        distance: str = "cosine",
        *,
        spatial_weight: float = 0.0,
        sample_size: int | None = None,
        seed: int | torch.Generator = 0,
        chunk_size: int = DEFAULT_CHUNK,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.bandwidth = _check_bandwidth(bandwidth)
        self.distance = check_choice("distance", distance, DISTANCES)
        self.spatial_weight = check_positive("spatial_weight", spatial_weight, allow_zero=True)
        if sample_size is not None:
            check_int("sample_size", sample_size, low=1, high=1 << 15)
        self.sample_size = sample_size
        self.chunk_size = _check_chunk_size(chunk_size)
        self._generator = make_generator(seed)

    def get_extra_state(self) -> dict:
        """The sampling generator's state, so a checkpointed module resumes the same random positions."""
        return {"generator": self._generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._generator.set_state(state["generator"])

    def prepare_target(self, target: Tensor) -> ContextualTarget:
        return prepare_contextual_target(target, self.distance, self.spatial_weight)

    def compare(self, pred: Tensor, prepared: ContextualTarget) -> Tensor:
        xi = yi = None
        if self.sample_size is not None:
            h, w = prepared.size
            yi = _sample_index(h, w, self.sample_size, self._generator, pred.device)
            same = (pred.shape[2], pred.shape[3]) == (h, w)
            xi = (
                yi
                if same
                else _sample_index(
                    pred.shape[2], pred.shape[3], self.sample_size, self._generator, pred.device
                )
            )
        cx = contextual_similarity(
            pred, prepared, self.bandwidth, chunk_size=self.chunk_size, pred_index=xi, target_index=yi
        )
        return -torch.log(cx)

    def extra_repr(self) -> str:
        return (
            f"bandwidth={self.bandwidth}, distance={self.distance!r}, spatial_weight={self.spatial_weight}, "
            f"sample_size={self.sample_size}, reduction={self.reduction!r}"
        )


@LOSSES.register("chamfer")
class ChamferLoss(FeatureLoss):
    """Chamfer distance module (see :func:`chamfer_distance`)."""

    function = staticmethod(chamfer_distance)

    distribution_statistic = True

    def __init__(self, distance: str = "cosine", *, symmetric: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.distance = check_choice("distance", distance, DISTANCES)
        self.symmetric = symmetric

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        return chamfer_distance(pred, prepared, self.distance, reduction="none", symmetric=self.symmetric)
