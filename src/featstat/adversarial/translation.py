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

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .._checks import check_choice, check_image, legacy_arguments, make_generator
from ..engine.distributed import distributed
from ..engine.loop import LoopResult
from ..io import list_images, read_image
from ..losses.adversarial import GAN_KINDS
from ..nets.restoration import tiled_forward
from ..objective import Objective
from ._runs import drive, load_run
from .discriminators import (
    DISCRIMINATORS,
    VGG_LAYERS,
    PerceptualDiscriminator,
    discriminator_head_loss,
    generator_head_loss,
    make_discriminator,
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

#: Frozen-trunk passes run on channels-last tensors (measured faster for VGG convolutions on CPU, see
#: benchmarks/adversarial.py step); the features come back channels-last, the values are the same.
CHANNELS_LAST = True


@dataclass
class TranslationOptions:
    """Settings of :func:`train_translation` (defaults: the thesis' low-resolution setting, 5.3–5.4)."""

    steps: int = 20000
    batch: int = 4
    size: int = 128
    discriminator: str = "perceptual"  # a name of DISCRIMINATORS (the network registry)
    layers: tuple[str, ...] = VGG_LAYERS
    weights: str | None = "auto"  # "auto": the best local VGG-19 features (featstat.features.sources)
    vgg_star: bool = True  # average pooling + LeakyReLU 0.2 in the frozen trunk (VGG*)
    patch_heads: tuple[int, ...] = ()  # () = the discriminator's default (none for perceptual)
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
        check_choice("discriminator", self.discriminator, tuple(DISCRIMINATORS))
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
    """The discriminator named by ``opts.discriminator``, built from the network registry
    (:func:`~featstat.adversarial.discriminators.make_discriminator`) with the options' width, layers,
    trunk weights, VGG* switch and patch heads."""
    return make_discriminator(opts.discriminator, width=opts.width, layers=opts.layers, weights=opts.weights,
                              vgg_star=opts.vgg_star, patch_heads=opts.patch_heads or None,
                              seed=seed)  # fmt: skip


class UnpairedCrops:
    """Random ``size``² crops (with horizontal flips) of two image sets, drawn independently.

    ``source`` and ``target``: a folder, a list of image files, or a tensor N×3×H×W in [0, 1] (images kept
    in memory: no file is read per step). Files are read when drawn (any number of them); images smaller
    than ``size`` are upscaled (bicubic) to fit. The draw is seeded (an int or the run's
    ``torch.Generator``, so a run's data order is part of its state).
    """

    def __init__(self, source: str | Path | Sequence[str | Path] | Tensor,
                 target: str | Path | Sequence[str | Path] | Tensor, size: int) -> None:  # fmt: skip
        self.source, self.target = self._images("source", source), self._images("target", target)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size

    @staticmethod
    def _images(name: str, where: Any) -> list[Path] | list[Tensor]:
        if isinstance(where, Tensor):
            images = check_image(name, where, validate=True)
            if images.shape[0] == 0:
                raise ValueError(f"{name}: the tensor holds no images (shape {tuple(images.shape)})")
            return list(images.detach().float().cpu().split(1))
        try:
            files = list_images(where) if isinstance(where, str | Path) else [Path(p) for p in where]
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        if not files:
            raise ValueError(f"{name}: no images found in {where!s}; give a folder of PNG/JPEG images")
        return files

    def _crop(self, item: Path | Tensor, u: Tensor) -> Tensor:
        img = item if isinstance(item, Tensor) else read_image(item, alpha="drop")
        h, w = img.shape[-2:]
        if min(h, w) < self.size:
            s = self.size / min(h, w)
            img = F.interpolate(img, size=(max(self.size, round(h * s)), max(self.size, round(w * s))),
                                mode="bicubic", align_corners=False).clamp(0, 1)  # fmt: skip
            h, w = img.shape[-2:]
        top = min(int(float(u[0]) * (h - self.size + 1)), h - self.size)
        left = min(int(float(u[1]) * (w - self.size + 1)), w - self.size)
        crop = img[..., top : top + self.size, left : left + self.size]
        return crop.flip(-1) if float(u[2]) < 0.5 else crop

    @legacy_arguments(renamed={"g": "seed"})
    def draw(self, which: str, batch: int, seed: int | torch.Generator, *, rank: int = 0,
             world: int = 1) -> Tensor:  # fmt: skip
        """``batch`` crops (batch×3×size×size) of the "source" or "target" images.

        The random numbers are drawn for ``world``·``batch`` crops and process ``rank`` reads its
        ``batch`` of them (data-parallel training: W processes see what one process drawing W·batch sees).
        A crop's position is drawn as a fraction of the image, so nothing but the chosen images is read.
        """
        check_choice("which", which, ("source", "target"))
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in 0..world-1, got rank={rank!r}, world={world!r}")
        items = self.source if which == "source" else self.target
        g = make_generator(seed)
        idx = torch.randint(len(items), (world * batch,), generator=g).tolist()
        u = torch.rand(world * batch, 3, generator=g, dtype=torch.float64)
        mine = range(rank * batch, (rank + 1) * batch)
        return torch.cat([self._crop(items[idx[k]], u[k]) for k in mine])


class _OnePass(nn.Module):
    """A frozen feature extractor that remembers its last call with a graph within a step: called again
    with the same image tensor (the same object, unmodified, grad mode on) it returns the same features, so
    one trunk pass on G(x) serves the discriminator and an Objective term on the same extractor.
    :meth:`forget` ends the step (the features hold the generator's graph)."""

    def __init__(self, extractor: nn.Module, channels_last: bool | None = None) -> None:
        super().__init__()
        self.inner = extractor
        self.layers = list(extractor.layers)
        self.min_size = getattr(extractor, "min_size", 1)
        self.channels_last = CHANNELS_LAST if channels_last is None else channels_last
        self._takes_validate = "validate" in inspect.signature(extractor.forward).parameters
        self._last: tuple[Tensor, tuple, dict[str, Tensor]] | None = None
        self.passes = 0  # trunk passes made (tests and benchmarks read it)

    @property
    def cache_key(self) -> Any:
        return getattr(self.inner, "cache_key", ("instance", id(self.inner)))

    @staticmethod
    def _state(t: Tensor) -> tuple:
        grad = torch.is_grad_enabled()
        return (t._version, t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device, grad)

    def forward(self, images: Tensor, *, validate: bool | None = False) -> dict[str, Tensor]:
        last = self._last
        if last is not None and last[0] is images and last[1] == self._state(images):
            return last[2]
        x = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
        feats = self.inner(x, validate=validate) if self._takes_validate else self.inner(x)
        self.passes += 1
        if torch.is_grad_enabled():  # the pass on G(x); passes without a graph (real images) are not kept
            self._last = (images, self._state(images), feats)
        return feats

    def forget(self) -> None:
        self._last = None


def _adam(params: Any, opts: TranslationOptions) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=opts.lr, betas=opts.betas)


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().mean()


