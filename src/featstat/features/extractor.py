"""Multi-layer feature extractors over named backbone layers.

``vgg19(["relu1_1", "relu2_1"])`` returns a :class:`FeatureExtractor`: a frozen, eval-mode backbone truncated
after the deepest requested layer, with its input normalisation built in. Call it on RGB images in [0, 1]
(N×3×H×W, float) to get ``{layer name: N×C×h×w}``.

Weights (``weights=``): a registry name (see :mod:`featstat.features.weights`; default: torchvision's file
for the architecture), a path to a ``.pth`` / ``.safetensors`` file in torchvision layout, or ``None`` for
seeded random weights (Kaiming normal, see :func:`featstat.features.backbones.init_random_`): no file
needed, the same ``seed`` always gives the same network.

Preprocessing (``preprocessing=``), applied inside ``forward`` to RGB images in [0, 1]:

- ``"torchvision"``: ``(x − mean) / std``, ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225);
- ``"caffe"``: channels reversed to BGR, ×255, minus (103.939, 116.779, 123.68); no division.

Default: the weight entry's convention ("torchvision" for random weights and unregistered files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_image, check_tensor
from .backbones import POOLINGS, build_backbone, min_input_size
from .layers import check_arch, deepest_layer, layer_index
from .weights import (
    DEFAULT_WEIGHTS,
    PREPROCESSINGS,
    _resolve,
    file_preprocessing,
    load_trunk_,
    read_state_dict,
    trunk_state,
    verify_sha256,
)

_NORMALISATION = {
    # (mean, std) applied after the channel order / scale change; caffe mean is in BGR order, 0-255
    "torchvision": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "caffe": ((103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
}

Weights = str | os.PathLike[str] | None


def _check_layers(arch: str, layers: str | Sequence[str]) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Sequence) or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"layers must be a list of layer names, got {layers!r}")
    names = list(dict.fromkeys(layers))  # order kept, duplicates dropped
    deepest_layer(arch, names)  # validates every name, raises for an empty list
    return names



def _check_module_device(images: Tensor, device: torch.device, what: str) -> None:
    """A user's module is never moved implicitly: images on another device are refused with the fix."""
    if images.device != device:
        raise ValueError(
            f"images are on {images.device} but the {what} extractor is on {device}; move the extractor with "
            f".to(images.device) (featstat never moves a module you own)"
        )

