"""The library's conventions (design.md, Conventions; issue 10), checked over every public function rather
than one by one: (pred, target) names, keyword-only ``reduction``, ``seed`` (never ``generator=``), logging
instead of print, no ``matplotlib.use`` — and the deprecated 0.1 spellings still working."""

from __future__ import annotations

import ast
import inspect
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from featstat import metrics
from featstat._checks import legacy_arguments
from featstat.features.sampling import sample_positions
from featstat.losses import functional as LF
from featstat.losses.projected import make_projections
from featstat.nets.texture import TextureNetV1, generate

SRC = Path(__file__).resolve().parents[1] / "src" / "featstat"

#: functions of losses.functional that are not losses (helpers on one tensor or building blocks)
NOT_LOSSES = {
    "gaussian_blur", "gram_matrix", "make_projections", "wasserstein_1d", "prepare_contextual_target",
}  # fmt: skip
#: losses on the prediction alone: (pred, ...) with no target
PRED_ONLY = {"diversity_loss", "nearest_neighbour_distance", "total_variation", "generator_adversarial_loss"}
#: the one loss whose two inputs are both predictions (of a discriminator on real and generated images)
TWO_PREDICTIONS = {"discriminator_loss"}


def _public_functions(module: object) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", dir(module))
    return [(n, getattr(module, n)) for n in names if inspect.isfunction(getattr(module, n, None))]


LOSS_FUNCTIONS = [(n, f) for n, f in _public_functions(LF) if n not in NOT_LOSSES]
METRIC_FUNCTIONS = [
    (n, f) for n, f in _public_functions(metrics)
    if list(inspect.signature(f).parameters)[:2] == ["pred", "target"]
]  # fmt: skip


@pytest.mark.parametrize(("name", "fn"), LOSS_FUNCTIONS, ids=[n for n, _ in LOSS_FUNCTIONS])
def test_loss_functions_take_pred_target_and_keyword_reduction(name, fn):
    params = inspect.signature(fn).parameters
    first = list(params)[:2]
    if name in PRED_ONLY:
        assert first[0] == "pred"
    elif name in TWO_PREDICTIONS:
        assert first == ["real_logits", "fake_logits"]
    else:
        assert first == ["pred", "target"], first
    if "reduction" in params:
        assert params["reduction"].kind is inspect.Parameter.KEYWORD_ONLY


def test_every_metric_function_has_keyword_only_reduction():
    assert len(METRIC_FUNCTIONS) >= 6
    for name, fn in METRIC_FUNCTIONS:
        params = inspect.signature(fn).parameters
        if "reduction" in params:
            assert params["reduction"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_every_registered_module_takes_reduction_by_keyword_only():
    from featstat.registry import LOSSES, METRICS

    for registry in (LOSSES, METRICS):
        for name in registry.names():
            cls = registry.get(name)
            if not inspect.isclass(cls):
                continue
            params = inspect.signature(cls.__init__).parameters
            if "reduction" in params:
                assert params["reduction"].kind is inspect.Parameter.KEYWORD_ONLY, (registry.kind, name)


def _library_files() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts and p.name != "__main__.py"]


