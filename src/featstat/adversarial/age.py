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

Conditional variant (4.3.2, colourisation): x = the ab channels of a Lab image, L conditions both networks,
g(z | L) is a :class:`~featstat.adversarial.nets.ColorizationGenerator`. ``AGEOptions(objective="l1")`` trains
the same generator as the regression baseline the thesis compares against: z ignored (:class:`L1Colorizer`),
min_θ E ‖x − g(· | L)‖₁, on the same run loop, data and seed. :func:`colorization_diversity` measures how far
the colourisations of one grey image under several z differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import (
    check_choice,
    check_same_shape,
    check_tensor,
    compute_dtype,
    legacy_arguments,
    make_generator,
)
from ..engine.loop import LoopResult
from ..io import list_images, read_image
from ..losses.diversity import nearest_neighbour_distance
from ..ops import lab_to_rgb, rgb_to_lab
from ._runs import drive, load_run
from .nets import ColorizationGenerator

__all__ = [
    "DIVERGENCES",
    "OBJECTIVES",
    "AGEEncoder",
    "AGEGenerator",
    "AGEOptions",
    "AGERun",
    "ColorizationDiversity",
    "L1Colorizer",
    "age_encoder_loss",
    "age_generator_loss",
    "color_transfer",
    "colorization_diversity",
    "colorize",
    "data_reconstruction_loss",
    "gaussian_kl_divergence",
    "kl_divergence_knn",
    "lab_merge",
    "lab_split",
    "latent_divergence",
    "latent_reconstruction_loss",
    "load_age",
    "load_images",
    "sample_sphere",
    "train_age",
]

DIVERGENCES = ("gaussian", "knn")
#: ``AGEOptions.objective``: the AGE game, or (conditional only) the L1 baseline of the same generator
OBJECTIVES = ("age", "l1")


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


def _dcgan_init_(module: nn.Module, seed: int | torch.Generator) -> None:
    """The DCGAN initialisation (Radford et al. 2016) drawn from ``seed``: convolution and transposed
    convolution weights N(0, 0.02), BN weights N(1, 0.02), biases 0 — part of the DCGAN recipe the thesis'
    networks follow (4.3.1). PyTorch's default start gives the generator's last layer 4–7× larger weights
    (3 or 1 channels); on the digits demo the encoder then squeezed every e(g(z)) into one point and the
    latent reconstruction stayed at chance (2/M) in 3 of 3 seeds, against ≈ 0.45·chance from this start."""
    g = make_generator(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.BatchNorm2d):
            with torch.no_grad():
                centre = 1.0 if isinstance(m, nn.BatchNorm2d) else 0.0
                m.weight.copy_(centre + 0.02 * torch.randn(m.weight.shape, generator=g))
                if m.bias is not None:
                    m.bias.zero_()


