"""Deep Image Prior tasks (thesis chapter 7): denoising, super-resolution, inpainting, JPEG artefact removal,
flash/no-flash and natural pre-images — each a data term E(x; x₀) for :func:`featstat.prior.engine.solve`.

Every task takes images as 1×C×H×W float tensors in [0, 1] (read them with :func:`featstat.read_image`),
an optional ground truth ``clean`` to track the PSNR per step, a network preset (:data:`PRESETS`) and the
options of :class:`~featstat.prior.engine.FitOptions` as keywords (``steps``, ``lr``, ``input_noise``,
``ema``, ``runs``, ``seed``, ``precision``, ``checkpoint``, ``resume``, ``progress``, ...). It returns a
:class:`~featstat.prior.engine.PriorResult` (final image, averaged image, history, PSNRs).

Paper vs reference-code settings (defaults follow the paper where it gives a number, the public code
otherwise; each is a keyword away):

=====================  =====================================  =============================================
task                   paper (thesis ch. 7)                   public reference code
=====================  =====================================  =============================================
denoise                1800 steps (29.22 dB; 30.43 averaged)  3000 steps (F16), σ_z = 1/30, EMA 0.99
super_resolve ×4 / ×8  2000 steps, "Lanczos" downsampler      2000 / 4000 steps, σ_z 0.03 / 0.05, Lanczos-2
inpaint                "several thousand" steps               6000 (text), 5000 (vase), 3000 (library)
remove_jpeg_artifacts  2400 steps (Fig. 7.3)                  2400 steps, small 3-channel-input net
flash_no_flash         flash image as input code              600 steps, lr 0.1, no input noise
invert_features        AlexNet conv1 … fc8                    3100 steps, lr 0.001, 256² net → 224² crop
=====================  =====================================  =============================================

Defaults used here: denoise 1800, SR 2000 (×2, ×4) / 4000 (×8), inpaint per preset (6000 / 5000 / 3000),
JPEG 2400, flash 600, inversion 3000. Exponential averaging (0.99) is on for every task: it does not change
the optimisation and gives the "average" output next to the final one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_image, check_tensor
from ..features import FeatureExtractor
from ..losses import PerceptualLoss
from ..losses.functional import l2_loss
from ..nets.hourglass import build_network, input_code
from ..objective.config import build_objective
from ..objective.core import Objective, Term
from ..ops import EDGES, KERNELS, Downsampler, resize
from ..registry import PRESETS as _PRESET_REGISTRY
from ..registry import RegistryView
from .engine import FitOptions, PriorResult, Problem, solve
from .operators import random_mask  # DIP's spelling: the mask is drawn on the image's device

__all__ = [
    "PRESETS",
    "TASKS",
    "NetPreset",
    "denoise",
    "flash_no_flash",
    "inpaint",
    "inpainting_loss",
    "invert_features",
    "remove_jpeg_artifacts",
    "statistics_objective",
    "super_resolve",
]


# -------------------------------------------------------------------------------------------- net presets


@dataclass(frozen=True)
class NetPreset:
    """A network of the reference code with its input code and, where the code used others, its options.

    Attributes: ``arch`` (a :data:`featstat.nets.hourglass.NETWORKS` name), ``code`` ("noise", "normal",
    "meshgrid" or "image" — the flash image), ``code_channels``, ``net`` (constructor keywords), ``fit``
    (FitOptions defaults this setting used, e.g. its learning rate), ``description``.
    """

    arch: str
    code: str
    code_channels: int
    net: Mapping[str, Any] = field(default_factory=dict)
    fit: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    #: the product a preset of :data:`featstat.registry.PRESETS` belongs to (a registry fact)
    product: ClassVar[str] = "prior"


_LIB = [16, 32, 64, 128, 128, 128]


def _library(depth: int) -> NetPreset:
    return NetPreset(
        "skip",
        "noise",
        1,
        dict(
            channels_down=_LIB[:depth],
            channels_up=_LIB[:depth],
            channels_skip=[0] * depth,
            kernel_down=5,
            kernel_up=3,
            upsample="nearest",
            need_1x1_up=False,
        ),
        dict(steps=3000, input_noise=0.0),
        f"library-inpainting depth study (Fig. 7.8): {depth} levels of {_LIB[:depth]} channels, no skips, "
        f"5×5 down / 3×3 up, nearest, 1-channel noise input",
    )


_NET_PRESETS: dict[str, NetPreset] = {
    "skip": NetPreset(
        "skip",
        "noise",
        32,
        {},
        description="reference default (denoising, SR): 5 levels × 128 channels down/up, 4 skip channels, "
        "3×3 convs, strided down, bilinear up, reflection padding, BN, LeakyReLU, sigmoid; 2.2 M parameters",
    ),
    "skip-small": NetPreset(
        "skip",
        "noise",
        3,
        dict(
            channels_down=[8, 16, 32, 64, 128],
            channels_up=[8, 16, 32, 64, 128],
            channels_skip=[0, 0, 0, 4, 4],
        ),
        description="JPEG (snail) reference: channels 8-16-32-64-128, skips only on the two deepest levels, "
        "3-channel noise input",
    ),
    "skip-inpaint": NetPreset(
        "skip",
        "noise",
        32,
        dict(channels_skip=[128] * 5, upsample="nearest"),
        dict(steps=6000, input_noise=0.03),
        description="text inpainting reference (kate, peppers): 128 skip channels per level, nearest up",
    ),
    "encoder-decoder": NetPreset(
        "encoder_decoder",
        "meshgrid",
        2,
        dict(upsample="nearest"),
        dict(steps=5000, input_noise=0.03),
        description="vase inpainting reference: hourglass without skips, nearest up, meshgrid input",
    ),
    "skip-depth6": _library(6),
    "skip-depth4": _library(4),
    "skip-depth2": _library(2),
    "unet": NetPreset(
        "unet",
        "noise",
        1,
        dict(feature_scale=8, more_layers=1, upsample="deconv", padding="zero", norm="instance"),
        dict(steps=3000, lr=0.001, input_noise=0.0),
        description="U-Net of the library-inpainting comparison (Fig. 7.8), lr 0.001",
    ),
    "resnet": NetPreset(
        "resnet",
        "noise",
        1,
        dict(blocks=8, channels=32),
        dict(steps=3000, lr=0.001, input_noise=0.0),
        description="ResNet (8 blocks × 32 channels) of the library-inpainting comparison (Fig. 7.8), "
        "lr 0.001",
    ),
    "skip-flash": NetPreset(
        "skip",
        "image",
        3,
        dict(channels_skip=[4] * 5, upsample=["nearest", "nearest", "bilinear", "bilinear", "bilinear"]),
        description="flash/no-flash reference: the skip default with the flash image as input, mixed "
        "upsampling",
    ),
    "skip-inversion": NetPreset(
        "skip",
        "noise",
        32,
        dict(
            channels_down=_LIB,
            channels_up=_LIB,
            channels_skip=[4] * 6,
            kernel_down=[7, 7, 5, 5, 3, 3],
            kernel_up=[7, 7, 5, 5, 3, 3],
            upsample="nearest",
            downsample="avg",
            padding="zero",
        ),
        description="feature-inversion reference: 6 levels 16-32-64-128-128-128, 7-7-5-5-3-3 kernels, "
        "average pooling down, nearest up, zero padding",
    ),
}


for _name, _net_preset in _NET_PRESETS.items():  # the one registry of presets (fact product="prior")
    if _name not in _PRESET_REGISTRY.registered_names():
        _PRESET_REGISTRY.register_value(_name, _net_preset)
del _name, _net_preset

#: Network settings by name (``net=`` of every task, ``--net`` of the CLI): the DIP presets of the preset
#: registry (:data:`featstat.registry.PRESETS`, ``product="prior"``), a read-only mapping.
PRESETS: RegistryView[NetPreset] = _PRESET_REGISTRY.subset(product="prior")


def _preset(net: str | NetPreset) -> NetPreset:
    if isinstance(net, NetPreset):
        return net
    if net not in PRESETS:
        hint = PRESETS.hint(net)
        raise ValueError(f"net must be one of {tuple(PRESETS)} (or a NetPreset), got {net!r}{hint}")
    return PRESETS[net]


def _net_factory(preset: NetPreset, out_channels: int, net_options: Mapping[str, Any] | None) -> Callable:
    kwargs = {**preset.net, **(net_options or {})}
    kwargs.setdefault("in_channels", preset.code_channels)
    kwargs.setdefault("out_channels", out_channels)
    if kwargs["in_channels"] != preset.code_channels and preset.code in ("meshgrid", "image"):
        raise ValueError(
            f"net_options in_channels={kwargs['in_channels']} does not fit the {preset.code} input code "
            f"({preset.code_channels} channels)"
        )
    build_network(preset.arch, **{**kwargs, "seed": 0})  # validate the options once, now

    def make(seed: int) -> nn.Module:
        return build_network(preset.arch, **{**kwargs, "seed": seed})

    return make


def _code_factory(
    preset: NetPreset, channels: int, size: tuple[int, int], device: torch.device, scale: float = 0.1
) -> Callable[[int], Tensor]:
    def make(seed: int) -> Tensor:
        return input_code(preset.code, channels, size, scale=scale, seed=seed, device=device)

    return make


def _digest(*tensors: Tensor | None) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _device(options: Mapping[str, Any], x: Tensor) -> torch.device:
    """Where to run: the ``device`` option, else the input's device."""
    return torch.device(options["device"]) if options.get("device") is not None else x.device


