"""Build an :class:`~featstat.objective.Objective` from a plain dict or a TOML file.

    [backbones.vgg]                 # one entry per backbone; built once with the union of its layers
    arch = "vgg19"                  # a name of featstat.registry.EXTRACTORS: vgg19 | vgg16 | alexnet |
                                    # squeezenet1_1 | patches | random_filters
    weights = "vgg19"               # registry name, file path, "random" (seeded random weights) or "auto"
    paper_weights = "vgg19"         # optional, with "auto": the paper's registry file(s), tried first
    preprocessing = "torchvision"   # optional: "caffe" | "torchvision" (default: the weights' own)
    pooling = "max"                 # optional: "max" | "avg"

    [backbones.patch]
    arch = "patches"                # raw k×k patches (contextual-loss papers, normals / single-image SR)
    size = 5
    stride = 2

    [terms.cx]                      # the table key is the term's name
    loss = "contextual"             # a name from featstat.losses.LOSSES (or an alias: cx, pdl, tv, ...)
    weight = 0.1
    backbone = "vgg"                # omit for pixel-space terms
    layers = ["conv3_4"]
    bandwidth = 0.1                 # any other key is passed to the loss constructor

    [terms.lf]
    loss = "low_frequency_l2"
    weight = 10.0

``weights = "auto"`` picks the best features on this machine, never downloading (paper weights → HED's
VGG-16 with VGG-19 layer names mapped → the shallow Caffe VGG-19 → seeded random weights; see
:mod:`featstat.features.sources`); the terms' layers are renamed accordingly and the choice is recorded in
``objective.feature_sources``.

``terms`` may also be a list of tables with a ``name`` key. ``target = "style"`` names the target a term
compares against (default "target", or "none" for losses whose class says ``needs_target = False``: diversity,
TV).

This module is the one way from names to an objective: texture synthesis and style transfer, the Deep Image
Prior's extra terms and the restoration recipes write a spec and build it here (:func:`build_objective`, or
:func:`build_terms` for terms on extractors the caller already built), so any loss registered in
:data:`featstat.registry.LOSSES` works in all of them. In a dict config (not TOML) a backbone may also be an
extractor module the caller built (``{"backbones": {"vgg": extractor}}``); it is used as is.

Guides (spatial masks, e.g. the semantically guided Gram loss of TSRN eq. 4): ``pred_guide = "content"``
and ``target_guide = "style"`` name the masks of the prediction and of the target that are passed at call
time, ``objective(x, {"style": s}, guides={"content": m_x, "style": m_s})`` (see
:mod:`featstat.objective.core`); the loss must take masks (``gram``).

Every entry is type-checked before anything is built: a file that is not UTF-8 TOML, a list or a number
where a table is expected, a string or non-finite weight, a list where a name is expected, or options the
loss does not take give one ``ValueError`` naming the entry (e.g. ``terms.cx.weight``) and what it must be.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..features.sources import choose_features
from ..losses import get_loss
from ..registry import EXTRACTORS
from .core import Objective, Term

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_GUIDE_KEYS = ("pred_guide", "target_guide")
#: Keys of a term table that are the term's own; every other key is an option of the loss.
TERM_KEYS = frozenset(
    {"name", "loss", "weight", "backbone", "layers", "layer_weights", "target", *_GUIDE_KEYS}
)


def load_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config as a dict: given as one, or read from a TOML file."""
    if isinstance(config, Mapping):
        return dict(config)
    if not isinstance(config, (str, os.PathLike)):
        raise ValueError(f"config must be a dict or the path of a TOML file, got {_seen(config)}")
    path = Path(config)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist; pass a dict or the path of a TOML file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"config file {str(path)!r} is not UTF-8 text (byte {data[err.start]:#04x} at offset "
            f"{err.start}); an objective config is a TOML file, saved as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from err


# -- type checks: each names the entry (``terms.cx.weight``) ---------------------------------------------


