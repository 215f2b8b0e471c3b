"""Training feed-forward texture and stylisation generators (Texture Networks; Improved Texture Networks).

Texture (thesis eq. 2.7 and 3.10): draw a batch of noise z₁…z_B, generate x_i = g(z_i) and minimise

    E(g) = (1/B) Σ_i [ L(x_i, x₀) − λ · ln min_{j≠i} ‖x_i − x_j‖ ]

where L is the texture objective of :func:`featstat.texture.synthesis.texture_objective` (Gram loss on the
preset's
layers by default) and the second term is :class:`featstat.losses.DiversityLoss` with weight λ
(``diversity``). The thesis writes E = (1/B) Σ [L/T − λ ln ρ] with λ = 1 and a temperature T; multiplying by T
gives ours with ``diversity = T`` (it used T ∈ {5, 10, 20} for textures with normalised gradients and
T = 10000 for stylisation). ``diversity = 0`` is the original Texture Networks objective. The distance is
between images (eq. 3.10) or, with ``diversity_layer``, between their features at that layer.

Stylisation (thesis §2.3.3, eq. 3.5): content images y come from a small pool (the thesis found ~16 enough)
as random crops; g(y, z) minimises ``style_weight · L_style(g, x₀) + content_weight · L_content(g, y)`` (plus
the diversity term) — :func:`featstat.texture.synthesis.style_objective`.

Optimiser and schedule (thesis §2.4.1): Adam, learning rate 0.1, multiplied by 0.7 at iteration 1000 and then
every 200 iterations (as the reference code: after iteration t ≥ 1000 with t % 200 == 0), batch size 16, 2000
iterations; all are arguments (:func:`learning_rate`). The reference code's ``-normalize_gradients`` (thesis
§3.5.1.2: "normalize gradient of the texture loss as it passes back through VGG-19") is
``normalize_gradients=True``: the gradient reaching each feature layer from the loss terms is divided by its
L1 norm (over the batch). The trainer is a Run of the one loop (:func:`featstat.engine.loop.run_loop`, which
owns progress, history, callbacks, Ctrl-C / SIGTERM, checkpoints and the resume check): checkpoints hold the
generator, Adam, the step, every random-number state and the history, so :meth:`GeneratorTrainer.run` with
``resume=True`` continues bit for bit (same device). The first Ctrl-C stops after the current step with a
checkpoint. For sampling, BatchNorm uses running statistics
recomputed from fresh batches once training ends (the running averages kept while training lag behind the
weights: with them the samples' loss was ~5× the training loss in our runs); they are saved in the final
checkpoint as ``eval_buffers``, and :func:`load_generator` applies them.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import FileLoadError, check_image, check_positive, make_generator
from ..engine.loop import CHECKPOINT_FORMAT, Outputs, run_loop
from ..engine.runs import DivergenceWatch, TrainingDiverged, load_checkpoint
from ..losses import DiversityLoss
from ..nets.texture import ARCHITECTURES, build_generator
from ..objective.core import Objective, Term
from .synthesis import (
    Preset,
    _preset_style_objective,
    _style_layers,
    build_extractor,
    parse_statistic,
    resolve_preset,
    texture_objective,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "TRAINING_DEFAULTS",
    "DivergenceWatch",
    "GeneratorTrainer",
    "GeneratorTraining",
    "GradientNormalized",
    "TrainResult",
    "TrainingDiverged",
    "learning_rate",
    "load_generator",
    "train_style",
    "train_texture",
]

#: the ``kind`` of a generator-training run (its checkpoints' header)
_CHECKPOINT_KIND = "texture-generator"
PathLike = str | os.PathLike[str]


def learning_rate(
    step: int, lr: float = 0.1, decay: float = 0.7, start: int = 1000, every: int = 200
) -> float:
    """Learning rate for (0-based) ``step``: ``lr`` until ``start`` iterations are done, then × ``decay`` at
    iteration ``start`` and every ``every`` iterations after it (thesis §2.4.1; reference code)."""
    if step < start:
        return lr
    return lr * decay ** ((step - start) // every + 1)


class _NormalizeGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad / (grad.abs().sum() + 1e-8)


class GradientNormalized(nn.Module):
    """Wraps an extractor so that the gradient reaching each returned layer is divided by its L1 norm
    (the Texture Networks reference code's ``-normalize_gradients``). Same interface as the extractor."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self.layers = list(extractor.layers)
        self.min_size = getattr(extractor, "min_size", 1)

    @property
    def cache_key(self) -> tuple:
        return ("normalized_gradients", getattr(self.extractor, "cache_key", id(self.extractor)))

    def with_layers(self, layers: Sequence[str]) -> GradientNormalized:
        return GradientNormalized(self.extractor.with_layers(layers))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {k: _NormalizeGradient.apply(v) for k, v in self.extractor(images).items()}


@dataclass
class TrainResult:
    """What a training run returns.

    ``generator``: ready to sample — a copy in eval mode with recalibrated BatchNorm statistics
    (:meth:`GeneratorTrainer.calibrated_generator`); ``history``: per step "total", each term, "lr",
    "seconds"; ``steps`` done; ``seconds`` of this call; ``settings``; ``terms``: mean of the last 10 steps.
    """

    generator: nn.Module
    history: dict[str, list[float]]
    steps: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    terms: dict[str, float] = field(default_factory=dict)


def _crop_pool(images: Sequence[Tensor], size: int) -> list[Tensor]:
    """Content images (1×3×h×w) resized so the shorter side is ``size``."""
    pool = []
    for i, img in enumerate(images):
        img = check_image(f"contents[{i}]", img)
        h, w = img.shape[-2:]
        f = size / min(h, w)
        hw = (max(size, round(h * f)), max(size, round(w * f)))
        if hw != (h, w):
            img = F.interpolate(img, size=hw, mode="bilinear", align_corners=False, antialias=True).clamp(
                0, 1
            )
        pool.append(img)
    return pool


class GeneratorTrainer:
    """Adam on a generator against an objective; one batch of fresh noise (and content crops) per step.

    A :class:`~featstat.engine.loop.Run` (``kind`` "texture-generator"): :meth:`run` drives it with
    :func:`~featstat.engine.loop.run_loop`.

    Args:
        generator: a net from :mod:`featstat.nets.texture` (``noise()``, ``forward(noise[, content])``).
        objective: texture or style objective (terms against "style" and, for stylisation, "content").
        style: the texture / style example, 1×3×h×w in [0, 1] (its statistics are computed once).
        contents: for stylisation nets, the pool of content images (1×3×h×w each, any sizes).
        size: side of the generated training images (and content crops).
        batch_size: images per step (thesis: 16).
        lr, lr_decay, decay_start, decay_every: :func:`learning_rate` (thesis: 0.1, 0.7, 1000, 200).
        noise_scale: multiplies the training noise.
        seed: seeds the noise and the crops (the generator's initialisation has its own seed).
        watch: stop with :class:`TrainingDiverged` when the run goes dead (:class:`DivergenceWatch`; True: the
            default thresholds, False: never).
    """

    kind = _CHECKPOINT_KIND

    def __init__(
        self,
        generator: nn.Module,
        objective: Objective,
        style: Tensor,
        contents: Sequence[Tensor] | None = None,
        *,
        size: int = 256,
        batch_size: int = 16,
        lr: float = 0.1,
        lr_decay: float = 0.7,
        decay_start: int = 1000,
        decay_every: int = 200,
        noise_scale: float = 1.0,
        seed: int = 0,
        calibration_batches: int = 8,
        settings: Mapping[str, Any] | None = None,
        watch: DivergenceWatch | bool | None = True,
    ) -> None:
        if getattr(generator, "arch", None) not in ARCHITECTURES:
            raise ValueError(
                f"generator must be a featstat.nets.texture generator ({list(ARCHITECTURES)}), got "
                f"{type(generator).__name__}"
            )
        if not isinstance(objective, Objective):
            raise ValueError(f"objective must be a featstat Objective, got {type(objective).__name__}")
        self.generator, self.objective = generator, objective
        self.style = check_image("style", style)
        takes_content = bool(getattr(generator, "takes_content", False))
        if takes_content and not contents:
            raise ValueError("contents must hold at least one content image to train a stylisation generator")
        if not takes_content and contents:
            raise ValueError(
                "contents were given but the generator is a texture generator (takes no content)"
            )
        if not isinstance(size, int) or size < 1 or size % generator.size_multiple:
            raise ValueError(
                f"size must be a positive multiple of {generator.size_multiple} for {generator.arch}, "
                f"got {size!r}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        needs_pair = any(isinstance(t.loss, DiversityLoss) for t in objective.terms)
        if needs_pair and batch_size < 2:
            raise ValueError("the diversity term compares samples within a batch: batch_size must be >= 2")
        self.size, self.batch_size = size, batch_size
        self.lr = check_positive("lr", lr)
        self.lr_decay = check_positive("lr_decay", lr_decay)
        for name, v in (("decay_start", decay_start), ("decay_every", decay_every)):
            if not isinstance(v, int) or v < (0 if name == "decay_start" else 1):
                raise ValueError(f"{name} must be a non-negative int (decay_every >= 1), got {v!r}")
        self.decay_start, self.decay_every = decay_start, decay_every
        self.noise_scale = check_positive("noise_scale", noise_scale, allow_zero=True)
        self.seed = seed
        device = next(generator.parameters()).device
        self.device = device
        self.style = self.style.to(device)
        self.pool = _crop_pool(contents, size) if contents else []
        self.pool = [p.to(device) for p in self.pool]
        if not isinstance(calibration_batches, int) or calibration_batches < 0:
            raise ValueError(f"calibration_batches must be an int >= 0, got {calibration_batches!r}")
        self.calibration_batches = calibration_batches
        self.eval_buffers: dict[str, Tensor] | None = None
        self.watch = DivergenceWatch() if watch is True else (watch or None)
        self._last_images: Tensor | None = None
        self.noise_generator = make_generator(seed)
        self.data_generator = make_generator(seed + 1)
        self.optimizer = torch.optim.Adam(generator.parameters(), lr=self.lr)
        self.step_count = 0
        self.history: dict[str, list[float]] = {"total": [], "lr": [], "seconds": []}
        self._last: dict[str, float] = {}
        self._ready: nn.Module | None = None
        self._seconds_before, self._t0 = 0.0, time.perf_counter()
        self.settings = {
            "arch": generator.arch,
            "generator": generator.config(),
            "size": size,
            "batch_size": batch_size,
            "lr": self.lr,
            "lr_decay": self.lr_decay,
            "decay_start": decay_start,
            "decay_every": decay_every,
            "noise_scale": self.noise_scale,
            "seed": seed,
            "contents": len(self.pool),
            "terms": [
                {
                    "name": t.name,
                    "weight": t.weight,
                    "layers": None if t.layers is None else list(t.layers),
                    "loss": type(t.loss).__name__,
                }
                for t in objective.terms
            ],
            **dict(settings or {}),
        }

    # -- one step -----------------------------------------------------------------------------------------

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate used at ``step`` (default: the next step)."""
        s = self.step_count if step is None else step
        return learning_rate(s, self.lr, self.lr_decay, self.decay_start, self.decay_every)

    def _content_batch(self, generator: torch.Generator | None = None) -> Tensor:
        g, n, s = generator or self.data_generator, self.batch_size, self.size
        crops = []
        for _ in range(n):
            img = self.pool[int(torch.randint(len(self.pool), (1,), generator=g))]
            h, w = img.shape[-2:]
            top = int(torch.randint(h - s + 1, (1,), generator=g))
            left = int(torch.randint(w - s + 1, (1,), generator=g))
            crops.append(img[..., top : top + s, left : left + s])
        return torch.cat(crops)

    def step(self, step: int | None = None) -> dict[str, float]:
        """One Adam step on a fresh batch; returns "total", the unweighted terms and "lr" (``step``, the
        loop's count of steps done, is the trainer's own :attr:`step_count`)."""
        net = self.generator
        net.train()
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        noise = net.noise(
            self.batch_size, self.size, self.size, seed=self.noise_generator, scale=self.noise_scale
        )
        targets: dict[str, Tensor] = {"style": self.style}
        if net.takes_content:
            content = self._content_batch()
            targets["content"] = content
            images = net(noise, content)
        else:
            images = net(noise)
        # a generator's raw output (output="none", as the thesis' texture networks) may leave [0, 1], so the
        # per-step value check is off here (as in synthesis and the restoration trainer); the style and
        # content images were checked when they were given
        out = self.objective(images, targets, validate=False)
        self._last_images = images.detach()
        self.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        self.optimizer.step()
        self.step_count += 1
        values = {"total": float(out.total.detach())}
        values.update({k: float(v.detach()) for k, v in out.terms.items()})
        self._last = {**values, "lr": lr}
        return self._last

    @torch.no_grad()
    def calibrated_generator(self) -> nn.Module:
        """A copy of the generator in eval mode whose BatchNorm running statistics are recomputed from
        ``calibration_batches`` fresh batches (a cumulative average over batches drawn from their own seeds).

        The running averages kept during training (momentum 0.1) lag behind the weights when the learning
        rate is high — sampling with them raised a Texture Network's Gram loss ~5× in our runs; recomputing
        them once the weights are final removes that gap. Nets without BatchNorm (StyleNet IN) are returned
        unchanged (copied, eval mode).
        """
        net = copy.deepcopy(self.generator)
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms and self.calibration_batches:
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average
            noise_g, data_g = make_generator(self.seed + 2), make_generator(self.seed + 3)
            net.train()
            for _ in range(self.calibration_batches):
                noise = net.noise(
                    self.batch_size, self.size, self.size, seed=noise_g, scale=self.noise_scale
                )
                if net.takes_content:
                    net(noise, self._content_batch(data_g))
                else:
                    net(noise)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
        return net.eval()

    # -- the Run protocol (checkpoints) -------------------------------------------------------------------

    def fingerprint(self) -> Mapping[str, Any]:
        """The resume-relevant settings: all of :attr:`settings` but the step count."""
        return {k: v for k, v in self.settings.items() if k != "steps"}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs besides what the loop saves (step, global random states,
        history); ``torch.load(weights_only=True)``-readable. :func:`load_generator` reads the generator
        from it."""
        return {
            "arch": self.generator.arch,
            "config": self.generator.config(),
            "generator": self.generator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "noise_generator": self.noise_generator.get_state(),
            "data_generator": self.data_generator.get_state(),
            "seconds": self._seconds_before + time.perf_counter() - self._t0,
            "watch_best": self.watch.best if self.watch is not None else math.inf,
            "settings": self.settings,
            "takes_content": self.generator.takes_content,
            "size": self.size,
            "eval_buffers": self.eval_buffers,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the loop has checked that the settings match)."""
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.noise_generator.set_state(state["noise_generator"])
        self.data_generator.set_state(state["data_generator"])
        self._seconds_before, self._t0 = float(state["seconds"]), time.perf_counter()
        if self.watch is not None and math.isfinite(float(state["watch_best"])):
            self.watch.best = float(state["watch_best"])

    def log(self, step: int, means: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        """The history row of ``step``: "total", each term, "lr", "seconds" (since the run began)."""
        elapsed = self._seconds_before + time.perf_counter() - self._t0
        return {"step": step, "loss": self._last["total"], **self._last, "seconds": elapsed}

    def check(self, step: int, row: Mapping[str, Any]) -> None:
        """Stop a run that went dead (non-finite loss, flat output, lasting spike) before it is saved."""
        total, lr = float(row["total"]), float(row["lr"])
        if not math.isfinite(total):
            raise FloatingPointError(
                f"the loss became {total} at step {step}; lower lr (now {lr:g}) or the diversity weight"
            )
        if self.watch is not None and self._last_images is not None:
            self.watch.update(step, total, self._last_images, lr)

    def finish(self, step: int) -> dict[str, Any]:
        """After the last step: the sampling copy with recalibrated BatchNorm statistics (saved in the
        final checkpoint as ``eval_buffers``)."""
        self._ready = self.calibrated_generator()
        self.eval_buffers = {n: b.detach().clone() for n, b in self._ready.named_buffers()}
        return {}

    # -- the loop -----------------------------------------------------------------------------------------

    def run(
        self,
        steps: int,
        *,
        checkpoint: PathLike | None = None,
        checkpoint_every: int = 200,
        resume: bool = False,
        progress: bool = False,
        callback: Callable[[int, Mapping[str, float]], None] | None = None,
        outputs: Outputs | None = None,
    ) -> TrainResult:
        """Train until ``steps`` steps are done in all (a resumed run continues from its step).

        ``checkpoint``: file written atomically every ``checkpoint_every`` steps (0: only at the end), at the
        end and on Ctrl-C. ``resume``: load it first if it exists. ``callback(step, values)`` after every
        step (values: "total", the terms, "lr", "seconds"). ``outputs``: run-folder files the loop writes
        (:class:`featstat.engine.loop.Outputs`). With ``steps=0`` no step runs and nothing is saved.
        """
        t0 = time.perf_counter()
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        if resume and checkpoint is None:
            raise ValueError("resume needs checkpoint=PATH")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an int >= 0, got {checkpoint_every!r}")
        self.settings["steps"] = steps
        self._t0 = time.perf_counter()

        def on_step(step: int, values: Mapping[str, float]) -> None:
            if callback is not None:
                callback(step, {k: v for k, v in values.items() if k not in ("step", "loss")})

        if steps > 0:
            result = run_loop(
                self,
                steps,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                resume=resume,
                callback=on_step,
                outputs=outputs,
                progress=progress,
                description="train",
                device=self.device,
            )
            self.history = {"total": [], "lr": [], "seconds": []}
            for row in result.history:
                for k, v in row.items():
                    if k not in ("step", "loss"):
                        self.history.setdefault(k, []).append(v)
        else:
            self.finish(0)
        assert self._ready is not None
        last = {k: v[-10:] for k, v in self.history.items() if k not in ("lr", "seconds") and v}
        return TrainResult(
            generator=self._ready,
            history=self.history,
            steps=self.step_count,
            seconds=time.perf_counter() - t0,
            settings=dict(self.settings),
            terms={k: sum(v) / len(v) for k, v in last.items()},
        )


# -- conveniences --------------------------------------------------------------------------------------------


def _extractor(
    preset: str | Preset, extractor: nn.Module | None, layers: Sequence[str], device: torch.device, norm: bool
) -> nn.Module:
    e = extractor if extractor is not None else build_extractor(preset, layers, device=device)
    return GradientNormalized(e) if norm else e


def _diversity_term(weight: float, extractor: nn.Module, layer: str | None) -> Term:
    if layer is None:
        return Term("diversity", DiversityLoss(), weight, target=None)
    return Term("diversity", DiversityLoss(), weight, extractor, [layer], target=None)


class GeneratorTraining(TypedDict, total=False):
    """The keywords :func:`train_texture` and :func:`train_style` share (one meaning, one default:
    :data:`TRAINING_DEFAULTS`).

    ``size``, ``batch_size``, ``lr_decay``, ``decay_start``, ``decay_every``: thesis defaults 256, 16, 0.7,
    1000, 200 (:func:`learning_rate`). ``layer_weights`` / ``options``: the objective's, as in
    :func:`featstat.texture.synthesis.synthesize_texture`. ``diversity``: λ of the diversity term (0: Texture
    Networks' objective); ``diversity_layer``: compare samples in this feature layer instead of pixels (must
    be among the extractor's layers). ``normalize_gradients``: divide the gradient at each feature layer by
    its L1 norm (reference code). ``noise_scale``: multiplies the training noise. ``seed``, ``checkpoint``,
    ``checkpoint_every``, ``resume``, ``progress``, ``callback``: see :class:`GeneratorTrainer` and
    :meth:`GeneratorTrainer.run`.
    """

    size: int
    batch_size: int
    layer_weights: str | Mapping[str, float] | None
    options: Mapping[str, Mapping[str, Any]] | None
    diversity: float
    diversity_layer: str | None
    normalize_gradients: bool
    lr_decay: float
    decay_start: int
    decay_every: int
    noise_scale: float
    seed: int
    checkpoint: PathLike | None
    checkpoint_every: int
    resume: bool
    progress: bool
    callback: Callable[[int, Mapping[str, float]], None] | None


#: The defaults of :class:`GeneratorTraining` (thesis §2.4.1 for the schedule).
TRAINING_DEFAULTS: GeneratorTraining = {
    "size": 256,
    "batch_size": 16,
    "layer_weights": None,
    "options": None,
    "diversity": 0.0,
    "diversity_layer": None,
    "normalize_gradients": False,
    "lr_decay": 0.7,
    "decay_start": 1000,
    "decay_every": 200,
    "noise_scale": 1.0,
    "seed": 0,
    "checkpoint": None,
    "checkpoint_every": 200,
    "resume": False,
    "progress": False,
    "callback": None,
}


def _training(caller: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (the caller's shared keywords) over :data:`TRAINING_DEFAULTS`; an unknown keyword is the
    ``TypeError`` Python raises for a keyword a function does not take."""
    unknown = sorted(set(given) - set(TRAINING_DEFAULTS))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    return {**TRAINING_DEFAULTS, **given}


def _generator(generator: nn.Module | str, seed: int, device: torch.device, stylises: bool) -> nn.Module:
    """The generator to train: ``generator`` itself, or a net built by name (with ``seed``) on ``device``."""
    if isinstance(generator, str):
        generator = build_generator(generator, seed=seed).to(device)
    if getattr(generator, "takes_content", False) != stylises:
        raise ValueError(
            "train_style needs a stylisation generator (StyleNet or TextureNetV1(content=True))"
            if stylises
            else "train_texture needs a texture generator; use train_style for stylisation nets"
        )
    return generator


def _train(
    generator: nn.Module,
    objective: Objective,
    extractor: nn.Module,
    style: Tensor,
    contents: Sequence[Tensor] | None,
    *,
    steps: int,
    lr: float,
    statistic: str | Mapping[str, float],
    settings: tuple[Mapping[str, Any], Mapping[str, Any]],
    o: Mapping[str, Any],
) -> TrainResult:
    """What :func:`train_texture` and :func:`train_style` share once their objective is built: the
    diversity term, the run's settings (``settings``: the caller's keys before and after the shared ones),
    the trainer and its run."""
    check_positive("diversity", o["diversity"], allow_zero=True)
    if o["diversity"] > 0:
        term = _diversity_term(o["diversity"], extractor, o["diversity_layer"])
        objective = Objective([*objective.terms, term])
    head, tail = settings
    shared = ("diversity", "diversity_layer", "normalize_gradients")
    schedule = ("size", "batch_size", "lr_decay", "decay_start", "decay_every", "noise_scale", "seed")
    device = next(generator.parameters()).device
    trainer = GeneratorTrainer(
        generator,
        objective,
        style.to(device),
        contents,
        lr=lr,
        settings={**head, "statistic": parse_statistic(statistic), **{k: o[k] for k in shared}, **tail},
        **{k: o[k] for k in schedule},
    )
    run = ("checkpoint", "checkpoint_every", "resume", "progress", "callback")
    return trainer.run(steps, **{k: o[k] for k in run})


def train_texture(
    generator: nn.Module | str,
    example: Tensor,
    *,
    steps: int = 2000,
    preset: str | Preset = "auto",
    extractor: nn.Module | None = None,
    layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    lr: float = 0.1,
    **training: Unpack[GeneratorTraining],
) -> TrainResult:
    """Train a texture generator on one example (Texture Networks; with ``diversity`` > 0 Improved Texture
    Networks' Julesz generator, thesis eq. 3.10).

    Args:
        generator: a texture net (:class:`~featstat.nets.texture.TextureNetV1` / ``TextureNetV2``) or an
            architecture name ("texture_v1", "texture_v2", built with defaults and ``seed``) — on the device
            to train on.
        example: 1×3×h×w in [0, 1].
        steps, lr: thesis defaults 2000 and 0.1.
        preset / extractor / layers / statistic: the texture objective, as in
            :func:`featstat.texture.synthesis.synthesize_texture`.
        training: the keywords shared with :func:`train_style` (:class:`GeneratorTraining`: ``size``,
            ``batch_size``, ``layer_weights``, ``options``, ``diversity``, ``diversity_layer``,
            ``normalize_gradients``, ``lr_decay``, ``decay_start``, ``decay_every``, ``noise_scale``,
            ``seed``, ``checkpoint``, ``checkpoint_every``, ``resume``, ``progress``, ``callback``; defaults
            :data:`TRAINING_DEFAULTS`).
    """
    o = _training("train_texture", training)
    example = check_image("example", example)
    generator = _generator(generator, o["seed"], example.device, stylises=False)
    device = next(generator.parameters()).device
    p = resolve_preset(preset)
    if layers is not None:
        names = list(layers)
    else:
        names = list(extractor.layers) if extractor is not None else list(p.texture_layers)
    diversity_layer = o["diversity_layer"]
    need = names + ([diversity_layer] if diversity_layer and diversity_layer not in names else [])
    ext = _extractor(p, extractor, need, device, o["normalize_gradients"])
    objective = texture_objective(
        ext, names, statistic, layer_weights=o["layer_weights"], options=o["options"]
    )
    head = {"mode": "texture", "preset": p.name if extractor is None else "custom", "layers": names}
    return _train(generator, objective, ext, example, None, steps=steps, lr=lr, statistic=statistic,
                  settings=(head, {"example": list(example.shape)}), o=o)  # fmt: skip


def train_style(
    generator: nn.Module | str,
    style: Tensor,
    contents: Sequence[Tensor],
    *,
    steps: int = 2000,
    preset: str | Preset = "auto",
    extractor: nn.Module | None = None,
    style_layers: Sequence[str] | None = None,
    content_layers: Sequence[str] | None = None,
    statistic: str | Mapping[str, float] = "gram",
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float = 0.0,
    lr: float = 0.001,
    **training: Unpack[GeneratorTraining],
) -> TrainResult:
    """Train a stylisation generator for one style on a pool of content images (thesis §2.3.3, §3.4).

    Args:
        generator: :class:`~featstat.nets.texture.StyleNet` (IN or BN), ``TextureNetV1(content=True)``, or an
            architecture name ("stylenet").
        style: 1×3×h×w in [0, 1]; contents: a list of 1×3×h×w images (random ``size``² crops are drawn).
        style_weight, content_weight: default the preset's.
        lr: 0.001 (Johnson et al.; the thesis' 0.1 is for texture generators and saturates StyleNet into one
            flat colour after one step).
        training: the keywords shared with :func:`train_texture` (:class:`GeneratorTraining`).
        Other arguments as :func:`train_texture` and :func:`featstat.texture.synthesis.transfer_style`.
    """
    o = _training("train_style", training)
    style = check_image("style", style)
    generator = _generator(generator, o["seed"], style.device, stylises=True)
    if not isinstance(contents, Sequence) or isinstance(contents, Tensor) or not contents:
        raise ValueError("contents must be a non-empty list of 1×3×h×w content images")
    device = next(generator.parameters()).device
    p = resolve_preset(preset)
    s_layers, c_layers = _style_layers(p, extractor, style_layers, content_layers)
    diversity_layer = o["diversity_layer"]
    names = list(dict.fromkeys(s_layers + c_layers + ([diversity_layer] if diversity_layer else [])))
    ext = _extractor(p, extractor, names, device, o["normalize_gradients"])
    objective = _preset_style_objective(
        p,
        ext,
        s_layers,
        c_layers,
        statistic,
        style_weight,
        content_weight,
        tv_weight=tv_weight,
        layer_weights=o["layer_weights"],
        options=o["options"],
    )
    head = {"mode": "style", "preset": p.name if extractor is None else "custom", "style_layers": s_layers,
            "content_layers": c_layers}  # fmt: skip
    return _train(generator, objective, ext, style, [c.to(device) for c in contents], steps=steps, lr=lr,
                  statistic=statistic, settings=(head, {"style": list(style.shape)}), o=o)  # fmt: skip


def load_generator(checkpoint: PathLike, device: torch.device | str | None = None) -> nn.Module:
    """The generator saved in a training checkpoint (architecture, configuration and weights), in eval mode.

    Raises ``ValueError`` for a missing file or a checkpoint of another kind.
    """
    header = load_checkpoint(checkpoint, map_location=device or "cpu")
    if header.get("format") != CHECKPOINT_FORMAT or header.get("kind") != _CHECKPOINT_KIND:
        raise FileLoadError(
            f"checkpoint {str(checkpoint)!r} is not a generator checkpoint (written by `featstat train "
            f"texture` or `featstat train style` with featstat >= 0.2); got kind {header.get('kind')!r}"
        )
    state = header["state"]
    net = build_generator(state["arch"], **state["config"])
    net.load_state_dict(state["generator"])
    if state.get("eval_buffers"):  # BatchNorm statistics recomputed at the end of training
        with torch.no_grad():
            for name, buf in net.named_buffers():
                if name in state["eval_buffers"]:
                    buf.copy_(state["eval_buffers"][name])
    return net.to(device or "cpu").eval()
