"""What every long run shares: checkpoints, random-number state, progress, logs and curves.

Engines (synthesis, Deep Image Prior, training) use these so that every run

- saves checkpoints atomically (a crash mid-write leaves the previous checkpoint intact) in a format
  ``torch.load(weights_only=True)`` reads back (plain containers of tensors and numbers, no pickled objects);
- captures and restores all random-number generators, so a resumed run continues *identically*;
- shows progress (rich) and can be stopped with Ctrl-C or SIGTERM after saving where it stands;
- writes its numbers as JSON and its curves as PNG, both atomically.
"""

from __future__ import annotations

import io as _io
import json
import math
import os
import random
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_write_bytes, atomic_write_text
from .._checks import FileLoadError

PathLike = str | os.PathLike[str]


# -- random-number state ----------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The state of torch (CPU and every CUDA device), Python's and NumPy's generators."""
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global generator is what code uses)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _python_state_to_tensor(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generators saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    random.setstate(_python_state_from_tensor(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"],
         np_state["cached_gaussian"])
    )  # fmt: skip
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _python_state_from_tensor(d: Mapping[str, Any]) -> tuple:
    return (d["version"], tuple(int(v) for v in d["internal"].tolist()), d["gauss"])


def generator_state(g: torch.Generator) -> torch.Tensor:
    """State of a ``torch.Generator`` for a checkpoint (restore with ``g.set_state``)."""
    return g.get_state()


# -- checkpoints --------------------------------------------------------------------------------------------


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts; e.g. model/optimiser state dicts, the step,
    :func:`rng_state`) to ``path`` atomically."""
    buffer = _io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write_bytes(path, buffer.getvalue())


class Checkpoint(dict):
    """What :func:`load_checkpoint` returns: a plain ``dict`` whose missing keys raise
    :class:`~featstat.FileLoadError` naming the file (a checkpoint of another run type or version), not a
    bare ``KeyError`` from deep inside a resume."""

    path: str = ""

    def __missing__(self, key: object) -> Any:
        raise FileLoadError(
            f"checkpoint {self.path!r} has no entry {key!r} (it holds {sorted(map(str, self))[:8]}); it was "
            f"written by another kind of run or another featstat version: start a fresh run, or resume "
            f"with the command that wrote it"
        )


def load_checkpoint(path: PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no arbitrary objects).

    A missing, empty, truncated or foreign file, or one that does not hold a mapping of names to values
    (a list, a bare tensor), raises :class:`~featstat.FileLoadError` (a ``ValueError``) naming the file;
    so does a missing entry when the result is read (see :class:`Checkpoint`).
    """
    p = Path(path)
    fix = "start a fresh run (without --resume), or point to the checkpoint file the run wrote"
    if not p.is_file():
        raise FileLoadError(f"checkpoint {str(p)!r} does not exist; {fix}")
    if p.stat().st_size == 0:
        raise FileLoadError(f"checkpoint {str(p)!r} is empty (0 bytes); {fix}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # EOFError, RuntimeError (bad zip), UnpicklingError, ... for damaged files
        raise FileLoadError(
            f"checkpoint {str(p)!r} could not be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}"
            f"); it is truncated, damaged or not a featstat checkpoint: {fix}"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise FileLoadError(
            f"checkpoint {str(p)!r} holds a {type(state).__name__}, not a mapping of names to values as "
            f"featstat writes; {fix}"
        )
    out = Checkpoint(state)
    out.path = str(p)
    return out


# -- progress -----------------------------------------------------------------------------------------------


class Progress:
    """A progress bar (rich) over ``total`` steps that also shows the latest numbers.

    ``update(step, loss=..., psnr=...)`` moves the bar to ``step`` (absolute, so resumed runs start midway).
    Disabled (silent) when ``enabled`` is False.
    """

    def __init__(self, total: int, description: str, *, start: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            )  # fmt: skip
            self._task = self._bar.add_task(description, total=total, completed=start, info="")

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, step: int, **values: float) -> None:
        if self._bar is None:
            return
        info = "  ".join(f"{k} {_fmt(v)}" for k, v in values.items())
        self._bar.update(self._task, completed=step, info=info)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Terminated(KeyboardInterrupt):
    """Raised instead of ``KeyboardInterrupt`` when the run was stopped by SIGTERM (what ``timeout``,
    schedulers and containers send). A subclass, so every ``except KeyboardInterrupt`` that saves a
    checkpoint handles it too; the command line exits with :attr:`exit_code` (128 + 15)."""

    exit_code = 143


def interrupt_exit_code(err: BaseException) -> int:
    """The exit status for a stopped run: 143 after SIGTERM, 130 after Ctrl-C (SIGINT)."""
    return int(getattr(err, "exit_code", 130))


class StopFlag:
    """Set by the first Ctrl-C or SIGTERM during :func:`graceful_interrupt`; loops check it between steps
    and then ``raise flag.interrupt()`` (``KeyboardInterrupt``, or :class:`Terminated` after SIGTERM)."""

    requested: bool = False
    signum: int | None = None

    def interrupt(self) -> KeyboardInterrupt:
        return Terminated() if self.signum == _SIGTERM else KeyboardInterrupt()


_SIGTERM = getattr(signal, "SIGTERM", None)
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, _SIGTERM) if s is not None)


