"""Objective: one feature pass per extractor per image, cached targets, per-term values, configs."""

from __future__ import annotations

import pytest
import torch

from featstat import features
from featstat.losses import (
    ContextualLoss,
    DiversityLoss,
    GramLoss,
    GuidedGramLoss,
    L1Loss,
    PerceptualLoss,
    ProjectedDistributionLoss,
)
from featstat.losses.functional import contextual_loss, gram_loss, l1_loss, projected_distribution_loss
from featstat.objective import Objective, Term


class Counting(torch.nn.Module):
    """Wraps an extractor and counts its forward passes."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.layers, self.calls = inner, inner.layers, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.fixture
def vgg():
    return Counting(features.vgg19(["relu1_1", "relu2_1", "conv3_1"], weights=None, seed=1))


def _objective(vgg):
    return Objective(
        [
            Term("cx", ContextualLoss(0.2), 0.5, vgg, ["conv3_1"]),
            Term("gram", GramLoss(), 100.0, vgg, ["relu1_1", "relu2_1"], layer_weights={"relu1_1": 2.0}),
            Term("pdl", ProjectedDistributionLoss(), 0.1, vgg, ["relu2_1"]),
            Term("l1", L1Loss(), 1.0),
        ]
    )


def test_values_equal_separate_losses(vgg):
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 40, 40)
    l1_target = torch.rand(2, 3, 32, 32)
    objective = Objective([t for t in _objective(vgg).terms if t.name != "l1"])
    out = objective(pred, target)
    fp, ft = vgg.inner(pred), vgg.inner(target)
    expected = {
        "cx": contextual_loss(fp["conv3_1"], ft["conv3_1"], 0.2),
        "gram": 2.0 * gram_loss(fp["relu1_1"], ft["relu1_1"]) + gram_loss(fp["relu2_1"], ft["relu2_1"]),
        "pdl": projected_distribution_loss(fp["relu2_1"], ft["relu2_1"]),
    }
    for name, value in expected.items():
        torch.testing.assert_close(out.terms[name], value)
    torch.testing.assert_close(
        out.total, 0.5 * expected["cx"] + 100 * expected["gram"] + 0.1 * expected["pdl"]
    )
    assert l1_loss(pred, l1_target) > 0  # pixel loss reachable from the same module set


def test_one_pass_per_image_and_cached_target(vgg):
    objective = Objective([t for t in _objective(vgg).terms if t.name != "l1"])
    pred, target = torch.rand(1, 3, 32, 32, requires_grad=True), torch.rand(1, 3, 32, 32)
    objective(pred, target)
    assert vgg.calls == 2  # one pass for pred, one for target, shared by the three terms
    out = objective(pred, target)
    assert vgg.calls == 3  # the unchanged target is not recomputed
    out.total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    target.mul_(0.5)  # in-place change: the cache must notice
    objective(pred, target)
    assert vgg.calls == 5
    torch.testing.assert_close(
        objective(pred, target).total,
        Objective(_objective(Counting(vgg.inner)).terms[:3])(pred, target).total,
    )


def test_prepared_target_statistic_computed_once(vgg, monkeypatch):
    gram = GramLoss()
    calls = []
    original = gram.prepare_target
    monkeypatch.setattr(gram, "prepare_target", lambda t: calls.append(1) or original(t))
    objective = Objective([Term("gram", gram, 1.0, vgg, ["relu1_1"])])
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    for _ in range(3):
        objective(pred, target)
    assert len(calls) == 1
    objective(pred, torch.rand(1, 3, 32, 32))
    assert len(calls) == 2


def _fresh(vgg, pred, target, **kw):
    """The value of a new Objective (nothing cached) with the same single term."""
    return Objective([Term("p", PerceptualLoss(), 1.0, vgg, ["relu2_1"])])(pred, target, **kw).total


def test_a_new_target_where_a_freed_one_was_is_not_taken_for_it(vgg):
    """The target cache knows a tensor by the object itself, not by id and data address: a target freed and
    a new one of the same shape and other content (CPU allocators hand the freed address out again) gets its
    own features, and so does a target whose storage was swapped (``t.data = ...``, which bumps no version
    counter) even when the new storage lands at the old address."""
    pred = torch.rand(1, 3, 16, 16)
    objective = Objective([Term("p", PerceptualLoss(), 1.0, vgg, ["relu2_1"])])
    for i in range(20):
        target = torch.full((1, 3, 16, 16), (i % 7 + 1) / 8)
        torch.testing.assert_close(objective(pred, target).total, _fresh(vgg, pred, target))
        del target
    reused = 0
    for i in range(20):
        target = torch.full((1, 3, 16, 16), 0.1)
        objective(pred, target)
        address = target.data_ptr()
        target.data = torch.full((1, 3, 16, 16), 0.5)  # the old storage is free now
        target.data = torch.full((1, 3, 16, 16), (i % 5 + 5) / 10)
        reused += target.data_ptr() == address
        torch.testing.assert_close(objective(pred, target).total, _fresh(vgg, pred, target))
    assert reused == 0  # the cache holds the storage it saw: its address cannot be handed out again


def test_a_new_target_guide_where_a_freed_one_was_is_not_taken_for_it(vgg):
    """The statistic prepared with a target guide is cached with the guide itself (not its id and address):
    guides built anew each call, with other content, are never taken for the previous one; a boolean guide
    passed again unchanged keeps its prepared statistic (one float copy per guide object)."""
    pred, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)

    def objective():
        return Objective([Term("g", GramLoss(), 1.0, vgg, ["relu1_1"], pred_guide="a", target_guide="b")])

    cached, ga = objective(), torch.ones(1, 1, 16, 16)
    for i in range(20):
        gb = torch.zeros(1, 1, 16, 16)
        gb[..., : i % 15 + 1] = 1.0
        guides = {"a": ga, "b": gb}
        fresh = objective()(pred, target, guides=guides).total  # ~1e-5: compare relative only
        torch.testing.assert_close(cached(pred, target, guides=guides).total, fresh, rtol=1e-5, atol=0)
        del gb, guides
    for i in range(20):
        gb = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
        gb[..., : i % 15 + 1] = True
        guides = {"a": ga, "b": gb}
        fresh = objective()(pred, target, guides=guides).total  # ~1e-5: compare relative only
        torch.testing.assert_close(cached(pred, target, guides=guides).total, fresh, rtol=1e-5, atol=0)
    gram = cached.terms[0].loss
    calls = []
    original = gram.prepare_target
    gram.prepare_target = lambda t, mask=None: calls.append(1) or original(t, mask)
    gb = torch.rand(1, 1, 16, 16) > 0.5
    for _ in range(3):
        cached(pred, target, guides={"a": ga, "b": gb})
    assert calls == [1]  # the same boolean guide: converted once, statistic prepared once


def test_target_with_grad_is_not_cached_and_gets_gradient(vgg):
    objective = Objective([Term("p", PerceptualLoss(), 1.0, vgg, ["relu2_1"])])
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32, requires_grad=True)
    objective(pred, target).total.backward()
    objective(pred, target)
    assert vgg.calls == 4 and target.grad is not None and target.grad.abs().sum() > 0


def test_named_targets_and_targetless_terms(vgg):
    objective = Objective(
        [
            Term("content", PerceptualLoss("l2"), 1.0, vgg, ["conv3_1"], target="content"),
            Term("style", GramLoss(), 1e3, vgg, ["relu1_1", "relu2_1"], target="style"),
            Term("div", DiversityLoss(), -0.1, target=None),
        ]
    )
    pred = torch.rand(2, 3, 32, 32)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 48, 48)
    out = objective(pred, {"content": content, "style": style})
    assert set(out.terms) == {"content", "style", "div"} and vgg.calls == 3
    with pytest.raises(ValueError, match="style"):
        objective(pred, {"content": content})


def test_config_dict_builds_shared_backbone_with_layer_union(tmp_path):
    config = {
        "backbones": {"vgg": {"arch": "vgg19", "weights": "random", "seed": 1}, "p": {"arch": "patches"}},
        "terms": {
            "cx": {"loss": "cx", "weight": 0.1, "backbone": "vgg", "layers": ["conv3_1"], "bandwidth": 0.2},
            "gram": {"loss": "gram", "backbone": "vgg", "layers": ["relu1_1", "relu2_1"]},
            "patch": {"loss": "contextual", "backbone": "p", "bandwidth": 0.5},
            "lf": {"loss": "low_frequency_l2", "weight": 10.0},
            "tv": {"loss": "tv", "weight": 1e-3},
        },
    }
    objective = Objective.from_config(config)
    assert len(objective.extractors) == 2
    assert objective.extractors[0].layers == ["conv3_1", "relu1_1", "relu2_1"]
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    out = objective(pred, target)
    assert objective.last_passes == 4  # vgg and patches, each once on pred and once on the target
    assert set(out.terms) == {"cx", "gram", "patch", "lf", "tv"}
    assert out.terms["cx"].item() == pytest.approx(
        objective.terms[0].loss(*(objective.extractors[0](x)["conv3_1"] for x in (pred, target))).item(),
        rel=1e-5,
    )

    toml = tmp_path / "objective.toml"
    toml.write_text(
        '[backbones.vgg]\narch = "vgg19"\nweights = "random"\n\n'
        '[terms.gram]\nloss = "gram"\nbackbone = "vgg"\nlayers = ["relu1_1"]\n\n'
        '[terms.l1]\nloss = "l1"\nweight = 2.0\n'
    )
    out = Objective.from_config(toml)(pred, target)
    torch.testing.assert_close(out.terms["l1"], l1_loss(pred, target))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"terms": {}}, "no terms"),
        ({"terms": {"a": {"loss": "nope"}}}, "unknown loss"),
        ({"terms": {"a": {"loss": "gram", "backbone": "vgg"}}}, "not defined"),
        ({"terms": {"a": {"loss": "gram", "bandwidth": 1}}}, "bad options"),
        (
            {
                "backbones": {"v": {"arch": "resnet"}},
                "terms": {"a": {"loss": "gram", "backbone": "v", "layers": ["x"]}},
            },
            "arch",
        ),
        ({"terms": {"a": {"loss": "l1"}}, "extra": 1}, "unknown sections"),
    ],
)
def test_bad_configs(config, match):
    with pytest.raises(ValueError, match=match):
        Objective.from_config(config)


def test_bad_terms(vgg):
    with pytest.raises(ValueError, match="not computed"):
        Term("x", GramLoss(), 1.0, vgg, ["relu5_1"])
    with pytest.raises(ValueError, match="needs layers"):
        Term("x", GramLoss(), 1.0, vgg)
    with pytest.raises(ValueError, match="unique"):
        Objective([Term("a", L1Loss()), Term("a", L1Loss())])
    with pytest.raises(ValueError, match="target is required"):
        Objective([Term("a", L1Loss())])(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="does not exist"):
        Objective.from_config("/nonexistent/objective.toml")


def test_equivalent_extractors_share_one_pass():
    """Separately built extractors with the same weights are merged: one pass serves both terms."""
    a = features.vgg19(["conv3_1"], weights=None, seed=1)
    b = features.vgg19(["relu1_1"], weights=None, seed=1)
    other = features.vgg19(["relu1_1"], weights=None, seed=2)  # different weights: its own pass
    objective = Objective(
        [
            Term("cx", ContextualLoss(0.2), 1.0, a, ["conv3_1"]),
            Term("gram", GramLoss(), 1.0, b, ["relu1_1"]),
            Term("gram2", GramLoss(), 1.0, other, ["relu1_1"]),
        ]
    )
    assert len(objective.extractors) == 2
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    out = objective(pred, target)
    assert objective.last_passes == 4
    torch.testing.assert_close(out.terms["gram"], gram_loss(b(pred)["relu1_1"], b(target)["relu1_1"]))
    torch.testing.assert_close(
        out.terms["cx"], contextual_loss(a(pred)["conv3_1"], a(target)["conv3_1"], 0.2)
    )


# -- guides (spatial masks) ----------------------------------------------------------------------------------


def _halves(n: int, h: int, w: int, *, vertical: bool) -> torch.Tensor:
    """n×2×h×w guides: a soft left/right (or top/bottom) split and its complement."""
    ramp = torch.linspace(0, 1, w if vertical else h)
    m = (ramp.view(1, 1, 1, w) if vertical else ramp.view(1, 1, h, 1)).expand(n, 1, h, w)
    return torch.cat([m, 1 - m], 1).contiguous()


GUIDED_LAYERS = ["relu1_1", "relu2_1"]


def _guided_direct(vgg, pred, style, m_pred, m_style):
    fp, fs = vgg.inner(pred), vgg.inner(style)
    loss = GuidedGramLoss(m_pred, m_style)
    return sum(loss(fp[layer], fs[layer]) for layer in GUIDED_LAYERS)


def test_guided_gram_through_objective_equals_guided_gram_loss(vgg):
    """TSRN eq. 4 through an Objective (guides named on the Term, given at call time) = GuidedGramLoss."""
    pred, style = torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(1, 3, 40, 48)
    m_pred, m_style = _halves(1, 32, 32, vertical=False), _halves(1, 40, 48, vertical=True)
    objective = Objective(
        [Term("g", GramLoss(), 1.0, vgg, GUIDED_LAYERS, target="style", pred_guide="out", target_guide="ex")]
    )
    out = objective(pred, {"style": style}, guides={"out": m_pred, "ex": m_style})
    expected = _guided_direct(vgg, pred, style, m_pred, m_style)
    torch.testing.assert_close(out.terms["g"], expected)
    # the same loss with its masks bound, and with the guides fixed on the Term, agree too
    bound = Objective([Term("g", GuidedGramLoss(m_pred, m_style), 1.0, vgg, GUIDED_LAYERS, target="style")])
    torch.testing.assert_close(bound(pred, {"style": style}).terms["g"], expected)
    fixed = Objective(
        [
            Term(
                "g",
                GramLoss(),
                1.0,
                vgg,
                GUIDED_LAYERS,
                target="style",
                pred_guide=m_pred,
                target_guide=m_style,
            )
        ]
    )
    torch.testing.assert_close(fixed(pred, {"style": style}).terms["g"], expected)
    # the guide changes the value (an all-ones guide would equal the unguided loss)
    plain = Objective([Term("g", GramLoss(), 1.0, vgg, GUIDED_LAYERS, target="style")])
    assert not torch.allclose(plain(pred, {"style": style}).total, out.total)
    ones = torch.ones(1, 1, 5, 5)
    torch.testing.assert_close(
        objective(pred, {"style": style}, guides={"out": ones, "ex": ones}).total,
        plain(pred, {"style": style}).total,
    )
    out.total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_target_guide_is_cached_with_the_target(vgg, monkeypatch):
    gram = GramLoss()
    calls = []
    original = gram.prepare_target
    monkeypatch.setattr(gram, "prepare_target", lambda t, mask=None: calls.append(1) or original(t, mask))
    objective = Objective([Term("g", gram, 1.0, vgg, ["relu1_1"], pred_guide="a", target_guide="b")])
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    ga, gb = _halves(1, 16, 16, vertical=True), _halves(1, 16, 16, vertical=False)
    first = objective(pred, target, guides={"a": ga, "b": gb}).total
    for _ in range(2):
        torch.testing.assert_close(objective(pred, target, guides={"a": ga, "b": gb}).total, first)
    assert len(calls) == 1 and vgg.calls == 4  # target features and guided statistic computed once
    gb2 = gb.flip(1)  # another target guide: the statistic is prepared again, the features stay cached
    swapped = objective(pred, target, guides={"a": ga, "b": gb2}).total
    assert len(calls) == 2 and vgg.calls == 5
    fp, ft = vgg.inner(pred), vgg.inner(target)
    torch.testing.assert_close(swapped, GuidedGramLoss(ga, gb2)(fp["relu1_1"], ft["relu1_1"]))
    gb.mul_(0.5)  # an in-place change of the guide is noticed too
    objective(pred, target, guides={"a": ga, "b": gb})
    assert len(calls) == 3


def test_guided_gram_from_a_toml_spec(tmp_path, vgg):
    toml = tmp_path / "guided.toml"
    toml.write_text(
        '[backbones.vgg]\narch = "vgg19"\nweights = "random"\nseed = 1\n\n'
        '[terms.style]\nloss = "gram"\nbackbone = "vgg"\nlayers = ["relu1_1", "relu2_1"]\ntarget = "style"\n'
        'pred_guide = "content"\ntarget_guide = "style"\n'
    )
    objective = Objective.from_config(toml)
    assert (objective.terms[0].pred_guide, objective.terms[0].target_guide) == ("content", "style")
    pred, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 48, 32)
    m_pred, m_style = _halves(1, 64, 64, vertical=True), _halves(1, 48, 32, vertical=False)
    out = objective(pred, {"style": style}, guides={"content": m_pred, "style": m_style})
    torch.testing.assert_close(out.total, _guided_direct(vgg, pred, style, m_pred, m_style))


def test_bad_guides(vgg):
    with pytest.raises(ValueError, match="takes no guide"):
        Term("x", L1Loss(), pred_guide="a")
    with pytest.raises(ValueError, match="takes no guide"):
        Term("x", PerceptualLoss(), 1.0, vgg, ["relu1_1"], target_guide="a")
    with pytest.raises(ValueError, match="no target"):
        Term("x", GramLoss(), 1.0, vgg, ["relu1_1"], target=None, target_guide="a")
    with pytest.raises(ValueError, match="pred_guide must be"):
        Term("x", GramLoss(), 1.0, vgg, ["relu1_1"], pred_guide=3)
    with pytest.raises(ValueError, match=r"terms\.g: .*takes no guide"):
        Objective.from_config({"terms": {"g": {"loss": "l1", "pred_guide": "a", "target_guide": "b"}}})
    with pytest.raises(ValueError, match="pred_guide must be"):
        Objective.from_config({"terms": {"g": {"loss": "gram", "pred_guide": 1}}})
    objective = Objective([Term("g", GramLoss(), 1.0, vgg, ["relu1_1"], pred_guide="a", target_guide="b")])
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    g = _halves(1, 8, 8, vertical=True)
    with pytest.raises(ValueError, match=r"guides is missing \['b'\]"):
        objective(pred, target, guides={"a": g})
    with pytest.raises(ValueError, match="not used"):
        objective(pred, target, guides={"a": g, "b": g, "c": g})
    with pytest.raises(ValueError, match="batch 3"):
        objective(pred, target, guides={"a": g.expand(3, -1, -1, -1), "b": g})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        objective(pred, target, guides={"a": g * 3, "b": g}, validate=True)
    with pytest.raises(ValueError, match="regions"):
        objective(pred, target, guides={"a": g, "b": g[:, :1]})
    with pytest.raises(ValueError, match="4 dimensions"):
        objective(pred, target, guides={"a": g[0], "b": g})