def _single(name: str, x: object, *, channels: int | None = None) -> Tensor:
    """A 1×C×H×W image in [0, 1] (C = 1 or 3, or ``channels``)."""
    x = check_image(name, x, channels=channels)
    if x.shape[0] != 1:
        raise ValueError(
            f"{name} must hold one image (1×C×H×W), got shape {tuple(x.shape)}; restore images one at a time"
        )
    if channels is None and x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 (grayscale) or 3 (RGB) channels, got shape {tuple(x.shape)}")
    return x.float()


def _to(device: torch.device, *tensors: Tensor | None) -> tuple[Any, ...]:
    return tuple(None if t is None else t.to(device) for t in tensors)


def _check_clean(clean: object, shape: Sequence[int], what: str) -> Tensor | None:
    if clean is None:
        return None
    c = _single("clean", clean)
    if tuple(c.shape) != tuple(shape):
        raise ValueError(f"clean must have the shape of {what}, {tuple(shape)}, got {tuple(c.shape)}")
    return c


def _fit(preset: NetPreset, task_defaults: Mapping[str, Any], options: Mapping[str, Any]) -> FitOptions:
    return FitOptions.from_kwargs({**task_defaults, **preset.fit}, options)


def _run(
    task: str,
    data_term: Callable[[Tensor], Tensor],
    preset: NetPreset,
    out_channels: int,
    out_size: tuple[int, int],
    device: torch.device,
    options: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    net_options: Mapping[str, Any] | None,
    clean: Tensor | None,
    fixed_code: Tensor | None = None,
    view: Callable[[Tensor], Tensor] | None = None,
    extra: Objective | None = None,
    extra_target: Tensor | Mapping[str, Tensor] | None = None,
    meta: Mapping[str, Any],
) -> PriorResult:
    opts = _fit(preset, defaults, options)
    make_net = _net_factory(preset, out_channels, net_options)
    if preset.code == "image":
        if fixed_code is None:
            raise ValueError(
                f"network preset {preset!r} takes an image as input code; use it for flash_no_flash"
            )
        code: Callable[[int], Tensor] | Tensor = fixed_code
    else:
        channels = int((net_options or {}).get("in_channels", preset.code_channels))
        code = _code_factory(preset, channels, out_size, device)
    if extra is not None:
        extra = extra.to(device)
    problem = Problem(
        task=task,
        data_term=data_term,
        make_net=make_net,
        make_code=code,
        clean=clean,
        view=view,
        extra=extra,
        extra_target=extra_target,
        meta={"device": str(device), **meta, "net_options": dict(net_options or {})},
    )
    return solve(problem, opts)


