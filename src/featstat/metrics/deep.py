"""Perceptual metrics on deep features: LPIPS-style distance, Gram (texture) distance, CX and PDL distances.

A deep metric is a loss of :mod:`featstat.losses` applied to the features of a fixed backbone (featstat's
AlexNet, VGG-16, VGG-19 or SqueezeNet 1.1, see :mod:`featstat.features`) at some layers, reduced over the
layers. :class:`DeepMetric` holds exactly that as an :class:`featstat.Objective`: one backbone pass per image
for all the layers, and the reference's features (and the loss's prepared statistic of them) cached while the
same, unmodified reference tensor is scored again (a 2AFC triplet, one reference against many results). The
four metrics below differ only in their loss. Images are N×3×H×W RGB in [0, 1]; the backbones apply their own
input normalisation (for the torchvision weights this is exactly LPIPS' "scaling layer": LPIPS maps [0, 1] to
[-1, 1] and then subtracts (-.030, -.088, -.188) and divides by (.458, .448, .450), which equals ImageNet
mean/std on [0, 1]). Lower is better for all of them; identical images give 0.

**LPIPS** (Zhang et al. 2018, eq. 1): ``d(x, x0) = Σ_l 1/(H_l W_l) Σ_{h,w} ‖w_l ⊙ (ŷ_l − ŷ0_l)‖²`` where
ŷ_l are the layer-l features unit-normalised along channels at every position (``f / (‖f‖ + 1e-10)``) and w_l
the calibrated per-channel weights of LPIPS v0.1 (``lin{l}.model.1.weight``, 1×C×1×1; applied as a 1×1
convolution of the squared difference, so ``‖w ⊙ Δ‖²`` stands for ``Σ_c w_c Δ_c²``). Without calibration
(``calibration=None``) every w_c = 1: the "baseline" distance of unit-normalised features. Layers: AlexNet
relu1..relu5, VGG-16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, SqueezeNet relu1, fire3, fire5..fire9. The
layers are summed (``layer_reduction="sum"``, the paper and the reference code); "mean" divides by their
number (the 2AFC ranking is the same either way). The per-layer loss is :class:`LPIPSLayerLoss`.

**Gram distance** (Gondal et al. 2018, "texture transfer for SR", eq. 5):
``d(x, x0) = Σ_l 1/C_l² Σ_{i,j} (G^l_ij − A^l_ij)²`` with the normalised Gram matrices G = F Fᵀ/(C·H·W) of
both images (the normalisation of the authors' code), i.e. Σ_l of :class:`featstat.losses.GramLoss`.
Layers: the paper uses the LPIPS layers of each network *without* those before the first pooling layer and
those after the penultimate one: VGG-16 relu2_2, relu3_3, relu4_3 (VGG-19: relu2_2, relu3_4, relu4_4). Read
literally, the rule leaves AlexNet relu2 and SqueezeNet fire3 only; the paper does not list them, so pass
``layers=`` to choose others.

**CX distance**: ``−log CX(x, x0)`` of the contextual loss (Mechrez et al. 2018, eq. 8) per layer, averaged
over layers: :class:`featstat.losses.ContextualLoss` with its own sampling options. Default: VGG-19 conv3_4,
h = 0.1, cosine distance (the CX-SR setting), with the papers' 65×65 random position sampling (seeded, the
same positions in both maps when their sizes agree; maps with ≤ 65² positions are used whole; the loss's
generator is reset to ``sample_seed`` at every call, so a pair always gets the same value). For the 2AFC
setting of the CX paper use ``net="alex"``/``"vgg"``/``"squeeze"`` with their LPIPS layers and
``normalize=True``.

**PDL distance**: the projected distribution loss (Delbracio et al., eq. 5 without the pixel term), the mean
over channels of the 1-D Wasserstein-1 distance between the two images' feature marginals:
:class:`featstat.losses.ProjectedDistributionLoss`. Default: VGG-16 conv4_3 ("VGG16 conv4"), identity
projections.

**Modules, functions and devices.** A module (``LPIPS(...)``, ``GramDistance(...)``) builds its backbone once;
keep it to score many images. A functional call (``lpips(pred, target)``) builds a module for that call on
the images' device, or uses the one passed as ``module=`` (its own configuration; passing other options
with it is an error). No module is ever moved implicitly: build it with ``device=`` or move it once with
``.to(device)``; images on another device raise a ``ValueError`` saying so. Half images are computed in the
module's float32; float64 images in a float32 module are computed in float32 (the functional form builds a
float64 module for them). Inside ``torch.autocast`` the backbone runs in the autocast dtype (the caller's
choice) and the statistic of its features in float32 (:func:`featstat.losses.base.float32_compute`); the
value is float32.

Weights: ``weights="default"`` loads torchvision's ImageNet file of the backbone (see ``featstat weights
list``); ``weights=None`` gives seeded random weights (useful for tests, meaningless as a perceptual metric).
The LPIPS calibration heads are entries of the weights registry, ``lpips-alex``, ``lpips-vgg``,
``lpips-squeeze`` (files ``lpips-v0.1/{alex,vgg,squeeze}.pth`` in ``$FEATSTAT_WEIGHTS`` or the torch hub
cache; declared in :mod:`featstat.features.weights`).
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_reduction, check_tensor, reduce
from ..features import LAYERS, REGISTRY, FeatureExtractor, resolve_weights
from ..features.layers import layer_index
from ..features.sources import choose_features
from ..features.weights import read_state_dict, verify_sha256
from ..losses import ContextualLoss, GramLoss, ProjectedDistributionLoss, get_loss
from ..losses.base import FeatureLoss, float32_compute
from ..objective import Objective, Term
from .base import Metric, check_image_pair

__all__ = [
    "LPIPS",
    "LPIPS_LAYERS",
    "NETS",
    "CXDistance",
    "DeepMetric",
    "GramDistance",
    "LPIPSLayerLoss",
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
    """Features N×C×H×W divided by their Euclidean norm over channels at each position: ``f / (‖f‖₂ + eps)``
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


