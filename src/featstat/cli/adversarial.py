"""Verbs of the adversarial product (thesis ch. 4–5): ``featstat train translate``, ``featstat translate``,
``featstat train age`` and ``featstat age sample|reconstruct``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from ._common import (
    CONTEXT,
    FeatstatCommand,
    FeatstatGroup,
    apply_threads,
    check_output_folder,
    checkpoint_argument,
    checkpoint_file,
    device_option,
    log,
    on_interrupt,
    out_option,
    path_argument,
    resolve_device,
    run_options,
    seed_option,
    set_option,
)
from ._registry import RegistryChoice, RegistryHelpOption


class _DiscriminatorChoice(RegistryChoice):
    """The discriminators of the network registry (``family="discriminator"``), read when used; the module
    that registers them is imported then (not when ``featstat --help`` starts)."""

    def __init__(self) -> None:
        super().__init__("network", family="discriminator")

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from ..adversarial import discriminators  # noqa: F401  (registers the discriminators)

        return RegistryChoice.choices.fget(self)  # type: ignore[attr-defined]

    @choices.setter
    def choices(self, value: Any) -> None:  # click.Choice.__init__ assigns; the registry is the source
        pass


def _discriminators_help() -> str:
    from ..adversarial.discriminators import DISCRIMINATORS
    from ..registry import NETWORKS

    listed = "; ".join(f"{n}: {getattr(NETWORKS.get(n), 'summary', n)}" for n in DISCRIMINATORS)
    return f"Discriminator (network registry) — {listed}."


def _option_keys(cls: type) -> Any:
    names = [f.name for f in dataclasses.fields(cls)]

    def keys(prefix: tuple[str, ...]) -> list[str] | None:
        return ["options"] if prefix == () else names if prefix == ("options",) else []

    return keys


def _translation_keys(prefix: tuple[str, ...]) -> list[str] | None:
    from ..adversarial.translation import TranslationOptions

    return _option_keys(TranslationOptions)(prefix)


def _age_keys(prefix: tuple[str, ...]) -> list[str] | None:
    from ..adversarial.age import AGEOptions

    return _option_keys(AGEOptions)(prefix)


def _indices(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer indices such as 0,1,2, got {text!r}",
                                 param_hint="--patch-heads") from None  # fmt: skip


@click.command(name="translate", cls=FeatstatCommand, context_settings=CONTEXT)
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of source-domain images.")
@click.option("--target", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of target-domain images (not paired with the source).")
@out_option("Run folder: checkpoint.pt, history.json/csv, curves.png, run.json, samples.png.", dest="out_dir")
@click.option("--discriminator", type=_DiscriminatorChoice(), default="perceptual", show_default=True,
              cls=RegistryHelpOption, help_fn=_discriminators_help)
@click.option("--weights", default="auto", show_default=True,
              help="Trunk weights of the perceptual discriminator: auto (best local VGG), random, patches "
              "(raw 5×5 patches), or a weights name/file.")
@click.option("--patch-heads", default=None, metavar="I,J,…",
              help="Layer indices with a patch head (eq. 5.6: multi-scale) [default: none for perceptual, "
              "0,1,2 for ms-image and rand-ms].")
@click.option("--gan", type=click.Choice(["nonsaturating", "lsgan"]), default="nonsaturating",
              show_default=True, help="Adversarial objective (thesis: non-saturating at low resolution, "
              "LSGAN "
              "at high resolution).")
@click.option("--identity", type=float, default=1.0, show_default=True, help="λ_id of the identity loss "
              "(eq. 5.7); 0: off.")
@click.option("--cycle", is_flag=True, help="Cycle variant: a second generator and discriminator, L1 "
              "reciprocity terms (weight --cycle-weight).")
@click.option("--cycle-weight", type=float, default=10.0, show_default=True)
@click.option("--pretrain", type=int, default=0, show_default=True,
              help="Auto-encoder pre-training steps of the generator(s) (thesis 5.3.3.3).")
@click.option("--size", type=int, default=128, show_default=True, help="Side of the training crops.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam rate (β = 0.5, 0.999).")
@click.option("--blocks", type=int, default=6, show_default=True, help="Residual blocks N of the generator.")
@click.option("--downsamplings", type=int, default=2, show_default=True,
              help="Stride-2 convolutions M of the generator.")
@run_options(steps=20000, checkpoint_every=500, steps_help="Training steps (one D and one G update each).")
@device_option()
@set_option(_translation_keys, what="a translation option (options.KEY)", example="options.width=32")
def train_translate_command(
    source: Path, target: Path, out_dir: Path, discriminator: str, weights: str, patch_heads: str | None,
    gan: str, identity: float, cycle: bool, cycle_weight: float, pretrain: int, size: int, batch_size: int,
    lr: float, blocks: int, downsamplings: int, steps: int, seed: int, threads: int | None,
    checkpoint_every: int, resume: bool, quiet: bool, device: str, overrides: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Train a SOURCE → TARGET translator from two unpaired folders (thesis ch. 5: perceptual discriminators).

    \b
    Examples:
      featstat train translate --source photos/ --target paintings/ -o runs/p2p
      featstat train translate --source a/ --target b/ -o runs/ab --discriminator image --cycle
      featstat train translate --source a/ --target b/ -o runs/ab --resume
      featstat translate runs/p2p new_photos/ -o out/
    """
    from ..adversarial.translation import TranslationOptions, train_translation, translate
    from ..io import image_grid, write_image

    check_output_folder(out_dir)
    on_interrupt(out_dir / "checkpoint.pt")
    dev = resolve_device(device)
    apply_threads(threads, dev)
    trunk = {"random": None}.get(weights, weights)
    options = TranslationOptions(
        steps=steps, batch=batch_size, size=size, discriminator=discriminator, weights=trunk,
        patch_heads=_indices(patch_heads), gan=gan, identity=identity, cycle=cycle, cycle_weight=cycle_weight,
        pretrain=pretrain, lr=lr, blocks=blocks, downsamplings=downsamplings, seed=seed,
    )  # fmt: skip
    if overrides and overrides.get("options"):
        options = dataclasses.replace(options, **overrides["options"])
    log.info(f"train translate: {discriminator} discriminator, {steps} steps at {size}², batch {batch_size}")
    run, _ = train_translation(source, target, out_dir, options, device=dev, resume=resume,
                                    checkpoint_every=checkpoint_every, progress=not quiet)  # fmt: skip
    import torch

    g = torch.Generator().manual_seed(seed)
    x = run.data.draw("source", 4, g).to(dev)
    write_image(out_dir / "samples.png", image_grid(torch.cat([x, translate(run.g_xy, x)], dim=-2), len(x)))
    click.echo(f"wrote {out_dir}/checkpoint.pt, samples.png (sources over translations), run.json")