class FeatureExtractor(nn.Module):
    """Named-layer features of a fixed backbone.

    Args:
        arch: "vgg19", "vgg16", "alexnet" or "squeezenet1_1".
        layers: layer names (see :mod:`featstat.features.layers`), e.g. ``["relu1_1", "relu3_1"]``.
        weights: registry name, path to a weights file, or None (seeded random weights). "default" picks
            the architecture's torchvision entry.
        preprocessing: "torchvision", "caffe" or None (the weight entry's; "torchvision" when unknown).
        pooling: "max" (as trained) or "avg" (Gatys' choice for synthesis).
        seed: int or ``torch.Generator`` for random weights (ignored when a file is loaded).
        download: False forbids downloading a missing registry file (see :func:`resolve_weights`).
        device, dtype: where the parameters live (``.to()`` works as for any module).

    Attributes: ``arch``, ``layers`` (requested names, in order), ``weights_name`` (registry name, file path
    or None), ``preprocessing``, ``pooling``, ``min_size`` (smallest image side the layers need),
    ``backbone`` (the truncated ``nn.Sequential``), ``cache_key``.

    Parameters are frozen (``requires_grad=False``) and the module stays in eval mode; gradients still flow
    to the input images.
    """

    def __init__(
        self,
        arch: str,
        layers: str | Sequence[str],
        weights: Weights = "default",
        preprocessing: str | None = None,
        pooling: str = "max",
        seed: int | torch.Generator = 0,
        *,
        download: bool | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        arch = check_arch(arch)
        names = _check_layers(arch, layers)
        check_choice("pooling", pooling, POOLINGS)
        if preprocessing is not None:
            check_choice("preprocessing", preprocessing, PREPROCESSINGS)
        last = layer_index(arch, deepest_layer(arch, names))
        if isinstance(weights, str) and weights == "default":
            weights = DEFAULT_WEIGHTS[arch]
        backbone = build_backbone(arch, pooling, last, seed=seed, init=weights is None)
        if weights is None:
            weights_key: object = ("random", seed if isinstance(seed, int) else id(self))
            default_prep = "torchvision"
        else:
            path, entry = _resolve(weights, download)
            if entry is not None:
                if entry.arch != arch:
                    raise ValueError(f"weights {entry.name!r} are for {entry.arch}, not {arch}")
                if layer_index(arch, entry.deepest) < last:
                    raise ValueError(
                        f"weights {entry.name!r} provide {arch} layers only up to {entry.deepest}, but "
                        f"{names} need {deepest_layer(arch, names)}; choose layers up to {entry.deepest}, "
                        f"pass weights=None (seeded random weights) or another file (featstat weights list)"
                    )
                verify_sha256(path, entry)
            load_trunk_(backbone, trunk_state(read_state_dict(path)), arch, source=f"weights file {path}")
            weights_key = entry.name if entry is not None else os.path.realpath(path)
            default_prep = (
                entry.preprocessing if entry is not None else file_preprocessing(path) or "torchvision"
            )
        self._seed = seed
        self._setup(arch, names, backbone, preprocessing or default_prep, pooling,
                    None if weights is None else str(weights), weights_key)  # fmt: skip
        self.to(device=device, dtype=dtype)

    def _setup(
        self, arch: str, names: list[str], backbone: nn.Sequential, preprocessing: str, pooling: str,
        weights_name: str | None, weights_key: object,
    ) -> None:  # fmt: skip
        self.arch, self.layers, self.preprocessing, self.pooling = arch, names, preprocessing, pooling
        self.weights_name: str | None = weights_name
        self._weights_key = weights_key
        self.backbone = backbone.requires_grad_(False).eval()
        self._taps = {layer_index(arch, n): n for n in names}
        self.min_size = min_input_size(backbone)
        mean, std = _NORMALISATION[preprocessing]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def cache_key(self) -> tuple:
        """Hashable identity of the computation: (arch, weights, preprocessing, pooling).

        Two extractors with equal keys give identical features for every layer both compute, so one pass of
        an extractor covering the union of their layers (:meth:`with_layers`) can serve both.
        """
        return (self.arch, self._weights_key, self.preprocessing, self.pooling)

    def with_layers(self, layers: str | Sequence[str]) -> FeatureExtractor:
        """An extractor with the same weights and settings for other ``layers``.

        Layers up to this extractor's depth share its modules (no copy, no reload); deeper layers need a
        rebuild, which is only possible for registry/file weights and integer seeds.
        """
        names = _check_layers(self.arch, layers)
        last = layer_index(self.arch, deepest_layer(self.arch, names))
        if last >= len(self.backbone):
            if not isinstance(self._seed, int) and self.weights_name is None:
                raise ValueError("layers: cannot deepen an extractor seeded with a torch.Generator")
            return FeatureExtractor(
                self.arch, names, self.weights_name, self.preprocessing, self.pooling, seed=self._seed,
                device=self.mean.device, dtype=self.mean.dtype,
            )  # fmt: skip
        new = FeatureExtractor.__new__(FeatureExtractor)
        nn.Module.__init__(new)
        new._seed = self._seed
        new._setup(self.arch, names, self.backbone[: last + 1], self.preprocessing, self.pooling,
                   self.weights_name, self._weights_key)  # fmt: skip
        return new.to(device=self.mean.device, dtype=self.mean.dtype)

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Always stays in eval mode (the backbone is a fixed feature function)."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """RGB images in [0, 1] → the network's input convention (see the module docstring)."""
        x = images.flip(1) * 255.0 if self.preprocessing == "caffe" else images
        return (x - self.mean.to(x)) / self.std.to(x)

    def check_images(self, images: object, *, validate: bool | None = None) -> Tensor:
        """Metadata checks (rank, 3 channels, float dtype, large enough), and the values (finite, in [0, 1]:
        one ``aminmax``) when ``validate`` is True, or None and value checks are on (the default; see
        :func:`featstat.set_value_checks`)."""
        x = check_tensor("images", images, ndim=4, channels=3)
        h, w = x.shape[-2:]
        if h < self.min_size or w < self.min_size:
            deepest = deepest_layer(self.arch, self.layers)
            raise ValueError(
                f"images must be at least {self.min_size}×{self.min_size} pixels for {self.arch} layer "
                f"{deepest}, got shape {tuple(x.shape)}; upsample the images or choose shallower layers"
            )
        check_image("images", x.detach(), validate=validate)  # values: per the switch unless given
        return x

    def forward(self, images: Tensor, *, validate: bool | None = None) -> dict[str, Tensor]:
        """Features of ``images`` (N×3×H×W, RGB, float, [0, 1]) at every requested layer.

        Returns ``{name: N×C×h×w}`` in the order of ``self.layers``. Images are cast to the parameters'
        dtype. Values are checked (finite, in [0, 1]: one ``aminmax``) unless value checks are off
        (:func:`featstat.set_value_checks`, ``FEATSTAT_VALUE_CHECKS=0``) or ``validate=False`` is passed.
        """
        x = self.check_images(images, validate=validate)
        _check_module_device(x, self.mean.device, self.arch)
        dtype = self.mean.dtype
        x = self.preprocess(x if x.dtype == dtype else x.to(dtype))
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self.backbone):
            x = module(x)
            if index in self._taps:
                out[self._taps[index]] = x
        return {name: out[name] for name in self.layers}

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, layers={self.layers}, weights={self.weights_name!r}, "
            f"preprocessing={self.preprocessing!r}, pooling={self.pooling!r}"
        )