# ------------------------------------------------------------------------------------------------- tasks


def denoise(
    noisy: Tensor,
    *,
    clean: Tensor | None = None,
    net: str | NetPreset = "skip",
    net_options: Mapping[str, Any] | None = None,
    extra: Objective | None = None,
    extra_target: Tensor | Mapping[str, Tensor] | None = None,
    **options: Any,
) -> PriorResult:
    """Blind denoising (thesis §7.3.1): ``E(x; x₀) = ‖x − x₀‖²`` with early stopping.

    Args:
        noisy: the noisy photo, 1×C×H×W in [0, 1] (C = 1 or 3; at least the network's ``min_size``).
        clean: optional ground truth (same shape) to track the PSNR per step.
        net: a :data:`PRESETS` name (default "skip": the reference 2.2 M-parameter network).
        net_options: constructor keywords that override the preset's (e.g. ``{"channels_skip": [0] * 5}``).
        extra, extra_target: an optional :class:`featstat.Objective` added to the data term (default target:
            the noisy image).
        **options: :class:`~featstat.prior.engine.FitOptions` fields. Defaults: 1800 steps (paper; the
            reference F16 run used 3000), lr 0.01, input noise σ 1/30 (the code suggests 1/20 for noise
            σ = 50), EMA 0.99, backtracking at 5 dB.

    The network fits the image before the noise (Fig. 7.2), so the PSNR against the clean image rises, peaks
    and falls as it starts fitting the noise: the step count is the regulariser. The averaged output peaks
    later and higher.
    """
    x0 = _single("noisy", noisy)
    clean_ = _check_clean(clean, x0.shape, "noisy")
    x0, clean_ = _to(_device(options, x0), x0, clean_)
    defaults = dict(steps=1800, lr=0.01, input_noise=1.0 / 30.0, ema=0.99)
    return _run(
        "denoise", lambda out: l2_loss(out, x0), _preset(net), x0.shape[1], tuple(x0.shape[-2:]), x0.device,
        options, defaults, net_options=net_options, clean=clean_, extra=extra,
        extra_target=x0 if extra_target is None else extra_target,
        meta={"observation": _digest(x0, clean_), "size": list(x0.shape[-2:]), "net": _name(net)},
    )  # fmt: skip


