"""Feed-forward texture and stylisation generators (Ulyanov et al.; thesis chapters 2 and 3).

- :class:`TextureNetV1` — Texture Networks (ICML 2016; thesis §2.3.2, Fig. 2.2): K noise tensors at scales
  1/2^(K−1) … 1 (K = 5 for textures; K = 6 with the content image for stylisation, §2.3.3), each through a
  conv block (3×3, 3×3, 1×1 convolutions, each followed by batch normalisation and a ReLU — LeakyReLU(0.01) in
  the reference code's later models), circular padding; the coarser branch is upsampled ×2 (nearest) and
  joined to the next one by channel concatenation with batch normalisation *before* the join; 8 channels per
  branch, so the trunk grows 8 → 16 → … → 8K (8 → 40 for K = 5); a final 1×1 convolution maps to RGB. The
  thesis writes the noise sizes as M/2^i for i = 1…K (finest M/2); the reference code (models/pyramid.lua)
  has a full-resolution branch (ratios 2^(K−1) … 1), which we follow: the output has the finest noise's size.
- :class:`TextureNetV2` — the high-capacity texture generator of Improved Texture Networks (CVPR 2017;
  thesis §3.5.1.1): a noise vector of 256 through two fully connected layers, reshaped to 4×4 and upsampled by
  fractionally strided (transposed) convolutions as in DCGAN, giving a receptive field as large as the image.
- :class:`StyleNet` — the residual transformer (Johnson et al. 2016) used by Improved Texture Networks for
  stylisation: 9×9 conv, two stride-2 convs, five residual blocks, two ×2 up-convolutions, 9×9 conv; instance
  normalisation ("StyleNet IN", thesis eq. 3.12, applied at test time unchanged) or batch normalisation
  ("StyleNet BN", eq. 3.13); noise channels concatenated to the content image as input.

All generators share one calling convention::

    noise = net.noise(batch, height, width, seed=g)        # the input noise, seeded, any size
    images = net(noise)                                    # texture nets: N×3×H×W
    images = net(noise, content)                           # stylisation nets (content N×3×H×W in [0, 1])

``noise_scale`` multiplies the noise (``net.noise(..., scale=k)``): for stylisation it trades style against
content at test time without retraining (thesis §2.4.3, Fig. 2.5). Output: ``output="sigmoid"`` (default)
keeps images in featstat's [0, 1] range; the reference code outputs unbounded values in the VGG input space
(``output="none"`` reproduces that). Weights are initialised with Xavier's method (thesis §2.4.1), seeded.
Every net is fully convolutional: :meth:`~TextureNetV1.noise` and the forward pass accept any size that is a
multiple of :attr:`size_multiple` (use :func:`generate` / :func:`stylize` for arbitrary sizes: they pad and
crop). With circular padding, a texture net's output is periodic: it tiles seamlessly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_tensor, legacy_arguments, make_generator
from ..registry import NETWORKS as _NETWORKS
from ..registry import RegistryView

__all__ = [
    "ARCHITECTURES",
    "StyleNet",
    "TextureNetV1",
    "TextureNetV2",
    "build_generator",
    "generate",
    "stylize",
]

NORMS = ("batch", "instance")
ACTIVATIONS = ("relu", "leaky_relu")
OUTPUTS = ("sigmoid", "none")
PADDINGS = ("circular", "reflect", "zeros")
NOISES = ("uniform", "normal")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


def _act(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else nn.LeakyReLU(0.01)


def _conv(cin: int, cout: int, k: int, padding: str, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode=padding)


def _output(kind: str, x: Tensor) -> Tensor:
    return torch.sigmoid(x) if kind == "sigmoid" else x


@torch.no_grad()
def _xavier_(module: nn.Module, seed: int) -> None:
    """Seeded Xavier (Glorot) uniform init of every (transposed) conv and linear weight; zero biases."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.weight
            if isinstance(m, nn.ConvTranspose2d):
                fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
            else:
                fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel() if w.dim() > 2 else w.shape[0]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w.copy_(torch.empty(w.shape).uniform_(-bound, bound, generator=g))
            if m.bias is not None:
                m.bias.zero_()


