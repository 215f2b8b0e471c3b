"""Named training recipes of the papers, as plain data, overridable from a TOML file.

A recipe is a nested dict (the layout of a TOML file)::

    name, description, paper, task (default task), tasks (allowed tasks)
    [degradation]     options of the task's degradation (featstat.restoration.degrade.TASKS), e.g. sigma = 75
    [network]         name = "srresnet" | "edsr" | "tsrn" | "srn" | "crn" | "auto"; [network.options]
    [objective]       an Objective config: [objective.backbones.NAME], [objective.terms.NAME]
    [pretrain]        fraction = 0.0625 (of the steps); [pretrain.objective] (the warm-up objective)
    [adversarial]     enabled, weight, kind, lr, start_step, [adversarial.discriminator] options
    [training]        fields of TrainOptions (steps, batch_size, lr, lr_milestones, grad_clip, ...)
    [data]            crop_size, samples_per_epoch, augment, val_count, val_max_size

:func:`get_recipe` deep-merges overrides (a dict or a TOML file with the same layout) into a copy of a
preset: tables merge key by key, other values replace. A term table with ``enabled = false`` removes the
term; the string ``"none"`` stands for Python's None in term options (TOML has no null); ``layer_weights``
of layers a term no longer lists (after overriding its ``layers``) are dropped.
:func:`setup` turns a recipe into a network, objectives, discriminator and :class:`TrainOptions`;
:func:`train` runs it end to end on a folder of images.

Presets (paper settings; where a paper does not say, our choice is marked "ours"):

- ``pixel`` / ``pixel-l2``: L1 / L2 baselines.
- ``perceptual``: Johnson et al. 2016: squared-L2 feature reconstruction loss at VGG-16 relu2_2 (their SR
  setting; their small TV regulariser is left out).
- ``cx-sr``: Mechrez et al. 2018, eq. 11: 0.1·CX(VGG-19 conv3_4, h = 0.1) + 10·LF-L2 (21×21 Gaussian,
  σ = 3) + 1e-3·GAN (non-saturating, SRGAN discriminator), SRResNet, after an L2 warm-up of 100 of 1600
  epochs (fraction 1/16); Adam default parameters, lr 1e-4 (SRGAN's), 96×96 HR crops, batch 16.
- ``tsrn``: Gondal et al. 2018: Gram loss on VGG-19 conv2_2, conv3_4, conv4_4, conv5_2 (eq. 1: per layer
  Σ(G − A)²/(4N²M²) with unnormalised Gram matrices, which is featstat's normalised Gram loss times C²/4 —
  the layer weights below), TSRN network, MSE pre-training for 10 of 110 epochs, Adam lr 5e-4, 256×256 HR
  crops (COCO centre crops in the paper).
- ``pdl-<task>`` (denoise, sr, deblur, jpeg, demosaic): Delbracio et al. 2021, eq. 5: L1 + λ·PDL on VGG-16
  "conv4" features with identity projections. We read "conv4" as conv4_3 (the block's last convolution, the
  metric module's default too; TF-slim's ``conv4/conv4_3`` end point is after the ReLU — use ``relu4_3``
  to follow that reading). λ = 0.01 (the best LPIPS of the paper's denoising sweep, Table II; the λ of the
  other tables did not survive in our copy of the paper: 0.01 is inside its 0.001–0.02 range). Networks:
  EDSR for SR, the SRN-like encoder-decoder for the others (the paper uses DsDeblur for deblurring).
  Degradations: denoise σ = 75 unclipped (inferred: the paper's noisy input scores 10.49 dB, σ = 75 gives
  10.6 dB on Kodak), JPEG quality 20 (inferred from its input PSNR, 29.54 dB ↔ q ≈ 20 on Kodak), deblurring
  with 21-px camera-shake kernels and σ ≤ 2.55 (27.1 dB input PSNR on Kodak vs the paper's 27.07 dB) and
  demosaicking of an RGGB mosaic with noise σ ≤ 5 (ours, for "mild noise").
- ``single-image-sr``: CX paper supplementary: SRResNet trained on random 384×384 crops of one image, ×4
  (96×96 inputs), CX on 5×5 RGB patches with stride 2 (h = 0.1), 10K iterations; one crop per step.
- ``normals`` / ``normals-no-l1``: CX paper eq. 12: λ_CX = 1 for CX on 5×5 normal-map patches (stride 2)
  and on VGG-19 conv1_2 and conv2_2 of the normal map, each sampled to 65×65 positions as the paper does
  (``sample_size = "none"`` uses every position), + 0.1·LF-L2 + 1·L1 (or 0), CRN network.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..nets.discriminator import SRGANDiscriminator
from ..nets.restoration import build_network
from ..objective.core import Objective
from ..registry import RECIPES as _RECIPES
from ..registry import Registry
from .data import RestorationDataset, ValidationSet, list_sources, pair_normals, split_validation
from .degrade import TASKS, Degradation, make_degradation
from .trainer import AdversarialOptions, Trainer, TrainOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "RECIPES",
    "RecipeSetup",
    "build_objective",
    "default_network",
    "get_recipe",
    "load_overrides",
    "merge",
    "recipe_names",
    "setup",
    "train",
    "validate_recipe",
]

_SR_TASKS = ["sr4", "sr2", "sr8"]
_ALL_TASKS = ["sr4", "sr2", "sr8", "denoise", "deblur", "jpeg", "demosaic", "normals"]


def _vgg(arch: str = "vgg19") -> dict[str, Any]:
    # the paper's torchvision file when present, else the best trained features here (never downloads;
    # see featstat.features.sources); `--set objective.backbones.vgg.weights=vgg19` insists on the paper's
    return {"arch": arch, "weights": "auto", "paper_weights": arch}


#: raw 5×5 patches with stride 2 (the CX paper's single-image SR and normal-map terms)
_PATCHES = {"arch": "patches", "size": 5, "stride": 2}


def _term(
    loss: str,
    weight: float = 1.0,
    backbone: str | None = None,
    layers: list[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """An objective term table: loss, weight, then (for feature terms) backbone and layers, then options."""
    term: dict[str, Any] = {"loss": loss, "weight": weight}
    if backbone is not None:
        term["backbone"] = backbone
    if layers is not None:
        term["layers"] = layers
    return {**term, **options}


def _warm_up(fraction: float) -> dict[str, Any]:
    """A pre-training section: ``fraction`` of the steps on a plain L2 objective."""
    return {"fraction": fraction, "objective": {"terms": {"l2": _term("l2")}}}


def _recipe(
    name: str,
    description: str,
    paper: str,
    *,
    terms: dict[str, Any],
    backbones: dict[str, Any] | None = None,
    network: str = "auto",
    task: str = "sr4",
    tasks: list[str] = _ALL_TASKS,
    degradation: dict[str, Any] | None = None,
    pretrain: dict[str, Any] | None = None,
    adversarial: dict[str, Any] | None = None,
    steps: int = 100000,
    batch_size: int = 16,
    lr: float = 1e-4,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One recipe in the layout of the module docstring (sections left None are left out); ``data``
    defaults to 96×96 crops."""
    objective = {"terms": terms} if backbones is None else {"backbones": backbones, "terms": terms}
    sections = {
        "degradation": degradation,
        "network": {"name": network},
        "objective": objective,
        "pretrain": pretrain,
        "adversarial": adversarial,
        "training": {"steps": steps, "batch_size": batch_size, "lr": lr},
        "data": data or {"crop_size": 96},
    }
    head = {"name": name, "description": description, "paper": paper, "task": task, "tasks": tasks}
    return {**head, **{k: v for k, v in sections.items() if v is not None}}