def remove_jpeg_artifacts(
    image: Tensor,
    *,
    clean: Tensor | None = None,
    net: str | NetPreset = "skip-small",
    net_options: Mapping[str, Any] | None = None,
    extra: Objective | None = None,
    extra_target: Tensor | Mapping[str, Tensor] | None = None,
    **options: Any,
) -> PriorResult:
    """Blind JPEG artefact removal (Fig. 7.3): the denoising data term on the compressed image, stopped before
    the network reproduces the blocks (2400 steps in the paper; it overfits them by 50 000).

    Defaults as the reference "snail" run: the "skip-small" network (3-channel noise input, 8…128 channels,
    skips only on the two deepest levels), 2400 steps, lr 0.01, input noise 1/30, EMA 0.99. Other arguments
    as :func:`denoise`.
    """
    x0 = _single("image", image)
    clean_ = _check_clean(clean, x0.shape, "image")
    x0, clean_ = _to(_device(options, x0), x0, clean_)
    defaults = dict(steps=2400, lr=0.01, input_noise=1.0 / 30.0, ema=0.99)
    return _run(
        "jpeg", lambda out: l2_loss(out, x0), _preset(net), x0.shape[1], tuple(x0.shape[-2:]), x0.device,
        options, defaults, net_options=net_options, clean=clean_, extra=extra,
        extra_target=x0 if extra_target is None else extra_target,
        meta={"observation": _digest(x0, clean_), "size": list(x0.shape[-2:]), "net": _name(net)},
    )  # fmt: skip


