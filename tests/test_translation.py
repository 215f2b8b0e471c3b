"""Unaligned translation (thesis 5.3–5.4) on the run loop: the loss terms are the plain formulas, a few
steps lower the losses, resume is bit-exact, every discriminator trains, tiled inference."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

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
    assert _mean(rows[-3:], "d_loss") < _mean(rows[:3], "d_loss")


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
