"""Unaligned translation (thesis 5.3–5.4) on the run loop: the loss terms are the plain formulas, a few
steps lower the losses, resume is bit-exact, every discriminator trains, tiled inference."""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from conftest import run_spawned
from featstat.adversarial import discriminator_head_loss
from featstat.adversarial.translation import (
    DISCRIMINATORS,
    TranslationOptions,
    TranslationRun,
    UnpairedCrops,
    load_translator,
    train_translation,
    translate,
)
from featstat.io import write_image

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(batch=2, size=32, width=8, generator_width=8, blocks=1, weights=None)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("unpaired")
    g = torch.Generator().manual_seed(0)
    for side in ("source", "target"):
        (root / side).mkdir()
    for i in range(4):
        coarse = torch.rand(1, 3, 5, 6, generator=g)  # smooth images: something an auto-encoder can learn
        x = torch.nn.functional.interpolate(coarse, size=(40, 48), mode="bilinear")
        write_image(root / "source" / f"{i}.png", x)
        write_image(root / "target" / f"{i}.png", (0.6 * x + 0.3).clamp(0, 1))  # a hidden colour grade
    return root / "source", root / "target"


def _run(folders, **kw):
    opts = TranslationOptions(**{**TINY, **kw})
    return TranslationRun(opts, UnpairedCrops(*folders, opts.size))


def test_identity_and_cycle_terms_are_the_plain_formulas(folders):
    run = _run(folders, cycle=True, identity=0.5, discriminator="image")
    g_xy, g_yx = copy.deepcopy(run.g_xy), copy.deepcopy(run.g_yx)
    sampler = run.sampler.get_state()
    values = run.step(0)
    replay = torch.Generator()
    replay.set_state(sampler)
    x = run.data.draw("source", 2, replay)
    y = run.data.draw("target", 2, replay)
    g_xy.train(), g_yx.train()
    with torch.no_grad():
        ident = (g_xy(y) - y).abs().mean() + (g_yx(x) - x).abs().mean()
        fx, fy = g_xy(x), g_yx(y)
        cycle = (g_yx(fx) - x).abs().mean() + (g_xy(fy) - y).abs().mean()
    torch.testing.assert_close(values["identity"], ident)
    torch.testing.assert_close(values["cycle"], cycle)
    total = values["g_adv"] + 0.5 * values["identity"] + 10.0 * values["cycle"]
    torch.testing.assert_close(values["loss"], total)


def test_pretraining_is_an_autoencoder_step(folders):
    run = _run(folders, pretrain=2)
    g = copy.deepcopy(run.g_xy).train()
    replay = torch.Generator()
    replay.set_state(run.sampler.get_state())
    values = run.step(0)
    x, y = run.data.draw("source", 2, replay), run.data.draw("target", 2, replay)
    with torch.no_grad():
        expected = (g(x) - x).abs().mean() + (g(y) - y).abs().mean()
    torch.testing.assert_close(values["loss"], expected)
    assert "d_loss" not in values


@pytest.mark.parametrize("kind", DISCRIMINATORS)
def test_every_discriminator_trains_and_only_its_learnable_part_moves(folders, kind):
    size = 64 if kind == "separate-ms" else 32
    run = _run(folders, discriminator=kind, size=size)
    frozen = {k: v.clone() for k, v in run.d_y.named_parameters() if not v.requires_grad}
    learn = {k: v.clone() for k, v in run.d_y.named_parameters() if v.requires_grad}
    g_before = [p.clone() for p in run.g_xy.parameters()]
    values = [run.step(i) for i in range(2)]
    assert all(torch.isfinite(v["loss"]) for v in values)
    for k, v in run.d_y.named_parameters():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    assert any(not torch.equal(v, learn[k]) for k, v in run.d_y.named_parameters() if k in learn)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, run.g_xy.parameters(), strict=True))
    if kind == "perceptual":
        assert frozen  # a frozen trunk exists and did not move


def _mean(rows, key):
    return sum(float(r[key]) for r in rows) / len(rows)


