"""Exact 1-D Wasserstein, projections, projected distribution loss and sliced Wasserstein.

Oracles: scipy.stats.wasserstein_distance per channel / projection, POT's wasserstein_1d and
sliced_wasserstein_distance (with p=1 and our explicit projections), and projections done in NumPy.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from scipy.stats import wasserstein_distance

from featstat.losses.functional import (
    make_projections,
    projected_distribution_loss,
    sliced_wasserstein_loss,
    wasserstein_1d,
)
from featstat.losses.projected import ProjectedDistributionLoss, SlicedWassersteinLoss

KINDS = ["identity", "sphere", "r2p", "rpp"]


def _feats(n=2, c=4, h=5, w=6, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


def _pdl_oracle(x: np.ndarray, y: np.ndarray, proj: np.ndarray | None) -> np.ndarray:
    """Per sample: mean over directions of scipy's W1 between the projected feature values."""
    n = x.shape[0]
    out = np.zeros(n)
    for s in range(n):
        fx = x[s].reshape(x.shape[1], -1)
        fy = y[min(s, y.shape[0] - 1)].reshape(y.shape[1], -1)
        if proj is not None:
            fx, fy = proj @ fx, proj @ fy
        out[s] = np.mean([wasserstein_distance(fx[k], fy[k]) for k in range(fx.shape[0])])
    return out


# ------------------------------------------------------------------------------------------------ 1-D W1


@pytest.mark.parametrize(("n", "m"), [(37, 53), (53, 37), (10, 10), (1, 5), (6, 4), (12, 18)])
def test_wasserstein_1d_matches_scipy_and_pot(n, m):
    g = torch.Generator().manual_seed(n * 100 + m)
    u = torch.randn(3, n, generator=g, dtype=torch.float64)
    v = 0.7 * torch.randn(3, m, generator=g, dtype=torch.float64) + 0.4
    got = wasserstein_1d(u, v)
    assert got.shape == (3,)
    for i in range(3):
        assert got[i].item() == pytest.approx(wasserstein_distance(u[i].numpy(), v[i].numpy()), rel=1e-12)
        assert got[i].item() == pytest.approx(ot.wasserstein_1d(u[i].numpy(), v[i].numpy(), p=1), rel=1e-9)


def test_wasserstein_1d_equal_sizes_is_mean_abs_sorted_difference():
    u, v = torch.randn(2, 3, 20, dtype=torch.float64), torch.randn(2, 3, 20, dtype=torch.float64)
    want = (u.sort(-1).values - v.sort(-1).values).abs().mean(-1)
    assert torch.allclose(wasserstein_1d(u, v), want, rtol=1e-14)


def test_wasserstein_1d_broadcasts_leading_dims():
    u, v = torch.randn(4, 3, 11, dtype=torch.float64), torch.randn(1, 3, 7, dtype=torch.float64)
    assert torch.allclose(wasserstein_1d(u, v), wasserstein_1d(u, v.expand(4, 3, 7)))


def test_wasserstein_1d_properties_and_gradcheck():
    u = torch.randn(5, 9, dtype=torch.float64)
    v = torch.randn(5, 13, dtype=torch.float64)
    assert wasserstein_1d(u, u[:, torch.randperm(9)]).abs().max() < 1e-15  # same multiset
    assert torch.allclose(wasserstein_1d(2.5 * u, 2.5 * v), 2.5 * wasserstein_1d(u, v))  # linear scaling
    assert torch.allclose(wasserstein_1d(u + 3.0, u), torch.full((5,), 3.0, dtype=torch.float64))  # shift
    # duplicating every sample does not change the distribution
    assert torch.allclose(wasserstein_1d(u, v), wasserstein_1d(u.repeat(1, 2), v))
    u.requires_grad_(True)
    v.requires_grad_(True)
    assert torch.autograd.gradcheck(wasserstein_1d, (u, v))


# -------------------------------------------------------------------------------------------- projections


