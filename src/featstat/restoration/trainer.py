"""Supervised training of restoration networks: Adam, AMP, clipping, checkpoints, exact resume, validation,
logs and curves; unchanged under ``torchrun`` (DistributedDataParallel).

    trainer = Trainer(model, objective, train_data, "runs/cx-sr", options=TrainOptions(steps=2000),
                      val_data=ValidationSet("set5/", "sr4"))
    summary = trainer.fit()               # or fit(resume=True) to continue from runs/cx-sr/checkpoint.pt

What a run does, step by step:

- **Objective**: ``objective(model(input), target).total`` — a :class:`featstat.Objective` (one feature pass
  per backbone). A ``pretrain_objective`` replaces it for the first ``pretrain_steps`` steps (the CX paper's
  L2 warm-up, TSRN's MSE pre-training); Adam's moments are reset when the main objective starts, as after
  the papers' separate pre-training runs. With a ``discriminator`` and :class:`AdversarialOptions`, the
  generator also minimises ``weight · generator_adversarial_loss(D(G(s)))`` from ``start_step`` on, and the
  discriminator takes one Adam step per generator step on :func:`discriminator_loss` (real: the targets).
- **Optimiser**: Adam (β = 0.9, 0.999, ε = 1e-8, as the papers), optional step decay of the learning rate
  at ``lr_milestones``; gradient clipping by global norm (``grad_clip``, 0 = off).
- **Precision**: ``precision="auto"`` is :func:`featstat.engine.precision.choose`, the one policy of every
  engine: bfloat16 autocast on CUDA GPUs that support it (float16 with a gradient scaler otherwise), float32
  on CPUs without native bfloat16, and on CPUs with native bfloat16 the measured choice: before the first
  step the trainer times a few training steps (on a throw-away copy of the model, the optimiser and the first
  batch, in fp32 and bf16) and keeps bf16 only when it is faster (cached per machine, network and batch
  shape); "fp32", "bf16", "fp16" force a mode. A resumed run keeps the precision its checkpoint recorded.
  Autocast covers the network, the discriminator and the objective's loss network; every loss computes its
  statistic in float32 on the (possibly half) features and returns float32 (the one dtype rule of
  :mod:`featstat.losses`).
- **Data**: :class:`~featstat.restoration.data.EpochSampler` shards each epoch's shuffled indices over the
  processes like ``DistributedSampler``; items are seeded by (seed, epoch, index). ``batch_size`` is per
  process: with W processes a step sees W·batch_size crops and DDP averages the gradients, which equals one
  process on the combined batch.
- **The run loop**: :meth:`Trainer.fit` drives a :class:`TrainingRun` with
  :func:`featstat.engine.loop.run_loop`, which owns progress, the history, Ctrl-C/SIGTERM, checkpoints, the
  resume check, the divergence hook and ``train_log.csv`` / ``curves_train.png`` / ``run.json``.
- **Checkpoints** (rank 0, atomic, ``torch.load(weights_only=True)``-readable): ``checkpoint.pt`` every
  ``checkpoint_every`` steps, on Ctrl-C and at the end, with the loop's header (kind ``"restoration"``); its
  state holds the model, optimiser(s), scheduler, gradient scaler, discriminator, step, epoch and position in
  the epoch, the generators of sampling losses and the validation history, the header the global
  random-number states and the training history, so ``fit(resume=True)`` continues *exactly* (bit for bit
  on CPU). A resume with other settings (options but the step count and output cadences, network, recipe,
  world size) raises ``ValueError`` naming them. ``model.pt`` holds the final weights and the network spec for
  ``featstat restore``.
- **Validation** (rank 0) every ``validate_every`` steps and at the end on whole images (tiled inference):
  PSNR (RGB; for SR also on the luma with the scale cropped, as SR papers report), SSIM and an LPIPS-style
  distance from :mod:`featstat.metrics` (``lpips=``; "auto" uses LPIPS-AlexNet when its weights are on this
  machine), or the angular-error statistics for normals. The first validation also scores the network's
  input (bicubic upsampling for SR), the "input" row of the papers' tables.
- **Outputs** (``out_dir``, atomic writes): ``train_log.csv``, ``val_log.csv``, ``curves_train.png``,
  ``curves_val.png``, ``run.json`` (settings and final numbers), ``val/step_NNNNNN/*.png`` (a few
  validation results) and ``final/*.png``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from .._checks import check_choice, check_positive
from ..engine import loop as run_loop_module
from ..engine.distributed import distributed as _distributed
from ..engine.loop import Outputs, checkpoint_header, read_checkpoint, resumed_choice, run_loop, write_csv
from ..engine.precision import PRECISIONS, Choice, autocast, cpu_bf16_supported, time_steps
from ..engine.precision import choose as choose_precision
from ..engine.runs import (
    DivergenceWatch,
    load_checkpoint,
    plot_curves,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ..io import write_image
from ..losses.adversarial import GAN_KINDS, discriminator_loss, generator_adversarial_loss
from ..nets.restoration import network_from_spec, tiled_forward
from ..objective.core import Objective
from .data import EpochSampler, seed_worker
from .degrade import resize_bicubic

log = logging.getLogger("featstat")

__all__ = [
    "CHECKPOINT_FORMAT",
    "PRECISIONS",
    "AdversarialOptions",
    "TrainOptions",
    "Trainer",
    "TrainingRun",
    "load_model",
    "restore",
]

#: the format of ``model.pt`` (final weights and network spec; unchanged in 0.2). ``checkpoint.pt`` has the
#: run loop's header (:data:`featstat.engine.loop.CHECKPOINT_FORMAT`, kind ``"restoration"``).
CHECKPOINT_FORMAT = "featstat-restoration-1"


@dataclass
class TrainOptions:
    """Settings of a training run (all plain values, stored in checkpoints and ``run.json``).

    Attributes:
        steps: total optimiser steps (pre-training included).
        batch_size: crops per step *per process*.
        lr, betas, eps: Adam. lr_milestones, lr_gamma: multiply lr by gamma at these steps.
        grad_clip: max global gradient norm (0: no clipping).
        pretrain_steps: steps using the pre-training objective (when one is given).
        checkpoint_every, validate_every, log_every: in steps (0: only at the end).
        num_workers: DataLoader worker processes.
        precision: "auto", "fp32", "bf16" or "fp16" (see the module docstring).
        seed: seed of data order, crops and degradations, and of the global generators.
        tile, overlap: tiled inference during validation (input pixels).
        save_images: validation outputs written as PNG each round.
        plots: write the curve PNGs (at checkpoints, validations and the end; off for quick sweeps).
        progress: show a progress bar (rank 0).
        watch: stop with :class:`featstat.engine.runs.TrainingDiverged` when the run goes dead — a
        non-finite loss,
            flat outputs, or a loss spike that stays (:class:`featstat.engine.runs.DivergenceWatch`,
            checked at the
            log steps, so ``log_every = 0`` checks only at the end).
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    grad_clip: float = 0.0
    pretrain_steps: int = 0
    checkpoint_every: int = 500
    validate_every: int = 500
    log_every: int = 10
    num_workers: int = 0
    precision: str = "auto"
    seed: int = 0
    tile: int = 512
    overlap: int = 32
    save_images: int = 3
    plots: bool = True
    progress: bool = True
    watch: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in (
            "pretrain_steps",
            "checkpoint_every",
            "validate_every",
            "log_every",
            "num_workers",
            "save_images",
            "overlap",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if self.pretrain_steps >= self.steps and self.pretrain_steps > 0:
            raise ValueError(
                f"pretrain_steps ({self.pretrain_steps}) must be smaller than steps ({self.steps}); the main "
                f"objective would never run"
            )
        check_positive("lr", self.lr)
        check_positive("lr_gamma", self.lr_gamma)
        check_positive("grad_clip", self.grad_clip, allow_zero=True)
        check_positive("eps", self.eps)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)
        check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.tile, int) or self.tile <= 2 * self.overlap:
            raise ValueError(
                f"tile must be an integer larger than 2·overlap ({2 * self.overlap}), got {self.tile!r}"
            )