@click.command(name="translate", cls=FeatstatCommand, context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("images", many=True)
@out_option("Folder for the translated images (same names, PNG).", dest="out_dir")
@click.option("--tile", type=int, default=512, show_default=True, help="Tile side for large images.")
@device_option()
def translate_command(
    checkpoint: Path, images: tuple[Path, ...], out_dir: Path, tile: int, device: str
) -> None:
    """Translate IMAGES (files or folders, any size) with a generator trained by `featstat train translate`.

    CHECKPOINT: the run folder or its checkpoint.pt.

    \b
    Examples:
      featstat translate runs/p2p photo.jpg -o out/
      featstat translate runs/p2p/checkpoint.pt photos/ -o out/ --tile 256
    """
    from ..adversarial.translation import load_translator, translate
    from ..io import list_images, read_image, write_image

    check_output_folder(out_dir)
    dev = resolve_device(device)
    net = load_translator(checkpoint_file(checkpoint) if checkpoint.is_dir() else checkpoint, device=dev)
    files = [f for p in images for f in (list_images(p) if p.is_dir() else [p])]
    for f in files:
        y = translate(net, read_image(f, alpha="drop").to(dev), tile=tile, overlap=min(32, tile // 4))
        write_image(out_dir / f"{f.stem}.png", y)
    click.echo(f"wrote {len(files)} image(s) to {out_dir}")


@click.command(name="age", cls=FeatstatCommand, context_settings=CONTEXT)
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of training images (resized to --size).")
@out_option("Run folder: checkpoint.pt, history, curves.png, run.json, samples.png.", dest="out_dir")
@click.option("--size", type=int, default=32, show_default=True, help="Image side (a power of two ≥ 8).")
@click.option("--channels", type=click.Choice(["1", "3"]), default="3", show_default=True)
@click.option("--latent", type=int, default=64, show_default=True, help="Latent dimension M.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--latent-weight", type=float, default=1000.0, show_default=True, help="λ of eq. 4.5.")
@click.option("--data-weight", type=float, default=10.0, show_default=True, help="μ of eq. 4.6.")
@click.option("--divergence", type=click.Choice(["gaussian", "knn"]), default="gaussian", show_default=True,
              help="gaussian: eq. 4.7; knn: Kozachenko–Leonenko.")
@click.option("--conditional", is_flag=True,
              help="Colourisation (thesis 4.3.2): learn the ab channels given L (RGB data; the thesis uses "
              "--latent 3).")
@run_options(steps=5000, checkpoint_every=500, steps_help="Encoder updates (each followed by two generator "
             "updates).")  # fmt: skip
@device_option()
@set_option(_age_keys, what="an AGE option (options.KEY)", example="options.width=32")
def train_age_command(
    data: Path, out_dir: Path, size: int, channels: str, latent: int, batch_size: int, latent_weight: float,
    data_weight: float, divergence: str, conditional: bool, steps: int, seed: int, threads: int | None,
    checkpoint_every: int,
    resume: bool, quiet: bool, device: str, overrides: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Train an Adversarial Generator-Encoder (thesis ch. 4) on a folder of images.

    \b
    Examples:
      featstat train age --data digits/ -o runs/age --size 16 --channels 1 --latent 16
      featstat age sample runs/age -o samples.png
      featstat age reconstruct runs/age digits/ -o recon/
      featstat train age --data cars/ -o runs/color --conditional --latent 3 --size 64
    """
    from ..adversarial.age import AGEOptions, sample_sphere, train_age
    from ..io import image_grid, write_image

    check_output_folder(out_dir)
    on_interrupt(out_dir / "checkpoint.pt")
    dev = resolve_device(device)
    apply_threads(threads, dev)
    options = AGEOptions(steps=steps, batch=batch_size, size=size, channels=int(channels), latent=latent,
                         latent_weight=latent_weight, data_weight=data_weight, divergence=divergence,
                         conditional=conditional, seed=seed)  # fmt: skip
    if overrides and overrides.get("options"):
        options = dataclasses.replace(options, **overrides["options"])
    run, _ = train_age(data, out_dir, options, device=dev, resume=resume, checkpoint_every=checkpoint_every,
                       progress=not quiet)  # fmt: skip
    import torch

    z = sample_sphere(8, options.latent, seed=seed, device=dev)
    if conditional:  # 4 training images × 8 colourisations
        from ..adversarial.age import colorize, lab_merge

        rgb = lab_merge(run.lightness[:4], run.data[:4]).to(dev)
        x = image_grid(colorize(run.generator, rgb, z), 8)
    else:
        with torch.no_grad():
            x = image_grid(run.generator.eval()(z), 8)
    write_image(out_dir / "samples.png", x)
    click.echo(f"wrote {out_dir}/checkpoint.pt, samples.png, curves.png, run.json")


@click.group(name="age", cls=FeatstatGroup, context_settings=CONTEXT)
def age() -> None:
    """Use a trained AGE: draw samples, reconstruct images, colourise, transfer colours.

    \b
    Examples:
      featstat age sample runs/age -o samples.png --count 64
      featstat age reconstruct runs/age images/ -o recon/
      featstat age colorize runs/color photos/ -o colored/
      featstat age transfer runs/color a.jpg b.jpg -o ab.png
    """


@age.command(name="sample", cls=FeatstatCommand, context_settings=CONTEXT)
@checkpoint_argument()
@out_option("PNG grid of the samples.", kind="file")
@click.option("--count", type=click.IntRange(min=1), default=64, show_default=True)
@seed_option("Seeds the latent codes z.")
@device_option()
def age_sample_command(checkpoint: Path, out: Path, count: int, seed: int, device: str) -> None:
    """Draw COUNT samples g(z), z uniform on the sphere, as one PNG grid (8 per row).

    \b
    Examples:
      featstat age sample runs/age -o samples.png
      featstat age sample runs/age/checkpoint.pt -o more.png --count 256 --seed 1
    """
    import torch

    from ..adversarial.age import load_age, sample_sphere
    from ..io import image_grid, write_image

    dev = resolve_device(device)
    _, gen = load_age(checkpoint, device=dev)
    with torch.no_grad():
        x = gen(sample_sphere(count, gen.latent, seed=seed, device=dev))
    write_image(out, image_grid(x, 8))
    click.echo(f"wrote {out}")


@age.command(name="reconstruct", cls=FeatstatCommand, context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("images", many=True)
@out_option("Folder for g(e(x)) of each image (at the model's size) and the L1 error per image.",
            dest="out_dir")  # fmt: skip
@device_option()
def age_reconstruct_command(checkpoint: Path, images: tuple[Path, ...], out_dir: Path, device: str) -> None:
    """Reconstruct IMAGES through the encoder and generator, g(e(x)); prints the mean L1 error (eq. 4.3).

    \b
    Examples:
      featstat age reconstruct runs/age held_out/ -o recon/
    """
    import torch
    import torch.nn.functional as F

    from ..adversarial.age import load_age
    from ..io import list_images, read_image, write_image

    check_output_folder(out_dir)
    dev = resolve_device(device)
    enc, gen = load_age(checkpoint, device=dev)
    files = [f for p in images for f in (list_images(p) if p.is_dir() else [p])]
    errors = []
    for f in files:
        x = read_image(f, channels=enc.channels, alpha="drop").to(dev)
        x = F.interpolate(x, size=(enc.size, enc.size), mode="area" if min(x.shape[-2:]) >= enc.size
                          else "bicubic").clamp(0, 1)  # fmt: skip
        with torch.no_grad():
            rec = gen(enc(x))
        errors.append(float((rec - x).abs().mean()))
        write_image(out_dir / f"{f.stem}.png", torch.cat([x, rec], dim=-1))
    click.echo(f"wrote {len(files)} image(s) (input | reconstruction) to {out_dir}; "
               f"mean L1 {sum(errors) / len(errors):.4f}")  # fmt: skip


@age.command(name="colorize", cls=FeatstatCommand, context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("images", many=True)
@out_option("Folder: one PNG row per image (its gray input, then --count colourisations).", dest="out_dir")
@click.option("--count", type=click.IntRange(min=1), default=8, show_default=True,
              help="Colourisations per image (latent codes z drawn on the sphere).")
@seed_option("Seeds the latent codes z.")
@device_option()
def age_colorize_command(checkpoint: Path, images: tuple[Path, ...], out_dir: Path, count: int, seed: int,
                         device: str) -> None:  # fmt: skip
    """Colourise the lightness of IMAGES with a conditional AGE, --count ways (thesis fig. 4.4a).

    \b
    Examples:
      featstat age colorize runs/color photos/ -o colored/ --count 8
    """
    import torch

    from ..adversarial.age import colorize, lab_merge, lab_split, load_age, sample_sphere
    from ..io import image_grid, list_images, write_image

    check_output_folder(out_dir)
    dev = resolve_device(device)
    enc, gen = load_age(checkpoint, device=dev)
    if not hasattr(gen, "net"):
        raise click.UsageError(f"{checkpoint} is an unconditional AGE; train with --conditional to colourise")
    z = sample_sphere(count, gen.latent, seed=seed, device=dev)
    files = [f for p in images for f in (list_images(p) if p.is_dir() else [p])]
    for f in files:
        x = _load(f, enc.size, dev)
        lum, _ = lab_split(x)
        gray = lab_merge(lum, torch.full((1, 2, enc.size, enc.size), 0.5, device=dev))
        write_image(out_dir / f"{f.stem}.png", image_grid(torch.cat([gray, colorize(gen, x, z)]), count + 1))
    click.echo(f"wrote {len(files)} row(s) of {count} colourisations to {out_dir}")


@age.command(name="transfer", cls=FeatstatCommand, context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("source", kind="file")
@path_argument("target", kind="file")
@out_option("PNG: source | target | target coloured like the source.", kind="file")
@device_option()
def age_transfer_command(checkpoint: Path, source: Path, target: Path, out: Path, device: str) -> None:
    """Colour TARGET like SOURCE: z = e(ab₁ | L₁) of the source colours the target's lightness (fig. 4.4b).

    \b
    Examples:
      featstat age transfer runs/color red_car.jpg blue_car.jpg -o transfer.png
    """
    import torch

    from ..adversarial.age import color_transfer, load_age
    from ..io import write_image

    dev = resolve_device(device)
    enc, gen = load_age(checkpoint, device=dev)
    if not hasattr(gen, "net"):
        raise click.UsageError(f"{checkpoint} is an unconditional AGE; train with --conditional to transfer")
    a, b = _load(source, enc.size, dev), _load(target, enc.size, dev)
    write_image(out, torch.cat([a, b, color_transfer(enc, gen, a, b)], dim=-1))
    click.echo(f"wrote {out}")


def _load(path: Path, size: int, device: Any) -> Any:
    import torch.nn.functional as F

    from ..io import read_image

    x = read_image(path, alpha="drop").to(device)
    mode = "area" if min(x.shape[-2:]) >= size else "bicubic"
    return F.interpolate(x, size=(size, size), mode=mode).clamp(0, 1)


def add_train_commands(train: click.Group) -> None:
    """``featstat train translate`` and ``featstat train age``."""
    train.add_command(train_translate_command, "translate")
    train.add_command(train_age_command, "age")