def _lpips_layer(pred_unit: Tensor, target_unit: Tensor, head: Tensor | None, where: str) -> Tensor:
    """``mean_{h,w} Σ_c w_c (ŷ_c − ŷ0_c)²`` of unit-normalised features (target batch 1 broadcasts) → N."""
    diff = (pred_unit - target_unit.to(pred_unit.dtype)).square()
    if head is None:
        d = diff.sum(dim=1)
    else:
        w = head.to(device=diff.device, dtype=diff.dtype)
        if w.numel() != diff.shape[1]:
            raise ValueError(
                f"head{where} has {w.numel()} channels but the features{where} have {diff.shape[1]}; were "
                f"the heads made for another network?"
            )
        d = (diff * w.view(1, -1, 1, 1)).sum(dim=1)
    return d.flatten(1).mean(dim=1)


class LPIPSLayerLoss(FeatureLoss):
    """LPIPS distance of one layer (Zhang et al. 2018, eq. 1, one term of the sum over layers).

    ``compare(pred, prepared)`` = ``mean_{h,w} Σ_c w_c (ŷ_c − ŷ0_c)²`` with ŷ the features N×C×H×W
    unit-normalised over channels (:func:`unit_normalize`) and ``head`` the non-negative channel weights w
    (C,) of LPIPS v0.1, or None (all ones: the uncalibrated form). ``prepare_target`` unit-normalises the
    target once (cached by an :class:`~featstat.Objective`). Pred and target have the same H×W. One value per
    sample before ``reduction``.
    """

    pointwise = True
    head: Tensor | None

    def __init__(self, head: Tensor | None = None, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        if head is not None:
            head = check_tensor("head", head, ndim=(1, 4)).detach().reshape(-1).clone()
        self.register_buffer("head", head)

    def prepare_target(self, target: Tensor) -> Tensor:
        return unit_normalize(check_tensor("target", target, ndim=4))

    def compare(self, pred: Tensor, prepared: Tensor) -> Tensor:
        pred = check_tensor("pred", pred, ndim=4)
        if prepared.shape[1:] != pred.shape[1:] or prepared.shape[0] not in (1, pred.shape[0]):
            raise ValueError(
                f"pred features of shape {tuple(pred.shape)} and the target's of shape "
                f"{tuple(prepared.shape)} must have the same C×H×W (target batch 1 or N)"
            )
        return _lpips_layer(unit_normalize(pred), prepared, self.head, "")

    def extra_repr(self) -> str:
        return f"calibrated={self.head is not None}, reduction={self.reduction!r}"


def lpips_from_features(
    pred_feats: Mapping[str, Tensor] | Sequence[Tensor],
    target_feats: Mapping[str, Tensor] | Sequence[Tensor],
    heads: Sequence[Tensor] | None = None,
    layer_reduction: str = "sum",
) -> Tensor:
    """LPIPS distance from already computed features (one value per sample, shape N).

    Args:
        pred_feats, target_feats: the layers' N×C_l×H_l×W_l features (dicts in the same layer order, or
            lists); target batch 1 broadcasts.
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
    _check_head_count(heads, len(fps))
    per_layer = [
        _lpips_features(fp, ft, None if heads is None else heads[k], f" {k}")
        for k, (fp, ft) in enumerate(zip(fps, fts, strict=True))
    ]
    return _combine(per_layer, layer_reduction)


@float32_compute
def _lpips_features(fp: Tensor, ft: Tensor, head: Tensor | None, where: str) -> Tensor:
    """One LPIPS layer from raw features (half features in float32, autocast off)."""
    return _lpips_layer(unit_normalize(fp), unit_normalize(ft.to(fp.dtype)), head, where)


def _check_head_count(heads: Sequence[Tensor] | None, layers: int) -> None:
    if heads is not None and len(heads) != layers:
        raise ValueError(
            f"heads has {len(heads)} layers but the features have {layers}; LPIPS heads are calibrated for "
            f"the LPIPS layers of one network (see LPIPS_LAYERS)"
        )


# ----------------------------------------------------------------------------------------- module base


class _UnitNormalized(FeatureLoss):
    """``loss`` on features unit-normalised over channels (:func:`unit_normalize`) on both sides."""

    def __init__(self, loss: FeatureLoss) -> None:
        super().__init__(reduction=loss.reduction)
        self.pointwise = loss.pointwise
        self.inner = loss

    def prepare_target(self, target: Tensor) -> Any:
        return self.inner.prepare_target(unit_normalize(target))

    def compare(self, pred: Tensor, prepared: Any) -> Tensor:
        return self.inner.compare(unit_normalize(pred), prepared)


def _has_extra_state(module: nn.Module) -> bool:
    return type(module).get_extra_state is not nn.Module.get_extra_state


class DeepMetric(Metric):
    """A loss on the features of a fixed backbone, reduced over layers (see the module docstring).

    Args:
        net: "alex", "vgg", "squeeze" (LPIPS names for alexnet, vgg16, squeezenet1_1) or an architecture
            name ("vgg19", ...).
        layers: layer names, or None for the metric's default layers.
        weights: "default" (the architecture's torchvision file), a registry name, a path, None (seeded
            random weights), or "auto": the best trained features on this machine, never downloading and
            never random (torchvision's file, then HED's VGG-16 with VGG-19 layer names mapped, then the
            shallow Caffe VGG-19; :mod:`featstat.features.sources`); :attr:`feature_source` records the
            choice.
        loss: the loss applied at every layer: a :class:`~featstat.losses.FeatureLoss` with
            ``reduction="none"``, or a registered loss name (built with its defaults and
            ``reduction="none"``). Subclasses pass their own.
        seed: seed of the random weights (when ``weights`` is None).
        normalize: unit-normalise features along channels at every position before comparing (LPIPS).
        layer_reduction: "sum" or "mean" over layers.
        reduction: "mean", "sum" or "none" over images.
        device, dtype: where the backbone and the loss's buffers are built (default CPU, float32).

    ``values(pred, target)`` runs one :class:`~featstat.Objective` (one backbone pass per image for every
    layer; the target's features and prepared statistics cached while the same unmodified target tensor is
    passed again) and returns one value per image. A loss with random state (CX sampling) is reset to its
    initial state at every call, so a pair always gets the same value. The module is never moved by a call:
    images on another device than the backbone raise a ``ValueError``; half images run through the float32
    backbone. Gradients flow to the images.
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
        loss: FeatureLoss | str | None = None,
        seed: int = 0,
        normalize: bool = False,
        layer_reduction: str | None = None,
        reduction: str = "mean",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
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
        self.weights = None if weights is None else str(weights)
        self.normalize = bool(normalize)
        self.layer_reduction = _check_layer_reduction(layer_reduction or self.default_layer_reduction)
        self._extractor_spec = (self.arch, list(self.layers), weights, seed)
        self._placement = (device, dtype)
        self.objective: Objective | None = None
        self._held_target: Tensor | None = None
        self._initial_states: dict[str, Any] = {}
        if loss is not None:
            self.build(loss)

    def default_layers(self, arch: str) -> tuple[str, ...]:
        return LPIPS_LAYERS[arch]

    # -- construction --------------------------------------------------------------------------------

    def build(self, loss: FeatureLoss | str | Sequence[FeatureLoss]) -> None:
        """Build the backbone and the objective: ``loss`` (one module for every layer, or one per layer in
        the order of :attr:`layers`). Called once, by ``__init__`` or at the end of a subclass's."""
        if self.objective is not None:
            raise ValueError(f"{type(self).__name__} is already built")
        losses = list(loss) if isinstance(loss, Sequence) and not isinstance(loss, str) else [loss]
        losses = [self._layer_loss(item) for item in losses]
        if len(losses) not in (1, len(self.layers)):
            raise ValueError(f"loss: give one loss or one per layer ({len(self.layers)}), got {len(losses)}")
        arch, layers, weights, seed = self._extractor_spec
        extractor = FeatureExtractor(arch, layers, weights, seed=seed)
        weight = 1.0 / len(self.layers) if self.layer_reduction == "mean" else 1.0
        if len(losses) == 1:
            terms = [Term("distance", losses[0], weight, extractor=extractor, layers=self.layers)]
        else:
            terms = [Term(layer, lo, weight, extractor=extractor, layers=[layer])
                     for layer, lo in zip(self.layers, losses, strict=True)]  # fmt: skip
        self.objective = Objective(terms)
        device, dtype = self._placement
        self.to(device=device, dtype=dtype)
        self._initial_states = {
            name: m.get_extra_state() for name, m in self.objective.named_modules() if _has_extra_state(m)
        }

    def _layer_loss(self, loss: FeatureLoss | str) -> FeatureLoss:
        if isinstance(loss, str):
            loss = get_loss(loss)(reduction="none")
        if not isinstance(loss, FeatureLoss):
            raise ValueError(f"loss must be a FeatureLoss or a loss name, got {type(loss).__name__}")
        if loss.reduction != "none":
            raise ValueError(
                f"loss: a deep metric needs its loss with reduction='none' (one value per image), got "
                f"{type(loss).__name__}(reduction={loss.reduction!r}); the metric's own reduction= reduces"
            )
        return _UnitNormalized(loss) if self.normalize else loss

    def _built(self) -> Objective:
        if self.objective is None:
            raise ValueError(
                f"{type(self).__name__} has no loss: pass loss= (a FeatureLoss or a loss name), or call "
                f"self.build(loss) at the end of a subclass's __init__"
            )
        return self.objective

    @property
    def extractor(self) -> FeatureExtractor:
        """The fixed backbone (a :class:`~featstat.features.FeatureExtractor` of :attr:`layers`)."""
        return self._built().extractors[0]  # type: ignore[return-value]

    @property
    def loss(self) -> FeatureLoss | None:
        """The loss applied at every layer (without the unit-normalising wrapper), or None when each layer has
        its own (LPIPS)."""
        if self.objective is None or len(self.objective.terms) != 1:
            return None
        terms = self.objective.terms
        loss = terms[0].loss
        return loss.inner if isinstance(loss, _UnitNormalized) else loss  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        """Where the backbone lives (images must be there too)."""
        return self.extractor.mean.device

    # -- evaluation ----------------------------------------------------------------------------------

    def check_device(self, images: Tensor, name: str | None = None) -> None:
        """``ValueError`` unless ``images`` are on this metric's device (the metric is never moved)."""
        here = self.device
        if images.device != here:
            who = name or type(self).__name__
            raise ValueError(
                f"{who} is on {here} but the images are on {images.device}; move the metric once with "
                f".to({str(images.device)!r}) or build it there ({type(self).__name__}(..., "
                f"device={str(images.device)!r})): a metric module is never moved implicitly"
            )

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """Features of images (N×3×H×W in [0, 1]) at ``self.layers``, unit-normalised if ``normalize``."""
        self.check_device(images)
        feats = self.extractor(images)
        return {k: unit_normalize(v) for k, v in feats.items()} if self.normalize else feats

    def values(self, pred: Tensor, target: Tensor) -> Tensor:
        objective = self._built()
        pred, target = check_image_pair(pred, target, channels=3, same_size=self.same_size)
        self.check_device(pred)
        modules = dict(objective.named_modules())
        for name, state in self._initial_states.items():
            modules[name].set_extra_state(state)
        # the objective keys its target cache by tensor identity: holding the tensor keeps that identity
        # from being reused by a new tensor while the cache refers to it
        self._held_target = None if target.requires_grad else target
        return objective(pred, target, validate=False).total

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
    only for the LPIPS layers of alex / vgg / squeeze; with other layers use ``calibration=None``. Each layer
    is an :class:`LPIPSLayerLoss` with its head.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # features are unit-normalised by the layer losses themselves (normalize stays False for them)
        super().__init__(net, layers, weights, seed=seed, layer_reduction=layer_reduction,
                         reduction=reduction, device=device, dtype=dtype)  # fmt: skip
        heads = self._load_heads(calibration)
        _check_head_count(heads, len(self.layers))
        self.calibrated = heads is not None
        self.calibration = None if calibration is None else str(calibration)
        self.build([LPIPSLayerLoss(h, reduction="none") for h in (heads or [None] * len(self.layers))])
        self.normalize = True  # reported as before: LPIPS compares unit-normalised features

    def _load_heads(self, calibration: str | os.PathLike[str] | None) -> list[Tensor] | None:
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
        return load_lpips_heads(calibration)

    @property
    def heads(self) -> list[Tensor] | None:
        """The per-layer channel weights (C_l,) in use, or None (uncalibrated)."""
        if not self.calibrated:
            return None
        return [t.loss.head for t in self._built().terms]  # type: ignore[misc]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", calibrated={self.calibrated}"


class GramDistance(DeepMetric):
    """Gram-matrix distance of Gondal et al. 2018 eq. 5 (module form of :func:`gram_distance`):
    :class:`~featstat.losses.GramLoss` summed over layers.

    Default: VGG-16 at relu2_2, relu3_3, relu4_3 (the paper's layer rule, :func:`paper_gram_layers`), summed
    over layers. Pred and target may differ in size. Lower is better.
    """

    default_net = "vgg"
    default_layer_reduction = "sum"

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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(net, layers, weights, loss=GramLoss(reduction="none"), seed=seed,
                         normalize=normalize, layer_reduction=layer_reduction, reduction=reduction,
                         device=device, dtype=dtype)  # fmt: skip

    def default_layers(self, arch: str) -> tuple[str, ...]:
        return paper_gram_layers(arch)


class CXDistance(DeepMetric):
    """Contextual distance ``−log CX`` averaged over layers (module form of :func:`cx_distance`):
    :class:`~featstat.losses.ContextualLoss` on fixed deep features.

    Args (beyond :class:`DeepMetric`): ``bandwidth`` h (0.1), ``distance`` ("cosine" or "l2"),
    ``sample_size`` (65: compare 65×65 random positions of larger maps, the papers' setting; None: every
    position, exact, memory-bounded), ``sample_seed`` (the loss's sampling generator is reset to this seed at
    every call, so a pair always gets the same value). Default net VGG-19, layer conv3_4. Lower is better.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        loss = ContextualLoss(bandwidth, distance, sample_size=sample_size, seed=int(sample_seed),
                              reduction="none")  # fmt: skip
        super().__init__(net, layers, weights, loss=loss, seed=seed, normalize=normalize,
                         layer_reduction=layer_reduction, reduction=reduction, device=device,
                         dtype=dtype)  # fmt: skip
        self.bandwidth, self.distance = loss.bandwidth, loss.distance
        self.sample_size, self.sample_seed = loss.sample_size, int(sample_seed)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", bandwidth={self.bandwidth}, distance={self.distance!r}, sample_size={self.sample_size}"
        )


class PDLDistance(DeepMetric):
    """Projected distribution distance (module form of :func:`pdl_distance`): mean over projections of the 1-D
    W1 between the images' projected features (:class:`~featstat.losses.ProjectedDistributionLoss`), averaged
    over layers. Default VGG-16 conv4_3, identity projections. Pred and target may differ in size. Lower is
    better."""

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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        loss = ProjectedDistributionLoss(projection, num_projections, int(projection_seed), reduction="none")
        super().__init__(net, layers, weights, loss=loss, seed=seed, normalize=normalize,
                         layer_reduction=layer_reduction, reduction=reduction, device=device,
                         dtype=dtype)  # fmt: skip
        self.projection, self.num_projections = loss.projection, num_projections
        self.projection_seed = int(projection_seed)


# ------------------------------------------------------------------------------------------ functionals


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _metric_for(
    function: Callable[..., Any], cls: type[DeepMetric], module: DeepMetric | None, pred: object,
    options: dict[str, Any],
) -> DeepMetric:  # fmt: skip
    """The module a functional call uses: ``module`` (checked: its class, no other options given, on the
    images' device), or a new ``cls(**options)`` built on the images' device (float64 for float64 images)."""
    if module is None:
        like = check_tensor("pred", pred, ndim=4)
        dtype = torch.float64 if like.dtype == torch.float64 else None
        return cls(**options, device=like.device, dtype=dtype)
    if not isinstance(module, cls):
        raise ValueError(
            f"module must be a {cls.__name__} (built once and reused), got {type(module).__name__}"
        )
    params = inspect.signature(function).parameters
    given = sorted(k for k, v in options.items() if _freeze(v) != _freeze(params[k].default))
    if given:
        raise ValueError(
            f"module= carries its own configuration, but {given} were also given; set them when building the "
            f"{cls.__name__}, or drop module="
        )
    if isinstance(pred, Tensor):
        module.check_device(pred, "module")
    return module


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
    module: LPIPS | None = None,
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
        module: an :class:`LPIPS` you own (built once, on the images' device), used instead of building one
            for this call; the other options must then stay at their defaults.
        reduction: "mean", "sum" or "none".

    Lower is better, 0 for identical images. Without ``module`` each call builds (and loads) the backbone:
    to score many images keep an :class:`LPIPS` and pass it, or call it directly.
    """
    check_reduction(reduction)
    m = _metric_for(lpips, LPIPS, module, pred, dict(net=net, layers=layers, weights=weights,
                    calibration=calibration, seed=seed, layer_reduction=layer_reduction))  # fmt: skip
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
    module: GramDistance | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Gram distance of Gondal et al. 2018, eq. 5: ``Σ_l 1/C_l² Σ_ij (G^l_ij − A^l_ij)²`` with
    ``G = F Fᵀ/(C·H·W)`` (see the module docstring for the layers). Images N×3×H×W in [0, 1], sizes may
    differ. Lower is better, 0 for identical images. ``module``: a :class:`GramDistance` you own, used
    instead of building one for this call (the other options then stay at their defaults)."""
    check_reduction(reduction)
    m = _metric_for(gram_distance, GramDistance, module, pred, dict(net=net, layers=layers, weights=weights,
                    seed=seed, normalize=normalize, layer_reduction=layer_reduction))  # fmt: skip
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
    module: CXDistance | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Contextual distance ``−log CX`` (Mechrez et al. 2018, eq. 8) of deep features, averaged over layers.
    See :class:`CXDistance`. Images N×3×H×W in [0, 1], sizes may differ. Lower is better, 0 for identical
    images (with the same sampled positions). ``module``: a :class:`CXDistance` you own, used instead of
    building one for this call (the other options then stay at their defaults)."""
    check_reduction(reduction)
    m = _metric_for(cx_distance, CXDistance, module, pred, dict(net=net, layers=layers, weights=weights,
                    bandwidth=bandwidth, distance=distance, sample_size=sample_size, sample_seed=sample_seed,
                    seed=seed, normalize=normalize, layer_reduction=layer_reduction))  # fmt: skip
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
    module: PDLDistance | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Projected distribution distance (Delbracio et al., eq. 5 distribution term) of deep features. See
    :class:`PDLDistance`. Images N×3×H×W in [0, 1], sizes may differ. Lower is better, 0 for identical
    images. ``module``: a :class:`PDLDistance` you own, used instead of building one for this call (the other
    options then stay at their defaults)."""
    check_reduction(reduction)
    m = _metric_for(pdl_distance, PDLDistance, module, pred, dict(net=net, layers=layers, weights=weights,
                    projection=projection, num_projections=num_projections, projection_seed=projection_seed,
                    seed=seed, normalize=normalize, layer_reduction=layer_reduction))  # fmt: skip
    return reduce(m.values(pred, target), reduction)
