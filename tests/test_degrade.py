"""Degradations match their definitions: noise statistics, blur kernels, JPEG = Pillow round trip,
MATLAB-style bicubic resizing, Bayer sampling and bilinear demosaicking; seeded; bad inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from featstat.restoration import degrade as D


def _image(n: int = 1, h: int = 48, w: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, h // 8 + 2, w // 8 + 2, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


# ----------------------------------------------------------------------------------------------- noise


def test_gaussian_noise_statistics_in_8bit_units():
    x = torch.full((2, 3, 128, 128), 0.5)
    y = D.gaussian_noise(x, 25, generator=3)
    noise = (y - x).flatten(1)
    assert noise.mean(dim=1).abs().max() < 4 * (25 / 255) / noise.shape[1] ** 0.5  # 4 standard errors
    assert torch.allclose(noise.std(dim=1), torch.tensor(25 / 255), rtol=0.02)
    # the two images get independent noise
    assert not torch.allclose(noise[0], noise[1])
    # [0, 1] units give the same noise for sigma / 255
    assert torch.allclose(D.gaussian_noise(x, 25 / 255, units=1, generator=3), y, atol=1e-6)


def test_gaussian_noise_seeded_clipped_and_per_image_range():
    x = _image(4)
    a, b = D.gaussian_noise(x, 50, generator=7), D.gaussian_noise(x, 50, generator=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, D.gaussian_noise(x, 50, generator=8))
    assert a.min() < 0 or a.max() > 1  # unclipped by default: exactly Gaussian
    c = D.gaussian_noise(x, 50, clip=True, generator=7)
    assert c.min() >= 0 and c.max() <= 1
    big = torch.full((6, 1, 96, 96), 0.5)
    stds = (D.gaussian_noise(big, (5, 50), generator=1) - 0.5).flatten(1).std(dim=1) * 255
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


def test_camera_shake_kernels_sum_to_one_centred_and_seeded():
    kernels = D.random_motion_kernels(6, 21, generator=0)
    assert kernels.shape == (6, 21, 21) and kernels.dtype == torch.float64
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(6, dtype=torch.float64), atol=1e-12)
    assert (kernels >= 0).all()
    grid = torch.arange(21, dtype=torch.float64)
    for k in kernels:  # centre of mass at the centre: bilinear splatting keeps the trajectory's mean
        assert abs(float((k.sum(1) * grid).sum()) - 10) < 1e-6
        assert abs(float((k.sum(0) * grid).sum()) - 10) < 1e-6
    assert torch.equal(kernels, D.random_motion_kernels(6, 21, generator=0))
    assert not torch.equal(kernels[0], kernels[1])
    # a longer trajectory spreads the mass further from the centre
    r2 = (grid - 10).square()
    spread = [
        float((D.camera_shake_kernel(21, length=L, generator=5) * (r2[:, None] + r2[None, :])).sum())
        for L in (3.0, 30.0)
    ]
    assert spread[1] > 3 * spread[0]


def test_blur_is_a_true_convolution():
    x = _image(2, 24, 20)
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1
    assert torch.allclose(D.blur(x, delta), x, atol=1e-7)
    shift = torch.zeros(5, 5, dtype=torch.float64)
    shift[2, 3] = 1  # mass right of centre moves the image right
    assert torch.allclose(D.blur(x, shift)[..., 1:], x[..., :-1], atol=1e-7)
    k = D.random_motion_kernels(2, 7, generator=1)
    y = D.blur(x.double(), k)
    for i in range(2):
        for c in range(3):  # scipy's convolve with mirrored borders is the oracle
            ref = ndimage.convolve(x[i, c].double().numpy(), k[i].numpy(), mode="mirror")
            assert np.allclose(y[i, c].numpy(), ref, atol=1e-12)


def test_motion_blur_adds_bounded_noise_and_returns_kernels():
    x = _image(3, 40, 40)
    y, k = D.motion_blur(
        x, kernel_size=9, noise_sigma=(0, 2.55), clip=False, generator=2, return_kernels=True
    )
    residual = (y - D.blur(x, k)).flatten(1).std(dim=1) * 255
    assert (residual < 2.55 * 1.1).all()
    y2 = D.motion_blur(x, kernel_size=9, noise_sigma=0, generator=2)
    assert torch.allclose(y2, D.blur(x, k).clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="size must be an odd integer"):
        D.motion_blur(x, kernel_size=8)
    with pytest.raises(ValueError, match="kernels must be k×k or N×k×k"):
        D.blur(x, torch.ones(2, 3, 3) / 9)


# ----------------------------------------------------------------------------------------------- JPEG


@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_equals_a_pillow_round_trip(channels):
    x = _image(2, 40, 48)[:, :channels]
    y = D.jpeg(x, 15)
    for i in range(2):
        arr = (x[i].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=15)
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255
        ref = ref[:, :, None] if ref.ndim == 2 else ref
        assert torch.equal(y[i], torch.from_numpy(ref).permute(2, 0, 1))
    assert (y - x).abs().max() > 2 / 255  # real artefacts at q = 15


def test_jpeg_quality_range_and_bad_inputs():
    x = _image(4, 32, 32)
    low, high = D.jpeg(x, 5), D.jpeg(x, 95)
    assert (low - x).square().mean() > 4 * (high - x).square().mean()
    y = D.jpeg(x, (5, 95), generator=0)
    assert torch.equal(y, D.jpeg(x, (5, 95), generator=0))
    with pytest.raises(ValueError, match=r"quality must be an integer in \[1, 100\]"):
        D.jpeg(x, 0)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        D.jpeg(torch.rand(1, 2, 8, 8), 50)


# ----------------------------------------------------------------------------------------------- resize


def test_matlab_bicubic_matches_antialiased_torch_away_from_borders_and_keeps_constants():
    x = _image(1, 64, 48).double()
    for s in (2, 4, 8):
        m = D.bicubic_downsample(x, s)
        t = D.bicubic_downsample(x, s, method="torch")
        assert m.shape == (1, 3, 64 // s, 48 // s)
        b = 2  # border pixels where MATLAB mirrors and Pillow renormalises
        assert torch.allclose(m[..., b:-b, b:-b], t[..., b:-b, b:-b], atol=1e-9)
    const = torch.full((1, 1, 32, 32), 0.3, dtype=torch.float64)
    assert torch.allclose(D.bicubic_downsample(const, 4), torch.full((1, 1, 8, 8), 0.3, dtype=torch.float64))
    up = D.resize_bicubic(x, scale=2.0)
    assert up.shape == (1, 3, 128, 96)
    assert torch.allclose(D.bicubic_downsample(up, 2)[..., 2:-2, 2:-2], x[..., 2:-2, 2:-2], atol=0.05)


def test_bicubic_downsample_reproduces_set5_low_resolution(shared):
    from featstat.io import read_image

    hr = read_image(shared / "images/set5/img_002_SRF_4_HR.png")
    lr = read_image(shared / "images/set5/img_002_SRF_4_LR.png")
    ours = (D.bicubic_downsample(hr, 4).clamp(0, 1) * 255).round() / 255
    inner = (ours - lr)[..., 4:-4, 4:-4].abs() * 255
    assert inner.max() <= 1.0 + 1e-4  # within one 8-bit level of the benchmark's MATLAB images
    assert -10 * torch.log10((ours - lr).square().mean()) > 50


def test_resize_bad_inputs():
    with pytest.raises(ValueError, match="not multiples of scale 4"):
        D.bicubic_downsample(torch.rand(1, 3, 30, 32), 4)
    with pytest.raises(ValueError, match="scale must be one of"):
        D.bicubic_downsample(torch.rand(1, 3, 30, 30), 5)
    with pytest.raises(ValueError, match="exactly one of size"):
        D.resize_bicubic(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="method must be one of"):
        D.resize_bicubic(torch.rand(1, 3, 8, 8), scale=0.5, method="lanczos")


# ----------------------------------------------------------------------------------------------- Bayer


@pytest.mark.parametrize("pattern", D.BAYER_PATTERNS)
def test_bayer_mask_and_mosaic_follow_the_pattern(pattern):
    mask = D.bayer_mask(6, 8, pattern)
    assert torch.equal(mask.sum(dim=1), torch.ones(1, 6, 8))  # one colour per site
    channel = {"R": 0, "G": 1, "B": 2}
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        assert mask[0, channel[colour], dy::2, dx::2].eq(1).all()
    assert mask[0, 1].sum() == 2 * mask[0, 0].sum() == 2 * mask[0, 2].sum()  # twice as many greens
    x = _image(2, 6, 8)
    raw = D.bayer_mosaic(x, pattern)
    assert raw.shape == (2, 1, 6, 8)
    assert torch.equal(raw, (x * mask).sum(1, keepdim=True))


def test_rggb_sites_and_mosaic_noise():
    x = _image(1, 8, 8)
    raw = D.bayer_mosaic(x)  # RGGB
    assert torch.equal(raw[0, 0, 0::2, 0::2], x[0, 0, 0::2, 0::2])
    assert torch.equal(raw[0, 0, 0::2, 1::2], x[0, 1, 0::2, 1::2])
    assert torch.equal(raw[0, 0, 1::2, 0::2], x[0, 1, 1::2, 0::2])
    assert torch.equal(raw[0, 0, 1::2, 1::2], x[0, 2, 1::2, 1::2])
    flat = torch.full((1, 3, 128, 128), 0.5)
    noisy = D.bayer_mosaic(flat, noise_sigma=10, generator=0)
    assert torch.allclose((noisy - 0.5).std(), torch.tensor(10 / 255), rtol=0.03)


def test_bilinear_demosaicking_keeps_samples_and_is_exact_on_linear_images():
    rows = torch.arange(16.0).view(16, 1) / 40
    cols = torch.arange(20.0).view(1, 20) / 50
    x = torch.stack([0.1 + rows + cols, 0.2 + 0.5 * rows + 0 * cols, 0.3 + cols + 0 * rows]).unsqueeze(0)
    for pattern in D.BAYER_PATTERNS:
        raw = D.bayer_mosaic(x, pattern)
        rgb = D.demosaic_bilinear(raw, pattern)
        mask = D.bayer_mask(16, 20, pattern).bool()
        assert torch.allclose(rgb[mask], x[mask])  # recorded samples are kept
        assert torch.allclose(rgb[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-6)  # linear → exact
    const = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(D.demosaic_bilinear(D.bayer_mosaic(const)), const, atol=1e-6)
    with pytest.raises(ValueError, match="raw must have 1 channels"):
        D.demosaic_bilinear(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="pattern must be one of"):
        D.bayer_mask(4, 4, "RGBG")


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
