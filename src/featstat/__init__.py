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

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

#: Modules renamed in 0.2 (see CHANGELOG.md): the old names still import, with a DeprecationWarning, until
#: 0.3.
MOVED: dict[str, str] = {
    "featstat.synthesis": "featstat.texture.synthesis",
    "featstat.training": "featstat.restoration",
    "featstat.training.texture": "featstat.texture.training",
    "featstat.training.trainer": "featstat.restoration.trainer",
    "featstat.training.recipes": "featstat.restoration.recipes",
    "featstat.training.data": "featstat.restoration.data",
    "featstat.degrade": "featstat.restoration.degrade",
    "featstat.objective_config": "featstat.objective.config",
    "featstat.runs": "featstat.engine.runs",
    "featstat.precision": "featstat.engine.precision",
    "featstat.cli_common": "featstat.cli._common",
    "featstat.cli_synthesis": "featstat.cli.texture",
    "featstat.cli_prior": "featstat.cli.prior",
    "featstat.cli_restore": "featstat.cli.restoration",
    "featstat.cli_metrics": "featstat.cli.metrics",
    "featstat.cli_weights": "featstat.cli.weights",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module it moved to (one object under both names)."""

    _specs: dict[str, Any] = {}  # noqa: RUF012

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} is now {new}; the old name will be removed in featstat 0.3",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        self._specs[new] = module.__spec__  # the import system overwrites __spec__ after this returns
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

# Names are imported on first use (PEP 562), so that `featstat --help` and `python -m featstat --help` do not
# load torch; `featstat.vgg19`, `from featstat import Objective` etc. work as plain imports would.
_LAZY: dict[str, str] = {
    "features": "", "io": "", "losses": "",
    "FeatureExtractor": "features", "PatchExtractor": "features", "alexnet": "features",
    "squeezenet1_1": "features", "vgg16": "features", "vgg19": "features",
    "read_image": "io", "read_images": "io", "write_image": "io",
    "LOSSES": "losses", "ChamferLoss": "losses", "ContextualLoss": "losses", "DiversityLoss": "losses",
    "GramLoss": "losses", "L1Loss": "losses", "L2Loss": "losses", "LowFrequencyL2Loss": "losses",
    "PerceptualLoss": "losses", "ProjectedDistributionLoss": "losses", "SlicedWassersteinLoss": "losses",
    "TotalVariationLoss": "losses",
    "chamfer_distance": "losses.functional", "contextual_loss": "losses.functional",
    "gram_loss": "losses.functional", "projected_distribution_loss": "losses.functional",
    "Objective": "objective", "ObjectiveOutput": "objective", "Term": "objective",
    "FileLoadError": "_checks", "set_value_checks": "_checks", "value_checks": "_checks",
    "value_checks_enabled": "_checks",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            module = importlib.import_module(f"{__name__}.{name}")  # any subpackage: featstat.metrics, ...
            globals()[name] = module
            return module
        raise AttributeError(f"module 'featstat' has no attribute {name!r}")
    where = _LAZY[name]
    value: Any = importlib.import_module(f"{__name__}.{where or name}")
    if where:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