def super_resolve(
    low_res: Tensor,
    factor: int = 4,
    *,
    clean: Tensor | None = None,
    kernel: str = "lanczos2",
    edge: str = "replicate",
    net: str | NetPreset = "skip",
    net_options: Mapping[str, Any] | None = None,
    extra: Objective | None = None,
    extra_target: str | Tensor | Mapping[str, Tensor] = "bicubic",
    **options: Any,
) -> PriorResult:
    """Super-resolution (thesis §7.3.2, eq. 7.5): ``E(x; x₀) = ‖d(x) − x₀‖²`` with ``d`` a downsampler.

    Args:
        low_res: the low-resolution image x₀, 1×C×h×w in [0, 1]. The result is 1×C×(factor·h)×(factor·w).
        factor: integer upscaling factor (2, 4, 8; the paper reports ×4, the code also ×8).
        clean: optional high-resolution ground truth (1×C×factor·h×factor·w) for the PSNR per step.
        kernel, edge: the downsampler d (:class:`~featstat.prior.operators.Downsampler`); default the
            reference code's Lanczos-2 with replicate padding. Match it to how x₀ was made when you know it
            ("lanczos3"/"renormalise" for Pillow's ANTIALIAS, "bicubic" for MATLAB-style data such as Set5).
        extra, extra_target: an optional :class:`featstat.Objective` (:func:`statistics_objective`) added to
            the data term, compared with ``extra_target``: "bicubic" (default; the bicubic upsampling of x₀),
            "input" (x₀ itself: its feature statistics at their own scale — natural images repeat their
            patches across scales; for distribution losses such as CX, PDL, Gram) or a tensor.
        **options: FitOptions fields. Defaults (reference code): 2000 steps and input noise 0.03 for ×2 and
            ×4, 4000 and 0.05 for ×8; lr 0.01; EMA 0.99 (not in the reference SR code; it does not change the
            optimisation).
    """
    x0 = _single("low_res", low_res)
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
        raise ValueError(f"factor must be an integer >= 2 (e.g. 2, 4, 8), got {factor!r}")
    check_choice("kernel", kernel, KERNELS)
    check_choice("edge", edge, EDGES)
    h, w = x0.shape[-2:]
    hr_shape = (1, x0.shape[1], h * factor, w * factor)
    clean_ = _check_clean(clean, hr_shape, f"the ×{factor} high-resolution output")
    x0, clean_ = _to(_device(options, x0), x0, clean_)
    down = Downsampler(factor, kernel, edge=edge)
    steps, sigma = (4000, 0.05) if factor >= 8 else (2000, 0.03)
    defaults = dict(steps=steps, lr=0.01, input_noise=sigma, ema=0.99)
    if isinstance(extra_target, str):
        check_choice("extra_target", extra_target, ("bicubic", "input"))
        if extra_target == "bicubic":
            extra_target = resize(x0, hr_shape[-2:], "bicubic").clamp(0, 1)
        else:  # the low-resolution image itself: its features at their own scale (distribution losses only)
            extra_target = x0
    return _run(
        f"sr-x{factor}", lambda out: l2_loss(down(out), x0), _preset(net), x0.shape[1], hr_shape[-2:],
        x0.device, options, defaults, net_options=net_options, clean=clean_, extra=extra,
        extra_target=extra_target,
        meta={
            "observation": _digest(x0, clean_), "size": list(hr_shape[-2:]), "factor": factor,
            "kernel": kernel, "edge": edge, "net": _name(net),
        },
    )  # fmt: skip