def _pdl(name: str, task: str, network: str, degradation: dict[str, Any], what: str) -> dict[str, Any]:
    return _recipe(
        name,
        f"L1 + 0.01·PDL(VGG-16 conv4_3) for {what} (Delbracio et al. 2021, eq. 5)",
        "Projected Distribution Loss for Image Enhancement (Delbracio, Talebi, Milanfar 2021)",
        task=task,
        tasks=_SR_TASKS if task.startswith("sr") else [task],
        degradation=degradation,
        network=network,
        backbones={"vgg": _vgg("vgg16")},
        terms={
            "l1": _term("l1"),
            "pdl": _term("projected_distribution", 0.01, "vgg", ["conv4_3"], projection="identity"),
        },
        data={"crop_size": 128},
    )


def _normals(name: str, description: str, l1: bool) -> dict[str, Any]:
    """CX paper eq. 12, with or without its L1 term."""
    cx = {"bandwidth": 0.1, "sample_size": 65}
    terms = {
        "cx_patches": _term("contextual", 1.0, "patches", **cx),
        "cx_vgg": _term("contextual", 1.0, "vgg", ["conv1_2", "conv2_2"], **cx),
        "lf": _term("low_frequency_l2", 0.1),
    }
    return _recipe(
        name,
        description,
        "Mechrez et al. 2018, eq. 12 (surface normal estimation)",
        task="normals",
        tasks=["normals"],
        network="crn",
        backbones={"patches": dict(_PATCHES), "vgg": _vgg("vgg19")},
        terms={**terms, "l1": _term("l1")} if l1 else terms,
        steps=50000,
        batch_size=4,
        data={"crop_size": 256},
    )


