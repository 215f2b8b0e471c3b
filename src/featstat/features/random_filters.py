"""A feature extractor that needs no download: one layer of random multi-scale filters and a ReLU.

Ustyuzhaninov, Brendel, Gatys & Bethge, "What does it take to generate natural textures?" (ICLR 2017;
arXiv:1606.00021 "Texture synthesis using shallow convolutional networks with random filters") found that a
*single* convolutional layer of *random* filters at several scales, followed by a ReLU, already gives
Gram-matrix texture statistics that rival those of the trained VGG-19 for many textures. Their multi-scale
model uses filters of sizes 3, 5, 7, 11, 15, 23, 37 and 55 pixels, 128 filters of each size (1024 maps).

What this module computes, for an RGB image x in [0, 1] (N×3×H×W):

    x̃ = (x − mean) / std                      ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
    y_k = ReLU(w_k ⋆ x̃)                       one map per filter, ⋆ = cross-correlation (as ``F.conv2d``)

Each filter ``w_k`` (3×k×k) is drawn i.i.d. from N(0, 1) and scaled to unit L2 norm, so white noise of unit
variance gives unit-variance responses at every scale and no scale dominates the statistics by its size.
Biases are zero. The filters of size k come from their own generator seeded with ``seed·1000 + k``: the same
seed gives the same filters of size k whichever other sizes are requested. (The paper's exact filter
distribution and normalisation could not be checked offline; these are our choices, documented so results
can be reproduced. ``zero_mean=True`` also removes each filter's mean, making the features blind to the
image's mean colour, which Gram-based synthesis then no longer constrains.)

Layers (``layers=``): ``"k3"``, ``"k5"``, …, ``"k55"`` — the 128 maps of one filter size — and ``"all"``, the
maps of every size stacked into one 1024-channel layer (its Gram matrix also holds the cross-scale
correlations; the paper's single-layer model). With ``padding="valid"`` (default, no border effects) the map
of size k is (H − k + 1)×(W − k + 1); ``"all"`` crops every scale to the common centred region of the largest
size.
With ``padding="circular"`` every map is H×W and the image is treated as periodic (what a tileable texture
wants; the example image's own opposite borders are then joined too).

Speed: filters larger than ``fft_threshold`` (7) are applied by FFT (cost independent of k), smaller ones by
``F.conv2d``; both give the same result to float precision (tested). At 128² with 64 filters per size,
forward + backward of one size took ~19 ms by FFT whatever the size, against 15 ms (k = 7) and 24 ms (k = 11)
by ``F.conv2d`` on one CPU thread, hence the threshold (the 8 paper sizes: 1.63× → 1.32× the cost of VGG-19
up to relu3_1 when k = 11 moved to FFT, same run). Half-precision images are computed in
float32. The extractor has no trainable parameters; gradients flow to the input image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_image, check_tensor

__all__ = ["PAPER_SIZES", "RandomFilterExtractor", "random_filters"]

#: Filter sizes of the multi-scale model of Ustyuzhaninov et al. (ICLR 2017).
PAPER_SIZES: tuple[int, ...] = (3, 5, 7, 11, 15, 23, 37, 55)
PADDINGS = ("valid", "circular")
ALL = "all"
#: Memory the FFTs of the filters may keep between calls (per extractor), e.g. 4 sizes × 128 filters at 256²
#: take 400 MiB. Beyond it they are recomputed each call.
FFT_CACHE_BYTES = 1 << 29

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _layer_name(size: int) -> str:
    return f"k{size}"


def _check_sizes(sizes: object) -> tuple[int, ...]:
    if isinstance(sizes, int) or not isinstance(sizes, Sequence) or not sizes:
        raise ValueError(
            f"sizes must be a non-empty list of odd filter sizes, e.g. {PAPER_SIZES}, got {sizes!r}"
        )
    out = []
    for s in sizes:
        if not isinstance(s, int) or isinstance(s, bool) or s < 1 or s % 2 == 0 or s >= 1000:
            raise ValueError(
                f"sizes must hold odd positive integers below 1000 (filters have a centre pixel), got {s!r} "
                f"in {list(sizes)}"
            )
        out.append(s)
    if len(set(out)) != len(out):
        raise ValueError(f"sizes must not repeat a size, got {list(sizes)}")
    return tuple(sorted(out))


def make_filters(size: int, count: int, seed: int, *, zero_mean: bool = False) -> Tensor:
    """``count`` random 3×size×size filters (float32, CPU) of unit L2 norm, from seed ``seed·1000 + size``."""
    g = torch.Generator().manual_seed(seed * 1000 + size)
    w = torch.randn(count, 3, size, size, generator=g, dtype=torch.float32)
    if zero_mean:
        w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    return w / w.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]


class RandomFilterExtractor(nn.Module):
    """Random multi-scale filters + ReLU as named "layers" (see the module docstring).

    Args:
        layers: names to return, in order: ``"k{size}"`` for a size in ``sizes`` and/or ``"all"``.
            None (default): one layer per size, ``["k3", "k5", …]``.
        sizes: odd filter sizes (default the paper's 3, 5, 7, 11, 15, 23, 37, 55).
        filters: filters per size (default 128, the paper's).
        seed: int; the same seed always gives the same filters.
        padding: "valid" (default) or "circular".
        zero_mean: remove each filter's mean (see the module docstring); default False.
        fft_threshold: filters larger than this are applied by FFT (default 7: k ≥ 11 by FFT).
        device, dtype: where the filter bank lives (``.to()`` works as for any module).

    Exposes the interface of :class:`~featstat.features.FeatureExtractor` that :class:`featstat.Objective`
    uses: ``layers``, ``cache_key``, ``min_size``, ``with_layers`` and ``forward(images) -> {layer: map}``.
    """

    def __init__(
        self,
        layers: str | Sequence[str] | None = None,
        sizes: Sequence[int] = PAPER_SIZES,
        filters: int = 128,
        seed: int = 0,
        padding: str = "valid",
        *,
        zero_mean: bool = False,
        fft_threshold: int = 7,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.sizes = _check_sizes(sizes)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive int (filters per size), got {filters!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {type(seed).__name__}")
        self.padding = check_choice("padding", padding, PADDINGS)
        if not isinstance(fft_threshold, int) or fft_threshold < 0:
            raise ValueError(f"fft_threshold must be a non-negative int, got {fft_threshold!r}")
        self.filters, self.seed, self.zero_mean = filters, seed, bool(zero_mean)
        self.fft_threshold = fft_threshold
        self._fft_cache: dict[tuple, Tensor] = {}
        self.layers = self._check_layers(layers)
        needed = self.sizes if ALL in self.layers else [int(n[1:]) for n in self.layers]
        self._computed = tuple(sorted(set(needed)))
        for s in self._computed:
            bank = make_filters(s, filters, seed, zero_mean=zero_mean)
            self.register_buffer(f"w{s}", bank, persistent=False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.min_size = max(self._computed) if self.padding == "valid" else 1
        self.to(device=device, dtype=dtype)

    def _check_layers(self, layers: str | Sequence[str] | None) -> list[str]:
        valid = [_layer_name(s) for s in self.sizes] + [ALL]
        if layers is None:
            return valid[:-1]
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, Sequence) or not layers or not all(isinstance(n, str) for n in layers):
            raise ValueError(f"layers must be a non-empty list of layer names from {valid}, got {layers!r}")
        unknown = [n for n in layers if n not in valid]
        if unknown:
            raise ValueError(
                f"layers: unknown random-filter layers {unknown}; this extractor (sizes {list(self.sizes)}) "
                f"has {valid}; add the size to sizes=... to use its layer"
            )
        return list(dict.fromkeys(layers))

    # -- the interface the Objective uses -----------------------------------------------------------

    @property
    def cache_key(self) -> tuple:
        """Hashable identity of the computation (equal keys ⇒ equal features for every shared layer)."""
        return ("random_filters", self.filters, self.seed, self.padding, self.zero_mean)

    def with_layers(self, layers: str | Sequence[str]) -> RandomFilterExtractor:
        """The same filter bank (same sizes, seed, padding) returning other ``layers``."""
        if isinstance(layers, str):
            layers = [layers]
        extra = {int(n[1:]) for n in layers if n != ALL and n[:1] == "k" and n[1:].isdigit()}
        sizes = set(self.sizes) | extra
        return RandomFilterExtractor(
            layers,
            sorted(sizes),
            self.filters,
            self.seed,
            self.padding,
            zero_mean=self.zero_mean,
            fft_threshold=self.fft_threshold,
            device=self.mean.device,
            dtype=self.mean.dtype,
        )

    def train(self, mode: bool = True) -> RandomFilterExtractor:
        """Always in eval mode (a fixed feature function)."""
        return super().train(False)

    def _apply(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._fft_cache.clear()  # .to() / .half() ...: cached FFTs of the old filters are stale
        return super()._apply(fn, *args, **kwargs)

    def filter_bank(self, size: int) -> Tensor:
        """The filters of ``size`` (filters×3×size×size)."""
        if size not in self._computed:
            raise ValueError(
                f"size {size} is not computed by this extractor (it computes {list(self._computed)})"
            )
        return getattr(self, f"w{size}")

    # -- computation ------------------------------------------------------------------------------------

    def _response(self, x: Tensor, size: int) -> Tensor:
        w = self.filter_bank(size).to(x.dtype)
        h, wd = x.shape[-2:]
        if size <= self.fft_threshold:
            if self.padding == "circular":
                p = size // 2
                x = F.pad(x, (p, p, p, p), mode="circular")
            return F.conv2d(x, w)
        # circular cross-correlation by FFT: y[i, j] = Σ w[c, a, b] · x[c, (i + a) % H, (j + b) % W]
        xf = torch.fft.rfft2(x, s=(h, wd))
        y = torch.fft.irfft2(torch.einsum("nchw,ochw->nohw", xf, self._filter_fft(w, size, h, wd)), s=(h, wd))
        if self.padding == "circular":
            p = size // 2
            return torch.roll(y, shifts=(p, p), dims=(-2, -1))
        return y[..., : h - size + 1, : wd - size + 1]

    def _filter_fft(self, w: Tensor, size: int, h: int, wd: int) -> Tensor:
        """conj(FFT) of the zero-padded filters at H×W, kept while they fit in ``FFT_CACHE_BYTES``."""
        key = (size, h, wd, w.device, w.dtype, w.data_ptr())
        hit = self._fft_cache.get(key)
        if hit is not None:
            return hit
        with torch.no_grad():
            wf = torch.fft.rfft2(w, s=(h, wd)).conj()
        nbytes = wf.numel() * wf.element_size()
        cached = sum(v.numel() * v.element_size() for v in self._fft_cache.values())
        if cached + nbytes > FFT_CACHE_BYTES:
            self._fft_cache.clear()  # a new image size: forget the old one
        if nbytes <= FFT_CACHE_BYTES:
            self._fft_cache[key] = wf
        return wf

    def forward(self, images: Tensor, *, validate: bool | None = None) -> dict[str, Tensor]:
        """Features of ``images`` (N×3×H×W RGB in [0, 1], float) for every requested layer.

        Returns ``{name: N×C×h×w}`` in the order of ``self.layers`` (float32 for half inputs, else the images'
        dtype). Values are checked (finite, in [0, 1]) unless value checks are off or ``validate=False``.
        """
        x = check_tensor("images", images, ndim=4, channels=3)
        h, w = x.shape[-2:]
        if h < self.min_size or w < self.min_size:
            raise ValueError(
                f"images must be at least {self.min_size}×{self.min_size} pixels for random filters of size "
                f"{self.min_size} with padding='valid', got shape {tuple(x.shape)}; upsample the images, use "
                f"smaller sizes=... or padding='circular'"
            )
        check_image("images", x.detach(), validate=validate)  # values: per the switch unless given
        if x.device != self.mean.device:  # a user's module is never moved implicitly
            raise ValueError(
                f"images are on {x.device} but the random-filter extractor is on {self.mean.device}; move "
                f"the extractor with .to(images.device)"
            )
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        x = (x.to(dtype) - self.mean.to(dtype)) / self.std.to(dtype)
        maps = {s: torch.relu(self._response(x, s)) for s in self._computed}
        out: dict[str, Tensor] = {}
        for name in self.layers:
            if name != ALL:
                out[name] = maps[int(name[1:])]
                continue
            kmax = max(self._computed)
            if self.padding == "circular":
                out[name] = torch.cat([maps[s] for s in self._computed], dim=1)
            else:
                hc, wc = h - kmax + 1, w - kmax + 1
                offsets = {s: (kmax - s) // 2 for s in self._computed}
                crops = [maps[s][..., o : o + hc, o : o + wc] for s, o in offsets.items()]
                out[name] = torch.cat(crops, dim=1)
        return out

    def extra_repr(self) -> str:
        return (
            f"layers={self.layers}, sizes={list(self.sizes)}, filters={self.filters}, seed={self.seed}, "
            f"padding={self.padding!r}, zero_mean={self.zero_mean}"
        )


def random_filters(
    layers: str | Sequence[str] | None = None,
    sizes: Sequence[int] = PAPER_SIZES,
    filters: int = 128,
    seed: int = 0,
    padding: str = "valid",
    *,
    zero_mean: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RandomFilterExtractor:
    """Random multi-scale filter extractor (Ustyuzhaninov et al., ICLR 2017): :class:`RandomFilterExtractor`.

    Example::

        rf = featstat.features.random_filters.random_filters()           # 8 sizes × 128 filters, no download
        feats = rf(images)         # 256² images → {"k3": N×128×254×254, …, "k55": N×128×202×202}
    """
    return RandomFilterExtractor(
        layers, sizes, filters, seed, padding, zero_mean=zero_mean, device=device, dtype=dtype
    )
