"""Recipes: every preset builds and runs one step; the papers' settings are what the presets hold; TSRN's
layer weights reproduce the paper's eq. 1; overrides from TOML; bad inputs."""

from __future__ import annotations

import pytest
import torch

from featstat import features
from featstat.losses import ContextualLoss, GramLoss, LowFrequencyL2Loss, ProjectedDistributionLoss
from featstat.losses.adversarial import generator_adversarial_loss
from featstat.restoration.recipes import (
    RECIPES,
    build_objective,
    get_recipe,
    merge,
    recipe_names,
    setup,
    validate_recipe,
)

TINY = {
    "srresnet": {"channels": 8, "blocks": 1},
    "edsr": {"channels": 8, "blocks": 1},
    "tsrn": {"channels": 8, "blocks": 1},
    "srn": {"channels": 4, "blocks": 1, "levels": 2, "scales": 2, "kernel_size": 3},
    "crn": {"channels": [8, 8]},
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _offline(recipe: dict) -> dict:
    """The recipe with seeded random backbone weights (no downloads in tests) and a tiny network."""
    r = merge(recipe, {})
    for section in (r.get("objective", {}), r.get("pretrain", {}).get("objective", {})):
        for spec in section.get("backbones", {}).values():
            if spec.get("arch") != "patches":
                spec["weights"] = "random"
    name = r["network"]["name"]
    name = {"sr": "srresnet", "no": "crn"}.get(r["task"][:2], "srn") if name == "auto" else name
    r["network"] = {"name": name, "options": TINY[name]}
    if r.get("adversarial", {}).get("enabled"):
        r["adversarial"]["discriminator"] = {"channels": 2, "hidden": 4}
    return r


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_builds_and_runs_one_step(name):
    s = setup(_offline(get_recipe(name)))
    torch.manual_seed(0)
    scale = s.degradation.scale
    target = torch.rand(2, 3, 32, 32)
    inp = torch.rand(2, 3, 32 // scale, 32 // scale)
    opt = torch.optim.SGD(s.model.parameters(), lr=0.0)
    for objective in (s.pretrain_objective, s.objective):
        if objective is None:
            continue
        pred = s.model(inp)
        assert pred.shape == target.shape
        out = objective(pred, target, validate=False)  # a raw network output, as the trainer passes it
        total = out.total
        if s.discriminator is not None and objective is s.objective:
            total = total + s.adversarial.weight * generator_adversarial_loss(s.discriminator(pred))
        opt.zero_grad()
        total.backward()
        assert torch.isfinite(total)
        grads = [p.grad for p in s.model.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
        opt.step()
    terms = set(get_recipe(name)["objective"]["terms"])
    assert set(s.objective.losses) == terms


def test_cx_sr_holds_the_paper_settings():
    r = get_recipe("cx-sr")
    s = setup(_offline(r))
    cx, lf = s.objective.terms
    assert isinstance(cx.loss, ContextualLoss) and cx.weight == 0.1 and cx.layers == ["conv3_4"]
    assert cx.loss.bandwidth == 0.1 and cx.loss.distance == "cosine" and cx.extractor.arch == "vgg19"
    assert isinstance(lf.loss, LowFrequencyL2Loss) and lf.weight == 10.0
    assert lf.loss.kernel_size == 21 and lf.loss.sigma == 3.0
    assert s.adversarial.weight == 1e-3 and s.adversarial.kind == "nonsaturating"
    assert s.options.pretrain_steps == round(s.options.steps / 16)  # L2 for 100 of 1600 epochs
    assert [t.loss.__class__.__name__ for t in s.pretrain_objective.terms] == ["L2Loss"]
    assert s.model.spec["name"] == "srresnet" and s.degradation.scale == 4
    vgg = {"arch": "vgg19", "weights": "auto", "paper_weights": "vgg19"}  # paper file first
    assert r["objective"]["backbones"]["vgg"] == vgg
    no_gan = setup(_offline(get_recipe("cx-sr", {"adversarial": {"enabled": False}})))
    assert no_gan.discriminator is None and no_gan.adversarial is None


def test_pdl_recipes_hold_the_paper_settings():
    expected = {
        "pdl-denoise": ("denoise", "srn"),
        "pdl-sr": ("sr4", "edsr"),
        "pdl-deblur": ("deblur", "srn"),
        "pdl-jpeg": ("jpeg", "srn"),
        "pdl-demosaic": ("demosaic", "srn"),
    }
    for name, (task, net) in expected.items():
        r = get_recipe(name)
        assert r["task"] == task and r["network"]["name"] == net
        terms = r["objective"]["terms"]
        assert terms["l1"] == {"loss": "l1", "weight": 1.0}
        assert terms["pdl"]["layers"] == ["conv4_3"] and terms["pdl"]["weight"] == 0.01
        assert r["objective"]["backbones"]["vgg"]["arch"] == "vgg16"
    s = setup(_offline(get_recipe("pdl-denoise")))
    assert isinstance(s.objective.terms[1].loss, ProjectedDistributionLoss)
    assert s.objective.terms[1].loss.projection == "identity"
    assert s.degradation.options["sigma"] == 75.0 and s.degradation.options["clip"] is False
    assert setup(_offline(get_recipe("pdl-jpeg"))).degradation.options["quality"] == 20


def test_tsrn_layer_weights_reproduce_the_papers_texture_loss():
    """TSRN eq. 1 per layer: Σ (F Fᵀ − P Pᵀ)² / (4 N² M²) with unnormalised Gram matrices, N channels, M
    positions; the preset's layer weights C²/4 turn featstat's normalised Gram loss into exactly that."""
    r = _offline(get_recipe("tsrn"))
    s = setup(r)
    gram = s.objective.terms[0]
    assert isinstance(gram.loss, GramLoss)
    assert gram.layers == ["conv2_2", "conv3_4", "conv4_4", "conv5_2"]
    torch.manual_seed(1)
    pred, target = (
        torch.rand(1, 3, 32, 32, dtype=torch.float64),
        torch.rand(1, 3, 32, 32, dtype=torch.float64),
    )
    vgg = features.vgg19(gram.layers, weights=None, dtype=torch.float64)
    fp, ft = vgg(pred), vgg(target)
    expected = 0.0
    for layer in gram.layers:
        f, p = fp[layer].flatten(2)[0], ft[layer].flatten(2)[0]
        n, m = f.shape
        expected += float(((f @ f.T - p @ p.T) ** 2).sum() / (4 * n**2 * m**2))
    got = float(s.objective.double()(pred, target).terms["gram"])
    assert got == pytest.approx(expected, rel=1e-9)
    assert s.model.spec["name"] == "tsrn" and s.options.lr == 5e-4
    fewer = setup(_offline(get_recipe("tsrn", {"objective": {"terms": {"gram": {"layers": ["conv2_2"]}}}})))
    assert fewer.objective.terms[0].layer_weights == {"conv2_2": 128**2 / 4}
    assert s.options.pretrain_steps == round(s.options.steps * 10 / 110)


def test_normals_and_single_image_recipes():
    s = setup(_offline(get_recipe("normals")))
    terms = {t.name: t for t in s.objective.terms}
    assert terms["cx_patches"].extractor.size == 5 and terms["cx_patches"].extractor.stride == 2
    assert terms["cx_vgg"].layers == ["conv1_2", "conv2_2"] and terms["cx_vgg"].loss.sample_size == 65
    assert terms["cx_patches"].weight == terms["cx_vgg"].weight == 1.0
    assert terms["lf"].weight == 0.1 and terms["l1"].weight == 1.0
    assert "l1" not in RECIPES["normals-no-l1"]["objective"]["terms"]
    pred = s.model(torch.rand(1, 3, 24, 24))
    assert torch.allclose((2 * pred - 1).norm(dim=1), torch.ones(1, 24, 24), atol=1e-5)  # unit normals
    single = get_recipe("single-image-sr")
    s = setup(_offline(single))
    cx = s.objective.terms[0]
    assert cx.extractor.size == 5 and cx.extractor.stride == 2 and cx.loss.bandwidth == 0.1
    assert single["data"]["crop_size"] == 384 and s.options.steps == 10000 and s.degradation.scale == 4
    every = setup(
        _offline(get_recipe("normals", {"objective": {"terms": {"cx_vgg": {"sample_size": "none"}}}}))
    )
    assert {t.name: t for t in every.objective.terms}["cx_vgg"].loss.sample_size is None


def test_overrides_from_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'base = "cx-sr"\n[objective.terms.cx]\nbandwidth = 0.2\nlayers = ["conv3_1"]\n'
        "[objective.terms.lf]\nenabled = false\n[training]\nsteps = 50\nlr_milestones = [30]\n"
        '[network]\nname = "edsr"\n',
        encoding="utf-8",
    )
    r = get_recipe(None, path)
    assert r["name"] == "cx-sr" and r["objective"]["terms"]["cx"]["weight"] == 0.1  # untouched keys kept
    s = setup(_offline(r))
    assert [t.name for t in s.objective.terms] == ["cx"]
    assert s.objective.terms[0].loss.bandwidth == 0.2 and s.objective.terms[0].layers == ["conv3_1"]
    assert s.options.steps == 50 and s.options.lr_milestones == (30,) and s.options.pretrain_steps == 3
    assert s.model.spec["name"] == "edsr"


def test_recipe_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown recipe 'cx_sr'; did you mean 'cx-sr'"):
        get_recipe("cx_sr")
    with pytest.raises(ValueError, match=r"unknown sections \['optimiser'\]"):
        get_recipe("pixel", {"optimiser": {"lr": 1}})
    with pytest.raises(ValueError, match=r"\[training\] has unknown keys \['epochs'\]"):
        get_recipe("pixel", {"training": {"epochs": 3}})
    with pytest.raises(ValueError, match=r"\[data\] has unknown keys"):
        validate_recipe(merge(RECIPES["pixel"], {"data": {"crop": 3}}))
    with pytest.raises(ValueError, match=r"supports tasks \['sr4', 'sr2', 'sr8'\], got task='denoise'"):
        setup(_offline(get_recipe("cx-sr")), task="denoise")
    with pytest.raises(ValueError, match="no enabled terms"):
        build_objective({"terms": {"a": {"loss": "l1", "enabled": False}}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nsteps = 3", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        get_recipe("pixel", bad)
    with pytest.raises(ValueError, match="unknown loss"):
        setup(_offline(get_recipe("pixel", {"objective": {"terms": {"pixel": {"loss": "l3"}}}})))


def test_same_seed_same_initial_model_and_the_global_stream_is_untouched():
    """Issue 12 item 5: the network (and discriminator) are built from the run's seed."""
    recipe = _offline(get_recipe("cx-sr"))
    before = torch.random.get_rng_state()
    a, b = setup(recipe), setup(recipe)
    assert torch.equal(torch.random.get_rng_state(), before)
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(
        a.discriminator.state_dict().values(), b.discriminator.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y)
    other = setup(merge(recipe, {"training": {"seed": 1}}))
    assert any(
        not torch.equal(x, y)
        for x, y in zip(a.model.state_dict().values(), other.model.state_dict().values(), strict=True)
    )
