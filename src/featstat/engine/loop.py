"""The one run loop: every long computation in featstat (Deep Image Prior, restoration training, texture
synthesis levels, texture-network training) is a :class:`Run` driven by :func:`run_loop`.

The loop owns everything that is not the computation itself:

- **progress** (a rich bar, absolute steps, so a resumed run starts midway) and the **history**: one row
  (a dict) per logged step;
- **one callback**: ``callback(step, values) -> bool | None`` after every step; ``values`` are floats: the
  history row on logged steps, on other steps the numbers the Run returned as plain floats (0-d tensors are
  read only on logged steps, so the device is not synchronised every step). Returning ``True`` stops the
  run early and cleanly (final checkpoint and outputs are written, :attr:`LoopResult.stopped_early` is
  set); raising ``KeyboardInterrupt`` behaves like Ctrl-C;
- **Ctrl-C and SIGTERM**: the first one lets the current step finish, saves an ``"interrupted"`` checkpoint
  and re-raises (``KeyboardInterrupt``, or :class:`~featstat.engine.runs.Terminated` after SIGTERM); a second
  one stops at once and keeps the last consistent checkpoint (a half-done step is never saved);
- **checkpoints** (atomic, ``torch.load(weights_only=True)``-readable) every ``checkpoint_every`` steps, on
  interrupt and at the end, all with **one header** (:data:`CHECKPOINT_FORMAT`): ``format``, ``kind``,
  ``status``, ``step``, ``steps``, ``fingerprint`` (digest and record of the Run's resume-relevant
  settings), ``rng`` (every global generator), ``precision`` (the resolved choice, so a resumed run keeps
  it), ``state`` (the Run's ``state_dict()``), ``history``, ``window`` (the values since the last row, so
  rows are exact across a resume) and ``extra`` (the caller's);
- **one resume check** (:func:`check_resumable`): another format or kind, or a fingerprint that differs,
  raises ``ValueError`` naming every differing setting and the fix; a checkpoint beyond ``steps`` too;
- **divergence checks**: on logged steps the Run's ``check(step, row)`` hook, or a
  :class:`~featstat.engine.runs.DivergenceWatch` given to the loop (fed ``row["loss"]``); the check runs
  before that step's checkpoint, so a blown-up state is never saved;
- **the run folder** (:class:`Outputs`): the history as JSON and CSV (rewritten at every logged step), the
  curves as PNG (at checkpoints and the end), ``run.json`` (kind, steps, timing, precision, fingerprint and
  the Run's ``finish()`` summary, at the end), on rank 0 only — Python callers get the same files as the
  command line.

Writing a Run
-------------

A Run is any object with::

    kind: str                                   # "prior", "restoration", "texture-level", ...
    def fingerprint(self) -> Mapping[str, Any]  # resume-relevant settings (JSON-able): a resume must match
    def step(self, step: int) -> Mapping[str, float | Tensor]   # one step; ``step`` = steps done before it
    def state_dict(self) -> dict[str, Any]      # tensors, numbers, strings, lists, dicts only
    def load_state_dict(self, state: Mapping[str, Any]) -> None

and optionally::

    def log(self, step, means, seconds) -> dict   # the history row (default: {"step": step, **means});
                                                  # ``means``: the step values averaged over the window
                                                  # since the last row (0-d tensors still on the device),
                                                  # ``seconds``: the window's wall time. Called on every
                                                  # rank (a DDP Run all-reduces here).
    def logs(self, step) -> bool                  # whether ``step`` gets a row (default: every log_every)
    def check(self, step, row) -> None            # divergence check on logged rows (raise to stop)
    def snapshot(self, step) -> None              # every ``snapshot_every`` steps (validation, images)
    def finish(self, step) -> dict                # after the last step: the summary for run.json
    def curves(self, history) -> dict[str, list]  # named curves to plot (default: every numeric column)
    def curve_steps(self, history) -> list[float] # their x values (default: each row's "step")
    def checkpoints(self, step) -> bool           # also checkpoint after ``step`` (e.g. a stage boundary)
    rank0: bool                                   # False on DDP ranks > 0: no files, no progress bar

The loop saves and restores the global random generators itself; a Run saves its own generators
(``torch.Generator`` objects, sampling losses) in its ``state_dict``. ``step()`` must leave the Run
consistent when it returns: everything the next step needs is in ``state_dict()``. Exact resume is then
automatic: a run interrupted at step k and resumed computes bit for bit what an uninterrupted one does (on
CPU; GPU kernels may not be deterministic).

A sequence of stages (the seeds of a multi-run Deep Image Prior solve, the levels of a texture pyramid) is
one Run whose ``step()`` moves to the next stage at its boundary and whose ``state_dict`` holds the stage
index and what earlier stages produced: one checkpoint, one history, one progress bar; its
``checkpoints(step)`` hook asks for a checkpoint at each boundary, so a finished stage is never lost to a
hard stop. Where stages are built by the caller instead, pass what it needs to rebuild them as ``extra``
(saved in the header; read it back with :func:`read_checkpoint` before building the Run, and hand the header
to ``resume=``).

Precision: resolve it with :func:`featstat.engine.precision.choose` before building the Run, on resume
use :func:`resumed_choice` (the choice the checkpoint recorded), and pass the :class:`Choice` as
``precision=``: the loop records it in checkpoints and ``run.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from .._atomic import atomic_write_text
from .._checks import FileLoadError
from .precision import Choice
from .runs import (
    DivergenceWatch,
    PathLike,
    Progress,
    graceful_interrupt,
    interruptible,
    load_checkpoint,
    plot_curves,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoopResult",
    "Outputs",
    "Run",
    "check_resumable",
    "checkpoint_header",
    "fingerprint_of",
    "read_checkpoint",
    "resumed_choice",
    "run_loop",
    "write_csv",
]

#: the header format of every featstat run checkpoint (0.2.0; earlier per-engine formats do not load)
CHECKPOINT_FORMAT = "featstat-run-2"

Callback = Callable[[int, Mapping[str, float]], "bool | None"]


@runtime_checkable
class Run(Protocol):
    """What :func:`run_loop` drives (see the module docstring for the optional hooks)."""

    kind: str

    def fingerprint(self) -> Mapping[str, Any]: ...

    def step(self, step: int) -> Mapping[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class Outputs:
    """The run-folder files :func:`run_loop` writes (rank 0; atomic). A name set to None is not written.

    Attributes:
        folder: the run folder (created when needed).
        history: the history as JSON (a list of rows). csv: the history as CSV (one row per logged step).
        curves: PNG of the curves (the Run's ``curves(history)`` or every numeric column but ``step``).
        run_json: ``run.json``: kind, steps, timing, precision, fingerprint and the Run's ``finish()``
            summary (merged in at the top level).
        log_y: logarithmic y axes for the curves. title: the curves' title.
    """

    folder: PathLike
    history: str | None = "history.json"
    csv: str | None = "history.csv"
    curves: str | None = "curves.png"
    run_json: str | None = "run.json"
    log_y: bool = True
    title: str = ""


@dataclass
class LoopResult:
    """What :func:`run_loop` returns.

    Attributes:
        step: steps done (``steps`` unless stopped early). history: the rows (resumed ones included).
        stopped_early: a callback returned True. seconds: wall time of this session's steps.
        steps_per_second: of this session (None when no step ran). summary: the Run's ``finish()`` result.
        started_at: the step this session started from (0, or the checkpoint's step).
    """

    step: int
    history: list[dict[str, Any]]
    stopped_early: bool = False
    seconds: float = 0.0
    steps_per_second: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    started_at: int = 0


# ---------------------------------------------------------------------------------------------- headers


def fingerprint_of(settings: Mapping[str, Any]) -> dict[str, str]:
    """``{"digest", "record"}`` of a Run's resume-relevant settings (canonical JSON; non-JSON values by
    ``str``)."""
    record = json.dumps(_plain(settings), sort_keys=True, default=str)
    return {"digest": hashlib.sha256(record.encode()).hexdigest()[:16], "record": record}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def read_checkpoint(path: PathLike, kind: str | None = None) -> dict[str, Any]:
    """Load a run checkpoint (on the CPU) and check its header: the format and, when given, the ``kind``.

    Raises :class:`~featstat.FileLoadError` (a ``ValueError``) for a missing, damaged or foreign file and
    for a checkpoint of an earlier featstat version or of another kind of run.
    """
    ck = load_checkpoint(path, map_location="cpu")  # generator states must stay on the CPU
    fix = "start a fresh run (without --resume / resume=False), or pass the checkpoint this kind of run wrote"
    if ck.get("format") != CHECKPOINT_FORMAT:
        raise FileLoadError(
            f"checkpoint {str(path)!r} has format {ck.get('format')!r}, not {CHECKPOINT_FORMAT!r}: it was "
            f"written by an earlier featstat version or is not a featstat run checkpoint; {fix}"
        )
    if kind is not None and ck.get("kind") != kind:
        raise FileLoadError(
            f"checkpoint {str(path)!r} was written by a {ck.get('kind')!r} run, not a {kind!r} run; {fix}"
        )
    return ck


def checkpoint_header(
    run: Run,
    *,
    step: int,
    steps: int,
    status: str,
    history: Sequence[Mapping[str, Any]],
    precision: Choice | None = None,
    window: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The one checkpoint header (what :func:`run_loop` saves; for a Run that also saves outside the loop,
    e.g. ``Trainer.save``): write it with :func:`featstat.engine.runs.save_checkpoint`."""
    return {
        "format": CHECKPOINT_FORMAT,
        "kind": run.kind,
        "status": status,
        "step": int(step),
        "steps": int(steps),
        "fingerprint": dict(fingerprint) if fingerprint is not None else fingerprint_of(run.fingerprint()),
        "rng": rng_state(),
        "precision": (
            {"precision": precision.precision, "channels_last": precision.channels_last}
            if precision is not None else None
        ),
        "state": run.state_dict(),
        "history": list(history),
        # the values of the steps since the last row, so rows are exact across a resume
        "window": dict(window) if window is not None else {"sums": {}, "count": 0},
        "extra": dict(extra) if extra is not None else {},
    }  # fmt: skip


def check_resumable(header: Mapping[str, Any], run: Run, steps: int) -> None:
    """The one resume check: same kind, same fingerprint, and not beyond ``steps``.

    A differing fingerprint raises ``ValueError`` listing each differing setting as ``name: saved → now``.
    """
    if header.get("kind") != run.kind:
        raise ValueError(
            f"checkpoint was written by a {header.get('kind')!r} run, not a {run.kind!r} run; pass the "
            f"checkpoint this kind of run wrote, or start afresh (resume=False / without --resume)"
        )
    now = fingerprint_of(run.fingerprint())
    saved = header["fingerprint"]
    if saved["digest"] != now["digest"]:
        diffs = _diff(json.loads(saved["record"]), json.loads(now["record"]))
        raise ValueError(
            "checkpoint was written for a different problem or different options, so it cannot be resumed "
            f"(differences, saved → now: {'; '.join(diffs[:8]) or 'inputs'}); run with the same inputs "
            "and settings to resume, or start afresh (resume=False / without --resume)"
        )
    if int(header["step"]) > steps:
        raise ValueError(
            f"the checkpoint is at step {header['step']}, beyond steps={steps}; use steps >= "
            f"{header['step']} to continue it, or start afresh"
        )


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]


