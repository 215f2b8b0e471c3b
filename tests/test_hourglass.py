"""Deep Image Prior networks: the reference skip architecture, odd sizes, input codes, the noise impedance
experiment (thesis Fig. 7.2) and bad arguments."""

from __future__ import annotations

import math

import pytest
import torch

from featstat.nets.hourglass import (
    NETWORKS,
    ResNet,
    Skip,
    UNet,
    build_network,
    count_parameters,
    encoder_decoder,
    input_code,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _expected_skip_parameters(c_in: int, down: list[int], up: list[int], skip: list[int], out: int) -> int:
    """Parameter count of the reference skip network, layer by layer (conv weights + biases, BN γ and β)."""
    total = 0
    depth = len(down)
    for i in range(depth):
        cin = c_in if i == 0 else down[i - 1]
        k = down[i] if i == depth - 1 else up[i + 1]
        if skip[i]:
            total += cin * skip[i] + skip[i] + 2 * skip[i]  # 1×1 skip conv + BN
        total += cin * down[i] * 9 + down[i] + 2 * down[i]  # 3×3 stride-2 conv + BN
        total += down[i] * down[i] * 9 + down[i] + 2 * down[i]  # 3×3 conv + BN
        total += 2 * (skip[i] + k)  # BN after the concatenation
        total += (skip[i] + k) * up[i] * 9 + up[i] + 2 * up[i]  # 3×3 up conv + BN
        total += up[i] * up[i] + up[i] + 2 * up[i]  # 1×1 conv + BN
    return total + up[0] * out + out  # 1×1 head


def test_reference_default_has_the_reference_layers():
    net = Skip()
    expected = _expected_skip_parameters(32, [128] * 5, [128] * 5, [4] * 5, 3)
    assert count_parameters(net) == expected
    assert 2.1e6 < expected < 2.3e6  # "2.2 M parameters" (design.md), "two million" in the thesis
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    strided = [m for m in convs if m.stride == (2, 2)]
    assert len(strided) == 5 and all(m.kernel_size == (3, 3) for m in strided)
    assert all(m.padding_mode == "reflect" for m in convs if m.kernel_size == (3, 3))
    acts = [m for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert acts and all(m.negative_slope == 0.2 for m in acts)
    # per level: skip, 2 down, after the concatenation, up, 1×1
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 6 * 5


def test_skip_widths_and_output_range():
    net = Skip(3, 3, [8, 16, 32], [8, 16, 32], [0, 0, 4], upsample="nearest")
    assert count_parameters(net) == _expected_skip_parameters(3, [8, 16, 32], [8, 16, 32], [0, 0, 4], 3)
    out = net(input_code("noise", 3, (40, 40)))
    assert out.shape == (1, 3, 40, 40)
    assert float(out.detach().min()) > 0 and float(out.detach().max()) < 1  # sigmoid


@pytest.mark.parametrize("size", [(33, 33), (37, 50), (64, 65), (45, 90)])
def test_odd_sizes_keep_the_image_size(size):
    net = Skip(in_channels=4, channels_down=[8] * 5, channels_up=[8] * 5, channels_skip=[2] * 5)
    assert net(input_code("noise", 4, size)).shape == (1, 3, *size)
    ed = encoder_decoder(2, 1, [8, 8, 8], upsample="nearest")  # no skips: the up path alone must fit
    assert ed(input_code("meshgrid", 2, size)).shape == (1, 1, *size)
    assert UNet(2, 3, feature_scale=16)(torch.rand(1, 2, *size)).shape == (1, 3, *size)
    assert ResNet(2, 3, blocks=1, channels=8)(torch.rand(1, 2, *size)).shape == (1, 3, *size)


def test_per_level_options_and_pooling():
    kernels = [7, 7, 5, 5, 3, 3]
    net = Skip(
        4, 3, [8] * 6, [8] * 6, [2] * 6, kernel_down=kernels, kernel_up=kernels, downsample="avg",
        upsample=["nearest", "bilinear"] * 3, padding="zero",
    )  # fmt: skip
    assert net(torch.rand(1, 4, 70, 66)).shape == (1, 3, 70, 66)
    pools = [m for m in net.modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert len(pools) == 6
    assert Skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample="max")(torch.rand(1, 4, 25, 25)).shape[-1] == 25


def test_min_size_is_exact():
    net = Skip(in_channels=4, channels_down=[8] * 5, channels_up=[8] * 5, channels_skip=[2] * 5)
    assert net.min_size == 33  # 33 → 17 → 9 → 5 → 3 → 2: the deepest 3×3 reflection pad needs 2 pixels
    net(torch.rand(1, 4, 33, 33))
    with pytest.raises(ValueError, match=r"needs at least 33×33.*fewer levels"):
        net(torch.rand(1, 4, 32, 40))
    with pytest.raises(RuntimeError):  # the check is not over-cautious: 32 really fails in the padding
        net.body(torch.rand(1, 4, 32, 40))
    zero = Skip(4, 3, [8] * 5, [8] * 5, [2] * 5, padding="zero")
    assert zero.min_size == 33  # batch norm of a 1×1 map fails too
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        zero.body(torch.rand(1, 4, 32, 32))
    plain = Skip(4, 3, [8] * 5, [8] * 5, [2] * 5, padding="zero", norm="none")
    assert plain.min_size == 1 and plain(torch.rand(1, 4, 5, 7)).shape == (1, 3, 5, 7)


def test_seeded_initialisation_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = Skip(4, 3, [8] * 2, [8] * 2, [2] * 2, seed=5)
    assert torch.equal(torch.rand(3), expected_next)
    b = Skip(4, 3, [8] * 2, [8] * 2, [2] * 2, seed=5)
    c = Skip(4, 3, [8] * 2, [8] * 2, [2] * 2, seed=6)
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_input_codes():
    z = input_code("noise", 32, (20, 30), seed=1)
    assert z.shape == (1, 32, 20, 30) and float(z.min()) >= 0 and float(z.max()) < 0.1
    assert abs(float(z.mean()) - 0.05) < 0.005  # U(0, 1) × 1/10
    assert torch.equal(z, input_code("noise", 32, (20, 30), seed=1))
    assert not torch.equal(z, input_code("noise", 32, (20, 30), seed=2))
    n = input_code("normal", 8, (50, 50), scale=2.0)
    assert abs(float(n.std()) - 2.0) < 0.1
    g = input_code("meshgrid", 2, (5, 9))
    assert torch.allclose(g[0, 0, 0], torch.linspace(0, 1, 9)) and torch.allclose(
        g[0, 1, :, 0], torch.linspace(0, 1, 5)
    )
    with pytest.raises(ValueError, match="channels=2"):
        input_code("meshgrid", 3, (5, 5))
    with pytest.raises(ValueError, match="kind must be one of"):
        input_code("fourier", 3, (5, 5))
    with pytest.raises(ValueError, match="size must be"):
        input_code("noise", 3, (5, 0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(channels_down=[8, 8], channels_up=[8], channels_skip=[2, 2]), "same length"),
        (dict(channels_down=[8, 0]), "channels_down must hold integers >= 1"),
        (dict(channels_skip=[-1] * 5), "channels_skip must hold integers >= 0"),
        (dict(kernel_down=4), "kernel_down must be an odd positive integer"),
        (dict(upsample="bicubic"), "upsample must be one of"),
        (dict(upsample=["nearest"] * 3), "one entry per level"),
        (dict(downsample="lanczos"), "downsample must be one of"),
        (dict(padding="circular"), "padding must be one of"),
        (dict(norm="group"), "norm must be one of"),
        (dict(activation="gelu"), "activation must be one of"),
        (dict(in_channels=0), "in_channels must be a positive integer"),
        (dict(seed="x"), "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Skip(**kwargs)


def test_bad_inputs():
    net = Skip(4, 3, [8] * 2, [8] * 2, [2] * 2)
    with pytest.raises(ValueError, match=r"z must have shape N×4×H×W"):
        net(torch.rand(1, 3, 20, 20))
    with pytest.raises(ValueError, match="floating-point"):
        net(torch.ones(1, 4, 20, 20, dtype=torch.int64))
    with pytest.raises(ValueError, match="net must be one of"):
        build_network("vit")
    assert set(NETWORKS) == {"skip", "encoder_decoder", "unet", "resnet"}


# ------------------------------------------------------------------------------------------ noise impedance


def _natural_image(size: int, seed: int = 0) -> torch.Tensor:
    """A piecewise-smooth colour image: low-frequency shading plus a few discs (edges), like a photo's
    large-scale structure."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.zeros(3, size, size)
    for c in range(3):
        a, b, p = torch.rand(3, generator=g)
        img[c] = 0.5 + 0.25 * torch.sin(2 * math.pi * (a * x + b * y) + 6 * p)
    for _ in range(3):
        cx, cy, r = torch.rand(3, generator=g)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < (0.1 + 0.2 * r) ** 2
        img[:, disc] = torch.rand(3, 1, generator=g)
    return img[None].clamp(0, 1)


def _fit(target: torch.Tensor, steps: int) -> list[float]:
    """Fit a fixed network (same seed, same code) to ``target``: eq. 7.4, Adam lr 0.01, no input noise."""
    net = Skip(8, 3, [16, 16, 16], [16, 16, 16], [4, 4, 4], seed=0)
    z = input_code("noise", 8, tuple(target.shape[-2:]), seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (net(z) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()) / float(target.var()))  # relative to the image's own variance
    return losses


@pytest.mark.slow  # ~10 s: fits two images
def test_noise_impedance_natural_image_is_fitted_faster_than_noise():
    """Fig. 7.2: the network fits a natural image much faster than the same pixels scrambled or white noise;
    the noisy image starts like the natural one (its structure is fitted first)."""
    size, steps = 32, 80
    natural = _natural_image(size)
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(size * size, generator=g)
    scrambled = natural.flatten(2)[..., perm].view_as(natural)  # identical pixel values, no structure
    noise = torch.rand(natural.shape, generator=g)
    noisy = (natural + 0.1 * torch.randn(natural.shape, generator=g)).clamp(0, 1)
    images = {"natural": natural, "noisy": noisy, "scrambled": scrambled, "noise": noise}
    curves = {name: _fit(img, steps) for name, img in images.items()}
    final = {k: v[-1] for k, v in curves.items()}
    # natural image: most of its variance explained; structure-free images barely
    assert final["natural"] < 0.1
    assert final["scrambled"] > 4 * final["natural"]
    assert final["noise"] > 4 * final["natural"]
    # the natural curve is below the structure-free curves over the whole second half of the run
    for k in ("scrambled", "noise"):
        assert all(
            a < b for a, b in zip(curves["natural"][steps // 2 :], curves[k][steps // 2 :], strict=True)
        )
    # noisy image: its structure is fitted early like the natural one, its noise is impeded
    first = steps // 4
    assert curves["noisy"][first] < 0.5 * curves["scrambled"][first]