@dataclass
class AdversarialOptions:
    """The adversarial term: ``weight · generator loss`` (CX-SR: 1e-3), ``kind`` "nonsaturating" (SRGAN) or
    "lsgan"; the discriminator's Adam ``lr``; the step the term starts (None: after pre-training)."""

    weight: float = 1e-3
    kind: str = "nonsaturating"
    lr: float = 1e-4
    start_step: int | None = None

    def __post_init__(self) -> None:
        check_positive("weight", self.weight)
        check_choice("kind", self.kind, GAN_KINDS)
        check_positive("lr", self.lr)
        if self.start_step is not None and (not isinstance(self.start_step, int) or self.start_step < 0):
            raise ValueError(f"start_step must be None or an integer >= 0, got {self.start_step!r}")


# ------------------------------------------------------------------------------------------------ helpers


def _generators(module: nn.Module) -> dict[str, torch.Generator]:
    """torch.Generator attributes of ``module`` and its submodules (e.g. the sampling generator of a
    ContextualLoss with ``sample_size``), by dotted path; saved in checkpoints for exact resume."""
    found: dict[str, torch.Generator] = {}
    for path, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Generator):
                found[f"{path}.{attr}" if path else attr] = value
    return found


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _default_lpips(lpips: nn.Module | str | None) -> nn.Module | None:
    if lpips is None or isinstance(lpips, nn.Module):
        return lpips
    if lpips != "auto":
        raise ValueError(f"lpips must be 'auto', None or a metric module, got {lpips!r}")
    from ..features.weights import find_local, get_entry
    from ..metrics import LPIPS

    if find_local(get_entry("alexnet")) is None:
        warnings.warn(
            "LPIPS is not computed during validation: the AlexNet weights are not on this machine "
            "(featstat weights path alexnet); pass lpips=featstat.metrics.LPIPS(...) to choose a network",
            stacklevel=3,
        )
        return None
    return LPIPS("alex")


