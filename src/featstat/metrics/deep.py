"""Perceptual metrics on deep features: LPIPS-style distance, Gram (texture) distance, CX and PDL distances.

All four run a fixed backbone (featstat's AlexNet, VGG-16, VGG-19 or SqueezeNet 1.1, see
:mod:`featstat.features`) on both images and compare the features of some layers; they differ in what they
compare. Images are N×3×H×W RGB in [0, 1]; the backbones apply their own input normalisation (for the
torchvision weights this is exactly LPIPS' "scaling layer": LPIPS maps [0, 1] to [-1, 1] and then
subtracts (-.030, -.088, -.188) and divides by (.458, .448, .450), which equals ImageNet mean/std on [0, 1]).
Lower is better for all of them; identical images give 0.

**LPIPS** (Zhang et al. 2018, eq. 1): ``d(x, x0) = Σ_l 1/(H_l W_l) Σ_{h,w} ‖w_l ⊙ (ŷ_l − ŷ0_l)‖²`` where
ŷ_l are the layer-l features unit-normalised along channels at every position (``f / (‖f‖ + 1e-10)``) and w_l
the calibrated per-channel weights of LPIPS v0.1 (``lin{l}.model.1.weight``, 1×C×1×1; applied as a 1×1
convolution of the squared difference, so ``‖w ⊙ Δ‖²`` stands for ``Σ_c w_c Δ_c²``). Without calibration
(``calibration=None``) every w_c = 1: the "baseline" distance of unit-normalised features. Layers: AlexNet
relu1..relu5, VGG-16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, SqueezeNet relu1, fire3, fire5..fire9. The
layers are summed (``layer_reduction="sum"``, the paper and the reference code); "mean" divides by their
number (the 2AFC ranking is the same either way).

**Gram distance** (Gondal et al. 2018, "texture transfer for SR", eq. 5):
``d(x, x0) = Σ_l 1/C_l² Σ_{i,j} (G^l_ij − A^l_ij)²`` with the normalised Gram matrices G = F Fᵀ/(C·H·W) of
both images (the normalisation of the authors' code), i.e. Σ_l of
:func:`featstat.losses.functional.gram_loss`.
Layers: the paper uses the LPIPS layers of each network *without* those before the first pooling layer and
those after the penultimate one: VGG-16 relu2_2, relu3_3, relu4_3 (VGG-19: relu2_2, relu3_4, relu4_4). Read
literally, the rule leaves AlexNet relu2 and SqueezeNet fire3 only; the paper does not list them, so pass
``layers=`` to choose others.

**CX distance**: ``−log CX(x, x0)`` of the contextual loss (Mechrez et al. 2018, eq. 8) per layer, averaged
over layers, computed by :func:`featstat.losses.functional.contextual_similarity`. Default: VGG-19 conv3_4,
h = 0.1, cosine distance (the CX-SR setting), with the papers' 65×65 random position sampling (seeded, the
same positions in both maps when their sizes agree; maps with ≤ 65² positions are used whole). For the
2AFC setting of the CX paper use ``net="alex"``/``"vgg"``/``"squeeze"`` with their LPIPS layers and
``normalize=True``.

**PDL distance**: the projected distribution loss (Delbracio et al., eq. 5 without the pixel term), the mean
over channels of the 1-D Wasserstein-1 distance between the two images' feature marginals, via
:func:`featstat.losses.functional.projected_distribution_loss`. Default: VGG-16 conv4_3 ("VGG16 conv4"),
identity projections.

Weights: ``weights="default"`` loads torchvision's ImageNet file of the backbone (see ``featstat weights
list``); ``weights=None`` gives seeded random weights (useful for tests, meaningless as a perceptual metric).
LPIPS calibration heads are registered as ``lpips-alex``, ``lpips-vgg``, ``lpips-squeeze`` (files
``lpips-v0.1/{alex,vgg,squeeze}.pth`` in ``$FEATSTAT_WEIGHTS`` or the torch hub cache).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._checks import check_choice, check_positive, check_reduction, make_generator, reduce
from ..features import (
    LAYERS,
    REGISTRY,
    FeatureExtractor,
    WeightEntry,
    register_weights,
    resolve_weights,
)
from ..features.layers import layer_index
from ..features.sampling import sample_positions
from ..features.sources import choose_features
from ..features.weights import read_state_dict
from ..losses.functional import contextual_similarity, projected_distribution_loss, texture_loss
from .base import Metric, check_image_pair

__all__ = [
    "LPIPS",
    "LPIPS_LAYERS",
    "NETS",
    "CXDistance",
    "DeepMetric",
    "GramDistance",
    "PDLDistance",
    "cx_distance",
    "gram_distance",
    "load_lpips_heads",
    "lpips",
    "lpips_from_features",
    "paper_gram_layers",
    "pdl_distance",
    "resolve_arch",
    "unit_normalize",
]

#: LPIPS network names → featstat architectures.
NETS: dict[str, str] = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}

#: Layers LPIPS taps, per architecture (VGG-19, not in LPIPS, gets the last ReLU of every block likewise).
LPIPS_LAYERS: dict[str, tuple[str, ...]] = {
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "vgg19": ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
    "squeezenet1_1": ("relu1", "fire3", "fire5", "fire6", "fire7", "fire8", "fire9"),
}

LAYER_REDUCTIONS = ("sum", "mean")

_LPIPS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{}.pth"
_LPIPS_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    "squeeze": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
}
_LPIPS_LICENCE = "BSD-2-Clause (Zhang et al., PerceptualSimilarity); heads calibrated on BAPPS"


def _register_lpips_heads() -> None:
    for short, arch in NETS.items():
        name = f"lpips-{short}"
        if name in REGISTRY:
            continue
        register_weights(
            WeightEntry(name, arch, f"lpips-v0.1/{short}.pth", _LPIPS_URL.format(short), _LPIPS_SHA256[short],
                        "torchvision", LPIPS_LAYERS[arch][-1],
                        f"LPIPS v0.1 linear calibration heads for {arch} (heads only, not a trunk; use with "
                        f"the '{arch}' trunk)", _LPIPS_LICENCE)
        )  # fmt: skip


_register_lpips_heads()


def resolve_arch(net: str) -> str:
    """featstat architecture for an LPIPS net name ("alex", "vgg", "squeeze") or an architecture name."""
    arch = NETS.get(net, net)
    if arch not in LAYERS:
        raise ValueError(f"net must be one of {(*NETS, *LAYERS)}, got {net!r}")
    return arch


def paper_gram_layers(arch: str) -> tuple[str, ...]:
    """The Gram-metric layers of Gondal et al. (sec. 7): the LPIPS layers of ``arch`` after its first pooling
    layer and before its penultimate one (VGG-16: relu2_2, relu3_3, relu4_3)."""
    arch = resolve_arch(arch)
    pools = sorted(i for name, i in LAYERS[arch].items() if name.startswith("pool"))
    first, penultimate = pools[0], pools[-2]
    return tuple(n for n in LPIPS_LAYERS[arch] if first < layer_index(arch, n) < penultimate)


def unit_normalize(f: Tensor, eps: float = 1e-10) -> Tensor:
    """Features divided by their Euclidean norm over channels at each position: ``f / (‖f‖₂ + eps)``
    (LPIPS)."""
    # vector_norm has a zero (not NaN) gradient where all channels are 0, which ReLU features often are
    return f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + eps)


def _check_layer_reduction(value: str) -> str:
    return check_choice("layer_reduction", value, LAYER_REDUCTIONS)


def _combine(per_layer: list[Tensor], layer_reduction: str) -> Tensor:
    total = torch.stack(per_layer, dim=0).sum(dim=0)
    return total / len(per_layer) if layer_reduction == "mean" else total


# -------------------------------------------------------------------------------------------- LPIPS heads


def load_lpips_heads(source: str | os.PathLike[str], *, download: bool | None = None) -> list[Tensor]:
    """Read LPIPS v0.1 calibration heads: one non-negative weight vector (C_l,) per layer, in layer order.

    ``source``: "alex", "vgg", "squeeze" (registry entries ``lpips-<net>``, resolved like any weights:
    explicit path → ``$FEATSTAT_WEIGHTS/lpips-v0.1/<net>.pth`` → torch hub cache → download when
    allowed), a registry name, or a path to a ``.pth`` file with keys ``lin{k}.model.1.weight`` of shape
    1×C×1×1. Loaded with ``torch.load(weights_only=True)``; registry files are sha256-checked.
    """
    name = f"lpips-{source}" if isinstance(source, str) and source in NETS else source
    path = resolve_weights(name, download=download)
    if isinstance(name, str) and name in REGISTRY:
        from ..features.weights import verify_sha256

        verify_sha256(path, REGISTRY[name])
    state = read_state_dict(path)
    heads: dict[int, Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0].startswith("lin") and parts[0][3:].isdigit() and parts[1:] == [
            "model", "1", "weight",
        ]:  # fmt: skip
            if value.dim() != 4 or value.shape[0] != 1 or value.shape[2:] != (1, 1):
                raise ValueError(
                    f"LPIPS head {key} in {path} must have shape 1×C×1×1, got {tuple(value.shape)}"
                )
            heads[int(parts[0][3:])] = value.reshape(-1).float()
    if not heads or sorted(heads) != list(range(len(heads))):
        raise ValueError(
            f"{path} is not an LPIPS calibration file: expected keys lin0.model.1.weight, lin1..., got "
            f"{sorted(state)[:6]}"
        )
    return [heads[k] for k in range(len(heads))]


def lpips_from_features(
    pred_feats: Mapping[str, Tensor] | Sequence[Tensor],
    target_feats: Mapping[str, Tensor] | Sequence[Tensor],
    heads: Sequence[Tensor] | None = None,
    layer_reduction: str = "sum",
) -> Tensor:
    """LPIPS distance from already computed features (one value per sample, shape N).

    Args:
        pred_feats, target_feats: the layers' N×C_l×H_l×W_l features (dicts in the same layer order, or
            lists);
            target batch 1 broadcasts.
        heads: per-layer non-negative channel weights (C_l,) (calibrated LPIPS) or None (all ones).
        layer_reduction: "sum" (LPIPS) or "mean" over layers.

    Per layer: ``mean_{h,w} Σ_c w_c (ŷ_c − ŷ0_c)²`` with ŷ the unit-normalised features
    (:func:`unit_normalize`).
    """
    _check_layer_reduction(layer_reduction)
    fps = list(pred_feats.values()) if isinstance(pred_feats, Mapping) else list(pred_feats)
    fts = list(target_feats.values()) if isinstance(target_feats, Mapping) else list(target_feats)
    if len(fps) != len(fts) or not fps:
        raise ValueError(
            f"pred_feats and target_feats must hold the same layers, got {len(fps)} and {len(fts)}"
        )
    if heads is not None and len(heads) != len(fps):
        raise ValueError(
            f"heads has {len(heads)} layers but the features have {len(fps)}; LPIPS heads are calibrated for "
            f"the LPIPS layers of one network (see LPIPS_LAYERS)"
        )
    per_layer = []
    for k, (fp, ft) in enumerate(zip(fps, fts, strict=True)):
        diff = (unit_normalize(fp) - unit_normalize(ft.to(fp.dtype))).square()
        if heads is None:
            d = diff.sum(dim=1)
        else:
            w = heads[k].to(device=diff.device, dtype=diff.dtype)
            if w.numel() != diff.shape[1]:
                raise ValueError(
                    f"head {k} has {w.numel()} channels but layer {k} features have {diff.shape[1]}; were "
                    f"the heads made for another network?"
                )
            d = (diff * w.view(1, -1, 1, 1)).sum(dim=1)
        per_layer.append(d.flatten(1).mean(dim=1))
    return _combine(per_layer, layer_reduction)


# ----------------------------------------------------------------------------------------- module base


class DeepMetric(Metric):
    """A metric over the features of a fixed backbone (see the module docstring). Lower is better.

    Args:
        net: "alex", "vgg", "squeeze" (LPIPS names for alexnet, vgg16, squeezenet1_1) or an architecture
            name ("vgg19", ...).
        layers: layer names, or None for the metric's default layers.
        weights: "default" (the architecture's torchvision file), a registry name, a path, None (seeded
            random weights), or "auto": the best trained features on this machine, never downloading and
            never random (torchvision's file, then HED's VGG-16 with VGG-19 layer names mapped, then the
            shallow Caffe VGG-19; :mod:`featstat.features.sources`); :attr:`feature_source` records the
            choice.
        seed: seed of the random weights (when ``weights`` is None).
        normalize: unit-normalise features along channels at every position before comparing (LPIPS).
        layer_reduction: "sum" or "mean" over layers.
        reduction: "mean", "sum" or "none" over images.

    The backbone follows the input: it is moved to the images' device, and to float64 for float64 images
    (half images run through the float32 backbone). Gradients flow to the images.
    """

    higher_is_better = False
    #: Pointwise metrics need pred and target of the same size.
    same_size = False
    backbone = True
    auto_weights = True
    default_net = "vgg"
    default_layer_reduction = "mean"

    def __init__(
        self,
        net: str | None = None,
        layers: Sequence[str] | None = None,
        weights: str | os.PathLike[str] | None = "default",
        *,
        seed: int = 0,
        normalize: bool = False,
        layer_reduction: str | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.arch = resolve_arch(net if net is not None else self.default_net)
        layers = self.default_layers(self.arch) if layers is None else layers
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise ValueError(f"layers must name at least one {self.arch} layer, got {layers!r}")
        self.layers = list(layers)
        #: what weights="auto" picked (FeatureSource.info()), None otherwise
        self.feature_source: dict | None = None
        if isinstance(weights, str) and weights == "auto":
            # random features are no perceptual metric: auto never falls back to them
            source = choose_features(self.arch, self.layers, allow_random=False)
            self.arch, weights = source.arch, source.weights
            self.layers = list(dict.fromkeys(source.layers.values()))
            self.feature_source = source.info()
        self.extractor = FeatureExtractor(self.arch, self.layers, weights, seed=seed)
        self.weights = None if weights is None else str(weights)
        self.normalize = bool(normalize)
        self.layer_reduction = _check_layer_reduction(layer_reduction or self.default_layer_reduction)

    def default_layers(self, arch: str) -> tuple[str, ...]:
        return LPIPS_LAYERS[arch]

    def _follow(self, x: Tensor) -> None:
        p = self.extractor.mean
        if x.dtype == torch.float64:
            dtype = torch.float64
        elif p.dtype == torch.float64:
            dtype = torch.float32
        else:
            dtype = p.dtype  # float32, or half when the user converted the module
        if p.device != x.device or p.dtype != dtype:
            self.to(device=x.device, dtype=dtype)

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """Features of images (N×3×H×W in [0, 1]) at ``self.layers``, unit-normalised if ``normalize``."""
        self._follow(images)
        feats = self.extractor(images)
        return {k: unit_normalize(v) for k, v in feats.items()} if self.normalize else feats

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = check_image_pair(pred, target, channels=3, same_size=self.same_size)
        fp, ft = self.features(pred), self.features(target)
        return self.compare_features(fp, ft)

    def compare_features(self, fp: dict[str, Tensor], ft: dict[str, Tensor]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, layers={self.layers}, weights={self.weights!r}, "
            f"normalize={self.normalize}, "
            f"layer_reduction={self.layer_reduction!r}, reduction={self.reduction!r}"
        )


# ------------------------------------------------------------------------------------------------ LPIPS


class LPIPS(DeepMetric):
    """LPIPS distance (module form of :func:`lpips`). Lower is better.

    ``calibration``: "auto" (the LPIPS v0.1 heads of the net when found locally, else the uncalibrated form
    with a warning), "lpips" (the heads, downloading them when allowed; an error if unavailable), None (the
    uncalibrated form), or a path to a heads file. :attr:`calibrated` tells which form is in use. Heads exist
    only for the LPIPS layers of alex / vgg / squeeze; with other layers use ``calibration=None``.
    """

    same_size = True
    auto_weights = False  # LPIPS keeps torchvision's trunks, the ones its heads were calibrated on
    default_net = "alex"
    default_layer_reduction = "sum"

    def __init__(
        self,
        net: str = "alex",
        layers: Sequence[str] | None = None,
        weights: str | os.PathLike[str] | None = "default",
        *,
        calibration: str | os.PathLike[str] | None = "auto",
        seed: int = 0,
        layer_reduction: str = "sum",
        reduction: str = "mean",
    ) -> None:
        super().__init__(net, layers, weights, seed=seed, normalize=True, layer_reduction=layer_reduction,
                         reduction=reduction)  # fmt: skip
        heads = self._load_heads(net, calibration)
        self.calibrated = heads is not None
        self.calibration = None if calibration is None else str(calibration)
        for k, w in enumerate(heads or []):
            self.register_buffer(f"head{k}", w)
        self._n_heads = len(heads or [])

    def _load_heads(self, net: str, calibration: str | os.PathLike[str] | None) -> list[Tensor] | None:
        if calibration is None or calibration == "none":
            return None
        short = {v: k for k, v in NETS.items()}.get(self.arch)
        standard = short is not None and tuple(self.layers) == LPIPS_LAYERS[self.arch]
        if self.feature_source is not None and self.feature_source["kind"] != "paper":
            standard = False  # the heads were calibrated on torchvision's trunks, not on these weights
        if calibration in ("auto", "lpips"):
            if not standard:
                if calibration == "lpips":
                    raise ValueError(
                        f"calibration='lpips' needs the LPIPS layers of alex/vgg/squeeze "
                        f"({LPIPS_LAYERS.get(self.arch)}), got arch {self.arch!r} layers {self.layers}; use "
                        f"calibration=None for other layers"
                    )
                return None
            try:
                return load_lpips_heads(short, download=False if calibration == "auto" else None)
            except FileNotFoundError as exc:
                if calibration == "lpips":
                    raise
                warnings.warn(
                    f"LPIPS calibration heads for {short!r} not found ({exc}); using the uncalibrated LPIPS "
                    f"form (all channel weights 1). Pass calibration=None to silence this.",
                    stacklevel=3,
                )
                return None
        heads = load_lpips_heads(calibration)
        return heads

    @property
    def heads(self) -> list[Tensor] | None:
        """The per-layer channel weights (C_l,) in use, or None (uncalibrated)."""
        return [getattr(self, f"head{k}") for k in range(self._n_heads)] if self.calibrated else None

    def compare_features(self, fp: dict[str, Tensor], ft: dict[str, Tensor]) -> Tensor:
        # features are already unit-normalised (normalize=True); unit_normalize is idempotent up to 1e-10
        return lpips_from_features(fp, ft, self.heads, self.layer_reduction)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", calibrated={self.calibrated}"


class GramDistance(DeepMetric):
    """Gram-matrix distance of Gondal et al. 2018 eq. 5 (module form of :func:`gram_distance`).

    Default: VGG-16 at relu2_2, relu3_3, relu4_3 (the paper's layer rule, :func:`paper_gram_layers`), summed
    over layers. Pred and target may differ in size. Lower is better.
    """

    default_net = "vgg"
    default_layer_reduction = "sum"

    def default_layers(self, arch: str) -> tuple[str, ...]:
        return paper_gram_layers(arch)

    def compare_features(self, fp: dict[str, Tensor], ft: dict[str, Tensor]) -> Tensor:
        total = texture_loss(fp, ft, dict.fromkeys(self.layers, 1.0), reduction="none")
        return total / len(self.layers) if self.layer_reduction == "mean" else total


class CXDistance(DeepMetric):
    """Contextual distance ``−log CX`` averaged over layers (module form of :func:`cx_distance`).

    Args (beyond :class:`DeepMetric`): ``bandwidth`` h (0.1), ``distance`` ("cosine" or "l2"),
    ``sample_size`` (65: compare 65×65 random positions of larger maps, the papers' setting; None: every
    position, exact but O((H·W)²) work), ``sample_seed`` (positions are drawn afresh from this seed at every
    call, so a pair always gets the same value). Default net VGG-19, layer conv3_4. Lower is better.
    """

    default_net = "vgg19"
    default_layer_reduction = "mean"

    def __init__(
        self,
        net: str = "vgg19",
        layers: Sequence[str] | None = ("conv3_4",),
        weights: str | os.PathLike[str] | None = "default",
        *,
        bandwidth: float = 0.1,
        distance: str = "cosine",
        sample_size: int | None = 65,
        sample_seed: int = 0,
        seed: int = 0,
        normalize: bool = False,
        layer_reduction: str = "mean",
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            net, layers, weights, seed=seed, normalize=normalize, layer_reduction=layer_reduction,
            reduction=reduction,
        )  # fmt: skip
        self.bandwidth = check_positive("bandwidth", bandwidth)
        self.distance = check_choice("distance", distance, ("cosine", "l2"))
        if sample_size is not None and (not isinstance(sample_size, int) or sample_size < 1):
            raise ValueError(f"sample_size must be None or a positive int, got {sample_size!r}")
        self.sample_size, self.sample_seed = sample_size, int(sample_seed)

    def compare_features(self, fp: dict[str, Tensor], ft: dict[str, Tensor]) -> Tensor:
        g = make_generator(self.sample_seed)
        per_layer = []
        for layer in self.layers:
            x, y = fp[layer], ft[layer]
            xi = yi = None
            if self.sample_size is not None:
                count = self.sample_size**2
                (hx, wx), (hy, wy) = x.shape[-2:], y.shape[-2:]
                if (hx, wx) == (hy, wy):
                    if hx * wx > count:
                        xi = yi = sample_positions(hx, wx, count, g).to(x.device)
                else:
                    if hx * wx > count:
                        xi = sample_positions(hx, wx, count, g).to(x.device)
                    if hy * wy > count:
                        yi = sample_positions(hy, wy, count, g).to(y.device)
            cx = contextual_similarity(x, y, self.bandwidth, self.distance, pred_index=xi, target_index=yi)
            per_layer.append(-torch.log(cx))
        return _combine(per_layer, self.layer_reduction)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", bandwidth={self.bandwidth}, distance={self.distance!r}, sample_size={self.sample_size}"
        )


class PDLDistance(DeepMetric):
    """Projected distribution distance (module form of :func:`pdl_distance`): mean over projections of the 1-D
    W1 between the images' projected features, averaged over layers. Default VGG-16 conv4_3, identity
    projections. Pred and target may differ in size. Lower is better."""

    default_net = "vgg"
    default_layer_reduction = "mean"

    def __init__(
        self,
        net: str = "vgg",
        layers: Sequence[str] | None = ("conv4_3",),
        weights: str | os.PathLike[str] | None = "default",
        *,
        projection: str = "identity",
        num_projections: int | None = None,
        projection_seed: int = 0,
        seed: int = 0,
        normalize: bool = False,
        layer_reduction: str = "mean",
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            net, layers, weights, seed=seed, normalize=normalize, layer_reduction=layer_reduction,
            reduction=reduction,
        )  # fmt: skip
        self.projection = check_choice("projection", projection, ("identity", "sphere", "r2p", "rpp"))
        self.num_projections, self.projection_seed = num_projections, int(projection_seed)

    def compare_features(self, fp: dict[str, Tensor], ft: dict[str, Tensor]) -> Tensor:
        per_layer = [
            projected_distribution_loss(
                fp[layer],
                ft[layer],
                self.projection,
                self.num_projections,
                self.projection_seed,
                reduction="none",
            )
            for layer in self.layers
        ]
        return _combine(per_layer, self.layer_reduction)


# ------------------------------------------------------------------------------------------ functionals


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@functools.lru_cache(maxsize=8)
def _cached(cls: type[DeepMetric], options: tuple[tuple[str, Any], ...]) -> DeepMetric:
    return cls(**dict(options))


def _module(cls: type[DeepMetric], **options: Any) -> DeepMetric:
    """A cached module for functional calls (backbones are built and loaded once per configuration)."""
    return _cached(cls, tuple(sorted((k, _freeze(v)) for k, v in options.items())))


def lpips(
    pred: Tensor,
    target: Tensor,
    net: str = "alex",
    *,
    layers: Sequence[str] | None = None,
    weights: str | os.PathLike[str] | None = "default",
    calibration: str | os.PathLike[str] | None = "auto",
    seed: int = 0,
    layer_reduction: str = "sum",
    reduction: str = "mean",
) -> Tensor:
    """LPIPS distance (Zhang et al. 2018, eq. 1) between images, one value per image before ``reduction``.

    Args:
        pred, target: N×3×H×W RGB in [0, 1], same size (target batch 1 broadcasts).
        net: "alex" (default, as LPIPS), "vgg" or "squeeze".
        layers: None for the LPIPS layers of ``net``.
        weights: trunk weights ("default": torchvision's ImageNet file; None: seeded random trunk).
        calibration: "auto", "lpips", None or a heads file; see :class:`LPIPS`.
        layer_reduction: "sum" (LPIPS) or "mean".
        reduction: "mean", "sum" or "none".

    Lower is better, 0 for identical images. The module (backbone, heads) is built once per configuration and
    cached; use :class:`LPIPS` directly to control its lifetime.
    """
    check_reduction(reduction)
    m = _module(LPIPS, net=net, layers=layers, weights=weights, calibration=calibration, seed=seed,
                layer_reduction=layer_reduction)  # fmt: skip
    return reduce(m.values(pred, target), reduction)


def gram_distance(
    pred: Tensor,
    target: Tensor,
    net: str = "vgg",
    *,
    layers: Sequence[str] | None = None,
    weights: str | os.PathLike[str] | None = "default",
    seed: int = 0,
    normalize: bool = False,
    layer_reduction: str = "sum",
    reduction: str = "mean",
) -> Tensor:
    """Gram distance of Gondal et al. 2018, eq. 5: ``Σ_l 1/C_l² Σ_ij (G^l_ij − A^l_ij)²`` with
    ``G = F Fᵀ/(C·H·W)`` (see the module docstring for the layers). Images N×3×H×W in [0, 1], sizes may
    differ. Lower is better, 0 for identical images."""
    check_reduction(reduction)
    m = _module(GramDistance, net=net, layers=layers, weights=weights, seed=seed, normalize=normalize,
                layer_reduction=layer_reduction)  # fmt: skip
    return reduce(m.values(pred, target), reduction)


def cx_distance(
    pred: Tensor,
    target: Tensor,
    net: str = "vgg19",
    *,
    layers: Sequence[str] | None = ("conv3_4",),
    weights: str | os.PathLike[str] | None = "default",
    bandwidth: float = 0.1,
    distance: str = "cosine",
    sample_size: int | None = 65,
    sample_seed: int = 0,
    seed: int = 0,
    normalize: bool = False,
    layer_reduction: str = "mean",
    reduction: str = "mean",
) -> Tensor:
    """Contextual distance ``−log CX`` (Mechrez et al. 2018, eq. 8) of deep features, averaged over layers.
    See :class:`CXDistance`. Images N×3×H×W in [0, 1], sizes may differ. Lower is better, 0 for identical
    images (with the same sampled positions)."""
    check_reduction(reduction)
    m = _module(CXDistance, net=net, layers=layers, weights=weights, bandwidth=bandwidth, distance=distance,
                sample_size=sample_size, sample_seed=sample_seed, seed=seed, normalize=normalize,
                layer_reduction=layer_reduction)  # fmt: skip
    return reduce(m.values(pred, target), reduction)


def pdl_distance(
    pred: Tensor,
    target: Tensor,
    net: str = "vgg",
    *,
    layers: Sequence[str] | None = ("conv4_3",),
    weights: str | os.PathLike[str] | None = "default",
    projection: str = "identity",
    num_projections: int | None = None,
    projection_seed: int = 0,
    seed: int = 0,
    normalize: bool = False,
    layer_reduction: str = "mean",
    reduction: str = "mean",
) -> Tensor:
    """Projected distribution distance (Delbracio et al., eq. 5 distribution term) of deep features. See
    :class:`PDLDistance`. Images N×3×H×W in [0, 1], sizes may differ. Lower is better, 0 for identical
    images."""
    check_reduction(reduction)
    m = _module(PDLDistance, net=net, layers=layers, weights=weights, projection=projection,
                num_projections=num_projections, projection_seed=projection_seed, seed=seed,
                normalize=normalize, layer_reduction=layer_reduction)  # fmt: skip
    return reduce(m.values(pred, target), reduction)
