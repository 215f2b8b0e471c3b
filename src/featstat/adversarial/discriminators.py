"""Discriminators for adversarial learning with deep-feature statistics (thesis ch. 5, fig. 5.1).

The **perceptual discriminator** (:class:`PerceptualDiscriminator`) reads the perceptual statistics of a
frozen reference network F split into blocks b_0 … b_{K−1} at named layers (eqs. 5.2–5.3):

    f_1(y) = b_0(y),        f_i(y) = b_{i−1}(f_{i−1}(y)),   i = 2 … K

and combines them with learnable blocks c_i (3×3 convolution, LeakyReLU 0.2, average pooling matching the
downsampling of b_i) (eqs. 5.4–5.5):

    h_1(y) = f_1(y),        h_i(y) = stack[c_{i−1}(h_{i−1}(y)), f_i(y)]

A main head d_main (convolutions + a linear layer on the globally averaged map) gives one logit per image;
optional patch heads d_j (convolution + LeakyReLU + 1×1 convolution) give a logit per position of h_j, and
eq. 5.6 adds their log-probabilities to the main one (:func:`discriminator_head_loss`,
:func:`generator_head_loss`). Gradients reach the generator through the frozen b_i; their parameters never
change (``requires_grad=False``), unless ``trainable_trunk=True`` (the thesis' Rand-MS baseline: the same
architecture with a random, *trained* trunk).

The chapter's baselines, for comparison with the same training code:

- :class:`ImageDiscriminator` — the plain DCGAN discriminator on pixels (stride-2 4×4 convolutions, batch
  norm, LeakyReLU 0.2, one logit);
- :func:`ms_image_discriminator` — "MS": the perceptual architecture with a shared trunk whose inputs are
  the image at several scales instead of deep features (:class:`ImagePyramid`);
- :class:`SeparateMultiScaleDiscriminator` — separate patch discriminators on the image at several scales
  (Wang et al. 2018, pix2pixHD);
- :func:`rand_ms_discriminator` — "Rand-MS": the perceptual architecture on a random, trainable VGG trunk.

:func:`vgg_star_` turns a VGG extractor into the thesis' VGG* trunk (LeakyReLU 0.2 instead of ReLU; build the
extractor with ``pooling="avg"`` for its average pooling). The thesis fine-tunes VGG* on ImageNet for two
days after the change; featstat applies the change to the weights it has, so its VGG* features are the
pretrained VGG's with leaky activations (say so when comparing).

Every discriminator returns a list of logits: the main logit (shape N) first, then one N×1×h×w map per
patch head.

The five are registered in the network registry (:data:`featstat.registry.NETWORKS`, fact
``family="discriminator"``) as "perceptual", "image", "ms-image", "separate-ms" and "rand-ms";
:data:`DISCRIMINATORS` lists them and :func:`make_discriminator` builds one by name with uniform keywords
(the translation trainer and ``featstat train translate --discriminator`` read the registry).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_tensor, make_generator
from ..features import FeatureExtractor, PatchExtractor, vgg19
from ..features.sources import choose_features
from ..losses.adversarial import GAN_KINDS, discriminator_loss, generator_adversarial_loss
from ..registry import NETWORKS as _NETWORKS
from ..registry import NamesView

__all__ = [
    "DISCRIMINATORS",
    "ImageDiscriminator",
    "ImagePyramid",
    "PerceptualDiscriminator",
    "SeparateMultiScaleDiscriminator",
    "discriminator_head_loss",
    "generator_head_loss",
    "make_discriminator",
    "ms_image_discriminator",
    "rand_ms_discriminator",
    "reference_trunk",
    "vgg_star_",
]

SLOPE = 0.2  # LeakyReLU negative slope everywhere in the chapter (and VGG*)
POSITIONS = ("mean", "sum")


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(SLOPE)


def _init_(module: nn.Module, seed: int | torch.Generator) -> None:
    """DCGAN initialisation (N(0, 0.02) convolutions and linear layers, BN weights N(1, 0.02)), seeded."""
    g = make_generator(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=g) * 0.02)
                m.bias.zero_()


class ImagePyramid(nn.Module):
    """A feature "extractor" whose features are the image itself at ``levels`` scales: ``{"scale0": y,
    "scale1": avgpool2(y), …}`` (N×3×H/2^i×W/2^i). The input of the MS baseline (shared trunk over scales)."""

    def __init__(self, levels: int = 3) -> None:
        super().__init__()
        self.levels = _positive_int("levels", levels)
        self.layers = [f"scale{i}" for i in range(self.levels)]
        self.min_size = 2 ** (self.levels - 1)

    @property
    def cache_key(self) -> tuple:
        return ("image-pyramid", self.levels)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = check_tensor("images", images, ndim=4)
        out = {}
        for i, name in enumerate(self.layers):
            if i:
                x = F.avg_pool2d(x, 2)
            out[name] = x
        return out


def vgg_star_(extractor: FeatureExtractor) -> FeatureExtractor:
    """In place: every ReLU of ``extractor``'s trunk becomes LeakyReLU(0.2) — the thesis' VGG* (5.3.3.1).

    Build the extractor with ``pooling="avg"`` to get VGG*'s average pooling too. Returns the extractor.
    Its ``cache_key`` changes with it (VGG* features are another function of the image than the VGG's), so
    an :class:`~featstat.Objective` never takes one for the other when it merges extractors."""
    if not isinstance(extractor, FeatureExtractor):
        raise ValueError(
            f"extractor must be a featstat FeatureExtractor (a VGG), got {type(extractor).__name__}"
        )
    for index, module in enumerate(extractor.backbone):
        if isinstance(module, nn.ReLU):
            extractor.backbone[index] = _lrelu()
    if not getattr(extractor, "vgg_star", False):
        extractor._weights_key = ("vgg*", extractor._weights_key)
    extractor.vgg_star = True
    return extractor


def _probe(extractor: nn.Module, size: int) -> dict[str, Tensor]:
    """Shapes of the extractor's features on a size×size probe image (no gradient)."""
    param = next(iter(extractor.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with torch.no_grad():
        return extractor(torch.full((1, 3, size, size), 0.5, device=device, dtype=dtype))


def _pool_to(x: Tensor, size: torch.Size) -> Tensor:
    """Average pooling from x's spatial size down to ``size`` (the downsampling of the matching b_i)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    fh, fw = h // size[0], w // size[1]
    if fh >= 1 and fw >= 1 and (h // fh, w // fw) == tuple(size):
        return F.avg_pool2d(x, (fh, fw))
    return F.adaptive_avg_pool2d(x, size)


class _PatchHead(nn.Module):
    """d_j: 3×3 convolution + LeakyReLU, then a 1×1 convolution to one logit per position."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), _lrelu(), nn.Conv2d(width, 1, 1))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class _MainHead(nn.Module):
    """d_main: two 3×3 convolutions with LeakyReLU (the second with stride 2), global average, linear."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), _lrelu(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), _lrelu(),
        )  # fmt: skip
        self.linear = nn.Linear(width, 1)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(self.convs(h).mean(dim=(2, 3))).squeeze(1)


class PerceptualDiscriminator(nn.Module):
    """The perceptual discriminator of fig. 5.1 (eqs. 5.2–5.6) on any featstat extractor.

    Args:
        extractor: the reference network F with its layers in depth order, e.g.
            ``featstat.vgg19(["relu1_2", "relu2_2", "relu3_4", "relu4_4"])`` (any weights, including
            ``weights=None``), a :class:`~featstat.PatchExtractor`, or an :class:`ImagePyramid`. It must
            return ``{layer: N×C_i×h_i×w_i}`` with non-increasing spatial sizes.
        width: channels of every learnable block c_i and head (int), or one int per level.
        patch_heads: indices j (0-based, into the extractor's layers) of the h_j that get a patch head d_j
            (eq. 5.6); empty = the single-output version used for low resolutions.
        trainable_trunk: False (the thesis: F frozen, gradients flow through it to the generator); True
            trains F's parameters too (the Rand-MS baseline).
        probe_size: side of the probe image used once to read the features' channels and sizes
            (default: the extractor's ``min_size`` rounded up to 64).
        seed: int or ``torch.Generator`` for the learnable blocks' initialisation (DCGAN N(0, 0.02)).

    ``forward(images, features=None)`` takes RGB images N×3×H×W in [0, 1] (or the extractor's features
    already computed on them — pass ``features`` to share one trunk pass with an Objective term on the same
    extractor) and returns ``[d_main logits (N), d_j logits (N×1×h_j×w_j) …]``.
    """

    def __init__(
        self,
        extractor: nn.Module,
        *,
        width: int | Sequence[int] = 64,
        patch_heads: Sequence[int] = (),
        trainable_trunk: bool = False,
        probe_size: int | None = None,
        seed: int | torch.Generator = 0,
    ) -> None:
        super().__init__()
        if not callable(extractor) or not hasattr(extractor, "layers"):
            raise ValueError(
                f"extractor must be a featstat extractor (callable returning {{layer: map}} with .layers), "
                f"got {type(extractor).__name__}"
            )
        self.extractor = extractor
        self.layers = list(extractor.layers)
        k = len(self.layers)
        widths = [width] * k if isinstance(width, int) else list(width)
        if len(widths) != k or not all(isinstance(w, int) and w > 0 for w in widths):
            raise ValueError(
                f"width must be a positive int or {k} positive ints (one per layer), got {width!r}"
            )
        heads = sorted(set(patch_heads))
        if any(not isinstance(j, int) or not 0 <= j < k for j in heads):
            raise ValueError(f"patch_heads must be layer indices in 0..{k - 1}, got {list(patch_heads)!r}")
        self.patch_heads = heads
        self.trainable_trunk = bool(trainable_trunk)
        for p in extractor.parameters():
            p.requires_grad_(self.trainable_trunk)
        side = probe_size or max(64, 32 * math.ceil(getattr(extractor, "min_size", 1) / 32))
        shapes = {name: f.shape for name, f in _probe(extractor, side).items()}
        sizes = [shapes[n][-2:] for n in self.layers]
        if any(b[0] > a[0] or b[1] > a[1] for a, b in itertools.pairwise(sizes)):
            raise ValueError(
                f"extractor layers must be in depth order (non-increasing sizes), got {self.layers} with "
                f"sizes {[tuple(s) for s in sizes]} on a {side}² probe; list the layers shallow to deep"
            )
        in_ch = [shapes[n][1] for n in self.layers]
        self.blocks = nn.ModuleList()  # c_1 … c_{K−1}
        h_ch = in_ch[0]  # h_1 = f_1
        h_channels = [h_ch]
        for i in range(1, k):
            self.blocks.append(nn.Sequential(nn.Conv2d(h_ch, widths[i - 1], 3, padding=1), _lrelu()))
            h_ch = widths[i - 1] + in_ch[i]
            h_channels.append(h_ch)
        self.main = _MainHead(h_channels[-1], widths[-1])
        self.heads = nn.ModuleDict({str(j): _PatchHead(h_channels[j], widths[j]) for j in heads})
        _init_(self.blocks, seed)
        _init_(self.main, seed)
        _init_(self.heads, seed)

    def train(self, mode: bool = True) -> PerceptualDiscriminator:
        super().train(mode)
        if not self.trainable_trunk:
            self.extractor.eval()
        return self

    def forward(
        self, images: Tensor | None = None, features: Mapping[str, Tensor] | None = None
    ) -> list[Tensor]:
        if features is None:
            if images is None:
                raise ValueError("pass images (N×3×H×W in [0, 1]) or their features")
            features = self.extractor(images)
        missing = [n for n in self.layers if n not in features]
        if missing:
            raise ValueError(
                f"features lack layers {missing}; pass the output of this discriminator's extractor"
            )
        fs = [features[n] for n in self.layers]
        h = fs[0]
        hs = [h]
        for block, f in zip(self.blocks, fs[1:], strict=True):
            h = torch.cat([_pool_to(block(h), f.shape[-2:]), f.to(h.dtype)], dim=1)
            hs.append(h)
        return [self.main(h), *(self.heads[str(j)](hs[j]) for j in self.patch_heads)]


class ImageDiscriminator(nn.Module):
    """The DCGAN discriminator on pixels (the chapter's "DCGAN" baseline).

    ``depth`` stride-2 4×4 convolutions (``width``·2^i channels, capped at ``max_width``), batch norm after
    all but the first, LeakyReLU 0.2, then a 3×3 convolution to one channel averaged over positions: one
    logit per image for any input size ≥ 2^depth. Input N×3×H×W in [0, 1] (mapped to [−1, 1]).
    """

    def __init__(self, width: int = 64, depth: int = 4, *, max_width: int = 512,
                 seed: int | torch.Generator = 0) -> None:  # fmt: skip
        super().__init__()
        _positive_int("width", width)
        self.depth = _positive_int("depth", depth)
        layers: list[nn.Module] = []
        ch = 3
        for i in range(self.depth):
            out = min(width * 2**i, max_width)
            layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(out))
            layers.append(_lrelu())
            ch = out
        layers.append(nn.Conv2d(ch, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.min_size = 2**self.depth
        _init_(self, seed)

    def forward(self, images: Tensor) -> list[Tensor]:
        x = check_tensor("images", images, ndim=4, channels=3)
        return [self.net(x * 2 - 1).mean(dim=(1, 2, 3))]


class SeparateMultiScaleDiscriminator(nn.Module):
    """Separate patch discriminators on the image at ``scales`` scales (Wang et al. 2018; the chapter's
    fig. 5.4e baseline): discriminator s sees avgpool^s(y) and outputs an N×1×h×w patch-logit map.

    Each is a PatchGAN-style stack of ``depth`` stride-2 4×4 convolutions (LeakyReLU 0.2, instance norm
    after the first) and a 4×4 convolution to one channel. Returns ``[main, maps…]`` where ``main`` is the
    mean logit of the coarsest map (shape N) so that the list has the same form as the other discriminators.
    """

    def __init__(self, scales: int = 3, width: int = 64, depth: int = 3, *,
                 seed: int | torch.Generator = 0) -> None:  # fmt: skip
        super().__init__()
        self.scales = _positive_int("scales", scales)
        self.depth = _positive_int("depth", depth)
        self.nets = nn.ModuleList()
        for _ in range(self.scales):
            layers: list[nn.Module] = []
            ch = 3
            for i in range(depth):
                out = min(width * 2**i, 512)
                layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1))
                if i:
                    layers.append(nn.InstanceNorm2d(out, affine=True))
                layers.append(_lrelu())
                ch = out
            layers.append(nn.Conv2d(ch, 1, 3, padding=1))
            self.nets.append(nn.Sequential(*layers))
        self.min_size = 2 ** (depth + self.scales)  # the coarsest scale's map is then at least 2×2
        _init_(self, seed)

    def forward(self, images: Tensor) -> list[Tensor]:
        x = check_tensor("images", images, ndim=4, channels=3) * 2 - 1
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"images must be at least {self.min_size}×{self.min_size} for {self.scales} scales of depth "
                f"{self.depth}, got {tuple(x.shape)}; use fewer scales or larger crops"
            )
        maps = []
        for s, net in enumerate(self.nets):
            if s:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            maps.append(net(x))
        return [maps[-1].mean(dim=(1, 2, 3)), *maps[:-1]]


def ms_image_discriminator(levels: int = 4, *, width: int = 64, patch_heads: Sequence[int] = (0, 1, 2),
                           seed: int | torch.Generator = 0) -> PerceptualDiscriminator:  # fmt: skip
    """The "MS" baseline: the perceptual architecture with a trunk shared across scales whose inputs are the
    image at ``levels`` scales (:class:`ImagePyramid`) instead of deep features."""
    return PerceptualDiscriminator(ImagePyramid(levels), width=width, patch_heads=patch_heads, seed=seed)


#: VGG-19 layers at which the perceptual discriminators split the trunk into blocks (one per resolution).
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")


def rand_ms_discriminator(layers: Sequence[str] = VGG_LAYERS, *, width: int = 64,
                          patch_heads: Sequence[int] = (0, 1, 2),
                          seed: int | torch.Generator = 0) -> PerceptualDiscriminator:  # fmt: skip
    """The "Rand-MS" baseline: the multi-scale perceptual architecture on a VGG*-shaped trunk (average
    pooling, LeakyReLU 0.2) with seeded random weights that are trained with the rest."""
    g = make_generator(seed)
    trunk = vgg_star_(vgg19(list(layers), weights=None, pooling="avg", seed=g))
    return PerceptualDiscriminator(trunk, width=width, patch_heads=patch_heads, trainable_trunk=True, seed=g)


# ------------------------------------------------------------------------------------------------ registry


def reference_trunk(layers: Sequence[str] = VGG_LAYERS, weights: str | None = "auto", *,
                    vgg_star: bool = True) -> nn.Module:  # fmt: skip
    """The frozen reference network F of the perceptual discriminator.

    ``weights``: "auto" (the best VGG-19 features on this machine, :func:`~featstat.features.sources.
    choose_features`; ``layers`` are mapped to the layers that source has, e.g. relu3_4 → relu3_3 for a
    VGG-16), None (VGG-19 with seeded random weights), "patches" (raw 5×5 patches at stride 2: no network),
    or a weights name/file for VGG-19. ``vgg_star``: average pooling and LeakyReLU 0.2 (the thesis' VGG*).
    """
    if weights == "patches":
        return PatchExtractor(5, 2)
    pooling = "avg" if vgg_star else "max"
    if weights == "auto":
        source = choose_features("vgg19", list(layers))
        names = list(dict.fromkeys(source.layers[n] for n in layers))
        trunk = FeatureExtractor(source.arch, names, source.weights, pooling=pooling, seed=0)
    else:
        trunk = FeatureExtractor("vgg19", list(layers), weights, pooling=pooling, seed=0)
    return vgg_star_(trunk) if vgg_star else trunk


def _heads(patch_heads: Sequence[int] | None, default: tuple[int, ...], levels: int) -> tuple[int, ...]:
    heads = default if patch_heads is None else tuple(patch_heads)
    return tuple(j for j in heads if j < levels)


def _perceptual(*, width: int = 64, layers: Sequence[str] = VGG_LAYERS, weights: str | None = "auto",
                vgg_star: bool = True, patch_heads: Sequence[int] | None = None,
                seed: int | torch.Generator = 0) -> nn.Module:  # fmt: skip
    trunk = reference_trunk(layers, weights, vgg_star=vgg_star)
    heads = _heads(patch_heads, (), len(trunk.layers))
    return PerceptualDiscriminator(trunk, width=width, patch_heads=heads, seed=seed)


def _image(*, width: int = 64, seed: int | torch.Generator = 0, **_: object) -> nn.Module:
    return ImageDiscriminator(width=width, seed=seed)


def _ms_image(*, width: int = 64, layers: Sequence[str] = VGG_LAYERS,
              patch_heads: Sequence[int] | None = None, seed: int | torch.Generator = 0,
              **_: object) -> nn.Module:  # fmt: skip
    heads = _heads(patch_heads, (0, 1, 2), len(layers))
    return ms_image_discriminator(len(layers), width=width, patch_heads=heads, seed=seed)


def _separate_ms(*, width: int = 64, seed: int | torch.Generator = 0, **_: object) -> nn.Module:
    return SeparateMultiScaleDiscriminator(width=width, seed=seed)


def _rand_ms(*, width: int = 64, layers: Sequence[str] = VGG_LAYERS, patch_heads: Sequence[int] | None = None,
             seed: int | torch.Generator = 0, **_: object) -> nn.Module:  # fmt: skip
    heads = _heads(patch_heads, (0, 1, 2), len(layers))
    return rand_ms_discriminator(layers, width=width, patch_heads=heads, seed=seed)


_REGISTERED = (
    ("perceptual", _perceptual, "frozen VGG* trunk + learnable blocks (thesis fig. 5.1)"),
    ("image", _image, "DCGAN discriminator on pixels"),
    ("ms-image", _ms_image, "perceptual architecture on the image at several scales (MS)"),
    ("separate-ms", _separate_ms, "separate patch discriminators per scale (Wang et al.)"),
    ("rand-ms", _rand_ms, "perceptual architecture on a random trainable VGG* trunk (Rand-MS)"),
)
for _name, _builder, _summary in _REGISTERED:
    _builder.family = "discriminator"  # type: ignore[attr-defined]  # fact: builders of discriminators
    _builder.summary = _summary  # type: ignore[attr-defined]  # one line for --help
    if _name not in _NETWORKS.registered_names():
        _NETWORKS.register_value(_name, _builder)
del _name, _builder, _summary

#: Names of the discriminators in the network registry (:data:`featstat.registry.NETWORKS`,
#: ``family="discriminator"``), read at each access: one registered later appears here, in the CLI's
#: ``--discriminator`` choices and in :class:`~featstat.adversarial.translation.TranslationOptions`.
DISCRIMINATORS: NamesView = _NETWORKS.view(family="discriminator")


def make_discriminator(name: str, *, width: int = 64, layers: Sequence[str] = VGG_LAYERS,
                       weights: str | None = "auto", vgg_star: bool = True,
                       patch_heads: Sequence[int] | None = None,
                       seed: int | torch.Generator = 0) -> nn.Module:  # fmt: skip
    """The discriminator registered as ``name`` (:data:`DISCRIMINATORS`).

    Every builder takes the same keywords and ignores those it has no use for: ``width`` (channels of the
    learnable blocks), ``layers`` (the levels: VGG layers of the perceptual trunk, their count for MS),
    ``weights`` and ``vgg_star`` (the perceptual trunk, see :func:`reference_trunk`), ``patch_heads``
    (levels with a patch head, eq. 5.6; None: none for "perceptual", 0,1,2 for "ms-image" and "rand-ms"),
    ``seed`` (int or ``torch.Generator``, the learnable weights' initialisation).
    """
    if name not in DISCRIMINATORS:
        raise ValueError(
            f"discriminator must be one of {tuple(DISCRIMINATORS)}, got {name!r}"
            f"{_NETWORKS.hint(name, list(DISCRIMINATORS))}"
        )
    builder = _NETWORKS.get(name)
    return builder(width=width, layers=tuple(layers), weights=weights, vgg_star=vgg_star,
                   patch_heads=patch_heads, seed=seed)  # fmt: skip


def discriminator_head_loss(real: Sequence[Tensor], fake: Sequence[Tensor], kind: str = "nonsaturating",
                            *, positions: str = "mean") -> Tensor:  # fmt: skip
    """The discriminator's loss over all its heads (eq. 5.6): the sum over heads of
    :func:`~featstat.losses.functional.discriminator_loss` (mean over the batch).

    ``positions="mean"`` averages each patch head over its positions (as pix2pixHD / CycleGAN do, so that a
    patch head weighs like the main head); ``"sum"`` sums them as eq. 5.6 writes (log D = log d_main +
    Σ_j Σ_p log d_{j,p}), which lets large maps dominate.
    """
    check_choice("kind", kind, GAN_KINDS)
    check_choice("positions", positions, POSITIONS)
    if len(real) != len(fake) or not real:
        raise ValueError(
            f"real and fake must be the same non-empty lists of logits, got {len(real)} and {len(fake)}"
        )
    total = sum(
        discriminator_loss(r, f, kind) * (1 if positions == "mean" or r.dim() == 1 else r[0].numel())
        for r, f in zip(real, fake, strict=True)
    )
    return total  # type: ignore[return-value]


def generator_head_loss(
    fake: Sequence[Tensor], kind: str = "nonsaturating", *, positions: str = "mean"
) -> Tensor:
    """The generator's adversarial loss over all heads of a discriminator (see
    :func:`discriminator_head_loss` for ``positions``)."""
    check_choice("kind", kind, GAN_KINDS)
    check_choice("positions", positions, POSITIONS)
    if not fake:
        raise ValueError("fake must be a non-empty list of logits")
    total = sum(
        generator_adversarial_loss(f, kind) * (1 if positions == "mean" or f.dim() == 1 else f[0].numel())
        for f in fake
    )
    return total  # type: ignore[return-value]
