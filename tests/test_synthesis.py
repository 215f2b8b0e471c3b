"""Texture synthesis and style transfer by optimisation: the statistic falls by orders of magnitude, the
result
is new (not a shifted copy) yet has the example's statistics, any output size, coarse-to-fine, the other
statistics, exact resume and interruption, presets, the CLI and bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import featstat
from featstat.cli.texture import COMMANDS, style_command, texture_command, train
from featstat.features import vgg19
from featstat.features.random_filters import RandomFilterExtractor
from featstat.losses.functional import gram_loss, perceptual_loss
from featstat.texture.synthesis import (
    PRESETS,
    available_presets,
    parse_statistic,
    resolve_preset,
    style_objective,
    synthesize,
    synthesize_texture,
    texture_objective,
    transfer_style,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def blobs(size: int | tuple[int, int], seed: int) -> torch.Tensor:
    """A seeded colour texture: smoothed uniform noise, stretched to [0, 1]."""
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    img = F.avg_pool2d(torch.rand(1, 3, h + 4, w + 4, generator=g), 5, 1)
    return ((img - img.amin()) / (img.amax() - img.amin())).clamp(0, 1)


def vgg(layers=("relu1_1", "relu2_1")):
    return vgg19(list(layers), weights=None, pooling="avg", seed=0)


def max_ncc(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest normalised cross-correlation of the luminances of a and b over all circular shifts."""
    a, b = a.mean(1), b.mean(1)
    a, b = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    c = torch.fft.irfft2(torch.fft.rfft2(a) * torch.fft.rfft2(b).conj(), s=a.shape[-2:]) / a.numel()
    return float(c.max())


@pytest.fixture(scope="module")
def texture_run():
    example = blobs(40, 0)
    extractor = vgg()
    result = synthesize(texture_objective(extractor), {"style": example}, 40, steps=60, seed=0)
    return example, extractor, result


def test_optimisation_lowers_gram_loss_by_orders_of_magnitude(texture_run):
    _, _, result = texture_run
    assert result.history["total"][0] / result.total > 1e3
    assert result.image.shape == (1, 3, 40, 40)
    assert 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    assert len(result.history["gram"]) == 60 == result.steps
    assert result.history["evaluations"][-1] >= 60


def test_result_is_not_a_copy_yet_has_the_statistics(texture_run):
    example, extractor, result = texture_run
    shifted = torch.roll(example, shifts=(7, 11), dims=(-2, -1))
    assert max_ncc(shifted, example) > 0.99  # the measure does detect a shifted copy
    assert max_ncc(result.image, example) < 0.5
    fe, fr = extractor(example), extractor(result.image)
    other = extractor(blobs(40, 5))  # another sample of the same texture process
    for layer in fe:
        assert float(gram_loss(fr[layer], fe[layer])) < 0.1 * float(gram_loss(other[layer], fe[layer]))
    mean_diff = (result.image.mean(dim=(2, 3)) - example.mean(dim=(2, 3))).abs().max()
    assert mean_diff < 0.05


def test_output_size_is_independent_of_the_example():
    example = blobs(32, 1)
    result = synthesize_texture(example, (24, 56), extractor=vgg(), steps=25, seed=2)
    assert result.image.shape == (1, 3, 24, 56)
    assert result.history["total"][0] / result.total > 30


def test_seeds_give_different_textures_and_the_same_seed_the_same():
    example = blobs(24, 1)
    objective = texture_objective(vgg())
    a = synthesize(objective, {"style": example}, 24, steps=3, seed=0)
    b = synthesize(objective, {"style": example}, 24, steps=3, seed=0)
    c = synthesize(objective, {"style": example}, 24, steps=3, seed=1)
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)
    assert objective.last_passes == 1  # the target's features were cached: only the image is re-encoded


def test_coarse_to_fine_downsamples_example_and_output_together():
    example = blobs(48, 3)
    result = synthesize(texture_objective(vgg()), {"style": example}, (32, 40), steps=[8, 6], scales=2)
    assert result.settings["level_sizes"] == [[16, 20], [32, 40]]
    assert result.history["scale"] == [0] * 8 + [1] * 6
    assert result.image.shape == (1, 3, 32, 40)
    fine = result.history["total"][8:]
    assert fine[-1] < fine[0]


