"""Random multi-scale filter extractor (Ustyuzhaninov et al., ICLR 2017): exactness of the FFT path, shapes,
seeding, equivariance, use in an Objective, texture discrimination and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featstat import Objective, Term
from featstat.features.random_filters import PAPER_SIZES, RandomFilterExtractor, make_filters, random_filters
from featstat.losses import GramLoss
from featstat.losses.functional import gram_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _texture(kind: str, size: int, seed: int) -> torch.Tensor:
    """Seeded synthetic textures: "stripes" (oriented, noisy) or "blobs" (isotropic, smooth)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "stripes":
        y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        phase = torch.rand(1, generator=g) * 6.28
        base = 0.5 + 0.4 * torch.sin((x + 0.5 * y) * 0.9 + phase)
        img = base.expand(3, -1, -1) * torch.tensor([1.0, 0.6, 0.3])[:, None, None]
        img = img + 0.05 * torch.randn(3, size, size, generator=g)
    else:
        noise = torch.rand(1, 3, size + 6, size + 6, generator=g)
        img = F.avg_pool2d(noise, 7, 1)[0]
        img = (img - img.min()) / (img.max() - img.min())
    return img.clamp(0, 1)[None]


def test_fft_path_equals_direct_convolution():
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    for padding in ("valid", "circular"):
        direct = RandomFilterExtractor(None, sizes=(3, 15), filters=8, padding=padding, fft_threshold=100)
        fft = RandomFilterExtractor(None, sizes=(3, 15), filters=8, padding=padding, fft_threshold=0)
        a, b = direct(x), fft(x)
        for name in ("k3", "k15"):
            assert a[name].shape == b[name].shape
            torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4)


def test_shapes_valid_circular_and_all_layer():
    x = torch.rand(1, 3, 30, 26)
    e = RandomFilterExtractor(["k3", "k7", "all"], sizes=(3, 5, 7), filters=4)
    f = e(x)
    assert list(f) == ["k3", "k7", "all"]
    assert f["k3"].shape == (1, 4, 28, 24) and f["k7"].shape == (1, 4, 24, 20)
    assert f["all"].shape == (1, 12, 24, 20)
    # "all" = every size's maps cropped to the common centred region of the largest filter
    torch.testing.assert_close(f["all"][:, :4], f["k3"][..., 2:26, 2:22])
    torch.testing.assert_close(f["all"][:, 8:], f["k7"])
    assert (f["k3"] >= 0).all()  # ReLU
    c = RandomFilterExtractor(["k5", "all"], sizes=(3, 5), filters=4, padding="circular")(x)
    assert c["k5"].shape == (1, 4, 30, 26) and c["all"].shape == (1, 8, 30, 26)
    assert RandomFilterExtractor().layers == [f"k{s}" for s in PAPER_SIZES]
    assert RandomFilterExtractor().min_size == 55


def test_filters_are_seeded_per_size_and_unit_norm():
    a = RandomFilterExtractor(["k5"], sizes=(3, 5), filters=6, seed=3)
    b = RandomFilterExtractor(["k5"], sizes=(5, 9, 11), filters=6, seed=3)
    c = RandomFilterExtractor(["k5"], sizes=(5,), filters=6, seed=4)
    assert torch.equal(a.filter_bank(5), b.filter_bank(5))
    assert not torch.equal(a.filter_bank(5), c.filter_bank(5))
    norms = make_filters(7, 10, 0).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(10))
    zm = make_filters(7, 10, 0, zero_mean=True)
    assert zm.flatten(1).mean(dim=1).abs().max() < 1e-6


def test_circular_padding_is_shift_equivariant():
    e = RandomFilterExtractor(["k3", "k23"], sizes=(3, 23), filters=4, padding="circular")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    shifted = torch.roll(x, shifts=(5, -7), dims=(-2, -1))
    f, fs = e(x), e(shifted)
    for name in ("k3", "k23"):
        torch.testing.assert_close(
            fs[name], torch.roll(f[name], shifts=(5, -7), dims=(-2, -1)), atol=1e-5, rtol=0
        )


def test_objective_merges_extractors_and_gradients_reach_the_image():
    a = RandomFilterExtractor(["k3"], sizes=(3, 5), filters=4, seed=0)
    b = RandomFilterExtractor(["k5"], sizes=(3, 5), filters=4, seed=0)
    assert a.cache_key == b.cache_key
    objective = Objective(
        [
            Term("g3", GramLoss(), 1.0, a, ["k3"]),
            Term("g5", GramLoss(), 1.0, b, ["k5"]),
        ]
    )
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    y = torch.rand(1, 3, 20, 28)
    out = objective(x, y)
    assert objective.last_passes == 2  # one pass for x, one for the (now cached) target
    assert len(objective.extractors) == 1
    out.total.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    expected = gram_loss(a(x)["k3"], a(y)["k3"]) + gram_loss(b(x)["k5"], b(y)["k5"])
    torch.testing.assert_close(out.total.detach(), expected.detach())
    assert a.with_layers(["k5", "all"]).layers == ["k5", "all"]


def test_gram_statistics_tell_textures_apart():
    """The paper's finding: patches of one texture are more alike in this feature space than patches of two
    textures (here: Gram distance between crops at 5 seeds)."""
    e = random_filters(sizes=(3, 5, 7, 11, 15), filters=32)
    same, different = [], []
    for seed in range(5):
        s1, s2 = e(_texture("stripes", 48, seed)), e(_texture("stripes", 48, seed + 10))
        b1, b2 = e(_texture("blobs", 48, seed)), e(_texture("blobs", 48, seed + 10))
        same.append(sum(float(gram_loss(s1[k], s2[k])) for k in s1))
        same.append(sum(float(gram_loss(b1[k], b2[k])) for k in s1))
        different.append(sum(float(gram_loss(s1[k], b1[k])) for k in s1))
    assert max(same) < 0.2 * min(different)


def test_half_precision_is_computed_in_float32():
    e = RandomFilterExtractor(["k3", "k15"], sizes=(3, 15), filters=4)
    x = torch.rand(1, 3, 20, 20)
    full, half = e(x), e(x.to(torch.bfloat16))
    assert half["k15"].dtype == torch.float32
    torch.testing.assert_close(half["k15"], full["k15"], atol=0.05, rtol=0.05)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": (3, 4)}, "sizes"),
        ({"sizes": 5}, "sizes"),
        ({"sizes": (3, 3)}, "sizes"),
        ({"filters": 0}, "filters"),
        ({"padding": "same"}, "padding"),
        ({"layers": ["k9"]}, "k9"),
        ({"layers": []}, "layers"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomFilterExtractor(**{"sizes": (3, 5), **kwargs})


def test_bad_images():
    e = RandomFilterExtractor(["k15"], sizes=(15,), filters=2)
    with pytest.raises(ValueError, match="at least 15"):
        e(torch.rand(1, 3, 10, 40))
    with pytest.raises(ValueError, match="channels"):
        e(torch.rand(1, 1, 20, 20))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        e(torch.rand(1, 3, 20, 20) * 255, validate=True)
    with pytest.raises(ValueError, match="size 3 is not computed"):
        e.filter_bank(3)
