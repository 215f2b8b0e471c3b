"""Diversity (Kozachenko–Leonenko entropy) term, against a brute-force nearest-neighbour loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from featstat.losses.diversity import DiversityLoss
from featstat.losses.functional import diversity_loss, nearest_neighbour_distance


def _batch(n=5, shape=(3, 4, 4), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g, dtype=dtype)


def _oracle(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    flat = x.reshape(x.shape[0], -1)
    out = []
    for i in range(len(flat)):
        best = math.inf
        for j in range(len(flat)):
            if j != i:
                best = min(best, math.sqrt(sum((a - b) ** 2 for a, b in zip(flat[i], flat[j], strict=True))))
        out.append(-math.log(best + eps))
    return np.array(out)


def test_matches_brute_force():
    x = _batch()
    got = diversity_loss(x, reduction="none")
    np.testing.assert_allclose(got.numpy(), _oracle(x.numpy()), rtol=1e-12)
    assert diversity_loss(x).item() == pytest.approx(_oracle(x.numpy()).mean(), rel=1e-12)
    assert diversity_loss(x, reduction="sum").item() == pytest.approx(_oracle(x.numpy()).sum(), rel=1e-12)


def test_nearest_neighbour_indices():
    x = torch.tensor([[0.0], [1.0], [1.5], [10.0]], dtype=torch.float64)
    rho, idx = nearest_neighbour_distance(x)
    assert idx.tolist() == [1, 2, 1, 2]
    assert torch.allclose(rho, torch.tensor([1.0, 0.5, 0.5, 8.5], dtype=torch.float64))


def test_more_diverse_batch_scores_lower_and_scaling_shifts_by_log():
    x = _batch()
    assert diversity_loss(2 * x) < diversity_loss(x)
    assert diversity_loss(3 * x, eps=1e-300).item() == pytest.approx(
        diversity_loss(x, eps=1e-300).item() - math.log(3), rel=1e-12
    )


def test_identical_samples_are_finite():
    x = _batch(n=1).repeat(3, 1, 1, 1).requires_grad_(True)
    loss = diversity_loss(x, eps=1e-8)
    assert loss.item() == pytest.approx(-math.log(1e-8))
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_gradcheck_and_gradient_of_eq_3_11():
    x = _batch(n=4, shape=(5,)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: diversity_loss(a, reduction="none"), (x,))
    # eq. 3.11: d/dx of −(1/N) Σ ln ρ_i only involves each sample's nearest pair
    loss = diversity_loss(x)
    (grad,) = torch.autograd.grad(loss, x)
    with torch.no_grad():
        rho, idx = nearest_neighbour_distance(x)
        want = torch.zeros_like(x)
        for i in range(4):
            d = (x[i] - x[idx[i]]) / (rho[i] * (rho[i] + 1e-8)) / 4
            want[i] -= d
            want[idx[i]] += d
    assert torch.allclose(grad, want, rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x = _batch(dtype=torch.float32)
    ref = diversity_loss(x, reduction="none")
    got = diversity_loss(x.to(dtype), reduction="none")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert torch.allclose(got, ref, atol=2e-2)


def test_device(device):
    x = _batch(dtype=torch.float32)
    got = diversity_loss(x.to(device), reduction="none")
    assert got.device.type == device
    assert torch.allclose(got.cpu(), diversity_loss(x, reduction="none"), rtol=1e-5)


def test_accepts_flat_features_and_module():
    x = _batch(n=6, shape=(7,))
    assert diversity_loss(x, reduction="none").shape == (6,)
    loss = DiversityLoss(reduction="none")
    assert torch.allclose(loss(x), diversity_loss(x, reduction="none"))
    assert torch.allclose(loss(x, x[:1]), loss(x))  # target ignored


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        diversity_loss(_batch(n=1))
    with pytest.raises(ValueError, match="floating"):
        diversity_loss(torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="pred must have"):
        diversity_loss(torch.rand(5))
    with pytest.raises(ValueError, match="reduction"):
        diversity_loss(_batch(), reduction="median")
    with pytest.raises(ValueError, match="eps"):
        diversity_loss(_batch(), eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        DiversityLoss(eps=-1.0)