def test_make_projections_kinds():
    c = 6
    eye = make_projections(c, "identity", dtype=torch.float64)
    assert torch.equal(eye, torch.eye(c, dtype=torch.float64))
    for kind, count in [("sphere", 13), ("r2p", 9), ("rpp", 12)]:
        w = make_projections(c, kind, count, 3, dtype=torch.float64)
        assert w.shape == (count, c)
        assert torch.allclose(w.norm(dim=1), torch.ones(count, dtype=torch.float64))
        assert torch.equal(w, make_projections(c, kind, count, 3, dtype=torch.float64))  # reproducible
        assert not torch.equal(w, make_projections(c, kind, count, 4, dtype=torch.float64))
    r2p = make_projections(c, "r2p", 50, 0)
    assert ((r2p != 0).sum(dim=1) == 2).all()  # two distinct channels per direction
    rpp = make_projections(c, "rpp", 2 * c, 0, perturbation=0.1)
    assert torch.equal(rpp.abs().argmax(dim=1), torch.arange(c).repeat(2))  # close to stacked identities
    assert torch.equal(make_projections(c, "rpp", c, 0, perturbation=0.0), torch.eye(c))
    sphere = make_projections(3, "sphere", 20000, 0, dtype=torch.float64)
    assert sphere.mean(dim=0).abs().max() < 0.03  # no preferred direction
    assert torch.allclose(sphere.T @ sphere / 20000, torch.eye(3, dtype=torch.float64) / 3, atol=0.01)
    g = torch.Generator().manual_seed(7)
    assert make_projections(c, "sphere", 4, g).shape == (4, c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "gaussian"}, "kind"),
        ({"kind": "identity", "count": 5}, "identity"),
        ({"kind": "rpp", "count": 7}, "multiple"),
        ({"kind": "sphere", "count": 0}, "count"),
        ({"kind": "rpp", "perturbation": -1.0}, "perturbation"),
        ({"kind": "sphere", "seed": "nope"}, "seed"),
    ],
)
def test_make_projections_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_projections(6, **kwargs)
    with pytest.raises(ValueError, match="channels"):
        make_projections(1, "r2p")


# ------------------------------------------------------------------------------------------------ the loss


def test_identity_matches_scipy_per_channel_with_different_sizes():
    x, y = _feats(n=2, c=3, h=37, w=1, seed=1), _feats(n=2, c=3, h=53, w=1, seed=2)
    got = projected_distribution_loss(x, y, reduction="none")
    np.testing.assert_allclose(got.numpy(), _pdl_oracle(x.numpy(), y.numpy(), None), rtol=1e-12)
    x2, y2 = _feats(n=2, c=3, h=5, w=6, seed=3), _feats(n=1, c=3, h=4, w=4, seed=4)
    got2 = projected_distribution_loss(x2, y2, reduction="none")
    np.testing.assert_allclose(got2.numpy(), _pdl_oracle(x2.numpy(), y2.numpy(), None), rtol=1e-12)


@pytest.mark.parametrize("kind", ["sphere", "r2p", "rpp"])
def test_random_projections_match_numpy_projection_and_scipy(kind):
    x, y = _feats(n=2, c=4, h=5, w=6, seed=1), _feats(n=2, c=4, h=3, w=7, seed=2)
    count = 8
    proj = make_projections(4, kind, count, 11, dtype=torch.float64)
    got = projected_distribution_loss(x, y, kind, count, seed=11, reduction="none")
    np.testing.assert_allclose(got.numpy(), _pdl_oracle(x.numpy(), y.numpy(), proj.numpy()), rtol=1e-10)
    explicit = projected_distribution_loss(x, y, reduction="none", projections=proj)
    assert torch.allclose(explicit, got)