def restore(model: nn.Module, images: Tensor, *, tile: int = 512, overlap: int = 32) -> Tensor:
    """Run a restoration network on N×C×H×W images in [0, 1] (tiled when larger than ``tile``), in eval mode
    and without gradients; returns the output clamped to [0, 1]. Scale and size multiple are read from the
    network (``scale``, ``multiple`` attributes)."""
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = tiled_forward(
                net,
                images,
                tile=tile,
                overlap=overlap,
                scale=int(getattr(net, "scale", 1)),
                multiple=int(getattr(net, "multiple", 1)),
            )
    finally:
        net.train(was_training)
    return out.clamp(0, 1)


def load_model(
    checkpoint: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained network from ``checkpoint.pt`` or ``model.pt`` of a run: (model in eval mode,
    metadata dict with the recipe, task and degradation of the run)."""
    state = load_checkpoint(checkpoint, map_location=device)
    if state.get("format") == run_loop_module.CHECKPOINT_FORMAT and state.get("kind") == TrainingRun.kind:
        state = state["state"]  # a training checkpoint: the trainer's state is under the loop's header
    if state.get("format") != CHECKPOINT_FORMAT or "network" not in state:
        raise ValueError(
            f"{str(checkpoint)!r} is not a featstat restoration checkpoint (format {state.get('format')!r}); "
            f"pass the checkpoint.pt or model.pt a 'featstat train' run wrote"
        )
    model = network_from_spec(state["network"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), dict(state.get("metadata", {}))


# ------------------------------------------------------------------------------------------------ trainer


@dataclass
class _History:
    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Train ``model`` to minimise ``objective(model(input), target)`` on ``train_data``.

    Args:
        model: the network (its ``spec``, set by :func:`featstat.nets.restoration.build_network`, is saved so
            ``featstat restore`` can rebuild it).
        objective: the training objective (a :class:`featstat.Objective`).
        train_data: a dataset of ``{"input", "target"}`` items indexed by ``(epoch, index)`` pairs (e.g.
            :class:`~featstat.restoration.data.RestorationDataset`).
        out_dir: where checkpoints, logs, curves and images go.
        options: :class:`TrainOptions`.
        val_data: optional dataset of whole images ``{"input", "target", "name"}``
            (:class:`~featstat.restoration.data.ValidationSet`).
        pretrain_objective: objective of the first ``options.pretrain_steps`` steps.
        discriminator, adversarial: the GAN term (both or neither).
        metadata: plain data stored in checkpoints and ``run.json`` (recipe, task, ...).
        lpips: LPIPS-style metric module for validation, "auto" or None.
        task: "sr…" tasks also report PSNR on the luma with the border cropped; "normals" reports angular
            errors.
        device: default: CUDA (the local rank's GPU under DDP) when available, else CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        train_data: Dataset,
        out_dir: str | os.PathLike[str],
        *,
        options: TrainOptions | None = None,
        val_data: Dataset | None = None,
        pretrain_objective: Objective | None = None,
        discriminator: nn.Module | None = None,
        adversarial: AdversarialOptions | None = None,
        metadata: Mapping[str, Any] | None = None,
        lpips: nn.Module | str | None = "auto",
        task: str | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(objective, nn.Module):
            raise ValueError(f"objective must be a featstat Objective, got {type(objective).__name__}")
        if (discriminator is None) != (adversarial is None):
            raise ValueError("give both discriminator= and adversarial= for a GAN term, or neither")
        self.options = options or TrainOptions()
        if self.options.pretrain_steps and pretrain_objective is None:
            raise ValueError("options.pretrain_steps > 0 needs a pretrain_objective")
        self.rank, self.world, self.local_rank, self._owns_group = _distributed()
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)
        # unmeasured until fit() resolves it (a measurement needs the first batch; CPU-only, so the gradient
        # scaler, which only fp16 on CUDA uses, is right already)
        self.choice = choose_precision(self.options.precision, self.device, allow_fp16=True)
        self.precision = self.choice.precision
        self.channels_last = False
        self.out = Path(out_dir)
        self.model = model.to(self.device)
        self.objective = objective.to(self.device)
        self.pretrain_objective = (
            pretrain_objective.to(self.device) if pretrain_objective is not None else None
        )
        self.train_data, self.val_data = train_data, val_data
        self.metadata = dict(metadata or {})
        self.task = task
        self.adversarial = adversarial
        self.discriminator = discriminator.to(self.device) if discriminator is not None else None
        self.lpips = _default_lpips(lpips) if self.rank == 0 and val_data is not None else None
        if self.lpips is not None:
            self.lpips = self.lpips.to(self.device)
        per_epoch = len(train_data) // self.world  # type: ignore[arg-type]
        if per_epoch < self.options.batch_size:
            raise ValueError(
                f"an epoch has {len(train_data)} samples for {self.world} process(es), fewer than one batch "  # type: ignore[arg-type]
                f"of {self.options.batch_size} per process; raise samples_per_epoch or lower batch_size"
            )
        self.ddp_model: nn.Module = self.model
        self.ddp_disc: nn.Module | None = self.discriminator
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
            if self.discriminator is not None:
                self.ddp_disc = DistributedDataParallel(self.discriminator, device_ids=ids)
        o = self.options
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, list(o.lr_milestones), o.lr_gamma
        )
        self.d_optimizer = (
            torch.optim.Adam(self.discriminator.parameters(), lr=adversarial.lr, betas=o.betas, eps=o.eps)
            if self.discriminator is not None and adversarial is not None
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.history = _History()
        self._train_seconds = 0.0
        self._session_steps = 0
        self._session_seconds = 0.0
        self._last_log_step = 0
        self._phase = "main"
        # checks at log steps (the loss is on the host there anyway): patience in checks, ~the texture
        # trainer's 5 and 25 steps, at least 2 and 3 checks (a window mean is smoother than one step's loss)
        every = max(1, self.options.log_every)
        self.watch: DivergenceWatch | None = (
            DivergenceWatch(patience_flat=max(2, -(-5 // every)), patience_spike=max(3, -(-25 // every)))
            if self.options.watch
            else None
        )
        self._watch_key: tuple[str, bool] | None = None
        self._window_keys: set[tuple[str, bool]] = set()  # (phase, GAN term on) of the steps since the log
        self._spread: Tensor | None = None
        self._window_low: Tensor | None = None
        self._last_spread: float | None = None
        self._last_low: float | None = None

    # -- state ---------------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _loss_generators(self) -> dict[str, torch.Generator]:
        gens = {f"objective.{k}": g for k, g in _generators(self.objective).items()}
        if self.pretrain_objective is not None:
            gens.update({f"pretrain.{k}": g for k, g in _generators(self.pretrain_objective).items()})
        return gens

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpointed one: the options but the step count,
        the output cadences and display switches; the network spec, the metadata (recipe, task), the GAN
        term, the world size."""
        options = {k: v for k, v in asdict(self.options).items() if k not in _RESUMABLE}
        metadata = dict(self.metadata)
        if isinstance(metadata.get("recipe"), Mapping):  # its training section is the options (above)
            metadata["recipe"] = {k: v for k, v in metadata["recipe"].items() if k != "training"}
        return {
            "options": options,
            "network": getattr(self.model, "spec", None),
            "metadata": metadata,
            "adversarial": asdict(self.adversarial) if self.adversarial is not None else None,
            "world_size": self.world,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything of the trainer a run needs to continue exactly (plain containers of tensors and
        numbers); the run loop's checkpoint header adds the global random-number states and the training
        history."""
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loss_generators": {k: g.get_state() for k, g in self._loss_generators().items()},
            "val_history": self.history.val,
            "baseline": getattr(self, "baseline", None),
            "train_seconds": self._train_seconds,
            "last_log_step": self._last_log_step,
            "watch": self._watch_state(),
            "options": asdict(self.options),
            "metadata": self.metadata,
            "world_size": self.world,
        }
        spec = getattr(self.model, "spec", None)
        if spec is not None:
            state["network"] = spec
        if self.discriminator is not None and self.d_optimizer is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["d_optimizer"] = self.d_optimizer.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the ``state`` of a checkpoint; :meth:`fit` does this on resume)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a restoration training checkpoint (format {state.get('format')!r})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.discriminator is not None:
            if "discriminator" not in state:
                raise ValueError("the checkpoint has no discriminator but this run trains one (GAN term)")
            self.discriminator.load_state_dict(state["discriminator"])
            assert self.d_optimizer is not None
            self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        gens = self._loss_generators()
        for key, value in state.get("loss_generators", {}).items():
            if key in gens:
                gens[key].set_state(value)
        self.history.val = list(state.get("val_history", []))
        if state.get("baseline") is not None:
            self.baseline = dict(state["baseline"])
        self._train_seconds = float(state.get("train_seconds", 0.0))
        self._last_log_step = int(state.get("last_log_step", self.step))
        self._load_watch_state(state.get("watch"))

    def _watch_state(self) -> dict[str, Any] | None:
        if self.watch is None:
            return None
        return {
            "best": self.watch.best,
            "flat_steps": self.watch.flat_steps,
            "spike_steps": self.watch.spike_steps,
            "key": list(self._watch_key) if self._watch_key is not None else None,
            "window_keys": sorted([list(k) for k in self._window_keys]),
            "window_low": self._window_low,
        }

    def _load_watch_state(self, state: Mapping[str, Any] | None) -> None:
        if self.watch is None or state is None:
            return
        self.watch.best = float(state["best"])
        self.watch.flat_steps, self.watch.spike_steps = int(state["flat_steps"]), int(state["spike_steps"])
        self._watch_key = (str(state["key"][0]), bool(state["key"][1])) if state["key"] is not None else None
        self._window_keys = {(str(p), bool(g)) for p, g in state["window_keys"]}
        low = state["window_low"]
        self._window_low = None if low is None else low.to(self.device)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write a checkpoint with the run loop's header (rank 0 only; atomic) and return its path; the run
        loop saves one itself every ``checkpoint_every`` steps, on Ctrl-C and at the end."""
        p = Path(path) if path is not None else self.checkpoint_path
        if self.rank == 0:
            run = TrainingRun(self)
            save_checkpoint(
                p,
                checkpoint_header(
                    run, step=self.step, steps=self.options.steps, status="saved", history=self.history.train,
                    precision=self.choice,
                ),
            )  # fmt: skip
        return p

    # -- training ------------------------------------------------------------------------------------

    def _objective_now(self) -> Objective:
        if self.pretrain_objective is not None and self.step < self.options.pretrain_steps:
            return self.pretrain_objective
        return self.objective

    def _adversarial_on(self) -> bool:
        if self.adversarial is None:
            return False
        start = self.adversarial.start_step
        return self.step >= (self.options.pretrain_steps if start is None else start)

    def _train_step(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        inp = batch["input"].to(self.device, non_blocking=True)
        if self.channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        tgt = batch["target"].to(self.device, non_blocking=True)
        objective = self._objective_now()
        self._phase = "pretrain" if objective is self.pretrain_objective else "main"
        if self.pretrain_objective is not None and self.step == self.options.pretrain_steps > 0:
            # the main objective starts: fresh Adam moments, as the papers' separate pre-training runs have.
            # Moments estimated on the pre-training loss (L2: tiny gradients) would turn the first steps on a
            # loss with gradients orders of magnitude larger (Gram, CX) into huge updates.
            self.optimizer.state.clear()
        values: dict[str, Tensor] = {}
        gan = self._adversarial_on()
        with autocast(self.device, self.precision):
            pred = self.ddp_model(inp)
            # the loss network runs under the same autocast; every loss computes its statistic in float32
            # (featstat.losses.base.float32_compute) and returns float32
            result = objective(pred, tgt, validate=False)  # raw network output: any range
        loss = result.total.float()
        with autocast(self.device, self.precision):
            if gan:
                assert self.discriminator is not None and self.adversarial is not None
                self.discriminator.requires_grad_(False)
                adv = generator_adversarial_loss(self.discriminator(pred), self.adversarial.kind)
                self.discriminator.requires_grad_(True)
                loss = loss + self.adversarial.weight * adv
                values["adv_g"] = adv.detach()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.options.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            values["grad_norm"] = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.options.grad_clip
            )
        self.scaler.step(self.optimizer)
        if gan:
            assert self.ddp_disc is not None and self.d_optimizer is not None and self.adversarial is not None
            with autocast(self.device, self.precision):
                # one forward on [real; fake] (one DDP forward per backward; BN sees both halves)
                logits = self.ddp_disc(torch.cat([tgt, pred.detach().to(tgt.dtype)]))
                real, fake = logits.split([tgt.shape[0], pred.shape[0]])
                d_loss = discriminator_loss(real, fake, self.adversarial.kind)
            self.d_optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self.scaler.step(self.d_optimizer)
            values["d_loss"] = d_loss.detach()
        self.scaler.update()
        self.scheduler.step()
        values["loss"] = loss.detach()
        o = self.options
        self._window_keys.add((self._phase, gan))
        low = loss.detach()  # the window's lowest loss, the spike test's reference (kept on the device)
        self._window_low = low if self._window_low is None else torch.minimum(self._window_low, low)
        if self.watch is not None and (
            (o.log_every and (self.step + 1) % o.log_every == 0) or self.step + 1 == o.steps
        ):  # this step is logged: its output is checked (a reduction on the device, read with the log)
            self._spread = DivergenceWatch.spread(pred)
        for name, v in result.terms.items():
            values[name] = v.detach().float()
        return values

    def _log(self, step: int, means: Mapping[str, Tensor], seconds: float) -> dict[str, Any]:
        """The history row of the steps since the last one: their mean values (all-reduced over the
        processes, with the divergence watch's numbers in the same reduction: one host sync)."""
        keys = sorted(means)
        stacked = torch.stack([torch.as_tensor(means[k], device=self.device).float() for k in keys])
        watching = self._spread is not None and self._window_low is not None
        if watching:  # the watch's numbers travel with the means: no extra host sync
            assert self._spread is not None and self._window_low is not None
            extra = torch.stack([self._window_low.float(), self._spread.float()]).to(stacked.device)
            stacked = torch.cat([stacked, extra])
        self._spread = self._window_low = None
        if self.world > 1:
            dist.all_reduce(stacked)
            stacked /= self.world
        numbers = stacked.tolist()
        self._last_low, self._last_spread = (numbers[-2], numbers[-1]) if watching else (None, None)
        if watching:
            del numbers[-2:]
        row: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "lr": self.scheduler.get_last_lr()[0]}
        row.update({k: float(v) for k, v in zip(keys, numbers, strict=True)})
        count = self.step - self._last_log_step
        row["steps_per_s"] = count / seconds if seconds > 0 else float("nan")
        row["phase"] = self._phase
        self._last_log_step = self.step
        self._train_seconds += seconds
        if self.rank == 0:
            self.history.train.append(row)
        return row

    def _precision_choice(self, header: Mapping[str, Any] | None) -> Choice:
        """``options.precision`` resolved by the shared policy: the checkpoint's choice on resume; for "auto"
        on a CPU with native bfloat16, a timing of training steps on the first batch (cached)."""
        saved = resumed_choice(header)
        if saved is not None:
            return saved
        o = self.options
        batch: dict[str, Tensor] | None = None

        def first_batch() -> dict[str, Tensor]:
            nonlocal batch
            if batch is None:
                items = [self.train_data[(0, i)] for i in range(o.batch_size)]
                batch = torch.utils.data.default_collate(items)
            return batch

        def measure(precision: str, channels_last: bool) -> float:
            saved_rng = rng_state()
            gens = {k: g.get_state() for k, g in self._loss_generators().items()}
            try:
                b = first_batch()
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                net = copy.deepcopy(self.model).to(memory_format=fmt).train()
                inp = b["input"].to(self.device).contiguous(memory_format=fmt)
                tgt = b["target"].to(self.device)
                opt = torch.optim.Adam(net.parameters(), lr=o.lr)
                objective = self._objective_now()

                def one_step() -> None:
                    with autocast(self.device, precision):
                        pred = net(inp)
                    loss = objective(pred.float(), tgt, validate=False).total
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

                return time_steps(one_step, warmup=1, steps=2)
            finally:  # measuring must not move the run's random streams
                set_rng_state(saved_rng)
                for k, g in self._loss_generators().items():
                    g.set_state(gens[k])

        key = ""
        if o.precision == "auto" and self.device.type == "cpu":
            shape = tuple(first_batch()["input"].shape) if cpu_bf16_supported() else ()
            key = f"restoration:{hashlib.sha1(repr(self.model).encode()).hexdigest()[:12]}:{shape}"
        return choose_precision(o.precision, self.device, key=key, measure=measure, allow_fp16=True)

    def _apply_precision(self, choice: Choice) -> None:
        self.choice, self.precision = choice, choice.precision
        self.channels_last = choice.channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
            if self.discriminator is not None:
                self.discriminator.to(memory_format=torch.channels_last)

    def fit(
        self,
        resume: bool | str | os.PathLike[str] = False,
        *,
        on_step: Callable[[int, dict[str, Any]], bool | None] | None = None,
    ) -> dict[str, Any]:
        """Train until ``options.steps`` (a :class:`TrainingRun` on :func:`featstat.engine.loop.run_loop`);
        returns the final numbers (also in ``run.json``).

        ``resume``: True continues from ``out_dir/checkpoint.pt`` when it exists (a fresh run otherwise), a
        path continues from that checkpoint; a checkpoint of other settings raises ``ValueError`` naming
        them. ``on_step(step, values)`` is the loop's callback, called after every step (values: the logged
        row on log steps, else an empty dict); returning True stops early (checkpoint and outputs written),
        raising KeyboardInterrupt behaves like Ctrl-C: the checkpoint is saved and the exception propagates.
        """
        o = self.options
        header = None
        if resume:
            path = self.checkpoint_path if resume is True else Path(resume)
            if path.is_file():
                header = read_checkpoint(path, TrainingRun.kind)
                self.history.train = [dict(r) for r in header["history"]]
            elif resume is not True:
                raise ValueError(f"resume checkpoint {str(path)!r} does not exist")
        if header is None:
            torch.manual_seed(o.seed)
        self._apply_precision(self._precision_choice(header))
        self.out.mkdir(parents=True, exist_ok=True)
        self.model.train()
        if self.discriminator is not None:
            self.discriminator.train()
        run = TrainingRun(self)
        outputs = Outputs(
            self.out, history=None, csv="train_log.csv", curves="curves_train.png" if o.plots else None,
            run_json="run.json", title="training",
        )  # fmt: skip
        try:
            looped = run_loop(
                run, o.steps, log_every=o.log_every, checkpoint=self.checkpoint_path,
                checkpoint_every=o.checkpoint_every, resume=header if header is not None else False,
                callback=on_step, snapshot_every=o.validate_every, precision=self.choice, outputs=outputs,
                progress=o.progress, description="training", device=self.device,
            )  # fmt: skip
        except KeyboardInterrupt:
            if self.rank == 0 and self.checkpoint_path.is_file():
                log.info(
                    "interrupted at step %d; checkpoint saved to %s (resume: --resume on the command line, "
                    "fit(resume=True) in Python)", self.step, self.checkpoint_path,
                )  # fmt: skip
            raise
        finally:
            run.close()
        if self._owns_group:
            dist.destroy_process_group()
        return looped.summary["summary"]

    def _check_divergence(self, row: Mapping[str, Any]) -> None:
        """Stop with :class:`~featstat.engine.runs.TrainingDiverged` when the run went dead (non-finite
        loss, flat outputs, a spike that stays); every rank sees the same reduced numbers, so all stop
        together."""
        keys, self._window_keys = self._window_keys, set()
        if self.watch is None:
            return
        loss, lr = float(row["loss"]), float(row["lr"])
        if keys != {self._watch_key}:  # another objective (pre-training over, GAN term on): another scale
            self.watch.reset()
            self._watch_key = next(iter(keys)) if len(keys) == 1 else None
            if len(keys) > 1 and math.isfinite(loss):
                return  # a window mixing two objectives: its mean is no reference for later spikes
        self.watch.update(self.step, loss, None, lr, spread=self._last_spread, low=self._last_low)

    # -- validation ----------------------------------------------------------------------------------

    def _baseline(self, inp: Tensor, tgt: Tensor) -> Tensor | None:
        if self.task == "normals":
            return None
        if inp.shape[-2:] != tgt.shape[-2:]:
            return resize_bicubic(inp, tgt.shape[-2:], method="matlab").clamp(0, 1)
        return inp.clamp(0, 1)

    def _scores(self, pred: Tensor, tgt: Tensor) -> dict[str, float]:
        from .. import metrics

        if self.task == "normals":
            stats = metrics.angular_error_stats(pred, tgt, encoded=True)
            return {f"angular_{k}": float(v) for k, v in stats.items()}
        s: dict[str, float] = {"psnr": float(metrics.psnr(pred, tgt))}
        scale = int(getattr(self.model, "scale", 1))
        if (
            self.task
            and self.task.startswith("sr")
            and pred.shape[1] == 3
            and min(pred.shape[-2:]) > 2 * scale
        ):
            s["psnr_y"] = float(metrics.psnr(pred, tgt, y_channel=True, crop_border=scale))
        if min(pred.shape[-2:]) >= 11:
            s["ssim"] = float(metrics.ssim(pred, tgt))
        if self.lpips is not None and pred.shape[1] == 3:
            with torch.no_grad():
                s["lpips"] = float(self.lpips(pred, tgt))
        return s

    def validate(self, *, final: bool = False) -> dict[str, float]:
        """Score the model on ``val_data`` (rank 0; other ranks return {}). Writes images and the val log."""
        if self.val_data is None or self.rank != 0:
            return {}
        o = self.options
        folder = self.out / ("final" if final else f"val/step_{self.step:06d}")
        sums: dict[str, float] = {}
        base_sums: dict[str, float] = {}
        first = not self.history.val
        n = len(self.val_data)  # type: ignore[arg-type]
        for i in range(n):
            item = self.val_data[i]
            inp = item["input"].unsqueeze(0).to(self.device)
            tgt = item["target"].unsqueeze(0).to(self.device)
            with autocast(self.device, self.precision):
                pred = restore(self.model, inp, tile=o.tile, overlap=o.overlap)
            pred = pred.float()
            for k, v in self._scores(pred, tgt).items():
                sums[k] = sums.get(k, 0.0) + v
            if first:
                base = self._baseline(inp, tgt)
                if base is not None:
                    for k, v in self._scores(base, tgt).items():
                        base_sums[k] = base_sums.get(k, 0.0) + v
            if final or i < o.save_images:
                write_image(folder / f"{item.get('name', f'image{i:03d}')}.png", pred)
        row: dict[str, Any] = {"step": self.step}
        row.update({k: v / n for k, v in sums.items()})
        if base_sums:
            self.baseline = {k: v / n for k, v in base_sums.items()}
            self.history.val.append(
                {"step": 0, **{f"{k}": v for k, v in self.baseline.items()}, "what": "input"}
            )
        row["what"] = "model"
        self.history.val.append(row)
        self._write_val_log()
        return {k: v for k, v in row.items() if k not in ("step", "what")}

    # -- outputs -------------------------------------------------------------------------------------

    def _train_curves(self, rows: list[dict[str, Any]]) -> dict[str, list[float]]:
        keys = [k for k in rows[-1] if k not in ("step", "epoch", "lr", "phase", "steps_per_s")]
        order = ["loss", *[k for k in keys if k != "loss"]]
        return {k: [float(r.get(k, math.nan)) for r in rows] for k in order}

    def _write_val_log(self) -> None:
        rows = self.history.val
        write_csv(self.out / "val_log.csv", rows)
        model_rows = [r for r in rows if r.get("what") == "model"]
        if not model_rows or not self.options.plots:
            return
        keys = [k for k in model_rows[-1] if k not in ("step", "what")]
        curves = {k: [float(r.get(k, math.nan)) for r in model_rows] for k in keys}
        plot_curves(
            self.out / "curves_val.png",
            curves,
            steps=[r["step"] for r in model_rows],
            title="validation",
            log_y=False,
        )

    def _finish(self, final: dict[str, float]) -> dict[str, Any]:
        """The summary, ``model.pt`` (rank 0) and what ``run.json`` holds besides the loop's own keys."""
        sps = self._session_steps / self._session_seconds if self._session_seconds > 0 else float("nan")
        summary: dict[str, Any] = {
            "steps": self.step,
            "final_loss": self.history.train[-1]["loss"] if self.history.train else None,
            "validation": final,
            "input_baseline": getattr(self, "baseline", None),
            "train_seconds": self._train_seconds,
            "steps_per_second": sps,
        }
        spec = getattr(self.model, "spec", None)
        if self.rank == 0:
            state = {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "metadata": self.metadata}
            if spec is not None:
                state["network"] = spec
            save_checkpoint(self.out / "model.pt", state)
        return {
            "summary": summary,
            "options": asdict(self.options),
            "metadata": self.metadata,
            "network": spec,
            "precision": self.precision,
            "precision_choice": self.choice.info(),
            "device": str(self.device),
            "world_size": self.world,
            "adversarial": asdict(self.adversarial) if self.adversarial is not None else None,
        }


# options a resumed run may change (step count, cadences, display, loader workers, validation tiling)
_RESUMABLE = {
    "steps", "checkpoint_every", "validate_every", "log_every", "num_workers", "tile", "overlap",
    "save_images", "plots", "progress", "watch",
}  # fmt: skip


class TrainingRun:
    """A :class:`Trainer` as a :class:`featstat.engine.loop.Run` (kind ``"restoration"``): one step is one
    batch of the epoch sampler's order (a new epoch starts when one is used up), validation is the
    ``snapshot`` hook (every ``validate_every`` steps) and the final validation, ``model.pt`` and the
    summary are ``finish``. Built by :meth:`Trainer.fit`."""

    kind = "restoration"

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.rank0 = trainer.rank == 0
        self._loader: DataLoader | None = None
        self._sampler: EpochSampler | None = None
        self._batches: Iterator[Any] | None = None
        self._per_epoch = 0

    def fingerprint(self) -> dict[str, Any]:
        return self.trainer.fingerprint()

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.trainer.load_state_dict(state)
        self._batches = None  # the next step starts from the saved position in the epoch

    def _next_batch(self) -> Mapping[str, Tensor]:
        t, o = self.trainer, self.trainer.options
        if self._loader is None:
            self._sampler = EpochSampler(
                len(t.train_data),  # type: ignore[arg-type]
                epoch=t.epoch,
                seed=o.seed,
                rank=t.rank,
                world=t.world,
            )
            self._per_epoch = len(self._sampler) // o.batch_size
            # one loader for the whole run: workers (and their image caches) persist across epochs
            self._loader = DataLoader(
                t.train_data,
                batch_size=o.batch_size,
                sampler=self._sampler,
                drop_last=True,
                num_workers=o.num_workers,
                pin_memory=t.device.type == "cuda",
                worker_init_fn=seed_worker,
                persistent_workers=o.num_workers > 0,
            )
        assert self._sampler is not None
        if t.batch_in_epoch >= self._per_epoch:  # the epoch is used up: the next one
            t.epoch, t.batch_in_epoch, self._batches = t.epoch + 1, 0, None
        if self._batches is None:
            self._sampler.set_epoch(t.epoch, skip=t.batch_in_epoch * o.batch_size)
            self._batches = iter(self._loader)
        return next(self._batches)

    def step(self, step: int) -> dict[str, Tensor]:
        t = self.trainer
        values = t._train_step(self._next_batch())
        t.step += 1
        t.batch_in_epoch += 1
        t._session_steps += 1
        return values

    def log(self, step: int, means: Mapping[str, Tensor], seconds: float) -> dict[str, Any]:
        self.trainer._session_seconds += seconds
        return self.trainer._log(step, means, seconds)

    def check(self, step: int, row: Mapping[str, Any]) -> None:
        self.trainer._check_divergence(row)

    def snapshot(self, step: int) -> None:
        self.trainer.validate()

    def curves(self, history: list[dict[str, Any]]) -> dict[str, list[float]]:
        return self.trainer._train_curves(history)

    def finish(self, step: int) -> dict[str, Any]:
        t = self.trainer
        final = t.validate(final=True) if t.val_data is not None else {}
        return t._finish(final)

    def close(self) -> None:
        """Let the loader's workers go."""
        self._batches = self._loader = None