@pytest.mark.parametrize(
    "statistic", ["sliced_wasserstein", "projected_distribution", {"gram": 1.0, "swd": 10.0}]
)
def test_other_statistics_and_mixes_decrease(statistic):
    example = blobs(32, 4)
    result = synthesize_texture(example, 32, extractor=vgg(), statistic=statistic, steps=15, seed=0)
    names = list(parse_statistic(statistic))
    assert set(names) <= set(result.terms)
    for name in names:
        assert result.terms[name] < 0.5 * result.history[name][0]


def test_contextual_statistic_runs_and_decreases():
    example = blobs(24, 4)
    result = synthesize_texture(
        example,
        24,
        extractor=vgg(["relu1_1"]),
        statistic="cx",
        options={"cx": {"bandwidth": 0.5}},
        steps=6,
        seed=0,
    )
    assert result.terms["contextual"] < result.history["contextual"][0]


def test_gatys_layer_weights_reproduce_gatys_normalisation():
    extractor = vgg()
    objective = texture_objective(extractor, layer_weights="gatys")
    x, y = blobs(24, 0), blobs(32, 1)
    fx, fy = extractor(x), extractor(y)
    # Gatys: E_l = Σ(Ĝ − Â)² / (4 C² M²), Ĝ = F Fᵀ unnormalised; texture loss = Σ_l E_l / |L|
    expected = 0.0
    for layer in ("relu1_1", "relu2_1"):
        a, b = fx[layer][0].flatten(1).double(), fy[layer][0].flatten(1).double()
        c = a.shape[0]
        ga, gb = a @ a.T / a.shape[1], b @ b.T / b.shape[1]  # per-position normalisation (sizes differ)
        expected += float(((ga - gb) ** 2).sum() / (4 * c**2)) / 2
    assert float(objective(x, {"style": y}).total) == pytest.approx(expected, rel=1e-4)


def test_style_transfer_balances_content_and_style():
    content, style = blobs(32, 6), blobs(40, 7)
    extractor = vgg(["relu1_1", "relu2_1", "relu2_2"])
    kwargs = {
        "extractor": extractor,
        "style_layers": ["relu1_1", "relu2_1"],
        "content_layers": ["relu2_2"],
        "steps": 20,
        "init": "noise",
        "seed": 0,
    }
    heavy = transfer_style(content, style, content_weight=1.0, style_weight=1e2, **kwargs)
    light = transfer_style(content, style, content_weight=1e-3, style_weight=1e2, **kwargs)
    assert heavy.history["content"][0] / heavy.terms["content"] > 10
    fc = extractor(content)["relu2_2"]
    dist = [float(perceptual_loss(extractor(r.image)["relu2_2"], fc, "l2")) for r in (heavy, light)]
    assert dist[0] < 0.5 * dist[1]
    assert light.terms["gram"] < heavy.terms["gram"]
    assert heavy.image.shape == content.shape


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_checkpoint_resume_continues_identically(tmp_path, optimizer):
    example = blobs(24, 8)
    objective = texture_objective(vgg())
    kwargs = {"optimizer": optimizer, "seed": 1, "scales": 2}
    straight = synthesize(objective, {"style": example}, 24, steps=[4, 4], **kwargs)
    path = tmp_path / "run.ckpt.pt"
    first = synthesize(objective, {"style": example}, 24, steps=[4, 2], checkpoint=path, **kwargs)
    assert first.steps == 6
    resumed = synthesize(
        objective, {"style": example}, 24, steps=[4, 4], checkpoint=path, resume=True, **kwargs
    )
    assert torch.equal(straight.image, resumed.image)
    assert straight.history["total"] == resumed.history["total"]
    with pytest.raises(ValueError, match=r"cannot be resumed \(differences, saved → now: seed: 1 → 2"):
        synthesize(
            objective,
            {"style": example},
            24,
            steps=[4, 4],
            checkpoint=path,
            resume=True,
            optimizer=optimizer,
            seed=2,
            scales=2,
        )


