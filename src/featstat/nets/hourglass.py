"""Generator networks for Deep Image Prior (Ulyanov, Vedaldi and Lempitsky 2018; thesis chapter 7).

A Deep Image Prior fits the weights of a randomly initialised generator ``x = f_θ(z)`` to one degraded image;
the architecture is the prior. This module holds the architectures the chapter uses and compares:

- :class:`Skip` — the "skip" hourglass of the paper and of its public code, with every knob: depth (number of
  levels), channels down / up / skip per level, kernel sizes, downsampling by strided convolution (or
  average / max pooling after a stride-1 convolution), bilinear or nearest upsampling, reflection or zero
  padding, batch normalisation, LeakyReLU(0.2) and a sigmoid output (values in (0, 1)).
- :func:`encoder_decoder` — the same hourglass without skip connections (Fig. 7.8 "hourglass" / the vase
  inpainting net).
- :class:`UNet` — the U-Net variant of the public code (max-pool down, deconvolution or interpolation up,
  full-width skip concatenation), and :class:`ResNet` — the residual network (no down/upsampling).
- :func:`input_code` — the fixed input ``z``: uniform noise × 0.1 (default, 32 channels), Gaussian noise, or a
  2-channel meshgrid.

Layer structure of level ``i`` of :class:`Skip` (input ``x_i`` with ``s_i × s_i`` pixels, ``s_0`` = image)::

    skip_i = act(BN(conv_{k_skip}(x_i)))                                   # channels_skip[i]; absent if 0
    d      = act(BN(conv_{k_down}(x_i, stride 2)));  d = act(BN(conv_{k_down}(d)))     # channels_down[i]
    d      = level_{i+1}(d)                                                # unless i is the deepest level
    u      = upsample×2(d), cropped to s_i                                 # nearest / bilinear
    y_i    = act(BN(conv_{k_up}(BN(concat(skip_i, u)))))                   # channels_up[i]
    y_i    = act(BN(conv_1×1(y_i)))                                        # when need_1x1_up
    output = sigmoid(conv_1×1(y_0))

Defaults are the public reference settings (``design.md``): 5 levels of 128 channels down and up, 4 skip
channels, 3×3 convolutions, strided-convolution downsampling, bilinear upsampling, reflection padding, BN,
LeakyReLU(0.2), sigmoid — 2.2 M parameters for a 32-channel input code. Any spatial size works (odd sizes
too: upsampled maps are centre-cropped to the skip branch's size, as the reference ``Concat`` does), as long
as the deepest map keeps more pixels than the reflection padding needs (:attr:`Skip.min_size`).

The networks stay in training mode: batch normalisation always uses the statistics of the current input
(batch 1 → per-channel statistics over the image), as in the reference code, which never calls ``eval()``.

Performance options (see ``docs/benchmarks-prior.md``): the modules work in channels_last memory format
(``net.to(memory_format=torch.channels_last)``) and under ``torch.autocast`` (bfloat16 on CPU and CUDA,
float16 on CUDA); the Deep Image Prior engine (:mod:`featstat.prior`) applies those for you.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_positive, make_generator
from ..registry import NETWORKS as _NETWORKS
from ..registry import RegistryView

__all__ = [
    "ACTIVATIONS",
    "DOWNSAMPLES",
    "INPUT_CODES",
    "NETWORKS",
    "NORMS",
    "PADDINGS",
    "UPSAMPLES",
    "ResNet",
    "Skip",
    "UNet",
    "build_network",
    "count_parameters",
    "encoder_decoder",
    "input_code",
]

PADDINGS = ("reflection", "zero", "replication")
DOWNSAMPLES = ("stride", "avg", "max")
UPSAMPLES = ("nearest", "bilinear")
NORMS = ("batch", "instance", "none")
ACTIVATIONS = ("leaky_relu", "relu", "elu", "silu", "none")
INPUT_CODES = ("noise", "normal", "meshgrid")

_PAD_MODE = {"reflection": "reflect", "zero": "zeros", "replication": "replicate"}


# ------------------------------------------------------------------------------------------- building blocks


def _activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "elu":
        return nn.ELU(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    return nn.Identity()


def _norm(name: str, channels: int) -> nn.Module:
    check_choice("norm", name, NORMS)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _conv(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: str = "reflection", bias: bool = True
) -> nn.Conv2d:
    """A convolution that keeps the size (stride 1) or gives ceil(s / stride) (odd kernels), padded as asked.

    Reflection padding + convolution is what the reference builds as ``ReflectionPad2d`` followed by an
    unpadded ``Conv2d``; ``padding_mode="reflect"`` computes exactly that. 1×1 convolutions need no padding
    and get none (a zero-width reflection pad would only copy the input: slow in channels_last).
    """
    mode = _PAD_MODE[padding] if kernel > 1 else "zeros"
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, padding_mode=mode, bias=bias)


def _centre_crop(x: Tensor, size: Sequence[int]) -> Tensor:
    h, w = int(size[0]), int(size[1])
    dh, dw = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    if dh == 0 and dw == 0 and x.shape[-2] == h and x.shape[-1] == w:
        return x
    return x[..., dh : dh + h, dw : dw + w]


def _per_level(name: str, value: Any, depth: int, kind: type) -> list:
    """A per-level list from one value or a sequence of ``depth`` values."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        values = [value] * depth
    else:
        values = list(value)
    if len(values) != depth:
        raise ValueError(
            f"{name} must have one entry per level ({depth}, the length of channels_down), got {value!r}"
        )
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must hold {kind.__name__} values, got {value!r}")
    return values