_BUILT_IN: dict[str, dict[str, Any]] = {
    r["name"]: r
    for r in (
        _recipe(
            "pixel",
            "L1 pixel loss baseline",
            "baseline of every paper (e.g. EDSR's L1)",
            terms={"pixel": _term("l1")},
        ),
        _recipe(
            "pixel-l2",
            "L2 (MSE) pixel loss baseline (SRResNet-MSE)",
            "Ledig et al. 2017 (SRResNet-MSE)",
            terms={"pixel": _term("l2")},
        ),
        _recipe(
            "perceptual",
            "feature reconstruction loss, squared L2 at VGG-16 relu2_2 (Johnson et al. 2016, SR)",
            "Perceptual Losses for Real-Time Style Transfer and Super-Resolution (Johnson et al. 2016)",
            backbones={"vgg": _vgg("vgg16")},
            terms={"feature": _term("perceptual", 1.0, "vgg", ["relu2_2"], norm="l2")},
            lr=1e-3,
            data={"crop_size": 288},
        ),
        _recipe(
            "cx-sr",
            "0.1·CX(VGG-19 conv3_4) + 10·LF-L2 + 1e-3·GAN after an L2 warm-up (Mechrez et al.)",
            "Maintaining Natural Image Statistics with the Contextual Loss (Mechrez et al. 2018)",
            tasks=_SR_TASKS,
            network="srresnet",
            backbones={"vgg": _vgg("vgg19")},
            terms={
                "cx": _term("contextual", 0.1, "vgg", ["conv3_4"], bandwidth=0.1),
                "lf": _term("low_frequency_l2", 10.0, kernel_size=21, sigma=3.0),
            },
            pretrain=_warm_up(100 / 1600),
            adversarial={
                "enabled": True,
                "weight": 1e-3,
                "kind": "nonsaturating",
                "lr": 1e-4,
                "discriminator": {"channels": 64},
            },
            steps=80000,
        ),
        _recipe(
            "tsrn",
            "Gram loss on VGG-19 conv2_2, conv3_4, conv4_4, conv5_2 after MSE pre-training",
            "The Unreasonable Effectiveness of Texture Transfer for Single Image SR (Gondal et al.)",
            tasks=["sr4", "sr8"],
            network="tsrn",
            backbones={"vgg": _vgg("vgg19")},
            terms={
                "gram": _term(
                    "gram",
                    1.0,
                    "vgg",
                    ["conv2_2", "conv3_4", "conv4_4", "conv5_2"],
                    # eq. 1's unnormalised Gram loss = featstat's normalised one × C²/4 per layer
                    layer_weights={
                        "conv2_2": 128**2 / 4,
                        "conv3_4": 256**2 / 4,
                        "conv4_4": 512**2 / 4,
                        "conv5_2": 512**2 / 4,
                    },
                ),
            },
            pretrain=_warm_up(10 / 110),
            lr=5e-4,
            data={"crop_size": 256},
        ),
        _pdl("pdl-denoise", "denoise", "srn", {"sigma": 75.0, "clip": False}, "denoising (σ = 75)"),
        _pdl("pdl-sr", "sr4", "edsr", {}, "×4 super-resolution (EDSR)"),
        _pdl("pdl-deblur", "deblur", "srn", {}, "camera-shake deblurring"),
        _pdl("pdl-jpeg", "jpeg", "srn", {"quality": 20}, "JPEG artefact removal (q = 20)"),
        _pdl("pdl-demosaic", "demosaic", "srn", {}, "demosaicking of a noisy RGGB mosaic"),
        _recipe(
            "single-image-sr",
            "SRResNet trained on crops of one image with CX on 5×5 RGB patches (CX supplementary)",
            "Mechrez et al. 2018, supplementary sec. 2 (image-specific ×4 SR)",
            tasks=_SR_TASKS,
            network="srresnet",
            backbones={"patches": dict(_PATCHES)},
            terms={"cx": _term("contextual", 1.0, "patches", bandwidth=0.1)},
            steps=10000,
            batch_size=1,
            data={"crop_size": 384, "samples_per_epoch": 100, "val_same_image": True},
        ),
        _normals("normals", "CX(5×5 normal patches, VGG-19 conv1_2, conv2_2) + 0.1·LF-L2 + L1, CRN", l1=True),
        _normals(
            "normals-no-l1",
            "the normals recipe without L1 (λ_L1 = 0: more natural-looking, worse angular scores)",
            l1=False,
        ),
    )
}

