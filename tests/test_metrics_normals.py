"""Angular-error statistics against NumPy arccos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featstat.metrics as fm


def random_normals(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)
    v[:, 2] = v[:, 2].abs() + 0.5  # facing the camera
    return v / v.norm(dim=1, keepdim=True)


def perturb(v: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = v + scale * torch.randn(v.shape, generator=g, dtype=v.dtype)
    return p / p.norm(dim=1, keepdim=True)


def numpy_stats(a: np.ndarray) -> dict[str, float]:
    return {
        "mean": a.mean(),
        "median": np.median(a),
        "rmse": np.sqrt((a**2).mean()),
        "11.25": 100 * (a < 11.25).mean(),
        "22.5": 100 * (a < 22.5).mean(),
        "30": 100 * (a < 30).mean(),
    }


def numpy_angles(p: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    pn = p.numpy() / np.linalg.norm(p.numpy(), axis=1, keepdims=True)
    tn = t.numpy() / np.linalg.norm(t.numpy(), axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((pn * tn).sum(axis=1), -1, 1)))


def test_angles_match_numpy_arccos():
    t = random_normals(2, 9, 11, 0)
    p = perturb(t, 0.4, 1) * 3.0  # lengths do not matter
    got = fm.angular_error(p, t)
    np.testing.assert_allclose(got.numpy(), numpy_angles(p, t), atol=1e-6)
    assert fm.angular_error(t, -t).min().item() == pytest.approx(180.0)


def test_statistics_per_image_and_pooled_match_numpy():
    t = random_normals(3, 10, 12, 2)
    p = perturb(t, 0.35, 3)
    ang = numpy_angles(p, t)
    per = fm.angular_error_stats(p, t, reduction="none")
    for i in range(3):
        want = numpy_stats(ang[i].ravel())
        for k, v in want.items():
            assert per[k][i].item() == pytest.approx(v, abs=1e-6), k
    pooled = fm.angular_error_stats(p, t, pooled=True)
    for k, v in numpy_stats(ang.ravel()).items():
        assert pooled[k].item() == pytest.approx(v, abs=1e-6), k
    mean = fm.angular_error_stats(p, t)
    assert mean["median"].item() == pytest.approx(np.mean([np.median(a) for a in ang]), abs=1e-6)


def test_mask_and_missing_ground_truth():
    t = random_normals(1, 8, 8, 4)
    p = perturb(t, 0.5, 5)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    t_missing = t.clone()
    t_missing[..., 0, :] = 0  # first row: no ground truth
    ang = numpy_angles(p, t)
    stats = fm.angular_error_stats(p, t_missing, mask, reduction="none")
    want = numpy_stats(ang[0, 1:4].ravel())
    assert stats["mean"].item() == pytest.approx(want["mean"], abs=1e-6)
    assert stats["30"].item() == pytest.approx(want["30"], abs=1e-6)
    with pytest.raises(ValueError, match="no valid pixel"):
        fm.angular_error_stats(p, t, torch.zeros(1, 8, 8))


def test_encoded_images_and_identity():
    t = random_normals(1, 6, 6, 6).float()
    enc = (t + 1) / 2
    stats = fm.angular_error_stats(enc, enc, encoded=True)
    assert stats["mean"].item() == pytest.approx(0.0, abs=1e-3)
    assert stats["11.25"].item() == 100.0
    p = perturb(t.double(), 0.3, 7).float()
    direct = fm.angular_statistic(p, t, "median")
    via_images = fm.angular_statistic((p + 1) / 2, enc, "median", encoded=True)
    assert via_images.item() == pytest.approx(direct.item(), abs=1e-3)
    with pytest.raises(ValueError, match="encoded=True"):
        fm.angular_error(p, t, encoded=True)


def test_monotone_and_module_flags():
    t = random_normals(1, 16, 16, 8)
    errs = [fm.angular_error_stats(perturb(t, s, 9), t) for s in (0.05, 0.2, 0.5)]
    assert errs[0]["mean"] < errs[1]["mean"] < errs[2]["mean"]
    assert errs[0]["11.25"] > errs[1]["11.25"] > errs[2]["11.25"]
    assert not fm.AngularError("rmse").higher_is_better and fm.AngularError("22.5").higher_is_better
    assert fm.METRICS["angular_30"].higher_is_better and not fm.METRICS["angular_median"].higher_is_better
    m = fm.AngularError("median", reduction="none")
    assert m(perturb(t, 0.2, 9), t).shape == (1,)


def test_gradients_and_bad_inputs():
    t = random_normals(1, 4, 4, 10)
    p = perturb(t, 0.3, 11).requires_grad_(True)
    fm.angular_error(p, t).mean().backward()
    assert torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="3 channels"):
        fm.angular_error(t[:, :2], t[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        fm.angular_error(t, t[..., :3])
    with pytest.raises(ValueError, match="statistic"):
        fm.AngularError("max")
    with pytest.raises(ValueError, match="mask"):
        fm.angular_error_stats(t, t, torch.ones(1, 2, 4, 4))
