"""Input validation and reduction shared by every public function.

Every check raises ``ValueError`` with a message that names the argument, says what was seen and what
to do. Checks that need a device sync (value ranges, NaN/Inf) are only run at the public boundary of
image-level functions, never inside loss kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of "mean", "sum", "none"; raise a ``ValueError`` otherwise."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(values: Tensor, reduction: str) -> Tensor:
    """Reduce per-sample values (shape N) with "mean", "sum" or "none" (returned unchanged)."""
    check_reduction(reduction)
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def check_tensor(
    name: str,
    x: object,
    *,
    ndim: int | Sequence[int] = 4,
    channels: int | None = None,
    floating: bool = True,
) -> Tensor:
    """Check that ``x`` is a tensor of the given rank (and channel count), floating point by default.

    Cheap: looks at metadata only, never at values (no device sync).
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        layout = {4: "N×C×H×W", 3: "C×H×W", 2: "N×D"}
        hint = ", ".join(layout.get(r, f"{r}-D") for r in ranks)
        raise ValueError(
            f"{name} must have {want} dimensions ({hint}), got shape {tuple(x.shape)}; "
            f"add a batch dimension with x.unsqueeze(0) if you passed a single image"
        )
    if floating and x.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} must be a floating-point tensor (float16/bfloat16/float32/float64), got {x.dtype}; "
            f"convert with x.float() (images: divide uint8 values by 255)"
        )
    if channels is not None and x.dim() == 4 and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (dimension 1), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    return x


def check_finite(name: str, x: Tensor) -> Tensor:
    """Raise if ``x`` holds NaN or Inf (one device sync)."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values; check the computation that produced it")
    return x


def check_image(name: str, x: object, *, channels: int | None = 3, tolerance: float = 1e-3) -> Tensor:
    """Validate an image batch: N×C×H×W floating tensor, finite, values in [0, 1].

    Values slightly outside [0, 1] (by ``tolerance``, e.g. from interpolation) are accepted; values in
    [-1, 1] or 0-255 are rejected with a message saying how to convert them.
    """
    x = check_tensor(name, x, ndim=4, channels=channels)
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))  # one pass; NaN propagates into lo/hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or Inf values; check the computation that produced it")
    if lo < -tolerance or hi > 1 + tolerance:
        if hi > 2:
            fix = "divide by 255 if these are 8-bit values"
        elif lo < -tolerance:
            fix = "map [-1, 1] images with (x + 1) / 2"
        else:
            fix = "clamp with x.clamp(0, 1)"
        raise ValueError(f"{name} must hold values in [0, 1], got range [{lo:.4g}, {hi:.4g}]; {fix}")
    return x


def check_same_batch(pred: Tensor, target: Tensor, *, names: tuple[str, str] = ("pred", "target")) -> None:
    """Raise unless ``target`` has the batch size of ``pred`` (or 1, to broadcast) and the same channels."""
    a, b = names
    if target.shape[0] not in (1, pred.shape[0]):
        raise ValueError(
            f"{b} batch size must be 1 or equal to {a}'s ({pred.shape[0]}), got shape {tuple(target.shape)}"
        )
    if pred.dim() == 4 and target.dim() == 4 and pred.shape[1] != target.shape[1]:
        raise ValueError(
            f"{a} and {b} must have the same number of channels, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}; were they taken from the same layer?"
        )


def check_same_shape(pred: Tensor, target: Tensor, *, names: tuple[str, str] = ("pred", "target")) -> None:
    """Raise unless ``pred`` and ``target`` have the same shape (target batch 1 broadcasts)."""
    check_same_batch(pred, target, names=names)
    if pred.shape[1:] != target.shape[1:]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape for this (pointwise) loss, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}; use a distribution loss (Gram, contextual, "
            f"projected) to compare maps of different sizes"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite positive number (or zero when allowed)."""
    ok = isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half types (accumulate in float32), else the tensor's own dtype."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def make_generator(seed: int | torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed (int), an existing generator (returned as is), or None (seed 0)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else seed)
    return g