def vgg19(
    layers: str | Sequence[str],
    weights: Weights = "vgg19",
    preprocessing: str | None = None,
    pooling: str = "max",
    seed: int | torch.Generator = 0,
    *,
    download: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> FeatureExtractor:
    """VGG-19 feature extractor; arguments as for :class:`FeatureExtractor`.

    ``weights`` defaults to "vgg19", torchvision's ImageNet file (looked up in $FEATSTAT_WEIGHTS and the torch
    hub cache, downloaded when allowed, else a ``WeightsNotFoundError`` saying how to get it); pass a registry
    name such as "vgg19-caffe" (Gatys' Caffe weights), a file path, or None for seeded random weights.

    Example::

        vgg = featstat.features.vgg19(["relu1_1", "relu2_1", "relu3_1"], weights=None, seed=0)
        feats = vgg(images)  # N×3×H×W RGB in [0, 1] → {"relu1_1": N×64×H×W, "relu2_1": N×128×H/2×W/2, ...}
    """
    return FeatureExtractor("vgg19", layers, weights, preprocessing, pooling, seed,
                            download=download, device=device, dtype=dtype)  # fmt: skip


def vgg16(
    layers: str | Sequence[str],
    weights: Weights = "vgg16",
    preprocessing: str | None = None,
    pooling: str = "max",
    seed: int | torch.Generator = 0,
    *,
    download: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> FeatureExtractor:
    """VGG-16 feature extractor; arguments as for :class:`FeatureExtractor` (default weights "vgg16",
    torchvision's ImageNet file; None gives seeded random weights).

    Example::

        vgg = featstat.features.vgg16(["conv4_3"], weights=None)
        feats = vgg(images)["conv4_3"]  # N×512×H/8×W/8
    """
    return FeatureExtractor("vgg16", layers, weights, preprocessing, pooling, seed,
                            download=download, device=device, dtype=dtype)  # fmt: skip


def alexnet(
    layers: str | Sequence[str],
    weights: Weights = "alexnet",
    preprocessing: str | None = None,
    pooling: str = "max",
    seed: int | torch.Generator = 0,
    *,
    download: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> FeatureExtractor:
    """AlexNet feature extractor (torchvision layout); arguments as for :class:`FeatureExtractor` (default
    weights "alexnet"; None gives seeded random weights). Needs images of at least 63 pixels for pool5.

    Example::

        net = featstat.features.alexnet(["relu1", "relu5"], weights=None)
        feats = net(images)  # 224×224 images → relu1: N×64×55×55, relu5: N×256×13×13
    """
    return FeatureExtractor("alexnet", layers, weights, preprocessing, pooling, seed,
                            download=download, device=device, dtype=dtype)  # fmt: skip


def squeezenet1_1(
    layers: str | Sequence[str],
    weights: Weights = "squeezenet1_1",
    preprocessing: str | None = None,
    pooling: str = "max",
    seed: int | torch.Generator = 0,
    *,
    download: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> FeatureExtractor:
    """SqueezeNet 1.1 feature extractor; arguments as for :class:`FeatureExtractor` (default weights
    "squeezenet1_1"; None gives seeded random weights). Layers: conv1, relu1, pool1, fire2 ... fire9.

    Example::

        net = featstat.features.squeezenet1_1(["fire3", "fire9"], weights=None)
        feats = net(images)  # 224×224 images → fire3: N×128×55×55, fire9: N×512×13×13
    """
    return FeatureExtractor("squeezenet1_1", layers, weights, preprocessing, pooling, seed,
                            download=download, device=device, dtype=dtype)  # fmt: skip
