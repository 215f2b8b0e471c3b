"""Additive white Gaussian noise with explicit units and an explicit seed.

The noise level σ is a number *in the units the caller names*: ``units="unit"`` means σ on the [0, 1] scale
of the images (σ = 0.1 is a tenth of the range), ``units="255"`` means σ in 8-bit levels (σ = 25 is 25/255,
the convention of denoising papers). There is no default: a σ of 25 on [0, 1] images and a σ of 25/255 differ
by a factor of 255, which is exactly the silent error this argument exists to prevent. A positive number is
also accepted as the value of white in σ's units (``units=65535.0`` for 16-bit levels; ``units=255.0`` is
``"255"``).

Random numbers come from ``seed`` (an int, or a ``torch.Generator`` used and advanced as given) and are
drawn on the generator's device — CPU for an int seed — then moved to the images' device, so one seed gives
the same noise on every device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_positive, check_tensor, make_generator

__all__ = ["UNITS", "Seed", "Sigma", "gaussian_noise", "seed_generator", "sigma_range", "white_level"]

#: Named units of a noise level: σ on the [0, 1] scale, or σ in 8-bit levels (0–255).
UNITS = ("unit", "255")
Seed = int | torch.Generator
Sigma = float | tuple[float, float] | Sequence[float]


def white_level(units: str | float) -> float:
    """The value of white (1.0 in the images) in the units of σ: "unit" → 1, "255" → 255, a number → itself.

    Raises ``ValueError`` for anything else: the units must be stated, never guessed.
    """
    if isinstance(units, str):
        if units == "unit":
            return 1.0
        if units == "255":
            return 255.0
        raise ValueError(
            f"units must be 'unit' (σ on the [0, 1] scale) or '255' (σ in 8-bit levels), got {units!r}"
        )
    if isinstance(units, (int, float)) and not isinstance(units, bool):
        return check_positive("units", float(units))
    raise ValueError(
        f"units must be 'unit' (σ on the [0, 1] scale), '255' (σ in 8-bit levels) or the value of white in "
        f"σ's units (a number > 0), got {units!r}"
    )


def sigma_range(name: str, sigma: Sigma) -> tuple[float, float]:
    """(lo, hi) from a number or a (low, high) pair; both ≥ 0 and lo ≤ hi."""
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        check_positive(name, float(sigma), allow_zero=True)
        return float(sigma), float(sigma)
    if isinstance(sigma, Sequence) and not isinstance(sigma, str) and len(sigma) == 2:
        lo, hi = (check_positive(name, float(v), allow_zero=True) for v in sigma)
        if lo > hi:
            raise ValueError(f"{name} range must be (low, high) with low <= high, got {tuple(sigma)}")
        return lo, hi
    raise ValueError(f"{name} must be a number >= 0 or a (low, high) pair, got {sigma!r}")


def seed_generator(seed: object) -> torch.Generator:
    """The ``torch.Generator`` of a required ``seed``: an int seeds a new CPU generator, a generator is used
    as is (and advanced by the draws). None is refused: every random operator states its seed."""
    if seed is None:
        raise ValueError("seed must be an int or a torch.Generator (there is no default seed), got None")
    return make_generator(seed)  # type: ignore[arg-type]


def gaussian_noise(
    images: Tensor,
    sigma: Sigma,
    *,
    units: str | float,
    seed: Seed,
    clip: bool = False,
) -> Tensor:
    """Add white Gaussian noise: ``y = x + (σ / white) · n``, n ~ N(0, 1) i.i.d. per pixel and channel.

    Args:
        images: N×C×H×W, values in [0, 1].
        sigma: standard deviation in ``units``, or a pair (lo, hi) to draw one σ per image uniformly (in
            float64, before converting units: blind denoising).
        units: "unit" (σ on the [0, 1] scale), "255" (σ in 8-bit levels) or the value of white in σ's units.
            Required.
        seed: int or ``torch.Generator``. Draws, in order: the N values of σ (only for a range), then the
            N×C×H×W standard normals (float32), on the generator's device.
        clip: clamp the result to [0, 1] (what saving to a file does; the Deep Image Prior code clips).
            Without clipping the noise is exactly Gaussian.

    Returns N×C×H×W with the dtype and device of ``images``, computed in that dtype.
    """
    x = check_tensor("images", images, ndim=4)
    lo, hi = sigma_range("sigma", sigma)
    white = white_level(units)
    g = seed_generator(seed)
    n = x.shape[0]
    if lo == hi:
        sig = torch.full((n,), lo, dtype=torch.float64)
    else:
        u = torch.rand(n, generator=g, dtype=torch.float64, device=g.device).cpu()
        sig = lo + (hi - lo) * u
    sig = sig / white
    noise = torch.randn(x.shape, generator=g, dtype=torch.float32, device=g.device)
    noise = noise.to(device=x.device, dtype=x.dtype) * sig.to(device=x.device, dtype=x.dtype).view(
        -1, 1, 1, 1
    )
    y = x + noise
    return y.clamp(0, 1) if clip else y