class TranslationRun:
    """Unaligned translation training as a :class:`~featstat.engine.loop.Run`: one step is one
    discriminator update and one generator update (after ``pretrain`` auto-encoder steps).

    Under ``torchrun`` (or in a process group the caller initialised) the run is data-parallel like
    restoration training (:func:`featstat.engine.distributed.distributed`): every process draws the same
    world·batch crops and trains on its ``batch`` of them, the generators and discriminators are wrapped in
    ``DistributedDataParallel`` (gradients averaged), the logged numbers are averaged over the processes
    and rank 0 writes the files — W processes compute what one process does with batch W·batch.

    Cost of a step with a frozen trunk (perceptual discriminator): the trunk runs once on G(x) with a graph
    (the generator's loss needs gradients through it; its own parameters need none), once on y without a
    graph; the discriminator's update reads the detached features of G(x), and an Objective term on an
    extractor equal to the trunk (same ``cache_key``) reads the same pass. The generator's update runs the
    discriminator with its parameters' gradients switched off (no weight-gradient convolutions).
    """

    kind = "translation"

    def __init__(self, opts: TranslationOptions, data: UnpairedCrops, *,
                 device: torch.device | str | None = None,
                 objective: Objective | None = None) -> None:  # fmt: skip
        self.rank, self.world, self.local_rank, self._owns_group = distributed()
        self.rank0 = self.rank == 0
        if device is None:  # the CPU, or this rank's GPU under torchrun
            device = f"cuda:{self.local_rank}" if self.world > 1 and torch.cuda.is_available() else "cpu"
        self.opts, self.data, self.device = opts, data, torch.device(device)
        if self.world > 1 and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.local_rank)  # "cuda" under torchrun: this rank's GPU
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)
        g = make_generator(opts.seed)

        def generator() -> ResnetTranslator:
            net = ResnetTranslator(opts.downsamplings, opts.blocks, opts.generator_width, seed=g)
            return net.to(self.device)

        self.g_xy = generator()
        self.d_y = build_discriminator(opts, seed=g).to(self.device)
        self.generators: list[nn.Module] = [self.g_xy]
        self.discriminators: list[nn.Module] = [self.d_y]
        if opts.cycle:
            self.g_yx = generator()
            self.d_x = build_discriminator(opts, seed=g).to(self.device)
            self.generators.append(self.g_yx)
            self.discriminators.append(self.d_x)
        self._learnable = [[p for p in d.parameters() if p.requires_grad] for d in self.discriminators]
        self.opt_g = _adam([p for n in self.generators for p in n.parameters()], opts)
        self.opt_d = _adam([p for ps in self._learnable for p in ps], opts)
        self.objective = objective.to(self.device) if objective is not None else None
        self.sampler = torch.Generator().manual_seed(opts.seed + 1)
        # the frozen trunks' passes (None: the discriminator reads images)
        self.trunks: list[_OnePass | None] = [
            _OnePass(d.extractor) if isinstance(d, PerceptualDiscriminator) and not d.trainable_trunk
            else None
            for d in self.discriminators
        ]  # fmt: skip
        if self.objective is not None and self.trunks[0] is not None:
            self.trunks[0] = self._share_with_objective(self.trunks[0], self.objective)
        # what the updates call: DDP wrappers under torchrun (gradients averaged), else the modules
        self._g: list[nn.Module] = list(self.generators)
        self._d: list[nn.Module] = list(self.discriminators)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._g = [DistributedDataParallel(n, device_ids=ids) for n in self.generators]
            self._d = [DistributedDataParallel(d, device_ids=ids) for d in self.discriminators]

    @staticmethod
    def _share_with_objective(trunk: _OnePass, objective: Objective) -> _OnePass:
        """One pass of the trunk for the discriminator and the Objective's terms on an equal extractor (same
        ``cache_key``: same network, weights, preprocessing, pooling — VGG* differs from VGG): both read a
        merged extractor covering their layers."""
        inner = trunk.inner
        for index, extractor in enumerate(objective.extractors):
            if getattr(extractor, "cache_key", None) != trunk.cache_key:
                continue
            layers = list(dict.fromkeys([*trunk.layers, *extractor.layers]))
            if layers != list(inner.layers):
                if not hasattr(inner, "with_layers"):
                    continue
                merged = inner.with_layers(layers)
                if getattr(inner, "vgg_star", False):  # layers deeper than the trunk come rebuilt: VGG* again
                    from .discriminators import vgg_star_

                    merged = vgg_star_(merged)
                inner = merged
            trunk = _OnePass(inner, trunk.channels_last)
            objective.extractors[index] = trunk
        return trunk

    def fingerprint(self) -> dict[str, Any]:
        rec = self.opts.record()
        rec.pop("steps")
        rec["source_files"] = len(self.data.source)
        rec["target_files"] = len(self.data.target)
        rec["world_size"] = self.world
        return rec

    @contextlib.contextmanager
    def _fixed_discriminators(self) -> Iterator[None]:
        """The discriminators' learnable parameters need no gradient inside (the generator's update)."""
        for ps in self._learnable:
            for p in ps:
                p.requires_grad_(False)
        try:
            yield
        finally:
            for ps in self._learnable:
                for p in ps:
                    p.requires_grad_(True)

    def _inputs(self, i: int, images: Tensor, feats: Mapping[str, Tensor] | None) -> dict[str, Any]:
        return {"features": feats} if self.trunks[i] is not None else {"images": images}

    def step(self, step: int) -> dict[str, Tensor]:
        o = self.opts
        x = self.data.draw("source", o.batch, self.sampler, rank=self.rank, world=self.world).to(self.device)
        y = self.data.draw("target", o.batch, self.sampler, rank=self.rank, world=self.world).to(self.device)
        for n in self.generators:
            n.train()
        g = self._g
        if step < o.pretrain:  # 5.3.3.3: generators pre-trained as auto-encoders
            loss = _l1(g[0](x), x) + _l1(g[0](y), y)
            if o.cycle:
                loss = loss + _l1(g[1](y), y) + _l1(g[1](x), x)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
            return {"loss": loss.detach(), "pretrain": torch.tensor(1.0)}
        directions = [(0, x, y)] + ([(1, y, x)] if o.cycle else [])
        try:
            # translations, and the frozen trunk's features of them (with a graph: the generator needs it)
            fakes = [g[i](src) for i, src, _ in directions]
            feats = [
                trunk(fake) if (trunk := self.trunks[i]) is not None else None
                for (i, _, _), fake in zip(directions, fakes, strict=True)
            ]
            # 1. discriminator update: real features without a graph, the fakes' features detached
            d_total: Tensor | None = None
            for (i, _, real), fake, f in zip(directions, fakes, feats, strict=True):
                trunk = self.trunks[i]
                if trunk is not None and f is not None:
                    with torch.no_grad():
                        real_feats = trunk(real)
                    real_out = self._d[i](features=real_feats)
                    fake_out = self._d[i](features={k: v.detach() for k, v in f.items()})
                else:
                    real_out, fake_out = self._d[i](images=real), self._d[i](images=fake.detach())
                d_loss = discriminator_head_loss(real_out, fake_out, o.gan)
                d_total = d_loss if d_total is None else d_total + d_loss
            assert d_total is not None
            self.opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            self.opt_d.step()
            # 2. generator update against the updated discriminator (its parameters fixed meanwhile)
            with self._fixed_discriminators():
                adv: Tensor = sum(  # type: ignore[assignment]
                    generator_head_loss(self.discriminators[i](**self._inputs(i, fake, f)), o.gan)
                    for (i, _, _), fake, f in zip(directions, fakes, feats, strict=True)
                )
            g_total = adv
            values: dict[str, Tensor] = {"d_loss": d_total.detach(), "g_adv": adv.detach()}
            if o.identity:
                ident = _l1(g[0](y), y)
                if o.cycle:
                    ident = ident + _l1(g[1](x), x)
                g_total = g_total + o.identity * ident
                values["identity"] = ident.detach()
            if o.cycle:
                cyc = _l1(g[1](fakes[0]), x) + _l1(g[0](fakes[1]), y)
                g_total = g_total + o.cycle_weight * cyc
                values["cycle"] = cyc.detach()
            if self.objective is not None:
                out = self.objective(fakes[0], x, validate=False)
                g_total = g_total + out.total
                values["objective"] = out.total.detach()
            self.opt_g.zero_grad(set_to_none=True)
            g_total.backward()
            self.opt_g.step()
        finally:
            for trunk in self.trunks:
                if trunk is not None:
                    trunk.forget()
        values["loss"] = g_total.detach()
        return values

    def log(self, step: int, means: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        """The history row: the window's means, averaged over the processes under DDP."""
        keys = list(means)
        numbers = [float(means[k]) for k in keys]
        if self.world > 1 and keys:
            stacked = torch.tensor(numbers, dtype=torch.float64, device=self.device)
            dist.all_reduce(stacked)
            numbers = (stacked / self.world).tolist()
        return {"step": step, **dict(zip(keys, numbers, strict=True))}

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
        return {"generator": self.g_xy.spec, "options": self.opts.record(), "world_size": self.world}

    def close(self) -> None:
        """Leave the process group if this run created it (``torchrun``)."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False


def train_translation(
    source: str | Path | Sequence[str | Path] | Tensor,
    target: str | Path | Sequence[str | Path] | Tensor,
    folder: str | Path | None = None,
    options: TranslationOptions | None = None,
    *,
    objective: Objective | None = None,
    device: torch.device | str | None = None,
    resume: bool = False,
    checkpoint_every: int = 500,
    log_every: int = 50,
    progress: bool = False,
    callback: Any = None,
    **kwargs: Any,
) -> tuple[TranslationRun, LoopResult]:
    """Train a source → target translator from two unpaired image sets (folders, file lists or tensors
    N×3×H×W in [0, 1]).

    ``options`` (or keyword overrides of :class:`TranslationOptions`) set the method; ``folder`` gets
    ``checkpoint.pt`` (resume with ``resume=True``), the history JSON/CSV, curves and ``run.json``.
    ``device``: default the CPU (under ``torchrun``: the local rank's GPU when there are GPUs). Started by
    ``torchrun --nproc-per-node W``, training is data-parallel (see :class:`TranslationRun`).
    Returns the Run (its ``g_xy`` is the trained generator) and the loop's result."""
    opts = dataclasses.replace(options or TranslationOptions(), **kwargs)
    if objective is None and opts.objective:
        from ..objective.config import build_objective

        objective = build_objective(opts.objective)
    run = TranslationRun(opts, UnpairedCrops(source, target, opts.size), device=device, objective=objective)
    try:
        result = drive(run, opts.steps, folder, description="translate", device=run.device, resume=resume,
                       checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                       callback=callback)  # fmt: skip
    finally:
        run.close()
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