def test_sliced_wasserstein_matches_pot():
    x, y = _feats(n=1, c=5, h=6, w=6, seed=1), _feats(n=1, c=5, h=4, w=5, seed=2)
    proj = make_projections(5, "sphere", 16, 0, dtype=torch.float64)
    xs = x[0].reshape(5, -1).T.numpy()  # positions × channels
    ys = y[0].reshape(5, -1).T.numpy()
    want = ot.sliced_wasserstein_distance(xs, ys, projections=proj.numpy().T, p=1)
    got = sliced_wasserstein_loss(x, y, num_projections=16, seed=0)
    assert got.item() == pytest.approx(float(want), rel=1e-10)
    # POT's own 1-D W1 on our explicit projections
    per_dir = [ot.wasserstein_1d(xs @ proj[k].numpy(), ys @ proj[k].numpy(), p=1) for k in range(16)]
    assert got.item() == pytest.approx(float(np.mean(per_dir)), rel=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_invariant_to_spatial_permutation_and_zero_iff_same_multiset(kind):
    x = _feats(n=2, c=4, h=5, w=6, seed=1)
    perm = torch.randperm(30)
    xp = x.flatten(2)[:, :, perm].reshape_as(x)
    assert projected_distribution_loss(xp, x, kind).item() < 1e-14
    y = _feats(n=2, c=4, h=4, w=4, seed=2)
    assert torch.allclose(projected_distribution_loss(xp, y, kind), projected_distribution_loss(x, y, kind))
    x2 = x.clone()
    x2[0, 1, 2, 3] += 0.5  # one changed value: a different multiset
    assert projected_distribution_loss(x2, x, kind, reduction="none")[0] > 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_scales_linearly(kind):
    x, y = _feats(seed=1), _feats(seed=2, h=3, w=3)
    a = projected_distribution_loss(x, y, kind)
    assert torch.allclose(projected_distribution_loss(3.0 * x, 3.0 * y, kind), 3.0 * a, rtol=1e-12)


def test_broadcast_and_reductions():
    x, y = _feats(n=3, seed=1), _feats(n=1, seed=2, h=3, w=8)
    none = projected_distribution_loss(x, y, "sphere", 6, reduction="none")
    assert none.shape == (3,)
    assert torch.allclose(
        none, projected_distribution_loss(x, y.expand(3, -1, -1, -1), "sphere", 6, reduction="none")
    )
    assert torch.allclose(projected_distribution_loss(x, y, "sphere", 6), none.mean())
    assert torch.allclose(projected_distribution_loss(x, y, "sphere", 6, reduction="sum"), none.sum())


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    # Gaussian samples have no ties; different sizes exercise the merged quantile grid
    x, y = _feats(n=2, c=3, h=3, w=3, seed=1), _feats(n=1, c=3, h=2, w=5, seed=2)
    x.requires_grad_(True)
    y.requires_grad_(True)
    count = 6 if kind != "identity" else None
    assert torch.autograd.gradcheck(
        lambda a, b: projected_distribution_loss(a, b, kind, count, reduction="none"), (x, y)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["identity", "sphere"])
def test_half_precision(dtype, kind):
    x, y = _feats(dtype=torch.float32, seed=1), _feats(dtype=torch.float32, seed=2, h=4, w=4)
    ref = projected_distribution_loss(x, y, kind, reduction="none")
    got = projected_distribution_loss(x.to(dtype), y.to(dtype), kind, reduction="none")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=3e-2, atol=1e-2)


def test_device(device):
    x, y = _feats(dtype=torch.float32, seed=1), _feats(dtype=torch.float32, seed=2, h=3, w=7)
    ref = projected_distribution_loss(x, y, "sphere", 8, reduction="none")
    got = projected_distribution_loss(x.to(device), y.to(device), "sphere", 8, reduction="none")
    assert got.device.type == device
    assert torch.allclose(got.cpu(), ref, rtol=1e-5, atol=1e-6)  # same directions on every device
    loss = ProjectedDistributionLoss("sphere", 8, channels=4).to(device)
    assert loss.projection_matrix(4).device.type == device
    assert torch.allclose(loss(x.to(device), y.to(device)).cpu(), ref.mean(), rtol=1e-5)


# -------------------------------------------------------------------------------------------------- module


@pytest.mark.parametrize("kind", KINDS)
def test_module_matches_functional_and_caches_target(kind):
    x, y = _feats(n=3, seed=1), _feats(n=1, seed=2, h=7, w=2)
    count = 8 if kind in ("sphere", "r2p", "rpp") else None
    eager = ProjectedDistributionLoss(kind, count, seed=5, reduction="none", channels=4)
    lazy = ProjectedDistributionLoss(kind, count, seed=5, reduction="none")
    want = projected_distribution_loss(x.float(), y.float(), kind, count, seed=5, reduction="none")
    prepared = eager.prepare_target(y.float())
    assert prepared.shape == (1, count or 4, 14)
    assert torch.allclose(prepared, prepared.sort(dim=-1).values)  # sorted once
    assert torch.allclose(eager.compare(x.float(), prepared), want, rtol=1e-6)
    assert torch.allclose(lazy(x.float(), y.float()), want, rtol=1e-6)
    if kind != "identity":
        assert torch.equal(eager.projection_matrix(4), lazy.projection_matrix(4))  # same seed, same matrix


