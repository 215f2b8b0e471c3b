"""Deep Image Prior degradation operators: resampling against Pillow and the reference Lanczos-2 downsampler,
noise, JPEG, masks, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from featstat.prior import (
    Downsampler,
    add_gaussian_noise,
    jpeg_compress,
    random_mask,
    resample_matrix,
    resize,
)

PIL_FILTERS = {
    "lanczos3": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
}


@pytest.mark.parametrize("kernel", list(PIL_FILTERS))
@pytest.mark.parametrize(
    ("size", "out"),
    [
        ((64, 48), (16, 12)),
        ((37, 50), (9, 25)),
        ((30, 30), (11, 7)),
        ((16, 12), (64, 48)),
        ((13, 9), (20, 31)),
    ],
)
def test_resize_matches_pillow(kernel, size, out):
    """Antialiased reduction and enlargement, integer and fractional factors, odd sizes: Pillow's
    ``Image.resize`` on float ("F") images is the reference (edges renormalised, as Pillow does)."""
    rng = np.random.default_rng(0)
    a = rng.random(size).astype(np.float32)
    expected = np.asarray(Image.fromarray(a, mode="F").resize(out[::-1], PIL_FILTERS[kernel]))
    got = resize(torch.from_numpy(a)[None, None], out, kernel)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def _reference_dip_kernel(factor: int) -> np.ndarray:
    """The public Deep Image Prior code's 'lanczos2' kernel with phase 1/2, transcribed from its formula:
    (4f)×(4f) taps at d = |i + 1/2 − c| / f, value 2·sin(πd)·sin(πd/2) / (π²d²) per axis, normalised."""
    width = 4 * factor + 1
    n = width - 1
    centre = (width + 1) / 2
    k = np.zeros((n, n))
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            v = 1.0
            for d in (abs(i + 0.5 - centre) / factor, abs(j + 0.5 - centre) / factor):
                if d != 0:
                    v *= 2 * np.sin(np.pi * d) * np.sin(np.pi * d / 2) / (np.pi**2 * d * d)
            k[i - 1, j - 1] = v
    return k / k.sum()


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_downsampler_is_the_reference_lanczos2(factor):
    """Replicate padding by (4f − f)/2, a strided depthwise convolution: the reference ``Downsampler``."""
    g = torch.Generator().manual_seed(factor)
    x = torch.rand(1, 3, 6 * factor, 5 * factor, generator=g, dtype=torch.float64)
    k = torch.from_numpy(_reference_dip_kernel(factor))
    pad = (k.shape[0] - factor) // 2
    weight = k[None, None].expand(3, 1, -1, -1).contiguous()
    expected = F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), weight, stride=factor, groups=3)
    got = Downsampler(factor)(x)
    assert got.shape == (1, 3, 6, 5)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_downsampler_interior_equals_the_pillow_style_lanczos2():
    """Edges aside, replicate and renormalise are the same operator (same kernel, same pixel centres)."""
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    a = Downsampler(4)(x)
    b = resize(x, (16, 16), "lanczos2", edge="renormalise")
    torch.testing.assert_close(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], atol=1e-12, rtol=0)
    assert not torch.allclose(a, b)


def test_resize_properties():
    for kernel in ("lanczos2", "lanczos3", "bicubic", "bilinear", "box"):
        for edge in ("renormalise", "replicate", "reflect"):
            m = resample_matrix(23, 7, kernel, edge=edge)
            torch.testing.assert_close(m.sum(1), torch.ones(7, dtype=torch.float64))  # constants preserved
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    assert torch.equal(resize(x, (12, 10), "lanczos3"), x)  # same size: identity
    assert resize(x.float(), (6, 5)).dtype == torch.float32
    assert resize(x.to(torch.bfloat16), (6, 5)).dtype == torch.bfloat16
    # first output of a ×2 bilinear reduction: taps −1, 0, 1, 2 with weights 1, 3, 3, 1 (/8); tap −1 is
    # pixel 1 when reflecting (no repeated border), pixel 0 when replicating, dropped when renormalising
    first = {"reflect": [3, 4, 1], "replicate": [4, 3, 1], "renormalise": [3 / 7 * 8, 3 / 7 * 8, 1 / 7 * 8]}
    for edge, row in first.items():
        m = resample_matrix(8, 4, "bilinear", edge=edge)
        torch.testing.assert_close(m[0, :3], torch.tensor(row, dtype=torch.float64) / 8)


def test_resize_gradients():
    x = torch.rand(1, 2, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: resize(t, (4, 3), "lanczos3"), (x,))
    assert torch.autograd.gradcheck(lambda t: Downsampler(2)(t[..., :8, :8]), (x,))


def test_resize_under_autocast_stays_float32():
    x = torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = Downsampler(4)(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, Downsampler(4)(x))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: resize(torch.rand(3, 8, 8), (4, 4)), "4 dimensions"),
        (lambda: resize(torch.rand(1, 3, 8, 8), (4, 0)), "size must be"),
        (lambda: resize(torch.rand(1, 3, 8, 8), (4, 4), "nearest"), "kernel must be one of"),
        (lambda: resize(torch.rand(1, 3, 8, 8), (4, 4), edge="wrap"), "edge must be one of"),
        (lambda: Downsampler(4)(torch.rand(1, 3, 10, 8)), r"10×8 pixels, not divisible by the factor 4"),
        (lambda: Downsampler(0), "factor must be a positive integer"),
        (lambda: add_gaussian_noise(torch.rand(1, 3, 4, 4), -0.1), "sigma must be"),
        (lambda: jpeg_compress(torch.rand(1, 3, 8, 8), 0), "quality must be an integer from 1 to 95"),
        (lambda: jpeg_compress(torch.rand(1, 2, 8, 8)), "1 or 3 channels"),
        (lambda: random_mask((8, 8), 1.0), r"drop must be a fraction in \[0, 1\)"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gaussian_noise():
    x = torch.full((1, 3, 64, 64), 0.5)
    y = add_gaussian_noise(x, 25 / 255, seed=3, clip=False)
    assert abs(float((y - x).std()) - 25 / 255) < 0.003 and abs(float((y - x).mean())) < 0.003
    assert torch.equal(y, add_gaussian_noise(x, 25 / 255, seed=3, clip=False))
    z = add_gaussian_noise(torch.zeros(1, 1, 32, 32), 0.3, seed=0)
    assert float(z.min()) == 0.0 and float(z.max()) <= 1.0  # clipped like the reference


def test_jpeg_compress_makes_block_artefacts():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    img = torch.stack([x, y, (x + y) / 2])[None] * 0.8 + 0.1
    img = img + 0.05 * torch.sin(40 * x)[None, None]
    low, high = jpeg_compress(img, 5), jpeg_compress(img, 95)
    assert low.shape == img.shape and low.dtype == img.dtype
    err_low, err_high = (low - img).square().mean(), (high - img).square().mean()
    assert err_high < err_low / 4
    # blockiness: jumps across 8×8 block borders exceed jumps inside blocks
    d = (low[..., :, 1:] - low[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    border = d[7::8].mean()
    inside = torch.cat([d[i::8] for i in range(7)]).mean()
    assert border > 1.3 * inside


def test_random_mask():
    m = random_mask((100, 120), 0.5, seed=1)
    assert m.shape == (1, 1, 100, 120) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(m.mean()) - 0.5) < 0.02
    assert torch.equal(m, random_mask((100, 120), 0.5, seed=1))
    assert float(random_mask((50, 50), 0.0).min()) == 1.0
