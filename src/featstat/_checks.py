"""Input validation and reduction shared by every public function.

Every check raises ``ValueError`` with a message that names the argument, says what was seen and what
to do. Checks that need a device sync (value ranges, NaN/Inf) are only run at the public boundary of
image-level functions, never inside loss kernels.

**Value checks** (NaN/Inf and the [0, 1] range of images, one ``aminmax`` per image per call) are on by
default. One switch turns them off, e.g. inside a hot training loop whose inputs are known to be good:
:func:`set_value_checks` / the context manager :func:`value_checks`, or the environment variable
``FEATSTAT_VALUE_CHECKS=0`` (read when featstat is imported; the function overrides it). Metadata checks
(rank, dtype, channels, batch, device, sizes) are free and always run.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

_F = TypeVar("_F", bound=Callable[..., Any])

REDUCTIONS = ("mean", "sum", "none")
#: Largest kernel / window side any option accepts (checked before anything is allocated).
MAX_KERNEL_SIZE = 1025
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


ENV_VALUE_CHECKS = "FEATSTAT_VALUE_CHECKS"
_OFF = ("0", "false", "no", "off")
_ON = ("", "1", "true", "yes", "on")


def _value_checks_from_env() -> bool:
    raw = os.environ.get(ENV_VALUE_CHECKS, "").strip().lower()
    if raw in _OFF:
        return False
    if raw not in _ON:
        raise ValueError(
            f"environment variable {ENV_VALUE_CHECKS}={raw!r} is not understood; set it to 0 (value checks "
            f"off) or 1 (on, the default)"
        )
    return True


_value_checks = _value_checks_from_env()


def value_checks_enabled() -> bool:
    """Whether value checks (NaN/Inf, image ranges) run; see the module docstring."""
    return _value_checks


def set_value_checks(enabled: bool) -> bool:
    """Turn value checks (NaN/Inf and [0, 1] range of images at public entry points) on or off for the
    whole process; returns the previous setting. Same effect as ``FEATSTAT_VALUE_CHECKS=0`` / ``=1``."""
    global _value_checks
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True or False, got {enabled!r}")
    previous, _value_checks = _value_checks, enabled
    return previous


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Context manager: value checks on/off inside the block, restored afterwards::

    with featstat.value_checks(False):   # a hot loop over inputs known to be valid
        for batch in loader: ...
    """
    previous = set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(previous)


class FileLoadError(ValueError):
    """A file (weights, checkpoint, config) is missing, damaged or not of the expected kind.

    The one error every featstat loader raises for a bad file; the message names the file, what is wrong
    with it and what to do. A ``ValueError``, so ``except ValueError`` keeps working.
    """


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
            f"add a batch dimension with {name}.unsqueeze(0) if you passed a single image"
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
    if x.device.type == "meta":
        raise ValueError(
            f"{name} is on the 'meta' device (a tensor without data, shape {tuple(x.shape)}); create it on "
            f"a real device (cpu, cuda) or move it there with .to(device)"
        )
    return x


def check_finite(name: str, x: Tensor) -> Tensor:
    """Raise if ``x`` holds NaN or Inf (one device sync). Always runs: use it for options and files (masks,
    matrices, weights), not per-step inputs (those go through :func:`check_image`, which obeys the switch)."""
    if x.is_complex():
        raise ValueError(f"{name} holds complex values ({x.dtype}); featstat works on real tensors")
    if (x.is_floating_point()) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values; check the computation that produced it")
    return x


def check_values(name: str, x: Tensor, *, validate: bool | None = None) -> Tensor:
    """Raise if ``x`` holds NaN or Inf: the value check of feature tensors at a public boundary (one device
    sync), run when ``validate`` is True, or None (default) and value checks are on
    (:func:`set_value_checks`)."""
    if not (_value_checks if validate is None else validate) or not x.is_floating_point():
        return x
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(
            f"{name} contains NaN or Inf values; check the computation that produced it (value checks can be "
            "turned off with featstat.set_value_checks(False) or FEATSTAT_VALUE_CHECKS=0)"
        )
    return x


def check_image(
    name: str,
    x: object,
    *,
    channels: int | None = 3,
    tolerance: float = 1e-3,
    validate: bool | None = None,
) -> Tensor:
    """Validate an image batch: N×C×H×W floating tensor, finite, values in [0, 1].

    Values slightly outside [0, 1] (by ``tolerance``, e.g. from interpolation) are accepted; values in
    [-1, 1] or 0-255 are rejected with a message saying how to convert them. The value part (one
    ``aminmax``) runs when ``validate`` is True, or when it is None (default) and value checks are on
    (:func:`set_value_checks`); the metadata part always runs.
    """
    x = check_tensor(name, x, ndim=4, channels=channels)
    if not (_value_checks if validate is None else validate):
        return x
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


