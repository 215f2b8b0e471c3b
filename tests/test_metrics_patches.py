"""Patch-distribution divergences (KDE of 2-D projected 5×5 patches) and the diffusion KDE itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featstat.metrics as fm
from featstat.metrics import kde as K


def natural_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    arr = np.stack([np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((h, w))))) for _ in range(3)])
    arr = (arr - arr.min()) / (arr.max() - arr.min())
    return torch.from_numpy(arr).float()[None]


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


FAST = dict(num_projections=3, grid_size=64, emd_bins=16)


def test_dct_and_brent_helpers():
    x = np.random.default_rng(0).random((8, 8))
    d, di = K.dct2_matrix(8)
    a = d @ x @ d.T
    a[0, :] /= 2
    a[:, 0] /= 2
    np.testing.assert_allclose(K._dct_halved(K._dct_halved(x, 0), 1), a, atol=1e-12)
    np.testing.assert_allclose(K._idct_halved(K._idct_halved(a, 0), 1), x, atol=1e-12)
    np.testing.assert_allclose(di @ (d @ x @ d.T) @ di.T, x, atol=1e-12)
    assert K.brent_root(np.cos, 0.0, 3.0) == pytest.approx(np.pi / 2, abs=1e-12)
    assert K.brent_root(lambda t: t**3 - 2 * t - 5, 2.0, 3.0) == pytest.approx(2.0945514815423265, abs=1e-12)
    with pytest.raises(ValueError, match="opposite signs"):
        K.brent_root(lambda t: t * t + 1, -1.0, 1.0)


def test_kde2d_matches_reference_port():
    kde_diffusion = pytest.importorskip("kde_diffusion")
    rng = np.random.default_rng(1)
    x = rng.normal(size=2000)
    y = 0.6 * x + 0.4 * rng.standard_t(4, size=2000)
    limits = ((-6.0, 6.0), (-5.0, 5.0))
    d1, _, b1 = fm.kde2d(x, y, 128, limits)
    d2, _, b2 = kde_diffusion.kde2d(x, y, 128, limits)
    np.testing.assert_allclose(b1, b2, rtol=1e-8)
    np.testing.assert_allclose(d1, d2, atol=1e-10 * d2.max())


def test_kde2d_properties():
    rng = np.random.default_rng(2)
    n = 4000
    x, y = rng.normal(size=n), 2.0 * rng.normal(size=n)
    density, (gx, gy), bw = fm.kde2d(x, y, 128)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    assert density.sum() * cell == pytest.approx(1.0, abs=1e-9)
    # for Gaussian data the diffusion bandwidth is close to the normal-reference one, σ·n^(-1/6)
    assert bw[0] == pytest.approx(n ** (-1 / 6), rel=0.3)
    assert bw[1] == pytest.approx(2.0 * n ** (-1 / 6), rel=0.3)
    i, j = np.unravel_index(density.argmax(), density.shape)
    assert abs(gx[i]) < 0.3 and abs(gy[j]) < 0.6


def test_identical_images_give_zero_and_symmetry():
    x = natural_image(32, 32, seed=3)
    d = fm.patch_divergences(x, x, **FAST)
    assert all(v.item() == pytest.approx(0.0, abs=1e-12) for v in d.values())
    y = noisy(x, 0.1)
    a = fm.patch_divergences(y, x, **FAST)
    b = fm.patch_divergences(x, y, **FAST)
    assert a["chi2"].item() == pytest.approx(b["chi2"].item(), rel=1e-9)
    assert a["emd"].item() == pytest.approx(b["emd"].item(), rel=1e-6)


def test_divergences_grow_with_noise():
    x = natural_image(40, 40, seed=4)
    preds = torch.cat([noisy(x, s, seed=5) for s in (0.02, 0.08, 0.25)])
    d = fm.patch_divergences(preds, x, reduction="none", **FAST)
    for name, v in d.items():
        assert bool((v[1:] > v[:-1]).all()), (name, v)


def test_pipeline_matches_independent_reference():
    """One projection recomputed with NumPy patches, kde-diffusion and POT."""
    kde_diffusion = pytest.importorskip("kde_diffusion")
    ot = pytest.importorskip("ot")
    x = natural_image(24, 24, seed=6)
    y = noisy(x, 0.1, seed=7)
    got = fm.patch_divergences(y.double(), x.double(), num_projections=1, grid_size=64, emd_bins=16, seed=3)
    proj = fm.random_projections_2d(75, 1, 3)[0].numpy()  # 75×2

    def patches(img):
        a = img[0].double().numpy()  # C×H×W
        win = np.lib.stride_tricks.sliding_window_view(a, (3, 5, 5))[0]  # H'×W'×3×5×5
        return win.reshape(-1, 75) @ proj  # channel-major, like F.unfold

    py, px = patches(y), patches(x)
    lo = np.minimum(py.min(0), px.min(0))
    hi = np.maximum(py.max(0), px.max(0))
    span = hi - lo
    lo, hi = lo - span / 2 - span / 128, hi + span / 2 + span / 128  # documented padding, n = 64
    limits = ((lo[0], hi[0]), (lo[1], hi[1]))
    eps = np.finfo(float).eps
    probs = []
    for pts in (py, px):
        dens, _, _ = kde_diffusion.kde2d(pts[:, 0], pts[:, 1], 64, limits)
        dens = np.maximum(dens, eps)
        probs.append(dens / dens.sum())
    p, q = probs
    assert got["kl"].item() == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-4)
    assert got["chi2"].item() == pytest.approx(0.5 * np.sum((p - q) ** 2 / (p + q)), rel=1e-4)
    pc = p.reshape(16, 4, 16, 4).sum(axis=(1, 3)).ravel()
    qc = q.reshape(16, 4, 16, 4).sum(axis=(1, 3)).ravel()
    cx = lo[0] + (np.arange(16) + 0.5) * (hi[0] - lo[0]) / 16
    cy = lo[1] + (np.arange(16) + 0.5) * (hi[1] - lo[1]) / 16
    centres = np.stack(np.meshgrid(cx, cy, indexing="ij"), -1).reshape(-1, 2)
    cost = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    assert got["emd"].item() == pytest.approx(ot.emd2(pc, qc, cost), rel=1e-4)


def test_module_registry_and_bad_inputs():
    x = natural_image(16, 16, seed=8)
    m = fm.PatchDivergence("chi2", reduction="none", **FAST)
    assert m(noisy(x, 0.1), x).shape == (1,) and not m.higher_is_better
    assert fm.get_metric("patch_kl").function(x, x, **FAST).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="patch_size=5"):
        fm.patch_divergence(x[..., :4, :4], x[..., :4, :4])
    with pytest.raises(ValueError, match="power of two"):
        fm.patch_divergence(x, x, grid_size=100)
    with pytest.raises(ValueError, match="emd_bins"):
        fm.patch_divergence(x, x, grid_size=64, emd_bins=10)
    with pytest.raises(ValueError, match="divergence"):
        fm.patch_divergence(x, x, "js")
    with pytest.raises(ValueError, match="constant images"):
        fm.patch_divergence(torch.full_like(x, 0.5), torch.full_like(x, 0.5), **FAST)
    with pytest.raises(ValueError, match="same number of channels"):
        fm.patch_divergence(x, x[:, :1], **FAST)
