"""Optimisation on pixels as Runs of the one loop (:func:`featstat.engine.loop.run_loop`).

:class:`LevelRun` is one level of a synthesis: the pixels x (1×3×h×w) of the image minimise

    L(x) = s · objective(x, targets; guides) + range_weight · Σ_pixels dist(x, [0, 1])²

by L-BFGS (one iteration per step, strong-Wolfe line search by default) or Adam (x projected on [0, 1]
after every step). s is fixed by the first evaluation of the level so that the gradient of the scaled
objective has RMS 1 per pixel (L-BFGS then behaves the same whatever the units of the loss); reported
values are unscaled. :class:`PyramidRun` chains the levels of a coarse-to-fine pyramid as the stages of one
Run (one checkpoint, one history, one progress bar): a level's result, upsampled, starts the next one.
:func:`featstat.texture.synthesis.synthesize` builds them; the loop owns progress, history, callbacks,
Ctrl-C / SIGTERM, checkpoints and the resume check, and resumes bit for bit on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..objective.core import Objective

__all__ = ["LevelRun", "PyramidRun", "loss_generators"]


def loss_generators(objective: Objective) -> dict[str, torch.Generator]:
    """torch.Generators held by the objective's losses (e.g. CX sampling): saved with checkpoints."""
    found = {}
    for mname, module in objective.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f"{mname}.{attr}"] = value
    return found


