"""Texture Networks v1/v2 and StyleNet, and their training: the thesis' architecture, fully convolutional
generators, seamless circular tiling, instance normalisation, the noise-scale knob, the diversity term,
the learning-rate schedule, exact resume, the CLI and bad inputs."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import featstat
from featstat._checks import make_generator
from featstat.cli.texture import sample_command, stylize_command, train
from featstat.engine.runs import load_checkpoint, save_checkpoint
from featstat.features.random_filters import RandomFilterExtractor
from featstat.nets.texture import StyleNet, TextureNetV1, TextureNetV2, build_generator, generate, stylize
from featstat.texture.synthesis import texture_objective
from featstat.texture.training import (
    GeneratorTrainer,
    GradientNormalized,
    learning_rate,
    load_generator,
    train_style,
    train_texture,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def blobs(size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    img = F.avg_pool2d(torch.rand(1, 3, size + 4, size + 4, generator=g), 5, 1)
    return ((img - img.amin()) / (img.amax() - img.amin())).clamp(0, 1)


def small_features():
    return RandomFilterExtractor(None, sizes=(3, 5), filters=16)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tile_noise(noise, reps=(2, 2)):
    return [z.repeat(1, 1, *reps) for z in noise] if isinstance(noise, list) else noise.repeat(1, 1, *reps)


# -- architectures -------------------------------------------------------------------------------------------


def test_texture_net_v1_follows_the_thesis():
    net = TextureNetV1()  # K = 5, 8 channels per branch
    assert net.size_multiple == 16
    assert [j[0].out_channels for j in net.joins] == [16, 24, 32, 40]  # the trunk grows 8 → 40
    assert net.to_rgb.in_channels == 40 and net.to_rgb.out_channels == 3
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.padding_mode == "circular" for m in convs)
    assert [m.kernel_size for m in net.branches[0] if isinstance(m, nn.Conv2d)] == [(3, 3), (3, 3), (1, 1)]
    # batch normalisation of both inputs before every join
    assert all(isinstance(a, nn.BatchNorm2d) and isinstance(b, nn.BatchNorm2d) for a, b in net.join_norms)
    z = net.noise(2, 64, 48, seed=gen(0))
    assert [tuple(t.shape[-2:]) for t in z] == [(4, 3), (8, 6), (16, 12), (32, 24), (64, 48)]
    assert all(0 <= float(t.min()) and float(t.max()) < 1 for t in z)  # i.i.d. uniform noise
    styl = TextureNetV1(scales=6, content=True)
    assert styl.branches[0][0].in_channels == 6 and styl.size_multiple == 32


def test_texture_net_v2_is_fully_connected_then_up_convolutions():
    net = TextureNetV2(noise_dim=256, channels=(64, 32, 16)).eval()
    assert net.tile == 16
    z = net.noise(1, 16, 16, seed=gen(0))
    assert z.shape == (1, 256, 1, 1)
    h = net.fc2(net.fc1(z))
    assert h.shape == (1, 64, 4, 4)  # "reshaped to a 4×4 image"
    assert net(z).shape == (1, 3, 16, 16)
    assert net(net.noise(2, 32, 48, seed=gen(1))).shape == (2, 3, 32, 48)


@pytest.mark.parametrize(
    "net", [TextureNetV1(scales=3), TextureNetV2(noise_dim=8, hidden=8, channels=(16, 8, 8))]
)
def test_texture_generators_are_fully_convolutional(net):
    net.eval()
    for h, w in [(16, 16), (32, 48), (64, 16)]:
        assert net(net.noise(2, h, w, seed=gen(0))).shape == (2, 3, h, w)
    assert generate(net, 3, (21, 37), seed=gen(0)).shape == (3, 3, 21, 37)


@pytest.mark.parametrize("arch", ["v1", "v2"])
def test_circular_padding_tiles_seamlessly(arch):
    """Generating from periodically repeated noise gives exactly the sample tiled 2×2: the tiles continue
    into each other as the interior does. With zero padding the borders differ."""
    make = {
        "v1": lambda pad: TextureNetV1(scales=3, padding=pad),
        "v2": lambda pad: TextureNetV2(noise_dim=8, hidden=8, channels=(16, 8, 8)),
    }[arch]
    net = make("circular").eval()
    with torch.no_grad():
        z = net.noise(1, 16, 16, seed=gen(2))
        y = net(z)
        big = net(tile_noise(z))
        torch.testing.assert_close(big, y.repeat(1, 1, 2, 2), atol=1e-5, rtol=0)
        if arch == "v1":  # also equivariant to shifts of the noise
            s = 8
            rolled = net([torch.roll(t, shifts=s * t.shape[-1] // 16, dims=-1) for t in z])
            torch.testing.assert_close(rolled, torch.roll(y, s, -1), atol=1e-5, rtol=0)
            zero = make("zeros").eval()
            assert not torch.allclose(zero(tile_noise(z)), zero(z).repeat(1, 1, 2, 2), atol=1e-3)


def test_stylenet_instance_norm_discards_content_contrast():
    """Thesis §3.4: instance normalisation removes each image's contrast, batch normalisation cannot."""
    content = blobs(32, 0)
    low_contrast = 0.5 * content + 0.2

    @torch.no_grad()
    def change(net):  # largest change of the output, relative to the output's spread
        z = torch.zeros(1, 3, 32, 32)
        y = net(z, content)
        return float((net(z, low_contrast) - y).abs().max() / y.std())

    inn = StyleNet(norm="instance", channels=(8, 8, 8), residual_blocks=1, output="none").eval()
    bn = StyleNet(norm="batch", channels=(8, 8, 8), residual_blocks=1, output="none").eval()
    assert change(inn) < 0.01
    assert change(bn) > 0.5
    # instance norm: a sample does not depend on the rest of its batch (in training mode too)
    inn.train()
    both = inn(torch.zeros(2, 3, 32, 32), torch.cat([content, blobs(32, 1)]))
    torch.testing.assert_close(both[:1], inn(torch.zeros(1, 3, 32, 32), content), atol=1e-5, rtol=0)


