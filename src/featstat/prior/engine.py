"""The Deep Image Prior optimisation loop (thesis eq. 7.2): fit a random network's weights to one image.

``θ* = argmin_θ E(f_θ(z); x₀)``, ``x* = f_θ*(z)``. A task (:mod:`featstat.prior.tasks`) describes the data
term ``E`` and the network as a :class:`Problem`; :func:`solve` runs Adam on the weights, with every option
of the public reference code:

- input-noise perturbation: each step uses ``z + σ·n`` with fresh Gaussian ``n`` (``input_noise = σ``,
  reference 1/30 for denoising, 0.03 for inpainting and SR ×4, 0.05 for SR ×8);
- exponential averaging of the outputs, ``avg ← w·avg + (1 − w)·x`` with ``w = ema = 0.99`` (the paper's
  "exponential sliding window"; 29.22 → 30.43 dB on its denoising set);
- several independent runs (different seeds) averaged (paper: two runs, 31.00 dB);
- backtracking: when the data loss jumps above ``10^(backtrack/10)`` × its last accepted value (a drop of
  more than ``backtrack`` dB in the PSNR of the fit; reference 5 dB), the network parameters go back to the
  last accepted step (the reference's ``last_net``; Adam's moments are kept, as there);
- PSNR against an optional ground truth (``clean``) on logged steps, for the output and for the average
  (:func:`featstat.metrics.psnr`).

:func:`solve` is a :class:`PriorRun` on the one run loop (:func:`featstat.engine.loop.run_loop`): every run
can be checkpointed (atomically) every ``checkpoint_every`` steps, at the end of every seed of a multi-seed
solve, on Ctrl-C and at the end, and resumed *exactly*: network, optimiser, averaging buffer, random
generators, backtracking snapshot (the parameters only) and history are saved, so a resumed run produces
bit-for-bit the same result on CPU as an uninterrupted one. With ``outputs=`` the loop also keeps a run
folder up to date, as for every engine: ``history.json``, ``history.csv``, ``curves.png`` and ``run.json``
(:class:`featstat.engine.loop.Outputs`), plus ``result.png`` and ``average.png`` at the end.

Speed (``docs/benchmarks-prior.md``): ``precision="bf16"`` runs the network under ``torch.autocast`` in
bfloat16 (weights, Adam and the data term stay float32; on CPUs with AVX-512-BF16/AMX and on CUDA),
``channels_last=True`` uses the NHWC layout oneDNN/cuDNN prefer, ``compile=True`` wraps the network in
``torch.compile``. ``precision="auto"`` (default) is :func:`featstat.engine.precision.choose` with a timing
of this network and input (the one meaning of "auto" for every engine: see that module); a resumed run keeps
the precision its checkpoint recorded. ``precision="fp32"`` gives the reference-faithful baseline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import metrics
from .._checks import check_choice, check_positive, make_generator
from ..engine.loop import Outputs, read_checkpoint, resumed_choice, run_loop
from ..engine.precision import PRECISIONS, Choice, autocast, cpu_bf16_supported, time_steps
from ..engine.precision import choose as choose_precision
from ..engine.runs import plot_curves, write_json
from ..io import write_image
from ..objective.core import Objective

__all__ = [
    "PRECISIONS",
    "FitOptions",
    "PriorResult",
    "PriorRun",
    "Problem",
    "psnr",
    "resolve_precision",
    "solve",
]

# ------------------------------------------------------------------------------------------------ helpers


def psnr(x: Tensor, reference: Tensor) -> float:
    """PSNR in dB of ``x`` (clamped to [0, 1]) against ``reference`` (in [0, 1], same shape),
    ``10·log10(1 / MSE)``, as a float: :func:`featstat.metrics.psnr` (mean over a batch of per-image PSNRs).
    """
    return float(metrics.psnr(x.detach().float().clamp(0, 1), reference.detach().float()))


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision "auto" stands for *without measuring* (:func:`featstat.engine.precision.choose`'s
    rule: bf16 on
    CUDA GPUs with bfloat16 and on CPUs with AMX, else fp32); other values are checked and returned
    ("fp16": CUDA only). :func:`solve` measures instead where it matters (CPUs with native bfloat16)."""
    return choose_precision(precision, device, allow_fp16=False).precision