class LevelRun:
    """One level of a pixel optimisation (see the module docstring).

    Args:
        objective: the :class:`~featstat.Objective` (called with ``validate=False``: the iterate leaves
            [0, 1] between steps).
        targets: name → target image of this level. guides: name → mask the objective's terms name.
        x0: 1×3×h×w starting image (copied).
        optimizer: "lbfgs" or "adam". lr: step size. line_search: None or "strong_wolfe" (L-BFGS).
        history_size: L-BFGS memory. range_weight: weight of the out-of-range penalty (scaled units).
        view: the images the objective sees, ``view(x)`` (e.g. x and x rolled by half, for tileable
            textures); identity by default.
        settings: resume-relevant settings (JSON-able) for :meth:`fingerprint` when run alone.
    """

    kind = "texture-level"

    def __init__(
        self,
        objective: Objective,
        targets: Mapping[str, Tensor],
        x0: Tensor,
        *,
        guides: Mapping[str, Tensor] | None = None,
        optimizer: str = "lbfgs",
        lr: float = 1.0,
        line_search: str | None = "strong_wolfe",
        history_size: int = 100,
        range_weight: float = 1.0,
        view: Callable[[Tensor], Tensor] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.objective, self.targets, self.guides = objective, dict(targets), dict(guides or {})
        self.optimizer_name, self.range_weight = optimizer, range_weight
        self.view = view if view is not None else (lambda x: x)
        self.settings = dict(settings or {})
        self.x = x0.detach().clone().requires_grad_(True)
        if optimizer == "lbfgs":
            self.opt: torch.optim.Optimizer = torch.optim.LBFGS(
                [self.x],
                lr=lr,
                max_iter=1,
                max_eval=20,
                history_size=history_size,
                line_search_fn=line_search,
                tolerance_grad=0.0,
                tolerance_change=0.0,
            )
        else:
            self.opt = torch.optim.Adam([self.x], lr=lr)
        #: the loss scale s (None until the first evaluation); evaluations of the objective so far
        self.loss_scale: float | None = None
        self.evaluations = 0

    def fingerprint(self) -> Mapping[str, Any]:
        return self.settings

    def _evaluate(self, first: bool, values: dict[str, float]) -> Tensor:
        self.opt.zero_grad(set_to_none=True)
        out = self.objective(self.view(self.x), self.targets, guides=self.guides, validate=False)
        if self.loss_scale is None:
            # the first evaluation of a level fixes the loss scale: gradient RMS 1 per pixel
            (grad,) = torch.autograd.grad(out.total, self.x, retain_graph=True)
            rms = float(grad.square().mean().sqrt())
            self.loss_scale = 1.0 / rms if rms > 0 and math.isfinite(rms) else 1.0
        outside = (self.x - self.x.clamp(0, 1)).square().sum()
        scaled = out.total * self.loss_scale + self.range_weight * outside
        scaled.backward()
        self.evaluations += 1
        if first:
            values["total"] = float(out.total.detach())
            values.update({k: float(v.detach()) for k, v in out.terms.items()})
        return scaled.detach()

    def step(self, step: int) -> dict[str, float]:
        """One optimiser step; returns "total" and each term, evaluated at the start of the step."""
        values: dict[str, float] = {}
        calls = {"n": 0}

        def closure() -> Tensor:
            calls["n"] += 1
            return self._evaluate(calls["n"] == 1, values)

        if self.optimizer_name == "lbfgs":
            self.opt.step(closure)
        else:
            closure()
            self.opt.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
        return values

    def state_dict(self) -> dict[str, Any]:
        return {
            "image": self.x.detach().cpu().clone(),
            "optimizer": self.opt.state_dict(),
            "loss_scale": self.loss_scale,
            "evaluations": self.evaluations,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.x.copy_(state["image"].to(device=self.x.device, dtype=self.x.dtype))
        self.opt.load_state_dict(state["optimizer"])
        self.loss_scale = state["loss_scale"]
        self.evaluations = int(state["evaluations"])


class PyramidRun:
    """The levels of a coarse-to-fine synthesis as one Run (stages; see the module docstring).

    Args:
        new_level: ``new_level(level, x0)`` → the :class:`LevelRun` of ``level`` starting from ``x0``.
        first_image: ``first_image()`` → the starting image of level 0 (1×3×h₀×w₀).
        level_sizes: (h, w) per level, coarsest first. level_steps: steps per level.
        settings: the resume-relevant settings (:meth:`fingerprint`; the steps are not among them: a resumed
            run may be given more).
        stop_below: a level ends as soon as its objective (unscaled) is at or below this value.
        generators: torch.Generators of the objective's losses, saved with the state.
    """

    kind = "texture-synthesis"

    def __init__(
        self,
        new_level: Callable[[int, Tensor], LevelRun],
        first_image: Callable[[], Tensor],
        level_sizes: Sequence[tuple[int, int]],
        level_steps: Sequence[int],
        settings: Mapping[str, Any],
        *,
        stop_below: float | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
    ) -> None:
        self.new_level, self.level_sizes, self.level_steps = new_level, list(level_sizes), list(level_steps)
        self.settings, self.stop_below = dict(settings), stop_below
        self.generators = dict(generators or {})
        self.level, self.level_step, self.stopped = 0, 0, False
        self.current = new_level(0, first_image())
        self.evaluations_before = 0  # evaluations of the levels before the current one
        self.seconds_before, self._t0 = 0.0, time.perf_counter()
        self.last: dict[str, Any] = {}

    # -- stages ---------------------------------------------------------------------------------------

    def _level_done(self) -> bool:
        return self.stopped or self.level_step >= self.level_steps[self.level]

    def _next_level(self) -> None:
        x_prev = self.current.x.detach()
        self.evaluations_before += self.current.evaluations
        self.level, self.level_step, self.stopped = self.level + 1, 0, False
        x0 = F.interpolate(x_prev, size=self.level_sizes[self.level], mode="bilinear", align_corners=False)
        self.current = self.new_level(self.level, x0)

    @property
    def finished(self) -> bool:
        """True when no level has steps left (the current one is done and the later ones have none)."""
        return self._level_done() and not any(self.level_steps[self.level + 1 :])

    def image(self) -> Tensor:
        """The current iterate at the finest size (later levels with 0 steps pass it on), detached."""
        while self.level < len(self.level_sizes) - 1 and self._level_done():
            self._next_level()
        return self.current.x.detach()

    # -- the Run protocol -------------------------------------------------------------------------------

    def fingerprint(self) -> Mapping[str, Any]:
        return self.settings

    def step(self, step: int) -> dict[str, Any]:
        while self._level_done():
            if self.level == len(self.level_sizes) - 1:
                # a resumed run asked for more steps than the last level has left (e.g. it had stopped
                # below stop_below): the last level continues
                self.stopped = False
                break
            self._next_level()
        values = self.current.step(self.level_step)
        self.level_step += 1
        if self.stop_below is not None and values["total"] <= self.stop_below:
            self.stopped = True
        self.last = {
            "loss": values["total"],  # the progress bar's number
            **values,
            "seconds": self.seconds_before + time.perf_counter() - self._t0,
            "scale": self.level,
            "evaluations": self.evaluations_before + self.current.evaluations,
        }
        return self.last

    def log(self, step: int, means: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        return {"step": step, **self.last}

    def state_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "level_step": self.level_step,
            "stopped": self.stopped,
            "current": self.current.state_dict(),
            "evaluations_before": self.evaluations_before,
            "seconds": self.seconds_before + time.perf_counter() - self._t0,
            "generators": {k: g.get_state() for k, g in self.generators.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        level = int(state["level"])
        if level >= len(self.level_sizes):
            raise ValueError(f"the checkpoint is at level {level} but this run has {len(self.level_sizes)}")
        self.level, self.level_step, self.stopped = level, int(state["level_step"]), bool(state["stopped"])
        image = state["current"]["image"]
        self.current = self.new_level(level, image.to(self.current.x.device, self.current.x.dtype))
        self.current.load_state_dict(state["current"])
        self.evaluations_before = int(state["evaluations_before"])
        self.seconds_before, self._t0 = float(state["seconds"]), time.perf_counter()
        for key, g in self.generators.items():
            if key in state["generators"]:
                g.set_state(state["generators"][key])