def test_a_few_steps_lower_each_loss(folders):
    torch.manual_seed(0)
    ae = _run(folders, pretrain=30, lr=1e-3)
    rows = [ae.step(i) for i in range(20)]
    assert _mean(rows[-3:], "loss") < 0.7 * _mean(rows[:3], "loss")  # auto-encoder pre-training
    run = _run(folders, discriminator="perceptual", lr=1e-3, identity=20.0)
    rows = [run.step(i) for i in range(25)]
    assert _mean(rows[-3:], "identity") < 0.7 * _mean(rows[:3], "identity")


@pytest.mark.parametrize("kind", ["perceptual", "image"])
def test_the_discriminator_update_lowers_its_loss_on_its_batch(folders, kind):
    # in the game the generator keeps up, so d_loss need not fall over steps; each update must lower it
    run = _run(folders, discriminator=kind, lr=1e-3)
    for i in range(3):
        g_before = copy.deepcopy(run.g_xy).train()
        replay = torch.Generator()
        replay.set_state(run.sampler.get_state())
        values = run.step(i)
        x, y = run.data.draw("source", 2, replay), run.data.draw("target", 2, replay)
        d_after = copy.deepcopy(run.d_y)
        with torch.no_grad():
            fake = g_before(x)
            after = discriminator_head_loss(d_after(y), d_after(fake))
        assert after < values["d_loss"] - 1e-4, (i, float(after), float(values["d_loss"]))


def test_resume_is_bit_exact(folders, tmp_path):
    warnings.simplefilter("ignore")
    kw = dict(TINY, steps=4, discriminator="perceptual", pretrain=1, checkpoint_every=1, log_every=1)
    straight, _ = train_translation(*folders, tmp_path / "a", **kw)

    def stop_at_2(step, values):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_translation(*folders, tmp_path / "b", callback=stop_at_2, **kw)
    resumed, result = train_translation(*folders, tmp_path / "b", resume=True, **kw)
    assert result.started_at == 2 and result.step == 4
    for a, b in zip(straight.g_xy.state_dict().values(), resumed.g_xy.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="identity"):  # another setting: the resume check names it
        train_translation(*folders, tmp_path / "b", resume=True, **{**kw, "steps": 5, "identity": 3.0})
    assert (tmp_path / "a" / "curves.png").is_file() and (tmp_path / "a" / "history.csv").is_file()


def test_load_and_translate_any_size(folders, tmp_path):
    warnings.simplefilter("ignore")
    train_translation(*folders, tmp_path, **TINY, steps=1)
    net = load_translator(tmp_path)
    x = torch.rand(1, 3, 45, 77)
    y = translate(net, x, tile=32, overlap=8)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    with pytest.raises(ValueError, match="translation run"):
        torch.save({"format": "x"}, tmp_path / "bad.pt")
        load_translator(tmp_path / "bad.pt")


def test_bad_options_name_themselves(folders):
    with pytest.raises(ValueError, match="discriminator"):
        TranslationOptions(discriminator="patchgan")
    with pytest.raises(ValueError, match="batch"):
        TranslationOptions(batch=1)
    with pytest.raises(ValueError, match="source"):
        UnpairedCrops(folders[0].parent / "missing-dir", folders[1], 32)


# --------------------------------------------------------- one trunk pass per image, shared with objectives


def _objective_on(extractor):
    from featstat.losses import L2Loss
    from featstat.objective import Objective, Term

    return Objective([Term("content", L2Loss(), extractor=extractor, layers=["relu2_2"])])