class AGEEncoder(nn.Module):
    """DCGAN-discriminator-like encoder onto the unit sphere S^M (thesis 4.3.1): stride-2 4×4 convolutions
    (BN after all but the first, LeakyReLU 0.2) down to 4×4, a 4×4 convolution to M channels, then the
    normalisation layer that projects onto the sphere. DCGAN initialisation from ``seed`` (int or
    ``torch.Generator``): weights N(0, 0.02), BN weights N(1, 0.02), biases 0.

    ``forward(x, condition=None)``: x N×C×H×W in [0, 1] (H = W = a power of two ≥ 8); ``condition``
    (N×K×H×W, e.g. the L channel for colourisation, section 4.3.2) is stacked with x. Returns N×M unit
    vectors.
    """

    def __init__(self, latent: int = 64, *, size: int = 32, channels: int = 3, condition: int = 0,
                 width: int = 64, seed: int | torch.Generator = 0) -> None:  # fmt: skip
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
        _dcgan_init_(self, seed)

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
    N×C×size×size. DCGAN initialisation from ``seed`` (as :class:`AGEEncoder`)."""

    def __init__(self, latent: int = 64, *, size: int = 32, channels: int = 3, width: int = 64,
                 seed: int | torch.Generator = 0) -> None:  # fmt: skip
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
        _dcgan_init_(self, seed)

    def forward(self, z: Tensor) -> Tensor:
        z = check_tensor("z", z, ndim=2)
        if z.shape[1] != self.latent:
            raise ValueError(f"z must be N×{self.latent}, got {tuple(z.shape)}")
        h = self.stem(z[:, :, None, None])
        for up in self.ups:
            h = up(h)
        return (torch.tanh(h) + 1) / 2


class L1Colorizer(ColorizationGenerator):
    """The L1-regression baseline of conditional AGE (``AGEOptions(objective="l1")``): exactly the
    :class:`~featstat.adversarial.nets.ColorizationGenerator` architecture and parameters, but ``forward(z,
    lightness)`` feeds zeros in place of z's constant maps, so the output g(0 | L) (N×2×H×W ab in [0, 1]) does
    not depend on z by construction. z is still checked (N×M) so it is a drop-in for :func:`colorize`."""

    def forward(self, z: Tensor, lightness: Tensor) -> Tensor:
        z = check_tensor("z", z, ndim=2)
        return super().forward(torch.zeros_like(z), lightness)


# --------------------------------------------------------------------------------------------- training


@dataclass
class AGEOptions:
    """Settings of :func:`train_age` (defaults: the thesis' unconditional setting, 4.3.1)."""

    steps: int = 5000  # encoder updates; each is followed by ``generator_updates`` generator updates
    batch: int = 64
    size: int = 32
    channels: int = 3
    latent: int = 64  # M (thesis: 64 for CelebA/SVHN, 128 for CIFAR-10 / Tiny ImageNet)
    width: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    latent_weight: float = 1000.0  # λ, eq. 4.5 (thesis: 500, 1000 or 2000)
    data_weight: float = 10.0  # μ, eq. 4.6
    generator_updates: int = 2
    divergence: str = "gaussian"  # eq. 4.7, or "knn" (Kozachenko–Leonenko)
    conditional: bool = False  # 4.3.2: colourisation, x = ab given L (data: RGB images; latent 3 there)
    # "age": the game above. "l1" (conditional only): the baseline — the same generator with z ignored
    # (L1Colorizer), ``generator_updates`` L1 updates per step on fresh batches, min E‖ab − g(·|L)‖₁; the
    # encoder is built (same seed) but never updated
    objective: str = "age"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("divergence", self.divergence, DIVERGENCES)
        check_choice("objective", self.objective, OBJECTIVES)
        if self.objective == "l1" and not self.conditional:
            raise ValueError(
                "objective='l1' is the colourisation baseline and needs conditional=True (an unconditional "
                "generator has no input to regress from); use objective='age' or set conditional=True"
            )
        for name in ("steps", "batch", "latent", "width", "generator_updates"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.batch < 2:
            raise ValueError("batch must be at least 2 (the divergence fits a distribution to the batch)")
        if self.channels not in (1, 3) or (self.conditional and self.channels != 3):
            raise ValueError(
                f"channels must be 1 or 3 (3 for conditional colourisation), got {self.channels!r}"
            )
        self.betas = tuple(self.betas)  # type: ignore[assignment]


class AGERun:
    """The AGE game (eqs. 4.5–4.6) as a :class:`~featstat.engine.loop.Run`: one encoder update, then
    ``generator_updates`` generator updates per step. ``data``: N×C×size×size images in [0, 1].

    With ``objective="l1"`` (conditional) a step is ``generator_updates`` updates of the same generator on
    L_X = mean |ab − g(0 | L)| over fresh batches (the regression baseline; the encoder stays as initialised).
    """

    kind = "age"

    def __init__(self, opts: AGEOptions, data: Tensor, *, device: torch.device | str = "cpu") -> None:
        data = check_tensor("data", data, ndim=4, channels=opts.channels)
        if data.shape[-2:] != (opts.size, opts.size):
            raise ValueError(
                f"data must be N×{opts.channels}×{opts.size}×{opts.size}, got {tuple(data.shape)}"
            )
        self.opts, self.data, self.device = opts, data, torch.device(device)
        with torch.random.fork_rng(devices=[]):  # global RNG untouched by the constructors' default draws
            torch.manual_seed(opts.seed)
            self.encoder, self.generator = _networks(opts)  # DCGAN initialisation from opts.seed
        self.encoder, self.generator = self.encoder.to(device), self.generator.to(device)
        self.lightness: Tensor | None = None
        if opts.conditional:  # x = ab, conditioned on L (4.3.2)
            self.lightness, self.data = lab_split(data)
        self.opt_e = torch.optim.Adam(self.encoder.parameters(), lr=opts.lr, betas=opts.betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=opts.lr, betas=opts.betas)
        self.sampler = torch.Generator().manual_seed(opts.seed + 1)

    def fingerprint(self) -> dict[str, Any]:
        rec = dataclasses.asdict(self.opts)
        rec.pop("steps")
        if rec["objective"] == "age":  # runs saved before the option existed resume unchanged
            rec.pop("objective")
        rec["betas"] = list(self.opts.betas)
        rec["images"] = int(self.data.shape[0])
        return rec

    def _z(self, n: int) -> Tensor:
        return sample_sphere(n, self.opts.latent, seed=self.sampler).to(self.device)

    def _batch(self) -> tuple[Tensor, Tensor | None]:
        idx = torch.randint(self.data.shape[0], (self.opts.batch,), generator=self.sampler)
        lum = self.lightness[idx].to(self.device) if self.lightness is not None else None
        return self.data[idx].to(self.device), lum

    def _g(self, z: Tensor, lum: Tensor | None) -> Tensor:
        return self.generator(z) if lum is None else self.generator(z, lum)

    def _e(self, x: Tensor, lum: Tensor | None) -> Tensor:
        return self.encoder(x) if lum is None else self.encoder(x, lum)

    def _l1_step(self) -> dict[str, Tensor]:
        o = self.opts
        for _ in range(o.generator_updates):
            x, lum = self._batch()
            zero = torch.zeros(o.batch, o.latent, device=self.device)  # ignored by L1Colorizer anyway
            loss = data_reconstruction_loss(x, self._g(zero, lum))
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
        value = loss.detach()
        return {"generator": value, "data_rec": value, "loss": value}

    def step(self, step: int) -> dict[str, Tensor]:
        o = self.opts
        self.encoder.train(), self.generator.train()
        if o.objective == "l1":
            return self._l1_step()
        x, lum = self._batch()
        # encoder: max_ψ Δ(e(g(z))) − Δ(e(x)) − μ L_X  (eq. 4.6), as a loss to minimise
        e_x = self._e(x, lum)
        with torch.no_grad():
            fake = self._g(self._z(o.batch), lum)
        e_gz = self._e(fake, lum)
        x_rec = self._g(e_x, lum)
        loss_e = age_encoder_loss(e_x, e_gz, x, x_rec, weight=o.data_weight, divergence=o.divergence)
        self.opt_e.zero_grad(set_to_none=True)
        loss_e.backward()
        self.opt_e.step()
        with torch.no_grad():  # the two divergences of V₂, before this update: Δ(e(x)‖Z) and Δ(e(g(z))‖Z)
            values = {"encoder": loss_e.detach(), "data_rec": data_reconstruction_loss(x, x_rec),
                      "kl_real": latent_divergence(e_x, o.divergence),
                      "kl_fake": latent_divergence(e_gz, o.divergence)}  # fmt: skip
        # generator: min_θ Δ(e(g(z))) + λ L_Z  (eq. 4.5), ``generator_updates`` times
        for _ in range(o.generator_updates):
            z = self._z(o.batch)
            _, lum = self._batch() if lum is not None else (None, None)
            e_gz = self._e(self._g(z, lum), lum)
            loss_g = age_generator_loss(e_gz, z, weight=o.latent_weight, divergence=o.divergence)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        values["generator"] = loss_g.detach()
        values["latent_rec"] = latent_reconstruction_loss(z, e_gz.detach()).detach()
        values["loss"] = loss_g.detach()
        return values

    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.state_dict(), "generator": self.generator.state_dict(),
            "opt_e": self.opt_e.state_dict(), "opt_g": self.opt_g.state_dict(),
            "sampler": self.sampler.get_state(),
            "spec": {"latent": self.opts.latent, "size": self.opts.size, "channels": self.opts.channels,
                     "width": self.opts.width, "conditional": self.opts.conditional,
                     "objective": self.opts.objective},
        }  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.generator.load_state_dict(state["generator"])
        self.opt_e.load_state_dict(state["opt_e"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sampler.set_state(state["sampler"])

    def finish(self, step: int) -> dict[str, Any]:
        return {"spec": self.state_dict()["spec"]}

    def curves(self, history: list[dict[str, Any]]) -> dict[str, list[float]]:
        keys = ("data_rec", "latent_rec", "kl_real", "kl_fake")
        curves = {k: [float(r[k]) for r in history if k in r] for k in keys}
        return {k: v for k, v in curves.items() if v}


def load_images(folder: str | Path, size: int, channels: int = 3) -> Tensor:
    """Every image of ``folder`` resized (area / bicubic) to size×size, N×channels×size×size in [0, 1]."""
    files = list_images(folder)
    if not files:
        raise ValueError(f"data: no images in {str(folder)!r}; give a folder of PNG/JPEG images")
    out = []
    for path in files:
        img = read_image(path, channels=channels, alpha="drop")
        mode = "area" if min(img.shape[-2:]) >= size else "bicubic"
        out.append(F.interpolate(img, size=(size, size), mode=mode).clamp(0, 1))
    return torch.cat(out)


def train_age(
    data: Tensor | str | Path,
    folder: str | Path | None = None,
    options: AGEOptions | None = None,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    checkpoint_every: int = 500,
    log_every: int = 50,
    progress: bool = False,
    callback: Any = None,
    **kwargs: Any,
) -> tuple[AGERun, LoopResult]:
    """Train an AGE (encoder + generator) on images (a tensor N×C×H×W in [0, 1] or a folder) on the run loop;
    ``folder`` gets the checkpoint (``resume=True`` continues it), history, curves and ``run.json``."""
    opts = dataclasses.replace(options or AGEOptions(), **kwargs)
    if not isinstance(data, Tensor):
        data = load_images(data, opts.size, opts.channels)
    run = AGERun(opts, data, device=device)
    result = drive(run, opts.steps, folder, description="age", device=device, resume=resume,
                   checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                   callback=callback)
    return run, result


def _networks(opts: AGEOptions) -> tuple[nn.Module, nn.Module]:
    # the encoder draws from seed + 1, the generator from seed: not the same stream for both networks
    if opts.conditional:
        colorizer = L1Colorizer if opts.objective == "l1" else ColorizationGenerator
        return (AGEEncoder(opts.latent, size=opts.size, channels=2, condition=1, width=opts.width,
                           seed=opts.seed + 1),
                colorizer(opts.latent, width=max(8, opts.width // 2), seed=opts.seed))  # fmt: skip
    shape = dict(size=opts.size, channels=opts.channels, width=opts.width)
    return (AGEEncoder(opts.latent, **shape, seed=opts.seed + 1),
            AGEGenerator(opts.latent, **shape, seed=opts.seed))  # fmt: skip


_AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below ~108


def lab_split(images: Tensor) -> tuple[Tensor, Tensor]:
    """RGB images in [0, 1] → (L, ab) for conditional AGE: L/100 (N×1×H×W) and (ab/110 + 1)/2 (N×2×H×W),
    both in [0, 1] (:func:`featstat.ops.rgb_to_lab`)."""
    lab = rgb_to_lab(check_tensor("images", images, ndim=4, channels=3).float())
    return lab[:, :1] / 100, (lab[:, 1:] / _AB_SCALE + 1).clamp(0, 2) / 2


def lab_merge(lightness: Tensor, ab: Tensor) -> Tensor:
    """(L, ab) as :func:`lab_split` returns them → RGB images in [0, 1] (out-of-gamut colours clipped)."""
    return lab_to_rgb(torch.cat([lightness * 100, (ab * 2 - 1) * _AB_SCALE], dim=1))


@legacy_arguments(renamed={"generator": "colorizer"})
@torch.no_grad()
def colorize(colorizer: nn.Module, images: Tensor, z: Tensor | None = None, *, count: int = 8,
             seed: int | torch.Generator | None = None) -> Tensor:  # fmt: skip
    """Colourisations g(z | L) of the lightness of ``images`` (N×3 or N×1 ×H×W in [0, 1]; for N×1 the channel
    is taken as L/100), one per row of ``z`` (K×M) — or, without ``z``, per each of ``count`` codes drawn
    uniformly on the sphere from ``seed`` (int or ``torch.Generator``; None = 0). ``colorizer``: the
    conditional generator g(z | L) (:class:`~featstat.adversarial.nets.ColorizationGenerator` or
    :class:`L1Colorizer`). Returns K·N RGB images in [0, 1], the K colourisations of image 0 first."""
    if images.shape[1] == 3:
        lum, _ = lab_split(images)
    else:
        lum = check_tensor("images", images, ndim=4, channels=1)
    if z is None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        z = sample_sphere(count, colorizer.latent, seed=seed)
    z = check_tensor("z", z, ndim=2)
    n, k = lum.shape[0], z.shape[0]
    zz = z.to(lum).repeat_interleave(n, dim=0)
    ab = colorizer.eval()(zz, lum.repeat(k, 1, 1, 1))
    return lab_merge(lum.repeat(k, 1, 1, 1), ab).view(k, n, 3, *lum.shape[-2:]).transpose(0, 1).flatten(0, 1)


@legacy_arguments(renamed={"generator": "colorizer"})
@torch.no_grad()
def color_transfer(encoder: nn.Module, colorizer: nn.Module, source: Tensor, target: Tensor) -> Tensor:
    """Thesis fig. 4.4b: z₁ = e(x₁ | L₁) of each ``source`` image colours the lightness of ``target``:
    g(z₁ | L₂). Both N×3×H×W RGB in [0, 1] at the model's size; returns N×3×H×W. (With an
    :class:`L1Colorizer` the code is ignored: the result is the baseline's colourisation of ``target``.)"""
    l1, ab1 = lab_split(source)
    l2, _ = lab_split(target)
    z = encoder.eval()(ab1, l1)
    return lab_merge(l2, colorizer.eval()(z, l2))


class ColorizationDiversity(NamedTuple):
    """Per-image diversity of K colourisations (see :func:`colorization_diversity`); each field is (N,)."""

    pairwise: Tensor  # mean over pairs k < l and pixels of ‖c_k(p) − c_l(p)‖₂
    spread: Tensor  # mean over pixels of the per-pixel standard deviation across the K (channels jointly)


def colorization_diversity(colorizations: Tensor) -> ColorizationDiversity:
    """How different K colourisations of the same grey image are.

    ``colorizations``: N×K×C×H×W, K ≥ 2 colourisations of each of N images — typically the ab channels in
    Lab units (``featstat.ops.rgb_to_lab(rgb)[:, 1:]``), so both numbers are in ab units. Per image n, with
    c_k(p) ∈ R^C the colour of colourisation k at pixel p and c̄(p) their mean:

        pairwise_n = 2 / (K(K−1)) · Σ_{k<l} mean_p ‖c_k(p) − c_l(p)‖₂
        spread_n   = mean_p sqrt( (1/K) Σ_k ‖c_k(p) − c̄(p)‖²₂ )

    Both are 0 exactly when every colourisation is the same (e.g. a generator that ignores z). Returns a
    :class:`ColorizationDiversity` of two (N,) tensors (float32 for half inputs).
    """
    c = check_tensor("colorizations", colorizations, ndim=5)
    if c.shape[1] < 2:
        raise ValueError(f"colorizations must hold K ≥ 2 colourisations per image (N×K×C×H×W), got "
                         f"{tuple(c.shape)}")  # fmt: skip
    c = c.to(compute_dtype(c))
    k = c.shape[1]
    rows, cols = torch.triu_indices(k, k, offset=1)
    pair = (c[:, rows] - c[:, cols]).square().sum(dim=2).sqrt()  # N×P×H×W
    spread = (c - c.mean(dim=1, keepdim=True)).square().sum(dim=2).mean(dim=1).sqrt()  # N×H×W
    return ColorizationDiversity(pair.flatten(1).mean(dim=1), spread.flatten(1).mean(dim=1))


def load_age(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[AGEEncoder, AGEGenerator]:
    """The (encoder, generator) pair saved by :func:`train_age` (a checkpoint file or run folder), in eval
    mode."""
    ck = load_run(checkpoint, AGERun.kind, "an AGE run")
    spec = ck["state"]["spec"]
    enc, gen = _networks(AGEOptions(latent=spec["latent"], size=spec["size"], channels=spec["channels"],
                                    width=spec["width"], conditional=spec.get("conditional", False),
                                    objective=spec.get("objective", "age")))
    enc.load_state_dict(ck["state"]["encoder"])
    gen.load_state_dict(ck["state"]["generator"])
    return enc.to(device).eval(), gen.to(device).eval()
