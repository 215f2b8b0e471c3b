"""Restoration networks: SRResNet, EDSR-baseline, TSRN, a multi-scale encoder-decoder (SRN-like) and a
cascaded refinement network for surface normals; plus tiled inference for large images.

Every network maps N×C_in×h×w images (values in [0, 1]) to N×C_out×(s·h)×(s·w) with s = ``scale`` (1 for
the same-size tasks). Outputs are not clamped (train on the raw output; clamp for display). All are fully
convolutional, so any input size works; networks that downsample internally (the encoder-decoder, CRN) pad
the input by reflection to the multiple they need and crop the result back.

========================  =====================================================  =========================
name                      paper                                                  used by
========================  =====================================================  =========================
``srresnet``              Ledig et al. 2017 (SRGAN's generator)                  CX-SR, single-image SR
``edsr``                  Lim et al. 2017, EDSR-baseline (16 blocks, 64 ch)      PDL super-resolution
``tsrn``                  Gondal et al. 2018 (EnhanceNet-style, pixel shuffle)   TSRN (Gram loss SR)
``srn``                   Tao et al. 2018 SRN, multi-scale encoder-decoder       PDL denoise/JPEG/demosaic,
                                                                                 deblur
``crn``                   Chen & Koltun 2017, cascaded refinement network        surface normals (CX paper)
========================  =====================================================  =========================

:data:`NETWORKS` maps the names to classes with the uniform constructor ``cls(scale=…, in_channels=3,
out_channels=3, **options)``; :func:`build_network` builds one by name and records ``(name, options)`` in
``net.spec`` so a checkpoint can rebuild it (:func:`network_from_spec`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_tensor
from ..registry import NETWORKS as _NETWORKS
from ..registry import RegistryView

__all__ = [
    "EDSR",
    "NETWORKS",
    "SRN",
    "CascadedRefinementNetwork",
    "SRResNet",
    "TSRNet",
    "build_network",
    "network_from_spec",
    "tiled_forward",
]


# ------------------------------------------------------------------------------------------------ blocks


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _check_scale(scale: object, allowed: Sequence[int]) -> int:
    if scale not in allowed:
        raise ValueError(f"scale must be one of {tuple(allowed)} for this network, got {scale!r}")
    return int(scale)  # type: ignore[call-overload]


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)


class _ResBlock(nn.Module):
    """conv–[BN]–act–conv–[BN], times ``res_scale``, plus the input (SRResNet with BN + PReLU, EDSR and
    SRN without BN, with ReLU)."""

    def __init__(
        self,
        channels: int,
        k: int = 3,
        *,
        batch_norm: bool = False,
        act: str = "relu",
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv(channels, channels, k, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.PReLU(channels) if act == "prelu" else nn.ReLU(inplace=True))
        layers.append(_conv(channels, channels, k, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + (y if self.res_scale == 1.0 else y * self.res_scale)


def _upsampler(channels: int, scale: int, act: Callable[[], nn.Module] | None) -> nn.Sequential:
    """Sub-pixel convolution (Shi et al. 2016): log2(scale) × [conv ch→4ch, PixelShuffle(2), act] (×3 once
    for scale 3)."""
    layers: list[nn.Module] = []
    factors = [3] if scale == 3 else [2] * int(math.log2(scale)) if scale > 1 else []
    for f in factors:
        layers += [_conv(channels, channels * f * f), nn.PixelShuffle(f)]
        if act is not None:
            layers.append(act())
    return nn.Sequential(*layers)


def _pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of ``x`` to a multiple of ``multiple`` (replicate where too small)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


# ------------------------------------------------------------------------------------------------ SRResNet


class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017, Fig. 4, the generator of SRGAN; what the CX paper trains).

    conv 9×9 (64) + PReLU → ``blocks`` residual blocks (conv3–BN–PReLU–conv3–BN, + skip) → conv3–BN, + the
    first features (long skip) → log2(scale) × [conv3 64→256, PixelShuffle ×2, PReLU] → conv 9×9 → C_out.

    Args:
        scale: 1, 2, 4 or 8 (paper: 4). in_channels, out_channels: 3 for RGB.
        channels: feature width (paper 64). blocks: residual blocks (paper 16).
        batch_norm: BatchNorm in the blocks (paper True; note BN statistics are per process under DDP).

    Input and output are [0, 1] images (the paper feeds [0, 1] and predicts [-1, 1] with tanh; we predict
    [0, 1] linearly, which suits every featstat loss). Receptive field: 2·(4 + 2·blocks + 1 + 4) + 1 LR px.
    """

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        channels: int = 64,
        blocks: int = 16,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.scale = _check_scale(scale, (1, 2, 4, 8))
        _check_int("channels", channels, 1)
        _check_int("blocks", blocks, 0)
        self.head = nn.Sequential(_conv(in_channels, channels, 9), nn.PReLU(channels))
        self.body = nn.Sequential(
            *[_ResBlock(channels, batch_norm=batch_norm, act="prelu") for _ in range(blocks)]
        )
        fuse: list[nn.Module] = [_conv(channels, channels, bias=not batch_norm)]
        if batch_norm:
            fuse.append(nn.BatchNorm2d(channels))
        self.fuse = nn.Sequential(*fuse)
        self.upsample = _upsampler(channels, self.scale, lambda: nn.PReLU(channels))
        self.tail = _conv(channels, out_channels, 9)

    def forward(self, x: Tensor) -> Tensor:
        f = self.head(x)
        return self.tail(self.upsample(f + self.fuse(self.body(f))))