def _seen(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _table(where: str, value: Any, example: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a table ({example}), got {_seen(value)}")
    return dict(value)


def _name(where: str, value: Any, what: str = "a name") -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be {what} (a string), got {_seen(value)}")
    return value


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number (e.g. 1.0, without quotes), got {_seen(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value}")
    return float(value)


def _integer(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, got {_seen(value)}")
    return value


_BACKBONE_STRINGS = ("arch", "weights", "paper_weights", "preprocessing", "pooling")
_BACKBONE_INTEGERS = ("seed", "size", "stride")
_TRAINED_KEYS = {"weights", "preprocessing", "pooling", "seed"}


def _check_backbone(name: str, spec: Any) -> dict[str, Any] | nn.Module:
    if isinstance(spec, nn.Module):
        return spec  # an extractor the caller built (dict configs only)
    where = f"backbones.{name}"
    spec = _table(where, spec, 'e.g. [backbones.vgg] with arch = "vgg19"')
    if "arch" not in spec:
        raise ValueError(f"{where}.arch is missing: one of {EXTRACTORS.names()}")
    for key in _BACKBONE_STRINGS:
        if key in spec:
            _name(f"{where}.{key}", spec[key], "a name or a file path" if "weights" in key else "a name")
    for key in _BACKBONE_INTEGERS:
        if key in spec:
            _integer(f"{where}.{key}", spec[key])
    return spec


def _check_term(where: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Types of a term's own keys (the loss checks its options)."""
    spec = {k: v for k, v in spec.items() if v is not None}
    _name(f"{where}.loss", spec.get("loss"), "a loss name (one of featstat.losses.LOSSES)")
    if "weight" in spec:
        spec["weight"] = _number(f"{where}.weight", spec["weight"])
    for key in ("backbone", "target"):
        if key in spec:
            _name(f"{where}.{key}", spec[key])
    for key in _GUIDE_KEYS:
        if key in spec:
            _name(
                f"{where}.{key}", spec[key], "the name of a guide passed at call time (guides={name: mask})"
            )
    if "layers" in spec:
        layers = spec["layers"]
        if not isinstance(layers, list) or not all(isinstance(v, str) and v for v in layers):
            raise ValueError(
                f'{where}.layers must be a list of layer names, e.g. ["relu3_1"], got {_seen(layers)}'
            )
    if "layer_weights" in spec:
        lw = spec["layer_weights"]
        if isinstance(lw, Mapping):
            spec["layer_weights"] = {
                _name(f"{where}.layer_weights", k, "a layer name"): _number(f"{where}.layer_weights.{k}", v)
                for k, v in lw.items()
            }
        elif isinstance(lw, list):
            spec["layer_weights"] = [_number(f"{where}.layer_weights[{i}]", v) for i, v in enumerate(lw)]
        else:
            raise ValueError(
                f"{where}.layer_weights must be a list of numbers (one per layer) or a table layer = number, "
                f"got {_seen(lw)}"
            )
    return spec


def _terms_list(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    """(where, spec) per term, every spec a table with a string name and well-typed keys."""
    hint = "a table of tables ([terms.NAME]) or a list of tables with a name"
    if isinstance(raw, Mapping):
        out = []
        for name, spec in raw.items():
            where = f"terms.{name}"
            out.append((where, {"name": name, **_table(where, spec, 'e.g. [terms.l1] with loss = "l1"')}))
    elif isinstance(raw, list):
        out = []
        for i, spec in enumerate(raw):
            spec = _table(f"terms[{i}]", spec, 'e.g. {name = "l1", loss = "l1"}')
            name = _name(f"terms[{i}].name", spec.get("name"), "the term's name")
            out.append((f"terms.{name}", spec))
    else:
        raise ValueError(f"config 'terms' must be {hint}, got {_seen(raw)}")
    return [(where, _check_term(where, spec)) for where, spec in out]


def _build_extractor(name: str, spec: Mapping[str, Any], layers: list[str]) -> nn.Module:
    spec = dict(spec)
    arch = spec.pop("arch", None)
    if not isinstance(arch, str) or arch not in EXTRACTORS:
        raise ValueError(f"backbone {name!r}: arch must be one of {EXTRACTORS.names()}, got {arch!r}")
    builder = EXTRACTORS.get(arch)
    if getattr(builder, "trained", False):
        if spec.get("weights") == "random":
            spec["weights"] = None
        spec.pop("paper_weights", None)  # says which file "auto" tries first; explicit weights override it
        unknown = set(spec) - _TRAINED_KEYS
        if unknown:
            raise ValueError(f"backbone {name!r} has unknown keys {sorted(unknown)}")
    try:
        return builder(layers, **spec)
    except TypeError as err:
        raise ValueError(f"backbone {name!r} ({arch}) has unknown keys or bad options: {err}") from err


def build_objective(config: Mapping[str, Any] | str | os.PathLike[str]) -> Objective:
    """Objective from a dict or TOML file (format in this module's docstring)."""
    cfg = load_config(config)
    unknown = set(cfg) - {"backbones", "terms"}
    if unknown:
        raise ValueError(f"config has unknown sections {sorted(unknown)}; expected 'backbones' and 'terms'")
    backbones = _table("config 'backbones'", cfg.get("backbones", {}), "[backbones.NAME] tables")
    backbones = {name: _check_backbone(name, spec) for name, spec in backbones.items()}
    listed = _terms_list(cfg.get("terms"))
    where_of = {id(spec): where for where, spec in listed}
    specs = [spec for _, spec in listed]
    if not specs:
        raise ValueError("config has no terms; add at least one [terms.NAME] table")

    layers_of: dict[str, list[str]] = {name: [] for name in backbones}
    for spec in specs:
        bb = spec.get("backbone")
        if bb is None:
            continue
        if bb not in backbones:
            raise ValueError(
                f"{where_of[id(spec)]}.backbone: {bb!r} is not defined in [backbones] (defined: "
                f"{sorted(backbones)})"
            )
        if isinstance(backbones[bb], nn.Module):
            continue
        if EXTRACTORS.get(backbones[bb]["arch"], None) is EXTRACTORS.get("patches"):
            spec.setdefault("layers", [f"patch{backbones[bb].get('size', 5)}"])
        for layer in spec.get("layers") or []:
            if layer not in layers_of[bb]:
                layers_of[bb].append(layer)
    sources = {}
    for bb, bspec in list(backbones.items()):
        if isinstance(bspec, Mapping) and bspec.get("weights") == "auto" and layers_of.get(bb):
            backbones[bb], sources[bb] = _auto_backbone(bb, bspec, layers_of[bb])
            mapping = sources[bb].layers
            layers_of[bb] = list(dict.fromkeys(mapping[n] for n in layers_of[bb]))
            for spec in specs:
                if spec.get("backbone") == bb:
                    _map_term_layers(spec, mapping)
    extractors = {
        name: spec if isinstance(spec, nn.Module) else _build_extractor(name, spec, layers_of[name])
        for name, spec in backbones.items()
        if isinstance(spec, nn.Module) or layers_of[name]
    }
    objective = Objective([_build_term(where_of[id(spec)], spec, extractors) for spec in specs])
    #: backbone name → FeatureSource.info() of the backbones built with weights = "auto"
    objective.feature_sources = {bb: src.info() for bb, src in sources.items()}
    return objective


def build_terms(
    terms: Mapping[str, Any] | list[Any], extractors: Mapping[str, nn.Module] | None = None
) -> list[Term]:
    """Terms from term tables (as in a config's ``terms``) on extractors the caller already built.

    ``terms``: ``{name: {"loss": ..., "weight": ..., "backbone": ..., "layers": [...], **loss_options}}`` or a
    list of tables with a ``name``; ``backbone`` names a key of ``extractors``. The products' objective
    builders (texture statistics, DIP extra terms, recipes) go through here, so each registered loss works in
    all of them. Errors are ``ValueError`` naming the term (``terms.NAME...``).
    """
    extractors = dict(extractors or {})
    built = []
    for where, spec in _terms_list(terms):
        bb = spec.get("backbone")
        if bb is not None and bb not in extractors:
            raise ValueError(f"{where}.backbone: {bb!r} is not among the extractors {sorted(extractors)}")
        built.append(_build_term(where, spec, extractors))
    return built


def build_loss(name: str, options: Mapping[str, Any] | None = None, where: str | None = None) -> nn.Module:
    """A loss module by registry name or alias with constructor options; a ``ValueError`` names ``where``
    (e.g. ``terms.cx``) and the bad option."""
    prefix = f"{where}: " if where else ""
    try:
        cls = get_loss(name)
    except ValueError as err:
        raise ValueError(f"{prefix}{err}") from None
    try:
        return cls(**dict(options or {}))
    except TypeError as err:
        raise ValueError(f"{prefix}bad options for loss {name!r}: {err}") from err
    except ValueError as err:
        raise ValueError(f"{prefix}{err}") from err


def _build_term(where: str, spec: Mapping[str, Any], extractors: Mapping[str, nn.Module]) -> Term:
    loss_name = spec["loss"]
    loss = build_loss(loss_name, {k: v for k, v in spec.items() if k not in TERM_KEYS}, where)
    target = spec.get("target", "target" if getattr(loss, "needs_target", True) else "none")
    bb = spec.get("backbone")
    try:
        return Term(
            name=spec.get("name"),
            loss=loss,
            weight=float(spec.get("weight", 1.0)),
            extractor=extractors.get(bb) if bb else None,
            layers=spec.get("layers") if bb else None,
            layer_weights=spec.get("layer_weights"),
            target=None if target == "none" else target,
            pred_guide=spec.get("pred_guide"),
            target_guide=spec.get("target_guide"),
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err


def _auto_backbone(name: str, spec: Mapping[str, Any], layers: list[str]) -> tuple[dict[str, Any], Any]:
    """``weights = "auto"``: the best local features (:func:`featstat.features.sources.choose_features`)."""
    spec = dict(spec)
    arch = spec.get("arch")
    trained = EXTRACTORS.names(trained=True)
    if arch not in trained:
        raise ValueError(f"backbone {name!r}: weights = 'auto' needs arch one of {trained}")
    paper = spec.pop("paper_weights", None)
    source = choose_features(arch, layers, paper)
    spec["arch"] = source.arch
    spec["weights"] = "random" if source.weights is None else source.weights
    return spec, source


def _map_term_layers(spec: dict[str, Any], mapping: Mapping[str, str]) -> None:
    """Rename a term's layers (and layer weights) after ``auto`` mapped them; merged layers add weights."""
    if spec.get("layers"):
        spec["layers"] = list(dict.fromkeys(mapping[n] for n in spec["layers"]))
    if isinstance(spec.get("layer_weights"), Mapping):
        merged: dict[str, float] = {}
        for layer, w in spec["layer_weights"].items():
            key = mapping.get(layer, layer)
            merged[key] = merged.get(key, 0.0) + float(w)
        spec["layer_weights"] = merged
