"""``featstat texture | style | train texture | train style | sample | stylize``: texture synthesis and style
transfer by optimisation and with feed-forward generators.

The verbs are listed in :data:`featstat.cli.VERBS`. Options shared with other verbs (``--device``, the
run options, ``--set``) come from :mod:`featstat.cli._common`.

``train`` is a click group: other training recipes are added to it with ``train.add_command(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._common import (
    CONTEXT,
    FeatstatCommand,
    FeatstatGroup,
    alias_option,
    apply_threads,
    check_output_folder,
    checkpoint_argument,
    checkpoint_file,
    device_option,
    image_files,
    is_grayscale_file,
    log,
    on_interrupt,
    out_option,
    output_file,
    path_argument,
    resolve_device,
    run_options,
    seed_option,
    set_option,
    stack,
)
from ._registry import RegistryChoice, RegistryHelpOption, names_help

_PRESET_HELP = (
    "Feature extractor and layers: 'auto' (default) takes the first available of: gatys (Caffe VGG-19 "
    "'vgg19-caffe', relu1_1…relu5_1, content relu4_2, the papers' setting), gatys-torchvision (the same "
    "layers on torchvision's VGG-19 file), gatys-vgg16-hed (the same layer names on HED's VGG-16: "
    "`featstat weights fetch vgg16-hed`), caffe-relu3_1 (the real Caffe VGG-19 layers up to relu3_1, file "
    "vgg19-caffe-normalised-to-relu3_1: relu1_1, relu2_1, relu3_1), random-filters (no download at all: "
    "random filters of sizes 3, 5, 7, 15, 37, after Ustyuzhaninov et al. 2017). Files are looked up in "
    "$FEATSTAT_WEIGHTS and the torch hub cache; 'auto' never downloads."
)


def _statistic_keys(prefix: tuple[str, ...]) -> list[str] | None:
    """``--set`` keys of the texture verbs: STATISTIC.OPTION, the statistic a registered distribution loss
    (name or alias) and OPTION a keyword of its constructor."""
    import inspect

    from ..registry import get_registry

    losses = get_registry("loss")
    if not prefix:
        names = losses.names(distribution_statistic=True)
        return [*names, *(a for a, name in losses.aliases.items() if name in names)]
    if len(prefix) == 1:
        signature = inspect.signature(losses.get(prefix[0]).__init__)
        if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return None
        return [n for n, p in signature.parameters.items() if n != "self" and p.kind is not p.VAR_POSITIONAL]
    return None


def _image_so_far(image: Path) -> Any:
    """After Ctrl-C: write the image of the checkpoint to ``image`` (see :func:`._common.on_interrupt`)."""

    def save(checkpoint: Path) -> str:
        try:
            from .. import io
            from ..texture.synthesis import checkpoint_image

            so_far, step = checkpoint_image(checkpoint)
            io.write_image(image, so_far.float().clamp(0, 1))
            return f"the image so far (step {step}): {image}"
        except (ValueError, KeyError, OSError) as exc:  # the checkpoint stays the thing that matters
            return f"(could not write the image so far: {exc})"

    return save


def _parse_size(value: str | None) -> tuple[int, int] | None:
    """'256' → (256, 256); '384x256' (WIDTHxHEIGHT) → (256, 384) as (height, width)."""
    if value is None:
        return None
    text = value.lower().replace("×", "x")
    try:
        if "x" in text:
            w, h = (int(v) for v in text.split("x", 1))
        else:
            w = h = int(text)
    except ValueError:
        raise click.BadParameter(
            f"size must be N or WIDTHxHEIGHT (e.g. 256 or 384x256), got {value!r}"
        ) from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"size must be positive, got {value!r}")
    return h, w


def _parse_statistic(values: Sequence[str]) -> str | dict[str, float]:
    """('gram',) → 'gram'; ('gram:1', 'swd:10') → {'gram': 1.0, 'swd': 10.0}."""
    if not values:
        return "gram"
    out: dict[str, float] = {}
    for v in values:
        name, _, weight = v.partition(":")
        try:
            out[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise click.BadParameter(f"--statistic must be NAME or NAME:WEIGHT, got {v!r}") from None
    return next(iter(out)) if len(out) == 1 and next(iter(out.values())) == 1.0 else out


def _layers(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _layer_weights(value: str) -> str | None:
    return None if value == "equal" else value


def _outputs(out: Path) -> dict[str, Path]:
    stem = out.with_suffix("")
    return {
        "image": out,
        "json": Path(f"{stem}.json"),
        "curve": Path(f"{stem}_loss.png"),
        "checkpoint": Path(f"{stem}.ckpt.pt"),
    }


def _curves(history: dict[str, list[float]]) -> dict[str, list[float]]:
    skip = {"seconds", "scale", "evaluations", "lr"}
    return {k: v for k, v in history.items() if k not in skip and v}


def _plot(path: Path, history: dict[str, list[float]], title: str) -> None:
    """The loss-curve PNG; a missing matplotlib only costs the plot (image and JSON are written first)."""
    from ..engine.runs import plot_curves

    curves = _curves(history)
    if not curves:  # --steps 0 (or a run that was already finished): nothing to plot
        click.echo(f"note: no steps were run, so no loss curve ({path.name}) was written", err=True)
        return
    try:
        plot_curves(path, curves, title=title)
    except ImportError as err:
        click.echo(f"warning: no loss-curve PNG ({err}); pip install matplotlib", err=True)


def _write_run(paths: dict[str, Path], result: Any, extra: dict[str, Any], title: str) -> None:
    from ..engine.runs import write_json

    write_json(
        paths["json"],
        {
            **extra,
            "settings": result.settings,
            "final": {"total": result.total, "terms": result.terms},
            "steps": result.steps,
            "seconds": result.seconds,
            "evaluations": result.history["evaluations"][-1] if result.history.get("evaluations") else None,
            "outputs": {k: str(v) for k, v in paths.items()},
        },
    )
    _plot(paths["curve"], result.history, title)


def _read(path: Path, device: Any) -> Any:
    from .. import io

    return io.read_image(path, alpha="composite").to(device)


def _start_synthesis(run: dict[str, Any], paths: dict[str, Path]) -> tuple[Any, Any]:
    """What texture and style do first (after checking -o): register the checkpoint and the image so far for
    Ctrl-C, resolve the preset, device and threads. Returns (device, preset)."""
    from ..texture.synthesis import resolve_preset

    on_interrupt(paths["checkpoint"], save_image=_image_so_far(paths["image"]))
    preset = resolve_preset(run["preset"])
    device = resolve_device(run["device"])
    apply_threads(run["threads"], device)
    return device, preset


def _synthesis_kwargs(run: dict[str, Any], paths: dict[str, Path], preset: Any) -> dict[str, Any]:
    """The keywords ``synthesize_texture`` and ``transfer_style`` share, from the options of ``_common``."""
    keep = ("steps", "optimizer", "lr", "scales", "seed", "checkpoint_every", "resume")
    return {
        **{k: run[k] for k in keep},
        "preset": preset,
        "statistic": _parse_statistic(run["statistics"]),
        "layer_weights": _layer_weights(run["layer_weights"]),
        "options": run["overrides"] or None,
        "checkpoint": paths["checkpoint"],
        "progress": not run["quiet"],
    }


def _wrote(paths: dict[str, Path], result: Any) -> None:
    click.echo(
        f"wrote {paths['image']} (final loss {result.total:.4g}; {paths['json'].name}, {paths['curve'].name})"
    )


#: The objective options of every texture verb (synthesis and generator training): the preset, the
#: statistic(s) and their options (``--set STATISTIC.OPTION=VALUE``, old spelling ``--option``).
_objective = [
    click.option("--preset", default="auto", show_default=True, help=_PRESET_HELP),
    click.option(
        "--statistic",
        "statistics",
        multiple=True,
        metavar="NAME[:WEIGHT]",
        cls=RegistryHelpOption,
        help_fn=lambda: (
            f"Default gram; any distribution statistic: {names_help('loss', distribution_statistic=True)}; "
            "repeat for a weighted mix, e.g. --statistic gram --statistic swd:10."
        ),
    ),
    set_option(
        _statistic_keys,
        what="a statistic's option (STATISTIC.OPTION)",
        example="contextual.bandwidth=0.5 or --set sliced_wasserstein.num_projections=64",
        aliases="--option STAT.KEY=VALUE (the same assignment)",
    ),
    alias_option("--option", to=str, metavar="STAT.KEY=VALUE"),
]

#: The style-transfer objective's layers and weights (`featstat style` and `featstat train style`).
_style_terms = stack(
    click.option(
        "--style-layers", default=None, help="Comma-separated style layers [default: the preset's]."
    ),
    click.option(
        "--content-layers", default=None, help="Comma-separated content layers [default: the preset's]."
    ),
    click.option("--style-weight", type=float, default=None, help="Style weight [default: the preset's]."),
    click.option(
        "--content-weight", type=float, default=None, help="Content weight [default: the preset's]."
    ),
    click.option("--tv-weight", type=float, default=0.0, show_default=True, help="Total-variation weight."),
)

_common = [
    click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True),
    click.option("--lr", type=float, default=None, help="Step size [default: 1 for L-BFGS, 0.02 for Adam]."),
    click.option(
        "--scales",
        type=int,
        default=1,
        show_default=True,
        help="Coarse-to-fine levels (each halves the size of the previous one).",
    ),
    *_objective,
    click.option(
        "--layer-weights",
        type=click.Choice(["equal", "gatys"]),
        default="equal",
        show_default=True,
        help="equal: 1 per layer (reference code); gatys: C²/(4|L|), Gatys' E_l normalisation.",
    ),
    run_options(
        steps=300,
        steps_help="Optimiser iterations per scale (L-BFGS: each may evaluate the objective several times).",
        seed_help="Seeds the noise initialisation.",
        checkpoint_every=50,
        checkpoint_help="Save a checkpoint (OUT stem + .ckpt.pt) every N steps (0: only at the end / on "
        "Ctrl-C).",
        resume_help="Continue from the checkpoint beside OUT (same settings).",
    ),
    device_option(),
]


# ------------------------------------------------------------------------------------------------- texture


@click.command(cls=FeatstatCommand, name="texture", context_settings=CONTEXT)
@path_argument("example", kind="file")
@out_option(
    "Output image (.png/.jpg), or a folder (existing, or written with a trailing slash) to get "
    "EXAMPLE-NAME.png in it; OUT.json, OUT_loss.png and OUT.ckpt.pt are written beside it.",
    kind="image",
)
@click.option("--size", default=None, metavar="N|WxH", help="Output size [default: the example's].")
@click.option("--layers", default=None, help="Comma-separated layers [default: the preset's texture layers].")
@click.option("--tile", is_flag=True, help="Make the texture tileable (wrap-around seams are optimised too).")
@click.option(
    "--example-size",
    type=int,
    default=None,
    help="Resize the example so its longer side is this many pixels first.",
)
@stack(*_common)
def texture_command(
    example: Path,
    out: str,
    size: str | None,
    layers: str | None,
    tile: bool,
    example_size: int | None,
    **run: Any,
) -> None:
    """Synthesise a texture like EXAMPLE by optimising pixels (Gatys et al.; any statistic).

    Writes OUT, OUT.json (settings and final loss terms), OUT_loss.png (loss curves) and OUT.ckpt.pt
    (checkpoint: Ctrl-C saves it, --resume continues exactly). With no pretrained weights on the machine the
    'auto' preset uses random multi-scale filters, so this always works offline.

    \b
    Examples:
      featstat texture pebbles.jpg -o pebbles_big.png --size 512x256 --scales 2
      featstat texture bricks.png -o tile.png --size 256 --tile --steps 500
      featstat texture wood.png -o wood.png --statistic gram --statistic swd:10 --preset random-filters
      FEATSTAT_WEIGHTS=~/weights featstat texture metal.pgm -o metal.png --preset caffe-relu3_1
    """
    paths = _outputs(output_file(out, f"{example.stem}.png"))
    from .. import io
    from ..texture.synthesis import synthesize_texture

    dev, p = _start_synthesis(run, paths)
    ex = _read(example, dev)
    if example_size:
        ex = _resize_longer(ex, example_size)
    log.info(f"texture: preset {p.name} ({p.description})")
    result = synthesize_texture(
        ex,
        _parse_size(size),
        layers=_layers(layers),
        tile=tile,
        **_synthesis_kwargs(run, paths, p),
    )
    gray = is_grayscale_file(example)  # a grayscale example gives a grayscale texture
    io.write_image(paths["image"], result.image.mean(1, keepdim=True) if gray else result.image)
    _write_run(paths, result, {"command": "texture", "example": str(example)}, f"texture: {example.name}")
    _wrote(paths, result)


def luminance_transfer(stylised: Any, content: Any) -> Any:
    """The stylised image's luminance with the content's chrominance (colour preservation by luminance-only
    transfer, Gatys et al. 2016): Y from ``stylised``, Cb and Cr from ``content`` (same size; full-swing
    BT.601, :func:`featstat.ops.rgb_to_ycbcr`), back to RGB clamped to [0, 1]."""
    import torch

    from ..ops import rgb_to_ycbcr, ycbcr_to_rgb

    y = rgb_to_ycbcr(stylised, swing="full")[:, :1]
    cbcr = rgb_to_ycbcr(content, swing="full")[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, cbcr], 1), swing="full").clamp(0, 1)


def _resize_to(image: Any, hw: Any) -> Any:
    import torch.nn.functional as F

    if tuple(image.shape[-2:]) == tuple(hw):
        return image
    out = F.interpolate(image, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1)


def _resize_longer(image: Any, longer: int) -> Any:
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    f = longer / max(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


# --------------------------------------------------------------------------------------------------- style


@click.command(cls=FeatstatCommand, name="style", context_settings=CONTEXT)
@path_argument("content", kind="file")
@path_argument("style", kind="file")
@out_option(
    "Output image, or a folder (existing, or written with a trailing slash) to get CONTENT_STYLE.png in "
    "it; OUT.json, OUT_loss.png and OUT.ckpt.pt are written beside it.",
    kind="image",
)
@click.option(
    "--size",
    default=None,
    metavar="N|WxH",
    help="Output size; N sets the longer side [default: the content's size].",
)
@_style_terms
@click.option(
    "--style-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Style image resized to this × the output's longer side.",
)
@click.option(
    "--init",
    type=click.Choice(["content", "noise"]),
    default="content",
    show_default=True,
    help="Start from the content image or from noise (Gatys et al. 2016).",
)
@click.option(
    "--preserve-color",
    is_flag=True,
    help="Keep the content's colours: the result's luminance with the content's chrominance (YCbCr), the "
    "luminance-only transfer of Gatys et al. 2016 ('Preserving color in neural artistic style transfer').",
)
@click.option(
    "--content-mask",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Spatial control, with --style-mask: a grayscale image over CONTENT (any size); its white part "
    "takes "
    "its style only from the white part of the style mask, its black part only from the black part "
    "(guided Gram loss, Gatys et al. 2017; grey levels weight both).",
)
@click.option(
    "--style-mask",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The regions of STYLE matching --content-mask (a grayscale image; white and black).",
)
@stack(*_common)
def style_command(
    content: Path,
    style: Path,
    out: str,
    size: str | None,
    style_layers: str | None,
    content_layers: str | None,
    style_weight: float | None,
    content_weight: float | None,
    tv_weight: float,
    style_scale: float,
    init: str,
    preserve_color: bool,
    content_mask: Path | None,
    style_mask: Path | None,
    **run: Any,
) -> None:
    """Paint CONTENT in the style of STYLE by optimising pixels (Gatys et al. 2016; any statistic).

    Writes OUT, OUT.json, OUT_loss.png and OUT.ckpt.pt (see `featstat texture --help`).

    \b
    Examples:
      featstat style amber.jpg wave.jpg -o amber_wave.png --size 256
      featstat style photo.jpg starry_night.jpg -o out.png --style-weight 1e3 --scales 2 --steps 200
      featstat style photo.jpg udnie.jpg -o cx.png --statistic cx --set contextual.bandwidth=0.5
      featstat style photo.jpg wave.jpg -o out/ --preserve-color   # the photo's colours, the wave's strokes
      featstat style photo.jpg two.jpg -o out.png --content-mask sky.png --style-mask left.png
    """
    paths = _outputs(output_file(out, f"{content.stem}_{style.stem}.png"))
    from .. import io
    from ..texture.synthesis import transfer_style

    dev, p = _start_synthesis(run, paths)
    c = _read(content, dev)
    s = _read(style, dev)
    if (content_mask is None) != (style_mask is None):
        raise ValueError("--content-mask and --style-mask go together: give both or neither")
    masks = {
        name: io.read_image(path, channels=1, alpha="composite").to(dev)
        for name, path in (("content_mask", content_mask), ("style_mask", style_mask))
        if path is not None
    }
    hw = _parse_size(size)
    if size is not None and "x" not in size.lower().replace("×", "x"):
        c = _resize_longer(c, hw[0])
        hw = None
    log.info(f"style: preset {p.name} ({p.description})")
    result = transfer_style(
        c,
        s,
        size=hw,
        style_layers=_layers(style_layers),
        content_layers=_layers(content_layers),
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        style_scale=style_scale,
        init=init,
        **_synthesis_kwargs(run, paths, p),
        **masks,
    )
    image = result.image
    if preserve_color:
        image = luminance_transfer(image, _resize_to(c, image.shape[-2:]))
    io.write_image(paths["image"], image)
    _write_run(
        paths,
        result,
        {
            "command": "style",
            "content": str(content),
            "style": str(style),
            "preserve_color": preserve_color,
            "content_mask": str(content_mask) if content_mask else None,
            "style_mask": str(style_mask) if style_mask else None,
        },
        f"style: {content.name} × {style.name}",
    )
    _wrote(paths, result)


# --------------------------------------------------------------------------------------------------- train


@click.group(name="train", cls=FeatstatGroup, context_settings=CONTEXT)
def train() -> None:
    """Train feed-forward generators (texture networks, stylisation networks, restoration recipes).

    \b
    Examples:
      featstat train texture pebbles.jpg -o runs/pebbles --steps 2000
      featstat train style wave.jpg photos/ -o runs/wave --arch stylenet --norm instance
      featstat train COMMAND --help
    """


#: Default Adam learning rates of `featstat train texture` / `train style`. Texture Networks trained texture
#: generators at 0.1 (thesis §2.4.1). The thesis gives no rate for StyleNet; Johnson et al. and the Texture
#: Networks reference code train stylisation nets at 1e-3. Measured here (StyleNet IN, 64², batch 4, 40 steps,
#: caffe-relu3_1 / random-filters presets; loss at step 1 → lowest): 0.1 saturates the sigmoid into one flat
#: colour after the first step (896 → 1.8e5 / 103 → 2.3e3, never recovers); 0.01: 896 → 87 / 103 → 24;
#: 0.001: 896 → 40 / 103 → 5.5. Hence 0.001 (docs/synthesis.md).
TEXTURE_LR = 0.1
STYLE_LR = 0.001

_train_common = [
    out_option("Run folder: checkpoint.pt, samples.png, loss.png, run.json.", dest="out_dir"),
    click.option("--size", type=int, default=256, show_default=True, help="Side of the training images."),
    click.option(
        "--batch-size", type=int, default=16, show_default=True, help="Images per step (thesis: 16)."
    ),
    click.option(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate [default: 0.1 for texture (thesis), 0.001 for style (0.1 saturates "
        "StyleNet into one flat colour)].",
    ),
    click.option("--lr-decay", type=float, default=0.7, show_default=True),
    click.option(
        "--decay-start",
        type=int,
        default=1000,
        show_default=True,
        help="Multiply the learning rate by --lr-decay at this iteration…",
    ),
    click.option(
        "--decay-every", type=int, default=200, show_default=True, help="…and every N iterations after."
    ),
    click.option(
        "--diversity",
        type=float,
        default=0.0,
        show_default=True,
        help="λ of the diversity (entropy) term of Improved Texture Networks (0: off).",
    ),
    click.option(
        "--diversity-layer", default=None, help="Measure diversity on this feature layer [default: pixels]."
    ),
    click.option(
        "--normalize-gradients",
        is_flag=True,
        help="Divide the gradient at each feature layer by its L1 norm (reference code option).",
    ),
    *_objective,
    click.option("--samples", type=int, default=4, show_default=True, help="Samples written at the end."),
    run_options(
        steps=2000,
        steps_help="Training iterations (thesis: 2000).",
        seed_help="Seeds the initialisation and the noise.",
        checkpoint_every=200,
        checkpoint_help="Save OUT/checkpoint.pt every N steps (and at the end and on Ctrl-C).",
        resume_help="Continue from OUT/checkpoint.pt (same settings).",
    ),
    device_option(),
]


def _start_training(run: dict[str, Any]) -> tuple[Path, Any, Any]:
    """What both generator-training verbs do first: check the run folder, register its checkpoint for
    Ctrl-C, resolve the preset, device and threads. Returns (run folder, device, preset)."""
    from ..texture.synthesis import resolve_preset

    out_dir = check_output_folder(run["out_dir"])
    on_interrupt(out_dir / "checkpoint.pt")
    preset = resolve_preset(run["preset"])
    device = resolve_device(run["device"])
    apply_threads(run["threads"], device)
    return out_dir, device, preset


def _training_kwargs(run: dict[str, Any], preset: Any, default_lr: float) -> dict[str, Any]:
    """The keywords ``train_texture`` and ``train_style`` share, from the options of ``_train_common``."""
    keep = ("steps", "size", "batch_size", "diversity", "diversity_layer", "normalize_gradients", "lr_decay",
            "decay_start", "decay_every", "seed", "checkpoint_every", "resume")  # fmt: skip
    return {
        **{k: run[k] for k in keep},
        "preset": preset,
        "statistic": _parse_statistic(run["statistics"]),
        "options": run["overrides"] or None,
        "lr": default_lr if run["lr"] is None else run["lr"],
        "checkpoint": run["out_dir"] / "checkpoint.pt",
        "progress": not run["quiet"],
    }


def _finish_training(out_dir: Path, result: Any, images: Any, extra: dict[str, Any], title: str) -> None:
    from .. import io
    from ..engine.runs import write_json

    io.write_image(out_dir / "samples.png", io.image_grid(images, len(images)))  # side by side
    write_json(
        out_dir / "run.json",
        {
            **extra,
            "settings": result.settings,
            "final_terms_mean_last_10": result.terms,
            "steps": result.steps,
            "seconds": result.seconds,
            "checkpoint": str(out_dir / "checkpoint.pt"),
        },
    )
    _plot(out_dir / "loss.png", result.history, title)


@train.command(cls=FeatstatCommand, name="texture", context_settings=CONTEXT)
@path_argument("example", kind="file")
@click.option(
    "--arch",
    type=RegistryChoice("network", family="texture", synthesises_textures=True),
    default="texture_v1",
    show_default=True,
    help="texture_v1: multi-scale Texture Network (K=5, 8→40 channels, circular); texture_v2: "
    "fully connected + up-convolutions (Improved Texture Networks).",
)
@click.option("--layers", default=None, help="Comma-separated texture layers [default: the preset's].")
@stack(*_train_common)
def train_texture_command(
    example: Path,
    arch: str,
    layers: str | None,
    **run: Any,
) -> None:
    """Train a texture generator on EXAMPLE (Texture Networks; --diversity for Improved Texture Networks).

    Writes OUT/checkpoint.pt (every --checkpoint-every steps, at the end and on Ctrl-C; --resume continues
    exactly), OUT/samples.png, OUT/loss.png and OUT/run.json. Sample more with `featstat sample`.

    \b
    Examples:
      featstat train texture pebbles.jpg -o runs/pebbles
      featstat train texture bricks.png -o runs/bricks --arch texture_v2 --diversity 10 --size 128
      featstat train texture bricks.png -o runs/bricks --resume
    """
    import torch

    from ..nets.texture import build_generator, generate
    from ..texture.training import train_texture

    out_dir, dev, p = _start_training(run)
    ex = _read(example, dev)
    log.info(f"train texture: preset {p.name} ({p.description})")
    seed, size = run["seed"], run["size"]
    net = (_v2_for_size(size, seed) if arch == "texture_v2" else build_generator(arch, seed=seed)).to(dev)
    result = train_texture(net, ex, layers=_layers(layers), **_training_kwargs(run, p, TEXTURE_LR))
    images = generate(
        result.generator, max(1, run["samples"]), size, seed=torch.Generator(dev).manual_seed(seed)
    )
    _finish_training(
        out_dir,
        result,
        images,
        {"command": "train texture", "example": str(example)},
        f"train texture: {example.name}",
    )
    click.echo(f"wrote {out_dir}/checkpoint.pt, samples.png, loss.png, run.json")


def _v2_for_size(size: int, seed: int) -> Any:
    """TextureNetV2 whose tile is ``size`` (a power of two ≥ 8): 4×4 then log2(size/4) up-convolutions."""
    from ..nets.texture import TextureNetV2

    ups = round(math.log2(max(size, 1) / 4))
    if size < 8 or 4 * 2**ups != size:
        raise ValueError(f"--size must be a power of two >= 8 for texture_v2 (4·2^k), got {size}")
    channels = [max(32, 512 >> i) for i in range(ups + 1)]
    return TextureNetV2(channels=channels, seed=seed)


@train.command(cls=FeatstatCommand, name="style", context_settings=CONTEXT)
@path_argument("style", kind="file")
@path_argument("contents", many=True)
@click.option(
    "--arch",
    type=RegistryChoice("network", family="texture", stylises=True),
    default="stylenet",
    show_default=True,
    help="stylenet: residual transformer (Improved Texture Networks); texture_v1: multi-scale "
    "Texture Network with the content at K=6 scales (Texture Networks §2.3.3).",
)
@click.option(
    "--norm",
    type=click.Choice(["instance", "batch"]),
    default="instance",
    show_default=True,
    help="Instance normalisation (StyleNet IN) or batch normalisation (BN).",
)
@_style_terms
@stack(*_train_common)
def train_style_command(
    style: Path,
    contents: tuple[Path, ...],
    arch: str,
    norm: str,
    style_layers: str | None,
    content_layers: str | None,
    style_weight: float | None,
    content_weight: float | None,
    tv_weight: float,
    **run: Any,
) -> None:
    """Train a stylisation network for STYLE on CONTENTS (image files or folders; ~16 images suffice).

    Writes OUT/checkpoint.pt, OUT/samples.png (stylised training crops), OUT/loss.png and OUT/run.json.
    Stylise new images with `featstat stylize OUT/checkpoint.pt IMAGES…`.

    \b
    Examples:
      featstat train style wave.jpg photos/ -o runs/wave
      featstat train style udnie.jpg a.jpg b.jpg -o runs/udnie --norm batch --diversity 1e4 --size 128
    """
    import torch

    from ..nets.texture import StyleNet, TextureNetV1, stylize
    from ..texture.training import train_style

    out_dir, dev, p = _start_training(run)
    s = _read(style, dev)
    files = image_files(contents, hint="CONTENTS")
    pool = [_read(f, dev) for f in files]
    log.info(f"train style: preset {p.name} ({p.description}); {len(pool)} content images")
    seed = run["seed"]
    net = (
        StyleNet(norm=norm, seed=seed)
        if arch == "stylenet"
        else TextureNetV1(scales=6, content=True, norm=norm, seed=seed)
    ).to(dev)
    result = train_style(
        net,
        s,
        pool,
        style_layers=_layers(style_layers),
        content_layers=_layers(content_layers),
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        **_training_kwargs(run, p, STYLE_LR),
    )
    shown = torch.cat([_center_crop(img, run["size"]) for img in pool[: max(1, run["samples"])]])
    images = stylize(result.generator, shown, seed=torch.Generator(dev).manual_seed(seed))
    _finish_training(
        out_dir,
        result,
        images,
        {"command": "train style", "style": str(style), "contents": [str(f) for f in files]},
        f"train style: {style.name}",
    )
    click.echo(f"wrote {out_dir}/checkpoint.pt, samples.png, loss.png, run.json")


def _center_crop(image: Any, size: int) -> Any:
    """Resize so the shorter side is ``size``, then crop the centre size×size."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    f = size / min(h, w)
    hw = (max(size, round(h * f)), max(size, round(w * f)))
    image = F.interpolate(image, size=hw, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (hw[0] - size) // 2, (hw[1] - size) // 2
    return image[..., top : top + size, left : left + size]


# --------------------------------------------------------------------------------------------------- sample


@click.command(cls=FeatstatCommand, name="sample", context_settings=CONTEXT)
@checkpoint_argument()
@out_option("Folder for sample_NNN.png and sample.json.", dest="out_dir")
@click.option("--count", type=int, default=4, show_default=True, help="Number of samples.")
@click.option("--size", default="512", show_default=True, metavar="N|WxH", help="Sample size (any size).")
@seed_option()
@click.option("--noise-scale", type=float, default=1.0, show_default=True, help="Multiplies the input noise.")
@device_option()
@set_option(example="count=8")
def sample_command(
    checkpoint: Path, out_dir: Path, count: int, size: str, seed: int, noise_scale: float, device: str
) -> None:
    """Draw textures of any size from a texture generator trained with `featstat train texture`.

    CHECKPOINT is the run folder of `featstat train texture` or its checkpoint.pt.

    \b
    Examples:
      featstat sample runs/pebbles -o samples/ --count 8 --size 1024
      featstat sample runs/bricks/checkpoint.pt -o wide/ --size 2048x512 --seed 3
    """
    import time

    import torch

    from .. import io
    from ..engine.runs import write_json
    from ..nets.texture import generate
    from ..texture.training import load_generator

    checkpoint = checkpoint_file(checkpoint)
    check_output_folder(out_dir)
    dev = resolve_device(device)
    net = load_generator(checkpoint, dev)
    hw = _parse_size(size)
    assert hw is not None
    t0 = time.perf_counter()
    images = generate(net, count, hw, seed=torch.Generator(dev).manual_seed(seed), noise_scale=noise_scale)
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        io.write_image(out_dir / f"sample_{i:03d}.png", img[None])
        names.append(f"sample_{i:03d}.png")
    write_json(
        out_dir / "sample.json",
        {
            "command": "sample",
            "checkpoint": str(checkpoint),
            "arch": net.arch,
            "count": count,
            "size": list(hw),
            "seed": seed,
            "noise_scale": noise_scale,
            "seconds": seconds,
            "files": names,
        },
    )
    click.echo(f"wrote {count} samples to {out_dir} ({seconds:.2f} s)")


# -------------------------------------------------------------------------------------------------- stylize


@click.command(cls=FeatstatCommand, name="stylize", context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("images", many=True)
@out_option("Folder for the stylised images and stylize.json.", dest="out_dir")
@click.option(
    "--noise-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Style strength at test time: scales the input noise (thesis Fig. 2.5).",
)
@seed_option()
@click.option("--max-size", type=int, default=None, help="Downscale images whose longer side exceeds this.")
@click.option("--suffix", default="", help="Appended to output file stems.")
@device_option()
@set_option(example="noise-scale=2")
def stylize_command(
    checkpoint: Path,
    images: tuple[Path, ...],
    out_dir: Path,
    noise_scale: float,
    seed: int,
    max_size: int | None,
    suffix: str,
    device: str,
) -> None:
    """Stylise IMAGES (files or folders, any size) with a network trained by `featstat train style`.

    CHECKPOINT is the run folder of `featstat train style` or its checkpoint.pt.

    \b
    Examples:
      featstat stylize runs/wave photo.jpg -o styled/
      featstat stylize runs/wave/checkpoint.pt photos/ -o styled/ --noise-scale 2 --suffix _wave
    """
    import time

    import torch

    from .. import io
    from ..engine.runs import write_json
    from ..nets.texture import stylize
    from ..texture.training import load_generator

    checkpoint = checkpoint_file(checkpoint)
    check_output_folder(out_dir)
    dev = resolve_device(device)
    net = load_generator(checkpoint, dev)
    files = image_files(images)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, t0 = [], time.perf_counter()
    for i, f in enumerate(files):
        img = io.read_image(f, alpha="composite").to(dev)
        if max_size and max(img.shape[-2:]) > max_size:
            img = _resize_longer(img, max_size)
        g = torch.Generator(dev).manual_seed(seed + i)
        out = stylize(net, img, seed=g, noise_scale=noise_scale)
        dest = out_dir / f"{f.stem}{suffix}.png"
        io.write_image(dest, out)
        written.append(str(dest))
    write_json(
        out_dir / "stylize.json",
        {
            "command": "stylize",
            "checkpoint": str(checkpoint),
            "arch": net.arch,
            "noise_scale": noise_scale,
            "seed": seed,
            "inputs": [str(f) for f in files],
            "outputs": written,
            "seconds": time.perf_counter() - t0,
        },
    )
    click.echo(f"wrote {len(written)} images to {out_dir}")


#: The commands this module defines, for ``main.add_command`` in ``cli.py``.
COMMANDS = [texture_command, style_command, train, sample_command, stylize_command]