def test_the_frozen_trunk_runs_once_per_image_per_step_and_serves_an_objective_term(folders):
    import featstat

    kw = dict(discriminator="perceptual", vgg_star=False, identity=0.5)
    # the objective's extractor equals the trunk (same network, random weights seed 0, preprocessing, pooling)
    objective = _objective_on(featstat.vgg19(["relu2_2"], weights=None, seed=0))
    opts = TranslationOptions(**{**TINY, **kw})
    run = TranslationRun(opts, UnpairedCrops(*folders, 32), objective=objective)
    trunk = run.trunks[0]
    assert trunk is not None and objective.extractors[0] is trunk
    assert set(trunk.layers) >= {"relu2_2", *run.d_y.layers}
    frozen = [p for p in run.d_y.extractor.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    g_before = copy.deepcopy(run.g_xy).train()
    replay = torch.Generator()
    replay.set_state(run.sampler.get_state())
    values = run.step(0)
    # G(x) with a graph (discriminator and objective), y without one, x once as the objective's target
    assert trunk.passes == 3
    assert all(p.grad is None for p in frozen)  # no weight gradients for the frozen trunk
    assert all(p.requires_grad for p in run._learnable[0])  # switched back on after the generator's update
    x = run.data.draw("source", 2, replay)
    with torch.no_grad():
        alone = _objective_on(featstat.vgg19(["relu2_2"], weights=None, seed=0))(g_before(x), x).total
    torch.testing.assert_close(values["objective"], alone, rtol=1e-4, atol=1e-6)
    run.step(1)
    assert trunk.passes == 6
    plain = _run(folders, discriminator="perceptual")
    plain.step(0)
    assert plain.trunks[0].passes == 2  # no objective: G(x) once (with a graph), y once


def test_vgg_star_is_another_extractor_for_objectives():
    import featstat
    from featstat.adversarial import vgg_star_

    plain = featstat.vgg19(["relu2_2"], weights=None, pooling="avg")
    star = vgg_star_(featstat.vgg19(["relu2_2"], weights=None, pooling="avg"))
    assert plain.cache_key != star.cache_key
    assert vgg_star_(star).cache_key == star.cache_key  # idempotent
    objective = _objective_on(plain)
    run = _run_tensors(layers=("relu1_2", "relu2_2"), objective=None)
    run = TranslationRun(run.opts, run.data, objective=objective)
    assert objective.extractors[0] is plain and run.trunks[0] is not None  # VGG* trunk: not shared


# ----------------------------------------------------------------------------------- data, seeds, registry


def test_draw_takes_a_seed_shards_for_data_parallel_and_accepts_tensors(folders):
    data = UnpairedCrops(*folders, 32)
    a = data.draw("source", 4, 7)
    assert torch.equal(a, data.draw("source", 4, torch.Generator().manual_seed(7)))
    halves = [data.draw("source", 2, 7, rank=r, world=2) for r in range(2)]
    assert torch.equal(torch.cat(halves), a)  # W processes see what one process drawing W·batch sees
    with pytest.warns(DeprecationWarning, match="'g' is now 'seed'"):
        old = data.draw("source", 4, g=torch.Generator().manual_seed(7))
    assert torch.equal(old, a)
    with pytest.raises(ValueError, match="rank"):
        data.draw("source", 2, 0, rank=2, world=2)
    images = torch.rand(5, 3, 40, 36)
    mem = UnpairedCrops(images, images.flip(0), 32)
    crops = mem.draw("target", 3, 0)
    assert crops.shape == (3, 3, 32, 32) and len(mem.source) == 5
    with pytest.raises(ValueError, match="target"):
        UnpairedCrops(images, images * 255, 32)


def test_discriminators_come_from_the_network_registry():
    from featstat.adversarial.discriminators import make_discriminator
    from featstat.registry import NETWORKS

    assert tuple(DISCRIMINATORS) == ("perceptual", "image", "ms-image", "separate-ms", "rand-ms")
    assert list(DISCRIMINATORS) == NETWORKS.names(family="discriminator")
    with pytest.raises(ValueError, match="did you mean 'image'"):
        make_discriminator("imag")

    def tiny(**kw):
        return make_discriminator("image", width=4, seed=kw["seed"])

    tiny.family = "discriminator"
    NETWORKS.register_value("registry-test-d", tiny)
    try:
        assert "registry-test-d" in DISCRIMINATORS
        run = _run_tensors(discriminator="registry-test-d")
        assert run.d_y.net[0].out_channels == 4 and torch.isfinite(run.step(0)["loss"])
    finally:
        NETWORKS.unregister("registry-test-d")
    with pytest.raises(ValueError, match="discriminator"):
        TranslationOptions(discriminator="registry-test-d")


def test_the_command_line_choices_and_help_come_from_the_registry():
    from click.testing import CliRunner

    from featstat.cli import main
    from featstat.registry import NETWORKS

    def tiny(**kw):
        return None

    tiny.family, tiny.summary = "discriminator", "a test entry"
    NETWORKS.register_value("registry-test-cli", tiny)
    try:
        shown = CliRunner().invoke(main, ["train", "translate", "--help"]).output
        assert "registry-test-cli" in shown and "a test entry" in shown and "rand-ms" in shown
    finally:
        NETWORKS.unregister("registry-test-cli")
    bad = CliRunner().invoke(main, ["train", "translate", "--source", ".", "--target", ".", "-o", "x",
                                    "--discriminator", "registry-test-cli"])  # fmt: skip
    assert bad.exit_code == 2 and "registry-test-cli" in bad.output


def _run_tensors(**kw):
    g = torch.Generator().manual_seed(0)
    opts = TranslationOptions(**{**TINY, **kw})
    return TranslationRun(opts, UnpairedCrops(torch.rand(4, 3, 36, 36, generator=g),
                                              torch.rand(4, 3, 36, 36, generator=g), opts.size))  # fmt: skip


# ---------------------------------------------------------------------------------------- data parallel

DDP_KW = dict(TINY, steps=3, pretrain=1, discriminator="perceptual", identity=0.5, log_every=1)


def _ddp_worker(rank: int, world: int, root: str, source: str, target: str) -> None:
    os.environ["FEATSTAT_OFFLINE"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=world)
    try:
        run, _ = train_translation(source, target, Path(root) / "ddp", device="cpu", **{**DDP_KW, "batch": 2})
        assert run.world == 2 and isinstance(run._g[0], torch.nn.parallel.DistributedDataParallel)
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_equal_one_process_on_the_combined_batch(folders, tmp_path):
    run_spawned(_ddp_worker, (2, str(tmp_path), str(folders[0]), str(folders[1])))
    single, _ = train_translation(*folders, tmp_path / "one", device="cpu", **{**DDP_KW, "batch": 4})
    ddp = load_translator(tmp_path / "ddp")
    start = TranslationRun(TranslationOptions(**{**TINY, "batch": 4}), UnpairedCrops(*folders, 32)).g_xy
    # the bias of a convolution that an instance norm follows has a zero gradient up to rounding, and Adam's
    # normalised step follows the rounding: those alone may differ (they change nothing downstream)
    noise_only = set()
    for seq in [m for m in start.modules() if isinstance(m, torch.nn.Sequential)]:
        for (i, a), b in zip(seq.named_children(), list(seq.children())[1:], strict=False):
            if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.InstanceNorm2d):
                prefix = next(n for n, m in start.named_modules() if m is seq)
                noise_only.add(f"{prefix}.{i}.bias")
    assert "body.0.bias" in noise_only and "body.0.weight" not in noise_only
    moved = False
    for (name, a), b, c in zip(single.g_xy.state_dict().items(), ddp.state_dict().values(),
                               start.state_dict().values(), strict=True):  # fmt: skip
        if name in noise_only:
            continue
        torch.testing.assert_close(b, a, atol=5e-6, rtol=0, msg=name)  # steps move them ~6e-4
        moved |= not torch.allclose(a, c)
    assert moved  # training moved the weights
    rows = json.loads((tmp_path / "ddp" / "history.json").read_text())["history"]
    one = json.loads((tmp_path / "one" / "history.json").read_text())["history"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for a, b in zip(rows, one, strict=True):  # the logged numbers are averaged over the processes
        assert set(a) == set(b)
        for key in ("loss", "d_loss", "g_adv", "identity"):
            if key in b:
                assert a[key] == pytest.approx(b[key], rel=1e-4), (a["step"], key)