#: Recipe name → recipe (plain data; :func:`get_recipe` returns merged copies): the recipe registry
#: (:data:`featstat.registry.RECIPES`), a read-only mapping; ``RECIPES.register_value(name, recipe)`` adds
#: one.
RECIPES: Registry[dict[str, Any]] = _RECIPES
for _name, _entry in _BUILT_IN.items():
    if _name not in RECIPES.registered_names():
        RECIPES.register_value(_name, _entry)
del _name, _entry


def recipe_names() -> list[str]:
    """The recipe names, in a stable order (registration order)."""
    return RECIPES.names()


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables (dicts) merge key by key, other values (lists included) replace."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_overrides(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A recipe override from a TOML file (same layout as a recipe)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config file {str(p)!r} does not exist; pass the path of a TOML file")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {str(p)!r} is not valid TOML: {err}") from err


_TOP_KEYS = {
    "name",
    "description",
    "paper",
    "task",
    "tasks",
    "degradation",
    "network",
    "objective",
    "pretrain",
    "adversarial",
    "training",
    "data",
    "base",
}
_DATA_KEYS = {
    "crop_size",
    "samples_per_epoch",
    "augment",
    "val_count",
    "val_max_size",
    "val_same_image",
    "normals_convention",
    "cache",
}


def recipe_keys(path: Sequence[str] = ()) -> frozenset[str] | None:
    """The keys :func:`validate_recipe` accepts below ``path`` (``()``: the sections; ``("data",)``,
    ``("network",)``, ``("training",)``: their keys), or None where any key goes (objective terms, network
    options, ...). For the command line's ``--set`` error messages."""
    path = tuple(path)
    if path == ():
        return frozenset(_TOP_KEYS)
    if path == ("data",):
        return frozenset(_DATA_KEYS)
    if path == ("network",):
        return frozenset({"name", "options"})
    if path == ("training",):
        return frozenset(f.name for f in fields(TrainOptions))
    return None


