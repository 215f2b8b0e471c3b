"""Functional forms of every featstat loss: plain functions on tensors (what tests and power users call).

Each has a module counterpart in :mod:`featstat.losses` holding its configuration and cached target statistic.
"""

from __future__ import annotations

from .adversarial import discriminator_loss, generator_adversarial_loss
from .contextual import (
    bilateral_contextual_loss,
    chamfer_distance,
    contextual_loss,
    contextual_similarity,
    prepare_contextual_target,
)
from .diversity import diversity_loss, nearest_neighbour_distance
from .frechet import frechet_distance
from .gram import gram_loss, gram_matrix, texture_loss
from .perceptual import perceptual_loss
from .pixel import gaussian_blur, l1_loss, l2_loss, low_frequency_l2_loss, total_variation
from .projected import (
    make_projections,
    projected_distribution_loss,
    sliced_wasserstein_loss,
    wasserstein_1d,
)

__all__ = [
    "bilateral_contextual_loss",
    "chamfer_distance",
    "contextual_loss",
    "contextual_similarity",
    "discriminator_loss",
    "diversity_loss",
    "frechet_distance",
    "gaussian_blur",
    "generator_adversarial_loss",
    "gram_loss",
    "gram_matrix",
    "l1_loss",
    "l2_loss",
    "low_frequency_l2_loss",
    "make_projections",
    "nearest_neighbour_distance",
    "perceptual_loss",
    "prepare_contextual_target",
    "projected_distribution_loss",
    "sliced_wasserstein_loss",
    "texture_loss",
    "total_variation",
    "wasserstein_1d",
]
