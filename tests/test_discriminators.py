"""Perceptual discriminator (thesis fig. 5.1, eqs. 5.2–5.6) and the chapter's baseline discriminators."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import featstat
from featstat.adversarial import (
    ImageDiscriminator,
    ImagePyramid,
    PerceptualDiscriminator,
    SeparateMultiScaleDiscriminator,
    discriminator_head_loss,
    generator_head_loss,
    ms_image_discriminator,
    rand_ms_discriminator,
    vgg_star_,
)

pytestmark = pytest.mark.usefixtures("one_thread")

BACKBONES = {
    "vgg19": lambda: featstat.vgg19(["relu1_2", "relu2_2", "relu3_4"], weights=None),
    "vgg16": lambda: featstat.vgg16(["relu1_2", "relu2_2", "relu3_3"], weights=None),
    "alexnet": lambda: featstat.alexnet(["relu1", "relu2", "relu5"], weights=None),
    "squeezenet1_1": lambda: featstat.squeezenet1_1(["relu1", "fire3", "fire5"], weights=None),
    "patches": lambda: featstat.PatchExtractor(5, 2),
    "pyramid": lambda: ImagePyramid(3),
}


@pytest.mark.parametrize("size", [(64, 64), (80, 112), (97, 65)])
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_shapes_for_every_backbone_and_size(backbone, size):
    extractor = BACKBONES[backbone]()
    k = len(extractor.layers)
    heads = [0, k - 1] if k > 1 else [0]
    d = PerceptualDiscriminator(extractor, width=8, patch_heads=heads)
    y = torch.rand(2, 3, *size)
    out = d(y)
    feats = extractor(y)
    assert out[0].shape == (2,)
    assert len(out) == 1 + len(heads)
    for logits, j in zip(out[1:], heads, strict=True):
        assert logits.shape == (2, 1, *feats[extractor.layers[j]].shape[-2:])
        assert torch.isfinite(logits).all()


def test_equation_5_5_stacks_learned_maps_with_the_next_features():
    vgg = featstat.vgg19(["relu1_2", "relu2_2", "relu3_4"], weights=None)
    d = PerceptualDiscriminator(vgg, width=[8, 16, 4])
    # h_1 = f_1 (64 ch); h_2 = [c_1(h_1) (8 ch), f_2 (128 ch)]; h_3 = [c_2(h_2) (16 ch), f_3 (256 ch)]
    assert d.blocks[0][0].in_channels == 64 and d.blocks[0][0].out_channels == 8
    assert d.blocks[1][0].in_channels == 8 + 128 and d.blocks[1][0].out_channels == 16
    assert d.main.convs[0].in_channels == 16 + 256


def test_features_can_be_shared_with_another_user_of_the_trunk():
    vgg = featstat.vgg19(["relu1_2", "relu2_2"], weights=None)
    d = PerceptualDiscriminator(vgg, width=8, patch_heads=[1])
    y = torch.rand(2, 3, 64, 64)
    a = d(y)
    b = d(features=vgg(y))
    for x, z in zip(a, b, strict=True):
        torch.testing.assert_close(x, z, rtol=0, atol=0)
    with pytest.raises(ValueError, match="features lack layers"):
        d(features={"relu1_2": vgg(y)["relu1_2"]})


def test_frozen_trunk_stays_frozen_and_gradients_reach_the_generator():
    vgg = featstat.vgg19(["relu1_2", "relu2_2", "relu3_4"], weights=None)
    trunk_before = {k: v.clone() for k, v in vgg.state_dict().items()}
    d = PerceptualDiscriminator(vgg, width=8, patch_heads=[0])
    assert all(not p.requires_grad for p in vgg.parameters())
    learnable = [p for p in d.parameters() if p.requires_grad]
    assert learnable and sum(p.numel() for p in learnable) < sum(p.numel() for p in d.parameters())
    opt = torch.optim.Adam(learnable, lr=1e-2)
    generator = torch.nn.Conv2d(3, 3, 3, padding=1)
    for _ in range(3):
        real = torch.rand(2, 3, 64, 64)
        fake = generator(torch.rand(2, 3, 64, 64)).sigmoid()
        loss = discriminator_head_loss(d(real), d(fake.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in vgg.state_dict().items():
        torch.testing.assert_close(v, trunk_before[k], rtol=0, atol=0)
    d.train()
    assert not vgg.training  # the frozen trunk stays in eval mode
    fake = generator(torch.rand(2, 3, 64, 64)).sigmoid()
    generator_head_loss(d(fake)).backward()
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_rand_ms_trains_its_trunk():
    d = rand_ms_discriminator(["relu1_2", "relu2_2"], width=8, patch_heads=[0])
    trunk = d.extractor
    assert all(p.requires_grad for p in trunk.parameters())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in trunk.backbone)
    before = [p.clone() for p in trunk.parameters()]
    opt = torch.optim.SGD(d.parameters(), lr=0.1)
    loss = discriminator_head_loss(d(torch.rand(2, 3, 32, 32)), d(torch.rand(2, 3, 32, 32)))
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, trunk.parameters(), strict=True))


def test_vgg_star_has_leaky_activations_and_average_pooling():
    plain = featstat.vgg19(["relu2_1"], weights=None, pooling="avg", seed=3)
    star = vgg_star_(featstat.vgg19(["relu2_1"], weights=None, pooling="avg", seed=3))
    assert not any(isinstance(m, torch.nn.ReLU) for m in star.backbone)
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in star.backbone)
    y = torch.rand(1, 3, 32, 32)
    s = star(y)["relu2_1"]
    assert (s < 0).any() and (plain(y)["relu2_1"] >= 0).all()
    with pytest.raises(ValueError, match="FeatureExtractor"):
        vgg_star_(ImagePyramid(2))


def test_head_losses_match_the_plain_formulas():
    torch.manual_seed(0)
    real = [torch.randn(3), torch.randn(3, 1, 4, 5)]
    fake = [torch.randn(3), torch.randn(3, 1, 4, 5)]
    sp = F.softplus

    def d_ns(r, f):
        return (sp(-r) + sp(f)).flatten(1).mean(1).mean() if r.dim() > 1 else (sp(-r) + sp(f)).mean()

    mean_pos = d_ns(real[0], fake[0]) + d_ns(real[1], fake[1])
    torch.testing.assert_close(discriminator_head_loss(real, fake), mean_pos)
    # eq. 5.6 literally: log D = log d_main + Σ_p log d_p — positions summed
    summed = d_ns(real[0], fake[0]) + (sp(-real[1]) + sp(fake[1])).flatten(1).sum(1).mean()
    torch.testing.assert_close(discriminator_head_loss(real, fake, positions="sum"), summed)
    lsgan = sum(((f - 1) ** 2 / 2).flatten(1).mean(1).mean() if f.dim() > 1 else ((f - 1) ** 2 / 2).mean()
                for f in fake)  # fmt: skip
    torch.testing.assert_close(generator_head_loss(fake, "lsgan"), lsgan)
    with pytest.raises(ValueError, match="real and fake"):
        discriminator_head_loss(real, fake[:1])
    with pytest.raises(ValueError, match="positions"):
        generator_head_loss(fake, positions="max")


def test_baselines_shapes_and_parameter_counts():
    y = torch.rand(2, 3, 64, 64)
    dcgan = ImageDiscriminator(width=16, depth=4)
    assert [t.shape for t in dcgan(y)] == [(2,)]
    sep = SeparateMultiScaleDiscriminator(scales=3, width=8)
    out = sep(y)
    assert out[0].shape == (2,) and [t.shape[-1] for t in out[1:]] == [8, 4]
    with pytest.raises(ValueError, match="at least 64"):
        sep(torch.rand(2, 3, 32, 32))
    ms = ms_image_discriminator(levels=3, width=8, patch_heads=[0, 1])
    out = ms(y)
    assert [t.shape[-1] for t in out[1:]] == [64, 32]
    assert all(p.requires_grad for p in ms.parameters())  # no frozen trunk: the image is the feature


def test_bad_arguments_name_themselves():
    vgg = featstat.vgg19(["relu3_1", "relu1_1"], weights=None)
    with pytest.raises(ValueError, match="depth order"):
        PerceptualDiscriminator(vgg)
    good = featstat.vgg19(["relu1_1", "relu2_1"], weights=None)
    with pytest.raises(ValueError, match="patch_heads"):
        PerceptualDiscriminator(good, patch_heads=[2])
    with pytest.raises(ValueError, match="width"):
        PerceptualDiscriminator(good, width=[8])
    with pytest.raises(ValueError, match="extractor"):
        PerceptualDiscriminator(torch.nn.Identity())
    with pytest.raises(ValueError, match="depth"):
        ImageDiscriminator(depth=0)


def test_a_few_steps_teach_the_discriminator_to_tell_real_from_fake():
    torch.manual_seed(0)
    vgg = featstat.vgg19(["relu1_2", "relu2_2"], weights=None)
    d = PerceptualDiscriminator(vgg, width=8, patch_heads=[0])
    opt = torch.optim.Adam([p for p in d.parameters() if p.requires_grad], lr=1e-2)
    smooth = F.avg_pool2d(torch.rand(4, 3, 40, 40), 9, stride=1)  # 32² blurred: "real"
    noisy = torch.rand(4, 3, 32, 32)  # white noise: "fake"
    losses = []
    for _ in range(30):
        loss = discriminator_head_loss(d(smooth), d(noisy))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses
