"""Gram matrices and the (guided) Gram / texture loss, against explicit loops over channel pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featstat.losses.functional import gram_loss, gram_matrix, texture_loss
from featstat.losses.gram import GramLoss


def _feats(n=2, c=4, h=5, w=6, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


def _gram_loops(f: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Gram matrices with Python loops: G[i, j] = Σ_p w_p f_i(p) f_j(p) / (C · Σ_p w_p)."""
    n, c, h, w = f.shape
    weights = np.ones((n, h, w)) if mask is None else mask
    out = np.zeros((n, c, c))
    for s in range(n):
        for i in range(c):
            for j in range(c):
                total = 0.0
                for y in range(h):
                    for x in range(w):
                        total += weights[s, y, x] * f[s, i, y, x] * f[s, j, y, x]
                out[s, i, j] = total / (c * weights[s].sum())
    return out


def _loss_loops(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    n, c, _ = gx.shape
    out = np.zeros(n)
    for s in range(n):
        out[s] = sum((gx[s, i, j] - gy[min(s, len(gy) - 1), i, j]) ** 2 for i in range(c) for j in range(c))
        out[s] /= c * c
    return out


def test_gram_matrix_matches_loops():
    f = _feats()
    np.testing.assert_allclose(gram_matrix(f).numpy(), _gram_loops(f.numpy()), rtol=1e-12)


def test_gram_loss_matches_loops_and_gatys_relation():
    x, y = _feats(seed=1), _feats(seed=2, h=7, w=3)  # different spatial sizes
    want = _loss_loops(_gram_loops(x.numpy()), _gram_loops(y.numpy()))
    got = gram_loss(x, y, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    # Gatys: E_l = Σ(Ĝ − Â)² / (4 C² M²) with unnormalised Gram matrices -- only defined for equal M
    y2 = _feats(seed=2)
    c, m = 4, 5 * 6
    fx, fy = x.numpy().reshape(2, c, m), y2.numpy().reshape(2, c, m)
    e_l = [((fx[s] @ fx[s].T - fy[s] @ fy[s].T) ** 2).sum() / (4 * c**2 * m**2) for s in range(2)]
    np.testing.assert_allclose(
        gram_loss(x, y2, reduction="none").numpy(), 4 * np.array(e_l) / c**2, rtol=1e-12
    )


def test_gram_of_itself_is_zero_and_spatial_permutation_invariant():
    x = _feats()
    assert gram_loss(x, x).item() == 0.0
    perm = torch.randperm(30)
    xp = x.flatten(2)[:, :, perm].reshape_as(x)
    assert gram_loss(xp, x).item() < 1e-24
    y = _feats(seed=5)
    assert torch.allclose(gram_loss(xp, y), gram_loss(x, y), rtol=1e-12)


def test_gram_scales_as_fourth_power():
    x, y = _feats(seed=1), _feats(seed=2)
    s = 1.7
    assert torch.allclose(gram_loss(s * x, s * y), s**4 * gram_loss(x, y), rtol=1e-10)


def test_target_batch_one_broadcasts_and_reductions():
    x, y = _feats(n=3, seed=1), _feats(n=1, seed=2, h=4, w=4)
    none = gram_loss(x, y, reduction="none")
    assert none.shape == (3,)
    assert torch.allclose(none, gram_loss(x, y.expand(3, -1, -1, -1), reduction="none"))
    assert torch.allclose(gram_loss(x, y), none.mean())
    assert torch.allclose(gram_loss(x, y, reduction="sum"), none.sum())


def test_gradcheck():
    x, y = _feats(n=2, c=3, h=3, w=2, seed=1), _feats(n=1, c=3, h=2, w=4, seed=2)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: gram_loss(a, y, reduction="none"), (x,))
    mx = torch.rand(2, 2, 3, 2, dtype=torch.float64)
    my = torch.rand(1, 2, 2, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a: gram_loss(a, y, mask_pred=mx, mask_target=my, reduction="none"), (x,)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x, y = _feats(dtype=torch.float32, seed=1), _feats(dtype=torch.float32, seed=2)
    ref = gram_loss(x, y, reduction="none")
    g = gram_matrix(x.to(dtype))
    assert g.dtype == torch.float32
    got = gram_loss(x.to(dtype), y.to(dtype), reduction="none")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=5e-2)


def test_device(device):
    x, y = _feats(dtype=torch.float32, seed=1), _feats(dtype=torch.float32, seed=2)
    got = gram_loss(x.to(device), y.to(device), reduction="none")
    assert got.device.type == device
    assert torch.allclose(got.cpu(), gram_loss(x, y, reduction="none"), rtol=1e-4)


# ------------------------------------------------------------------------------------------------ masks


def test_masked_gram_matches_loops():
    f = _feats(n=2, c=3, h=4, w=5)
    mask = torch.rand(2, 2, 4, 5, dtype=torch.float64)
    got = gram_matrix(f, mask)
    assert got.shape == (2, 2, 3, 3)
    for r in range(2):
        want = _gram_loops(f.numpy(), mask[:, r].numpy())
        np.testing.assert_allclose(got[:, r].numpy(), want, rtol=1e-12)


def test_all_ones_mask_equals_unmasked_at_any_resolution():
    x, y = _feats(seed=1), _feats(seed=2, h=8, w=7)
    plain = gram_loss(x, y, reduction="none")
    for mx, my in [
        (torch.ones(1, 1, 5, 6), torch.ones(1, 1, 8, 7)),  # feature resolution
        (torch.ones(2, 1, 20, 24), torch.ones(1, 1, 3, 3)),  # larger / smaller: resized
        (torch.ones(1, 1, 5, 6, dtype=torch.bool), torch.ones(1, 1, 8, 7, dtype=torch.bool)),
    ]:
        masked = gram_loss(x, y, reduction="none", mask_pred=mx, mask_target=my)
        assert torch.allclose(masked, plain, rtol=1e-6)
    assert torch.allclose(gram_matrix(x, torch.ones(1, 1, 9, 9))[:, 0], gram_matrix(x), rtol=1e-6)


def test_disjoint_masks_separate_regions():
    """Left/right masks: the loss is the sum of the Gram losses of the cropped halves."""
    x, y = _feats(h=4, w=6, seed=1), _feats(h=4, w=6, seed=2)
    left = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    left[..., :2] = 1
    masks = torch.cat([left, 1 - left], dim=1)
    got = gram_loss(x, y, reduction="none", mask_pred=masks, mask_target=masks)
    want = gram_loss(x[..., :2], y[..., :2], reduction="none") + gram_loss(
        x[..., 2:], y[..., 2:], reduction="none"
    )
    assert torch.allclose(got, want, rtol=1e-12)
    # changing features outside a region leaves that region's Gram matrix unchanged
    x2 = x.clone()
    x2[..., 2:] += 5.0
    g1, g2 = gram_matrix(x, masks), gram_matrix(x2, masks)
    assert torch.allclose(g1[:, 0], g2[:, 0])
    assert not torch.allclose(g1[:, 1], g2[:, 1])
    # region statistic does not depend on its area: a texture tiled in a small or large region matches
    tile = _feats(n=1, c=4, h=2, w=2, seed=9)
    small = torch.zeros(1, 4, 4, 8, dtype=torch.float64)
    small[..., :2, :2] = tile
    big = tile.repeat(1, 1, 2, 4)
    m_small = torch.zeros(1, 1, 4, 8, dtype=torch.float64)
    m_small[..., :2, :2] = 1
    loss = gram_loss(small, big, mask_pred=m_small, mask_target=torch.ones(1, 1, 4, 8, dtype=torch.float64))
    assert loss.item() < 1e-24


def test_empty_region_is_finite():
    x, y = _feats(seed=1), _feats(seed=2)
    empty = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    g = gram_matrix(x, empty)
    assert torch.isfinite(g).all() and g.abs().max() == 0
    assert gram_loss(x, y, mask_pred=empty, mask_target=empty).item() == 0.0


def test_mask_errors():
    x, y = _feats(seed=1), _feats(seed=2)
    m = torch.ones(1, 2, 5, 6)
    with pytest.raises(ValueError, match="mask_target"):
        gram_loss(x, y, mask_pred=m)
    with pytest.raises(ValueError, match="mask_pred"):
        gram_loss(x, y, mask_target=m)
    with pytest.raises(ValueError, match="regions"):
        gram_loss(x, y, mask_pred=m, mask_target=torch.ones(1, 3, 5, 6))
    with pytest.raises(ValueError, match="mask_pred"):
        gram_loss(x, y, mask_pred=torch.ones(3, 2, 5, 6), mask_target=m)
    with pytest.raises(ValueError, match="mask_pred"):
        gram_loss(x, y, mask_pred=torch.ones(2, 5, 6), mask_target=m)


# ----------------------------------------------------------------------------------------------- module


def test_module_prepare_compare_and_masks():
    x, y = _feats(n=3, seed=1), _feats(n=1, seed=2, h=7, w=7)
    loss = GramLoss(reduction="none")
    prepared = loss.prepare_target(y)
    assert prepared.shape == (1, 4, 4)
    assert torch.allclose(loss.compare(x, prepared), gram_loss(x, y, reduction="none"))
    assert torch.allclose(loss(x, y), gram_loss(x, y, reduction="none"))
    mx, my = torch.rand(3, 2, 5, 6, dtype=torch.float64), torch.rand(1, 2, 7, 7, dtype=torch.float64)
    want = gram_loss(x, y, reduction="none", mask_pred=mx, mask_target=my)
    assert torch.allclose(loss(x, y, mask_pred=mx, mask_target=my), want)
    pm = loss.prepare_target(y, my)
    assert torch.allclose(loss.compare(x, pm, mx), want)
    with pytest.raises(ValueError, match="mask"):
        loss.compare(x, pm)
    with pytest.raises(ValueError, match="mask"):
        loss.compare(x, prepared, mx)
    with pytest.raises(ValueError, match="channels"):
        loss.compare(x[:, :3], prepared)
    assert GramLoss()(x, y).shape == ()


def test_texture_loss_weights_layers():
    p = {"a": _feats(seed=1), "b": _feats(c=3, h=3, w=3, seed=2)}
    t = {"a": _feats(seed=3, h=2, w=9), "b": _feats(c=3, h=4, w=4, seed=4)}
    want = 0.5 * gram_loss(p["a"], t["a"], reduction="none") + 2.0 * gram_loss(
        p["b"], t["b"], reduction="none"
    )
    got = texture_loss(p, t, {"a": 0.5, "b": 2.0}, reduction="none")
    assert torch.allclose(got, want)
    assert torch.allclose(
        texture_loss(p, t),
        (gram_loss(p["a"], t["a"], reduction="none") + gram_loss(p["b"], t["b"], reduction="none")).mean(),
    )
    with pytest.raises(ValueError, match="'c'"):
        texture_loss(p, t, {"c": 1.0})
    with pytest.raises(ValueError, match="dict"):
        texture_loss([p["a"]], t)


# ------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    x, y = _feats(seed=1), _feats(seed=2)
    with pytest.raises(ValueError, match="pred must have 4 dimensions"):
        gram_loss(x[0], y)
    with pytest.raises(ValueError, match="channels"):
        gram_loss(x, y[:, :3])
    with pytest.raises(ValueError, match="batch"):
        gram_loss(_feats(n=3), y)
    with pytest.raises(ValueError, match="floating"):
        gram_loss(x.to(torch.int32), y)
    with pytest.raises(ValueError, match="reduction"):
        gram_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        GramLoss(reduction="avg")
    with pytest.raises(ValueError, match="f must"):
        gram_matrix(torch.rand(4, 5))
