"""Generators of the adversarial product: the image-to-image transformer of the thesis' translation
experiments (5.3.3.2, after Johnson et al. 2016).

:class:`ResnetTranslator` — a 7×7 convolution, ``downsamplings`` (M) stride-2 3×3 convolutions,
``blocks`` (N) residual blocks, M ×2 upsamplings (nearest + 3×3 convolution: no checkerboard) and a 7×7
convolution to RGB; instance normalisation and ReLU after every convolution but the last, reflection padding,
sigmoid output so images stay in [0, 1]. Input and output N×3×H×W in [0, 1]; H and W multiples of 2^M
(:func:`featstat.nets.restoration.tiled_forward` and :func:`translate` pad any size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_tensor, make_generator

__all__ = ["ColorizationGenerator", "ResnetTranslator"]


def _int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    return value


NORMS = ("instance", "batch")


def _block(cin: int, cout: int, k: int, stride: int = 1, norm: str = "instance") -> list[nn.Module]:
    layer = nn.InstanceNorm2d(cout, affine=True) if norm == "instance" else nn.BatchNorm2d(cout)
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect"), layer, nn.ReLU()]


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        body = _block(channels, channels, 3, norm=norm)
        body += _block(channels, channels, 3, norm=norm)[:-1]  # no ReLU after the sum's second branch
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """Johnson-style transformer: M stride-2 convolutions, N residual blocks, M upsamplings.

    Args:
        downsamplings: M (default 2, Johnson et al.).
        in_channels, out_channels: 3 and 3 for translation; the colourisation generator of conditional AGE
            uses 1 + M in (L and the latent code as constant maps) and 2 out (ab).
        blocks: N residual blocks (default 6, CycleGAN's 128² setting).
        width: channels of the first convolution; doubled at every downsampling.
        seed: int or ``torch.Generator`` for the (N(0, 0.02)) initialisation.
        norm: "instance" (default, translation) or "batch". Instance normalisation removes any input that is
            constant over the image (its contribution to a convolution's output is a per-channel constant), so
            a generator fed constant maps — the latent code of :class:`ColorizationGenerator` — needs "batch".

    ``spec`` records the constructor arguments (checkpoints rebuild the network from it).
    """

    def __init__(self, downsamplings: int = 2, blocks: int = 6, width: int = 32, *, in_channels: int = 3,
                 out_channels: int = 3, seed: int | torch.Generator = 0,
                 norm: str = "instance") -> None:  # fmt: skip
        super().__init__()
        m, n, c = _int("downsamplings", downsamplings, 0), _int("blocks", blocks, 0), _int("width", width, 1)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.in_channels = _int("in_channels", in_channels, 1)
        self.out_channels = _int("out_channels", out_channels, 1)
        layers: list[nn.Module] = _block(in_channels, c, 7, norm=norm)
        for i in range(m):
            layers += _block(c * 2**i, c * 2 ** (i + 1), 3, stride=2, norm=norm)
        layers += [_Residual(c * 2**m, norm) for _ in range(n)]
        for i in range(m, 0, -1):
            up = _block(c * 2**i, c * 2 ** (i - 1), 3, norm=norm)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *up]
        layers.append(nn.Conv2d(c, out_channels, 7, padding=3, padding_mode="reflect"))
        self.body = nn.Sequential(*layers)
        self.size_multiple = 2**m
        self.spec = {"downsamplings": m, "blocks": n, "width": c, "in_channels": in_channels,
                     "out_channels": out_channels, "norm": norm}  # fmt: skip
        g = make_generator(seed)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                with torch.no_grad():
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)
                    mod.bias.zero_()

    def forward(self, images: Tensor) -> Tensor:
        x = check_tensor("images", images, ndim=4, channels=self.in_channels)
        h, w = x.shape[-2:]
        k = self.size_multiple
        ph, pw = (-h) % k, (-w) % k
        if ph or pw:  # reflect-pad to the multiple, crop back
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        return torch.sigmoid(self.body(x * 2 - 1))[..., :h, :w]


class ColorizationGenerator(nn.Module):
    """The conditional AGE generator g(z | L) of thesis 4.3.2: the lightness L (N×1×H×W in [0, 1]) with the
    latent z (N×M) expanded to M constant maps, through a :class:`ResnetTranslator` with batch normalisation
    (instance normalisation would erase the constant maps: the output would not depend on z), to the ab
    channels (N×2×H×W in [0, 1]: ``ab = (2·out − 1) · 110``, see
    :func:`featstat.adversarial.age.lab_split`)."""

    def __init__(self, latent: int = 3, *, downsamplings: int = 2, blocks: int = 6, width: int = 32,
                 seed: int | torch.Generator = 0) -> None:  # fmt: skip
        super().__init__()
        self.latent = _int("latent", latent, 1)
        self.net = ResnetTranslator(downsamplings, blocks, width, in_channels=1 + latent, out_channels=2,
                                    seed=seed, norm="batch")  # fmt: skip
        self.size_multiple = self.net.size_multiple

    def forward(self, z: Tensor, lightness: Tensor) -> Tensor:
        z = check_tensor("z", z, ndim=2)
        lum = check_tensor("lightness", lightness, ndim=4, channels=1)
        if z.shape != (lum.shape[0], self.latent):
            raise ValueError(f"z must be N×{self.latent} with N = lightness's batch, got {tuple(z.shape)}")
        maps = z[:, :, None, None].to(lum.dtype).expand(-1, -1, *lum.shape[-2:])
        return self.net(torch.cat([lum, maps], dim=1))