def test_interrupt_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    example = blobs(24, 9)
    objective = texture_objective(vgg())
    straight = synthesize(objective, {"style": example}, 24, steps=6, seed=3)
    path = tmp_path / "c.pt"

    def stop_at_3(scale, step, image, values):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthesize(objective, {"style": example}, 24, steps=6, seed=3, checkpoint=path, callback=stop_at_3)
    saved = featstat.engine.runs.load_checkpoint(path)
    assert saved["step"] == 3
    resumed = synthesize(objective, {"style": example}, 24, steps=6, seed=3, checkpoint=path, resume=True)
    assert torch.equal(straight.image, resumed.image)


def test_level_run_alone_resumes_bit_for_bit_on_the_one_loop(tmp_path):
    """A LevelRun (one pyramid level) driven by run_loop: 3 steps, checkpoint, resume to 6 = 6 straight."""
    from featstat.engine.loop import run_loop
    from featstat.texture.pixel_runs import LevelRun

    example = blobs(24, 12)
    objective = texture_objective(vgg())
    x0 = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))

    def level():
        return LevelRun(objective, {"style": example}, x0, settings={"example": "blobs-12"})

    straight = level()
    run_loop(straight, 6)
    path = tmp_path / "level.pt"
    run_loop(level(), 3, checkpoint=path)
    resumed = level()
    result = run_loop(resumed, 6, checkpoint=path, resume=True)
    assert result.started_at == 3 and len(result.history) == 6
    assert torch.equal(straight.x, resumed.x) and straight.evaluations == resumed.evaluations
    with pytest.raises(ValueError, match="cannot be resumed"):
        other = LevelRun(objective, {"style": example}, x0, settings={"example": "another"})
        run_loop(other, 6, checkpoint=path, resume=True)


def test_stop_below_ends_a_level_and_zero_step_levels_pass_the_image_on(tmp_path):
    example = blobs(24, 13)
    objective = texture_objective(vgg())
    full = synthesize(objective, {"style": example}, 24, steps=[6, 0], scales=2, seed=0)
    assert full.steps == 6 and full.image.shape[-2:] == (24, 24) and set(full.history["scale"]) == {0}
    threshold = full.history["total"][2]  # reached after 3 steps of level 0
    stopped = synthesize(
        objective, {"style": example}, 24, steps=[6, 2], scales=2, seed=0, stop_below=threshold
    )
    assert (
        stopped.history["scale"] == [0, 0, 0, 1, 1]
        and stopped.history["total"][:3] == full.history["total"][:3]
    )
    path = tmp_path / "stop.pt"
    seen = []
    cb = lambda scale, step, image, values: seen.append((scale, step, sorted(values)))  # noqa: E731
    again = synthesize(
        objective, {"style": example}, 24, steps=[6, 2], scales=2, seed=0, stop_below=threshold,
        checkpoint=path, callback=cb,
    )  # fmt: skip
    assert torch.equal(again.image, stopped.image) and len(seen) == 5
    assert seen[0] == (0, 1, ["gram", "total"]) and seen[-1][:2] == (1, 2)
    image, step = featstat.texture.synthesis.checkpoint_image(path)
    assert step == 5 and image.shape[-2:] == (24, 24)
    # a run that stopped below the threshold on its last level, resumed: the last level continues
    one = tmp_path / "one.pt"
    kw = {"steps": 4, "seed": 0, "checkpoint": one, "stop_below": 1e9}
    assert synthesize(objective, {"style": example}, 24, **kw).steps == 1
    assert synthesize(objective, {"style": example}, 24, resume=True, **kw).steps == 2


def test_tileable_texture_has_no_seam():
    """tile=True: the image rolled by half its size (seams in the middle) keeps the example's statistics and
    the wrap-around step is like any other step between neighbours; without tile it is not."""
    example = blobs(32, 10)
    extractor = vgg()
    objective = texture_objective(extractor)

    def seam_stats(img):
        rolled = torch.roll(img, shifts=(16, 16), dims=(-2, -1))
        im = img[0]
        ratio = (im[:, :, 0] - im[:, :, -1]).abs().mean() / (im[:, :, 1:] - im[:, :, :-1]).abs().mean()
        return float(objective(rolled, {"style": example}).total), float(ratio)

    tiled = seam_stats(
        synthesize_texture(example, 32, extractor=extractor, steps=25, seed=0, tile=True).image
    )
    plain = seam_stats(synthesize_texture(example, 32, extractor=extractor, steps=25, seed=0).image)
    assert tiled[0] < 0.6 * plain[0]
    assert tiled[1] < 1.5 < plain[1]