def test_module_buffer_and_errors():
    loss = ProjectedDistributionLoss("sphere", 8, channels=4)
    assert loss.projection_matrix(4).shape == (8, 4)
    assert not loss.state_dict()  # regenerated from the seed
    assert loss.to(torch.float64).projection_matrix(4).dtype == torch.float64
    with pytest.raises(ValueError, match="identity"):
        ProjectedDistributionLoss("identity", 8, channels=4)
    with pytest.raises(ValueError, match="multiple"):
        ProjectedDistributionLoss("rpp", 6, channels=4)
    with pytest.raises(ValueError, match="num_projections"):
        ProjectedDistributionLoss("sphere", 0)
    with pytest.raises(ValueError, match="projection"):
        ProjectedDistributionLoss("gaussian")
    with pytest.raises(ValueError, match="reduction"):
        ProjectedDistributionLoss(reduction="avg")
    ident = ProjectedDistributionLoss()
    prepared = ident.prepare_target(_feats(c=4))
    with pytest.raises(ValueError, match="same layer"):
        ident.compare(_feats(c=3), prepared)
    custom = ProjectedDistributionLoss(projections=torch.eye(4)[:2])
    x, y = _feats(seed=1).float(), _feats(seed=2).float()
    assert torch.allclose(custom(x, y), projected_distribution_loss(x[:, :2], y[:, :2]))
    with pytest.raises(ValueError, match="channels"):
        custom(_feats(c=5).float(), _feats(c=5).float())


def test_module_serves_several_layers():
    """One module, layers with different channel counts (an Objective term over several layers)."""
    loss = ProjectedDistributionLoss("sphere", seed=3)
    for c in (3, 5, 3):
        x, y = _feats(c=c, seed=c).float(), _feats(c=c, seed=c + 1, h=3, w=3).float()
        want = projected_distribution_loss(x, y, "sphere", seed=3)
        assert torch.allclose(loss(x, y), want)
        assert loss.projection_matrix(c).shape == (c, c)


def test_sliced_wasserstein_module():
    x, y = _feats(seed=1).float(), _feats(seed=2, h=3, w=3).float()
    loss = SlicedWassersteinLoss(num_projections=10, seed=3)
    assert loss.projection == "sphere"
    assert torch.allclose(loss(x, y), sliced_wasserstein_loss(x, y, 10, seed=3))


def test_inference_mode_then_training():
    """Cached grids and lazily drawn projections built under inference_mode stay usable with autograd."""
    loss = ProjectedDistributionLoss("sphere", 4)
    x, y = _feats(c=3, h=3, w=5).float(), _feats(c=3, h=2, w=2).float()
    with torch.inference_mode():
        loss(x, y)
    xg = x.clone().requires_grad_(True)
    loss(xg, y).backward()
    assert torch.isfinite(xg.grad).all()


# ---------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    x, y = _feats(seed=1), _feats(seed=2)
    with pytest.raises(ValueError, match="pred must have 4 dimensions"):
        projected_distribution_loss(x[0], y)
    with pytest.raises(ValueError, match="channels"):
        projected_distribution_loss(x, y[:, :3])
    with pytest.raises(ValueError, match="projection"):
        projected_distribution_loss(x, y, projection="gaussian")
    with pytest.raises(ValueError, match="reduction"):
        projected_distribution_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="floating"):
        projected_distribution_loss(x.to(torch.int64), y)
    with pytest.raises(ValueError, match="projections"):
        projected_distribution_loss(x, y, projections=torch.eye(3))
    with pytest.raises(ValueError, match="identity"):
        projected_distribution_loss(x, y, "identity", num_projections=8)
    with pytest.raises(ValueError, match="u must"):
        wasserstein_1d(torch.tensor(1.0), torch.randn(3))


def test_fast_equal_size_path_matches_sorted_formulation_and_gradient():
    """With a fixed target of the same size the loss matches prediction values to target quantiles by
    scattering; value and gradient equal the plain sort-based formulation, also with ties (ReLU zeros)."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).clamp_min(0).requires_grad_()  # many tied zeros
    y = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    fast = projected_distribution_loss(x, y, reduction="none")
    xs = torch.sort(x.flatten(2), dim=-1).values
    ys = torch.sort(y.flatten(2), dim=-1).values
    plain = (xs - ys).abs().mean(dim=-1).mean(dim=-1)
    torch.testing.assert_close(fast, plain)
    (g_fast,) = torch.autograd.grad(fast.sum(), x)
    (g_plain,) = torch.autograd.grad(plain.sum(), x)
    # where x has no ties the subgradient is unique and must agree
    untied = (x > 0).detach()
    torch.testing.assert_close(g_fast[untied], g_plain[untied])
    x_free = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: projected_distribution_loss(a, y[:1, :2, :3, :3]), (x_free,))
