"""Weighted sums of loss terms over shared feature passes.

- :mod:`featstat.objective.core` — :class:`Term` and :class:`Objective` (one backbone pass per image for all
  terms on it, cached target statistics).
- :mod:`featstat.objective.config` — the one builder from a dict / TOML specification
  (:func:`build_objective`).
"""

from __future__ import annotations

from .config import build_objective, load_config
from .core import PIXELS, Objective, ObjectiveOutput, Term

__all__ = ["PIXELS", "Objective", "ObjectiveOutput", "Term", "build_objective", "load_config"]