def test_auto_preset_falls_back_to_random_filters_without_weights():
    assert (
        resolve_preset("auto").name == "random-filters"
    )  # conftest points FEATSTAT_WEIGHTS to an empty folder
    assert available_presets()[-1] == "random-filters"
    assert set(PRESETS["gatys"].texture_layers) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    assert PRESETS["gatys"].content_layers == ("relu4_2",)


def test_real_caffe_layers_synthesise(shared, monkeypatch):
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(shared / "weights"))
    assert resolve_preset("auto").name == "caffe-relu3_1"
    example = featstat.read_image(shared / "images" / "textures" / "red-peppers256.o.jpg")
    example = F.interpolate(example, size=(48, 48), mode="bilinear", antialias=True).clamp(0, 1)
    result = synthesize_texture(example, 40, steps=25, seed=0)
    assert result.settings["objective"][0]["layers"] == ["relu1_1", "relu2_1", "relu3_1"]
    assert result.history["total"][0] / result.total > 100
    assert max_ncc(F.interpolate(result.image, size=(48, 48)), example) < 0.6


def test_random_filter_preset_synthesises_without_any_file():
    example = blobs(40, 11)
    extractor = RandomFilterExtractor(None, sizes=(3, 7, 15), filters=16)
    result = synthesize_texture(example, 40, extractor=extractor, steps=20, seed=0)
    assert result.history["total"][0] / result.total > 100


# -- bad inputs ----------------------------------------------------------------------------------------------


