"""Unaligned image translation with perceptual discriminators (thesis 5.3–5.4), on the one run loop.

A generator G (:class:`~featstat.adversarial.nets.ResnetTranslator`) learns to map images of a *source*
folder to the look of a *target* folder from unpaired examples. Each step (after optional pre-training):

1. discriminator update: ``D`` learns to tell target crops y from translations G(x) (eq. 5.1; non-saturating
   GAN or LSGAN, summed over the discriminator's heads as eq. 5.6);
2. generator update: ``G`` minimises the adversarial loss on D(G(x)), plus
   - the identity loss (eq. 5.7) ``λ_id · ‖y − G(y)‖₁`` (target images should pass unchanged),
   - with ``cycle=True`` (CycleGAN-style, "the cycle idea", 5.3.3.3): a second generator F: target → source
     and discriminator D_x, and the reciprocity terms ``λ_cyc (‖F(G(x)) − x‖₁ + ‖G(F(y)) − y‖₁)``,
   - any :class:`~featstat.Objective` given as ``objective`` (its terms compare G(x) with the input x, e.g.
     a contextual or PDL term keeping the content).

Pre-training (5.3.3.3): the first ``pretrain`` steps train G (and F) as auto-encoders (``‖G(x) − x‖₁``,
and ``‖G(y) − y‖₁``), which the thesis found required with perceptual discriminators.

With a perceptual discriminator the frozen trunk runs once per image per step: the features of G(x)
computed for the generator's loss serve (detached) for the discriminator's update; the target features
are computed once without a graph.

Discriminators (``discriminator=``): "perceptual" (frozen VGG*-style trunk, see
:class:`~featstat.adversarial.discriminators.PerceptualDiscriminator`), "image" (DCGAN), "ms-image" (shared
trunk over image scales), "separate-ms" (Wang et al.), "rand-ms" (perceptual architecture, random trainable
trunk).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, make_generator
from ..engine.loop import LoopResult
from ..features import FeatureExtractor, PatchExtractor
from ..features.sources import choose_features
from ..io import list_images, read_image
from ..losses.adversarial import GAN_KINDS
from ..nets.restoration import tiled_forward
from ..objective import Objective
from ._runs import drive, load_run
from .discriminators import (
    VGG_LAYERS,
    ImageDiscriminator,
    PerceptualDiscriminator,
    SeparateMultiScaleDiscriminator,
    discriminator_head_loss,
    generator_head_loss,
    ms_image_discriminator,
    rand_ms_discriminator,
    vgg_star_,
)
from .nets import ResnetTranslator

__all__ = [
    "DISCRIMINATORS",
    "TranslationOptions",
    "TranslationRun",
    "UnpairedCrops",
    "build_discriminator",
    "load_translator",
    "train_translation",
    "translate",
]

DISCRIMINATORS = ("perceptual", "image", "ms-image", "separate-ms", "rand-ms")


@dataclass
class TranslationOptions:
    """Settings of :func:`train_translation` (defaults: the thesis' low-resolution setting, 5.3–5.4)."""

    steps: int = 20000
    batch: int = 4
    size: int = 128
    discriminator: str = "perceptual"
    layers: tuple[str, ...] = VGG_LAYERS
    weights: str | None = "auto"  # "auto": the best local VGG-19 features (featstat.features.sources)
    vgg_star: bool = True  # average pooling + LeakyReLU 0.2 in the frozen trunk (VGG*)
    patch_heads: tuple[int, ...] = ()  # () = single-output discriminator (low resolution)
    width: int = 64  # discriminator width
    gan: str = "nonsaturating"  # or "lsgan" (the thesis' high-resolution choice)
    identity: float = 1.0  # λ_id of eq. 5.7
    cycle: bool = False
    cycle_weight: float = 10.0
    pretrain: int = 0  # auto-encoder steps before the adversarial game
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    downsamplings: int = 2
    blocks: int = 6
    generator_width: int = 32
    seed: int = 0
    objective: Mapping[str, Any] | None = field(default=None)  # an Objective spec: terms vs the input

    def __post_init__(self) -> None:
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        check_choice("gan", self.gan, GAN_KINDS)
        for name in ("steps", "batch", "size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.batch < 2:
            raise ValueError("batch must be at least 2 (the discriminators use batch statistics)")
        for name in ("identity", "cycle_weight", "lr"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v < 0 or v != v:
                raise ValueError(f"{name} must be a number ≥ 0, got {v!r}")
        if not isinstance(self.pretrain, int) or self.pretrain < 0:
            raise ValueError(f"pretrain must be an int ≥ 0, got {self.pretrain!r}")
        self.layers = tuple(self.layers)
        self.patch_heads = tuple(self.patch_heads)
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    def record(self) -> dict[str, Any]:
        """JSON-able settings (checkpoint fingerprint and run.json)."""
        d = dataclasses.asdict(self)
        d.update(layers=list(self.layers), patch_heads=list(self.patch_heads), betas=list(self.betas))
        return d


def build_discriminator(opts: TranslationOptions, *, seed: int | torch.Generator = 0) -> nn.Module:
    """The discriminator named by ``opts.discriminator`` (see the module docstring)."""
    kind = opts.discriminator
    if kind == "image":
        return ImageDiscriminator(width=opts.width, seed=seed)
    if kind == "separate-ms":
        return SeparateMultiScaleDiscriminator(width=opts.width, seed=seed)
    heads = opts.patch_heads if opts.patch_heads else ((0, 1, 2) if kind in ("ms-image", "rand-ms") else ())
    if kind == "ms-image":
        return ms_image_discriminator(len(opts.layers), width=opts.width, patch_heads=heads, seed=seed)
    if kind == "rand-ms":
        return rand_ms_discriminator(opts.layers, width=opts.width, patch_heads=heads, seed=seed)
    if opts.weights == "auto":
        source = choose_features("vgg19", list(opts.layers))
        layers = list(dict.fromkeys(source.layers[n] for n in opts.layers))
        trunk = FeatureExtractor(source.arch, layers, source.weights,
                                 pooling="avg" if opts.vgg_star else "max", seed=0)  # fmt: skip
    elif opts.weights == "patches":
        trunk = PatchExtractor(5, 2)
    else:
        trunk = FeatureExtractor("vgg19", list(opts.layers), opts.weights,
                                 pooling="avg" if opts.vgg_star else "max", seed=0)  # fmt: skip
    if opts.vgg_star and isinstance(trunk, FeatureExtractor):
        vgg_star_(trunk)
    heads = tuple(j for j in heads if j < len(trunk.layers))
    return PerceptualDiscriminator(trunk, width=opts.width, patch_heads=heads, seed=seed)


class UnpairedCrops:
    """Random ``size``² crops (with horizontal flips) of the images of two folders, drawn independently.

    Images are read when drawn (any number of files); images smaller than ``size`` are upscaled (bicubic) to
    fit. The draw uses the ``torch.Generator`` it is given, so a run's data order is part of its state."""

    def __init__(self, source: str | Path | Sequence[str | Path], target: str | Path | Sequence[str | Path],
                 size: int) -> None:  # fmt: skip
        self.source, self.target = self._files("source", source), self._files("target", target)
        self.size = size

    @staticmethod
    def _files(name: str, where: Any) -> list[Path]:
        try:
            files = list_images(where) if isinstance(where, str | Path) else [Path(p) for p in where]
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        if not files:
            raise ValueError(f"{name}: no images found in {where!s}; give a folder of PNG/JPEG images")
        return files

    def _crop(self, path: Path, g: torch.Generator) -> Tensor:
        img = read_image(path, alpha="drop")
        h, w = img.shape[-2:]
        if min(h, w) < self.size:
            s = self.size / min(h, w)
            img = F.interpolate(img, size=(max(self.size, round(h * s)), max(self.size, round(w * s))),
                                mode="bicubic", align_corners=False).clamp(0, 1)  # fmt: skip
            h, w = img.shape[-2:]
        top = int(torch.randint(h - self.size + 1, (1,), generator=g))
        left = int(torch.randint(w - self.size + 1, (1,), generator=g))
        crop = img[..., top : top + self.size, left : left + self.size]
        return crop.flip(-1) if bool(torch.rand(1, generator=g) < 0.5) else crop

    def draw(self, which: str, batch: int, g: torch.Generator) -> Tensor:
        files = self.source if which == "source" else self.target
        idx = torch.randint(len(files), (batch,), generator=g).tolist()
        return torch.cat([self._crop(files[i], g) for i in idx])


def _adam(params: Any, opts: TranslationOptions) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=opts.lr, betas=opts.betas)


class TranslationRun:
    """One step of unaligned translation training (a :class:`~featstat.engine.loop.Run`)."""

    kind = "translation"

    def __init__(self, opts: TranslationOptions, data: UnpairedCrops, *, device: torch.device | str = "cpu",
                 objective: Objective | None = None) -> None:  # fmt: skip
        self.opts, self.data, self.device = opts, data, torch.device(device)
        g = make_generator(opts.seed)

        def generator() -> ResnetTranslator:
            return ResnetTranslator(opts.downsamplings, opts.blocks, opts.generator_width, seed=g).to(device)

        self.g_xy = generator()
        self.d_y = build_discriminator(opts, seed=g).to(device)
        nets = [self.g_xy]
        discs = [self.d_y]
        if opts.cycle:
            self.g_yx = generator()
            self.d_x = build_discriminator(opts, seed=g).to(device)
            nets.append(self.g_yx)
            discs.append(self.d_x)
        self.opt_g = _adam([p for n in nets for p in n.parameters()], opts)
        self.opt_d = _adam([p for d in discs for p in d.parameters() if p.requires_grad], opts)
        self.objective = objective.to(device) if objective is not None else None
        self.sampler = torch.Generator().manual_seed(opts.seed + 1)

    def fingerprint(self) -> dict[str, Any]:
        rec = self.opts.record()
        rec.pop("steps")
        rec["source_files"] = len(self.data.source)
        rec["target_files"] = len(self.data.target)
        return rec

    def _disc_features(self, d: nn.Module, images: Tensor) -> Any:
        """The frozen trunk's features (shared between the two updates), or None where the discriminator
        has no frozen trunk (its trunk, if any, must see the images with a graph to be trained)."""
        if isinstance(d, PerceptualDiscriminator) and not d.trainable_trunk:
            return d.extractor(images)
        return None

    def _d_out(self, d: nn.Module, images: Tensor, feats: Any) -> list[Tensor]:
        return d(features=feats) if feats is not None else d(images)

    def _adversarial_pair(
        self, g: nn.Module, d: nn.Module, x: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor, Any]:
        """(fake, discriminator loss, generator adversarial loss) for one direction; D is updated by the
        caller. The trunk runs once on fake (with a graph) and once on real (without)."""
        fake = g(x)
        feats = self._disc_features(d, fake)
        with torch.no_grad():
            real_feats = self._disc_features(d, y)
        detached = {k: v.detach() for k, v in feats.items()} if feats is not None else None
        fake_in = fake.detach()
        d_loss = discriminator_head_loss(self._d_out(d, y, real_feats), self._d_out(d, fake_in, detached),
                                         self.opts.gan)  # fmt: skip
        return fake, d_loss, feats

    def step(self, step: int) -> dict[str, Tensor]:
        o = self.opts
        x = self.data.draw("source", o.batch, self.sampler).to(self.device)
        y = self.data.draw("target", o.batch, self.sampler).to(self.device)
        nets = [self.g_xy] + ([self.g_yx] if o.cycle else [])
        for n in nets:
            n.train()
        if step < o.pretrain:  # 5.3.3.3: generators pre-trained as auto-encoders
            loss = (self.g_xy(x) - x).abs().mean() + (self.g_xy(y) - y).abs().mean()
            if o.cycle:
                loss = loss + (self.g_yx(y) - y).abs().mean() + (self.g_yx(x) - x).abs().mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
            return {"loss": loss.detach(), "pretrain": torch.tensor(1.0)}
        pairs = [(self.g_xy, self.d_y, x, y)] + ([(self.g_yx, self.d_x, y, x)] if o.cycle else [])
        fakes, feats, d_total = [], [], 0.0
        for g, d, src, tgt in pairs:
            fake, d_loss, f = self._adversarial_pair(g, d, src, tgt)
            fakes.append(fake)
            feats.append(f)
            d_total = d_total + d_loss
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()  # type: ignore[union-attr]
        self.opt_d.step()
        adv = sum(generator_head_loss(self._d_out(d, fk, f), o.gan)
                  for (g, d, src, tgt), fk, f in zip(pairs, fakes, feats, strict=True))  # fmt: skip
        g_total: Tensor = adv  # type: ignore[assignment]
        values: dict[str, Tensor] = {"d_loss": d_total.detach(), "g_adv": g_total.detach()}  # type: ignore
        if o.identity:
            ident = (self.g_xy(y) - y).abs().mean()
            if o.cycle:
                ident = ident + (self.g_yx(x) - x).abs().mean()
            g_total = g_total + o.identity * ident
            values["identity"] = ident.detach()
        if o.cycle:
            cyc = (self.g_yx(fakes[0]) - x).abs().mean() + (self.g_xy(fakes[1]) - y).abs().mean()
            g_total = g_total + o.cycle_weight * cyc
            values["cycle"] = cyc.detach()
        if self.objective is not None:
            out = self.objective(fakes[0], x)
            g_total = g_total + out.total
            values["objective"] = out.total.detach()
        self.opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        self.opt_g.step()
        values["loss"] = g_total.detach()
        return values

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "g_xy": self.g_xy.state_dict(), "d_y": self.d_y.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sampler": self.sampler.get_state(), "g_spec": dict(self.g_xy.spec),
        }  # fmt: skip
        if self.opts.cycle:
            state["g_yx"], state["d_x"] = self.g_yx.state_dict(), self.d_x.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.g_xy.load_state_dict(state["g_xy"])
        self.d_y.load_state_dict(state["d_y"])
        if self.opts.cycle:
            self.g_yx.load_state_dict(state["g_yx"])
            self.d_x.load_state_dict(state["d_x"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.set_state(state["sampler"])

    def finish(self, step: int) -> dict[str, Any]:
        return {"generator": self.g_xy.spec, "options": self.opts.record()}


def train_translation(
    source: str | Path | Sequence[str | Path],
    target: str | Path | Sequence[str | Path],
    folder: str | Path | None = None,
    options: TranslationOptions | None = None,
    *,
    objective: Objective | None = None,
    device: torch.device | str = "cpu",
    resume: bool = False,
    checkpoint_every: int = 500,
    log_every: int = 50,
    progress: bool = False,
    callback: Any = None,
    **kwargs: Any,
) -> tuple[TranslationRun, LoopResult]:
    """Train a source → target translator from two unpaired image folders (or file lists).

    ``options`` (or keyword overrides of :class:`TranslationOptions`) set the method; ``folder`` gets
    ``checkpoint.pt`` (resume with ``resume=True``), the history JSON/CSV, curves and ``run.json``.
    Returns the Run (its ``g_xy`` is the trained generator) and the loop's result."""
    opts = dataclasses.replace(options or TranslationOptions(), **kwargs)
    if objective is None and opts.objective:
        from ..objective.config import build_objective

        objective = build_objective(opts.objective)
    run = TranslationRun(opts, UnpairedCrops(source, target, opts.size), device=device, objective=objective)
    result = drive(run, opts.steps, folder, description="translate", device=device, resume=resume,
                   checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                   callback=callback)
    return run, result


def load_translator(checkpoint: str | Path, device: torch.device | str = "cpu") -> ResnetTranslator:
    """The source → target generator saved by :func:`train_translation` (a checkpoint file or run folder)."""
    ck = load_run(checkpoint, TranslationRun.kind, "a translation run")
    state = ck["state"]
    net = ResnetTranslator(**state["g_spec"])
    net.load_state_dict(state["g_xy"])
    return net.to(device).eval()


@torch.no_grad()
def translate(generator: nn.Module, images: Tensor, *, tile: int = 512, overlap: int = 32) -> Tensor:
    """Translate images (N×3×H×W in [0, 1], any size) with a trained generator, tile by tile."""
    generator.eval()
    multiple = getattr(generator, "size_multiple", 1)
    return tiled_forward(generator, images, tile=tile, overlap=overlap, multiple=multiple).clamp(0, 1)