def inpaint(
    image: Tensor,
    mask: Tensor | None = None,
    *,
    drop: float | None = None,
    clean: Tensor | None = None,
    net: str | NetPreset = "skip-inpaint",
    net_options: Mapping[str, Any] | None = None,
    mask_seed: int = 0,
    extra: Objective | None = None,
    extra_target: Tensor | Mapping[str, Tensor] | None = None,
    **options: Any,
) -> PriorResult:
    """Inpainting (thesis §7.3.3, eq. 7.6): ``E(x; x₀) = ‖(x − x₀) ⊙ m‖²``.

    The data term ignores the missing pixels (its gradient there is exactly zero): they are filled by the
    network's structure alone.

    Args:
        image: the image with holes, 1×C×H×W in [0, 1] (values under the holes are ignored).
        mask: 1 where pixels are known, 0 where missing: 1×1×H×W (shared by the channels) or 1×C×H×W,
            values in {0, 1} (read a mask file with ``read_image(path, channels=1)``; thresholded at 0.5).
        drop: instead of a mask, remove this fraction of pixels at random (Bernoulli, seed ``mask_seed``;
            the paper's Table 7.1 uses 0.5). Then ``clean`` defaults to ``image`` itself.
        net: default "skip-inpaint" (text-inpainting reference, 6000 steps); "encoder-decoder" (meshgrid, 5000
            steps) for large holes as the vase example; "skip-depth6/4/2", "unet", "resnet" for Fig. 7.8.
        **options: FitOptions fields (defaults from the preset: lr 0.01, input noise 0.03, EMA 0.99).

    Result ``info["mask"]`` holds the fraction of known pixels.
    """
    x0 = _single("image", image)
    x0 = x0.to(_device(options, x0))
    if (mask is None) == (drop is None):
        raise ValueError(
            "give exactly one of mask (1 = known pixel, 0 = missing) or drop (fraction to remove)"
        )
    if drop is not None:
        m = random_mask(tuple(x0.shape[-2:]), drop, seed=mask_seed, device=x0.device)
        if clean is None:
            clean = x0
    else:
        m = check_tensor("mask", mask, ndim=4)
        check_finite("mask", m)
        if m.shape[0] != 1 or m.shape[1] not in (1, x0.shape[1]) or m.shape[-2:] != x0.shape[-2:]:
            raise ValueError(
                f"mask must have shape 1×1×H×W or 1×C×H×W matching image {tuple(x0.shape)}, got "
                f"{tuple(m.shape)}"
            )
        m = (m.to(device=x0.device, dtype=torch.float32) > 0.5).float()
    known = float(m.mean())
    if known == 0:
        raise ValueError("mask marks every pixel as missing (all 0); 1 must mark the known pixels")
    clean_ = _check_clean(clean, x0.shape, "image")
    (clean_,) = _to(x0.device, clean_)
    target = x0 * m
    defaults = dict(steps=5000, lr=0.01, input_noise=0.03, ema=0.99)
    size = tuple(x0.shape[-2:])
    return _run(
        "inpaint", lambda out: inpainting_loss(out, target, m), _preset(net), x0.shape[1], size, x0.device,
        options, defaults, net_options=net_options, clean=clean_, extra=extra,
        extra_target=target if extra_target is None else extra_target,
        meta={
            "observation": _digest(target, m, clean_), "size": list(x0.shape[-2:]), "mask": known,
            "net": _name(net),
        },
    )  # fmt: skip