def test_bad_inputs():
    example = blobs(24, 0)
    objective = texture_objective(vgg())
    with pytest.raises(ValueError, match="statistic"):
        texture_objective(vgg(), statistic="l1")
    with pytest.raises(ValueError, match="unknown loss"):
        texture_objective(vgg(), statistic="gramm")
    with pytest.raises(ValueError, match="not computed"):
        texture_objective(vgg(), layers=["relu3_1"])
    with pytest.raises(ValueError, match="options"):
        texture_objective(vgg(), options={"contextual": {"bandwidth": 0.5}})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        synthesize(objective, {"style": example * 255}, 24, steps=1)
    with pytest.raises(ValueError, match="size"):
        synthesize(objective, {"style": example}, (24, 0), steps=1)
    with pytest.raises(ValueError, match="missing"):
        synthesize(objective, {"content": example}, 24, steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        synthesize(objective, {"style": example}, 24, steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="steps"):
        synthesize(objective, {"style": example}, 24, steps=[3], scales=2)
    with pytest.raises(ValueError, match="init='content'"):
        synthesize(objective, {"style": example}, 24, steps=1, init="content")
    with pytest.raises(ValueError, match="resume"):
        synthesize(objective, {"style": example}, 24, steps=1, resume=True)
    small = texture_objective(RandomFilterExtractor(["k7"], sizes=(7,), filters=2))
    with pytest.raises(ValueError, match="scales=3"):
        synthesize(small, {"style": blobs(16, 0)}, 16, steps=1, scales=3)
    style = style_objective(vgg(), ["relu1_1"], ["relu2_1"])
    with pytest.raises(ValueError, match="tile"):
        synthesize(style, {"style": example, "content": example}, 24, steps=1, tile=True)
    with pytest.raises(ValueError, match="content_layers"):
        transfer_style(example, example, extractor=vgg())


# -- command line --------------------------------------------------------------------------------------------


def test_cli_texture_and_style_write_image_curve_and_json(tmp_path):
    featstat.write_image(tmp_path / "ex.png", blobs(36, 0))
    runner = CliRunner()
    out = tmp_path / "t.png"
    args = [
        str(tmp_path / "ex.png"),
        "-o",
        str(out),
        "--size",
        "40x24",
        "--steps",
        "4",
        "--preset",
        "random-filters",
        "--layers",
        "k3,k5",
        "--quiet",
        "--statistic",
        "gram",
        "--statistic",
        "swd:2",
    ]
    res = runner.invoke(texture_command, args)
    assert res.exit_code == 0, res.output
    assert featstat.read_image(out).shape == (1, 3, 24, 40)
    log = json.loads((tmp_path / "t.json").read_text())
    assert log["settings"]["statistic"] == {"gram": 1.0, "sliced_wasserstein": 2.0}
    assert set(log["final"]["terms"]) == {"gram", "sliced_wasserstein"}
    assert (tmp_path / "t_loss.png").stat().st_size > 1000 and (tmp_path / "t.ckpt.pt").is_file()

    res = runner.invoke(
        style_command,
        [
            str(tmp_path / "ex.png"),
            str(tmp_path / "t.png"),
            "-o",
            str(tmp_path / "s.png"),
            "--size",
            "32",
            "--steps",
            "3",
            "--preset",
            "random-filters",
            "--style-layers",
            "k3,k5",
            "--content-layers",
            "k5",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert featstat.read_image(tmp_path / "s.png").shape == (1, 3, 32, 32)
    assert json.loads((tmp_path / "s.json").read_text())["command"] == "style"


def test_cli_help_and_errors(tmp_path):
    runner = CliRunner()
    for command in COMMANDS:
        res = runner.invoke(command, ["--help"])
        assert res.exit_code == 0 and "Example" in res.output, command.name
    assert "random-filters" in runner.invoke(texture_command, ["--help"]).output
    assert {"texture", "style"} <= set(train.commands)
    featstat.write_image(tmp_path / "ex.png", blobs(20, 0))
    res = runner.invoke(
        texture_command,
        [str(tmp_path / "ex.png"), "-o", str(tmp_path / "o.png"), "--statistic", "l2", "--quiet"],
    )
    assert res.exit_code != 0 and "statistic" in res.output
    res = runner.invoke(
        texture_command, [str(tmp_path / "ex.png"), "-o", str(tmp_path / "o.png"), "--size", "ax3"]
    )
    assert res.exit_code != 0 and "size" in res.output


# -- presets as specs ----------------------------------------------------------------------------------------


def test_presets_are_specs_built_by_the_one_builder():
    """A preset writes a plain-data objective spec; build_objective turns it into the objective the texture
    and style functions use; the presets are in the one preset registry."""
    from featstat.objective.config import build_objective
    from featstat.registry import PRESETS as REGISTRY
    from featstat.texture.presets import texture_spec

    assert REGISTRY.get("gatys") is PRESETS["gatys"] and "random-filters" in REGISTRY.names(product="texture")
    spec = PRESETS["gatys"].style_spec("gram", tv_weight=0.5)
    assert json.loads(json.dumps(spec)) == spec  # data, no objects
    assert spec["backbones"]["features"] == {"arch": "vgg19", "weights": "vgg19-caffe", "pooling": "avg"}
    assert spec["terms"]["gram"]["weight"] == PRESETS["gatys"].style_weight
    content = {
        "loss": "perceptual",
        "norm": "l2",
        "weight": 1.0,
        "backbone": "features",
        "layers": ["relu4_2"],
    }
    assert spec["terms"]["content"] == {**content, "target": "content"}
    assert spec["terms"]["tv"]["target"] == "none"

    layers = ["k3", "k5"]
    preset = PRESETS["random-filters"]
    from_spec = build_objective(preset.texture_spec({"gram": 1.0, "swd": 2.0}, layers))
    direct = texture_objective(build_extractor_for(layers), layers, {"gram": 1.0, "swd": 2.0})
    assert [(t.name, t.weight, list(t.layers), t.target) for t in from_spec.terms] == [
        (t.name, t.weight, list(t.layers), t.target) for t in direct.terms
    ]
    x, example = blobs(24, 1), blobs(32, 2)
    torch.manual_seed(0)
    a = from_spec(x, {"style": example})
    torch.manual_seed(0)
    b = direct(x, {"style": example})
    torch.testing.assert_close(a.total, b.total)
    guided = texture_spec({"arch": "random_filters", "sizes": [3], "filters": 4}, ["k3"], guides=("o", "e"))
    assert guided["terms"]["gram"]["pred_guide"] == "o" and guided["terms"]["gram"]["target_guide"] == "e"
    with pytest.raises(ValueError, match="not used"):
        preset.texture_spec("gram", layers, options={"cx": {"bandwidth": 0.5}})


def build_extractor_for(layers):
    from featstat.texture.synthesis import build_extractor

    return build_extractor("random-filters", layers)
