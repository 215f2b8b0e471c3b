"""Layer-name tables: paper layer names → index in the torchvision ``features`` ``nn.Sequential``.

One table per backbone, used by everything that selects layers by name (extractors, losses, the CLI):

- VGG-19 / VGG-16: ``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}`` (block b = 1..5; VGG-19 has 2, 2, 4, 4, 4
  convs per block, VGG-16 has 2, 2, 3, 3, 3), e.g. ``conv1_1`` → 0, ``relu1_1`` → 1, ``pool1`` → 4,
  ``conv2_1`` → 5.
- AlexNet (torchvision layout, 64-192-384-256-256 channels): ``conv1, relu1, pool1, conv2, relu2, pool2,
  conv3, relu3, conv4, relu4, conv5, relu5, pool5`` → 0..12.
- SqueezeNet 1.1: ``conv1, relu1, pool1, fire2, fire3, pool3, fire4, fire5, pool5, fire6, fire7, fire8,
  fire9`` → 0..12 (a Fire module's output is already rectified).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Convolutions per block (VGG) — the torchvision configurations "E" (VGG-19) and "D" (VGG-16).
_VGG_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}


def _vgg_table(blocks: tuple[int, ...]) -> dict[str, int]:
    names: list[str] = []
    for b, convs in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return {name: index for index, name in enumerate(names)}


def _table(names: str) -> dict[str, int]:
    return {name: index for index, name in enumerate(names.split())}


#: arch → {layer name: index in the ``features`` Sequential}, in network order.
LAYERS: dict[str, dict[str, int]] = {
    "vgg19": _vgg_table(_VGG_BLOCKS["vgg19"]),
    "vgg16": _vgg_table(_VGG_BLOCKS["vgg16"]),
    "alexnet": _table("conv1 relu1 pool1 conv2 relu2 pool2 conv3 relu3 conv4 relu4 conv5 relu5 pool5"),
    "squeezenet1_1": _table("conv1 relu1 pool1 fire2 fire3 pool3 fire4 fire5 pool5 fire6 fire7 fire8 fire9"),
}

#: The backbones featstat knows.
ARCHS: tuple[str, ...] = tuple(LAYERS)


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_arch(arch: str) -> str:
    """Return ``arch`` if it is a known backbone ("vgg19", "vgg16", "alexnet", "squeezenet1_1")."""
    if arch not in LAYERS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}{_did_you_mean(str(arch), ARCHS)}")
    return arch


def layer_names(arch: str) -> list[str]:
    """All layer names of ``arch`` in network order (shallow to deep)."""
    return list(LAYERS[check_arch(arch)])


def layer_index(arch: str, name: str) -> int:
    """Index of layer ``name`` in the torchvision ``features`` Sequential of ``arch``.

    Raises ``ValueError`` listing the valid names (with a "did you mean" suggestion) for an unknown name.
    """
    table = LAYERS[check_arch(arch)]
    if name not in table:
        raise ValueError(
            f"layers: unknown {arch} layer {name!r}{_did_you_mean(str(name), table)} "
            f"Valid names: {', '.join(table)}"
        )
    return table[name]


def deepest_layer(arch: str, names: Iterable[str]) -> str:
    """The deepest (largest-index) of ``names``; raises ``ValueError`` for an empty or unknown name."""
    names = list(names)
    if not names:
        raise ValueError(f"layers must name at least one {arch} layer, got an empty list")
    return max(names, key=lambda n: layer_index(arch, n))


def layer_at(arch: str, index: int) -> str:
    """The layer name at ``index`` of the ``features`` Sequential of ``arch``."""
    for name, i in LAYERS[check_arch(arch)].items():
        if i == index:
            return name
    raise ValueError(f"{arch} has no layer at index {index} (0..{len(LAYERS[arch]) - 1})")