def _check_int(name: str, value: object, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_size(name: str, height: int, width: int, multiple: int) -> None:
    for arg, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v < multiple or v % multiple:
            raise ValueError(
                f"{name}: {arg} must be a positive multiple of {multiple} for this generator, got {v}; use "
                f"featstat.nets.texture.generate()/stylize(), which pad and crop to any size"
            )


class _Generator(nn.Module):
    """Shared behaviour: configuration for checkpoints, noise drawing, content checks."""

    arch: str = ""
    #: height and width must be multiples of this (see :func:`generate` for other sizes).
    size_multiple: int = 1
    #: True when the net takes a content image (stylisation).
    takes_content: bool = False
    #: facts read by the network registry and the CLI: the family, and what the architecture can be trained
    #: for (textures from noise alone; stylisation of a content image)
    family: ClassVar[str] = "texture"
    synthesises_textures: ClassVar[bool] = True
    stylises: ClassVar[bool] = False

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self._config = dict(config)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able): ``build_generator(net.arch, **net.config())`` rebuilds it."""
        return dict(self._config)

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters())
        return p.device, p.dtype

    def _check_content(self, content: Tensor | None, batch: int, size: tuple[int, int]) -> Tensor | None:
        if not self.takes_content:
            if content is not None:
                raise ValueError(f"{type(self).__name__} is a texture generator and takes no content image")
            return None
        if content is None:
            raise ValueError(f"{type(self).__name__} stylises a content image: call net(noise, content)")
        content = check_tensor("content", content, ndim=4, channels=3)
        if content.shape[0] != batch or tuple(content.shape[-2:]) != size:
            raise ValueError(
                f"content must be N×3×H×W matching the noise (N = {batch}, H×W = {size[0]}×{size[1]}), got "
                f"shape {tuple(content.shape)}; draw the noise with net.noise(N, H, W)"
            )
        return content


class TextureNetV1(_Generator):
    """Multi-scale Texture Network (thesis §2.3.2; for stylisation §2.3.3 with ``content=True``).

    Args:
        scales: K, the number of noise scales (paper: 5 for textures, 6 for stylisation).
        channels: filters per branch (paper: 8; the trunk after joining k branches has 8k).
        noise_channels: channels of each noise tensor (reference code: 3).
        content: True for the stylisation variant (the content image, average-pooled to each scale, is
            concatenated with that scale's noise).
        activation: "relu" (paper) or "leaky_relu".
        padding: "circular" (paper: "circular convolution to remove boundary effects"), "reflect" or "zeros".
        norm: "batch" (paper) or "instance".
        noise: "uniform" (paper: i.i.d. uniform) or "normal".
        output: "sigmoid" (default, images in [0, 1]) or "none".
        seed: seeds the Xavier initialisation.

    Input noise: a list of K tensors, coarsest first; noise[i] has shape
    N×noise_channels×H/2^(K−1−i)×W/2^(K−1−i).
    H and W must be multiples of 2^(K−1).
    """

    arch = "texture_v1"
    stylises = True  # with content=True (§2.3.3)

    def __init__(
        self,
        scales: int = 5,
        channels: int = 8,
        noise_channels: int = 3,
        content: bool = False,
        activation: str = "relu",
        padding: str = "circular",
        norm: str = "batch",
        noise: str = "uniform",
        output: str = "sigmoid",
        seed: int = 0,
    ) -> None:
        super().__init__(
            scales=scales,
            channels=channels,
            noise_channels=noise_channels,
            content=content,
            activation=activation,
            padding=padding,
            norm=norm,
            noise=noise,
            output=output,
            seed=seed,
        )
        self.scales = _check_int("scales", scales)
        self.channels = _check_int("channels", channels)
        self.noise_channels = _check_int("noise_channels", noise_channels)
        self.takes_content = bool(content)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.norm_kind = check_choice("norm", norm, NORMS)
        self.noise_kind = check_choice("noise", noise, NOISES)
        self.output = check_choice("output", output, OUTPUTS)
        self.size_multiple = 2 ** (self.scales - 1)
        cin = self.noise_channels + (3 if content else 0)
        c = self.channels

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                _conv(i, o, 3, padding),
                _norm(norm, o),
                _act(activation),
                _conv(o, o, 3, padding),
                _norm(norm, o),
                _act(activation),
                _conv(o, o, 1, padding),
                _norm(norm, o),
                _act(activation),
            )

        self.branches = nn.ModuleList([block(cin, c) for _ in range(self.scales)])
        # join k (k = 1..K-1): BN of the upsampled trunk (c·k channels) and of the new branch (c), concat,
        # then a block
        self.join_norms = nn.ModuleList(
            [nn.ModuleList([_norm(norm, c * k), _norm(norm, c)]) for k in range(1, self.scales)]
        )
        self.joins = nn.ModuleList([block(c * (k + 1), c * (k + 1)) for k in range(1, self.scales)])
        self.to_rgb = _conv(c * self.scales, 3, 1, padding)
        _xavier_(self, seed)

    @legacy_arguments(renamed={"generator": "seed"})
    def noise(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        seed: int | torch.Generator | None = None,
        scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> list[Tensor]:
        """K noise tensors (coarsest first) for a batch of ``batch`` images of height×width, times ``scale``.

        Drawn from ``seed`` (an int, a ``torch.Generator`` — on its device — or None: torch's global random
        stream) on the CPU by default and moved to the net's device (or ``device``). 0.1 name: ``generator=``.
        """
        _check_int("batch", batch)
        _check_size("noise", height, width, self.size_multiple)
        pdev, pdtype = self._device_dtype()
        device, dtype = device or pdev, dtype or pdtype
        generator = _noise_generator(seed)
        gdev = generator.device if generator is not None else torch.device("cpu")
        out = []
        for i in range(self.scales):
            f = 2 ** (self.scales - 1 - i)
            shape = (batch, self.noise_channels, height // f, width // f)
            z = (torch.rand if self.noise_kind == "uniform" else torch.randn)(
                shape, generator=generator, device=gdev
            )
            out.append((z * scale).to(device=device, dtype=dtype))
        return out

    def forward(self, noise: Sequence[Tensor], content: Tensor | None = None) -> Tensor:
        """Images N×3×H×W from the K noise tensors (and the content image, for the stylisation variant)."""
        if not isinstance(noise, Sequence) or len(noise) != self.scales:
            raise ValueError(
                f"noise must be a list of {self.scales} tensors (one per scale, coarsest first) as "
                f"net.noise(N, H, W) returns, got {type(noise).__name__}"
                + (f" of length {len(noise)}" if isinstance(noise, Sequence) else "")
            )
        fine = check_tensor("noise[-1]", noise[-1], ndim=4, channels=self.noise_channels or None)
        n, h, w = fine.shape[0], fine.shape[-2], fine.shape[-1]
        content = self._check_content(content, n, (h, w))
        x: Tensor | None = None
        for i in range(self.scales):
            f = 2 ** (self.scales - 1 - i)
            z = noise[i]
            if tuple(z.shape) != (n, self.noise_channels, h // f, w // f):
                raise ValueError(
                    f"noise[{i}] must have shape {(n, self.noise_channels, h // f, w // f)} (scale 1/{f}), "
                    "got "
                    f"{tuple(z.shape)}; draw the noise with net.noise(N, H, W)"
                )
            if content is not None:
                pooled = F.avg_pool2d(content, f) if f > 1 else content
                z = torch.cat([pooled.to(z.dtype), z], dim=1)
            b = self.branches[i](z)
            if x is None:
                x = b
            else:
                bn_trunk, bn_branch = self.join_norms[i - 1]
                x = self.joins[i - 1](torch.cat([bn_trunk(x), bn_branch(b)], dim=1))
            if i < self.scales - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        assert x is not None
        return _output(self.output, self.to_rgb(x))


class _CircularConvTranspose2d(nn.ConvTranspose2d):
    """×2 transposed convolution (kernel 4, stride 2) with circular boundary: H×W → 2H×2W, periodic.

    Pads the input circularly by one cell, applies the transposed convolution without padding and keeps the
    2H×2W window that corresponds to ``padding=1`` — every output pixel then gets the contributions of its
    wrap-around neighbours, so a periodic input gives a periodic output.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 4, stride=2, padding=0, bias=True)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:  # type: ignore[override]
        h, w = x.shape[-2:]
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="circular"), self.weight, self.bias, stride=2)
        return y[..., 3 : 3 + 2 * h, 3 : 3 + 2 * w]


