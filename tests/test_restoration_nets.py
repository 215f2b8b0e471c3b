"""Restoration networks (shapes, residual structure, specs), tiled inference, the SRGAN discriminator and the
adversarial losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featstat.losses.adversarial import (
    DiscriminatorLoss,
    GeneratorAdversarialLoss,
    discriminator_loss,
    generator_adversarial_loss,
)
from featstat.nets.discriminator import SRGANDiscriminator
from featstat.nets.restoration import NETWORKS, build_network, network_from_spec, tiled_forward

TINY = {
    "srresnet": {"channels": 8, "blocks": 2},
    "edsr": {"channels": 8, "blocks": 2},
    "tsrn": {"channels": 8, "blocks": 2},
    "srn": {"channels": 4, "blocks": 1, "levels": 2, "scales": 2, "kernel_size": 3},
    "crn": {"channels": (8, 8, 4)},
}


@pytest.mark.parametrize(
    ("name", "scale"),
    [("srresnet", 4), ("srresnet", 1), ("edsr", 2), ("edsr", 3), ("tsrn", 8), ("srn", 1), ("crn", 1)],
)
def test_output_shapes_any_size(name, scale):
    torch.manual_seed(0)
    net = build_network(name, scale=scale, **TINY[name])
    x = torch.rand(2, 3, 13, 11)  # odd sizes: networks that downsample pad internally
    y = net(x)
    assert y.shape == (2, 3, 13 * scale, 11 * scale)
    assert torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_spec_rebuilds_an_identical_network():
    torch.manual_seed(0)
    for name, opts in TINY.items():
        scale = 2 if name in ("srresnet", "edsr", "tsrn") else 1
        net = build_network(name, scale=scale, **opts).eval()
        twin = network_from_spec(net.spec)
        twin.load_state_dict(net.state_dict())
        x = torch.rand(1, 3, 16, 16)
        assert torch.equal(net(x), twin.eval()(x)), name


def test_residual_structures():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 16)
    tsrn = build_network("tsrn", scale=4, **TINY["tsrn"])
    torch.nn.init.zeros_(tsrn.tail[-1].weight)
    torch.nn.init.zeros_(tsrn.tail[-1].bias)  # no residual: the bicubic upsampling of the input
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False, antialias=True)
    assert torch.allclose(tsrn(x), ref, atol=1e-6)
    srn = build_network("srn", **TINY["srn"])
    last = srn.net.out[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)  # every scale predicts a zero correction: the output is the input
    assert torch.allclose(srn(x), x, atol=1e-6)
    scales = srn(x, all_scales=True)
    assert [tuple(s.shape[-2:]) for s in scales] == [(6, 8), (12, 16)]
    edsr = build_network("edsr", scale=1, **TINY["edsr"])
    torch.nn.init.zeros_(edsr.tail[-1].weight)
    torch.nn.init.zeros_(edsr.tail[-1].bias)  # EDSR adds the DIV2K mean back
    assert torch.allclose(edsr(x), edsr.mean_out.expand_as(x))


def test_crn_outputs_unit_normals_encoded_in_unit_range():
    torch.manual_seed(0)
    crn = build_network("crn", **TINY["crn"])
    y = crn(torch.rand(2, 3, 20, 20))
    n = 2 * y - 1
    assert torch.allclose(n.norm(dim=1), torch.ones(2, 20, 20), atol=1e-5)
    raw = build_network("crn", channels=(8, 4), normalize_output=False)(torch.rand(1, 3, 8, 8))
    assert not torch.allclose((2 * raw - 1).norm(dim=1), torch.ones(1, 8, 8), atol=1e-2)


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_forward_equals_whole_image_for_a_local_network(scale):
    torch.manual_seed(0)
    # EDSR with 1 block: receptive field 1 (head) + 2 (block) + 1 (body conv) + 1 (upsampler) + 1 (tail) px
    net = build_network("edsr", scale=scale, channels=8, blocks=1).eval()
    x = torch.rand(1, 3, 41, 30)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, tile=24, overlap=6, scale=scale)
        seams = tiled_forward(net, x, tile=24, overlap=1, scale=scale)
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert not torch.allclose(seams, whole, atol=1e-4)  # too little overlap shows the cuts
    with pytest.raises(ValueError, match=r"tile \(10\) must be larger than 2·overlap"):
        tiled_forward(net, x, tile=10, overlap=5)


def test_build_network_bad_inputs():
    with pytest.raises(ValueError, match="network must be one of"):
        build_network("unet")
    with pytest.raises(ValueError, match="scale must be one of"):
        build_network("srresnet", scale=3)
    with pytest.raises(ValueError, match="scale must be one of"):
        build_network("srn", scale=2)
    with pytest.raises(ValueError, match="bad options for network 'edsr'"):
        build_network("edsr", scale=2, depth=3)
    with pytest.raises(ValueError, match="channels must be an integer"):
        build_network("edsr", scale=2, channels=0)
    assert set(NETWORKS) == {"srresnet", "edsr", "tsrn", "srn", "crn"}


# ------------------------------------------------------------------------------------------- discriminator


def test_srgan_discriminator_layout_and_sizes():
    torch.manual_seed(0)
    d = SRGANDiscriminator(channels=4, hidden=16)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.features) == 7
    feats = d.features(torch.rand(2, 3, 96, 96))
    assert feats.shape[-2:] == (6, 6) and torch.equal(d.pool(feats), feats)  # paper layout at 96×96
    assert d(torch.rand(3, 3, 96, 96)).shape == (3,)
    assert d(torch.rand(1, 3, 40, 56)).shape == (1,)
    with pytest.raises(ValueError, match="at least 16×16"):
        d(torch.rand(1, 3, 12, 40))


def test_adversarial_losses_match_their_formulas():
    real, fake = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    sig = torch.sigmoid
    ns_d = -(torch.log(sig(real)) + torch.log(1 - sig(fake)))
    ns_g = -torch.log(sig(fake))
    assert torch.allclose(discriminator_loss(real, fake, reduction="none"), ns_d)
    assert torch.allclose(generator_adversarial_loss(fake, reduction="none"), ns_g)
    ls_d = 0.5 * (real - 1) ** 2 + 0.5 * fake**2
    assert torch.allclose(discriminator_loss(real, fake, "lsgan", "none"), ls_d)
    assert torch.allclose(generator_adversarial_loss(fake, "lsgan", "sum"), (0.5 * (fake - 1) ** 2).sum())
    maps = torch.randn(2, 1, 4, 4)  # patch logits: mean over positions per sample
    per = generator_adversarial_loss(maps, reduction="none")
    assert torch.allclose(per, F.softplus(-maps).flatten(1).mean(1))
    # the generator lowers its loss by raising the discriminator's logit on its images
    f = torch.zeros(3, requires_grad=True)
    GeneratorAdversarialLoss()(f).backward()
    assert (f.grad < 0).all()
    assert torch.allclose(DiscriminatorLoss("lsgan")(real, fake), ls_d.mean())
    # large logits stay finite (softplus form)
    assert torch.isfinite(discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0]))).all()


def test_adversarial_losses_bad_inputs():
    with pytest.raises(ValueError, match="kind must be one of"):
        generator_adversarial_loss(torch.zeros(2), "wgan")
    with pytest.raises(ValueError, match="same shape"):
        discriminator_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), reduction="max")
