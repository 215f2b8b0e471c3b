"""``featstat prior ...``: Deep Image Prior restoration of one photo, no training data (thesis chapter 7).

Every verb writes into ``--out`` (default ``prior-<verb>``): ``result.png`` (the final network output),
``average.png`` (the exponential average of the outputs), ``curves.png`` (loss and PSNR per step),
``run.json`` (settings, PSNRs, history) and ``checkpoint.pt`` (saved every ``--checkpoint-every`` steps and
on Ctrl-C; ``--resume`` continues exactly where a run stopped), plus the inputs it made (noisy,
low-resolution, masked images; the bicubic baseline).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch

from ._common import (
    FeatstatGroup,
    alias_option,
    apply_threads,
    check_output_folder,
    device_option,
    is_grayscale_file,
    on_interrupt,
    out_option,
    path_argument,
    resolve_device,
    run_options,
    set_option,
    stack,
)
from ._registry import RegistryChoice, RegistryHelpOption, names_help

SAMPLE_SIZE = 128


# ------------------------------------------------------------------------------------------------ options


def _fit_options(func: Callable) -> Callable:
    """The options every verb shares (FitOptions and output handling)."""
    options = [
        out_option("Output folder (default: prior-<verb> in the current directory).", decls=("--out", "-o"),
                   required=False),
        click.option("--lr", type=float, default=None, help="Learning rate (default: the task's)."),
        click.option("--input-noise", type=float, default=None,
                     help="σ of the noise added to the input code each step (default: the task's; 0 = off)."),
        click.option("--ema", type=float, default=None,
                     help="Weight of the exponential average of outputs (default 0.99; 0 = off)."),
        click.option("--ema-start", type=click.IntRange(min=0), default=None,
                     help="Start averaging after this many steps (default 0; ~steps/5 helps short runs)."),
        click.option("--runs", type=click.IntRange(min=1), default=None,
                     help="Independent runs (seeds seed, seed+1, ...) to average (paper: 2 → +0.6 dB)."),
        click.option("--net", "net", default=None, cls=RegistryHelpOption,
                     help_fn=lambda: "Network preset: "
                     f"{names_help('preset', aliases=False, product='prior')} (see 'featstat prior nets'; "
                     "default: the task's reference net)."),
        click.option("--depth", type=click.IntRange(min=1), default=None,
                     help="Levels of the hourglass (skip / encoder-decoder presets)."),
        click.option("--channels", type=click.IntRange(min=1), default=None,
                     help="Channels per level, down and up (skip / encoder-decoder presets)."),
        click.option("--skip-channels", type=click.IntRange(min=0), default=None,
                     help="Skip-connection channels per level (skip presets; 0 removes them)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
                     show_default=True,
                     help="auto = bfloat16 autocast where the CPU/GPU supports it natively, else fp32."),
        click.option("--channels-last/--no-channels-last", default=None,
                     help="NHWC memory format (default: on with bf16/fp16, off with fp32)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the network (long runs)."),
        click.option("--backtrack", type=float, default=5.0, show_default=True,
                     help="Restore the last good weights when the fit drops by this many dB (0 = off)."),
        click.option("--snapshot-every", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Write OUT/snapshots/step_NNNNN.png (and _avg.png) every this many steps, to pick "
                          "where to stop (0 = off)."),
        click.option("--max-size", type=click.IntRange(min=8), default=None,
                     help="Downscale the input photo(s) so the longer side is at most this many pixels "
                          "(large photos take minutes per step; not for sr without --from-hr)."),
        click.option("--extra-layers", default="relu2_1,relu3_1", show_default=True,
                     help="VGG-19 layers the extra terms compare."),
        click.option("--extra-weights", default="auto", show_default=True,
                     help="Backbone weights of the extra terms: registry name, file, 'random', or 'auto' "
                          "(the best trained features here: vgg19, then vgg16-hed, then the shallow Caffe "
                          "layers; never downloads)."),
        run_options(steps=None, steps_help="Adam steps per run (default: the task's paper/reference value).",
                    min_steps=1, seed=None, seed_help="Seed of weights, code, noise (default 0).",
                    checkpoint_every=200, min_checkpoint_every=1,
                    checkpoint_help="Save OUT/checkpoint.pt every this many steps (and on Ctrl-C).",
                    resume_help="Continue from OUT/checkpoint.pt."),
        device_option(),
        set_option(_extra_keys, what="the weight of an experimental feature-statistics term (extra.LOSS, "
                   "LOSS any registered loss)", example="extra.cx=0.05 --set extra.pdl=0.01",
                   aliases="--extra LOSS=WEIGHT (= --set extra.LOSS=WEIGHT)",
                   names=lambda: names_help("loss")),
        alias_option("--extra", to=_extra_alias, metavar="LOSS=WEIGHT"),
    ]  # fmt: skip
    return stack(*options)(func)


def _clean_option(help: str) -> Callable:
    """``--clean FILE``: the ground truth a verb tracks the PSNR against."""
    return click.option("--clean", type=click.Path(exists=True, dir_okay=False), default=None, help=help)


def _fit_kwargs(o: dict[str, Any], device: torch.device) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "steps": o["steps"],
        "lr": o["lr"],
        "input_noise": o["input_noise"],
        "ema": o["ema"],
        "ema_start": o["ema_start"],
        "runs": o["runs"],
        "seed": o["seed"],
        "precision": o["precision"],
        "channels_last": o["channels_last"],
        "compile": o["compile_"],
        "backtrack": o["backtrack"] if o["backtrack"] and o["backtrack"] > 0 else None,
        "checkpoint": str(Path(o["out"]) / "checkpoint.pt"),
        "checkpoint_every": o["checkpoint_every"],
        "resume": o["resume"],
        "progress": not o["quiet"],
        "device": device,
        "on_output": o.get("on_output"),
    }
    return {k: v for k, v in kw.items() if v is not None or k == "backtrack"}


def _net(o: dict[str, Any], default: str) -> tuple[str, dict[str, Any] | None]:
    """The preset name (--net or the verb's default) and the constructor overrides of --depth, --channels
    and --skip-channels (one value for every level)."""
    from ..prior.tasks import PRESETS

    name = o["net"] or default
    if name not in PRESETS:
        raise click.BadParameter(f"net must be one of {', '.join(PRESETS)}; got {name!r}", param_hint="--net")
    preset = PRESETS[name]
    opts: dict[str, Any] = {}
    depth, channels, skip = o["depth"], o["channels"], o["skip_channels"]
    if depth is None and channels is None and skip is None:
        return name, None
    if preset.arch not in ("skip", "encoder_decoder"):
        raise click.UsageError(
            "--depth/--channels/--skip-channels apply to the skip and encoder-decoder presets"
        )
    base = dict(preset.net)
    n = depth or len(base.get("channels_down", [128] * 5))
    ch = channels or (base.get("channels_down", [128] * 5)[-1])
    if preset.arch == "skip":
        if depth is not None or channels is not None:
            opts["channels_down"] = opts["channels_up"] = [ch] * n
        sk = skip if skip is not None else base.get("channels_skip", [4] * 5)[-1]
        opts["channels_skip"] = [sk] * n
    else:
        if skip:
            raise click.UsageError("the encoder-decoder preset has no skip connections; use --net skip")
        opts["channels"] = [ch] * n
    for key in ("kernel_down", "kernel_up", "upsample", "downsample"):
        if isinstance(base.get(key), list) and len(base[key]) != n:
            opts[key] = base[key][-1]
    return name, opts


def _extra_keys(prefix: tuple[str, ...]) -> list[str] | None:
    """``--set`` keys of the prior verbs: ``extra.LOSS`` (LOSS a registered loss, name or alias)."""
    if not prefix:
        return ["extra"]
    if prefix == ("extra",):
        from ..registry import get_registry

        losses = get_registry("loss")
        return [*losses.names(), *losses.aliases]
    return None


def _extra_alias(item: str) -> str:
    """The old ``--extra LOSS=WEIGHT`` (or ``--extra LOSS``: weight 1) as ``--set extra.LOSS=WEIGHT``."""
    name, sep, weight = item.partition("=")
    return f"extra.{name.strip()}={weight if sep else 1}"


def _extra(o: dict[str, Any], device: torch.device) -> Any:
    extra = o["overrides"].get("extra") or {}
    if not extra:
        return None
    from ..prior.tasks import statistics_objective

    terms: dict[str, float] = {}
    for name, weight in extra.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(
                f"--set extra.{name}: the weight must be a number (LOSS=WEIGHT, e.g. extra.cx=0.05), "
                f"got {weight!r}"
            )
        terms[name] = float(weight)
    weights = None if o["extra_weights"] == "random" else o["extra_weights"]
    layers = [s.strip() for s in o["extra_layers"].split(",") if s.strip()]
    return statistics_objective(terms, layers=layers, weights=weights).to(device)


def _read(
    path: str | os.PathLike[str],
    device: torch.device,
    max_size: int | None = None,
    *,
    keep_gray: bool = True,
    **kwargs: Any,
) -> torch.Tensor:
    """Read an input photo; a grayscale file stays one channel (noise, fit and outputs in gray) unless
    ``keep_gray`` is False (backbones and pairs that need RGB)."""
    from ..io import read_image

    if keep_gray and "channels" not in kwargs and is_grayscale_file(path):
        kwargs["channels"] = 1
    try:
        image = read_image(path, alpha="composite", device=device, **kwargs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if max_size and max(image.shape[-2:]) > max_size:
        h, w = image.shape[-2:]
        f = max_size / max(h, w)
        size = (max(1, round(h * f)), max(1, round(w * f)))
        image = torch.nn.functional.interpolate(
            image, size=size, mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)
    return image


def _write_image(path: Path, image: torch.Tensor) -> None:
    from ..io import write_image

    write_image(path, image)


def _snapshots(o: dict[str, Any], out: Path) -> Any:
    """The ``on_output`` hook writing OUT/snapshots/step_NNNNN.png every --snapshot-every steps."""
    every = o.get("snapshot_every") or 0
    if not every:
        return None
    folder = out / "snapshots"
    folder.mkdir(exist_ok=True)

    def on_output(run: int, step: int, output: torch.Tensor, average: torch.Tensor) -> None:
        if step % every:
            return
        tag = f"run{run}_" if (o.get("runs") or 1) > 1 else ""
        _write_image(folder / f"{tag}step_{step:05d}.png", output.detach().float().clamp(0, 1))
        if o.get("ema") != 0:
            _write_image(folder / f"{tag}step_{step:05d}_avg.png", average.detach().float().clamp(0, 1))

    return on_output


def _command(verb: str) -> Callable:
    """Wrap a verb body: threads, output folder, errors → click errors, Ctrl-C → message, result summary."""

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def wrapper(**o: Any) -> None:
            o["out"] = o["out"] or f"prior-{verb}"
            out = check_output_folder(Path(o["out"]))
            device = resolve_device(o["device"])
            apply_threads(o["threads"], device)
            o["on_output"] = _snapshots(o, out)
            on_interrupt(out / "checkpoint.pt")
            result = body(o, device, out)
            paths = result.save(out)
            info = result.info
            line = f"{verb}: {info['steps']} steps × {info['runs']} run(s) on {info['device']}"
            if info.get("steps_per_second") is None:  # --resume of a run that had already finished
                line = (
                    f"{verb}: the run in {out} had already finished its {info['steps']} steps × "
                    f"{info['runs']} run(s); nothing to do (its results are written again below; pass a "
                    "larger --steps with --resume to continue it)"
                )
            else:
                line += f" ({info['precision']}, {info['steps_per_second']:.2f} steps/s)"
            click.echo(line)
            if result.psnr is not None:
                click.echo(f"PSNR final {result.psnr:.2f} dB, averaged {result.psnr_average:.2f} dB")
            for kind in ("result", "average", "curves", "json"):
                click.echo(f"  {kind:8s} {paths[kind]}")

        return wrapper

    return decorate


# ------------------------------------------------------------------------------------------------- group


@click.group(cls=FeatstatGroup, context_settings={"help_option_names": ["-h", "--help"]})
def prior() -> None:
    """Deep Image Prior: restore one photo by fitting a random network to it (no training data).

    \b
    Examples:
      featstat prior denoise                       # embedded sample photo, σ = 25 noise, PSNR shown
      featstat prior denoise noisy.png -o out/     # blind denoising of your photo
      featstat prior sr small.png --factor 4       # 4× super-resolution
      featstat prior inpaint photo.png --mask holes.png
      featstat prior jpeg compressed.jpg
      featstat prior flash flash.jpg noflash.jpg
      featstat prior invert photo.jpg --arch vgg19 --layer relu3_1 --weights vgg19-caffe-normalised-to-relu3_1
      featstat prior nets                          # network presets

    A run on CPU takes minutes (hundreds of ms per step at 256²); --steps trades quality for time and
    curves.png shows what each step bought. Ctrl-C saves a checkpoint; --resume continues it.
    """


@prior.command("nets")
def nets_command() -> None:
    """List the network presets (--net) with their input codes and settings.

    \b
    Examples:
      featstat prior nets
      featstat prior inpaint photo.png --drop 0.5 --net encoder-decoder
    """
    from ..nets.hourglass import build_network
    from ..prior.tasks import PRESETS

    for name, p in PRESETS.items():
        try:
            n = sum(
                x.numel() for x in build_network(p.arch, in_channels=p.code_channels, **p.net).parameters()
            )
            size = f"{n / 1e6:.2f} M parameters"
        except ValueError:
            size = ""
        click.echo(f"{name:16s} {p.code}×{p.code_channels} input, {size}")
        click.echo(f"{'':16s} {p.description}")


# --------------------------------------------------------------------------------------------------- verbs


def _sample_image(device: torch.device) -> tuple[torch.Tensor, str]:
    """A 128² RGB photo shipped with scikit-image (astronaut Eileen Collins, NASA, public domain), or a
    generated scene when scikit-image is not installed."""
    try:
        from skimage import data
    except ImportError:
        return _generated_image(SAMPLE_SIZE).to(
            device
        ), "a generated test scene (install scikit-image for a photo)"
    arr = data.astronaut()[0:256, 128:384]  # the face and shoulders
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    x = torch.nn.functional.avg_pool2d(x, 256 // SAMPLE_SIZE)
    return x.to(device), "scikit-image's astronaut photo (NASA, public domain), 128² crop"


def _generated_image(size: int) -> torch.Tensor:
    """A smooth scene with edges: sky gradient, sun disc, hills, striped field (deterministic)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.stack([0.3 + 0.4 * y, 0.5 + 0.3 * y, 0.9 - 0.3 * y])
    sun = ((x - 0.7) ** 2 + (y - 0.25) ** 2) < 0.01
    img[:, sun] = torch.tensor([1.0, 0.85, 0.3])[:, None]
    hill = y > 0.6 + 0.1 * torch.sin(6 * x)
    stripes = 0.5 + 0.5 * torch.sin(40 * x + 10 * y)
    img[0][hill], img[1][hill], img[2][hill] = 0.2 + 0.2 * stripes[hill], 0.5 + 0.2 * stripes[hill], 0.2
    return img[None].clamp(0, 1)


@prior.command("denoise")
@path_argument("image", kind="file", required=False)
@click.option(
    "--sigma",
    type=float,
    default=None,
    help="Add Gaussian noise of this σ (0-255 scale) to IMAGE, which is then the ground truth.",
)
@_clean_option("Ground truth of a noisy IMAGE, to track the PSNR.")
@_fit_options
@_command("denoise")
def denoise_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Blind denoising of IMAGE (the noisy photo): the network fits the image before the noise.

    Without IMAGE, runs on an embedded sample photo (scikit-image's astronaut, 128² crop) with σ = 25 noise
    and 600 steps on a lighter net (64 channels per level; --channels 128 for the reference), showing the
    PSNR as it goes. Paper setting: 1800 steps (reference code: 3000), input
    noise 1/30, averaging 0.99.

    \b
    Examples:
      featstat prior denoise                                   # sample photo, offline
      featstat prior denoise noisy.png -o out/ --steps 1800
      featstat prior denoise photo.png --sigma 25 -o out/      # add σ=25 noise, track PSNR
      featstat prior denoise noisy.png --clean gt.png --runs 2 # average two runs
      featstat prior denoise noisy.png -o out/ --resume        # continue after Ctrl-C
    """
    from ..prior import add_gaussian_noise, denoise

    if o["image"] is None and o["channels"] is None and o["net"] is None and o["depth"] is None:
        # the offline demo: 64 channels per level instead of the reference 128 — 2.6–3.3× more steps per
        # second on a 2-core CPU, 26.9 dB averaged after 600 steps (the reference net: about 27 dB)
        o["channels"] = 64
    net, net_options = _net(o, "skip")

    clean = _read(o["clean"], device, o["max_size"]) if o["clean"] else None
    if o["image"] is None:
        image, what = _sample_image(device)
        click.echo(
            f"no IMAGE given: denoising {what} with σ = {o['sigma'] or 25:g} noise"
            + (" (a lighter net, 64 channels per level: --channels 128 for the reference)"
               if o["channels"] == 64 else "")
        )  # fmt: skip
        o["sigma"] = o["sigma"] or 25.0
        o["steps"] = o["steps"] or 600
    else:
        image = _read(o["image"], device, o["max_size"])
    if o["sigma"] is not None:
        if clean is not None:
            raise click.UsageError("--sigma makes IMAGE the ground truth; do not pass --clean with it")
        clean = image
        image = add_gaussian_noise(image, o["sigma"] / 255.0, seed=o["seed"] or 0)
        _write_image(out / "clean.png", clean)
        _write_image(out / "noisy.png", image)
    return denoise(
        image, clean=clean, net=net, net_options=net_options, extra=_extra(o, device),
        **_fit_kwargs(o, device),
    )  # fmt: skip


@prior.command("sr")
@path_argument("image", kind="file")
@click.option("--factor", type=click.IntRange(min=2), default=4, show_default=True, help="Upscaling factor.")
@click.option(
    "--kernel",
    type=click.Choice(["lanczos2", "lanczos3", "bicubic", "bilinear", "box"]),
    default="lanczos2",
    show_default=True,
    help="Downsampler d of the data term ‖d(x) − x₀‖².",
)
@click.option(
    "--edge",
    type=click.Choice(["replicate", "renormalise", "reflect"]),
    default="replicate",
    show_default=True,
    help="Edge handling of d (replicate = reference code, renormalise = Pillow).",
)
@click.option(
    "--from-hr",
    is_flag=True,
    help="IMAGE is a high-resolution ground truth: make the low-resolution input from it and track PSNR.",
)
@click.option(
    "--degrade",
    type=click.Choice(["lanczos3", "lanczos2", "bicubic", "box"]),
    default="lanczos3",
    show_default=True,
    help="With --from-hr: how the input is made (lanczos3 = Pillow ANTIALIAS).",
)
@_clean_option("High-resolution ground truth of IMAGE, to track the PSNR.")
@click.option(
    "--extra-target",
    type=click.Choice(["bicubic", "input"]),
    default="bicubic",
    show_default=True,
    help="What the extra terms (--set extra.LOSS=WEIGHT) compare the result with: the bicubic upsampling or "
    "the input itself.",
)
@_fit_options
@_command("sr")
def sr_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Super-resolution of the low-resolution IMAGE by --factor (data term ‖d(x) − x₀‖², Lanczos d).

    Reference settings: 2000 steps and input noise 0.03 for ×4 (4000 and 0.05 for ×8), Lanczos-2
    downsampler with replicate edges. Also writes bicubic.png (the baseline) and its PSNR.

    \b
    Examples:
      featstat prior sr small.png --factor 4 -o out/
      featstat prior sr zebra_GT.png --from-hr --factor 4 --steps 500   # PSNR vs the original
      featstat prior sr lr.png --clean hr.png --kernel bicubic --edge renormalise
      featstat prior sr lr.png --set extra.cx=0.05 --extra-weights vgg19-caffe-normalised-to-relu3_1
    """
    from ..prior import psnr, resize, super_resolve

    net, net_options = _net(o, "skip")

    f = o["factor"]
    if o["max_size"] and not o["from_hr"]:
        raise click.UsageError(
            "--max-size would change the low-resolution input of sr; it applies with --from-hr only"
        )
    image = _read(o["image"], device, o["max_size"])
    clean = _read(o["clean"], device) if o["clean"] else None
    if o["from_hr"]:
        if clean is not None:
            raise click.UsageError("--from-hr makes IMAGE the ground truth; do not pass --clean with it")
        h, w = (image.shape[-2] // f) * f, (image.shape[-1] // f) * f
        top, left = (image.shape[-2] - h) // 2, (image.shape[-1] - w) // 2
        clean = image[..., top : top + h, left : left + w]
        image = resize(clean, (h // f, w // f), o["degrade"]).clamp(0, 1)
        _write_image(out / "clean.png", clean)
    _write_image(out / "lowres.png", image)
    bicubic = resize(image, (image.shape[-2] * f, image.shape[-1] * f), "bicubic").clamp(0, 1)
    _write_image(out / "bicubic.png", bicubic)
    if clean is not None and clean.shape == bicubic.shape:
        click.echo(f"bicubic baseline: PSNR {psnr(bicubic, clean):.2f} dB")
    return super_resolve(
        image, f, clean=clean, kernel=o["kernel"], edge=o["edge"], net=net, net_options=net_options,
        extra=_extra(o, device), extra_target=o["extra_target"], **_fit_kwargs(o, device),
    )  # fmt: skip


@prior.command("inpaint")
@path_argument("image", kind="file")
@click.option(
    "--mask",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Mask image: white (≥ 0.5) = known pixel, black = missing.",
)
@click.option(
    "--drop", type=float, default=None, help="Instead of --mask: remove this fraction of pixels at random."
)
@_clean_option("Ground truth, to track the PSNR (with --drop, IMAGE itself).")
@_fit_options
@_command("inpaint")
def inpaint_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Inpainting: fill the pixels of IMAGE that --mask marks missing (or a random --drop fraction).

    The data term ignores missing pixels; the network structure fills them. Presets: skip-inpaint (default,
    text removal, 6000 steps), encoder-decoder (large holes, meshgrid input, 5000 steps), skip-depth6/4/2,
    unet, resnet (Fig. 7.8 comparison, 3000 steps).

    \b
    Examples:
      featstat prior inpaint photo.png --mask mask.png -o out/
      featstat prior inpaint photo.png --drop 0.5 --steps 2000       # 50 % of pixels missing, PSNR shown
      featstat prior inpaint vase.png --mask vase_mask.png --net encoder-decoder
    """
    from ..prior import inpaint, random_mask

    net, net_options = _net(o, "skip-inpaint")

    image = _read(o["image"], device, o["max_size"])
    clean = _read(o["clean"], device, o["max_size"]) if o["clean"] else None
    if (o["mask"] is None) == (o["drop"] is None):
        raise click.UsageError("give exactly one of --mask FILE or --drop FRACTION")
    if o["mask"] is not None:
        mask = _read(o["mask"], device, o["max_size"], channels=1)
        if mask.shape[-2:] != image.shape[-2:]:
            raise click.UsageError(
                f"--mask is {tuple(mask.shape[-2:])} pixels but IMAGE is {tuple(image.shape[-2:])}; "
                "they must match"
            )
        mask = (mask > 0.5).float()
    else:
        mask = random_mask(tuple(image.shape[-2:]), o["drop"], seed=o["seed"] or 0, device=device)
        clean = clean if clean is not None else image
    _write_image(out / "masked.png", image * mask)
    return inpaint(
        image, mask, clean=clean, net=net, net_options=net_options,
        extra=_extra(o, device), **_fit_kwargs(o, device),
    )  # fmt: skip


@prior.command("jpeg")
@path_argument("image", kind="file")
@click.option(
    "--quality",
    type=click.IntRange(1, 95),
    default=None,
    help="Compress IMAGE at this JPEG quality first (IMAGE is then the ground truth).",
)
@_clean_option("Ground truth of IMAGE, to track the PSNR.")
@_fit_options
@_command("jpeg")
def jpeg_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Blind removal of JPEG artefacts (blocks, ringing) from IMAGE (Fig. 7.3: 2400 steps, before the
    network overfits them).

    \b
    Examples:
      featstat prior jpeg snail.jpg -o out/
      featstat prior jpeg photo.png --quality 10 --steps 1200        # compress, restore, PSNR shown
    """
    from ..prior import jpeg_compress, remove_jpeg_artifacts

    net, net_options = _net(o, "skip-small")

    image = _read(o["image"], device, o["max_size"])
    clean = _read(o["clean"], device, o["max_size"]) if o["clean"] else None
    if o["quality"] is not None:
        clean = image
        image = jpeg_compress(image, o["quality"])
        _write_image(out / "compressed.png", image)
    return remove_jpeg_artifacts(
        image, clean=clean, net=net, net_options=net_options,
        extra=_extra(o, device), **_fit_kwargs(o, device),
    )  # fmt: skip


@prior.command("flash")
@path_argument("flash", kind="file")
@path_argument("no_flash", kind="file")
@_fit_options
@_command("flash")
def flash_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Flash/no-flash: restore the noisy NO_FLASH photo with the FLASH photo of the same scene as input code.

    Reference settings: 600 steps, lr 0.1, no input noise. The pair must be aligned and the same size.

    \b
    Examples:
      featstat prior flash cave_flash.jpg cave_noflash.jpg -o out/
      featstat prior flash flash.png noflash.png --steps 300 --seed 1
    """
    from ..prior import flash_no_flash

    net, net_options = _net(o, "skip-flash")

    if o["overrides"].get("extra"):
        raise click.UsageError("extra terms (--set extra.LOSS=WEIGHT) are not available for flash")
    return flash_no_flash(
        _read(o["flash"], device, o["max_size"], keep_gray=False),
        _read(o["no_flash"], device, o["max_size"], keep_gray=False), net=net,
        net_options=net_options, **_fit_kwargs(o, device),
    )  # fmt: skip


@prior.command("invert")
@path_argument("image", kind="file")
@click.option(
    "--arch",
    type=RegistryChoice("extractor", trained=True),
    default="alexnet",
    show_default=True,
    help="Backbone whose layer is inverted.",
)
@click.option("--layer", default="conv5", show_default=True, help="Layer to invert (featstat names).")
@click.option(
    "--weights",
    default="default",
    show_default=True,
    help="Backbone weights: 'default' (torchvision file), a registry name, a file, or 'random'.",
)
@_fit_options
@_command("invert")
def invert_command(o: dict[str, Any], device: torch.device, out: Path) -> Any:
    """Natural pre-image: an image whose --layer features match IMAGE's, regularised by the deep image prior.

    Reference settings: 3000 steps (code: 3100), lr 0.001, skip-inversion network (zero padding, average
    pooling, nearest upsampling), output rendered at a multiple of 64 and cropped.

    \b
    Examples:
      featstat prior invert building.jpg --arch alexnet --layer conv5      # needs torchvision's AlexNet file
      FEATSTAT_WEIGHTS=/data/weights featstat prior invert monkey.jpg --arch vgg19 --layer relu3_1 \\
          --weights vgg19-caffe-normalised-to-relu3_1
      featstat prior invert photo.png --weights random --layer conv2       # a random network's invariances
    """
    from ..prior import invert_features

    net, net_options = _net(o, "skip-inversion")

    if o["overrides"].get("extra"):
        raise click.UsageError("extra terms (--set extra.LOSS=WEIGHT) are not available for invert")
    weights = None if o["weights"] == "random" else o["weights"]
    return invert_features(
        _read(o["image"], device, o["max_size"], keep_gray=False), o["layer"], arch=o["arch"],
        weights=weights, net=net, net_options=net_options, **_fit_kwargs(o, device),
    )  # fmt: skip
