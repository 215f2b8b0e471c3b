"""Contextual loss, bilateral CX and Chamfer distance against a plain NumPy transcription of the paper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featstat.losses import ChamferLoss, ContextualLoss
from featstat.losses.contextual import prepare_contextual_target
from featstat.losses.functional import (
    bilateral_contextual_loss,
    chamfer_distance,
    contextual_loss,
    contextual_similarity,
)


def _points(f: np.ndarray) -> np.ndarray:
    return f.reshape(f.shape[0], -1).T  # C×H×W → (H·W)×C


def _grid(h: int, w: int) -> np.ndarray:
    return np.array([((i + 0.5) / h, (j + 0.5) / w) for i in range(h) for j in range(w)])


def _distances(x: np.ndarray, y: np.ndarray, distance: str, spatial_weight: float = 0.0) -> np.ndarray:
    """d_ij between prediction points i and target points j, written out with loops (no vector tricks)."""
    px, py = _points(x), _points(y)
    mu = py.mean(axis=0)
    d = np.zeros((len(px), len(py)))
    for i in range(len(px)):
        for j in range(len(py)):
            if distance == "cosine":
                a, b = px[i] - mu, py[j] - mu
                d[i, j] = (1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) / 2
            else:
                d[i, j] = np.sum((px[i] - py[j]) ** 2)
    if spatial_weight:
        gx, gy = _grid(*x.shape[1:]), _grid(*y.shape[1:])
        for i in range(len(px)):
            for j in range(len(py)):
                d[i, j] += spatial_weight * np.sum((gx[i] - gy[j]) ** 2) / 2
    return d


def cx_oracle(x, y, h=0.1, distance="cosine", spatial_weight=0.0) -> np.ndarray:
    """Eqs. 8–9 of Mechrez et al. per sample: −log (1/M) Σ_j max_i A_ij."""
    x, y = x.double().numpy(), y.double().numpy()
    out = []
    for b in range(x.shape[0]):
        yb = y[b if y.shape[0] > 1 else 0]
        d = _distances(x[b], yb, distance, spatial_weight)
        d_rel = d / (d.min(axis=1, keepdims=True) + 1e-5)
        w = np.exp((1 - d_rel) / h)
        a = w / w.sum(axis=1, keepdims=True)
        out.append(-np.log(a.max(axis=0).mean()))
    return np.array(out)


def chamfer_oracle(x, y, distance="cosine") -> np.ndarray:
    x, y = x.double().numpy(), y.double().numpy()
    return np.array([_distances(x[b], y[b], distance).min(axis=1).mean() for b in range(x.shape[0])])


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("bandwidth", [0.1, 0.5])
def test_matches_paper_formula(distance, bandwidth):
    x, y = torch.randn(2, 6, 4, 5), torch.randn(2, 6, 3, 6)  # different spatial sizes
    got = contextual_loss(x, y, bandwidth, distance, reduction="none")
    np.testing.assert_allclose(got.numpy(), cx_oracle(x, y, bandwidth, distance), rtol=2e-5, atol=2e-6)


def test_bilateral_matches_formula():
    x, y = torch.randn(2, 5, 4, 4), torch.randn(2, 5, 5, 3)
    got = bilateral_contextual_loss(x, y, bandwidth=0.2, spatial_weight=0.3, reduction="none")
    np.testing.assert_allclose(got.numpy(), cx_oracle(x, y, 0.2, "cosine", 0.3), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("chunk", [1, 7, 40, 1 << 20])
def test_chunked_equals_unchunked(chunk):
    x = torch.randn(2, 8, 6, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 8, 5, 5, dtype=torch.float64, requires_grad=True)
    ref = contextual_loss(x, y, 0.1, chunk_size=1 << 30)
    gx_ref, gy_ref = torch.autograd.grad(ref, (x, y))
    got = contextual_loss(x, y, 0.1, chunk_size=chunk)
    gx, gy = torch.autograd.grad(got, (x, y))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gy, gy_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # float64 gradcheck through the chunked kernel: 3-7 s per case
@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("spatial_weight", [0.0, 0.2])
def test_gradcheck(distance, spatial_weight):
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    for chunk in (5, 1 << 20):
        assert torch.autograd.gradcheck(
            lambda a, b, c=chunk: contextual_loss(
                a, b, 0.5, distance, reduction="none", spatial_weight=spatial_weight, chunk_size=c
            ),
            (x, y),
        )


def test_gradient_matches_full_autograd():
    """The hand-written backward equals autograd through a dense transcription of the loss."""
    x = torch.randn(1, 5, 4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 5, 4, 4, dtype=torch.float64)

    def dense(x):
        mu = y.mean(dim=(2, 3), keepdim=True)
        xn = torch.nn.functional.normalize((x - mu).flatten(2), dim=1)
        yn = torch.nn.functional.normalize((y - mu).flatten(2), dim=1)
        d = (1 - xn.transpose(1, 2) @ yn) / 2
        a = torch.softmax((1 - d / (d.min(dim=2, keepdim=True)[0] + 1e-5)) / 0.1, dim=2)
        return -torch.log(a.max(dim=1)[0].mean())

    (g_ref,) = torch.autograd.grad(dense(x), x)
    (g,) = torch.autograd.grad(contextual_loss(x, y, 0.1, chunk_size=6), x)
    torch.testing.assert_close(g, g_ref)


def test_identity_is_minimal_and_zero():
    x = torch.randn(3, 8, 5, 5)
    assert torch.allclose(contextual_loss(x, x, reduction="none"), torch.zeros(3), atol=1e-6)
    # the loss is ≥ 0 = loss(x, x) for any prediction, and grows with the perturbation
    losses = [contextual_loss(x + s * torch.randn_like(x), x, reduction="none") for s in (0.5, 1.0, 3.0)]
    assert all((v >= 0).all() for v in losses)
    assert (losses[0] < losses[2]).all() and (losses[2] > 0.1).all()


def test_invariant_to_spatial_permutation_of_prediction():
    x, y = torch.randn(2, 6, 5, 5), torch.randn(2, 6, 5, 5)
    perm = torch.randperm(25)
    xp = x.flatten(2)[:, :, perm].reshape_as(x)
    torch.testing.assert_close(
        contextual_loss(xp, y, reduction="none"), contextual_loss(x, y, reduction="none")
    )
    # ... while the bilateral loss, which looks at positions, is not.
    a = bilateral_contextual_loss(xp, y, spatial_weight=1.0, reduction="none")
    assert not torch.allclose(a, bilateral_contextual_loss(x, y, spatial_weight=1.0, reduction="none"))


def test_cosine_is_scale_invariant_l2_is_not():
    x, y = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    mu = y.mean(dim=(2, 3), keepdim=True)
    xs = mu + 3.0 * (x - mu)  # scaling about the target mean keeps every cosine
    torch.testing.assert_close(
        contextual_loss(xs, y, reduction="none"), contextual_loss(x, y, reduction="none")
    )
    # L2 with both sets scaled: d̃ is a ratio of distances, so CX is unchanged too
    torch.testing.assert_close(
        contextual_loss(3 * x, 3 * y, distance="l2", reduction="none"),
        contextual_loss(x, y, distance="l2", reduction="none"),
        rtol=1e-4,
        atol=1e-5,
    )


def test_similarity_range_and_reductions():
    x, y = torch.randn(4, 5, 3, 3), torch.randn(4, 5, 3, 3)
    cx = contextual_similarity(x, y)
    assert ((cx > 0) & (cx <= 1)).all()
    per = contextual_loss(x, y, reduction="none")
    torch.testing.assert_close(per, -torch.log(cx))
    torch.testing.assert_close(contextual_loss(x, y, reduction="mean"), per.mean())
    torch.testing.assert_close(contextual_loss(x, y, reduction="sum"), per.sum())


def test_target_batch_one_broadcasts():
    x, y = torch.randn(3, 5, 4, 4), torch.randn(1, 5, 6, 6)
    got = contextual_loss(x, y, reduction="none")
    for b in range(3):
        torch.testing.assert_close(got[b], contextual_loss(x[b : b + 1], y, reduction="none")[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_close_to_float32(dtype):
    x, y = torch.randn(2, 16, 6, 6), torch.randn(2, 16, 6, 6)
    ref = contextual_loss(x, y, 0.5, reduction="none")
    got = contextual_loss(x.to(dtype), y.to(dtype), 0.5, reduction="none")
    assert torch.isfinite(got).all() and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0.05, atol=0.02)


def test_half_precision_backward_is_finite():
    x = torch.randn(1, 8, 5, 5).half().requires_grad_()
    contextual_loss(x, torch.randn(1, 8, 5, 5).half()).backward()
    assert x.grad is not None and x.grad.dtype == torch.float16 and torch.isfinite(x.grad).all()


def test_prepared_target_reused():
    x, y = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 5, 5)
    prepared = prepare_contextual_target(y, "cosine")
    torch.testing.assert_close(contextual_similarity(x, prepared), contextual_similarity(x, y))


def test_module_sampling_is_seeded():
    x, y = torch.randn(1, 6, 12, 12), torch.randn(1, 6, 12, 12)
    a = ContextualLoss(0.1, sample_size=5, seed=3)(x, y)
    b = ContextualLoss(0.1, sample_size=5, seed=3)(x, y)
    c = ContextualLoss(0.1, sample_size=5, seed=4)(x, y)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    # a map smaller than the sample uses every position
    small = torch.randn(1, 6, 3, 3)
    torch.testing.assert_close(
        ContextualLoss(0.1, sample_size=5)(small, small), contextual_loss(small, small)
    )


def test_module_matches_functional():
    x, y = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 5, 5)
    loss = ContextualLoss(0.2, "l2", reduction="none")
    torch.testing.assert_close(loss(x, y), contextual_loss(x, y, 0.2, "l2", reduction="none"))


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_chamfer_matches_formula(distance):
    x, y = torch.randn(2, 5, 4, 3), torch.randn(2, 5, 3, 5)
    got = chamfer_distance(x, y, distance, reduction="none", chunk_size=7)
    np.testing.assert_allclose(got.numpy(), chamfer_oracle(x, y, distance), rtol=1e-5, atol=1e-6)


def test_chamfer_symmetric_and_gradcheck():
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    one = chamfer_distance(x, y, "l2", reduction="none")
    both = chamfer_distance(x, y, "l2", reduction="none", symmetric=True)
    yx = torch.tensor(chamfer_oracle(y.detach(), x.detach(), "l2"))
    torch.testing.assert_close(both - one, yx)
    assert torch.autograd.gradcheck(
        lambda a, b: chamfer_distance(a, b, "cosine", reduction="none", symmetric=True), (x, y)
    )
    assert float(ChamferLoss("l2")(x.detach(), x.detach())) < 1e-12


def test_large_map_runs_in_bounded_memory():
    """4,096 × 4,096 pairs with a 256k-element chunk: the dense matrix (16M entries) is never formed."""
    x = torch.randn(1, 16, 64, 64, requires_grad=True)
    y = torch.randn(1, 16, 64, 64)
    loss = contextual_loss(x, y, chunk_size=1 << 18)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"distance": "manhattan"}, "distance"),
        ({"reduction": "avg"}, "reduction"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"spatial_weight": -0.1}, "spatial_weight"),
    ],
)
def test_bad_arguments(kwargs, match):
    x = torch.randn(1, 4, 3, 3)
    with pytest.raises(ValueError, match=match):
        contextual_loss(x, x, **kwargs)


def test_bad_inputs():
    x = torch.randn(1, 4, 3, 3)
    with pytest.raises(ValueError, match="pred must have 4 dimensions"):
        contextual_loss(torch.randn(4, 3, 3), x)
    with pytest.raises(ValueError, match="channels"):
        contextual_loss(x, torch.randn(1, 5, 3, 3))
    with pytest.raises(ValueError, match="batch size"):
        contextual_loss(torch.randn(2, 4, 3, 3), torch.randn(3, 4, 3, 3))
    with pytest.raises(ValueError, match="floating-point"):
        contextual_loss(x.long(), x)
    with pytest.raises(ValueError, match=r"target must be a torch\.Tensor"):
        contextual_loss(x, x.numpy())
    with pytest.raises(ValueError, match="sample_size"):
        ContextualLoss(sample_size=0)


def test_runs_under_autocast():
    x, y = torch.randn(1, 8, 6, 6, requires_grad=True), torch.randn(1, 8, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contextual_loss(x, y, 0.5) + chamfer_distance(x, y)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(x.grad).all()
    torch.testing.assert_close(
        loss, contextual_loss(x, y, 0.5) + chamfer_distance(x, y), rtol=0.05, atol=0.02
    )


def test_sampling_generator_is_checkpointed():
    x, y = torch.randn(1, 6, 12, 12), torch.randn(1, 6, 12, 12)
    loss = ContextualLoss(0.1, sample_size=5, seed=7)
    loss(x, y)
    state = loss.state_dict()
    expected = loss(x, y)
    restored = ContextualLoss(0.1, sample_size=5, seed=123)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored(x, y), expected)


def test_old_argument_spellings_still_work_with_a_warning():
    """0.1 spellings (x=, y=, positional reduction, x_index=) keep working for one release."""
    x, y = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 4)
    ref = contextual_loss(x, y, 0.5, reduction="none")
    with pytest.warns(DeprecationWarning, match="'x' is now 'pred'"):
        torch.testing.assert_close(contextual_loss(x=x, target=y, bandwidth=0.5, reduction="none"), ref)
    with pytest.warns(DeprecationWarning, match="reduction by keyword"):
        torch.testing.assert_close(contextual_loss(x, y, 0.5, "cosine", "none"), ref)
    with pytest.warns(DeprecationWarning, match="'x_index' is now 'pred_index'"):
        contextual_similarity(x, y, x_index=torch.arange(4))
    with pytest.raises(TypeError, match="both 'x'"):
        contextual_loss(pred=x, x=x, y=y)
