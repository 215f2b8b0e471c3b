"""A weighted sum of loss terms that shares one feature pass per backbone per image.

    objective = Objective([
        Term("cx",   ContextualLoss(0.1), weight=0.1, extractor=vgg, layers=["conv3_4"]),
        Term("lf",   LowFrequencyL2Loss(), weight=10.0),                 # pixel term: no extractor
        Term("gram", GramLoss(), weight=1.0, extractor=vgg, layers=["relu1_1", "relu2_1"]),
    ])
    out = objective(pred, target)          # out.total (scalar), out.terms {"cx": …, "lf": …, "gram": …}
    out.total.backward()

Every extractor runs once on the prediction per call, for all the terms that use it. Extractors that compute
the same features (equal ``cache_key``: same backbone, weights, preprocessing and pooling) are merged into one
covering the union of their layers, so ``Term(..., vgg19(["conv3_4"]))`` and ``Term(..., vgg19(["relu1_1"]))``
still share a single VGG pass. Target features and
each term's prepared target statistic (Gram matrix, sorted projections, normalised CX rows) are cached
while the same target tensor, unmodified, is passed again; a target that requires grad is never cached.
Terms may compare against different named targets (style transfer: ``target={"content": c, "style": s}``
with ``Term(..., target="style")``) and terms with ``target=None`` (diversity, total variation) use none.

Guides (spatial masks) are first-class: a term may name a guide for the prediction and one for the target,
``Term("gram", GramLoss(), extractor=vgg, layers=[...], target="style", pred_guide="content",
target_guide="style")``, given at call time, ``objective(x, {"style": s}, guides={"content": m_x, "style":
m_s})`` (or fixed tensors on the Term). A guide is N×R×h×w (or 1×R×h×w) weights in [0, 1], R regions, at any
resolution: it is resized to each layer's H×W (:func:`resize_guide`) and handed to the loss as
``compare(pred, prepared, mask=...)`` / ``prepare_target(target, mask=...)``. With :class:`GramLoss` this is
the semantically guided Gram loss (texture-transfer SR paper, TSRN eq. 4; Gatys et al. 2017's guided Gram
matrices). The resized target guide and the statistic prepared with it are cached with the target.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image, check_number, check_same_device, check_tensor, reduce
from ..losses.base import FeatureLoss

PIXELS = "pixels"

Guide = str | Tensor | None


def resize_guide(guide: Tensor, size: Sequence[int]) -> Tensor:
    """A guide N×R×h×w resized to ``size`` = (H, W) of a feature map: antialiased bilinear (area-like when
    shrinking), in float32 (float64 stays float64); returned as is when it already has that size. The same
    resampling :func:`featstat.losses.gram.gram_matrix` applies to its masks, so a guide resized here is
    left unchanged there."""
    g = guide.to(torch.float64 if guide.dtype == torch.float64 else torch.float32)
    size = (int(size[0]), int(size[1]))
    if tuple(g.shape[-2:]) == size:
        return g
    return F.interpolate(g, size=size, mode="bilinear", align_corners=False, antialias=True)


def _takes_mask(fn: Any) -> bool:
    try:
        return "mask" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


@dataclass
class Term:
    """One weighted loss term.

    Args:
        name: key of the term in :attr:`ObjectiveOutput.terms`.
        loss: a featstat loss module (``forward(pred, target)``, ``prepare_target``, ``compare``).
        weight: multiplies the term in the total.
        extractor: feature extractor (``images → {layer: map}``); None compares pixels directly.
        layers: layers of ``extractor`` the loss is applied to (summed); required with an extractor.
        layer_weights: optional per-layer weights (default 1 for each layer).
        target: name of the target this term compares against, or None for terms with no target.
        pred_guide: guide (mask) of the prediction: the name of a guide passed at call time
            (``objective(..., guides={name: tensor})``) or a tensor N×R×h×w / 1×R×h×w in [0, 1]; None: none.
            The loss receives it resized to each layer as ``mask=`` (its ``compare`` must take ``mask``).
        target_guide: guide of the target (name or tensor), handed to ``prepare_target(target, mask=...)``;
            the statistic prepared with it is cached with the target. Needs a target.
    """

    name: str
    loss: nn.Module
    weight: float = 1.0
    extractor: nn.Module | None = None
    layers: Sequence[str] | None = None
    layer_weights: Mapping[str, float] | None = None
    target: str | None = "target"
    pred_guide: Guide = None
    target_guide: Guide = None
    _layer_list: list[str] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Term name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.loss, nn.Module):
            raise ValueError(f"Term {self.name!r}: loss must be an nn.Module, got {type(self.loss).__name__}")
        self.weight = check_number(f"Term {self.name!r}: weight", self.weight)
        if self.extractor is None:
            if self.layers:
                raise ValueError(f"Term {self.name!r}: layers={list(self.layers)} given without an extractor")
            self._layer_list = [PIXELS]
        else:
            if not self.layers:
                raise ValueError(f"Term {self.name!r}: an extractor needs layers=[...] to compare")
            known = getattr(self.extractor, "layers", None)
            missing = [layer for layer in self.layers if known is not None and layer not in known]
            if missing:
                raise ValueError(
                    f"Term {self.name!r}: layers {missing} are not computed by its extractor "
                    f"(it computes {list(known)}); build the extractor with these layers too"
                )
            self._layer_list = list(self.layers)
        if self.layer_weights is not None:
            if not isinstance(self.layer_weights, Mapping):
                raise ValueError(
                    f"Term {self.name!r}: layer_weights must be a mapping of layer name to weight, got "
                    f"{type(self.layer_weights).__name__} {self.layer_weights!r}"
                )
            for layer, lw in self.layer_weights.items():
                check_number(f"Term {self.name!r}: layer_weights[{layer!r}]", lw)
            unknown = set(self.layer_weights) - set(self._layer_list)
            if unknown:
                raise ValueError(
                    f"Term {self.name!r}: layer_weights names layers it does not use: {sorted(unknown)}"
                )

        self._check_guides()

    def _check_guides(self) -> None:
        for side, guide in (("pred_guide", self.pred_guide), ("target_guide", self.target_guide)):
            if guide is None:
                continue
            if isinstance(guide, Tensor):
                check_tensor(f"Term {self.name!r}: {side}", guide, ndim=4, floating=False)
            elif not isinstance(guide, str) or not guide:
                raise ValueError(
                    f"Term {self.name!r}: {side} must be the name of a guide passed at call time "
                    f"(guides={{name: mask}}), a mask tensor N×R×h×w or None, got {type(guide).__name__} "
                    f"{guide!r}"
                )
        loss = self.loss
        if self.target_guide is not None:
            if self.target is None:
                raise ValueError(
                    f"Term {self.name!r}: target_guide given but the term has no target (target=None)"
                )
            if not _takes_mask(getattr(loss, "prepare_target", None)):
                raise ValueError(
                    f"Term {self.name!r}: {type(loss).__name__} takes no guide (its prepare_target has no "
                    f"mask argument); guides work with losses that do, e.g. GramLoss (guided Gram loss)"
                )
        if self.pred_guide is not None:
            fn = loss.forward if self.target is None else getattr(loss, "compare", None)
            if not _takes_mask(fn):
                raise ValueError(
                    f"Term {self.name!r}: {type(loss).__name__} takes no guide (its "
                    f"{'forward' if self.target is None else 'compare'} has no mask argument); guides work "
                    f"with losses that do, e.g. GramLoss (guided Gram loss)"
                )

    def guide_names(self) -> set[str]:
        """Names of the call-time guides this term needs."""
        return {g for g in (self.pred_guide, self.target_guide) if isinstance(g, str)}

    def layer_weight(self, layer: str) -> float:
        return 1.0 if self.layer_weights is None else float(self.layer_weights.get(layer, 1.0))


class ObjectiveOutput(NamedTuple):
    """``total`` = Σ weight·term; ``terms`` = unweighted value of each term (same reduction as total)."""

    total: Tensor
    terms: dict[str, Tensor]


def _extractor_key(extractor: nn.Module) -> Any:
    """Extractors with equal keys compute the same features (same backbone, weights, preprocessing)."""
    key = getattr(extractor, "cache_key", None)
    return key if key is not None else ("instance", id(extractor))


def _merged_extractor(group: Sequence[Term]) -> nn.Module:
    """One extractor computing every layer the terms of ``group`` (equal extractor keys) ask for."""
    extractors = list({id(t.extractor): t.extractor for t in group}.values())
    if len(extractors) == 1:
        return extractors[0]
    layers = list(dict.fromkeys(layer for t in group for layer in t._layer_list))
    deepest = max(extractors, key=lambda e: len(getattr(e, "backbone", ())))
    return deepest.with_layers(layers)


class _Seen:
    """The tensor a cache entry was computed from, as it was then.

    A match needs the very same tensor object (``is``), its version counter unchanged (an in-place change,
    also through a view, bumps it) and the same data address, shape, strides, dtype and device (``t.data =
    other`` swaps the storage without bumping the version). The tensor and a detached alias of its storage
    are held while the entry lives, so neither Python's ``id`` nor the allocator's address can pass to a new
    tensor meanwhile: a key of ``id``/address alone would take a new tensor allocated where a freed one was
    for the old one (stale values). The cost is holding one image (or mask) per cached entry, next to its
    features, which are larger.
    """

    __slots__ = ("alias", "state", "tensor")

    def __init__(self, t: Tensor) -> None:
        self.tensor = t
        self.alias = t.detach()  # keeps the storage seen here alive, even if t.data is replaced later
        self.state = self._state(t)

    @staticmethod
    def _state(t: Tensor) -> tuple:
        return (t._version, t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device)

    def matches(self, t: Tensor) -> bool:
        return t is self.tensor and self._state(t) == self.state


class Objective(nn.Module):
    """Weighted sum of :class:`Term` s with one feature pass per extractor per image.

    ``forward(pred, target)`` with ``target`` a tensor (the name "target") or a mapping of names to
    tensors returns an :class:`ObjectiveOutput`. ``pred`` is an image batch N×3×H×W in [0, 1].
    """

    def __init__(self, terms: Sequence[Term]) -> None:
        super().__init__()
        terms = list(terms)
        if not terms:
            raise ValueError("Objective needs at least one Term")
        names = [t.name for t in terms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"term names must be unique, repeated: {dupes}")
        self.terms = terms
        self.losses = nn.ModuleDict({t.name: t.loss for t in terms})
        self.extractors = nn.ModuleList()
        self._extractor_of: dict[str, int] = {}  # term name → index into self.extractors
        groups: dict[Any, list[Term]] = {}
        for t in terms:
            if t.extractor is not None:
                groups.setdefault(_extractor_key(t.extractor), []).append(t)
        for group in groups.values():
            for t in group:
                self._extractor_of[t.name] = len(self.extractors)
            self.extractors.append(_merged_extractor(group))
        # guides fixed on a Term: buffers (they move with .to()), not in the state dict
        self._fixed_guides = nn.Module()
        for i, t in enumerate(terms):
            for side in ("pred", "target"):
                g = getattr(t, f"{side}_guide")
                if isinstance(g, Tensor):
                    self._fixed_guides.register_buffer(f"t{i}_{side}", g, persistent=False)
        self._target_cache: dict[str, tuple[_Seen, dict[str, Tensor]]] = {}
        self._prepared_cache: dict[str, tuple[Tensor, _Seen | None, Any]] = {}
        self._float_guides: dict[str, tuple[_Seen, Tensor]] = {}  # a non-float guide → its float copy
        self._validate: bool | None = None
        #: number of extractor passes made by the last call (pred + non-cached targets); for tests/logs.
        self.last_passes = 0

    # -- features -------------------------------------------------------------------------------------

    def _features(self, images: Tensor, terms: Sequence[Term]) -> dict[int, dict[str, Tensor]]:
        """One pass of each extractor that ``terms`` need (index -1 holds the pixels)."""
        feats: dict[int, dict[str, Tensor]] = {-1: {PIXELS: images}}
        for i in sorted({self._extractor_index(t) for t in terms} - {-1}):
            extractor = self.extractors[i]
            # the images were value-checked once in forward(); the extractor need not check them again
            takes = "validate" in inspect.signature(extractor.forward).parameters
            feats[i] = extractor(images, validate=False) if takes else extractor(images)
            self.last_passes += 1
        return feats

    def _extractor_index(self, term: Term) -> int:
        return self._extractor_of.get(term.name, -1)

    def _target_features(
        self, name: str, target: Tensor, terms: Sequence[Term]
    ) -> dict[int, dict[str, Tensor]]:
        cached = self._target_cache.get(name)
        if cached is not None and cached[0].matches(target) and not target.requires_grad:
            return cached[1]
        check_image(f"target[{name!r}]", target.detach(), channels=None, validate=self._validate)
        with torch.set_grad_enabled(target.requires_grad):
            feats = self._features(target, terms)
        if not target.requires_grad:
            self._target_cache[name] = (_Seen(target), feats)
            # prepared statistics of the old target are stale now
            for t in terms:
                self._prepared_cache.pop(t.name, None)
        return feats

    def _prepared(
        self, term: Term, layer: str, feat: Tensor, cacheable: bool, guide: Tensor | None = None
    ) -> Any:
        loss: FeatureLoss = term.loss  # type: ignore[assignment]
        prepare = getattr(loss, "prepare_target", None)
        if prepare is None:
            return feat

        def compute() -> Any:
            if guide is None:
                return prepare(feat)
            return prepare(feat, mask=resize_guide(guide, feat.shape[-2:]))  # type: ignore[call-arg]

        if not cacheable or (guide is not None and guide.requires_grad):
            return compute()
        cache_key = f"{term.name}/{layer}"
        hit = self._prepared_cache.get(cache_key)
        if hit is not None and hit[0] is feat:
            seen = hit[1]
            if seen is None if guide is None else seen is not None and seen.matches(guide):
                return hit[2]
        with torch.no_grad():
            value = compute()
        self._prepared_cache[cache_key] = (feat, None if guide is None else _Seen(guide), value)
        return value

    def _guide(self, term: Term, side: str, guides: Mapping[str, Tensor]) -> Tensor | None:
        g = getattr(term, f"{side}_guide")
        if g is None:
            return None
        if isinstance(g, str):
            return guides[g]
        index = next(i for i, t in enumerate(self.terms) if t is term)
        return getattr(self._fixed_guides, f"t{index}_{side}")

    def guide_names(self) -> set[str]:
        """Names of the guides the terms need at call time (``forward(..., guides={name: mask})``)."""
        return set().union(*(t.guide_names() for t in self.terms))

    def clear_cache(self) -> None:
        """Forget cached target features and prepared statistics."""
        self._target_cache.clear()
        self._prepared_cache.clear()
        self._float_guides.clear()

    # -- forward ---------------------------------------------------------------------------------------

    def forward(
        self,
        pred: Tensor,
        target: Tensor | Mapping[str, Tensor] | None = None,
        *,
        guides: Mapping[str, Tensor] | None = None,
        validate: bool | None = None,
    ) -> ObjectiveOutput:
        """Total and per-term values of ``pred`` (N×C×H×W in [0, 1]) against ``target`` (a tensor or a
        mapping of names to tensors).

        ``guides`` maps the guide names the terms use (``Term.pred_guide``/``target_guide``) to masks
        N×R×h×w or 1×R×h×w with weights in [0, 1] (boolean masks are accepted), at any resolution; each is
        resized to the size of every layer it guides. A prediction guide's batch must be 1 or pred's; a target
        guide's 1 or its target's.

        Values of ``pred`` and of each target (when its features are not cached) are checked — finite, in
        [0, 1], one ``aminmax`` each — when ``validate`` is True, or None (default) and value checks are on
        (:func:`featstat.set_value_checks`, ``FEATSTAT_VALUE_CHECKS=0``). Engines that optimise the pixels
        themselves (an iterate that leaves [0, 1] between steps) pass ``validate=False`` for that reason.
        """
        check_tensor("pred", pred, ndim=4)
        if target is not None and not isinstance(target, (Tensor, Mapping)):
            raise ValueError(
                f"target must be a tensor, a mapping of names to tensors or None, got {type(target).__name__}"
            )
        targets = {"target": target} if isinstance(target, Tensor) else dict(target or {})
        for name, t in targets.items():
            check_tensor(f"target[{name!r}]", t, ndim=4)
            check_same_device(pred, t, names=("pred", f"target[{name!r}]"))
        check_image("pred", pred.detach(), channels=None, validate=validate)
        self._validate = validate
        needed = {t.target for t in self.terms if t.target is not None}
        missing = sorted(needed - set(targets))
        if missing:
            raise ValueError(
                f"target is missing {missing}: terms compare against these names; pass "
                f"target={{{', '.join(repr(m) + ': tensor' for m in missing)}}}"
                if missing != ["target"]
                else "target is required: some terms compare against a target image"
            )
        guide_maps = self._check_guides(guides, pred, targets, validate)
        self.last_passes = 0
        pred_feats = self._features(pred, self.terms)
        target_feats = {
            name: self._target_features(name, targets[name], [t for t in self.terms if t.target == name])
            for name in needed
        }
        total: Tensor | None = None
        values: dict[str, Tensor] = {}
        for term in self.terms:
            ei = self._extractor_index(term)
            pg, tg = self._guide(term, "pred", guide_maps), self._guide(term, "target", guide_maps)
            value: Tensor | None = None
            for layer in term._layer_list:
                p = pred_feats[ei][layer]
                kw = {} if pg is None else {"mask": resize_guide(pg, p.shape[-2:])}
                if term.target is None:
                    v = term.loss(p, **kw)
                else:
                    tf = target_feats[term.target][ei][layer]
                    prepared = self._prepared(term, layer, tf, not targets[term.target].requires_grad, tg)
                    v = reduce(term.loss.compare(p, prepared, **kw), term.loss.reduction)  # type: ignore[operator]
                v = term.layer_weight(layer) * v
                value = v if value is None else value + v
            assert value is not None
            values[term.name] = value
            weighted = term.weight * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return ObjectiveOutput(total, values)

    def _check_guides(
        self,
        guides: Mapping[str, Tensor] | None,
        pred: Tensor,
        targets: Mapping[str, Tensor],
        validate: bool | None,
    ) -> dict[str, Tensor]:
        """The call-time guides, checked: every name a term uses is given, N×R×h×w on pred's device, batch
        1 or that of the image it guides; values in [0, 1] (checked like images, see ``validate``)."""
        if guides is not None and not isinstance(guides, Mapping):
            raise ValueError(
                f"guides must be a mapping of guide names to masks N×R×h×w, got {type(guides).__name__}"
            )
        given = dict(guides or {})
        needed = self.guide_names()
        missing = sorted(needed - set(given))
        if missing:
            raise ValueError(
                f"guides is missing {missing}: terms are guided by these names; pass "
                f"guides={{{', '.join(repr(m) + ': mask' for m in missing)}}}"
            )
        unused = sorted(set(given) - needed)
        if unused:
            raise ValueError(
                f"guides {unused} are not used by any term (terms use {sorted(needed) or 'none'}); name them "
                f"with Term(pred_guide=..., target_guide=...)"
            )
        out: dict[str, Tensor] = {}
        for name, g in given.items():
            where = f"guides[{name!r}]"
            g = check_tensor(where, g, ndim=4, floating=False)
            if not g.dtype.is_floating_point:
                g = self._float_guide(name, g)
            check_same_device(pred, g, names=("pred", where))
            check_image(where, g.detach(), channels=None, validate=validate)
            out[name] = g
        for term in self.terms:
            for side, image in (("pred", pred), ("target", targets.get(term.target or "", None))):
                g = self._guide(term, side, out)
                if g is None or image is None:
                    continue
                if g.shape[0] not in (1, image.shape[0]):
                    raise ValueError(
                        f"Term {term.name!r}: its {side} guide has batch {g.shape[0]} but the {side} has "
                        f"{image.shape[0]} images; give one mask (batch 1) or one per image"
                    )
                if g.device != image.device:
                    raise ValueError(
                        f"Term {term.name!r}: its {side} guide is on {g.device} but the {side} on "
                        f"{image.device}; move the objective or the mask"
                    )
        return out

    def _float_guide(self, name: str, g: Tensor) -> Tensor:
        """``g.float()`` of a boolean/integer mask, the same float tensor while ``g`` is passed unchanged (so
        the statistic prepared with it stays cached)."""
        seen = self._float_guides.get(name)
        if seen is not None and seen[0].matches(g):
            return seen[1]
        converted = g.float()
        self._float_guides[name] = (_Seen(g), converted)
        return converted

    # -- construction from plain data -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | os.PathLike[str]) -> Objective:
        """Build from a dict or a TOML file (see :mod:`featstat.objective.config`)."""
        # through the package, which imports config after core: core never imports config (no cycle)
        from . import build_objective

        return build_objective(config)
