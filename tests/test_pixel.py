"""Pixel losses (L1, L2, low-frequency L2, total variation) and the feature perceptual loss.

Oracles are written plainly with NumPy / SciPy in the tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from featstat.losses.functional import (
    gaussian_blur,
    l1_loss,
    l2_loss,
    low_frequency_l2_loss,
    perceptual_loss,
    total_variation,
)
from featstat.losses.perceptual import PerceptualLoss
from featstat.losses.pixel import (
    L1Loss,
    L2Loss,
    LowFrequencyL2Loss,
    TotalVariationLoss,
    gaussian_kernel1d,
)


def _pair(n=3, c=3, h=16, w=14, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype), torch.rand(n, c, h, w, generator=g, dtype=dtype)


# ------------------------------------------------------------------------------------------ L1 / L2


def test_l1_l2_match_numpy():
    x, y = _pair()
    a, b = x.numpy(), y.numpy()
    want_l1 = np.array([np.abs(a[i] - b[i]).mean() for i in range(3)])
    want_l2 = np.array([((a[i] - b[i]) ** 2).mean() for i in range(3)])
    np.testing.assert_allclose(l1_loss(x, y, reduction="none").numpy(), want_l1, rtol=1e-12)
    np.testing.assert_allclose(l2_loss(x, y, reduction="none").numpy(), want_l2, rtol=1e-12)
    assert l1_loss(x, y).item() == pytest.approx(want_l1.mean(), rel=1e-12)
    assert l2_loss(x, y, reduction="sum").item() == pytest.approx(want_l2.sum(), rel=1e-12)


@pytest.mark.parametrize("fn", [l1_loss, l2_loss, low_frequency_l2_loss])
def test_pointwise_target_batch_one_broadcasts(fn):
    x, y = _pair(h=12, w=12)
    t = y[:1]
    assert torch.allclose(fn(x, t, reduction="none"), fn(x, t.expand_as(x), reduction="none"))


@pytest.mark.parametrize("fn", [l1_loss, l2_loss, low_frequency_l2_loss])
def test_pointwise_reductions(fn):
    x, y = _pair(h=12, w=12)
    none = fn(x, y, reduction="none")
    assert none.shape == (3,)
    assert torch.allclose(fn(x, y, reduction="mean"), none.mean())
    assert torch.allclose(fn(x, y, reduction="sum"), none.sum())
    assert fn(x, x, reduction="none").abs().max() < 1e-12


@pytest.mark.parametrize("fn", [l1_loss, l2_loss])
def test_l1_l2_gradcheck(fn):
    x, y = _pair(n=2, c=2, h=3, w=3)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fn(a, y), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fn", [l1_loss, l2_loss, low_frequency_l2_loss])
def test_half_precision_close_to_float32(fn, dtype):
    x, y = _pair(h=12, w=12, dtype=torch.float32)
    ref = fn(x, y, reduction="none")
    got = fn(x.to(dtype), y.to(dtype), reduction="none")
    assert got.dtype == torch.float32
    assert torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=5e-2, atol=1e-3)


def test_float64_stays_float64():
    x, y = _pair()
    assert l1_loss(x, y).dtype == torch.float64
    assert low_frequency_l2_loss(x, y).dtype == torch.float64
    assert total_variation(x).dtype == torch.float64


def test_follows_device(device):
    x, y = _pair(h=12, w=12, dtype=torch.float32)
    ref = low_frequency_l2_loss(x, y, reduction="none")
    got = low_frequency_l2_loss(x.to(device), y.to(device), reduction="none")
    assert got.device.type == device
    assert torch.allclose(got.cpu(), ref, rtol=1e-4, atol=1e-6)


# -------------------------------------------------------------------------------------- low frequency


def test_gaussian_kernel_matches_formula():
    k = gaussian_kernel1d(21, 3.0, dtype=torch.float64).numpy()
    i = np.arange(-10, 11)
    want = np.exp(-(i**2) / 18.0)
    np.testing.assert_allclose(k, want / want.sum(), rtol=1e-12)
    assert k.shape == (21,)


@pytest.mark.parametrize(
    ("padding", "scipy_mode"),
    [("reflect", "mirror"), ("replicate", "nearest"), ("zeros", "constant"), ("circular", "wrap")],
)
def test_gaussian_blur_matches_scipy(padding, scipy_mode):
    x, _ = _pair(n=2, c=3, h=23, w=25)
    want = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 3, 3), radius=(0, 0, 10, 10), mode=scipy_mode)
    got = gaussian_blur(x, 21, 3.0, padding=padding)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_low_frequency_l2_matches_scipy():
    x, y = _pair(n=2, c=3, h=24, w=22)
    bx = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 3, 3), radius=(0, 0, 10, 10), mode="mirror")
    by = ndimage.gaussian_filter(y.numpy(), sigma=(0, 0, 3, 3), radius=(0, 0, 10, 10), mode="mirror")
    want = ((bx - by) ** 2).reshape(2, -1).mean(axis=1)
    got = low_frequency_l2_loss(x, y, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


def test_low_frequency_ignores_high_frequencies():
    """A checkerboard added to the prediction is nearly invisible to LF-L2 but not to L2."""
    x, _ = _pair(n=1, c=1, h=32, w=32)
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 0.2 - 0.1
    y = x + checker.to(x.dtype)
    assert low_frequency_l2_loss(x, y) < 1e-3 * l2_loss(x, y)


def test_low_frequency_module_prepare_compare():
    x, y = _pair(h=12, w=13)
    loss = LowFrequencyL2Loss(reduction="none")
    prepared = loss.prepare_target(y)
    assert torch.allclose(loss.compare(x, prepared), low_frequency_l2_loss(x, y, reduction="none"))
    assert torch.allclose(loss(x, y), low_frequency_l2_loss(x, y, reduction="none"))
    # batch-1 target prepared once, compared with a batch
    p1 = loss.prepare_target(y[:1])
    assert torch.allclose(loss.compare(x, p1), low_frequency_l2_loss(x, y[:1], reduction="none"))


def test_low_frequency_gradcheck():
    x, y = _pair(n=1, c=2, h=6, w=6)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: low_frequency_l2_loss(a, y, kernel_size=5, sigma=1.0), (x,))


def test_low_frequency_too_small_for_reflect():
    x, y = _pair(h=8, w=8)
    with pytest.raises(ValueError, match="replicate"):
        low_frequency_l2_loss(x, y)
    assert torch.isfinite(low_frequency_l2_loss(x, y, padding="replicate"))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"kernel_size": 4}, "kernel_size"), ({"sigma": 0.0}, "sigma"), ({"padding": "mirror"}, "padding")],
)
def test_low_frequency_bad_arguments(kwargs, name):
    x, y = _pair(h=24, w=24)
    with pytest.raises(ValueError, match=name):
        low_frequency_l2_loss(x, y, **kwargs)


# ------------------------------------------------------------------------------------ total variation


def test_total_variation_matches_numpy():
    x, _ = _pair(n=2, c=3, h=5, w=7)
    a = x.numpy()
    dh = np.diff(a, axis=2)
    dw = np.diff(a, axis=3)
    chw = 3 * 5 * 7
    aniso = (np.abs(dh).reshape(2, -1).sum(1) + np.abs(dw).reshape(2, -1).sum(1)) / chw
    sq = ((dh**2).reshape(2, -1).sum(1) + (dw**2).reshape(2, -1).sum(1)) / chw
    iso = np.sqrt(dh[:, :, :, :-1] ** 2 + dw[:, :, :-1, :] ** 2).reshape(2, -1).sum(1) / chw
    np.testing.assert_allclose(total_variation(x, reduction="none").numpy(), aniso, rtol=1e-12)
    np.testing.assert_allclose(total_variation(x, "squared", reduction="none").numpy(), sq, rtol=1e-12)
    np.testing.assert_allclose(total_variation(x, "isotropic", reduction="none").numpy(), iso, rtol=1e-12)


@pytest.mark.parametrize("kind", ["anisotropic", "isotropic", "squared"])
def test_total_variation_constant_is_zero_and_gradcheck(kind):
    c = torch.full((2, 3, 4, 5), 0.3, dtype=torch.float64, requires_grad=True)
    tv = total_variation(c, kind)
    assert tv.item() == pytest.approx(0.0, abs=1e-12)
    tv.backward()
    assert torch.isfinite(c.grad).all()
    x, _ = _pair(n=2, c=2, h=3, w=4)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: total_variation(a, kind), (x,))


def test_total_variation_module_ignores_target():
    x, y = _pair()
    tv = TotalVariationLoss("isotropic", reduction="sum")
    assert torch.allclose(tv(x), total_variation(x, "isotropic", reduction="sum"))
    assert torch.allclose(tv(x, y), tv(x))
    with pytest.raises(ValueError, match="kind"):
        TotalVariationLoss("l0")


# --------------------------------------------------------------------------------------- modules etc.


def test_modules_match_functional():
    x, y = _pair(h=12, w=12)
    assert torch.allclose(L1Loss()(x, y), l1_loss(x, y))
    assert torch.allclose(L2Loss(reduction="sum")(x, y), l2_loss(x, y, reduction="sum"))
    assert L1Loss(reduction="none")(x, y).shape == (3,)
    assert L1Loss.pointwise and L2Loss.pointwise and LowFrequencyL2Loss.pointwise


def test_perceptual_matches_numpy():
    x, y = _pair(n=2, c=8, h=5, w=4)
    a, b = x.numpy(), y.numpy()
    want1 = np.array([np.abs(a[i] - b[i]).mean() for i in range(2)])
    want2 = np.array([((a[i] - b[i]) ** 2).mean() for i in range(2)])
    np.testing.assert_allclose(perceptual_loss(x, y, reduction="none").numpy(), want1, rtol=1e-12)
    np.testing.assert_allclose(perceptual_loss(x, y, "l2", reduction="none").numpy(), want2, rtol=1e-12)
    assert torch.allclose(PerceptualLoss("l2")(x, y), perceptual_loss(x, y, "l2"))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: perceptual_loss(f, y, "l1"), (x,))
    with pytest.raises(ValueError, match="norm"):
        perceptual_loss(x, y, norm="l3")
    with pytest.raises(ValueError, match="same shape"):
        perceptual_loss(x, y[:, :, :3])


def test_perceptual_half_precision():
    x, y = _pair(n=2, c=8, h=5, w=4, dtype=torch.float32)
    ref = perceptual_loss(x, y)
    for dt in (torch.float16, torch.bfloat16):
        got = perceptual_loss(x.to(dt), y.to(dt))
        assert got.dtype == torch.float32 and torch.isfinite(got)
        assert got.item() == pytest.approx(ref.item(), rel=2e-2)


# ------------------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("fn", [l1_loss, l2_loss, low_frequency_l2_loss, perceptual_loss])
def test_bad_inputs_raise(fn):
    x, y = _pair(h=12, w=12)
    with pytest.raises(ValueError, match="dimensions"):
        fn(x[0], y[0])
    with pytest.raises(ValueError, match="channels"):
        fn(x, y[:, :2])
    with pytest.raises(ValueError, match="batch"):
        fn(x, y[:2])
    with pytest.raises(ValueError, match="same shape"):
        fn(x, y[:, :, :11])
    with pytest.raises(ValueError, match="floating"):
        fn((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="reduction"):
        fn(x, y, reduction="max")
    with pytest.raises(ValueError, match=r"torch\.Tensor"):
        fn(x.numpy(), y)


def test_total_variation_bad_inputs():
    with pytest.raises(ValueError, match="pred must"):
        total_variation(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="floating"):
        total_variation(torch.ones(1, 3, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="kind"):
        total_variation(torch.rand(1, 3, 4, 4), kind="l0")
