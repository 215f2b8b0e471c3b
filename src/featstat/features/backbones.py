"""Backbone trunks (the torchvision ``features`` part) defined in-house, with torchvision's state-dict keys.

``build_backbone("vgg19")`` returns an ``nn.Sequential`` whose ``state_dict()`` keys are exactly torchvision's
``features.*`` keys without the ``features.`` prefix (``0.weight``, ``0.bias``, ``2.weight``, ...), so a
torchvision checkpoint loads after stripping that prefix (see :mod:`featstat.features.weights`).

Differences from torchvision, none of which changes the state dict:

- ReLUs are not in-place, so a tapped convolution output is not overwritten by the ReLU after it.
- ``pooling="avg"`` swaps every max pooling for an average pooling of the same window (Gatys et al. used
  average pooling for texture synthesis and style transfer).
- Random initialisation (:func:`init_random_`) is seeded: Kaiming-normal convolutions (fan-in, ReLU gain, so
  activations keep their scale layer to layer), zero biases.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_choice, make_generator
from .layers import _VGG_BLOCKS, LAYERS, check_arch

POOLINGS = ("max", "avg")


class Fire(nn.Module):
    """SqueezeNet Fire module: 1×1 squeeze → ReLU → concat(1×1 expand, 3×3 expand) → ReLU.

    Input N×``inplanes``×H×W, output N×(``expand1x1_planes`` + ``expand3x3_planes``)×H×W. Parameter names
    (``squeeze``, ``expand1x1``, ``expand3x3``) match torchvision's.
    """

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], dim=1)


def _pool(pooling: str, kernel: int, stride: int, ceil_mode: bool = False) -> nn.Module:
    if pooling == "max":
        return nn.MaxPool2d(kernel, stride, ceil_mode=ceil_mode)
    return nn.AvgPool2d(kernel, stride, ceil_mode=ceil_mode)


def _vgg(blocks: tuple[int, ...], pooling: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for b, convs in enumerate(blocks):
        out = min(64 * 2**b, 512)
        for _ in range(convs):
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU()]
            channels = out
        layers.append(_pool(pooling, 2, 2))
    return nn.Sequential(*layers)


def _alexnet(pooling: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), _pool(pooling, 3, 2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), _pool(pooling, 3, 2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(), _pool(pooling, 3, 2),
    )  # fmt: skip


def _squeezenet1_1(pooling: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2), nn.ReLU(), _pool(pooling, 3, 2, ceil_mode=True),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), _pool(pooling, 3, 2, ceil_mode=True),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), _pool(pooling, 3, 2, ceil_mode=True),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
    )  # fmt: skip


def build_backbone(
    arch: str,
    pooling: str = "max",
    last: int | None = None,
    seed: int | torch.Generator | None = 0,
    init: bool = True,
) -> nn.Sequential:
    """The ``features`` trunk of ``arch``, truncated after index ``last`` (None: the whole trunk).

    With ``init`` (default) weights are initialised by :func:`init_random_` from ``seed``; the first layers
    get the same values whatever ``last`` is. Without it they are zeros, to be overwritten by
    ``load_state_dict`` (keys ``0.weight``, ``0.bias``, ...).
    """
    check_arch(arch)
    check_choice("pooling", pooling, POOLINGS)
    # Built on the meta device (no memory, no default initialisation of layers that are cut off), then
    # the kept part is materialised: building a full VGG-19 the ordinary way costs ~0.3 s of init alone.
    with torch.device("meta"):
        if arch in _VGG_BLOCKS:
            trunk = _vgg(_VGG_BLOCKS[arch], pooling)
        elif arch == "alexnet":
            trunk = _alexnet(pooling)
        else:
            trunk = _squeezenet1_1(pooling)
    assert len(trunk) == len(LAYERS[arch])
    if last is not None:
        if not 0 <= last < len(trunk):
            raise ValueError(f"last must be an index in 0..{len(trunk) - 1} for {arch}, got {last}")
        trunk = trunk[: last + 1]
    trunk = trunk.to_empty(device="cpu")
    if init:
        return init_random_(trunk, seed)
    with torch.no_grad():
        for p in trunk.parameters():  # defined values until load_state_dict overwrites them
            p.zero_()
    return trunk


@torch.no_grad()
def init_random_(module: nn.Module, seed: int | torch.Generator | None = 0) -> nn.Module:
    """Seeded in-place initialisation: every ``Conv2d`` weight ~ N(0, 2 / fan_in) (Kaiming normal, fan-in,
    ReLU gain), biases zero. Values are drawn on the CPU in module order, so they do not depend on the
    device and the first layers are the same for any truncation. Returns ``module``."""
    generator = make_generator(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            w = torch.randn(m.weight.shape, generator=generator, dtype=torch.float32)
            m.weight.copy_(w * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.zero_()
    return module


def _out_size(m: nn.Module, n: int) -> int:
    """Spatial size after module ``m`` for input size ``n`` (0 when the input is too small)."""
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
        d = m.dilation if isinstance(m, nn.MaxPool2d) else getattr(m, "dilation", (1,))
        d = d if isinstance(d, int) else d[0]
        room = n + 2 * p - (d * (k - 1) + 1)  # PyTorch's formula; ceil mode may start a window at the edge
        ceil = getattr(m, "ceil_mode", False)
        out = -(-room // s) + 1 if ceil else room // s + 1
        if ceil and (out - 1) * s >= n + p:
            out -= 1
        return max(out, 0)
    if isinstance(m, nn.Sequential):
        for child in m:
            n = _out_size(child, n)
        return n
    return n  # ReLU, Fire (1×1 and padded 3×3 convolutions): size unchanged


def output_size(module: nn.Sequential, size: int) -> int:
    """Spatial size of the output of ``module`` (a backbone trunk) for an input of side ``size``."""
    for m in module:
        size = _out_size(m, size)
        if size < 1:
            return 0
    return size


def min_input_size(module: nn.Sequential, limit: int = 4096) -> int:
    """Smallest input side (pixels) for which every layer of ``module`` has an output of at least 1×1.

    E.g. 32 for VGG up to ``pool5``, 8 up to ``relu4_4``, 63 for AlexNet and 17 for SqueezeNet 1.1 in full
    (computed from the layer geometry with PyTorch's size formulas, ceil-mode pooling included).
    """
    for size in range(1, limit + 1):
        if output_size(module, size) >= 1:
            return size
    raise ValueError(f"module needs inputs larger than {limit} pixels")
