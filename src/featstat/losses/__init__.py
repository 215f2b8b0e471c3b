"""Statistics and divergences over images and feature sets.

Each loss is a module (configuration, cached target statistic) with a functional twin in
:mod:`featstat.losses.functional`. :data:`LOSSES` maps the names used by configs and the CLI to classes.
"""

from __future__ import annotations

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
LOSSES: dict[str, type[FeatureLoss]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "low_frequency_l2": LowFrequencyL2Loss,
    "total_variation": TotalVariationLoss,
    "perceptual": PerceptualLoss,
    "gram": GramLoss,
    "contextual": ContextualLoss,
    "chamfer": ChamferLoss,
    "projected_distribution": ProjectedDistributionLoss,
    "sliced_wasserstein": SlicedWassersteinLoss,
    "diversity": DiversityLoss,
}

#: Short aliases accepted wherever a loss name is.
ALIASES = {
    "cx": "contextual",
    "pdl": "projected_distribution",
    "tv": "total_variation",
    "mse": "l2",
    "lf_l2": "low_frequency_l2",
    "swd": "sliced_wasserstein",
    "texture": "gram",
}


def get_loss(name: str) -> type[FeatureLoss]:
    """The loss class registered under ``name`` (or an alias); a ValueError lists the valid names."""
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        import difflib

        close = difflib.get_close_matches(name, [*LOSSES, *ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}{hint}")
    return LOSSES[key]


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
    "functional",
    "get_loss",
]