def check_same_device(a: Tensor, b: Tensor, *, names: tuple[str, str] = ("pred", "target")) -> None:
    """Raise unless ``a`` and ``b`` live on the same device."""
    if a.device != b.device:
        raise ValueError(
            f"{names[0]} and {names[1]} must be on the same device, got {a.device} and {b.device}; move one "
            f"with .to({names[0]}.device)"
        )


def check_same_batch(pred: Tensor, target: Tensor, *, names: tuple[str, str] = ("pred", "target")) -> None:
    """Raise unless ``target`` has the batch size of ``pred`` (or 1, to broadcast), the same channels and
    the same device."""
    a, b = names
    check_same_device(pred, target, names=names)
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


def check_number(
    name: str, value: object, *, low: float | None = None, high: float | None = None, hint: str = ""
) -> float:
    """Raise unless ``value`` is a finite real number (not a bool, not a string) in [``low``, ``high``]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and ((low is not None and value < low) or (high is not None and value > high)):
        ok = False
    if not ok:
        bounds = ""
        if low is not None and high is not None:
            bounds = f" in [{low:g}, {high:g}]"
        elif low is not None:
            bounds = f" >= {low:g}"
        elif high is not None:
            bounds = f" <= {high:g}"
        tail = f"; {hint}" if hint else ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}{tail}")
    return float(value)  # type: ignore[arg-type]


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite positive number (or zero when allowed)."""
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_int(name: str, value: object, *, low: int = 1, high: int | None = None, odd: bool = False) -> int:
    """Raise unless ``value`` is an int (not a bool) in [``low``, ``high``] (and odd when asked).

    Use it for sizes before anything is allocated: ``high`` is the largest size that can make sense (e.g. a
    kernel no larger than any image), so a typo such as ``kernel_size=10**9`` is refused, not allocated.
    """
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None and value > high:  # type: ignore[operator]
        raise ValueError(
            f"{name} must be at most {high}, got {value!r}; sizes that large cannot fit an image (check "
            f"the units: this is a count of pixels/elements)"
        )
    if ok and odd and value % 2 == 0:  # type: ignore[operator]
        ok = False
    if not ok:
        what = "an odd integer" if odd else "an integer"
        raise ValueError(f"{name} must be {what} >= {low}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def check_device(name: str, device: object) -> torch.device | None:
    """``device`` (None, a string such as "cpu"/"cuda:0", or a ``torch.device``) as a ``torch.device``;
    ``ValueError`` naming the argument for unknown strings ("gpu") or devices this build/machine lacks."""
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"{name} must be a device string such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"{name}={device!r} is not a device; use 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
        ) from exc
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{name}={device!r} asks for CUDA, but no CUDA device is available; use 'cpu'")
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"{name}={device!r}: there are only {count} CUDA device(s) (indices 0..{count - 1})"
            )
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{name}={device!r} asks for MPS, which this machine lacks; use 'cpu'")
    elif dev.type == "meta":
        raise ValueError(f"{name}={device!r}: the meta device holds no data; use 'cpu' or 'cuda'")
    return dev


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


def legacy_arguments(
    *, renamed: Mapping[str, str] | None = None, positional: Sequence[str] = ()
) -> Callable[[_F], _F]:
    """Keep a function's 0.1 argument spellings working for one release, each use with a DeprecationWarning.

    ``renamed`` maps an old keyword to its new name (``{"x": "pred", "y": "target"}``); ``positional`` names,
    in their old order, the arguments that used to be accepted positionally after the function's current
    positional parameters and are now keyword-only (``("reduction",)``). Passing both spellings of one
    argument is a ``TypeError``, as a duplicate argument always is. The signature seen by ``inspect`` and
    documentation tools is the new one.
    """
    renamed = dict(renamed or {})

    def wrap(fn: _F) -> _F:
        params = inspect.signature(fn).parameters.values()
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        n_positional = sum(p.kind in kinds for p in params)
        where = fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(positional):
                    raise TypeError(f"{where}() takes {n_positional} positional arguments "
                                    f"but {len(args)} were given")
                names = positional[: len(extra)]
                for name, value in zip(names, extra, strict=True):
                    if name in kwargs:
                        raise TypeError(f"{where}() got multiple values for argument {name!r}")
                    kwargs[name] = value
                args = args[:n_positional]
                warnings.warn(f"{where}(): pass {', '.join(names)} by keyword (positional use is deprecated "
                              "since featstat 0.2, removed in 0.3)", DeprecationWarning, stacklevel=2)
            for old in [k for k in kwargs if k in renamed]:
                new = renamed[old]
                if new in kwargs:
                    raise TypeError(f"{where}() got both {old!r} (its old name) and {new!r}")
                kwargs[new] = kwargs.pop(old)
                warnings.warn(f"{where}(): the argument {old!r} is now {new!r} (the old name is deprecated "
                              "since featstat 0.2, removed in 0.3)", DeprecationWarning, stacklevel=2)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap
