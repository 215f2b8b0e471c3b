"""Statistics and divergences over images and feature sets.

Each loss is a module (configuration, cached target statistic) with a functional twin in
:mod:`featstat.losses.functional`. :data:`LOSSES` (the loss registry) maps the names used by configs and
the CLI to classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..registry import LOSSES as _LOSSES
from ..registry import AliasView, Registry
from . import functional
from .adversarial import DiscriminatorLoss, GeneratorAdversarialLoss
from .base import FeatureLoss
from .contextual import ChamferLoss, ContextualLoss, ContextualTarget
from .diversity import DiversityLoss
from .gram import GramLoss, GuidedGramLoss
from .perceptual import PerceptualLoss
from .pixel import L1Loss, L2Loss, LowFrequencyL2Loss, TotalVariationLoss
from .projected import ProjectedDistributionLoss, SlicedWassersteinLoss

#: Loss classes by the name configs use (``loss = "contextual"``); constructor keywords are the options.
#: The one loss registry (:data:`featstat.registry.LOSSES`), a read-only mapping of canonical names; a module
#: in this package that registers a class (``@LOSSES.register("name", "alias")``) is found on first lookup.
LOSSES: Registry[type[FeatureLoss]] = _LOSSES

#: Short aliases accepted wherever a loss name is (alias → canonical name; a live view of the registry).
ALIASES: Mapping[str, str] = AliasView(_LOSSES)


def get_loss(name: str) -> type[FeatureLoss]:
    """The loss class registered under ``name`` (or an alias); a ValueError names the closest name and lists
    the valid ones. Same as ``featstat.registry.LOSSES.get(name)``."""
    return LOSSES.get(name)


def distribution_statistics() -> list[str]:
    """Canonical names of the registered losses that compare feature distributions (the classes'
    ``distribution_statistic`` fact): the choices of texture ``--statistic`` and of derived deep metrics."""
    return LOSSES.names(distribution_statistic=True)


__all__ = [
    "ALIASES",
    "LOSSES",
    "ChamferLoss",
    "ContextualLoss",
    "ContextualTarget",
    "DiscriminatorLoss",
    "DiversityLoss",
    "FeatureLoss",
    "GeneratorAdversarialLoss",
    "GramLoss",
    "GuidedGramLoss",
    "L1Loss",
    "L2Loss",
    "LowFrequencyL2Loss",
    "PerceptualLoss",
    "ProjectedDistributionLoss",
    "SlicedWassersteinLoss",
    "TotalVariationLoss",
    "distribution_statistics",
    "functional",
    "get_loss",
]
