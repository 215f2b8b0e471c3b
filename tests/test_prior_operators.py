"""Deep Image Prior's operator spellings (featstat.prior.operators): the featstat.ops operators re-exported
(tested against Pillow and the reference Lanczos-2 downsampler in tests/test_ops.py) and thin wrappers — noise
with σ on [0, 1], JPEG with qualities 1–95, masks with DIP's seeds — plus bad inputs."""

from __future__ import annotations

import pytest
import torch

from featstat import ops
from featstat import prior as P
from featstat.prior import Downsampler, add_gaussian_noise, jpeg_compress, random_mask, resize


def test_operators_are_the_ops_ones_with_dip_spellings():
    for name in ("Downsampler", "resample_matrix", "resize", "EDGES", "KERNELS"):
        assert getattr(P, name) is getattr(ops, name)  # re-exported, one copy
    x = torch.rand(2, 3, 16, 16)
    # σ on the [0, 1] scale, computed in float32, a generator on the image's device, clipped by default
    g = torch.Generator().manual_seed(3)
    assert torch.equal(
        add_gaussian_noise(x, 0.1, seed=3), ops.gaussian_noise(x, 0.1, units="unit", seed=g, clip=True)
    )
    half = add_gaussian_noise(x.half(), 0.1, seed=3, clip=False)
    assert half.dtype == torch.float16
    assert torch.equal(half, ops.gaussian_noise(x.half().float(), 0.1, units="unit", seed=3).half())
    torch.manual_seed(11)  # seed=None: torch's global generator, as an unseeded torch.randn
    unseeded = add_gaussian_noise(x, 0.1, seed=None, clip=False)
    torch.manual_seed(11)
    assert torch.equal(unseeded, x + 0.1 * torch.randn(x.shape))
    assert torch.equal(jpeg_compress(x, 30), ops.jpeg(x, 30, subsampling="4:2:0"))
    assert torch.equal(random_mask((9, 8), 0.3, seed=2), ops.random_mask((9, 8), 0.3, seed=2))
    torch.manual_seed(5)
    unseeded_mask = random_mask((9, 8), 0.3, seed=None)
    torch.manual_seed(5)
    assert torch.equal(unseeded_mask, (torch.rand(1, 1, 9, 8) >= 0.3).float())


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
