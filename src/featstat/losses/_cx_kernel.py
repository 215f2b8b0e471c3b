"""Memory-bounded kernels behind the contextual loss and the Chamfer distance.

Both work on *augmented* feature matrices chosen so that one matrix product gives the distance:

    d_ij = X_i · Y_j        X: N×K' (prediction side), Y: M×K' (target side)

(``contextual.py`` builds X and Y for the cosine, squared-L2 and bilateral distances, e.g. cosine
d_ij = (1 − x̂_i·ŷ_j)/2 is X_i = [−x̂_i/2, 1/2], Y_j = [ŷ_j, 1]). The N×M distance matrix is never
held whole: rows are processed in chunks of at most ``chunk_elements`` entries, so peak memory is a few
chunk buffers however large N·M is.

Contextual similarity (Mechrez et al. 2018, eqs. 8–9), for one sample:

    m_i   = min_l d_il                      k_i = 1 / (h · (m_i + eps))
    A_ij  = softmax_j(−d_ij · k_i)          (= softmax_j((1 − d_ij/(m_i + eps)) / h), the shift cancels)
    cx_j  = max_i A_ij                      CX = mean_j cx_j  (done by the caller)

``ContextualColumnMax`` returns cx (N_batch × M) and differentiates it exactly: only the row i*(j) that
attains the maximum of column j receives gradient, so the backward pass recomputes just the rows that
are an argmax of some column, chunk by chunk, with the derivative written out by hand (no autograd graph
over an N×M tensor). Rows whose minimum distance is negative from rounding use m_i = 0 in k_i. The backward
runs with autocast off (a ``backward()`` called inside an autocast region would otherwise compute its
products in bfloat16/float16 and mix dtypes in the index updates); callers turn it off for the forward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import float32_compute

EPS = 1e-5  # the papers' epsilon in d̃_ij = d_ij / (min_k d_ik + eps)


def _rows_per_chunk(cols: int, chunk_elements: int) -> int:
    return max(1, min(chunk_elements // max(cols, 1), 1 << 30))


def _affinities(
    dist: Tensor, bandwidth: float, inplace: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Row-normalised affinities A from a distance chunk ``dist`` (c×M).

    Returns (A, m, argmin, k). A is written over ``dist`` when ``inplace``, else into a new buffer.
    """
    m, argmin = dist.min(dim=1)
    k = 1.0 / (bandwidth * (m.clamp_min(0) + EPS))
    # exp(−(d − m)·k) lies in (0, 1]: no overflow, and the row max is exactly 1.
    if inplace:
        a = dist.sub_(m[:, None]).mul_(-k[:, None]).exp_()
    else:
        a = torch.sub(m[:, None], dist).mul_(k[:, None]).exp_()
    a.mul_(a.sum(dim=1, keepdim=True).reciprocal_())
    return a, m, argmin, k


def _column_max_one(x: Tensor, y: Tensor, bandwidth: float, chunk_elements: int) -> tuple[Tensor, Tensor]:
    """cx_j = max_i A_ij and its argmax row i*(j) for one sample (x: N×K', y: M×K')."""
    n, m_cols = x.shape[0], y.shape[0]
    rows = _rows_per_chunk(m_cols, chunk_elements)
    best = torch.full((m_cols,), -1.0, dtype=x.dtype, device=x.device)
    arg = torch.zeros(m_cols, dtype=torch.long, device=x.device)
    nan = torch.zeros(m_cols, dtype=torch.bool, device=x.device)
    yt = y.t()
    for start in range(0, n, rows):
        a, _, _, _ = _affinities(x[start : start + rows] @ yt, bandwidth, inplace=True)
        chunk_best = a.amax(dim=0)  # NaN propagates within a chunk; across chunks `>` would drop it:
        nan |= chunk_best.isnan()  # remember it, so NaN anywhere gives NaN whatever the chunking
        better = (chunk_best > best).nonzero().squeeze(1)
        if better.numel():
            # Row of the maximum, only for the columns this chunk improves. A reduction with indices over
            # dim 0 is ~20× slower than amax on CPU; matching the maxima and listing the hits is not.
            sub = a if better.numel() == m_cols else a[:, better]
            hit_row, hit_col = (sub == chunk_best[better]).nonzero(as_tuple=True)
            arg[better[hit_col]] = hit_row + start  # on ties any maximising row is a valid subgradient
            best[better] = chunk_best[better]
        del a
    return best.masked_fill_(nan, float("nan")), arg


