"""featstat: compare, restore and generate images by the statistics of their deep features.

Layers (each imports only the ones above it): :mod:`featstat.io` → :mod:`featstat.features` →
:mod:`featstat.losses` → :class:`featstat.Objective` → engines and CLI.

Quick start::

    import torch, featstat
    vgg = featstat.features.vgg19(["conv3_4"], weights=None)          # or weights="vgg19" (torchvision file)
    loss = featstat.losses.ContextualLoss(bandwidth=0.1)
    pred, target = torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128)
    value = loss(vgg(pred)["conv3_4"], vgg(target)["conv3_4"])
"""

from __future__ import annotations

from . import features, io, losses
from ._checks import FileLoadError, set_value_checks, value_checks, value_checks_enabled
from .features import FeatureExtractor, PatchExtractor, alexnet, squeezenet1_1, vgg16, vgg19
from .io import read_image, read_images, write_image
from .losses import (
    LOSSES,
    ChamferLoss,
    ContextualLoss,
    DiversityLoss,
    GramLoss,
    L1Loss,
    L2Loss,
    LowFrequencyL2Loss,
    PerceptualLoss,
    ProjectedDistributionLoss,
    SlicedWassersteinLoss,
    TotalVariationLoss,
)
from .losses.functional import (
    chamfer_distance,
    contextual_loss,
    gram_loss,
    projected_distribution_loss,
)
from .objective import Objective, ObjectiveOutput, Term

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "ChamferLoss",
    "ContextualLoss",
    "DiversityLoss",
    "FeatureExtractor",
    "FileLoadError",
    "GramLoss",
    "L1Loss",
    "L2Loss",
    "LowFrequencyL2Loss",
    "Objective",
    "ObjectiveOutput",
    "PatchExtractor",
    "PerceptualLoss",
    "ProjectedDistributionLoss",
    "SlicedWassersteinLoss",
    "Term",
    "TotalVariationLoss",
    "__version__",
    "alexnet",
    "chamfer_distance",
    "contextual_loss",
    "features",
    "gram_loss",
    "io",
    "losses",
    "projected_distribution_loss",
    "read_image",
    "read_images",
    "set_value_checks",
    "squeezenet1_1",
    "value_checks",
    "value_checks_enabled",
    "vgg16",
    "vgg19",
    "write_image",
]