def flash_no_flash(
    flash: Tensor,
    no_flash: Tensor,
    *,
    clean: Tensor | None = None,
    net: str | NetPreset = "skip-flash",
    net_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> PriorResult:
    """Flash/no-flash restoration (thesis §7.3.5): the denoising data term on the noisy no-flash image with
    the flash image as the input code z (a non-linear guided filter). Lighting follows the no-flash image,
    detail and low noise come from the flash one.

    Args:
        flash, no_flash: 1×3×H×W in [0, 1], same size (an aligned pair).
        **options: FitOptions fields. Defaults (reference code): 600 steps, lr 0.1, no input noise, EMA 0.99
            (averaging is not in the reference; it does not change the optimisation). The reference notes the
            fit sometimes sticks at a reddish image; another seed (or backtracking, on by default) helps.
    """
    f = _single("flash", flash)
    nf = _single("no_flash", no_flash)
    if f.shape != nf.shape:
        raise ValueError(
            f"flash and no_flash must have the same shape (an aligned pair), got {tuple(f.shape)} and "
            f"{tuple(nf.shape)}; crop or resize one of them"
        )
    clean_ = _check_clean(clean, nf.shape, "no_flash")
    f, nf, clean_ = _to(_device(options, nf), f, nf, clean_)
    preset = _preset(net)
    if preset.code == "image" and f.shape[1] != preset.code_channels:
        raise ValueError(f"flash must have {preset.code_channels} channels for net {net!r}, got {f.shape[1]}")
    defaults = dict(steps=600, lr=0.1, input_noise=0.0, ema=0.99)
    return _run(
        "flash", lambda out: l2_loss(out, nf), preset, nf.shape[1], tuple(nf.shape[-2:]), nf.device, options,
        defaults, net_options=net_options, clean=clean_, fixed_code=f,
        meta={"observation": _digest(f, nf, clean_), "size": list(nf.shape[-2:]), "net": _name(net)},
    )  # fmt: skip


def invert_features(
    image: Tensor,
    layer: str = "conv5",
    *,
    arch: str = "alexnet",
    weights: str | None = "default",
    preprocessing: str | None = None,
    extractor: FeatureExtractor | None = None,
    net: str | NetPreset = "skip-inversion",
    net_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> PriorResult:
    """Natural pre-image (thesis §7.3.4): find a natural image x with ``Φ(x) ≈ Φ(x₀)`` for a layer Φ of a
    classification network, ``E(x; x₀) = ‖Φ(x) − Φ(x₀)‖²`` (mean squared difference of the features, as the
    reference's matcher), with the deep image prior as the regulariser instead of total variation.

    Args:
        image: x₀, 1×3×H×W RGB in [0, 1] (reference: 227² for AlexNet, 224² for VGG).
        layer: the layer to invert, by its featstat name (AlexNet "conv1" … "pool5", VGG "conv1_1" … "pool5").
            The fully connected fc6–fc8 of the paper's Fig. 7.9 are outside featstat's convolutional trunks.
        arch, weights, preprocessing: the backbone (:class:`featstat.features.FeatureExtractor`); weights
            "default" = torchvision's ImageNet file for ``arch``, a registry name or path, or None for seeded
            random weights. Or pass a ready ``extractor``.
        net: default "skip-inversion" (reference: 6 levels, zero padding, average-pool downsampling). The
            network's output is the image size rounded up to a multiple of 2^depth, cropped at the top left
            (the reference renders 256² and crops 224²/227²).
        **options: FitOptions fields. Defaults (reference): 3000 steps (code: 3100), lr 0.001, no input noise,
            EMA 0.99.
    """
    x0 = _single("image", image, channels=3)
    x0 = x0.to(_device(options, x0))
    if extractor is None:
        extractor = FeatureExtractor(arch, [layer], weights, preprocessing)
    elif layer not in extractor.layers:
        raise ValueError(
            f"layer {layer!r} is not computed by the given extractor (it has {extractor.layers})"
        )
    extractor = extractor.to(x0.device)
    extractor.check_images(x0)
    objective = Objective([Term("features", PerceptualLoss("l2"), 1.0, extractor, [layer])]).to(x0.device)
    preset = _preset(net)
    depth = len({**preset.net, **(net_options or {})}.get("channels_down", [128] * 5))
    mult = 2**depth
    h, w = x0.shape[-2:]
    size = (-(-h // mult) * mult, -(-w // mult) * mult)

    def view(out: Tensor) -> Tensor:
        return out[..., :h, :w]

    def data_term(out: Tensor) -> Tensor:
        return objective(out, x0).total

    defaults = dict(steps=3000, lr=0.001, input_noise=0.0, ema=0.99)
    result = _run(
        "invert", data_term, preset, 3, size, x0.device, options, defaults, net_options=net_options,
        clean=None, view=view,
        meta={
            "observation": _digest(x0), "size": [h, w], "net_size": list(size), "arch": extractor.arch,
            "layer": layer, "weights": extractor.weights_name, "net": _name(net),
        },
    )  # fmt: skip
    return result


def inpainting_loss(output: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """The inpainting data term (eq. 7.6) as the reference computes it: ``mean(((x − x₀) ⊙ m)²)`` over all
    pixels (missing ones contribute 0). ``mask`` (1 = known) broadcasts over channels; the gradient with
    respect to ``output`` is exactly zero where ``mask`` is 0."""
    return l2_loss(output * mask, image * mask)


# -------------------------------------------------------------------------------------- extra statistics


def statistics_objective(
    terms: Mapping[str, float],
    *,
    layers: Sequence[str] = ("relu2_1", "relu3_1"),
    arch: str = "vgg19",
    weights: str | None = "auto",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> Objective:
    """An :class:`featstat.Objective` of feature-statistics terms to add to a task's data term (experimental:
    the original work used the data term alone).

    Args:
        terms: loss name (or alias: "cx", "pdl", "gram", ...) → weight, e.g. ``{"contextual": 0.1}``.
        layers: backbone layers every term compares (one shared pass).
        arch, weights: the backbone; weights a registry name ("vgg19", "vgg19-caffe-normalised-to-relu3_1"),
            a file, None for seeded random weights, or "auto" (default): the best features on this machine,
            never downloading — torchvision's file of ``arch``, then HED's VGG-16 (VGG-19 layer names
            mapped), then the shallow Caffe VGG-19, then random (see :mod:`featstat.features.sources`; the
            choice is in ``objective.feature_sources`` and the run's JSON).
        options: per-term constructor keywords, e.g. ``{"contextual": {"bandwidth": 0.1}}`` (CX defaults to
            the SR bandwidth 0.1).

    Example (SR ×4 with a CX term against the bicubic upsampling, the default ``extra_target``)::

        extra = statistics_objective({"cx": 0.05}, weights="vgg19-caffe-normalised-to-relu3_1")
        result = super_resolve(lr, 4, extra=extra)
    """
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError(f"terms must map loss names to weights, e.g. {{'contextual': 0.1}}, got {terms!r}")
    # a spec for the one builder (featstat.objective.config): any registered loss works here
    backbone = {"arch": arch, "weights": "random" if weights is None else str(weights), "seed": seed}
    spec = {
        "backbones": {"extra": backbone},
        "terms": {
            str(name): {
                "loss": name,
                "weight": weight,
                "backbone": "extra",
                "layers": list(layers),
                **dict((options or {}).get(name, {})),
            }
            for name, weight in terms.items()
        },
    }
    return build_objective(spec)


def _name(net: str | NetPreset) -> str:
    return net if isinstance(net, str) else net.description or net.arch


#: Task functions by the CLI verb that runs them.
TASKS: dict[str, Callable[..., PriorResult]] = {
    "denoise": denoise,
    "sr": super_resolve,
    "inpaint": inpaint,
    "jpeg": remove_jpeg_artifacts,
    "flash": flash_no_flash,
    "invert": invert_features,
}