# ---------------------------------------------------------------------------------------------------- EDSR


class EDSR(nn.Module):
    """EDSR (Lim et al. 2017); the defaults are EDSR-baseline: 16 residual blocks of 64 channels, no BN,
    residual scaling 1 (the full EDSR is ``blocks=32, channels=256, res_scale=0.1``).

    Subtract the DIV2K RGB mean → conv3 → blocks (conv3–ReLU–conv3, ×res_scale, + skip) → conv3, + head
    features → upsampler (conv3 + PixelShuffle, no activation) → conv3 → add the mean back. Used by the PDL
    paper for super-resolution.
    """

    #: DIV2K training-set RGB mean, as in the reference code (on [0, 1]).
    RGB_MEAN = (0.4488, 0.4371, 0.4040)

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        channels: int = 64,
        blocks: int = 16,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.scale = _check_scale(scale, (1, 2, 3, 4, 8))
        _check_int("channels", channels, 1)
        _check_int("blocks", blocks, 0)
        self.head = _conv(in_channels, channels)
        self.body = nn.Sequential(
            *[_ResBlock(channels, res_scale=res_scale) for _ in range(blocks)], _conv(channels, channels)
        )
        self.tail = nn.Sequential(_upsampler(channels, self.scale, None), _conv(channels, out_channels))
        mean_in = torch.tensor(self.RGB_MEAN if in_channels == 3 else [0.5] * in_channels).view(1, -1, 1, 1)
        mean_out = torch.tensor(self.RGB_MEAN if out_channels == 3 else [0.5] * out_channels).view(
            1, -1, 1, 1
        )
        self.register_buffer("mean_in", mean_in, persistent=False)
        self.register_buffer("mean_out", mean_out, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        f = self.head(x - self.mean_in.to(x.dtype))
        return self.tail(f + self.body(f)) + self.mean_out.to(x.dtype)


# ---------------------------------------------------------------------------------------------------- TSRN


class TSRNet(nn.Module):
    """TSRN generator (Gondal et al. 2018, sec. 4): the EnhanceNet architecture (Sajjadi et al. 2017) with
    sub-pixel (pixel-shuffle) upsampling instead of nearest-neighbour upsampling.

    conv3 (64) + ReLU → ``blocks`` residual blocks (conv3–ReLU–conv3, + skip) → log2(scale) × [conv3
    64→256, PixelShuffle ×2, ReLU] → conv3 + ReLU → conv3 → C_out, plus the bicubic upsampling of the input
    (the network learns the residual; this reduces colour shifts). EnhanceNet uses 10 residual blocks.
    """

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        channels: int = 64,
        blocks: int = 10,
    ) -> None:
        super().__init__()
        self.scale = _check_scale(scale, (2, 4, 8))
        if in_channels != out_channels:
            raise ValueError(
                f"TSRNet adds the bicubic upsampling of its input, so in_channels ({in_channels}) must equal "
                f"out_channels ({out_channels})"
            )
        _check_int("channels", channels, 1)
        _check_int("blocks", blocks, 0)
        self.head = nn.Sequential(_conv(in_channels, channels), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[_ResBlock(channels) for _ in range(blocks)])
        self.upsample = _upsampler(channels, self.scale, lambda: nn.ReLU(inplace=True))
        self.tail = nn.Sequential(
            _conv(channels, channels), nn.ReLU(inplace=True), _conv(channels, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False, antialias=True)
        return base + self.tail(self.upsample(self.body(self.head(x))))


# ------------------------------------------------------------------------------------------------ SRN


class _EncoderDecoder(nn.Module):
    """One scale of SRN: encoder blocks (conv [stride 2] + ReLU + res blocks), decoder blocks (res blocks +
    transposed conv ×2 + ReLU) with additive skips, output block (res blocks + conv)."""

    def __init__(self, cin: int, cout: int, channels: int, levels: int, blocks: int, k: int) -> None:
        super().__init__()
        widths = [channels * 2**i for i in range(levels)]
        self.enc = nn.ModuleList()
        for i, wdt in enumerate(widths):
            first = _conv(cin if i == 0 else widths[i - 1], wdt, k, stride=1 if i == 0 else 2)
            self.enc.append(
                nn.Sequential(first, nn.ReLU(inplace=True), *[_ResBlock(wdt, k) for _ in range(blocks)])
            )
        self.dec = nn.ModuleList()
        for i in range(levels - 1, 0, -1):
            self.dec.append(
                nn.Sequential(
                    *[_ResBlock(widths[i], k) for _ in range(blocks)],
                    nn.ConvTranspose2d(widths[i], widths[i - 1], 4, stride=2, padding=1),
                    nn.ReLU(inplace=True),
                )
            )
        self.out = nn.Sequential(*[_ResBlock(widths[0], k) for _ in range(blocks)], _conv(widths[0], cout, k))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
        for j, block in enumerate(self.dec):
            x = block(x) + skips[-2 - j]
        return self.out(x)


class SRN(nn.Module):
    """Multi-scale encoder-decoder, after the scale-recurrent network SRN (Tao et al. 2018): the PDL
    paper's model for denoising, JPEG artefact removal and demosaicking (and, close to its DsDeblur model, a
    coarse-to-fine encoder-decoder for deblurring).

    The input is processed at ``scales`` resolutions, coarse to fine (factor 2 between scales), by *one*
    encoder-decoder whose weights are shared across scales; at each scale its input is the image at that
    scale concatenated with the bilinearly upsampled estimate of the coarser scale (the input itself at the
    coarsest). The encoder-decoder has ``levels`` levels of ``channels·2^i`` features (SRN: 32, 64, 128),
    each with ``blocks`` residual blocks (SRN: 3) and ``kernel_size``×``kernel_size`` convolutions (SRN: 5;
    3 is much cheaper), stride-2 convolutions down, transposed convolutions up, additive skips. Differences
    from SRN: no ConvLSTM at the bottleneck (the recurrence is through the image estimate only), and with
    ``residual=True`` (default) each scale predicts a correction added to its input image.

    ``forward(x)`` returns the finest estimate; ``forward(x, all_scales=True)`` the list, coarse to fine,
    for SRN's multi-scale loss. Any input size works (reflection-padded to a multiple of
    2^(levels−1+scales−1) inside).
    """

    def __init__(
        self,
        scale: int = 1,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        channels: int = 32,
        levels: int = 3,
        blocks: int = 3,
        scales: int = 3,
        kernel_size: int = 5,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.scale = _check_scale(scale, (1,))
        _check_int("channels", channels, 1)
        self.levels, self.scales = _check_int("levels", levels, 1), _check_int("scales", scales, 1)
        _check_int("blocks", blocks, 0)
        if kernel_size not in (3, 5, 7):
            raise ValueError(f"kernel_size must be 3, 5 or 7, got {kernel_size!r}")
        if residual and in_channels != out_channels:
            raise ValueError("residual=True needs in_channels == out_channels; pass residual=False")
        self.residual = residual
        self.out_channels = out_channels
        self.net = _EncoderDecoder(
            in_channels + out_channels, out_channels, channels, levels, blocks, kernel_size
        )

    @property
    def multiple(self) -> int:
        return 2 ** (self.levels - 1 + self.scales - 1)

    def forward(self, x: Tensor, *, all_scales: bool = False) -> Tensor | list[Tensor]:
        xp, (h, w) = _pad_to_multiple(x, self.multiple)
        pyramid = [xp]
        for _ in range(self.scales - 1):
            pyramid.append(
                F.interpolate(
                    pyramid[-1], scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True
                )
            )
        estimate: Tensor | None = None
        outputs = []
        for xs in reversed(pyramid):
            if estimate is None:
                prev = (
                    xs
                    if xs.shape[1] == self.out_channels
                    else xs.new_zeros(xs.shape[0], self.out_channels, *xs.shape[-2:])
                )
            else:
                prev = F.interpolate(estimate, size=xs.shape[-2:], mode="bilinear", align_corners=False)
            y = self.net(torch.cat([xs, prev], dim=1))
            estimate = xs + y if self.residual else y
            outputs.append(estimate)
        outputs = [
            o[..., : o.shape[-2] * h // xp.shape[-2], : o.shape[-1] * w // xp.shape[-1]] for o in outputs
        ]
        return outputs if all_scales else outputs[-1]


# ------------------------------------------------------------------------------------------------ CRN


class _RefinementModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _conv(cin, cout),
            nn.GroupNorm(1, cout),
            nn.LeakyReLU(0.2, inplace=True),
            _conv(cout, cout),
            nn.GroupNorm(1, cout),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class CascadedRefinementNetwork(nn.Module):
    """Cascaded refinement network (Chen & Koltun 2017), as the CX paper uses it for surface normals.

    A cascade of refinement modules, coarse to fine, doubling the resolution each time: module i works at
    1/2^(M−1−i) of the input size on the input image resized there, concatenated with the bilinearly
    upsampled features of module i−1; each module is two 3×3 convolutions with layer normalisation
    (GroupNorm with one group) and LeakyReLU(0.2); a final 1×1 convolution maps to ``out_channels``.
    ``channels`` lists the widths of the M modules (CRN uses 1024 at the coarse end; the default is a
    CPU-sized 128→32).

    With ``normalize_output=True`` (for normals) the 3 outputs are read as a vector n, made unit length and
    returned encoded as a normal-map image ``(n̂ + 1) / 2`` in [0, 1], the space the CX-normals recipe
    compares (VGG features and 5×5 patches of the normal map).
    """

    def __init__(
        self,
        scale: int = 1,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        channels: Sequence[int] = (128, 128, 128, 64, 32),
        normalize_output: bool = True,
    ) -> None:
        super().__init__()
        self.scale = _check_scale(scale, (1,))
        widths = [_check_int("channels[i]", int(c), 1) for c in channels]
        if not widths:
            raise ValueError("channels must list at least one module width")
        if normalize_output and out_channels != 3:
            raise ValueError("normalize_output=True needs out_channels=3 (normal vectors)")
        self.normalize_output = normalize_output
        self.stages = nn.ModuleList()
        prev = 0
        for wdt in widths:
            self.stages.append(_RefinementModule(in_channels + prev, wdt))
            prev = wdt
        self.head = nn.Conv2d(prev, out_channels, 1)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.stages) - 1)

    def forward(self, x: Tensor) -> Tensor:
        xp, (h, w) = _pad_to_multiple(x, self.multiple)
        feats: Tensor | None = None
        m = len(self.stages)
        for i, stage in enumerate(self.stages):
            f = 2 ** (m - 1 - i)
            xs = (
                xp
                if f == 1
                else F.interpolate(
                    xp, scale_factor=1 / f, mode="bilinear", align_corners=False, antialias=True
                )
            )
            if feats is not None:
                feats = F.interpolate(feats, size=xs.shape[-2:], mode="bilinear", align_corners=False)
                xs = torch.cat([xs, feats], dim=1)
            feats = stage(xs)
        assert feats is not None
        out = self.head(feats)[..., :h, :w]
        if self.normalize_output:
            out = (F.normalize(out, dim=1, eps=1e-6) + 1) / 2
        return out


# ------------------------------------------------------------------------------------------------ registry

for _name, _cls in (
    ("srresnet", SRResNet),
    ("edsr", EDSR),
    ("tsrn", TSRNet),
    ("srn", SRN),
    ("crn", CascadedRefinementNetwork),
):
    _cls.family = "restoration"  # fact: constructor (scale, in_channels, out_channels, **options)
    if _name not in _NETWORKS.registered_names():
        _NETWORKS.register_value(_name, _cls)
del _name, _cls

#: Network name → class; constructors take ``(scale, in_channels, out_channels, **options)``: the
#: restoration networks of the network registry (:data:`featstat.registry.NETWORKS`,
#: ``family="restoration"``), a read-only mapping.
NETWORKS: RegistryView[type[nn.Module]] = _NETWORKS.subset(family="restoration")


def build_network(
    name: str, *, scale: int = 1, in_channels: int = 3, out_channels: int = 3, **options: Any
) -> nn.Module:
    """Build a network of :data:`NETWORKS` by name; ``net.spec`` records how (for checkpoints).

    Example::

        net = build_network("edsr", scale=4, blocks=8, channels=32)
        net.spec   # {"name": "edsr", "scale": 4, "in_channels": 3, "out_channels": 3, "options": {...}}
    """
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {name!r}{NETWORKS.hint(name)}")
    try:
        net = NETWORKS[name](scale, in_channels, out_channels, **options)
    except TypeError as err:
        raise ValueError(f"bad options for network {name!r}: {err}") from err
    net.spec = {
        "name": name,
        "scale": scale,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "options": dict(options),
    }
    return net


def network_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild a network from the ``spec`` dict :func:`build_network` recorded."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"spec must be a dict with a 'name' (as recorded by build_network), got {spec!r}")
    options = dict(spec.get("options", {}))
    for key, value in options.items():  # tuples come back from checkpoints as lists
        if isinstance(value, list):
            options[key] = tuple(value)
    return build_network(
        spec["name"],
        scale=int(spec.get("scale", 1)),
        in_channels=int(spec.get("in_channels", 3)),
        out_channels=int(spec.get("out_channels", 3)),
        **options,
    )


# ------------------------------------------------------------------------------------------------ tiling


def tiled_forward(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    *,
    tile: int = 256,
    overlap: int = 32,
    scale: int = 1,
    multiple: int = 1,
) -> Tensor:
    """Apply ``model`` to ``images`` (N×C×H×W) tile by tile, to bound memory on large images.

    The input is cut into tiles of at most ``tile``×``tile`` pixels that overlap by ``overlap`` pixels on
    each side; each tile is processed separately and only its core (the tile minus ``overlap`` on the inner
    sides) is kept, so every output pixel comes from the tile where it is farthest from a cut. For a network
    whose receptive field reaches at most ``overlap`` input pixels from the output pixel (and no global
    operation), the result equals ``model(images)`` exactly; otherwise the seams are ``overlap`` pixels
    from any cut. ``scale`` is the model's output/input size ratio. ``multiple``: tile sizes are rounded
    down to a multiple of this (networks that pad to multiples are then not padded inside tiles).
    The output is assembled on the input's device. Images no larger than ``tile`` run in one piece.
    """
    x = check_tensor("images", images, ndim=4)
    _check_int("tile", tile, 1)
    _check_int("overlap", overlap, 0)
    _check_int("scale", scale, 1)
    _check_int("multiple", multiple, 1)
    tile = max(multiple, tile - tile % multiple)
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than 2·overlap ({2 * overlap}); use a larger tile")
    n, _, h, w = x.shape
    if h <= tile and w <= tile:
        return model(x)
    step = tile - 2 * overlap

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        s = [*range(0, length - tile, step), length - tile]
        return sorted(set(s))

    out: Tensor | None = None
    for y0 in starts(h):
        for x0 in starts(w):
            th, tw = min(tile, h), min(tile, w)
            piece = model(x[..., y0 : y0 + th, x0 : x0 + tw])
            if out is None:
                out = piece.new_zeros(n, piece.shape[1], h * scale, w * scale)
            # core region in input coordinates: trim `overlap` on sides that are not the image border
            cy0 = 0 if y0 == 0 else y0 + overlap
            cx0 = 0 if x0 == 0 else x0 + overlap
            cy1 = h if y0 + th >= h else y0 + th - overlap
            cx1 = w if x0 + tw >= w else x0 + tw - overlap
            out[..., cy0 * scale : cy1 * scale, cx0 * scale : cx1 * scale] = piece[
                ..., (cy0 - y0) * scale : (cy1 - y0) * scale, (cx0 - x0) * scale : (cx1 - x0) * scale
            ]
    assert out is not None
    return out
