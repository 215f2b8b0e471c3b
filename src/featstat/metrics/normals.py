"""Angular-error statistics of surface-normal maps (contextual-loss paper, Table 2; Wang et al. 2015).

For predicted and ground-truth normal maps, the per-pixel angular error is the angle between the two
vectors, in degrees. The statistics reported by the papers are: mean, median and RMSE of the error (lower is
better) and the percentage of pixels with an error under 11.25°, 22.5° and 30° (higher is better).

Conventions:

- Normal maps are N×3×H×W tensors of vectors (x, y, z); they need not be unit length (each is normalised).
  ``encoded=True`` takes images in [0, 1] storing ``(n + 1) / 2`` (the usual normal-map PNG) and decodes
  them with ``2·v − 1`` first.
- The angle is ``atan2(‖a × b‖, a · b)``, equal to ``arccos`` of the cosine but accurate for small angles.
- Valid pixels: those where ``mask`` (N×1×H×W or N×H×W, bool or values > 0.5) is true, and where the
  ground-truth vector is not zero (datasets mark missing normals with zeros). A zero predicted vector has
  no direction: it counts as the maximal error, 180° (``atan2(0, 0) = 0`` would otherwise score a blank
  prediction as perfect).
- Per image (default) or ``pooled=True``: statistics over all valid pixels of the batch at once, as the
  papers' tables do for a test set.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .._checks import check_choice, check_finite, check_reduction, check_tensor, compute_dtype, reduce
from ..losses.base import float32_compute
from .base import Metric

__all__ = ["ANGULAR_STATISTICS", "AngularError", "angular_error", "angular_error_stats", "angular_statistic"]

#: statistic name → higher is better
ANGULAR_STATISTICS: dict[str, bool] = {
    "mean": False,
    "median": False,
    "rmse": False,
    "11.25": True,
    "22.5": True,
    "30": True,
}


def _check_normals(name: str, x: object, encoded: bool) -> Tensor:
    x = check_tensor(name, x, ndim=4, channels=3)
    check_finite(name, x)
    if encoded:
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"{name} must hold values in [0, 1] with encoded=True (normal-map images), got range "
                f"[{lo:.4g}, {hi:.4g}]; pass encoded=False for raw normal vectors"
            )
        x = 2 * x - 1
    return x


@float32_compute
def angular_error(pred: Tensor, target: Tensor, *, encoded: bool = False) -> Tensor:
    """Per-pixel angle between predicted and ground-truth normals, in degrees, shape N×H×W (in [0, 180]).

    ``pred``, ``target``: N×3×H×W normal vectors (target batch 1 broadcasts), or encoded normal-map images in
    [0, 1] with ``encoded=True``. Differentiable except where the vectors are parallel or zero. A zero
    predicted vector gets 180° (the maximal error).
    """
    p = _check_normals("pred", pred, encoded)
    t = _check_normals("target", target, encoded)
    if t.shape[0] not in (1, p.shape[0]) or t.shape[1:] != p.shape[1:]:
        raise ValueError(
            f"pred and target must have the same shape (target batch 1 broadcasts), got {tuple(p.shape)} and "
            f"{tuple(t.shape)}"
        )
    dtype = compute_dtype(p)
    p, t = p.to(dtype), t.to(dtype)
    cross = torch.linalg.cross(p, t.expand_as(p), dim=1)
    dot = (p * t).sum(dim=1)
    angle = torch.rad2deg(torch.atan2(torch.linalg.vector_norm(cross, dim=1), dot))
    no_direction = (p == 0).all(dim=1)  # a zero-length prediction: invalid, the maximal error
    return angle.masked_fill(no_direction, 180.0)


def _valid_mask(target: Tensor, mask: Tensor | None, shape: torch.Size, encoded: bool) -> Tensor:
    t = 2 * target - 1 if encoded else target
    valid = (t.abs().sum(dim=1) > 0).expand(shape)
    if mask is not None:
        m = check_tensor("mask", mask, ndim=(3, 4), floating=False)
        if m.dim() == 4:
            if m.shape[1] != 1:
                raise ValueError(f"mask must be N×1×H×W or N×H×W, got shape {tuple(m.shape)}")
            m = m[:, 0]
        if m.shape[0] not in (1, shape[0]) or m.shape[1:] != shape[1:]:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not fit normal maps of shape {tuple(shape)}"
            )
        m = m > 0.5 if m.dtype != torch.bool else m
        valid = valid & m.to(valid.device).expand(shape)
    return valid


def _stats(errors: Tensor) -> dict[str, Tensor]:
    """Statistics of a 1-D tensor of angles (degrees)."""
    s = torch.sort(errors).values
    n = s.numel()
    return {
        "mean": s.mean(),
        "median": 0.5 * (s[(n - 1) // 2] + s[n // 2]),
        "rmse": s.square().mean().sqrt(),
        "11.25": 100.0 * (s < 11.25).to(s.dtype).mean(),
        "22.5": 100.0 * (s < 22.5).to(s.dtype).mean(),
        "30": 100.0 * (s < 30.0).to(s.dtype).mean(),
    }


@float32_compute
def angular_error_stats(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    *,
    encoded: bool = False,
    pooled: bool = False,
    reduction: str = "mean",
) -> dict[str, Tensor]:
    """Angular-error statistics: ``{"mean", "median", "rmse"}`` (degrees) and ``{"11.25", "22.5", "30"}``
    (% of pixels under the threshold).

    Args:
        pred, target: N×3×H×W normals (or encoded images with ``encoded=True``); target batch 1 broadcasts.
        mask: optional validity mask N×1×H×W / N×H×W (bool, or values > 0.5 valid).
        pooled: statistics over all valid pixels of the batch (one value each, ``reduction`` ignored) instead
            of per image.
        reduction: per-image values reduced by "mean" (default), "sum" or "none" (shape N).

    The median of an even number of values is the mean of the two middle ones (as NumPy). An image (or, when
    pooled, the batch) with no valid pixel raises a ``ValueError``.
    """
    check_reduction(reduction)
    err = angular_error(pred, target, encoded=encoded)
    valid = _valid_mask(target, mask, err.shape, encoded)
    if pooled:
        if not bool(valid.any()):
            raise ValueError("no valid pixel: the mask is empty or every ground-truth normal is zero")
        return _stats(err[valid])
    per_image: dict[str, list[Tensor]] = {k: [] for k in ANGULAR_STATISTICS}
    for i in range(err.shape[0]):
        v = valid[i]
        if not bool(v.any()):
            raise ValueError(
                f"image {i} has no valid pixel (empty mask or all-zero ground-truth normals); drop it or "
                f"pass "
                f"pooled=True"
            )
        for k, value in _stats(err[i][v]).items():
            per_image[k].append(value)
    return {k: reduce(torch.stack(v), reduction) for k, v in per_image.items()}


class AngularError(Metric):
    """One angular-error statistic as a metric module: ``statistic`` in "mean", "median", "rmse" (degrees,
    lower is better) or "11.25", "22.5", "30" (% of pixels under the threshold, higher is better).

    ``forward(pred, target, mask=None)``; :attr:`higher_is_better` depends on the statistic.
    """

    higher_is_better: ClassVar[bool] = False  # the class default; instances set their own

    def __init__(
        self, statistic: str = "mean", *, encoded: bool = False, pooled: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.statistic = check_choice("statistic", statistic, tuple(ANGULAR_STATISTICS))
        self.higher_is_better = ANGULAR_STATISTICS[self.statistic]  # type: ignore[misc]
        self.encoded, self.pooled = bool(encoded), bool(pooled)

    def values(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        stats = angular_error_stats(pred, target, mask, encoded=self.encoded, pooled=self.pooled,
                                    reduction="none")  # fmt: skip
        return stats[self.statistic]

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        v = self.values(pred, target, mask)
        return v if self.pooled else reduce(v, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"statistic={self.statistic!r}, encoded={self.encoded}, pooled={self.pooled}, "
            f"reduction={self.reduction!r}"
        )


@float32_compute
def angular_statistic(
    pred: Tensor,
    target: Tensor,
    statistic: str = "mean",
    mask: Tensor | None = None,
    *,
    encoded: bool = False,
    pooled: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """One statistic of :func:`angular_error_stats` ("mean", "median", "rmse", "11.25", "22.5" or "30")."""
    check_choice("statistic", statistic, tuple(ANGULAR_STATISTICS))
    return angular_error_stats(pred, target, mask, encoded=encoded, pooled=pooled, reduction=reduction)[
        statistic
    ]