def get_recipe(
    name: str, overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """A copy of preset ``name`` with ``overrides`` (dict or TOML path) merged in, validated.

    An override file may also name its preset itself with ``base = "cx-sr"`` (then ``name`` may be None).
    """
    over: dict[str, Any] = {}
    if overrides is not None:
        over = dict(overrides) if isinstance(overrides, Mapping) else load_overrides(overrides)
    base = over.pop("base", None) or name
    return validate_recipe(merge(RECIPES.get(base), over))


def validate_recipe(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """Check the sections and keys of a (merged) recipe; returns it as a dict. Raises ``ValueError``."""
    recipe = dict(recipe)
    unknown = set(recipe) - _TOP_KEYS
    if unknown:
        raise ValueError(f"recipe has unknown sections {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    unknown = set(recipe.get("data", {})) - _DATA_KEYS
    if unknown:
        raise ValueError(f"recipe [data] has unknown keys {sorted(unknown)}; known: {sorted(_DATA_KEYS)}")
    unknown = set(recipe.get("network", {})) - {"name", "options"}
    if unknown:
        raise ValueError(
            f"recipe [network] has unknown keys {sorted(unknown)}; known: name, options (constructor "
            "arguments go in network.options, e.g. --set network.options.blocks=8)"
        )
    train_fields = {f.name for f in fields(TrainOptions)}
    unknown = set(recipe.get("training", {})) - train_fields
    if unknown:
        raise ValueError(
            f"recipe [training] has unknown keys {sorted(unknown)}; known: {sorted(train_fields)}"
        )
    return recipe


def _clean_terms(config: Mapping[str, Any]) -> dict[str, Any]:
    """An Objective config without disabled terms, with "none" strings turned into None."""
    cfg = copy.deepcopy(dict(config))
    terms = {}
    for name, spec in dict(cfg.get("terms", {})).items():
        spec = dict(spec)
        if not spec.pop("enabled", True):
            continue
        spec = {k: (None if isinstance(v, str) and v.lower() == "none" else v) for k, v in spec.items()}
        if isinstance(spec.get("layer_weights"), Mapping) and spec.get("layers"):
            # overriding `layers` drops the preset's weights of layers no longer used
            spec["layer_weights"] = {k: v for k, v in spec["layer_weights"].items() if k in spec["layers"]}
        terms[name] = spec
    if not terms:
        raise ValueError("the objective has no enabled terms")
    cfg["terms"] = terms
    used = {spec.get("backbone") for spec in terms.values()}
    cfg["backbones"] = {k: v for k, v in dict(cfg.get("backbones", {})).items() if k in used}
    return cfg


def build_objective(config: Mapping[str, Any]) -> Objective:
    """An :class:`~featstat.Objective` from a recipe's ``objective`` table (disabled terms dropped)."""
    return Objective.from_config(_clean_terms(config))


def default_network(task: str) -> str:
    """The network ``"auto"`` resolves to: SRResNet for SR, CRN for normals, the SRN-like net otherwise."""
    return "srresnet" if task.startswith("sr") else "crn" if task == "normals" else "srn"


@dataclass
class RecipeSetup:
    """Everything :func:`setup` builds from a recipe."""

    recipe: dict[str, Any]
    task: str
    degradation: Degradation
    model: nn.Module
    objective: Objective
    pretrain_objective: Objective | None
    discriminator: nn.Module | None
    adversarial: AdversarialOptions | None
    options: TrainOptions

    @property
    def metadata(self) -> dict[str, Any]:
        features = dict(getattr(self.objective, "feature_sources", {}))
        if self.pretrain_objective is not None:
            features.update(getattr(self.pretrain_objective, "feature_sources", {}))
        return {
            "recipe": self.recipe,
            "task": self.task,
            "degradation": self.degradation.options,
            "features": features,
        }

    def trainer(
        self,
        train_data: Any,
        out_dir: str | os.PathLike[str],
        *,
        val_data: Any = None,
        lpips: nn.Module | str | None = "auto",
        device: str | None = None,
    ) -> Trainer:
        """The :class:`~featstat.restoration.trainer.Trainer` of this setup (network, objectives,
        discriminator, options, metadata and task) on ``train_data``, writing to ``out_dir``; ``val_data``,
        ``lpips`` and ``device`` as the Trainer takes them."""
        return Trainer(
            self.model,
            self.objective,
            train_data,
            out_dir,
            options=self.options,
            val_data=val_data,
            pretrain_objective=self.pretrain_objective,
            discriminator=self.discriminator,
            adversarial=self.adversarial,
            metadata=self.metadata,
            lpips=lpips,
            task=self.task,
            device=device,
        )


def setup(recipe: Mapping[str, Any], *, task: str | None = None) -> RecipeSetup:
    """Build network, objectives, discriminator and options of ``recipe`` (from :func:`get_recipe`) for
    ``task`` (default: the recipe's)."""
    recipe = dict(recipe)
    task = task or recipe.get("task", "sr4")
    allowed = recipe.get("tasks") or list(TASKS)
    if task not in allowed:
        raise ValueError(f"recipe {recipe.get('name')!r} supports tasks {allowed}, got task={task!r}")
    degradation = make_degradation(task, **dict(recipe.get("degradation", {})))
    net = dict(recipe.get("network", {"name": "auto"}))
    name = net.get("name", "auto")
    name = default_network(task) if name == "auto" else name
    training = dict(recipe.get("training", {}))
    # the initial weights follow the run's seed (same command and seed, same model), without moving the
    # caller's global random stream
    seed = int(training.get("seed", TrainOptions.seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(name, scale=degradation.scale, **dict(net.get("options", {})))
    objective = build_objective(recipe["objective"])
    pretrain = dict(recipe.get("pretrain", {}))
    pre_objective = None
    if pretrain and pretrain.get("fraction", 0) > 0:
        steps = int(training.get("steps", TrainOptions.steps))
        # at least one pre-training step, and at least one main step (--steps 1: no pre-training)
        fraction_steps = min(max(1, round(float(pretrain["fraction"]) * steps)), steps - 1)
        training.setdefault("pretrain_steps", max(0, fraction_steps))
        pre_objective = build_objective(pretrain["objective"])
    for key in ("betas", "lr_milestones"):
        if key in training:
            training[key] = tuple(training[key])
    options = TrainOptions(**training)
    if not options.pretrain_steps:
        pre_objective = None
    adv = dict(recipe.get("adversarial", {}))
    discriminator = adversarial = None
    if adv.pop("enabled", False):
        d_opts = dict(adv.pop("discriminator", {}))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            discriminator = SRGANDiscriminator(3, **d_opts)
        adversarial = AdversarialOptions(**adv)
    return RecipeSetup(
        dict(recipe), task, degradation, model, objective, pre_objective, discriminator, adversarial, options
    )


def train(
    recipe: str | Mapping[str, Any],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    task: str | None = None,
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    val: str | os.PathLike[str] | None = None,
    resume: bool = False,
    device: str | None = None,
    lpips: nn.Module | str | None = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Train a recipe on ``data`` (a folder of images, one image, or for normals a folder with images/ and
    normals/) and write everything to ``out_dir``; returns the run's summary.

    Validation images: ``val`` (a folder), else ``data.val_count`` whole images held out of ``data`` (default:
    10 % when there are at least 5 images), else — for single-image SR — the training image itself.
    """
    r = get_recipe(recipe, overrides) if isinstance(recipe, str) else merge(recipe, dict(overrides or {}))
    s = setup(r, task=task)
    if not progress:
        s.options.progress = False
    d = dict(r.get("data", {}))
    items: list[Any] = (
        [tuple(p) for p in pair_normals(data)]
        if s.task == "normals" and isinstance(data, (str, os.PathLike))
        else list_sources(data)
    )
    val_items: Any = None
    if val is not None:
        val_items = val
    else:
        count = d.get("val_count", 0.1 if len(items) >= 5 else 0)
        if count:
            items, val_items = split_validation(items, count, seed=s.options.seed)
        elif d.get("val_same_image"):
            val_items = items
    train_set = RestorationDataset(
        items,
        s.degradation,
        crop_size=int(d.get("crop_size", 96)),
        samples_per_epoch=d.get("samples_per_epoch"),
        augment=bool(d.get("augment", True)),
        seed=s.options.seed,
        cache=bool(d.get("cache", True)),
        normals_convention=d.get("normals_convention", "opengl"),
    )
    val_set = (
        ValidationSet(val_items, s.degradation, seed=s.options.seed, max_size=d.get("val_max_size"))
        if val_items is not None
        else None
    )
    return s.trainer(train_set, out_dir, val_data=val_set, lpips=lpips, device=device).fit(resume=resume)
