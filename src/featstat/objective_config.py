"""Build an :class:`~featstat.objective.Objective` from a plain dict or a TOML file.

    [backbones.vgg]                 # one entry per backbone; built once with the union of its layers
    arch = "vgg19"                  # vgg19 | vgg16 | alexnet | squeezenet1_1 | patches
    weights = "vgg19"               # registry name, file path, or "random" (seeded random weights)
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

``terms`` may also be a list of tables with a ``name`` key. ``target = "style"`` names the target a term
compares against (default "target"); ``target = "none"`` for terms without one (diversity, TV).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from . import features
from .losses import get_loss
from .objective import Objective, Term

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_EXTRACTORS = {
    "vgg19": features.vgg19,
    "vgg16": features.vgg16,
    "alexnet": features.alexnet,
    "squeezenet1_1": features.squeezenet1_1,
}
_TERM_KEYS = {"name", "loss", "weight", "backbone", "layers", "layer_weights", "target"}
_TARGET_LESS = {"diversity", "total_variation", "tv"}


def load_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config as a dict: given as one, or read from a TOML file."""
    if isinstance(config, Mapping):
        return dict(config)
    path = Path(config)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist; pass a dict or the path of a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from err


def _terms_list(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, Mapping):
        return [{"name": name, **dict(spec)} for name, spec in raw.items()]
    if isinstance(raw, list) and all(isinstance(t, Mapping) for t in raw):
        return [dict(t) for t in raw]
    raise ValueError(
        "config 'terms' must be a table of tables ([terms.NAME]) or a list of tables with a name"
    )


def _build_extractor(name: str, spec: Mapping[str, Any], layers: list[str]) -> nn.Module:
    spec = dict(spec)
    arch = spec.pop("arch", None)
    if arch == "patches":
        unknown = set(spec) - {"size", "stride"}
        if unknown:
            raise ValueError(f"backbone {name!r} (patches) has unknown keys {sorted(unknown)}")
        return features.PatchExtractor(spec.get("size", 5), spec.get("stride", 2), name=layers[0])
    if arch not in _EXTRACTORS:
        raise ValueError(f"backbone {name!r}: arch must be one of {[*_EXTRACTORS, 'patches']}, got {arch!r}")
    if spec.get("weights") == "random":
        spec["weights"] = None
    unknown = set(spec) - {"weights", "preprocessing", "pooling", "seed"}
    if unknown:
        raise ValueError(f"backbone {name!r} has unknown keys {sorted(unknown)}")
    return _EXTRACTORS[arch](layers=layers, **spec)


def build_objective(config: Mapping[str, Any] | str | os.PathLike[str]) -> Objective:
    """Objective from a dict or TOML file (format in this module's docstring)."""
    cfg = load_config(config)
    unknown = set(cfg) - {"backbones", "terms"}
    if unknown:
        raise ValueError(f"config has unknown sections {sorted(unknown)}; expected 'backbones' and 'terms'")
    backbones = dict(cfg.get("backbones", {}))
    specs = _terms_list(cfg.get("terms"))
    if not specs:
        raise ValueError("config has no terms; add at least one [terms.NAME] table")

    layers_of: dict[str, list[str]] = {name: [] for name in backbones}
    for spec in specs:
        bb = spec.get("backbone")
        if bb is None:
            continue
        if bb not in backbones:
            raise ValueError(f"term {spec.get('name')!r} uses backbone {bb!r}, not defined in [backbones]")
        if backbones[bb].get("arch") == "patches":
            spec.setdefault("layers", [f"patch{backbones[bb].get('size', 5)}"])
        for layer in spec.get("layers") or []:
            if layer not in layers_of[bb]:
                layers_of[bb].append(layer)
    extractors = {
        name: _build_extractor(name, spec, layers_of[name])
        for name, spec in backbones.items()
        if layers_of[name]
    }

    terms = []
    for spec in specs:
        name = spec.get("name")
        loss_name = spec.get("loss")
        if not isinstance(loss_name, str):
            raise ValueError(f"term {name!r} needs loss = NAME (one of featstat.losses.LOSSES)")
        options = {k: v for k, v in spec.items() if k not in _TERM_KEYS}
        try:
            loss = get_loss(loss_name)(**options)
        except TypeError as err:
            raise ValueError(f"term {name!r}: bad options for loss {loss_name!r}: {err}") from err
        target = spec.get("target", "none" if loss_name in _TARGET_LESS else "target")
        bb = spec.get("backbone")
        terms.append(
            Term(
                name=name,
                loss=loss,
                weight=float(spec.get("weight", 1.0)),
                extractor=extractors.get(bb) if bb else None,
                layers=spec.get("layers") if bb else None,
                layer_weights=spec.get("layer_weights"),
                target=None if target == "none" else target,
            )
        )
    return Objective(terms)