def _column_max_backward_one(
    x: Tensor,
    y: Tensor,
    arg: Tensor,
    grad: Tensor,
    bandwidth: float,
    chunk_elements: int,
    need_x: bool,
    need_y: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of Σ_j grad_j · cx_j with respect to x (N×K') and y (M×K') for one sample."""
    gx = torch.zeros_like(x) if need_x else None
    gy = torch.zeros_like(y) if need_y else None
    rows_used = torch.unique(arg)  # sorted; only these rows carry gradient
    pos_of_col = torch.searchsorted(rows_used, arg)  # position of each column's argmax row in rows_used
    rows = _rows_per_chunk(y.shape[0], chunk_elements)
    yt = y.t()
    for start in range(0, rows_used.numel(), rows):
        idx = rows_used[start : start + rows]
        xr = x[idx]
        dist = xr @ yt
        a, m, argmin, k = _affinities(dist, bandwidth)
        cols = ((pos_of_col >= start) & (pos_of_col < start + idx.numel())).nonzero().squeeze(1)
        r = pos_of_col[cols] - start
        g_cols = grad[cols]
        a_sel = a[r, cols]
        # Softmax backward with a sparse upstream gradient G (G[r_j, j] = g_j):
        #   ∂/∂logit_il = A_il (G_il − s_i),  s_i = Σ_j G_ij A_ij.
        s = torch.zeros(idx.numel(), dtype=x.dtype, device=x.device).index_add_(0, r, g_cols * a_sel)
        g_logit = a.mul_(-s[:, None])
        g_logit.index_put_((r, cols), g_cols * a_sel, accumulate=True)
        # logit_il = −d_il·k_i: through k_i = 1/(h(m_i + eps)) the row minimum gets
        #   ∂/∂m_i = (k_i / (m_i + eps)) · Σ_l ∂/∂logit_il · (d_il − m_i)     (zero where m_i was clamped)
        g_k_sum = dist.sub_(m[:, None]).mul_(g_logit).sum(dim=1)
        g_m = torch.where(m > 0, k / (m.clamp_min(0) + EPS) * g_k_sum, torch.zeros_like(m))
        g_dist = g_logit.mul_(-k[:, None])
        g_dist[torch.arange(idx.numel(), device=x.device), argmin] += g_m
        if gx is not None:
            gx[idx] = g_dist @ y
        if gy is not None:
            gy.addmm_(g_dist.t(), xr)
        del dist, a, g_logit, g_dist
    return gx, gy


class ContextualColumnMax(torch.autograd.Function):
    """cx[b, j] = max_i A_ij for a batch: x (B×N×K'), y (B×M×K' or 1×M×K') → (B×M)."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, bandwidth: float, chunk_elements: int) -> Tensor:  # type: ignore[override]
        outs, args = [], []
        for b in range(x.shape[0]):
            best, arg = _column_max_one(x[b], y[b if y.shape[0] > 1 else 0], bandwidth, chunk_elements)
            outs.append(best)
            args.append(arg)
        ctx.save_for_backward(x, y, torch.stack(args))
        ctx.bandwidth, ctx.chunk_elements = bandwidth, chunk_elements
        return torch.stack(outs)

    @staticmethod
    @float32_compute
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, y, args = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx = torch.zeros_like(x) if need_x else None
        gy = torch.zeros_like(y) if need_y else None
        grad = grad.to(x.dtype)
        for b in range(x.shape[0]):
            yb = 0 if y.shape[0] == 1 else b
            gxb, gyb = _column_max_backward_one(
                x[b], y[yb], args[b], grad[b], ctx.bandwidth, ctx.chunk_elements, need_x, need_y
            )
            if gx is not None:
                gx[b] = gxb
            if gy is not None:
                gy[yb] += gyb
        return gx, gy, None, None


def contextual_column_max(x: Tensor, y: Tensor, bandwidth: float, chunk_elements: int) -> Tensor:
    """Column-wise max of the contextual affinities, B×M (see module docstring)."""
    return ContextualColumnMax.apply(x, y, bandwidth, chunk_elements)


def nearest_rows(x: Tensor, y: Tensor, chunk_elements: int) -> Tensor:
    """For each row i of x (B×N×K'), the index of the row j of y (B×M×K' or 1×M×K') minimising X_i·Y_j.

    No gradient: callers gather the chosen pairs and recompute their distance with autograd.
    """
    rows = _rows_per_chunk(y.shape[1], chunk_elements)
    out = torch.empty(x.shape[:2], dtype=torch.long, device=x.device)
    with torch.no_grad():
        for b in range(x.shape[0]):
            yt = y[b if y.shape[0] > 1 else 0].t()
            for start in range(0, x.shape[1], rows):
                out[b, start : start + rows] = (x[b, start : start + rows] @ yt).argmin(dim=1)
    return out