def resumed_choice(header: Mapping[str, Any] | None) -> Choice | None:
    """The precision a checkpointed run used (None without one): resume with it for a bit-exact
    continuation, whatever "auto" would choose now."""
    saved = header.get("precision") if header is not None else None
    if not isinstance(saved, Mapping) or "precision" not in saved:
        return None
    return Choice(str(saved["precision"]), bool(saved["channels_last"]), "as the checkpointed run")


# ---------------------------------------------------------------------------------------------- outputs


def write_csv(path: PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows (dicts) as CSV, atomically: the union of their keys in first-seen order, floats to 6 digits."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _default_curves(history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    names: list[str] = []
    for row in history:
        names += [
            k for k, v in row.items()
            if k != "step" and k not in names and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]  # fmt: skip
    return {k: [float(r.get(k, math.nan)) for r in history] for k in names}


def _write_outputs(out: Outputs, run: Any, history: list[dict[str, Any]], *, plot: bool) -> None:
    folder = Path(out.folder)
    folder.mkdir(parents=True, exist_ok=True)
    if out.history:
        write_json(folder / out.history, {"kind": run.kind, "history": history})
    if out.csv and history:
        write_csv(folder / out.csv, history)
    if plot and out.curves and history:
        curves = run.curves(history) if hasattr(run, "curves") else _default_curves(history)
        curves = {k: v for k, v in curves.items() if len(v)}
        if curves:
            steps = (
                run.curve_steps(history) if hasattr(run, "curve_steps")
                else [r.get("step", i + 1) for i, r in enumerate(history)]
            )  # fmt: skip
            plot_curves(folder / out.curves, curves, title=out.title, log_y=out.log_y, steps=steps)


# ----------------------------------------------------------------------------------------------- the loop


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _float(v: Any) -> float:
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def run_loop(
    run: Run,
    steps: int,
    *,
    log_every: int = 1,
    checkpoint: PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool | Mapping[str, Any] = False,
    callback: Callback | None = None,
    snapshot_every: int = 0,
    watch: DivergenceWatch | None = None,
    precision: Choice | None = None,
    outputs: Outputs | None = None,
    progress: bool = False,
    description: str = "",
    extra: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    device: torch.device | str | None = None,
) -> LoopResult:
    """Drive ``run`` to ``steps`` steps (see the module docstring for what the loop owns).

    Args:
        run: a :class:`Run`.
        steps: the total step count (a resumed run continues to it; it may be larger than the saved one's
            when the Run's fingerprint does not include it).
        log_every: a history row every this many steps, and at the last step (0: only at the last step);
            a Run with a ``logs(step)`` hook decides itself (the last step always gets a row).
        checkpoint: the checkpoint file (None: no checkpoints, no resume).
        checkpoint_every: save every this many steps (0: only on interrupt and at the end), and after the
            steps for which the Run's ``checkpoints(step)`` hook returns True.
        resume: True: continue from ``checkpoint`` when that file exists (a fresh run otherwise); a header
            already read with :func:`read_checkpoint`: continue from it.
        callback: ``callback(step, values) -> bool | None`` after every step; True stops early.
        snapshot_every: call ``run.snapshot(step)`` every this many steps before the last (0: never).
        watch: a :class:`DivergenceWatch` fed ``row["loss"]`` (and ``row["lr"]``) on logged steps, for Runs
            without a ``check`` hook.
        precision: the resolved precision, recorded in checkpoints and ``run.json``.
        outputs: the run-folder files to write (None: none).
        progress: show a progress bar (only where ``run.rank0`` is true). description: its label.
        extra: plain data (or a function returning it at save time) stored in the header as ``extra``.
        device: synchronised (CUDA) before a window's time is read, so ``steps_per_s`` is honest.

    Returns a :class:`LoopResult`. Raises ``KeyboardInterrupt`` / ``Terminated`` after saving an
    ``"interrupted"`` checkpoint when stopped by a signal, ``ValueError`` when a resume does not match.
    """
    for name, value in (("steps", steps),):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("log_every", log_every), ("checkpoint_every", checkpoint_every),
                        ("snapshot_every", snapshot_every)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    rank0 = bool(getattr(run, "rank0", True))
    ckpt = Path(checkpoint) if checkpoint is not None else None
    header: Mapping[str, Any] | None = None
    if isinstance(resume, Mapping):
        header = resume
    elif resume:
        if ckpt is None:
            raise ValueError("resume=True needs a checkpoint path (the file a previous run saved)")
        if ckpt.is_file():
            header = read_checkpoint(ckpt, run.kind)
    fingerprint = fingerprint_of(run.fingerprint())
    history: list[dict[str, Any]] = []
    step = 0
    if header is not None:
        check_resumable(header, run, steps)
        run.load_state_dict(header["state"])
        history = [dict(r) for r in header["history"]]
        step = int(header["step"])
        set_rng_state(header["rng"])
    started_at = step
    sums: dict[str, Any] = {}
    count = 0
    if header is not None and isinstance(header.get("window"), Mapping):
        sums, count = dict(header["window"]["sums"]), int(header["window"]["count"])
    dev = torch.device(device) if device is not None else None
    consistent = True  # False while a step is half done: nothing to save then

    def save(status: str) -> None:
        if not consistent or not rank0:
            return
        if outputs is not None:
            _write_outputs(outputs, run, history, plot=True)
        if ckpt is None:
            return
        header = checkpoint_header(
            run, step=step, steps=steps, status=status, history=history, precision=precision,
            window={"sums": sums, "count": count}, extra=extra() if callable(extra) else extra,
            fingerprint=fingerprint,
        )  # fmt: skip
        save_checkpoint(ckpt, header)

    window, seconds, session_steps = 0.0, 0.0, 0
    stopped_early = False
    with (
        Progress(steps, description or run.kind, start=step, enabled=progress and rank0) as bar,
        interruptible(lambda: save("interrupted")),
        graceful_interrupt() as stop,
    ):
        t0 = time.perf_counter()
        while step < steps:
            consistent = False
            values = run.step(step)
            step += 1
            consistent = True
            session_steps += 1
            count += 1
            for k, v in values.items():
                if isinstance(v, torch.Tensor):
                    v = v.detach()
                    sums[k] = sums[k] + v if k in sums else v.clone()
                else:
                    sums[k] = sums[k] + v if k in sums else v
            reported = {k: float(v) for k, v in values.items() if _is_number(v)}
            logged = run.logs(step) if hasattr(run, "logs") else bool(log_every) and step % log_every == 0
            if logged or step == steps:
                if dev is not None and dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                now = time.perf_counter()
                window, seconds = now - t0, seconds + (now - t0)
                t0 = now
                means = {k: v / count for k, v in sums.items()}
                if hasattr(run, "log"):
                    row = dict(run.log(step, means, window))
                else:
                    row = {"step": step, **{k: _float(v) for k, v in means.items()}}
                sums, count = {}, 0
                if rank0:
                    history.append(row)
                    bar.update(step, **{k: v for k, v in row.items() if k in ("loss", "psnr")})
                    if outputs is not None:
                        _write_outputs(outputs, run, history, plot=False)
                reported = dict(row)
                if hasattr(run, "check"):
                    run.check(step, row)
                elif watch is not None and "loss" in row:
                    watch.update(step, float(row["loss"]), None, float(row.get("lr", math.nan)))
            elif rank0:
                bar.update(step)
            if snapshot_every and step % snapshot_every == 0 and step < steps and hasattr(run, "snapshot"):
                run.snapshot(step)
            periodic = bool(checkpoint_every) and step % checkpoint_every == 0
            if step < steps and (periodic or (hasattr(run, "checkpoints") and run.checkpoints(step))):
                save("running")
            if callback is not None and callback(step, reported) is True and step < steps:
                stopped_early = True
            if stop.requested:
                raise stop.interrupt()
            if stopped_early:
                break
        if count:  # stopped early between two logged steps: the partial window is the last row
            means = {k: v / count for k, v in sums.items()}
            now = time.perf_counter()
            seconds += now - t0
            row = dict(run.log(step, means, now - t0)) if hasattr(run, "log") else {
                "step": step, **{k: _float(v) for k, v in means.items()}
            }  # fmt: skip
            if rank0:
                history.append(row)
    summary = dict(run.finish(step)) if hasattr(run, "finish") else {}
    save("stopped early" if stopped_early else "complete")
    sps = session_steps / seconds if seconds > 0 else None
    if outputs is not None and rank0 and outputs.run_json:
        Path(outputs.folder).mkdir(parents=True, exist_ok=True)
        write_json(
            Path(outputs.folder) / outputs.run_json,
            {
                "kind": run.kind,
                "step": step,
                "steps": steps,
                "stopped_early": stopped_early,
                "seconds": seconds,
                "steps_per_second": sps,
                "precision": precision.info() if precision is not None else None,
                "torch": torch.__version__,
                "fingerprint": json.loads(fingerprint["record"]),
                **summary,
            },
        )
    return LoopResult(step, history, stopped_early, seconds, sps, summary, started_at)
