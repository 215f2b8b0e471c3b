"""Choose the best trained features present on this machine (``weights="auto"``), never downloading.

A method asks for an architecture and named layers (``vgg19``, ``conv3_4``) and names the weights its paper
used. :func:`choose_features` returns, in this order, the first that is found locally:

1. **paper** — the paper's weights (e.g. torchvision's or the Caffe VGG-19), layers as asked;
2. **vgg16-hed** — the complete VGG-16 of the HED edge detector (``featstat weights fetch vgg16-hed``), with
   each VGG-19 layer mapped to its VGG-16 counterpart (:func:`vgg16_layer`: the last convolution of a block
   stands for the last one, e.g. ``conv3_4 → conv3_3``, ``conv4_4 → conv4_3``, ``relu5_4 → relu5_3``;
   every other name is the same in both nets). These are ImageNet VGG-16 weights *fine-tuned on edges*, not
   torchvision's: deep layers respond more to contours than ImageNet's do;
3. **shallow-caffe** — the real Caffe VGG-19 layers up to relu3_1 (``vgg19-caffe-normalised-to-relu3_1``),
   with deeper layers replaced by the deepest one of the same kind (``conv`` → ``conv3_1``, ``relu``/``pool``
   → ``relu3_1``);
4. **random** — seeded random weights, layers as asked (a warning says the features are untrained).

:meth:`FeatureSource.info` is what run JSON files record.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .layers import check_arch, layer_index
from .weights import DEFAULT_WEIGHTS, find_local, get_entry

KINDS = ("paper", "vgg16-hed", "shallow-caffe", "random")
HED = "vgg16-hed"
SHALLOW = "vgg19-caffe-normalised-to-relu3_1"
_VGG16_LAST = {3: 3, 4: 3, 5: 3}  # block → last conv index in VGG-16 (blocks 1, 2 have 2 in both nets)


def vgg16_layer(name: str) -> str:
    """The VGG-16 counterpart of a VGG-19 layer name (``conv3_4`` → ``conv3_3``; others unchanged)."""
    for kind in ("conv", "relu"):
        if name.startswith(kind) and "_" in name:
            block, index = (int(v) for v in name[len(kind) :].split("_"))
            last = _VGG16_LAST.get(block)
            if last is not None and index > last:
                return f"{kind}{block}_{last}"
    return name


def _shallow_layer(arch: str, name: str, deepest: str) -> str:
    if layer_index(arch, name) <= layer_index(arch, deepest):
        return name
    return "conv3_1" if name.startswith("conv") else "relu3_1"


@dataclass(frozen=True)
class FeatureSource:
    """The features :func:`choose_features` picked.

    Attributes: ``arch`` and ``weights`` to build (``weights`` None = seeded random), ``layers`` (requested
    name → name used), ``kind`` (one of :data:`KINDS`), ``requested_arch``, ``note`` (one line for humans).
    """

    arch: str
    weights: str | None
    layers: dict[str, str]
    kind: str
    requested_arch: str
    note: str = ""
    paper_weights: tuple[str, ...] = field(default=())

    def info(self) -> dict[str, Any]:
        """JSON-ready description (what run files record)."""
        return {
            "kind": self.kind,
            "arch": self.arch,
            "weights": self.weights or "random",
            "layers": dict(self.layers),
            "requested_arch": self.requested_arch,
            "paper_weights": list(self.paper_weights),
            "note": self.note,
        }


def _available(name: str, arch: str, layers: Sequence[str]) -> bool:
    entry = get_entry(name)
    if entry.arch != arch or find_local(entry) is None:
        return False
    return all(layer_index(arch, n) <= layer_index(arch, entry.deepest) for n in layers)


def choose_features(
    arch: str,
    layers: Sequence[str],
    paper_weights: str | Sequence[str] | None = None,
    *,
    allow_random: bool = True,
    warn: bool = True,
) -> FeatureSource:
    """The best locally available features for ``arch`` / ``layers`` (order in the module docstring).

    Args:
        arch: the architecture the method was defined on ("vgg19", "vgg16", "alexnet", "squeezenet1_1").
        layers: its layer names.
        paper_weights: registry name(s) of the paper's weights, best first (default: the arch's torchvision
            entry).
        allow_random: False raises ``ValueError`` instead of falling back to random weights.
        warn: emit a ``UserWarning`` when falling back to random weights.
    """
    arch = check_arch(arch)
    layers = list(dict.fromkeys(layers))
    for n in layers:
        layer_index(arch, n)
    papers = (
        (DEFAULT_WEIGHTS[arch],) if paper_weights is None
        else (paper_weights,) if isinstance(paper_weights, str) else tuple(paper_weights)
    )  # fmt: skip
    same = {n: n for n in layers}
    for name in papers:
        if _available(name, arch, layers):
            return FeatureSource(arch, name, same, "paper", arch, f"the paper's weights ({name})", papers)
    if arch in ("vgg19", "vgg16"):
        mapped = {n: vgg16_layer(n) if arch == "vgg19" else n for n in layers}
        if _available(HED, "vgg16", list(mapped.values())):
            note = "HED's VGG-16 (ImageNet VGG-16 fine-tuned on BSDS500 edges), not the paper's weights"
            changed = {k: v for k, v in mapped.items() if k != v}
            if changed:
                note += "; VGG-19 layers mapped: " + ", ".join(f"{k}→{v}" for k, v in changed.items())
            return FeatureSource("vgg16", HED, mapped, HED, arch, note, papers)
        entry = get_entry(SHALLOW)
        if find_local(entry) is not None:
            shallow = {n: _shallow_layer("vgg19", n, entry.deepest) for n in layers}
            changed = {k: v for k, v in shallow.items() if k != v}
            note = "the real Caffe VGG-19 layers up to relu3_1 only"
            if changed:
                note += "; deeper layers replaced: " + ", ".join(f"{k}→{v}" for k, v in changed.items())
            return FeatureSource("vgg19", SHALLOW, shallow, "shallow-caffe", arch, note, papers)
    if not allow_random:
        raise ValueError(
            f"weights='auto': no trained {arch} features are on this machine (looked for "
            f"{', '.join(papers)}{', ' + HED + ', ' + SHALLOW if arch.startswith('vgg') else ''}); run "
            f"`featstat weights fetch vgg16-hed` or import the paper's file (featstat weights list)"
        )
    note = "seeded RANDOM weights: no trained features found (run `featstat weights fetch vgg16-hed`)"
    if warn:
        warnings.warn(f"weights='auto' for {arch} {layers}: {note}", UserWarning, stacklevel=2)
    return FeatureSource(arch, None, same, "random", arch, note, papers)


__all__ = ["HED", "KINDS", "SHALLOW", "FeatureSource", "choose_features", "vgg16_layer"]
