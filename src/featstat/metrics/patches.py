"""Patch-distribution divergences of the contextual-loss paper (Mechrez et al. 2018, sec. 3, Fig. 4).

To compare the distribution of patches of a generated image x with that of its target y, the paper
"generate[s] a random projection of all 5×5 patches onto 2D and fit[s] them using KDE with a Gaussian kernel
in 2D [Botev et al.]. This was repeated for 100 random projections and the scores were averaged over all
projections." Here, per image pair and per projection:

1. every k×k patch (stride 1 by default) of both images, flattened to a vector of C·k² values (channel-major,
   as :class:`featstat.features.PatchExtractor`);
2. a random 2-D projection: a C·k²×2 matrix with orthonormal columns (Gaussian, then QR), the same for both
   images and for every pair (seeded);
3. both point sets are binned on one n×n grid spanning their joint range padded by half of it on each side
   (Botev's default padding; plus 1/(2n) of it, so that the extreme points do not sit on bin edges) and
   smoothed by the diffusion KDE (:mod:`featstat.metrics.kde`), each set with its own bandwidth; densities
   below machine epsilon are raised to it (as the reference code does) and each is normalised to
   probabilities p (generated) and q (target) over the grid;
4. divergences: ``KL(P_x ‖ P_y) = Σ p log(p/q)`` (eq. 1 of the paper, generated image first), the symmetric
   χ² histogram distance ``½ Σ (p − q)² / (p + q)`` (in [0, 1]), and the earth mover's distance: the exact
   optimal-transport cost between the two densities pooled to ``emd_bins``×``emd_bins`` cells, with Euclidean
   ground distance between cell centres in projected units (same units as the pixel values), solved by POT
   (cells holding less than 1e-9 of the mass are left out, which changes the value by about 1e-6 of the grid
   diameter at most).

The three values are averaged over the projections. They are 0 for identical images and grow as the patch
distributions move apart. Not differentiable (an analysis metric computed in NumPy). The paper does not say
which χ² variant or EMD discretisation it used; these are documented choices.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_reduction, compute_dtype, make_generator, reduce
from ..losses.base import float32_compute
from .base import Metric, check_image_pair
from .kde import botev_smooth

__all__ = ["DIVERGENCES", "PatchDivergence", "patch_divergence", "patch_divergences", "random_projections_2d"]

DIVERGENCES = ("kl", "chi2", "emd")
_EMD_MASS_FLOOR = 1e-9


def random_projections_2d(dim: int, count: int, seed: int | torch.Generator | None = 0) -> Tensor:
    """``count`` random 2-D projections of R^dim: a count×dim×2 float64 tensor, each with orthonormal columns
    (QR of a Gaussian matrix, signs fixed so the result is unique). Same seed, same projections."""
    if not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2 (the patch dimension), got {dim!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"num_projections must be a positive integer, got {count!r}")
    g = make_generator(seed)
    gauss = torch.randn(count, dim, 2, generator=g, dtype=torch.float64, device=g.device)
    q, r = torch.linalg.qr(gauss)
    return (q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)).cpu()


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _histograms(points: Tensor, lo: Tensor, hi: Tensor, n: int) -> Tensor:
    """P×L×2 points → P×n×n counts on the grids [lo, hi] (per projection), like ``numpy.histogram2d``."""
    p = points.shape[0]
    scaled = (points - lo[:, None, :]) / (hi - lo)[:, None, :] * n
    idx = scaled.floor().long().clamp_(0, n - 1)  # the right edge belongs to the last bin
    flat = idx[..., 0] * n + idx[..., 1] + (torch.arange(p, device=points.device) * n * n)[:, None]
    return torch.bincount(flat.flatten(), minlength=p * n * n).view(p, n, n)


def _emd(p: np.ndarray, q: np.ndarray, centres: np.ndarray) -> float:
    try:
        import ot
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the patch EMD needs the POT optimal-transport package: pip install pot (or choose the 'kl' or "
            "'chi2' divergences)"
        ) from exc
    # cells holding less than _EMD_MASS_FLOOR of the mass are dropped: the value changes by less than
    # (number of cells) × _EMD_MASS_FLOOR × (grid diameter), about 1e-6 of the grid size for 32×32 cells
    keep_p, keep_q = p > _EMD_MASS_FLOOR * p.sum(), q > _EMD_MASS_FLOOR * q.sum()
    p, q = p[keep_p], q[keep_q]
    cp, cq = centres[keep_p], centres[keep_q]
    cost = np.sqrt(((cp[:, None, :] - cq[None, :, :]) ** 2).sum(-1))
    return float(ot.emd2(p / p.sum(), q / q.sum(), cost, numItermax=1_000_000))


def _pair(
    xp: Tensor, yp: Tensor, grid_size: int, emd_bins: int, which: tuple[str, ...], index: int
) -> dict[str, float]:
    """Divergences for one image pair given its projected patches xp (P×L×2) and yp (P×M×2)."""
    lo = torch.minimum(xp.amin(dim=1), yp.amin(dim=1))
    hi = torch.maximum(xp.amax(dim=1), yp.amax(dim=1))
    span = hi - lo
    if bool((span <= 0).any()):
        raise ValueError(
            f"pred/target pair {index}: the patches take a single value along a projection (constant "
            f"images?); "
            f"patch-distribution divergences need images with some variation"
        )
    # Botev's default padding (half the range on each side), plus span/(2n) so that the extreme points, which
    # would otherwise sit exactly on bin edges, fall inside bins whatever the rounding
    pad = span / 2 + span / (2 * grid_size)
    lo, hi = lo - pad, hi + pad
    hx = _histograms(xp, lo, hi, grid_size).double().cpu().numpy()
    hy = _histograms(yp, lo, hi, grid_size).double().cpu().numpy()
    eps = np.finfo(np.float64).eps
    out = {name: 0.0 for name in which}
    lo_np, hi_np = lo.double().cpu().numpy(), hi.double().cpu().numpy()
    for k in range(hx.shape[0]):
        cell = (hi_np[k] - lo_np[k]) / grid_size
        dens = []
        for h, count in ((hx[k], xp.shape[1]), (hy[k], yp.shape[1])):
            try:
                smooth, _, _ = botev_smooth(h / count, count)
            except ValueError as exc:
                raise ValueError(f"pred/target pair {index}, projection {k}: {exc}") from None
            density = np.maximum(smooth / (cell[0] * cell[1]), eps)  # per unit area, floored like kde2d.m
            dens.append(density / density.sum())
        p, q = dens
        if "kl" in out:
            out["kl"] += float(np.sum(p * np.log(p / q)))
        if "chi2" in out:
            out["chi2"] += float(0.5 * np.sum((p - q) ** 2 / (p + q)))
        if "emd" in out:
            f = grid_size // emd_bins
            pc = p.reshape(emd_bins, f, emd_bins, f).sum(axis=(1, 3)).ravel()
            qc = q.reshape(emd_bins, f, emd_bins, f).sum(axis=(1, 3)).ravel()
            ax = lo_np[k, 0] + (np.arange(emd_bins) + 0.5) * cell[0] * f
            ay = lo_np[k, 1] + (np.arange(emd_bins) + 0.5) * cell[1] * f
            centres = np.stack(np.meshgrid(ax, ay, indexing="ij"), axis=-1).reshape(-1, 2)
            out["emd"] += _emd(pc, qc, centres)
    count = hx.shape[0]
    return {name: value / count for name, value in out.items()}


@float32_compute
def patch_divergences(
    pred: Tensor,
    target: Tensor,
    *,
    patch_size: int = 5,
    stride: int = 1,
    num_projections: int = 100,
    grid_size: int = 256,
    emd_bins: int = 32,
    seed: int = 0,
    divergences: tuple[str, ...] = DIVERGENCES,
    reduction: str = "mean",
) -> dict[str, Tensor]:
    """KL, χ² and EMD between the 2-D projected patch distributions of ``pred`` and ``target`` (see the module
    docstring), averaged over ``num_projections`` random projections.

    Args:
        pred, target: N×C×H×W images in [0, 1] (any C, the same for both; sizes may differ; target batch 1
            broadcasts). Each side at least ``patch_size`` pixels.
        patch_size, stride: patch side k (5 in the paper) and step between patches (1: all patches).
        num_projections: random 2-D projections (100 in the paper).
        grid_size: KDE grid side n (a power of two; 256 as Botev's code).
        emd_bins: side of the coarser grid the EMD is solved on (must divide ``grid_size``).
        seed: seed of the projections (the same for every pair).
        divergences: which of "kl", "chi2", "emd" to compute ("emd" needs POT and costs the most).
        reduction: "mean", "sum" or "none" (shape N) for each divergence.

    Returns ``{name: value}`` in the order of ``divergences``; lower is better for all three.
    """
    check_reduction(reduction)
    _check_int("patch_size", patch_size, 2)
    _check_int("stride", stride, 1)
    _check_int("num_projections", num_projections, 1)
    _check_int("grid_size", grid_size, 4)
    if grid_size & (grid_size - 1):
        raise ValueError(f"grid_size must be a power of two (the DCT grid), got {grid_size}")
    _check_int("emd_bins", emd_bins, 1)
    if grid_size % emd_bins:
        raise ValueError(f"emd_bins must divide grid_size ({grid_size}), got {emd_bins}")
    if isinstance(divergences, str):
        divergences = (divergences,)
    which = tuple(check_choice("divergences", d, DIVERGENCES) for d in divergences)
    if not which:
        raise ValueError(f"divergences must name at least one of {DIVERGENCES}")
    pred, target = check_image_pair(pred, target, channels=None, same_size=False)
    for name, img in (("pred", pred), ("target", target)):
        if min(img.shape[-2:]) < patch_size:
            raise ValueError(
                f"{name} must be at least patch_size={patch_size} pixels on each side, got {tuple(img.shape)}"
            )
    dtype = compute_dtype(pred)
    dim = pred.shape[1] * patch_size * patch_size
    work = torch.float64 if pred.dtype == torch.float64 else torch.float32
    proj = random_projections_2d(dim, num_projections, seed).to(device=pred.device, dtype=work)
    results: dict[str, list[float]] = {name: [] for name in which}
    with torch.no_grad():
        for i in range(pred.shape[0]):
            x = F.unfold(pred[i : i + 1].to(work), patch_size, stride=stride)[0]  # D×L
            y = F.unfold(target[min(i, target.shape[0] - 1)][None].to(work), patch_size, stride=stride)[0]
            xp = torch.einsum("pdk,dl->plk", proj, x)
            yp = torch.einsum("pdk,dl->plk", proj, y)
            for name, value in _pair(xp, yp, grid_size, emd_bins, which, i).items():
                results[name].append(value)
    return {
        name: reduce(torch.tensor(values, dtype=dtype, device=pred.device), reduction)
        for name, values in results.items()
    }


@float32_compute
def patch_divergence(
    pred: Tensor,
    target: Tensor,
    divergence: str = "kl",
    *,
    patch_size: int = 5,
    stride: int = 1,
    num_projections: int = 100,
    grid_size: int = 256,
    emd_bins: int = 32,
    seed: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """One patch-distribution divergence ("kl", "chi2" or "emd"); see :func:`patch_divergences`."""
    check_choice("divergence", divergence, DIVERGENCES)
    return patch_divergences(
        pred, target, patch_size=patch_size, stride=stride, num_projections=num_projections,
        grid_size=grid_size, emd_bins=emd_bins, seed=seed, divergences=(divergence,), reduction=reduction,
    )[divergence]  # fmt: skip


class PatchDivergence(Metric):
    """Module form of :func:`patch_divergence` for one divergence ("kl", "chi2" or "emd"). Lower is better."""

    higher_is_better = False
    same_size = False

    def __init__(
        self,
        divergence: str = "kl",
        *,
        patch_size: int = 5,
        stride: int = 1,
        num_projections: int = 100,
        grid_size: int = 256,
        emd_bins: int = 32,
        seed: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.divergence = check_choice("divergence", divergence, DIVERGENCES)
        self.options = dict(patch_size=patch_size, stride=stride, num_projections=num_projections,
                            grid_size=grid_size, emd_bins=emd_bins, seed=seed)  # fmt: skip
        # validate now rather than at the first call
        _check_int("num_projections", num_projections, 1)
        if not math.log2(max(grid_size, 1)).is_integer():
            raise ValueError(f"grid_size must be a power of two (the DCT grid), got {grid_size}")

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        return patch_divergence(pred, target, self.divergence, reduction="none", **self.options)

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"divergence={self.divergence!r}, {opts}, reduction={self.reduction!r}"