def _check_channels(name: str, values: Sequence[int], *, allow_zero: bool) -> list[int]:
    if isinstance(values, int) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of channel counts (one per level), got {values!r}")
    out = []
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (v == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else ">= 1"
            raise ValueError(f"{name} must hold integers {bound}, got {list(values)!r}")
        out.append(v)
    return out


def _check_kernel(name: str, k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (1, 3, 5, 7, ...), got {k!r}")
    return k


def _check_positive_int(name: str, v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


# ---------------------------------------------------------------------------------------------- skip network


class _Level(nn.Module):
    """One level of the skip hourglass (see the module docstring for the layer order)."""

    def __init__(
        self,
        c_in: int,
        c_down: int,
        c_up: int,
        c_skip: int,
        c_deeper_out: int,
        deeper: nn.Module | None,
        *,
        k_down: int,
        k_up: int,
        k_skip: int,
        downsample: str,
        upsample: str,
        padding: str,
        norm: str,
        activation: str,
        need_1x1_up: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        if c_skip > 0:
            self.skip: nn.Module | None = nn.Sequential(
                _conv(c_in, c_skip, k_skip, padding=padding, bias=bias),
                _norm(norm, c_skip),
                _activation(activation),
            )
        else:
            self.skip = None
        stride = 2 if downsample == "stride" else 1
        down: list[nn.Module] = [_conv(c_in, c_down, k_down, stride=stride, padding=padding, bias=bias)]
        if downsample == "avg":
            down.append(nn.AvgPool2d(2, 2, ceil_mode=True))
        elif downsample == "max":
            down.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        down += [_norm(norm, c_down), _activation(activation)]
        down += [_conv(c_down, c_down, k_down, padding=padding, bias=bias)]
        down += [_norm(norm, c_down), _activation(activation)]
        self.down = nn.Sequential(*down)
        self.deeper = deeper
        c_cat = c_skip + c_deeper_out
        self.merge_norm = _norm(norm, c_cat)
        up: list[nn.Module] = [
            _conv(c_cat, c_up, k_up, padding=padding, bias=bias), _norm(norm, c_up), _activation(activation)
        ]  # fmt: skip
        if need_1x1_up:
            up += [
                _conv(c_up, c_up, 1, padding=padding, bias=bias),
                _norm(norm, c_up),
                _activation(activation),
            ]
        self.up = nn.Sequential(*up)

    def forward(self, x: Tensor) -> Tensor:
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        u = F.interpolate(d, scale_factor=2.0, mode=self.upsample)
        u = _centre_crop(u, x.shape[-2:])
        if self.skip is not None:
            u = torch.cat([self.skip(x), u], dim=1)
        return self.up(self.merge_norm(u))


class Skip(nn.Module):
    """The "skip" hourglass generator of Deep Image Prior (encoder-decoder with skip connections).

    Args:
        in_channels: channels of the input code z (reference: 32 for noise, 2 for a meshgrid, 3 for the flash
            image of flash/no-flash).
        out_channels: channels of the output image (3 for RGB, 1 for grayscale).
        channels_down, channels_up, channels_skip: channels per level (same length = the depth). A skip width
            of 0 removes that level's skip connection. Reference default: ``[128] * 5``, ``[128] * 5``,
            ``[4] * 5``.
        kernel_down, kernel_up: odd kernel sizes, one value or one per level (reference: 3; feature inversion
            uses ``[7, 7, 5, 5, 3, 3]``). kernel_skip: kernel of the skip convolutions (reference: 1).
        downsample: "stride" (3×3 convolution with stride 2; reference default), "avg" or "max" (stride-1
            convolution, then 2×2 pooling) — one value or one per level.
        upsample: "bilinear" (reference default for denoising and SR) or "nearest" (inpainting) — one value
            or one per level (flash/no-flash: ``["nearest", "nearest", "bilinear", "bilinear", "bilinear"]``).
            Bilinear uses ``align_corners=False`` (PyTorch's default since 0.4).
        padding: "reflection" (reference), "zero" or "replication".
        norm: "batch" (reference), "instance" or "none". activation: "leaky_relu" (slope 0.2, reference),
            "relu", "elu", "silu" or "none".
        need_1x1_up: add the 1×1 convolution + BN + activation after each up convolution (reference: True;
            the library-inpainting depth study sets False).
        sigmoid: squash the output to (0, 1) (reference: True). bias: convolution biases (reference: True).
        seed: seeds the weight initialisation (PyTorch's default Kaiming-uniform init, as in the reference);
            the caller's global random stream is left as it was. None draws from the global RNG.

    Input: N×in_channels×H×W. Output: N×out_channels×H×W, in (0, 1) with the sigmoid.
    """

    def __init__(
        self,
        in_channels: int = 32,
        out_channels: int = 3,
        channels_down: Sequence[int] = (128, 128, 128, 128, 128),
        channels_up: Sequence[int] = (128, 128, 128, 128, 128),
        channels_skip: Sequence[int] = (4, 4, 4, 4, 4),
        *,
        kernel_down: int | Sequence[int] = 3,
        kernel_up: int | Sequence[int] = 3,
        kernel_skip: int = 1,
        downsample: str | Sequence[str] = "stride",
        upsample: str | Sequence[str] = "bilinear",
        padding: str = "reflection",
        norm: str = "batch",
        activation: str = "leaky_relu",
        need_1x1_up: bool = True,
        sigmoid: bool = True,
        bias: bool = True,
        seed: int | torch.Generator | None = 0,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        down = _check_channels("channels_down", channels_down, allow_zero=False)
        up = _check_channels("channels_up", channels_up, allow_zero=False)
        skip = _check_channels("channels_skip", channels_skip, allow_zero=True)
        depth = len(down)
        if len(up) != depth or len(skip) != depth:
            raise ValueError(
                f"channels_down, channels_up and channels_skip must have the same length (the depth), got "
                f"{len(down)}, {len(up)} and {len(skip)}"
            )
        k_down = [_check_kernel("kernel_down", k) for k in _per_level("kernel_down", kernel_down, depth, int)]
        k_up = [_check_kernel("kernel_up", k) for k in _per_level("kernel_up", kernel_up, depth, int)]
        k_skip = _check_kernel("kernel_skip", kernel_skip)
        downs = [
            check_choice("downsample", d, DOWNSAMPLES)
            for d in _per_level("downsample", downsample, depth, str)
        ]
        ups = [check_choice("upsample", u, UPSAMPLES) for u in _per_level("upsample", upsample, depth, str)]
        check_choice("padding", padding, PADDINGS)
        check_choice("norm", norm, NORMS)
        check_choice("activation", activation, ACTIVATIONS)
        self.depth, self.padding = depth, padding
        self.channels_down, self.channels_up, self.channels_skip = down, up, skip
        self.kernel_down, self.kernel_up, self.downsample_modes = k_down, k_up, downs
        self.kernel_skip, self.norm = k_skip, norm

        with _seeded(seed):
            deeper: nn.Module | None = None
            for i in reversed(range(depth)):
                c_in = in_channels if i == 0 else down[i - 1]
                c_deeper_out = down[i] if i == depth - 1 else up[i + 1]
                deeper = _Level(
                    c_in, down[i], up[i], skip[i], c_deeper_out, deeper,
                    k_down=k_down[i], k_up=k_up[i], k_skip=k_skip, downsample=downs[i], upsample=ups[i],
                    padding=padding, norm=norm, activation=activation, need_1x1_up=need_1x1_up, bias=bias,
                )  # fmt: skip
            assert deeper is not None
            self.body = deeper
            self.head = _conv(up[0], out_channels, 1, padding=padding, bias=bias)
        self.sigmoid = sigmoid

    @property
    def min_size(self) -> int:
        """Smallest image side this network accepts.

        Every level halves the size (ceil). A k×k convolution with reflection or replication padding needs
        maps of more than k // 2 pixels, and batch/instance normalisation (batch of 1) needs more than one
        value per channel, so the deepest maps must keep 2 pixels (3×3 kernels).
        """
        normed = self.norm != "none"

        def pad_need(k: int) -> int:
            return 1 if self.padding == "zero" else k // 2 + 1

        size = 2 if normed else 1  # what the deepest maps need
        for i in reversed(range(self.depth)):
            need_deep = max(pad_need(self.kernel_down[i]), size, 2 if normed else 1)
            size = max(2 * need_deep - 1, pad_need(self.kernel_up[i]), pad_need(self.kernel_down[i]))
            if self.channels_skip[i]:
                size = max(size, pad_need(self.kernel_skip))
        return size

    def check_input(self, z: object) -> Tensor:
        """Cheap checks of an input code: N×in_channels×H×W floating tensor, at least :attr:`min_size`."""
        if not isinstance(z, Tensor):
            raise ValueError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if z.dim() != 4 or z.shape[1] != self.in_channels:
            raise ValueError(
                f"z must have shape N×{self.in_channels}×H×W (this network's in_channels), got "
                f"{tuple(z.shape)}; build the code with input_code(..., channels={self.in_channels})"
            )
        if not z.is_floating_point():
            raise ValueError(f"z must be a floating-point tensor, got {z.dtype}")
        h, w = z.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(
                f"z is {h}×{w} pixels but this {self.depth}-level network needs at least "
                f"{self.min_size}×{self.min_size} (each level halves the size; the deepest maps need 2 "
                f"pixels); use a larger image or fewer levels (shorter channels_down/up/skip)"
            )
        return z

    def forward(self, z: Tensor) -> Tensor:
        self.check_input(z)
        out = self.head(self.body(z))
        return torch.sigmoid(out) if self.sigmoid else out

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, depth={self.depth}, "
            f"channels_down={self.channels_down}, channels_up={self.channels_up}, "
            f"channels_skip={self.channels_skip}, padding={self.padding!r}"
        )


def encoder_decoder(
    in_channels: int = 32,
    out_channels: int = 3,
    channels: Sequence[int] = (128, 128, 128, 128, 128),
    **kwargs: Any,
) -> Skip:
    """The hourglass without skip connections (``channels_skip = 0`` at every level).

    ``channels`` is used for both the down and up paths; other keywords as :class:`Skip`. The vase-inpainting
    setting of the reference code is ``encoder_decoder(2, 3, [128] * 5, upsample="nearest")`` on a meshgrid.
    """
    ch = _check_channels("channels", channels, allow_zero=False)
    return Skip(in_channels, out_channels, ch, ch, [0] * len(ch), **kwargs)


# ---------------------------------------------------------------------------------------------------- U-Net


class _DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: str | None, padding: str, bias: bool) -> None:
        layers: list[nn.Module] = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers.append(_conv(a, b, 3, padding=padding, bias=bias))
            if norm is not None:
                layers.append(_norm(norm, b))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _UNetUp(nn.Module):
    def __init__(self, c_deep: int, c_out: int, upsample: str, padding: str, bias: bool) -> None:
        super().__init__()
        self.mode = upsample
        if upsample == "deconv":
            self.up: nn.Module = nn.ConvTranspose2d(c_deep, c_out, 4, stride=2, padding=1)
        else:
            self.up = _conv(c_deep, c_out, 3, padding=padding, bias=bias)
        self.conv = _DoubleConv(2 * c_out, c_out, None, padding, bias)

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        if self.mode == "deconv":
            u = self.up(deep)
        else:
            u = self.up(F.interpolate(deep, scale_factor=2.0, mode=self.mode))
        u = _centre_crop(u, skip.shape[-2:])
        return self.conv(torch.cat([u, skip], dim=1))


class UNet(nn.Module):
    """The U-Net variant of the Deep Image Prior code (compared with the skip hourglass in Fig. 7.8).

    Widths ``[64, 128, 256, 512, 1024] // feature_scale`` (+ ``more_layers`` extra levels at the last width);
    each level: 2×2 max-pool, then two 3×3 convolutions + norm + ReLU; the up path upsamples (4×4
    transposed convolution with stride 2, or nearest/bilinear interpolation followed by a 3×3 convolution),
    concatenates the encoder map of the same level and applies two 3×3 convolutions + ReLU; a 1×1
    convolution and a sigmoid give the image. Reference inpainting setting: ``UNet(1, 3, feature_scale=8,
    more_layers=1, upsample="deconv", padding="zero", norm="instance")`` with learning rate 0.001.

    Input N×in_channels×H×W, output N×out_channels×H×W (any H, W ≥ 2^(4 + more_layers)).
    """

    def __init__(
        self,
        in_channels: int = 32,
        out_channels: int = 3,
        *,
        feature_scale: int = 4,
        more_layers: int = 0,
        upsample: str = "deconv",
        padding: str = "zero",
        norm: str = "instance",
        sigmoid: bool = True,
        bias: bool = True,
        seed: int | torch.Generator | None = 0,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        _check_positive_int("out_channels", out_channels)
        _check_positive_int("feature_scale", feature_scale)
        if not isinstance(more_layers, int) or isinstance(more_layers, bool) or more_layers < 0:
            raise ValueError(f"more_layers must be an integer >= 0, got {more_layers!r}")
        check_choice("upsample", upsample, ("deconv", *UPSAMPLES))
        check_choice("padding", padding, PADDINGS)
        check_choice("norm", norm, NORMS)
        widths = [max(1, c // feature_scale) for c in (64, 128, 256, 512, 1024)]
        widths += [widths[-1]] * more_layers
        self.levels = len(widths) - 1
        self.min_size = 2**self.levels + 1  # the deepest maps need 2 pixels (padding, normalisation)
        with _seeded(seed):
            self.start = _DoubleConv(in_channels, widths[0], norm, padding, bias)
            self.downs = nn.ModuleList(
                nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True), _DoubleConv(a, b, norm, padding, bias))
                for a, b in itertools.pairwise(widths)
            )
            self.ups = nn.ModuleList(
                _UNetUp(b, a, upsample, padding, bias) for a, b in itertools.pairwise(widths)
            )
            self.head = _conv(widths[0], out_channels, 1, padding=padding, bias=bias)
        self.sigmoid = sigmoid

    def forward(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.dim() != 4 or z.shape[1] != self.in_channels:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z must have shape N×{self.in_channels}×H×W, got {shape}")
        if min(z.shape[-2:]) < self.min_size:
            raise ValueError(
                f"z is {tuple(z.shape[-2:])} pixels but this U-Net needs at least {self.min_size} per "
                f"side; use a larger image or fewer levels (more_layers)"
            )
        feats = [self.start(z)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        x = feats[-1]
        for i in reversed(range(self.levels)):
            x = self.ups[i](x, feats[i])
        out = self.head(x)
        return torch.sigmoid(out) if self.sigmoid else out


# --------------------------------------------------------------------------------------------------- ResNet


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: str, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(norm, channels),
            _activation(activation),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    """The residual-network variant of the Deep Image Prior code (Fig. 7.8): no down- or upsampling.

    A 3×3 convolution + activation, ``blocks`` residual blocks (3×3 conv, norm, activation, 3×3 conv, norm,
    plus the identity), a 3×3 convolution + norm, then a 3×3 convolution to ``out_channels`` and a sigmoid.
    Reference inpainting setting: ``ResNet(1, 3, blocks=8, channels=32)`` with learning rate 0.001.
    """

    def __init__(
        self,
        in_channels: int = 32,
        out_channels: int = 3,
        *,
        blocks: int = 8,
        channels: int = 32,
        norm: str = "batch",
        activation: str = "leaky_relu",
        padding: str = "reflection",
        sigmoid: bool = True,
        seed: int | torch.Generator | None = 0,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        _check_positive_int("out_channels", out_channels)
        _check_positive_int("blocks", blocks)
        _check_positive_int("channels", channels)
        check_choice("padding", padding, PADDINGS)
        with _seeded(seed):
            self.body = nn.Sequential(
                _conv(in_channels, channels, 3, padding=padding), _activation(activation),
                *[_Residual(channels, norm, activation) for _ in range(blocks)],
                nn.Conv2d(channels, channels, 3, 1, 1), _norm(norm, channels),
                _conv(channels, out_channels, 3, padding=padding),
            )  # fmt: skip
        self.sigmoid = sigmoid
        self.min_size = 2

    def forward(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.dim() != 4 or z.shape[1] != self.in_channels:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z must have shape N×{self.in_channels}×H×W, got {shape}")
        out = self.body(z)
        return torch.sigmoid(out) if self.sigmoid else out


# ---------------------------------------------------------------------------------------------- input codes


def input_code(
    kind: str,
    channels: int,
    size: tuple[int, int],
    *,
    scale: float = 0.1,
    seed: int | torch.Generator | None = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The fixed network input z, 1×channels×H×W.

    Args:
        kind: "noise" — uniform noise in [0, scale) (reference: ``scale = 0.1``, i.e. U(0, 1) × 1/10, 32
            channels); "normal" — Gaussian noise × scale; "meshgrid" — 2 channels, x and y coordinates from 0
            to 1 (``channels`` must be 2; used for the vase inpainting).
        channels: number of channels. size: (H, W).
        scale: multiplies the noise (ignored for the meshgrid).
        seed: int or torch.Generator (on ``device``) for the noise.
    """
    check_choice("kind", kind, INPUT_CODES)
    _check_positive_int("channels", channels)
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    h, w = size
    if kind == "meshgrid":
        if channels != 2:
            raise ValueError(
                f"a meshgrid code has 2 channels (x, y), got channels={channels}; pass channels=2"
            )
        ys = torch.linspace(0, 1, h, dtype=torch.float64) if h > 1 else torch.zeros(1, dtype=torch.float64)
        xs = torch.linspace(0, 1, w, dtype=torch.float64) if w > 1 else torch.zeros(1, dtype=torch.float64)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y])[None].to(device=device, dtype=dtype)
    check_positive("scale", scale)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = make_generator(seed, dev) if seed is not None else None
    shape = (1, channels, h, w)
    if kind == "noise":
        z = torch.rand(shape, generator=g, device=dev, dtype=torch.float32)
    else:
        z = torch.randn(shape, generator=g, device=dev, dtype=torch.float32)
    return (z * scale).to(dtype)


# ----------------------------------------------------------------------------------------------- registry


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@contextlib.contextmanager
def _seeded(seed: int | torch.Generator | None) -> Iterator[None]:
    """Run a block (weight initialisation) with torch's CPU generator seeded, restoring the caller's random
    stream afterwards. ``seed=None`` uses (and advances) the global generator as it is."""
    if seed is None:
        yield
        return
    if not isinstance(seed, (int, torch.Generator)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    value = seed if isinstance(seed, int) else int(torch.randint(0, 2**62, (1,), generator=seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(value)
        yield


_HOURGLASS = (("skip", Skip), ("encoder_decoder", encoder_decoder), ("unet", UNet), ("resnet", ResNet))
for _name, _builder in _HOURGLASS:
    _builder.family = "hourglass"  # type: ignore[attr-defined]  # fact: Deep Image Prior networks
    if _name not in _NETWORKS.registered_names():
        _NETWORKS.register_value(_name, _builder)
del _name, _builder

#: Architectures by name (what the CLI's ``--net`` and :func:`build_network` accept): the hourglass networks
#: of the network registry (:data:`featstat.registry.NETWORKS`, ``family="hourglass"``), a read-only mapping.
NETWORKS: RegistryView[Callable[..., nn.Module]] = _NETWORKS.subset(family="hourglass")


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Build a network from :data:`NETWORKS` by name with its keyword arguments."""
    if name not in NETWORKS:
        raise ValueError(f"net must be one of {tuple(NETWORKS)}, got {name!r}{NETWORKS.hint(name)}")
    return NETWORKS[name](**kwargs)
