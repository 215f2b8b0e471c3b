"""Texture and style presets as data, and the objective specs they produce.

A :class:`Preset` is a backbone spec (an ``arch`` of :data:`featstat.registry.EXTRACTORS` with its weights and
pooling), texture and content layers and default term weights. Its :meth:`Preset.texture_spec` and
:meth:`Preset.style_spec` write an objective spec in the format of :mod:`featstat.objective.config`,
which :func:`featstat.objective.config.build_objective` (the one builder) turns into an
:class:`~featstat.Objective`; :func:`texture_spec` and :func:`style_spec` do the same for a backbone the
caller built (an extractor module in the spec). Presets are registered in
:data:`featstat.registry.PRESETS` (fact ``product = "texture"``).

    spec = PRESETS["gatys"].style_spec("gram", style_weight=20.0)
    # {"backbones": {"features": {"arch": "vgg19", "weights": "vgg19-caffe", "pooling": "avg"}},
    #  "terms": {"gram": {"loss": "gram", "weight": 20.0, "backbone": "features", "layers": [...],
    #                     "target": "style"},
    #            "content": {"loss": "perceptual", "norm": "l2", "backbone": "features",
    #                        "layers": ["relu4_2"], "target": "content"}}}
    objective = build_objective(spec)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..features.random_filters import PAPER_SIZES
from ..features.weights import find_local, get_entry
from ..losses import get_loss
from ..registry import EXTRACTORS, LOSSES
from ..registry import PRESETS as PRESET_REGISTRY

__all__ = [
    "PRESETS",
    "RANDOM_FILTERS_PER_SIZE",
    "RANDOM_FILTER_LAYERS",
    "STATISTICS",
    "Preset",
    "available_presets",
    "build_extractor",
    "parse_statistic",
    "resolve_preset",
    "style_spec",
    "texture_spec",
]

#: Statistics (loss names of :data:`featstat.losses.LOSSES`) that compare feature *distributions*, so the
#: synthesised image may differ in size from the example: every registered loss whose class says
#: ``distribution_statistic = True`` (a live view; a loss registered later appears). Aliases are accepted.
STATISTICS = LOSSES.view(distribution_statistic=True)

#: the name of the backbone in the specs of this module
BACKBONE = "features"


@dataclass(frozen=True)
class Preset:
    """A backbone with the layers and default weights a synthesis uses.

    Attributes:
        name: preset name.
        backbone: "vgg19", "vgg16" or "random_filters" (an ``arch`` of :data:`featstat.registry.EXTRACTORS`).
        weights: registry name of the weights file (None: no file).
        texture_layers: layers whose statistics are matched (texture / style).
        content_layers: layers whose features are matched in style transfer.
        pooling: "avg" (Gatys) or "max".
        style_weight, content_weight: default weights of the style and content terms (they depend on the
            feature scale of the weights, so they live with the preset).
        description: one line for humans.
    """

    name: str
    backbone: str
    weights: str | None
    texture_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    pooling: str = "avg"
    style_weight: float = 1.0
    content_weight: float = 1.0
    description: str = ""
    #: the product a preset of :data:`featstat.registry.PRESETS` belongs to (a registry fact)
    product = "texture"

    def available(self) -> bool:
        """True when no file is needed or the weights file is found locally (no download is attempted)."""
        return self.weights is None or find_local(get_entry(self.weights)) is not None

    def backbone_spec(self, layers: Sequence[str] | None = None, *, seed: int = 0) -> dict[str, Any]:
        """The backbone table of a config (``arch`` and its options) computing ``layers`` (default: the
        texture and content layers); random filters get one bank per size named by the layers (``k7``),
        :data:`RANDOM_FILTERS_PER_SIZE` filters each, seeded by ``seed``."""
        names = list(layers) if layers is not None else self.layers()
        if self.backbone != "random_filters":
            return {"arch": self.backbone, "weights": self.weights, "pooling": self.pooling}
        bad = [n for n in names if n != "all" and not (n[:1] == "k" and n[1:].isdigit())]
        if bad:
            raise ValueError(
                f"layers {bad} are not random-filter layers; preset {self.name!r} has layers 'k<size>' "
                f"(e.g. {', '.join(self.texture_layers)}) and 'all'"
            )
        sizes = {int(n[1:]) for n in names if n != "all"}
        if "all" in names or not sizes:
            sizes |= set(PAPER_SIZES)
        return {
            "arch": "random_filters",
            "sizes": sorted(sizes),
            "filters": RANDOM_FILTERS_PER_SIZE,
            "seed": seed,
        }

    def layers(self) -> list[str]:
        """The texture and content layers, once each."""
        return list(dict.fromkeys(self.texture_layers + self.content_layers))

    def texture_spec(
        self,
        statistic: str | Mapping[str, float] = "gram",
        layers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The texture objective spec of this preset (:func:`texture_spec` on :meth:`backbone_spec`)."""
        names = list(layers) if layers is not None else list(self.texture_layers)
        return texture_spec(self.backbone_spec(names), names, statistic, **kwargs)

    def style_spec(
        self,
        statistic: str | Mapping[str, float] = "gram",
        style_layers: Sequence[str] | None = None,
        content_layers: Sequence[str] | None = None,
        *,
        style_weight: float | None = None,
        content_weight: float | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The style-transfer objective spec of this preset (:func:`style_spec`), with its default
        weights."""
        style = list(style_layers or self.texture_layers)
        content = list(content_layers or self.content_layers)
        return style_spec(
            self.backbone_spec(list(dict.fromkeys(style + content))),
            style,
            content,
            statistic,
            style_weight=self.style_weight if style_weight is None else style_weight,
            content_weight=self.content_weight if content_weight is None else content_weight,
            **kwargs,
        )


_GATYS_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

#: Layers (filter sizes) of the "random-filters" preset: 5 of the paper's 8 sizes (3, 5, 7, 11, 15, 23, 37,
#: 55). Measured at 128² (30 L-BFGS steps, seed 0, 1 thread; docs/synthesis.md "Cost of the random-filters
#: preset"): one objective evaluation costs 0.65× the caffe-relu3_1 preset's instead of 1.63× (same run),
#: L-BFGS evaluations per step are equal (2.3), and the results' Gram distance to the example on the real
#: VGG-19 relu1_1–relu3_1 is 9 % and 51 % lower than with all 8 sizes (red-peppers, reptil_skin), on an
#: independent random-filter bank (128 filters, all 8 sizes, another seed) 48 % and 7 % higher. The style
#: weight 1.4e6 keeps the 8-size preset's 1e6 balance (the Gram term of amber × wave is 0.70× with 5 sizes).
RANDOM_FILTER_LAYERS = ("k3", "k5", "k7", "k15", "k37")

#: Known presets, in the order ``preset="auto"`` tries them. Default style weights (content weight 1):
#: gatys 20 — neural-style's defaults (style 100, content 5) for the same un-normalised Caffe VGG-19 and the
#: same Gram/content normalisation; gatys-torchvision 1e6 — the PyTorch style-transfer tutorial's; both
#: untested here (those weights are not on our machines). caffe-relu3_1 1e5 and random-filters 1e6 were
#: chosen here by eye on amber.jpg × wave.jpg at 128 px (docs/synthesis.md); gatys-vgg16-hed 200 likewise
#: (20 left the photo nearly untouched; docs/benchmarks-deep.md).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "gatys",
            "vgg19",
            "vgg19-caffe",
            _GATYS_LAYERS,
            ("relu4_2",),
            "avg",
            20.0,
            1.0,
            "Gatys et al. / Texture Networks: Caffe VGG-19, average pooling, relu1_1…relu5_1, content "
            "relu4_2",
        ),
        Preset(
            "gatys-torchvision",
            "vgg19",
            "vgg19",
            _GATYS_LAYERS,
            ("relu4_2",),
            "avg",
            1e6,
            1.0,
            "the paper layers on torchvision's VGG-19 file",
        ),
        Preset(
            "gatys-vgg16-hed",
            "vgg16",
            "vgg16-hed",
            _GATYS_LAYERS,
            ("relu4_2",),
            "avg",
            200.0,
            1.0,
            "the paper layers (same names in VGG-16) on HED's VGG-16 — ImageNet VGG-16 fine-tuned on "
            "BSDS500 edges, not the paper's network (`featstat weights fetch vgg16-hed`)",
        ),
        Preset(
            "caffe-relu3_1",
            "vgg19",
            "vgg19-caffe-normalised-to-relu3_1",
            ("relu1_1", "relu2_1", "relu3_1"),
            ("relu3_1",),
            "avg",
            1e5,
            1.0,
            "Gatys' normalised Caffe VGG-19 truncated at relu3_1 (vgg19-caffe-normalised-to-relu3_1.pth): "
            "relu1_1, relu2_1, relu3_1, content relu3_1",
        ),
        Preset(
            "random-filters",
            "random_filters",
            None,
            RANDOM_FILTER_LAYERS,
            ("k7",),
            "avg",
            1.4e6,
            1.0,
            "no download: one layer of random filters of sizes 3, 5, 7, 15, 37, 64 each, ReLU (after "
            "Ustyuzhaninov et al. 2017, who used 3…55), one Gram matrix per size",
        ),
    )
}


#: Random filters per size of the "random-filters" preset. The paper used 128 (1024 maps); 64 halves the cost
#: per step (at 128², 30 L-BFGS steps, 1 thread: 99.8 s → 47.1 s on red-peppers, 145.5 s → 48.0 s on
#: reptil_skin) for a VGG relu1_1–relu3_1 Gram distance to the example 11 % and 43 % higher after the same
#: steps (32 filters: 60 % higher). For the paper's 128: ``extractor=RandomFilterExtractor(filters=128)``.
RANDOM_FILTERS_PER_SIZE = 64


for _preset in PRESETS.values():  # the one registry of presets (discovered through featstat.texture)
    if _preset.name not in PRESET_REGISTRY.registered_names():
        PRESET_REGISTRY.register_value(_preset.name, _preset)
del _preset


def available_presets() -> list[str]:
    """Names of the presets usable on this machine (weights found locally), in :data:`PRESETS` order."""
    return [name for name, p in PRESETS.items() if p.available()]


def resolve_preset(preset: str | Preset = "auto") -> Preset:
    """A :class:`Preset` by name; ``"auto"``: the first available one (order of :data:`PRESETS`)."""
    if isinstance(preset, Preset):
        return preset
    if preset == "auto":
        return PRESETS[available_presets()[0]]  # random-filters is always available
    if preset not in PRESETS:
        raise ValueError(f"preset must be 'auto' or one of {list(PRESETS)}, got {preset!r}")
    return PRESETS[preset]


def build_extractor(
    preset: str | Preset = "auto",
    layers: Sequence[str] | None = None,
    *,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> nn.Module:
    """The feature extractor of ``preset`` computing ``layers`` (default: its texture and content layers),
    built from its :meth:`Preset.backbone_spec` by :data:`featstat.registry.EXTRACTORS`.

    Registry weights are resolved without downloading unless ``FEATSTAT_OFFLINE`` is unset and the file has a
    URL (see :func:`featstat.features.resolve_weights`); ``seed`` seeds the random filters.
    """
    p = resolve_preset(preset)
    names = list(layers) if layers is not None else p.layers()
    spec = p.backbone_spec(names, seed=seed)
    return EXTRACTORS.get(spec.pop("arch"))(names, **spec, device=device)


# -- objective specs -----------------------------------------------------------------------------------------


def parse_statistic(statistic: str | Mapping[str, float]) -> dict[str, float]:
    """``"gram"`` → {"gram": 1.0}; a mapping of statistic names (or aliases) to weights is checked and
    returned with canonical names. Raises ``ValueError`` for unknown or pointwise losses."""
    items = {statistic: 1.0} if isinstance(statistic, str) else dict(statistic)
    if not items:
        raise ValueError(f"statistic must name at least one of {STATISTICS}, got an empty mapping")
    out: dict[str, float] = {}
    for name, weight in items.items():
        canonical = LOSSES.canonical(name)  # a ValueError with suggestions for unknown names
        if not get_loss(canonical).distribution_statistic:
            raise ValueError(
                f"statistic {name!r} is not a distribution statistic; choose from {STATISTICS} (the content "
                f"term of style transfer is separate: content_weight, content_layers)"
            )
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"statistic weight for {name!r} must be a finite number >= 0, got {weight!r}")
        out[canonical] = float(weight)
    return out


def statistic_terms(
    statistic: str | Mapping[str, float],
    layers: Sequence[str],
    *,
    weight: float = 1.0,
    layer_weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    target: str = "style",
    guides: tuple[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Term tables (name → table) of a statistic or a weighted mix on ``layers`` of the backbone
    :data:`BACKBONE`: one term per statistic, weight ``weight`` × its mix weight, compared with ``target``,
    guided by ``guides`` = (prediction guide, target guide) names when given."""
    stats = parse_statistic(statistic)
    opts = {LOSSES.canonical(k): dict(v) for k, v in (options or {}).items()}
    unused = sorted(set(opts) - set(stats))
    if unused:
        raise ValueError(
            f"options given for statistics {unused} that are not used; statistics: {list(stats)}"
        )
    pred_guide, target_guide = guides if guides is not None else (None, None)
    tables = {
        name: {
            "loss": name,
            "weight": weight * w,
            "backbone": BACKBONE,
            "layers": list(layers),
            "layer_weights": None if layer_weights is None else dict(layer_weights),
            "target": target,
            "pred_guide": pred_guide,
            "target_guide": target_guide,
            **opts.get(name, {}),
        }
        for name, w in stats.items()
    }
    return {name: {k: v for k, v in t.items() if v is not None} for name, t in tables.items()}  # plain data


def texture_spec(
    backbone: Mapping[str, Any] | nn.Module,
    layers: Sequence[str],
    statistic: str | Mapping[str, float] = "gram",
    *,
    layer_weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    target: str = "style",
    guides: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Objective spec Σ_l w_l · D(Φ_l(x), Φ_l(example)) (Gatys et al. 2015; thesis eq. 2.1, 2.5) on
    ``backbone`` (a backbone table or a built extractor), for
    :func:`~featstat.objective.config.build_objective`. Arguments as
    :func:`featstat.texture.synthesis.texture_objective` (``layer_weights`` a mapping)."""
    terms = statistic_terms(
        statistic, layers, layer_weights=layer_weights, options=options, target=target, guides=guides
    )
    return {"backbones": {BACKBONE: backbone}, "terms": terms}


def style_spec(
    backbone: Mapping[str, Any] | nn.Module,
    style_layers: Sequence[str],
    content_layers: Sequence[str],
    statistic: str | Mapping[str, float] = "gram",
    *,
    style_weight: float = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    layer_weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    guides: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Style-transfer objective spec (Gatys et al. 2016; thesis eq. 2.5 + α·eq. 2.6): the statistic terms on
    ``style_layers`` against "style" (× ``style_weight``), ``content`` (perceptual l2 on ``content_layers``
    against "content") and, when ``tv_weight`` > 0, ``tv`` (total variation, no target)."""
    terms = statistic_terms(
        statistic, style_layers, weight=style_weight, layer_weights=layer_weights, options=options,
        target="style", guides=guides,
    )  # fmt: skip
    if "content" in terms:
        raise ValueError("a statistic may not be called 'content'")
    terms["content"] = {
        "loss": "perceptual", "norm": "l2", "weight": content_weight, "backbone": BACKBONE,
        "layers": list(content_layers), "target": "content",
    }  # fmt: skip
    if tv_weight > 0:
        terms["tv"] = {"loss": "total_variation", "weight": tv_weight, "target": "none"}
    return {"backbones": {BACKBONE: backbone}, "terms": terms}