class TextureNetV2(_Generator):
    """High-capacity texture generator of Improved Texture Networks (thesis §3.5.1.1, Fig. 3.5).

    A noise vector (``noise_dim`` = 256) → fully connected (``hidden`` units) → fully connected to a 4×4 map
    of ``channels[0]`` channels → ``len(channels) − 1`` fractionally strided convolutions (kernel 4, stride 2,
    batch norm, ReLU; DCGAN) doubling the size → a 3×3 convolution to RGB. The output tile is
    ``tile = 4·2^(len(channels)−1)`` pixels (default 256 with 7 channel entries).

    Fully convolutional extension (ours): the two fully connected layers are applied per cell of a grid of
    noise vectors (as a 1×1 convolution and a 4×4/stride-4 transposed convolution — on a 1×1 grid exactly the
    paper's layers), so a g_h×g_w grid gives a (g_h·tile)×(g_w·tile) image; the up-convolutions are circular,
    so neighbouring cells blend and the whole image is periodic. Trained at one tile (``grid=1``), larger
    samples join independently drawn tiles; train at a larger size for seamless large samples.

    Args:
        noise_dim: length of the noise vector (paper: 256).
        hidden: units of the first fully connected layer (default 256).
        channels: channels of the 4×4 map and after each up-convolution (default 512, 256, 128, 64, 32, 32,
            32).
        norm: "batch" (default) or "instance".
        output: "sigmoid" or "none".
        seed: seeds the initialisation.
    """

    arch = "texture_v2"

    def __init__(
        self,
        noise_dim: int = 256,
        hidden: int = 256,
        channels: Sequence[int] = (512, 256, 128, 64, 32, 32, 32),
        norm: str = "batch",
        output: str = "sigmoid",
        seed: int = 0,
    ) -> None:
        channels = [int(c) for c in channels]
        super().__init__(
            noise_dim=noise_dim, hidden=hidden, channels=channels, norm=norm, output=output, seed=seed
        )
        self.noise_dim = _check_int("noise_dim", noise_dim)
        self.hidden = _check_int("hidden", hidden)
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        self.norm_kind = check_choice("norm", norm, NORMS)
        self.output = check_choice("output", output, OUTPUTS)
        self.tile = 4 * 2 ** (len(channels) - 1)
        self.size_multiple = self.tile
        self.fc1 = nn.Sequential(nn.Conv2d(noise_dim, hidden, 1), _norm(norm, hidden), nn.ReLU())
        self.fc2 = nn.Sequential(
            nn.ConvTranspose2d(hidden, channels[0], 4, stride=4), _norm(norm, channels[0]), nn.ReLU()
        )
        ups = []
        for cin, cout in itertools.pairwise(channels):
            ups += [_CircularConvTranspose2d(cin, cout), _norm(norm, cout), nn.ReLU()]
        self.ups = nn.Sequential(*ups)
        self.to_rgb = _conv(channels[-1], 3, 3, "circular")
        _xavier_(self, seed)

    @legacy_arguments(renamed={"generator": "seed"})
    def noise(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        seed: int | torch.Generator | None = None,
        scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """N×noise_dim×(H/tile)×(W/tile) standard normal noise vectors (one per tile), times ``scale``."""
        _check_int("batch", batch)
        _check_size("noise", height, width, self.tile)
        pdev, pdtype = self._device_dtype()
        generator = _noise_generator(seed)
        gdev = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(
            batch, self.noise_dim, height // self.tile, width // self.tile, generator=generator, device=gdev
        )
        return (z * scale).to(device=device or pdev, dtype=dtype or pdtype)

    def forward(self, noise: Tensor, content: Tensor | None = None) -> Tensor:
        """Images N×3×(g_h·tile)×(g_w·tile) from noise N×noise_dim×g_h×g_w."""
        z = check_tensor("noise", noise, ndim=4, channels=self.noise_dim)
        self._check_content(content, z.shape[0], (z.shape[-2] * self.tile, z.shape[-1] * self.tile))
        return _output(self.output, self.to_rgb(self.ups(self.fc2(self.fc1(z)))))


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: str, padding: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3, padding),
            _norm(norm, channels),
            nn.ReLU(),
            _conv(channels, channels, 3, padding),
            _norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class StyleNet(_Generator):
    """Residual stylisation network (Johnson et al. 2016) with instance or batch normalisation and noise input
    (Improved Texture Networks' StyleNet IN / BN, thesis §3.4–3.5).

    Input: the content image (N×3×H×W in [0, 1]) concatenated with ``noise_channels`` channels of noise.
    Layers: 9×9 conv (channels[0]) → 3×3 stride-2 conv (channels[1]) → 3×3 stride-2 conv (channels[2]) →
    ``residual_blocks`` residual blocks → two ×2 up-convolutions (transposed 3×3 as Johnson et al., or nearest
    upsampling + 3×3 conv with ``upsample="nearest"``) → 9×9 conv to RGB; every conv but the last is followed
    by
    the normalisation and a ReLU. H and W must be multiples of 4 (:func:`stylize` pads any size).

    Args:
        noise_channels: noise channels concatenated to the content (0: none).
        norm: "instance" (StyleNet IN, default) or "batch" (StyleNet BN).
        channels: (32, 64, 128) as Johnson et al.
        residual_blocks: 5.
        padding: "reflect" (default), "zeros" or "circular".
        upsample: "transposed" (Johnson et al.) or "nearest".
        noise: "normal" (Improved Texture Networks: N(0, I)) or "uniform".
        output: "sigmoid" or "none".
        seed: seeds the initialisation.
    """

    arch = "stylenet"
    takes_content = True
    synthesises_textures = False
    stylises = True

    def __init__(
        self,
        noise_channels: int = 3,
        norm: str = "instance",
        channels: Sequence[int] = (32, 64, 128),
        residual_blocks: int = 5,
        padding: str = "reflect",
        upsample: str = "transposed",
        noise: str = "normal",
        output: str = "sigmoid",
        seed: int = 0,
    ) -> None:
        channels = [int(c) for c in channels]
        super().__init__(
            noise_channels=noise_channels,
            norm=norm,
            channels=channels,
            residual_blocks=residual_blocks,
            padding=padding,
            upsample=upsample,
            noise=noise,
            output=output,
            seed=seed,
        )
        self.noise_channels = _check_int("noise_channels", noise_channels)
        if len(channels) != 3 or any(c < 1 for c in channels):
            raise ValueError(f"channels must be three positive ints (e.g. (32, 64, 128)), got {channels}")
        _check_int("residual_blocks", residual_blocks, 0)
        self.norm_kind = check_choice("norm", norm, NORMS)
        padding = check_choice("padding", padding, PADDINGS)
        upsample = check_choice("upsample", upsample, ("transposed", "nearest"))
        self.noise_kind = check_choice("noise", noise, NOISES)
        self.output = check_choice("output", output, OUTPUTS)
        self.size_multiple = 4
        c1, c2, c3 = channels
        layers: list[nn.Module] = [
            _conv(3 + noise_channels, c1, 9, padding),
            _norm(norm, c1),
            nn.ReLU(),
            _conv(c1, c2, 3, padding, stride=2),
            _norm(norm, c2),
            nn.ReLU(),
            _conv(c2, c3, 3, padding, stride=2),
            _norm(norm, c3),
            nn.ReLU(),
        ]
        layers += [_Residual(c3, norm, padding) for _ in range(residual_blocks)]
        for cin, cout in ((c3, c2), (c2, c1)):
            if upsample == "transposed":
                layers.append(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout, 3, padding)]
            layers += [_norm(norm, cout), nn.ReLU()]
        layers.append(_conv(c1, 3, 9, padding))
        self.body = nn.Sequential(*layers)
        _xavier_(self, seed)

    @legacy_arguments(renamed={"generator": "seed"})
    def noise(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        seed: int | torch.Generator | None = None,
        scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """N×noise_channels×H×W noise times ``scale`` (the style-strength knob)."""
        _check_int("batch", batch)
        _check_size("noise", height, width, self.size_multiple)
        pdev, pdtype = self._device_dtype()
        generator = _noise_generator(seed)
        gdev = generator.device if generator is not None else torch.device("cpu")
        draw = torch.rand if self.noise_kind == "uniform" else torch.randn
        z = draw(batch, self.noise_channels, height, width, generator=generator, device=gdev)
        return (z * scale).to(device=device or pdev, dtype=dtype or pdtype)

    def forward(self, noise: Tensor, content: Tensor | None = None) -> Tensor:
        """Stylised images N×3×H×W from noise N×noise_channels×H×W and content N×3×H×W in [0, 1]."""
        z = check_tensor("noise", noise, ndim=4)
        if z.shape[1] != self.noise_channels:
            raise ValueError(f"noise must have {self.noise_channels} channels, got shape {tuple(z.shape)}")
        _check_size("noise", int(z.shape[-2]), int(z.shape[-1]), self.size_multiple)
        content = self._check_content(content, z.shape[0], (z.shape[-2], z.shape[-1]))
        assert content is not None
        return _output(self.output, self.body(torch.cat([content.to(z.dtype), z], dim=1)))


for _cls in (TextureNetV1, TextureNetV2, StyleNet):
    if _cls.arch not in _NETWORKS.registered_names():
        _NETWORKS.register_value(_cls.arch, _cls)
del _cls

#: Generator architectures by name (checkpoints and the CLI use these names): the texture generators of the
#: network registry (:data:`featstat.registry.NETWORKS`, ``family="texture"``), a read-only mapping.
ARCHITECTURES: RegistryView[type[_Generator]] = _NETWORKS.subset(family="texture")


def build_generator(arch: str, **config: Any) -> nn.Module:
    """A generator by architecture name (:data:`ARCHITECTURES`) and its constructor arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {list(ARCHITECTURES)}, got {arch!r}{ARCHITECTURES.hint(arch)}")
    try:
        return ARCHITECTURES[arch](**config)
    except TypeError as err:
        raise ValueError(f"bad arguments for generator {arch!r}: {err}") from err


def _noise_generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    """None keeps torch's global random stream (the 0.1 default); an int seeds a fresh CPU generator."""
    return None if seed is None else make_generator(seed)


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


@torch.no_grad()
@legacy_arguments(renamed={"generator": "seed"})
def generate(
    net: nn.Module,
    count: int,
    size: int | Sequence[int],
    *,
    seed: int | torch.Generator | None = None,
    noise_scale: float = 1.0,
    batch_size: int = 4,
) -> Tensor:
    """``count`` textures of any ``size`` (int or (height, width)) from a texture generator, in eval mode.

    Sizes that are not multiples of ``net.size_multiple`` are generated at the next multiple and cropped (the
    crop is no longer exactly periodic). Returns count×3×H×W (on the net's device). ``seed``: an int, a
    ``torch.Generator`` or None (torch's global random stream); 0.1 name ``generator=``.
    """
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    generator = _noise_generator(seed)
    if getattr(net, "takes_content", False):
        raise ValueError("generate() is for texture generators; use stylize() for stylisation nets")
    _check_int("count", count)
    _check_int("batch_size", batch_size)
    m = net.size_multiple
    H, W = _round_up(_check_int("height", h), m), _round_up(_check_int("width", w), m)
    was = net.training
    net.eval()
    try:
        out = []
        for start in range(0, count, batch_size):
            n = min(batch_size, count - start)
            out.append(net(net.noise(n, H, W, seed=generator, scale=noise_scale))[..., :h, :w])
    finally:
        net.train(was)
    return torch.cat(out)


@torch.no_grad()
@legacy_arguments(renamed={"generator": "seed"})
def stylize(
    net: nn.Module,
    images: Tensor,
    *,
    seed: int | torch.Generator | None = None,
    noise_scale: float = 1.0,
) -> Tensor:
    """Stylise ``images`` (N×3×H×W in [0, 1], any H×W) with a stylisation generator, in eval mode.

    Images are reflect-padded to a multiple of ``net.size_multiple`` and the result cropped back.
    ``noise_scale`` scales the input noise (0: no noise; larger: stronger texture, thesis Fig. 2.5).
    ``seed``: an int, a ``torch.Generator`` or None (torch's global random stream); 0.1 name ``generator=``.
    """
    if not getattr(net, "takes_content", False):
        raise ValueError("stylize() needs a stylisation generator (StyleNet or TextureNetV1(content=True))")
    x = check_tensor("images", images, ndim=4, channels=3)
    h, w = x.shape[-2:]
    m = net.size_multiple
    ph, pw = _round_up(h, m) - h, _round_up(w, m) - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    was = net.training
    net.eval()
    try:
        noise = net.noise(x.shape[0], x.shape[-2], x.shape[-1], seed=seed, scale=noise_scale)
        out = net(noise, x.to(next(net.parameters()).device))
    finally:
        net.train(was)
    return out[..., :h, :w]