def _raise_now(signum: int, frame: Any) -> None:
    raise Terminated() if signum == _SIGTERM else KeyboardInterrupt()


@contextmanager
def terminate_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) like Ctrl-C does,
    instead of killing the process, so the same handlers save what is consistent. The command line wraps
    every verb in it; :func:`graceful_interrupt` refines it inside run loops. Main thread only."""
    if _SIGTERM is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(_SIGTERM)
    signal.signal(_SIGTERM, _raise_now)
    try:
        yield
    finally:
        signal.signal(_SIGTERM, previous)


@contextmanager
def graceful_interrupt() -> Iterator[StopFlag]:
    """While the block runs, the first Ctrl-C (SIGINT) or SIGTERM only sets ``flag.requested`` (the loop then
    saves a consistent checkpoint after the current step and raises ``flag.interrupt()``); a second one
    interrupts at once (then :func:`featstat.engine.runs.interruptible` saves what is consistent). Signals
    can only
    be caught in the main thread; elsewhere the flag is never set."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        flag.requested = True
        flag.signum = signum
        for s in _STOP_SIGNALS:  # a second signal of either kind interrupts at once
            signal.signal(s, _raise_now)

    for s in _STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def interruptible(on_interrupt: Any) -> Iterator[None]:
    """Run the block; on Ctrl-C call ``on_interrupt()`` (e.g. save a checkpoint), then re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        on_interrupt()
        raise


# -- divergence ---------------------------------------------------------------------------------------------


class TrainingDiverged(FloatingPointError):
    """A training run went wrong in a way that does not recover (see :class:`DivergenceWatch`)."""


class DivergenceWatch:
    """Notices a generator's training run that has gone dead, so it stops with advice instead of running on.

    Every trainer of a generator (texture and stylisation networks, restoration networks) calls :meth:`update`
    at its checks (the texture trainer after every step, the restoration trainer at its log steps, where the
    loss is on the host already). Three signs:

    - *a non-finite loss* (NaN or inf): at once.
    - *a constant output*: every generated image is (nearly) one colour — the per-image, per-channel spatial
      standard deviation averages below ``flat`` (1e-3) for ``patience_flat`` (5) checks in a row. A saturated
      sigmoid does this (StyleNet at lr 0.1 turned solid green after its first step in our runs); no texture,
      stylisation or restored photo is one colour.
    - *a loss spike that does not recover*: the loss stays above ``spike`` (10) × the lowest loss seen so far
      for ``patience_spike`` (25) checks in a row (only while the lowest loss is positive). :meth:`reset`
      forgets the lowest loss when the objective changes (e.g. after a pre-training phase).

    :meth:`update` raises :class:`TrainingDiverged` naming the sign, the step and the fix (a learning rate 10×
    lower than the current one, in a fresh run: a checkpoint keeps the learning rate it was saved with).
    """

    def __init__(
        self, flat: float = 1e-3, patience_flat: int = 5, spike: float = 10.0, patience_spike: int = 25
    ) -> None:
        self.flat, self.patience_flat = flat, patience_flat
        self.spike, self.patience_spike = spike, patience_spike
        self.reset()

    def reset(self) -> None:
        """Forget the loss seen so far and the counters (the objective changed)."""
        self.best = math.inf
        self.flat_steps = self.spike_steps = 0

    @staticmethod
    def spread(images: torch.Tensor) -> torch.Tensor:
        """Mean per-image, per-channel spatial standard deviation (a 0-d tensor on the images' device)."""
        if images.shape[-1] * images.shape[-2] <= 1:
            return torch.ones((), device=images.device)
        return images.detach().float().flatten(2).std(-1).mean()

    def update(
        self,
        step: int,
        loss: float,
        images: torch.Tensor | None,
        lr: float,
        *,
        spread: float | None = None,
        low: float | None = None,
    ) -> None:
        """One check: ``loss`` (a float), the generated ``images`` (or their :meth:`spread`, precomputed) and,
        when a check covers several steps (``loss`` their mean), ``low``: the lowest loss among them — the
        spike test's reference then includes the loss before a run that blows up within its first window."""
        fix = (
            f"lower the learning rate, e.g. lr={_lower(lr):g} (--lr {_lower(lr):g}; it was {lr:g}), and "
            f"start afresh (not --resume: a checkpoint keeps its learning rate)"
        )
        if not math.isfinite(loss):
            raise TrainingDiverged(f"training diverged at step {step}: the loss became {loss}; {fix}")
        if spread is None:
            spread = float(self.spread(images)) if images is not None else math.inf
        self.flat_steps = self.flat_steps + 1 if spread < self.flat else 0
        if 0 < self.best < math.inf and loss > self.spike * self.best:
            self.spike_steps += 1
        else:
            self.spike_steps = 0
        # (a total below 0, e.g. with the diversity term, has no spike test)
        self.best = min(self.best, loss, low if low is not None and math.isfinite(low) else math.inf)
        if self.flat_steps >= self.patience_flat:
            if images is not None:
                colour = images.detach().float().mean((0, 2, 3)).clamp(0, 1).tolist()
                what = "one flat colour (RGB " + ", ".join(f"{v:.2f}" for v in colour) + ")"
            else:
                what = f"one flat colour (spatial standard deviation {spread:.2g})"
            raise TrainingDiverged(
                f"training diverged at step {step}: the generator outputs {what} for every input "
                f"({self.flat_steps} checks in a row; a saturated output layer does not recover); {fix}"
            )
        if self.spike_steps >= self.patience_spike:
            raise TrainingDiverged(
                f"training diverged at step {step}: the loss ({loss:.4g}) has stayed above {self.spike:g}× "
                f"its lowest value ({self.best:.4g}) for {self.spike_steps} checks; {fix}"
            )


def _lower(lr: float) -> float:
    return float(f"{lr / 10:.1g}")


# -- logs and curves --------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: PathLike, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (tensors and NumPy scalars converted)."""
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2) + "\n")


def plot_curves(
    path: PathLike,
    curves: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    xlabel: str = "step",
    log_y: bool = True,
    steps: Sequence[int] | None = None,
) -> None:
    """Plot named curves (one panel each) to a PNG, atomically. Non-finite or non-positive values on a log
    axis are skipped.

    Drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas, without pyplot: the caller's
    matplotlib backend and pyplot's figure list are left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [n for n, v in curves.items() if len(v)]
    if not names:
        raise ValueError("curves is empty: nothing to plot")
    fig = Figure(figsize=(4.2 * len(names), 3.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ys = np.asarray(curves[name], dtype=float)
        xs = np.asarray(steps if steps is not None else range(1, len(ys) + 1), dtype=float)[: len(ys)]
        use_log = log_y and bool(np.all(ys[np.isfinite(ys)] > 0))
        ax.plot(xs, ys, lw=1.2)
        if use_log:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
