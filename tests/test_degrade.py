"""The restoration degradations: thin seeded wrappers over featstat.ops (the operators themselves are tested
against Pillow, SciPy and MATLAB in tests/test_ops.py): noise in 8-bit units by default, per-image σ and
JPEG-quality ranges, motion blur + noise, noisy mosaics, the task presets; seeded; bad inputs."""

from __future__ import annotations

import pytest
import torch

from featstat import ops
from featstat.restoration import degrade as D


def _image(n: int = 1, h: int = 48, w: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, h // 8 + 2, w // 8 + 2, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


# ------------------------------------------------------------------------------------------- wrappers


def test_wrappers_are_the_ops_operators_with_8bit_units():
    for name in ("bayer_mask", "bicubic_downsample", "blur", "demosaic_bilinear", "resize_bicubic"):
        assert getattr(D, name) is getattr(ops, name)  # re-exported, one copy
    assert D.BAYER_PATTERNS is ops.BAYER_PATTERNS and D.RESIZE_METHODS is ops.RESIZE_METHODS
    x = _image(2)
    g = torch.Generator().manual_seed(4)
    assert torch.equal(
        D.gaussian_noise(x, (5, 30), seed=4), ops.gaussian_noise(x, (5, 30), units="255", seed=g)
    )
    assert torch.equal(
        D.gaussian_noise(x, 25), ops.gaussian_noise(x, 25, units="255", seed=0)
    )  # default seed 0
    assert torch.equal(D.jpeg(x, 15), ops.jpeg(x, 15))
    assert torch.equal(D.camera_shake_kernel(9, seed=3), ops.camera_shake_kernel(9, seed=3))
    y, k = D.motion_blur(x, kernel_size=7, seed=1, return_kernels=True)
    g = torch.Generator().manual_seed(1)
    k_ops = ops.random_motion_kernels(2, 7, seed=g)  # kernels first, then the noise, from one generator
    assert torch.equal(k, k_ops)
    assert torch.equal(y, ops.gaussian_noise(ops.blur(x, k_ops), (0.0, 2.55), units="255", clip=True, seed=g))


def test_generator_is_the_deprecated_spelling_of_seed():
    x = _image(2)
    with pytest.warns(DeprecationWarning, match="'generator' is now 'seed'"):
        old = D.gaussian_noise(x, (5, 30), generator=4)
    assert torch.equal(old, D.gaussian_noise(x, (5, 30), seed=4))
    deg = D.make_degradation("deblur")
    with pytest.warns(DeprecationWarning, match="'generator' is now 'seed'"):
        old = deg(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(old, deg(x, 3))
    with pytest.raises(TypeError, match="both 'generator'"):
        D.jpeg(x, (5, 95), generator=1, seed=1)


# ----------------------------------------------------------------------------------------------- noise


def test_gaussian_noise_statistics_in_8bit_units():
    x = torch.full((2, 3, 128, 128), 0.5)
    y = D.gaussian_noise(x, 25, seed=3)
    noise = (y - x).flatten(1)
    assert noise.mean(dim=1).abs().max() < 4 * (25 / 255) / noise.shape[1] ** 0.5  # 4 standard errors
    assert torch.allclose(noise.std(dim=1), torch.tensor(25 / 255), rtol=0.02)
    # the two images get independent noise
    assert not torch.allclose(noise[0], noise[1])
    # [0, 1] units give the same noise for sigma / 255
    assert torch.allclose(D.gaussian_noise(x, 25 / 255, units=1, seed=3), y, atol=1e-6)


def test_gaussian_noise_seeded_clipped_and_per_image_range():
    x = _image(4)
    a, b = D.gaussian_noise(x, 50, seed=7), D.gaussian_noise(x, 50, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, D.gaussian_noise(x, 50, seed=8))
    assert a.min() < 0 or a.max() > 1  # unclipped by default: exactly Gaussian
    c = D.gaussian_noise(x, 50, clip=True, seed=7)
    assert c.min() >= 0 and c.max() <= 1
    big = torch.full((6, 1, 96, 96), 0.5)
    stds = (D.gaussian_noise(big, (5, 50), seed=1) - 0.5).flatten(1).std(dim=1) * 255
    assert (stds > 4.5).all() and (stds < 52).all() and stds.max() - stds.min() > 5
    x64 = x.double()
    assert D.gaussian_noise(x64, 10).dtype == torch.float64


def test_gaussian_noise_bad_inputs():
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        D.gaussian_noise(torch.rand(3, 8, 8), 25)
    with pytest.raises(ValueError, match="sigma"):
        D.gaussian_noise(_image(), -1)
    with pytest.raises(ValueError, match="low <= high"):
        D.gaussian_noise(_image(), (30, 10))
    with pytest.raises(ValueError, match="units"):
        D.gaussian_noise(_image(), 10, units=0)


# ----------------------------------------------------------------------------------------------- blur


def test_motion_blur_adds_bounded_noise_and_returns_kernels():
    x = _image(3, 40, 40)
    y, k = D.motion_blur(x, kernel_size=9, noise_sigma=(0, 2.55), clip=False, seed=2, return_kernels=True)
    residual = (y - D.blur(x, k)).flatten(1).std(dim=1) * 255
    assert (residual < 2.55 * 1.1).all()
    y2 = D.motion_blur(x, kernel_size=9, noise_sigma=0, seed=2)
    assert torch.allclose(y2, D.blur(x, k).clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="size must be an odd integer"):
        D.motion_blur(x, kernel_size=8)
    with pytest.raises(ValueError, match="kernels must be k×k or N×k×k"):
        D.blur(x, torch.ones(2, 3, 3) / 9)


# ----------------------------------------------------------------------------------------------- JPEG


def test_jpeg_quality_range_and_bad_inputs():
    x = _image(4, 32, 32)
    low, high = D.jpeg(x, 5), D.jpeg(x, 95)
    assert (low - x).square().mean() > 4 * (high - x).square().mean()
    y = D.jpeg(x, (5, 95), seed=0)
    assert torch.equal(y, D.jpeg(x, (5, 95), seed=0))
    with pytest.raises(ValueError, match=r"quality must be an integer in \[1, 100\]"):
        D.jpeg(x, 0)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        D.jpeg(torch.rand(1, 2, 8, 8), 50)


# ----------------------------------------------------------------------------------------------- Bayer


def test_rggb_sites_and_mosaic_noise():
    x = _image(1, 8, 8)
    raw = D.bayer_mosaic(x)  # RGGB
    assert torch.equal(raw[0, 0, 0::2, 0::2], x[0, 0, 0::2, 0::2])
    assert torch.equal(raw[0, 0, 0::2, 1::2], x[0, 1, 0::2, 1::2])
    assert torch.equal(raw[0, 0, 1::2, 0::2], x[0, 1, 1::2, 0::2])
    assert torch.equal(raw[0, 0, 1::2, 1::2], x[0, 2, 1::2, 1::2])
    flat = torch.full((1, 3, 128, 128), 0.5)
    noisy = D.bayer_mosaic(flat, noise_sigma=10, seed=0)
    assert torch.allclose((noisy - 0.5).std(), torch.tensor(10 / 255), rtol=0.03)


# ----------------------------------------------------------------------------------------------- tasks


def test_task_degradations_shapes_and_options():
    x = _image(1, 32, 32)
    assert D.make_degradation("sr4")(x).shape == (1, 3, 8, 8)
    assert D.make_degradation("sr2").multiple == 2 and D.make_degradation("demosaic").multiple == 2
    noisy = D.make_degradation("denoise", sigma=50, clip=False)(x, 0)
    assert torch.allclose((noisy - x).std(), torch.tensor(50 / 255), rtol=0.1)
    assert torch.equal(D.make_degradation("jpeg", quality=30)(x), D.jpeg(x, 30))
    demosaiced = D.make_degradation("demosaic", noise_sigma=0)(x)
    assert torch.allclose(demosaiced, D.demosaic_bilinear(D.bayer_mosaic(x)))
    assert torch.equal(D.make_degradation("normals")(x), x)
    with pytest.raises(ValueError, match="task must be one of"):
        D.make_degradation("inpaint")
    with pytest.raises(ValueError, match=r"unknown options \['sigma'\] for task 'jpeg'"):
        D.make_degradation("jpeg", sigma=3)
    with pytest.raises(ValueError, match="quality"):
        D.make_degradation("jpeg", quality=300)