def test_stylize_any_size_and_noise_scale_knob():
    net = StyleNet(channels=(8, 8, 8), residual_blocks=1)
    img = blobs(37, 3)[..., :29, :]
    a = stylize(net, img, seed=gen(0), noise_scale=0.0)
    b = stylize(net, img, seed=gen(1), noise_scale=0.0)
    c = stylize(net, img, seed=gen(1), noise_scale=2.0)
    assert a.shape == img.shape
    torch.testing.assert_close(a, b)  # no noise: deterministic
    assert (c - a).abs().mean() > 1e-3  # the knob changes the result
    v1 = TextureNetV1(scales=3, content=True)
    assert stylize(v1, img, seed=gen(0)).shape == img.shape


def test_generator_config_round_trip():
    net = TextureNetV2(noise_dim=8, hidden=8, channels=(16, 8), seed=4)
    again = build_generator(net.arch, **net.config())
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# -- training ------------------------------------------------------------------------------------------------


def test_learning_rate_schedule_of_the_thesis():
    assert learning_rate(0) == learning_rate(999) == 0.1
    assert learning_rate(1000) == pytest.approx(0.07) and learning_rate(1199) == pytest.approx(0.07)
    assert learning_rate(1200) == pytest.approx(0.049) and learning_rate(1999) == pytest.approx(0.1 * 0.7**5)


def test_texture_training_lowers_the_loss_and_samples_match():
    example = blobs(16, 0)
    net = TextureNetV1(scales=3, seed=0)
    result = train_texture(net, example, steps=60, size=16, batch_size=4, extractor=small_features())
    first, last = sum(result.history["gram"][:5]) / 5, result.terms["gram"]
    assert last < 0.1 * first
    assert result.history["lr"][0] == 0.1
    ready = result.generator  # a copy in eval mode, BatchNorm statistics recomputed after training
    assert ready is not net and not ready.training
    objective = texture_objective(small_features())
    with torch.no_grad():
        sample_loss = float(objective(generate(ready, 8, 16, seed=gen(3)), {"style": example}).total)
        net.eval()  # the running averages kept during training lag behind the weights
        lagging = float(objective(generate(net, 8, 16, seed=gen(3)), {"style": example}).total)
    # samples from the ready copy match what training reached; the recomputed BatchNorm statistics are not
    # always better than the lagging running averages (on an AMD EPYC they were 1.2-2x worse at this tiny
    # size, on an Intel Xeon better), so they are only asked to stay in the same range
    assert sample_loss < 4 * last and sample_loss < 2.5 * lagging
    samples = generate(ready, 2, 32, seed=gen(3))  # larger than trained: fully convolutional
    assert samples.shape == (2, 3, 32, 32) and 0 <= float(samples.min()) and float(samples.max()) <= 1