def _random_generator_keywords(source: str) -> list[str]:
    """Public functions and methods (``__init__``/``__call__`` included) of ``source`` with a parameter
    ``generator`` that is not annotated as a network (``nn.Module``: a GAN's or texture net's generator is a
    model, not a random stream)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        dunder = node.name.startswith("__") and node.name.endswith("__")
        if dunder or not node.name.startswith("_"):
            for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                network = a.annotation is not None and "Module" in ast.unparse(a.annotation)
                if a.arg == "generator" and not network:
                    found.append(f"{node.lineno} {node.name}")
    return found


def test_the_generator_keyword_check_tells_random_streams_from_networks():
    source = textwrap.dedent(
        """
        def noise(x, generator: torch.Generator | None = None): ...
        def draw(x, *, generator=None): ...
        def translate(generator: nn.Module, images): ...
        def train(generator: nn.Module | str, example): ...
        def _private(generator: torch.Generator): ...
        def __call__(self, x, generator=None): ...
        def sample(x, seed: int | torch.Generator = 0): ...
        """
    )
    assert _random_generator_keywords(source) == ["2 noise", "3 draw", "7 __call__"]


def test_no_generator_keyword_in_public_signatures():
    """Randomness is ``seed: int | torch.Generator``; ``generator`` survives only as a deprecated alias
    (``legacy_arguments``), or as the name of a generator network."""
    offenders = [
        f"{path.relative_to(SRC)}:{where}"
        for path in _library_files()
        for where in _random_generator_keywords(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_no_print_and_no_matplotlib_use_in_library_code():
    """Library code logs through logging.getLogger("featstat"); plots use Figure + FigureCanvasAgg."""
    found = []
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "print":
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} print()")
                module = getattr(f, "value", None)
                is_mpl = getattr(module, "id", "") == "matplotlib"
                if isinstance(f, ast.Attribute) and f.attr == "use" and is_mpl:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} matplotlib.use()")
    assert not found, found


# ------------------------------------------------------------------------------ seed: int or Generator


def test_int_seed_and_generator_give_the_same_draws():
    def gen(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    assert torch.equal(sample_positions(9, 9, 20, 5), sample_positions(9, 9, 20, gen(5)))
    torch.testing.assert_close(
        make_projections(6, "sphere", 4, seed=3), make_projections(6, "sphere", 4, gen(3))
    )
    net = TextureNetV1(scales=2, channels=2, seed=0)
    a = generate(net, 2, 8, seed=7)
    b = generate(net, 2, 8, seed=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, generate(net, 2, 8, seed=8))


def test_old_generator_keyword_warns_and_works():
    with pytest.warns(DeprecationWarning, match="'generator' is now 'seed'"):
        old = sample_positions(9, 9, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(old, sample_positions(9, 9, 20, 1))
    with pytest.warns(DeprecationWarning, match="'generator' is now 'seed'"):
        old = make_projections(6, "sphere", 4, generator=2)
    torch.testing.assert_close(old, make_projections(6, "sphere", 4, seed=2))
    net = TextureNetV1(scales=2, channels=2, seed=0)
    with pytest.warns(DeprecationWarning, match="'generator' is now 'seed'"):
        old = generate(net, 1, 8, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(old, generate(net, 1, 8, seed=4))


def test_pdl_module_takes_a_generator_seed():
    from featstat.losses import ProjectedDistributionLoss

    a = ProjectedDistributionLoss("sphere", 5, torch.Generator().manual_seed(0), channels=4)
    b = ProjectedDistributionLoss("sphere", 5, torch.Generator().manual_seed(0), channels=4)
    assert isinstance(a.seed, int) and a.seed == b.seed
    torch.testing.assert_close(a.projection_matrix(4), b.projection_matrix(4))


# ------------------------------------------------------------------------------ the 0.1 spellings


def test_legacy_arguments_maps_old_spellings_and_warns():
    @legacy_arguments(renamed={"x": "pred"}, positional=("reduction", "scale"))
    def f(pred, target=None, *, reduction="mean", scale=1.0):
        return pred, target, reduction, scale

    assert inspect.signature(f).parameters["reduction"].kind is inspect.Parameter.KEYWORD_ONLY
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(1, 2, reduction="sum") == (1, 2, "sum", 1.0)  # the new spelling never warns
    with pytest.warns(DeprecationWarning, match="pass reduction, scale by keyword"):
        assert f(1, 2, "none", 3.0) == (1, 2, "none", 3.0)
    with pytest.warns(DeprecationWarning, match="'x' is now 'pred'"):
        assert f(x=1) == (1, None, "mean", 1.0)
    with pytest.raises(TypeError, match="positional arguments"):
        f(1, 2, "none", 3.0, 4)
    with pytest.raises(TypeError, match="multiple values"):
        f(1, 2, "none", reduction="sum")
    with pytest.raises(TypeError, match="both 'x'"):
        f(x=1, pred=1)


@pytest.mark.parametrize(
    ("call", "new"),
    [
        (lambda p, t: LF.gram_loss(p, t, "none"), lambda p, t: LF.gram_loss(p, t, reduction="none")),
        (lambda p, t: LF.gram_loss(x=p, y=t), lambda p, t: LF.gram_loss(p, t)),
        (lambda p, t: LF.l1_loss(p, t, "sum"), lambda p, t: LF.l1_loss(p, t, reduction="sum")),
        (lambda p, t: LF.perceptual_loss(pred_feats=p, target_feats=t),
         lambda p, t: LF.perceptual_loss(p, t)),
        (lambda p, t: LF.projected_distribution_loss(x=p, y=t),
         lambda p, t: LF.projected_distribution_loss(p, t)),
        (lambda p, t: LF.total_variation(x=p), lambda p, t: LF.total_variation(p)),
        (lambda p, t: LF.diversity_loss(p, 1e-8, "none"),
         lambda p, t: LF.diversity_loss(p, reduction="none")),
        (lambda p, t: LF.generator_adversarial_loss(fake_logits=p),
         lambda p, t: LF.generator_adversarial_loss(p)),
    ],
)  # fmt: skip
def test_old_loss_spellings_give_the_same_values(call, new):
    p, t = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 6, 6)
    with pytest.warns(DeprecationWarning):
        old = call(p, t)
    torch.testing.assert_close(old, new(p, t))


def test_old_positional_reduction_of_modules_still_works():
    from featstat.losses import DiversityLoss, L1Loss

    p, t = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    with pytest.warns(DeprecationWarning):
        assert L1Loss("none")(p, t).shape == (2,)
    with pytest.warns(DeprecationWarning):
        assert DiversityLoss(1e-8, "sum").reduction == "sum"
    with pytest.warns(DeprecationWarning):
        assert metrics.PSNR.__mro__[1]("none").reduction == "none"  # Metric base