def _precision_choice(problem: Problem, opts: FitOptions, device: torch.device) -> Choice:
    """The precision and layout of this solve: ``opts.precision`` resolved by the shared policy, timing two
    steps of each candidate on this network and input where the CPU has native bfloat16 (cached)."""
    key = ""
    if opts.precision == "auto" and device.type == "cpu" and cpu_bf16_supported():  # the one case measured
        with torch.random.fork_rng(devices=[]):
            probe = problem.make_net(opts.seed)
        code = problem.make_code if isinstance(problem.make_code, Tensor) else None
        meta = problem.meta
        shape = tuple(code.shape) if code is not None else meta.get("net_size") or meta.get("size")
        key = f"prior:{problem.task}:{hashlib.sha1(repr(probe).encode()).hexdigest()[:12]}:{shape}"

    def measure(prec: str, channels_last: bool) -> float:
        variant = dataclasses.replace(opts, channels_last=channels_last, compile=False)
        with torch.random.fork_rng(devices=[]):  # measuring must not move the run's random streams
            trial = _Run(problem, variant, 0, device, prec)
            return time_steps(trial.advance, warmup=1, steps=2)

    return choose_precision(
        opts.precision, device, key=key, measure=measure, allow_fp16=False, channels_last=opts.channels_last
    )


# ---------------------------------------------------------------------------------------------- options