def test_batchnorm_statistics_are_recomputed_on_a_copy_after_training():
    example = blobs(16, 0)
    net = TextureNetV1(scales=3, seed=0)
    trainer = GeneratorTrainer(net, texture_objective(small_features()), example, size=16, batch_size=4,
                               calibration_batches=3, seed=5)  # fmt: skip
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ready = trainer.calibrated_generator()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])  # the training net is untouched (exact resume)
    g, means = make_generator(7), []  # calibration noise comes from seed + 2
    with torch.no_grad():
        for _ in range(3):
            z = net.noise(4, 16, 16, seed=g)
            means.append(net.branches[0][0](z[0]).mean(dim=(0, 2, 3)))
    torch.testing.assert_close(ready.branches[0][1].running_mean, torch.stack(means).mean(0))
    assert not ready.training


def _mean_pairwise_rms(x: torch.Tensor) -> float:
    f = x.flatten(1)
    d = torch.cdist(f, f) / f.shape[1] ** 0.5
    return float(d[~torch.eye(len(f), dtype=torch.bool)].mean())


def test_diversity_term_prevents_collapse_of_a_high_capacity_generator():
    """Thesis Fig. 3.5: with λ = 0 a high-capacity TextureNetV2 maps all noise to nearly one image; λ > 0
    keeps the samples apart."""
    example = blobs(16, 1)
    spread = {}
    for lam in (0.0, 2e-5):
        net = TextureNetV2(noise_dim=16, hidden=32, channels=(32, 16, 8), seed=0)
        train_texture(
            net,
            example,
            steps=100,
            size=16,
            batch_size=4,
            extractor=small_features(),
            diversity=lam,
            lr=0.01,
            decay_start=10**6,
        )
        spread[lam] = _mean_pairwise_rms(generate(net, 8, 16, seed=gen(5)))
    assert spread[0.0] < 0.06
    assert spread[2e-5] > 0.1 and spread[2e-5] > 3 * spread[0.0]


