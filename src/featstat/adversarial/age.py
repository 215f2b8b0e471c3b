"""Adversarial Generator-Encoder networks (AGE; thesis ch. 4, eqs. 4.1–4.7): the latent divergences, the
reconstruction losses and the two players' objectives, plus DCGAN-like encoder and generator networks.

The encoder e maps images onto the unit sphere S^M (its last layer normalises), the generator g maps latent
codes to images. With Δ a divergence to the canonical distribution Z in latent space, the game (eq. 4.2) is

    max_e min_g V₂(g, e) = Δ(e(g(Z)) ‖ Z) − Δ(e(X) ‖ Z)

and training alternates (eqs. 4.5–4.6)

    generator:  min_θ  V₂(g_θ, e) + λ · L_Z,    L_Z = E_z ‖z − e(g(z))‖²₂            (eq. 4.4)
    encoder:    max_ψ  V₂(g, e_ψ) − μ · L_X,    L_X = E_x ‖x − g(e(x))‖₁             (eq. 4.3)

with two generator updates per encoder update, Adam 2·10⁻⁴, λ ∈ {500, 1000, 2000}, μ = 10 (the thesis'
settings). Δ is eq. 4.7 — the KL divergence of a diagonal Gaussian fitted to the codes from N(0, I), per
dimension — or the non-parametric Kozachenko–Leonenko estimate of the same divergence
(:func:`kl_divergence_knn`).

Scale convention: L_X and L_Z are *means* over elements (per pixel, per latent dimension) rather than sums,
so that λ and μ keep the thesis' values at any image or latent size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_same_shape, check_tensor, compute_dtype, make_generator
from ..losses.diversity import nearest_neighbour_distance

__all__ = [
    "DIVERGENCES",
    "AGEEncoder",
    "AGEGenerator",
    "age_encoder_loss",
    "age_generator_loss",
    "data_reconstruction_loss",
    "gaussian_kl_divergence",
    "kl_divergence_knn",
    "latent_divergence",
    "latent_reconstruction_loss",
    "sample_sphere",
]

DIVERGENCES = ("gaussian", "knn")


def _codes(name: str, z: object) -> Tensor:
    t = check_tensor(name, z, ndim=2)
    if t.shape[0] < 2:
        raise ValueError(
            f"{name} must hold at least 2 codes (N×M) to fit a distribution, got {tuple(t.shape)}"
        )
    return t.to(compute_dtype(t))


def gaussian_kl_divergence(z: Tensor, eps: float = 1e-8) -> Tensor:
    """Eq. 4.7: KL(Q ‖ N(0, I)) per dimension for the diagonal Gaussian Q fitted to the codes z (N×M):

        −½ + (1/M) Σ_j [ (s_j² + m_j²)/2 − ln s_j ]

    m_j, s_j: the mean and (maximum-likelihood, 1/N) standard deviation of dimension j. Zero exactly when
    every dimension has mean 0 and standard deviation 1; ``eps`` keeps ln s finite for a collapsed dimension.
    Returns a scalar (float32 for half inputs)."""
    z = _codes("z", z)
    m = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    return -0.5 + ((var + m.square()) / 2 - 0.5 * torch.log(var + eps)).mean()


def kl_divergence_knn(z: Tensor, eps: float = 1e-12) -> Tensor:
    """KL(Q ‖ N(0, I)) per dimension with Q's entropy from the Kozachenko–Leonenko 1-nearest-neighbour
    estimator (the thesis' non-parametric alternative to eq. 4.7):

        Ĥ(Q) = ψ(N) − ψ(1) + ln c_M + (M/N) Σ_i ln ρ_i,      c_M = π^{M/2} / Γ(M/2 + 1)
        KL = [ E‖z‖²/2 + (M/2) ln 2π − Ĥ(Q) ] / M

    ρ_i: distance from code i to its nearest other code
    (:func:`featstat.losses.diversity.nearest_neighbour_distance`, gradient through each nearest pair).
    Consistent for densities in R^M; for codes on the sphere (a manifold of dimension M − 1) it is a
    relative score, as in the thesis, not an absolute KL.
    """
    z = _codes("z", z)
    n, m = z.shape
    rho, _ = nearest_neighbour_distance(z)
    log_ball = (m / 2) * math.log(math.pi) - math.lgamma(m / 2 + 1)
    entropy = (torch.digamma(torch.tensor(float(n))) - torch.digamma(torch.tensor(1.0))).to(z) + log_ball
    entropy = entropy + m * torch.log(rho + eps).mean()
    cross = z.square().sum(dim=1).mean() / 2 + (m / 2) * math.log(2 * math.pi)
    return (cross - entropy) / m


def latent_divergence(z: Tensor, divergence: str = "gaussian") -> Tensor:
    """Δ(z ‖ Z): "gaussian" (eq. 4.7) or "knn" (Kozachenko–Leonenko)."""
    check_choice("divergence", divergence, DIVERGENCES)
    return gaussian_kl_divergence(z) if divergence == "gaussian" else kl_divergence_knn(z)


def data_reconstruction_loss(x: Tensor, x_rec: Tensor) -> Tensor:
    """Eq. 4.3, L_X = E ‖x − g(e(x))‖₁, as the mean absolute difference over all elements."""
    x = check_tensor("x", x, ndim=(2, 3, 4))
    x_rec = check_tensor("x_rec", x_rec, ndim=x.dim())
    check_same_shape(x, x_rec, names=("x", "x_rec"))
    return (x.to(compute_dtype(x)) - x_rec.to(compute_dtype(x))).abs().mean()


def latent_reconstruction_loss(z: Tensor, z_rec: Tensor) -> Tensor:
    """Eq. 4.4, L_Z = E ‖z − e(g(z))‖²₂, as the mean squared difference over all elements."""
    z = check_tensor("z", z, ndim=2)
    z_rec = check_tensor("z_rec", z_rec, ndim=2)
    check_same_shape(z, z_rec, names=("z", "z_rec"))
    return (z.to(compute_dtype(z)) - z_rec.to(compute_dtype(z))).square().mean()


def age_generator_loss(
    e_gz: Tensor, z: Tensor, *, weight: float = 1000.0, divergence: str = "gaussian"
) -> Tensor:
    """The generator's objective, eq. 4.5: Δ(e(g(z)) ‖ Z) + λ·L_Z(z, e(g(z))) (the −Δ(e(X)) term of V₂ does
    not depend on g). ``e_gz``: codes of the generated images (N×M), ``z``: the codes they were made from."""
    return latent_divergence(e_gz, divergence) + weight * latent_reconstruction_loss(z, e_gz)


def age_encoder_loss(
    e_x: Tensor, e_gz: Tensor, x: Tensor, x_rec: Tensor, *, weight: float = 10.0, divergence: str = "gaussian"
) -> Tensor:
    """The encoder's objective, eq. 4.6, as a loss to minimise:
    −[Δ(e(g(z)) ‖ Z) − Δ(e(x) ‖ Z)] + μ·L_X(x, g(e(x)))."""
    v2 = latent_divergence(e_gz, divergence) - latent_divergence(e_x, divergence)
    return -v2 + weight * data_reconstruction_loss(x, x_rec)


def sample_sphere(n: int, dim: int, *, seed: int | torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> Tensor:  # fmt: skip
    """n codes uniform on the unit sphere of R^dim (normalised Gaussians), N×dim."""
    g = make_generator(seed, device)
    return F.normalize(torch.randn(n, dim, generator=g, device=device), dim=1)


class AGEEncoder(nn.Module):
    """DCGAN-discriminator-like encoder onto the unit sphere S^M (thesis 4.3.1): stride-2 4×4 convolutions
    (BN after all but the first, LeakyReLU 0.2) down to 4×4, a 4×4 convolution to M channels, then the
    normalisation layer that projects onto the sphere.

    ``forward(x, condition=None)``: x N×C×H×W in [0, 1] (H = W = a power of two ≥ 8); ``condition``
    (N×K×H×W, e.g. the L channel for colourisation, section 4.3.2) is stacked with x. Returns N×M unit
    vectors.
    """

    def __init__(self, latent: int = 64, *, size: int = 32, channels: int = 3, condition: int = 0,
                 width: int = 64) -> None:  # fmt: skip
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two ≥ 8, got {size}")
        layers: list[nn.Module] = []
        ch, side, out = channels + condition, size, width
        first = True
        while side > 4:
            layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1, bias=first))
            if not first:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            ch, side, out, first = out, side // 2, min(out * 2, 512), False
        layers.append(nn.Conv2d(ch, latent, 4))
        self.net = nn.Sequential(*layers)
        self.latent, self.size, self.channels, self.condition = latent, size, channels, condition

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        x = check_tensor("x", x, ndim=4, channels=self.channels)
        if self.condition:
            if condition is None:
                raise ValueError(f"condition (N×{self.condition}×H×W) is required by this encoder")
            x = torch.cat([x, condition.to(x)], dim=1)
        return F.normalize(self.net(x * 2 - 1).flatten(1), dim=1)


class AGEGenerator(nn.Module):
    """DCGAN-like generator from the sphere: a 4×4 transposed convolution from M channels, stride-2 4×4
    transposed convolutions with BN + ReLU up to ``size``, tanh mapped to [0, 1]. ``forward(z)``: z N×M →
    N×C×size×size."""

    def __init__(self, latent: int = 64, *, size: int = 32, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two ≥ 8, got {size}")
        steps = int(math.log2(size // 4))
        chans = [min(width * 2 ** (steps - 1 - i), 512) for i in range(steps)]
        self.stem = nn.Sequential(
            nn.ConvTranspose2d(latent, chans[0], 4, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU()
        )
        self.ups = nn.ModuleList()
        for i in range(steps):
            cin = chans[i]
            last = i == steps - 1
            cout = channels if last else chans[i + 1]
            block: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=last)]
            if not last:
                block += [nn.BatchNorm2d(cout), nn.ReLU()]
            self.ups.append(nn.Sequential(*block))
        self.latent, self.size, self.channels = latent, size, channels

    def forward(self, z: Tensor) -> Tensor:
        z = check_tensor("z", z, ndim=2)
        if z.shape[1] != self.latent:
            raise ValueError(f"z must be N×{self.latent}, got {tuple(z.shape)}")
        h = self.stem(z[:, :, None, None])
        for up in self.ups:
            h = up(h)
        return (torch.tanh(h) + 1) / 2
