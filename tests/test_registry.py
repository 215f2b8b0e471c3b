"""The one Registry type (featstat.registry) and the loss and metric registries built on it."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

import featstat.losses as fl
import featstat.metrics as fm
from featstat import registry
from featstat.registry import Registry, get_registry


def test_register_get_aliases_and_mapping_view() -> None:
    reg: Registry = Registry("widget")

    @reg.register("round", "circle", "disc")
    class Round:
        flat = False

        def __init__(self, size: int = 1) -> None:
            self.size = size

    @reg.register("square")
    class Square:
        flat = True

        def __init__(self, size: int = 1) -> None:
            self.size = size

    reg.register_value("answer", 42)
    assert reg.get("disc") is Round and reg["round"] is Round and reg.get("answer") == 42
    assert list(reg) == ["round", "square", "answer"] and len(reg) == 3
    assert "circle" in reg and "triangle" not in reg and 3 not in reg
    assert dict(reg.aliases) == {"circle": "round", "disc": "round"}
    assert reg.aliases_of("circle") == ["circle", "disc"] and reg.canonical("disc") == "round"
    assert reg.names(flat=True) == ["square"] and reg.names(flat=False) == ["round"]
    with pytest.raises(KeyError):
        reg["triangle"]
    assert reg.get("triangle", None) is None


def test_unknown_name_names_the_kind_the_closest_and_the_choices() -> None:
    msg = r"unknown loss 'cx2'; did you mean 'cx'\? choose one of .*contextual"
    with pytest.raises(ValueError, match=msg):
        registry.LOSSES.get("cx2")
    with pytest.raises(ValueError, match=r"unknown metric 'lpip'; did you mean 'lpips'\?"):
        registry.METRICS.get("lpip")
    with pytest.raises(ValueError, match="must be a string"):
        registry.LOSSES.get(3)  # type: ignore[arg-type]


def test_duplicates_are_refused_unless_overwritten() -> None:
    reg: Registry = Registry("thing")
    reg.register_value("a", 1, "x")
    with pytest.raises(ValueError, match="already registered"):
        reg.register_value("a", 2)
    with pytest.raises(ValueError, match="alias 'x' is already taken"):
        reg.register_value("b", 2, "x")
    reg.register_value("a", 3, overwrite=True)
    assert reg.get("a") == 3
    assert reg.unregister("a") == 3 and "a" not in reg


def test_build_from_name_or_spec() -> None:
    loss = registry.LOSSES.build({"name": "cx", "bandwidth": 0.3})
    assert isinstance(loss, fl.ContextualLoss) and loss.bandwidth == 0.3
    assert isinstance(registry.LOSSES.build("tv", kind="isotropic"), fl.TotalVariationLoss)
    with pytest.raises(ValueError, match="must have a 'name'"):
        registry.LOSSES.build({"bandwidth": 0.3})
    with pytest.raises(ValueError, match="loss 'gram'"):  # a constructor TypeError names the entry
        registry.LOSSES.build({"name": "gram", "bandwidth": 0.3})
    metric = registry.METRICS.build({"name": "psnr", "crop_border": 2})
    assert isinstance(metric, fm.PSNR)


def test_lazy_discovery_imports_a_new_module_of_the_package(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "regpkg_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(
        textwrap.dedent(
            """
            from featstat.registry import get_registry
            REG = get_registry("loss").__class__("gadget", package="regpkg_demo")
            """
        )
    )
    # the registry object lives in a module of the package; discovery must import the sibling that registers
    (pkg / "zz_entry.py").write_text(
        "from regpkg_demo.plugin import REG\n\n@REG.register('sprocket', 'spr')\nclass Sprocket:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import regpkg_demo.plugin as plugin

        reg = plugin.REG
        assert "zz_entry" not in " ".join(sys.modules)  # nothing registered before the first lookup
        assert reg.get("spr").__name__ == "Sprocket"
        assert reg.names() == ["sprocket"]
    finally:
        for name in [m for m in sys.modules if m.startswith("regpkg_demo")]:
            del sys.modules[name]


def test_every_kind_has_one_registry() -> None:
    kinds = ("loss", "metric", "extractor", "network", "recipe", "preset", "weights")
    regs = [get_registry(k) for k in kinds]
    assert len({id(r) for r in regs}) == len(kinds)
    assert get_registry("losses") is registry.LOSSES is fl.LOSSES
    assert get_registry("metrics") is registry.METRICS is fm.METRICS
    with pytest.raises(ValueError, match="unknown registry kind"):
        get_registry("gizmo")


# ------------------------------------------------------------------------------------------ loss facts


def test_old_loss_tables_are_views_over_the_registry() -> None:
    assert fl.LOSSES["contextual"] is fl.ContextualLoss and fl.get_loss("cx") is fl.ContextualLoss
    assert fl.ALIASES["pdl"] == "projected_distribution" and fl.ALIASES["tv"] == "total_variation"
    for name in ("l1", "l2", "low_frequency_l2", "total_variation", "perceptual", "gram", "contextual",
                 "chamfer", "projected_distribution", "sliced_wasserstein", "diversity"):  # fmt: skip
        assert name in fl.LOSSES
    for alias in ("cx", "pdl", "tv", "mse", "lf_l2", "swd", "texture"):
        assert alias in fl.ALIASES


def test_loss_facts_live_on_the_classes() -> None:
    stats = set(fl.distribution_statistics())
    assert {"gram", "contextual", "chamfer", "projected_distribution", "sliced_wasserstein"} <= stats
    assert not stats & {"l1", "l2", "perceptual", "total_variation", "diversity"}
    assert set(fl.LOSSES.names(needs_target=False)) >= {"total_variation", "diversity"}
    assert "gram" in fl.LOSSES.names(needs_target=True)
    # every distribution statistic accepts maps of different spatial sizes
    torch.manual_seed(0)
    a, b = torch.rand(2, 4, 6, 5), torch.rand(1, 4, 3, 7)
    for name in stats:
        value = fl.LOSSES.build(name, reduction="none")(a, b)
        assert value.shape == (2,) and torch.isfinite(value).all(), name


def test_a_loss_registered_later_is_found_everywhere() -> None:
    @registry.LOSSES.register("registry_test_mean_gap", "rtmg")
    class MeanGap(fl.FeatureLoss):
        distribution_statistic = True

        def compare(self, pred: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:
            return (pred.mean((2, 3)) - prepared.mean((2, 3))).square().sum(1)

    try:
        assert fl.get_loss("rtmg") is MeanGap and fl.ALIASES["rtmg"] == "registry_test_mean_gap"
        assert "registry_test_mean_gap" in fl.distribution_statistics()
        # a distribution loss is also a deep metric
        assert "registry_test_mean_gap" in fm.METRICS
        assert fm.canonical_name("rtmg") == "registry_test_mean_gap"
        metric = fm.build_metric("rtmg", weights=None, net="vgg", layers=["relu1_1"], reduction="none")
        x = torch.rand(2, 3, 16, 16)
        assert metric(x, x).abs().max() < 1e-6 and metric(x, x.flip(0)).gt(0).all()
    finally:
        registry.LOSSES.unregister("registry_test_mean_gap")
    assert "rtmg" not in fm.METRICS


# ---------------------------------------------------------------------------------------- metric facts


def test_old_metric_tables_are_views_and_directions_come_from_classes() -> None:
    assert fm.METRICS["psnr"].higher_is_better is fm.PSNR.higher_is_better is True
    assert fm.get_metric("msssim").module is fm.MSSSIM and fm.ALIASES["lsd"] == "spectrum"
    for name, info in fm.METRICS.items():
        cls = fm.metric_class(info.module)
        assert issubclass(cls, fm.Metric), name
        if not name.startswith("angular_"):  # the angular statistics' direction is per instance
            assert info.higher_is_better == cls.higher_is_better, name
    assert fm.metric_class(fm.METRICS["patch_kl"].module).same_size is False
    assert fm.metric_class(fm.METRICS["lpips"].module).backbone and not fm.LPIPS.auto_weights
    assert fm.PSNR.luma_options and not fm.GramDistance.luma_options


def test_distribution_losses_are_derived_metrics() -> None:
    assert "chamfer" in fm.METRICS and fm.canonical_name("swd") == "sliced_wasserstein"
    assert fm.canonical_name("contextual") == "cx"  # a hand-written metric keeps its name
    m = fm.build_metric("swd", weights=None, layers=["relu1_2"], reduction="none", num_projections=8)
    assert isinstance(m, fm.StatisticDistance) and m.loss.num_projections == 8
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 12, 20)
    assert m(x, y).shape == (2,)
    with pytest.raises(ValueError, match="not a distribution statistic"):
        fm.StatisticDistance("l1", weights=None)