def test_texture_training_resumes_bit_for_bit(tmp_path):
    example, kw = (
        blobs(16, 2),
        {"size": 16, "batch_size": 3, "extractor": small_features(), "diversity": 1e-5},
    )
    straight = train_texture(TextureNetV1(scales=3), example, steps=6, **kw)
    path = tmp_path / "ck.pt"
    train_texture(TextureNetV1(scales=3), example, steps=3, checkpoint=path, **kw)
    assert load_checkpoint(path)["step"] == 3
    resumed = train_texture(TextureNetV1(scales=3), example, steps=6, checkpoint=path, resume=True, **kw)
    for a, b in zip(
        straight.generator.state_dict().values(), resumed.generator.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert straight.history["total"] == resumed.history["total"]
    with pytest.raises(ValueError, match="cannot be resumed"):
        train_texture(
            TextureNetV1(scales=3), example, steps=6, checkpoint=path, resume=True, **{**kw, "batch_size": 4}
        )


def test_generator_trainer_is_a_run_of_the_one_loop(tmp_path):
    """The trainer's checkpoints carry the loop's header; the loop writes the run folder; the resume check
    refuses a synthesis checkpoint; steps=0 only calibrates."""
    from featstat.engine.loop import CHECKPOINT_FORMAT, Outputs

    example = blobs(16, 2)
    trainer = GeneratorTrainer(
        TextureNetV1(scales=3), texture_objective(small_features()), example, size=16, batch_size=2
    )
    seen = []
    result = trainer.run(
        3,
        checkpoint=tmp_path / "ck.pt",
        outputs=Outputs(tmp_path / "run"),
        callback=lambda s, v: seen.append(s),
    )
    header = load_checkpoint(tmp_path / "ck.pt")
    assert header["format"] == CHECKPOINT_FORMAT and header["kind"] == "texture-generator"
    assert header["status"] == "complete" and header["state"]["eval_buffers"] and seen == [1, 2, 3]
    assert set(result.history) == {"total", "gram", "lr", "seconds"} and len(result.history["gram"]) == 3
    assert json.loads((tmp_path / "run" / "run.json").read_text())["step"] == 3
    assert (tmp_path / "run" / "history.csv").is_file() and (tmp_path / "run" / "curves.png").is_file()
    from featstat.texture.synthesis import synthesize

    with pytest.raises(ValueError, match="texture-generator"):
        synthesize(texture_objective(small_features()), {"style": example}, 16, steps=2,
                   checkpoint=tmp_path / "ck.pt", resume=True)  # fmt: skip
    fresh = GeneratorTrainer(TextureNetV1(scales=3), texture_objective(small_features()), example, size=16)
    assert fresh.run(0).steps == 0 and fresh.eval_buffers


def test_interrupted_style_training_resumes_bit_for_bit(tmp_path):
    style, contents = blobs(20, 3), [blobs(24, 4), blobs(30, 5)]
    ext = small_features()
    kw = {
        "size": 16,
        "batch_size": 2,
        "extractor": ext,
        "style_layers": ["k3", "k5"],
        "content_layers": ["k5"],
        "style_weight": 10.0,
    }

    def net():
        return StyleNet(channels=(8, 8, 8), residual_blocks=1, seed=1)

    straight = train_style(net(), style, contents, steps=5, **kw)
    path = tmp_path / "ck.pt"

    def stop(step, values):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_style(net(), style, contents, steps=5, checkpoint=path, checkpoint_every=0, callback=stop, **kw)
    resumed = train_style(net(), style, contents, steps=5, checkpoint=path, resume=True, **kw)
    assert straight.history["total"] == resumed.history["total"]
    for a, b in zip(
        straight.generator.state_dict().values(), resumed.generator.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    loaded = load_generator(path)
    img = blobs(20, 6)
    torch.testing.assert_close(
        stylize(loaded, img, seed=gen(0)), stylize(resumed.generator, img, seed=gen(0))
    )


def test_style_training_lowers_style_and_content_terms():
    style, contents = blobs(20, 7), [blobs(24, 8)]
    result = train_style(
        StyleNet(channels=(8, 8, 8), residual_blocks=1, seed=0),
        style,
        contents,
        steps=30,
        size=16,
        batch_size=2,
        extractor=small_features(),
        style_layers=["k3", "k5"],
        content_layers=["k5"],
        style_weight=10.0,
        lr=0.02,
    )
    total = result.history["total"]
    assert sum(total[-5:]) < 0.5 * sum(total[:5])


def test_gradient_normalisation_gives_unit_l1_gradients_at_each_layer():
    seen: dict[str, torch.Tensor] = {}

    class Probe(nn.Module):  # an "extractor" that records the gradient its outputs receive
        layers: ClassVar[list[str]] = ["a", "b"]
        cache_key = ("probe",)

        def forward(self, x):
            out = {"a": 2 * x, "b": x.mean(1, keepdim=True)}
            for k, v in out.items():
                v.register_hook(lambda g, k=k: seen.__setitem__(k, g))
            return out

    ext = GradientNormalized(Probe())
    assert ext.layers == ["a", "b"] and ext.cache_key == ("normalized_gradients", ("probe",))
    x = torch.rand(2, 3, 6, 6, requires_grad=True)
    feats = ext(x)
    (1e3 * feats["a"].square().sum() + 5 * feats["b"].sum()).backward()
    for k in ("a", "b"):
        assert float(seen[k].abs().sum()) == pytest.approx(1.0, rel=1e-5)
    expected = 2 * seen["a"] + seen["b"].expand(-1, 3, -1, -1) / 3
    torch.testing.assert_close(x.grad, expected)


def test_trainer_bad_inputs(tmp_path):
    example = blobs(16, 0)
    with pytest.raises(ValueError, match="multiple of 4"):
        train_texture(TextureNetV1(scales=3), example, steps=1, size=18, extractor=small_features())
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        train_texture(
            TextureNetV1(scales=3),
            example,
            steps=1,
            size=16,
            batch_size=1,
            diversity=1.0,
            extractor=small_features(),
        )
    with pytest.raises(ValueError, match="stylisation"):
        train_style(
            TextureNetV1(scales=3),
            example,
            [example],
            steps=1,
            extractor=small_features(),
            content_layers=["k3"],
        )
    with pytest.raises(ValueError, match="texture generator"):
        train_texture(StyleNet(), example, steps=1)
    with pytest.raises(ValueError, match="contents"):
        GeneratorTrainer(StyleNet(), texture_objective(small_features()), example)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_texture(TextureNetV1(scales=3), example * 2 - 1, steps=1, size=16, extractor=small_features())
    save_checkpoint(tmp_path / "other.pt", {"kind": "something else"})
    with pytest.raises(ValueError, match="not a generator checkpoint"):
        load_generator(tmp_path / "other.pt")


def test_generator_bad_inputs():
    net = TextureNetV1(scales=3)
    with pytest.raises(ValueError, match="multiple of 4"):
        net.noise(1, 18, 16)
    with pytest.raises(ValueError, match="list of 3"):
        net(torch.rand(1, 3, 16, 16))
    z = net.noise(1, 16, 16)
    with pytest.raises(ValueError, match=r"noise\[0\]"):
        net([z[1], z[1], z[2]])
    with pytest.raises(ValueError, match="takes no content"):
        net(z, torch.rand(1, 3, 16, 16))
    style = StyleNet(channels=(8, 8, 8), residual_blocks=1)
    with pytest.raises(ValueError, match="content"):
        style(style.noise(1, 16, 16))
    with pytest.raises(ValueError, match="matching the noise"):
        style(style.noise(1, 16, 16), torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match="norm"):
        StyleNet(norm="layer")
    with pytest.raises(ValueError, match="arch"):
        build_generator("unet")
    with pytest.raises(ValueError, match="stylize"):
        generate(style, 1, 16)
    with pytest.raises(ValueError, match="stylisation generator"):
        stylize(net, torch.rand(1, 3, 16, 16))


# -- command line --------------------------------------------------------------------------------------------


def test_cli_train_sample_and_stylize(tmp_path):
    featstat.write_image(tmp_path / "ex.png", blobs(36, 0))
    featstat.write_image(tmp_path / "c1.png", blobs(40, 1))
    runner = CliRunner()
    common = [
        "--size",
        "16",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--preset",
        "random-filters",
        "--quiet",
        "--samples",
        "2",
    ]
    res = runner.invoke(
        train,
        ["texture", str(tmp_path / "ex.png"), "-o", str(tmp_path / "tex"), "--layers", "k3,k5", *common],
    )
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "tex" / "run.json").read_text())
    assert run["steps"] == 3 and run["settings"]["arch"] == "texture_v1"
    assert (tmp_path / "tex" / "loss.png").is_file()
    assert featstat.read_image(tmp_path / "tex" / "samples.png").shape == (1, 3, 16, 32)

    res = runner.invoke(
        sample_command,
        [
            str(tmp_path / "tex" / "checkpoint.pt"),
            "-o",
            str(tmp_path / "s"),
            "--size",
            "40x24",
            "--count",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert featstat.read_image(tmp_path / "s" / "sample_001.png").shape == (1, 3, 24, 40)

    res = runner.invoke(
        train,
        [
            "style",
            str(tmp_path / "ex.png"),
            str(tmp_path / "c1.png"),
            "-o",
            str(tmp_path / "sty"),
            "--style-layers",
            "k3,k5",
            "--content-layers",
            "k5",
            *common,
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        stylize_command,
        [
            str(tmp_path / "sty" / "checkpoint.pt"),
            str(tmp_path / "c1.png"),
            "-o",
            str(tmp_path / "out"),
            "--suffix",
            "_x",
            "--noise-scale",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert featstat.read_image(tmp_path / "out" / "c1_x.png").shape == (1, 3, 40, 40)
    assert json.loads((tmp_path / "out" / "stylize.json").read_text())["noise_scale"] == 2.0

    res = runner.invoke(
        stylize_command,
        [str(tmp_path / "tex" / "checkpoint.pt"), str(tmp_path / "c1.png"), "-o", str(tmp_path / "bad")],
    )
    assert res.exit_code != 0 and "stylisation" in res.output
    res = runner.invoke(sample_command, [str(tmp_path / "ex.png"), "-o", str(tmp_path / "bad")])
    assert res.exit_code != 0 and "could not be read" in res.output


def test_training_a_generator_without_output_squashing():
    """output="none" (the thesis' networks) may produce values outside [0, 1] while training: no error."""
    example = blobs(16, 0)
    net = TextureNetV1(scales=2, seed=0, output="none")
    result = train_texture(net, example, steps=2, size=16, batch_size=2, extractor=small_features())
    assert len(result.history["gram"]) == 2
