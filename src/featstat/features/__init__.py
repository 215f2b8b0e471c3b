"""Named-layer feature extractors, raw-patch features, pretrained-weight registry and feature sampling.

Example::

    from featstat import features
    vgg = features.vgg19(["relu1_1", "relu2_1", "relu3_1"], weights="vgg19-caffe-normalised-to-relu3_1")
    feats = vgg(images)                  # images: N×3×H×W RGB in [0, 1] → {"relu1_1": N×64×H×W, ...}
    rand = features.vgg19(["relu4_2"], weights=None, seed=0)   # seeded random weights, no file needed
"""

from typing import Any

from torch import nn

from ..registry import EXTRACTORS
from .backbones import POOLINGS, Fire, build_backbone, init_random_, min_input_size
from .extractor import FeatureExtractor, alexnet, squeezenet1_1, vgg16, vgg19
from .layers import ARCHS, LAYERS, deepest_layer, layer_at, layer_index, layer_names
from .patches import PatchExtractor
from .random_filters import RandomFilterExtractor
from .sampling import gather_positions, sample_features, sample_positions
from .weights import (
    DEFAULT_WEIGHTS,
    PREPROCESSINGS,
    REGISTRY,
    FoundWeights,
    WeightEntry,
    WeightsHashError,
    WeightsNotFoundError,
    file_sha256,
    get_entry,
    import_weights,
    list_weights,
    load_weights,
    register_weights,
    resolve_weights,
    weights_dir,
)


def _patches(layers: list[str], size: int = 5, stride: int = 2) -> PatchExtractor:
    """Raw k×k patches as features (``layers``: the one output name)."""
    return PatchExtractor(size, stride, name=layers[0] if layers else None)


def _random_filters(layers: list[str], **options: Any) -> RandomFilterExtractor:
    """Random multi-scale filters (textures with no download); options of :class:`RandomFilterExtractor`."""
    return RandomFilterExtractor(layers or None, **options)


# The extractor registry (``arch`` of an objective config's backbone): builder(layers, **options) → module.
# Fact ``trained``: the extractor loads pretrained weights (``weights=``, ``"auto"``, ``"random"``).
for _name, _builder, _trained, _aliases in (
    ("vgg19", vgg19, True, ()),
    ("vgg16", vgg16, True, ()),
    ("alexnet", alexnet, True, ()),
    ("squeezenet1_1", squeezenet1_1, True, ()),
    ("patches", _patches, False, ()),
    ("random_filters", _random_filters, False, ("random",)),
):
    _builder.trained = _trained  # type: ignore[attr-defined]
    if _name not in EXTRACTORS.registered_names():
        EXTRACTORS.register_value(_name, _builder, *_aliases)
del _name, _builder, _trained, _aliases


def build_extractor(arch: str, layers: list[str], **options: Any) -> nn.Module:
    """A feature extractor by registry name (:data:`featstat.registry.EXTRACTORS`) for ``layers``."""
    return EXTRACTORS.get(arch)(layers, **options)


__all__ = [
    "ARCHS",
    "DEFAULT_WEIGHTS",
    "LAYERS",
    "POOLINGS",
    "PREPROCESSINGS",
    "REGISTRY",
    "FeatureExtractor",
    "Fire",
    "FoundWeights",
    "PatchExtractor",
    "RandomFilterExtractor",
    "WeightEntry",
    "WeightsHashError",
    "WeightsNotFoundError",
    "alexnet",
    "build_backbone",
    "build_extractor",
    "deepest_layer",
    "file_sha256",
    "gather_positions",
    "get_entry",
    "import_weights",
    "init_random_",
    "layer_at",
    "layer_index",
    "layer_names",
    "list_weights",
    "load_weights",
    "min_input_size",
    "register_weights",
    "resolve_weights",
    "sample_features",
    "sample_positions",
    "squeezenet1_1",
    "vgg16",
    "vgg19",
    "weights_dir",
]
