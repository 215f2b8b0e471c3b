"""Named-layer feature extractors, raw-patch features, pretrained-weight registry and feature sampling.

Example::

    from featstat import features
    vgg = features.vgg19(["relu1_1", "relu2_1", "relu3_1"], weights="vgg19-caffe-normalised-to-relu3_1")
    feats = vgg(images)                  # images: N×3×H×W RGB in [0, 1] → {"relu1_1": N×64×H×W, ...}
    rand = features.vgg19(["relu4_2"], weights=None, seed=0)   # seeded random weights, no file needed
"""

from .backbones import POOLINGS, Fire, build_backbone, init_random_, min_input_size
from .extractor import FeatureExtractor, alexnet, squeezenet1_1, vgg16, vgg19
from .layers import ARCHS, LAYERS, deepest_layer, layer_at, layer_index, layer_names
from .patches import PatchExtractor
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
    "WeightEntry",
    "WeightsHashError",
    "WeightsNotFoundError",
    "alexnet",
    "build_backbone",
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