@dataclass
class FitOptions:
    """How to optimise (shared by every task). Defaults are the public reference code's; each task overrides
    ``steps`` / ``lr`` / ``input_noise`` with its own reference values.

    Attributes:
        steps: Adam steps per run. lr: learning rate (reference 0.01; flash/no-flash 0.1; inversion 0.001).
        input_noise: σ of the Gaussian perturbation added to z at every step (0 disables).
        ema: weight w of the exponential average of outputs (0 disables; reference 0.99).
        ema_start: steps before the averaging starts (reference 0: from the first output). The reference's
            0.99 needs ~300 steps to forget the blurry first outputs; for short runs start it later (e.g. at
            a fifth of the steps) — before it, the average is the latest output.
        runs: independent runs (seeds ``seed``, ``seed + 1``, ...) whose outputs are averaged.
        seed: seeds the weights, the input code and the perturbation noise.
        backtrack: dB drop of the fit that restores the last accepted weights (None disables; reference 5).
        precision: "auto", "fp32", "bf16" (autocast) or "fp16" (CUDA autocast + gradient scaling).
        channels_last: NHWC memory format for the network (None: on when precision is not fp32).
        compile: wrap the network in ``torch.compile`` (worth it for long runs; first step compiles).
        log_every: a history row every this many steps of a run and at its last step (1 = every step): the
            mean loss since the previous row and the PSNRs of the latest output and average.
        checkpoint: file to save to every ``checkpoint_every`` steps, at the end of each run (seed) and on
            Ctrl-C; a resume continues with the next seed exactly.
        resume: continue from ``checkpoint`` if it exists (the problem and options must match; ``steps`` may
            grow for a single run).
        progress: show a progress bar. device: where to run (default: the observation's device).
        outputs: a run folder (path) or :class:`featstat.engine.loop.Outputs`: the loop writes the history
            (JSON, CSV), ``curves.png`` (the fit in dB and the PSNRs, as :meth:`PriorResult.save`) and
            ``run.json`` as it goes, and :func:`solve` adds ``result.png`` / ``average.png`` at the end.
        callback: called as ``callback(run, step, loss)`` after every step (e.g. to save snapshots or stop
            early); raising ``KeyboardInterrupt`` from it stops the run like Ctrl-C (checkpoint saved).
        on_output: called as ``on_output(run, step, output, average)`` after every step with the network's
            output and the running average (views of the run's tensors: copy what you keep), e.g. to write
            intermediate snapshots (``featstat prior … --snapshot-every N``).
    """

    steps: int = 1800
    lr: float = 0.01
    input_noise: float = 1.0 / 30.0
    ema: float = 0.99
    ema_start: int = 0
    runs: int = 1
    seed: int = 0
    backtrack: float | None = 5.0
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    log_every: int = 1
    checkpoint: str | os.PathLike[str] | None = None
    checkpoint_every: int = 200
    resume: bool = False
    progress: bool = False
    device: str | torch.device | None = None
    outputs: Outputs | str | os.PathLike[str] | None = None
    callback: Callable[[int, int, float], None] | None = None
    on_output: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "runs", "log_every", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_positive("lr", self.lr)
        check_positive("input_noise", self.input_noise, allow_zero=True)
        if not isinstance(self.ema, (int, float)) or not 0.0 <= self.ema < 1.0:
            raise ValueError(
                f"ema must be in [0, 1) (0 disables averaging; reference 0.99), got {self.ema!r}"
            )
        if not isinstance(self.ema_start, int) or isinstance(self.ema_start, bool) or self.ema_start < 0:
            raise ValueError(f"ema_start must be an integer >= 0 (a step count), got {self.ema_start!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.backtrack is not None:
            check_positive("backtrack", self.backtrack)
        check_choice("precision", self.precision, PRECISIONS)
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH (the file a previous run saved)")
        if self.outputs is not None and not isinstance(self.outputs, (Outputs, str, os.PathLike)):
            raise ValueError(
                f"outputs must be a folder path or featstat.engine.loop.Outputs(...), got "
                f"{type(self.outputs).__name__} {self.outputs!r}"
            )

    @classmethod
    def from_kwargs(cls, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> FitOptions:
        """Task defaults updated by the caller's keywords; unknown keywords raise a ValueError listing the
        valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; valid options: {sorted(names)}")
        merged = {**defaults, **{k: v for k, v in overrides.items() if v is not None or k == "backtrack"}}
        return cls(**merged)


@dataclass
class Problem:
    """A Deep Image Prior task: what the network is, what it sees and what it must explain.

    Attributes:
        task: name (for logs and checkpoints).
        data_term: output image (N×C×H×W, float32, the network's output after ``view``) → scalar loss E.
        make_net: seed → a freshly initialised network (float32, CPU or any device).
        make_code: seed → the input code z (1×C'×H'×W'), or a fixed tensor (flash/no-flash).
        clean: ground truth for PSNR tracking (same shape as the viewed output), optional.
        view: maps the network output to the image the data term and PSNR see (e.g. a crop), optional.
        extra: an :class:`featstat.Objective` added to the data term (experimental extra statistics terms),
            evaluated as ``extra(output, extra_target).total``.
        extra_target: the target image(s) of ``extra``.
        meta: settings worth recording in the JSON (task parameters, network description).
    """

    task: str
    data_term: Callable[[Tensor], Tensor]
    make_net: Callable[[int], nn.Module]
    make_code: Callable[[int], Tensor] | Tensor
    clean: Tensor | None = None
    view: Callable[[Tensor], Tensor] | None = None
    extra: Objective | None = None
    extra_target: Tensor | Mapping[str, Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PriorResult:
    """What :func:`solve` returns.

    Attributes:
        image: the final output x* = f_θ*(z) (1×C×H×W float32 in [0, 1]; mean over runs when runs > 1).
        average: the exponential average of the outputs (mean over runs), or ``image`` when ema = 0.
        history: per recorded step: "run", "step", "loss", and with a ground truth "psnr" (output) and
            "psnr_average".
        psnr, psnr_average: of ``image`` / ``average`` against the ground truth (None without one).
        info: task, options, device, precision, parameter count, backtracks, timings.
    """

    image: Tensor
    average: Tensor
    history: dict[str, list[float]]
    psnr: float | None
    psnr_average: float | None
    info: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record: info, final PSNRs and the history."""
        return {**self.info, "psnr": self.psnr, "psnr_average": self.psnr_average, "history": self.history}

    def save(self, folder: str | os.PathLike[str], *, stem: str = "") -> dict[str, Path]:
        """Write ``{stem}result.png`` (final), ``{stem}average.png``, ``{stem}curves.png`` (the loss in dB and
        the PSNRs per step) and ``{stem}run.json`` into ``folder`` (atomically). Returns the paths by kind."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "result": out / f"{stem}result.png",
            "average": out / f"{stem}average.png",
            "curves": out / f"{stem}curves.png",
            "json": out / f"{stem}run.json",
        }
        _write_images(out, self.image, self.average, stem)
        curves, steps = _curves(self.history, self.info["steps"])
        title = _title(self.info.get("task", ""), self.info.get("runs", 1))
        plot_curves(paths["curves"], curves, title=title, steps=steps, log_y=False)
        write_json(paths["json"], self.summary())
        return paths


def _write_images(folder: Path, image: Tensor, average: Tensor, stem: str = "") -> None:
    """``{stem}result.png`` and ``{stem}average.png`` (clamped to [0, 1]) in ``folder``."""
    write_image(folder / f"{stem}result.png", image.clamp(0, 1))
    write_image(folder / f"{stem}average.png", average.clamp(0, 1))


def _title(task: str, runs: int) -> str:
    return f"Deep Image Prior: {task}" + (f" ({runs} runs)" if runs > 1 else "")


def _columns(rows: Sequence[Mapping[str, Any]], clean: bool) -> dict[str, list[float]]:
    """The history rows of a solve as :attr:`PriorResult.history` columns."""
    keys = ["run", "step", "loss", *(["psnr", "psnr_average"] if clean else [])]
    return {k: [row.get(k, math.nan) for row in rows] for k in keys}


def _curves(history: Mapping[str, Sequence[float]], steps: int) -> tuple[dict[str, list[float]], list[int]]:
    """The curves of a solve's history (columns) and their x values (the step counted over all seeds,
    ``run · steps + step``). The loss is shown in decibels, −10·log10(loss) (the PSNR of the fit for a
    mean-squared data term), so one linear axis shows its whole range next to the PSNR panels."""
    fit = [-10.0 * math.log10(v) if v > 0 else float("nan") for v in history["loss"]]
    curves = {"fit: −10·log10(loss) (dB)": fit}
    if history.get("psnr"):
        curves["PSNR output (dB)"] = list(history["psnr"])
        curves["PSNR average (dB)"] = list(history["psnr_average"])
    xs = [int(s) + int(r) * steps for r, s in zip(history["run"], history["step"], strict=True)]
    return curves, xs


# ----------------------------------------------------------------------------------------------- solving


def _fields(opts: FitOptions) -> dict[str, Any]:
    """The options as a dict, without the callbacks and the run folder (not data)."""
    skip = ("callback", "on_output", "outputs")
    return {f.name: getattr(opts, f.name) for f in fields(opts) if f.name not in skip}


# options that may differ between a checkpointed run and its continuation ("steps" too for a single run)
_RESUMABLE = {"steps", "log_every", "checkpoint", "checkpoint_every", "resume", "progress", "device"}
_RESUMABLE |= {"compile", "callback", "on_output"}


class _Run:
    """State of one optimisation run (one seed): network, Adam, perturbation generator, average, snapshot."""

    def __init__(
        self, problem: Problem, opts: FitOptions, run: int, device: torch.device, precision: str,
        channels_last: bool | None = None,
    ):  # fmt: skip
        self.problem, self.opts, self.run, self.device, self.precision = problem, opts, run, device, precision
        seed = opts.seed + run
        self.net = problem.make_net(seed).to(device).train()
        code = problem.make_code if isinstance(problem.make_code, Tensor) else problem.make_code(seed)
        self.code = code.to(device=device, dtype=torch.float32)
        if channels_last is None:
            channels_last = opts.channels_last if opts.channels_last is not None else precision != "fp32"
        self.channels_last = channels_last
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.code = self.code.contiguous(memory_format=torch.channels_last)
        self.forward = torch.compile(self.net) if opts.compile else self.net
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=opts.lr)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.noise = make_generator(seed * 1_000_003 + 17, device)
        self.step = 0
        self.average: Tensor | None = None
        self.out: Tensor | None = None  # the latest output and loss (not saved: read right after a step)
        self.value = math.nan
        self.last_loss: float | None = None
        # backtracking snapshot: the network *parameters* of the last accepted step, what the public reference
        # restores (``last_net``); Adam's moments are not rolled back (as there), so a checkpoint holds the
        # network, Adam and one copy of the parameters (it held a second network and Adam state before 0.2)
        self.snapshot: list[Tensor] | None = None
        self.backtracks = 0

    # -- state -------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "step": self.step,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "noise": self.noise.get_state(),
            "average": self.average,
            "last_loss": self.last_loss,
            "snapshot": self.snapshot,
            "backtracks": self.backtracks,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.noise.set_state(state["noise"].cpu())
        avg = state["average"]
        self.average = None if avg is None else avg.to(self.device)
        self.last_loss = state["last_loss"]
        snap = state["snapshot"]
        self.snapshot = None if snap is None else [t.to(self.device) for t in snap]
        self.backtracks = int(state["backtracks"])

    # -- one step ----------------------------------------------------------------------------------------

    def output(self, z: Tensor) -> Tensor:
        with autocast(self.device, self.precision):
            out = self.forward(z)
        out = out.float().contiguous()
        return self.problem.view(out) if self.problem.view is not None else out

    def loss(self, out: Tensor) -> Tensor:
        loss = self.problem.data_term(out)
        if self.problem.extra is not None:
            loss = loss + self.problem.extra(out, self.problem.extra_target).total
        return loss

    def advance(self) -> float:
        """One Adam step; returns the loss. A rejected step (backtracking) restored the snapshot instead."""
        opts = self.opts
        z = self.code
        if opts.input_noise > 0:
            n = torch.randn(self.code.shape, generator=self.noise, device=self.device, dtype=torch.float32)
            z = self.code + opts.input_noise * n.contiguous(memory_format=_format(self.code))
        out = self.output(z)
        loss = self.loss(out)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} at step {self.step + 1} of run {self.run + 1}; lower lr (now "
                f"{opts.lr}), use precision='fp32' or enable backtrack"
            )
        self.step += 1
        self.out, self.value = out.detach(), value
        if opts.backtrack is not None and self.snapshot is not None and self.last_loss is not None:
            if value > self.last_loss * 10.0 ** (opts.backtrack / 10.0):
                with torch.no_grad():
                    for p, saved in zip(self.net.parameters(), self.snapshot, strict=True):
                        p.copy_(saved)
                self.backtracks += 1
                return value
        if opts.backtrack is not None:
            self.snapshot = [p.detach().clone() for p in self.net.parameters()]
        self.last_loss = value
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            o = out.detach()
            if self.average is None or opts.ema == 0 or self.step <= opts.ema_start:
                self.average = o.clone()
            else:
                self.average.mul_(opts.ema).add_(o, alpha=1.0 - opts.ema)
        return value

    @torch.no_grad()
    def final(self) -> Tensor:
        """x* = f_θ*(z) on the unperturbed code, in float32."""
        out = self.net(self.code).float().contiguous()
        return self.problem.view(out) if self.problem.view is not None else out


def _format(t: Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
        else (torch.contiguous_format)
    )


class PriorRun:
    """Deep Image Prior as a :class:`featstat.engine.loop.Run`: ``runs`` seeds of ``steps`` steps each, one
    after the other (the loop's step ``k`` is step ``k mod steps + 1`` of seed ``k // steps``); earlier seeds'
    final outputs and averages are part of the state, and the loop checkpoints at every seed boundary (the
    finished seed is in the checkpoint; a resume starts the next seed exactly as an uninterrupted solve
    does). History rows: ``run``, ``step`` (within the run), ``loss`` (the mean over the steps since the last
    row) and with a ground truth ``psnr`` / ``psnr_average`` of the latest output and average. ``finish``
    returns the summary (task, options, PSNRs, ...) the loop puts in ``run.json`` and :func:`solve` in
    :attr:`PriorResult.info`; ``image`` / ``average`` hold the results after it."""

    kind = "prior"

    def __init__(self, problem: Problem, opts: FitOptions, device: torch.device, choice: Choice) -> None:
        self.problem, self.opts, self.device, self.choice = problem, opts, device, choice
        self.clean = None if problem.clean is None else problem.clean.to(device=device, dtype=torch.float32)
        self.finals: list[Tensor] = []
        self.averages: list[Tensor] = []
        self.closed_backtracks: list[int] = []  # of finished runs
        self.current = self._new_run(0)
        self.image: Tensor | None = None  # set by finish(): the mean over runs
        self.average: Tensor | None = None

    def _new_run(self, run: int) -> _Run:
        return _Run(
            self.problem, self.opts, run, self.device, self.choice.precision, self.choice.channels_last
        )

    def fingerprint(self) -> dict[str, Any]:
        keep = {k: v for k, v in _fields(self.opts).items() if k not in _RESUMABLE}
        if self.opts.runs > 1:  # the runs' boundaries depend on it
            keep["steps"] = self.opts.steps
        return {"task": self.problem.task, "meta": self.problem.meta, "options": keep}

    @property
    def backtracks(self) -> int:
        return sum(self.closed_backtracks[: self.current.run]) + self.current.backtracks

    def _close_run(self) -> None:
        """Record the current run's final output and average (replacing what a shorter run recorded)."""
        r = self.current
        for done in (self.finals, self.averages, self.closed_backtracks):
            del done[r.run :]
        self.closed_backtracks.append(r.backtracks)
        self.finals.append(r.final())
        assert r.average is not None
        self.averages.append(r.average.clone() if self.opts.ema > 0 else self.finals[-1])

    def step(self, step: int) -> dict[str, float]:
        if step // self.opts.steps != self.current.run:
            self._close_run()
            self.current = self._new_run(step // self.opts.steps)
        return {"loss": self.current.advance()}

    def checkpoints(self, step: int) -> bool:
        """A checkpoint at the end of every seed but the last (the loop saves after the last anyway)."""
        return self.opts.runs > 1 and step % self.opts.steps == 0

    def curves(self, history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
        """The curves of :meth:`PriorResult.save` (fit in dB, PSNRs) for the run folder."""
        return _curves(_columns(history, self.clean is not None), self.opts.steps)[0]

    def curve_steps(self, history: Sequence[Mapping[str, Any]]) -> list[int]:
        return _curves(_columns(history, self.clean is not None), self.opts.steps)[1]

    def logs(self, step: int) -> bool:
        """A row every ``log_every`` steps of a run and at each run's last step."""
        local = (step - 1) % self.opts.steps + 1
        return local % self.opts.log_every == 0 or local == self.opts.steps

    def log(self, step: int, means: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        row: dict[str, Any] = {
            "run": self.current.run,
            "step": self.current.step,
            "loss": float(means["loss"]),
        }
        if self.clean is not None and self.current.out is not None and self.current.average is not None:
            row["psnr"] = psnr(self.current.out, self.clean)
            row["psnr_average"] = psnr(self.current.average, self.clean)
        return row

    def state_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.state_dict(),
            "finals": self.finals,
            "averages": self.averages,
            "backtracks": self.closed_backtracks,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        run = int(state["current"]["run"])
        if run != self.current.run:
            self.current = self._new_run(run)
        self.current.load_state_dict(state["current"])
        self.finals = [t.to(self.device) for t in state["finals"]]
        self.averages = [t.to(self.device) for t in state["averages"]]
        self.closed_backtracks = [int(b) for b in state["backtracks"]]

    def finish(self, step: int) -> dict[str, Any]:
        """Close the last run (the loop saves the final checkpoint after this, with its output) and return the
        summary: task and its settings, options, device, precision, parameter count, backtracks, and the
        PSNRs of the results (None without a ground truth; per run too when runs > 1)."""
        self._close_run()
        self.image = torch.stack(self.finals).mean(0)
        self.average = torch.stack(self.averages).mean(0)
        problem, opts = self.problem, self.opts
        info: dict[str, Any] = {
            "task": problem.task,
            **problem.meta,
            **{
                k: v
                for k, v in _fields(opts).items()
                if k not in ("checkpoint", "device", "resume", "progress")
            },
            "checkpoint": str(opts.checkpoint) if opts.checkpoint is not None else None,
            "outputs": None if opts.outputs is None else str(_folder(opts.outputs)),
            "device": str(self.device),
            "precision": self.choice.precision,
            "precision_choice": self.choice.info(),  # the resolved layout; "channels_last" is the option
        }
        if problem.extra is not None and getattr(problem.extra, "feature_sources", None):
            info["features"] = dict(problem.extra.feature_sources)  # which weights/layers "auto" picked
        info.update(
            parameters=sum(p.numel() for p in self.current.net.parameters()), backtracks=self.backtracks
        )
        clean = self.clean
        if clean is not None and len(self.finals) > 1:
            info["psnr_per_run"] = [psnr(f, clean) for f in self.finals]
            info["psnr_average_per_run"] = [psnr(a, clean) for a in self.averages]
        info["psnr"] = psnr(self.image, clean) if clean is not None else None
        info["psnr_average"] = psnr(self.average, clean) if clean is not None else None
        return info


def _folder(outputs: Outputs | str | os.PathLike[str]) -> Path:
    return Path(outputs.folder if isinstance(outputs, Outputs) else outputs)


def solve(problem: Problem, options: FitOptions | None = None, **kwargs: Any) -> PriorResult:
    """Run the Deep Image Prior optimisation for ``problem`` (a :class:`PriorRun` on
    :func:`featstat.engine.loop.run_loop`).

    Args:
        problem: a :class:`Problem` (tasks in :mod:`featstat.prior.tasks` build them).
        options: a :class:`FitOptions`; or pass its fields as keywords (``steps=500, precision="fp32"``,
            ``outputs="runs/dip"`` for a run folder).

    Returns a :class:`PriorResult`. Ctrl-C lets the current step finish, saves a checkpoint (when
    ``checkpoint`` is set) and re-raises ``KeyboardInterrupt``; run again with ``resume=True`` to continue
    exactly where it stopped. A second Ctrl-C stops at once, keeping the last periodic checkpoint (or the one
    written when the last seed finished).
    """
    if options is not None and kwargs:
        raise ValueError("pass either options=FitOptions(...) or keyword options, not both")
    opts = options if options is not None else FitOptions(**kwargs)
    if opts.device is not None:
        device = torch.device(opts.device)
    elif problem.clean is not None:
        device = problem.clean.device
    elif isinstance(problem.make_code, Tensor):
        device = problem.make_code.device
    else:
        device = torch.device(problem.meta.get("device", "cpu"))
    ckpt_path = Path(opts.checkpoint) if opts.checkpoint is not None else None
    header = None
    if opts.resume and ckpt_path is not None and ckpt_path.is_file():
        header = read_checkpoint(ckpt_path, PriorRun.kind)
    # resume with the precision the run started with (bit-exact continuation)
    choice = resumed_choice(header) or _precision_choice(problem, opts, device)
    run = PriorRun(problem, opts, device, choice)
    outputs = opts.outputs
    if outputs is not None and not isinstance(outputs, Outputs):
        outputs = Outputs(outputs, log_y=False, title=_title(problem.task, opts.runs))

    def callback(step: int, values: Mapping[str, float]) -> None:
        r, local = run.current.run, run.current.step
        if opts.callback is not None:
            opts.callback(r, local, run.current.value)
        if opts.on_output is not None:
            out = run.current.out
            assert out is not None
            average = run.current.average if run.current.average is not None else out
            opts.on_output(r, local, out, average)

    looped = run_loop(
        run, opts.steps * opts.runs, checkpoint=ckpt_path, checkpoint_every=opts.checkpoint_every,
        resume=header if header is not None else False,
        callback=callback if opts.callback is not None or opts.on_output is not None else None,
        precision=choice, progress=opts.progress, description=f"prior {problem.task}", device=device,
        outputs=outputs,
    )  # fmt: skip
    assert run.image is not None and run.average is not None  # finish() ran
    if outputs is not None:
        _write_images(_folder(outputs), run.image, run.average)
    info = dict(looped.summary)
    psnr_image, psnr_average = info.pop("psnr"), info.pop("psnr_average")
    info.update(seconds=looped.seconds, steps_per_second=looped.steps_per_second)
    return PriorResult(
        image=run.image,
        average=run.average,
        history=_columns(looped.history, run.clean is not None),
        psnr=psnr_image,
        psnr_average=psnr_average,
        info=info,
    )
