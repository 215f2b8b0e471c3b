"""``featstat train <recipe>``, ``featstat restore`` and ``featstat degrade``: supervised restoration from the
command line.

:func:`add_recipe_commands` adds one subcommand per recipe of :mod:`featstat.restoration.recipes` to a click
group (the shared ``featstat train`` group); :data:`restore_command` and :data:`degrade_command` are
registered on the main group in :mod:`featstat.cli`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ._common import (
    CONTEXT,
    FeatstatCommand,
    alias_option,
    apply_threads,
    check_output_folder,
    checkpoint_argument,
    checkpoint_file,
    device_option,
    image_files,
    on_interrupt,
    out_option,
    parse_assignment,
    path_argument,
    resolve_device,
    run_options,
    seed_option,
    set_option,
)
from ._registry import RegistryHelpOption, names_help

__all__ = ["add_recipe_commands", "degrade_command", "parse_assignment", "restore_command"]


# ------------------------------------------------------------------------------------------------ helpers


def _recipe_keys(prefix: tuple[str, ...]) -> frozenset[str] | None:
    from ..restoration.recipes import recipe_keys

    return recipe_keys(prefix)


def _degrade_keys(prefix: tuple[str, ...]) -> list[str] | None:
    """``--set`` keys of ``featstat degrade``: the options of the chosen --task (degrade.TASKS)."""
    from ..restoration.degrade import TASKS

    task = click.get_current_context().params.get("task")
    return sorted(TASKS.get(task, {})) if not prefix else None


def _recipe_help(name: str, recipe: dict[str, Any]) -> str:
    task = recipe.get("task", "sr4")
    data = (
        "photo.png"
        if name == "single-image-sr"
        else ("DIR (with images/ and normals/)" if task == "normals" else "DIR")
    )
    tasks = "|".join(recipe.get("tasks", [task]))
    example_data = (
        "photo.png" if name == "single-image-sr" else ("surfaces/" if task == "normals" else "div2k/train")
    )
    return (
        f"Train a restoration network with the {name!r} recipe: {recipe.get('description', '')}.\n\n"
        f"Paper: {recipe.get('paper', '')}.\n\n"
        f"--data {data}; --task {tasks} (default {task}). Every setting of the recipe can be overridden with "
        f"--config FILE.toml (same layout as the recipe, see docs/restoration.md) or --set KEY=VALUE. "
        f"The run "
        f"writes checkpoint.pt (every --checkpoint-every steps and on Ctrl-C), model.pt, train_log.csv, "
        f"val_log.csv, curves_*.png, run.json and validation images to --out; --resume continues exactly.\n\n"
        f"\b\nExamples:\n"
        f"  featstat train {name} --data {example_data} --task {task} -o runs/{name}\n"
        f"  featstat train {name} --data {example_data} --steps 2000 --batch-size 8 --resume -o runs/{name}\n"
        f"  featstat train {name} --data {example_data} --set training.lr=2e-4 "
        f"--backbone-weights vgg19-caffe\n"
        f"  torchrun --nproc-per-node 4 $(command -v featstat) train {name} --data {example_data} "
        f"-o runs/{name}"
    )


def _recipe_command(name: str) -> click.Command:
    from ..restoration.recipes import RECIPES

    recipe = RECIPES[name]
    tasks = list(recipe.get("tasks", [recipe.get("task", "sr4")]))
    has_gan = "adversarial" in recipe

    @click.command(cls=FeatstatCommand, name=name, help=_recipe_help(name, recipe), context_settings=CONTEXT)
    @click.option(
        "--data",
        required=True,
        type=click.Path(exists=True, path_type=Path),
        help="Training images: a folder (any sizes), one image (single-image SR), or for normals a "
        "folder with images/ and normals/.",
    )
    @click.option(
        "--task",
        type=click.Choice(tasks),
        default=recipe.get("task", tasks[0]),
        show_default=True,
        help="Restoration task (sets the degradation).",
    )
    @out_option("Output folder [default: runs/<recipe>-<task>].", required=False)
    @click.option(
        "--val",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help="Validation images (whole images). Default: 10% of --data held out when it has >= 5.",
    )
    @click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="TOML file overriding the recipe.",
    )
    @set_option(_recipe_keys, what="a recipe setting (SECTION.KEY, as in --config)",
                example="objective.terms.cx.bandwidth=0.2")  # fmt: skip
    @click.option(
        "--batch-size", type=click.IntRange(min=1), default=None, help="Crops per step per process."
    )
    @click.option(
        "--crop-size", type=click.IntRange(min=1), default=None, help="Target (HR) crop side, pixels."
    )
    @click.option(
        "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Adam learning rate."
    )
    @click.option(
        "--network",
        default=None,
        cls=RegistryHelpOption,
        help_fn=lambda: f"Network: {names_help('network', aliases=False, family='restoration')}.",
    )
    @click.option(
        "--backbone-weights",
        default=None,
        help="Weights of every VGG backbone of the objective (registry name or file, or 'random').",
    )
    @click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader worker processes.")
    @click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default=None,
        help="auto: bf16/fp16 autocast on GPU, fp32 on CPU.",
    )
    @run_options(steps=None, steps_help="Training steps [default: the recipe's].", min_steps=1, seed=None,
                 seed_help="Seed of data, degradations and initialisation [default: the recipe's].",
                 checkpoint_every=None, checkpoint_help="Steps between checkpoints [default: the recipe's].",
                 resume_help="Continue from OUT/checkpoint.pt if it exists.")  # fmt: skip
    @device_option()
    @click.option(
        "--validate-every", type=click.IntRange(min=0), default=None, help="Steps between validations."
    )
    @click.option(
        "--lpips",
        "lpips_net",
        type=click.Choice(["auto", "none", "alex", "vgg", "squeeze"]),
        default="auto",
        show_default=True,
        help="LPIPS network for validation; auto: AlexNet when its weights are on this machine.",
    )
    @alias_option("--no-progress", to=lambda v: "quiet=true", flag=True, instead="--quiet")
    @click.option(
        "--gan/--no-gan",
        default=None,
        hidden=not has_gan,
        help="Enable/disable the adversarial term (cx-sr: on, as in the paper).",
    )
    def command(
        data: Path,
        task: str,
        out: Path | None,
        val: Path | None,
        config: Path | None,
        overrides: dict[str, Any],
        **kw: Any,
    ) -> None:
        from ..restoration.recipes import get_recipe, merge, train, validate_recipe

        out_dir = check_output_folder(out if out is not None else Path("runs") / f"{name}-{task}")
        on_interrupt(out_dir / "checkpoint.pt")
        recipe = get_recipe(name, config)
        over: dict[str, Any] = {}
        training = {
            k2: kw[k1]
            for k1, k2 in (
                ("steps", "steps"),
                ("batch_size", "batch_size"),
                ("lr", "lr"),
                ("seed", "seed"),
                ("workers", "num_workers"),
                ("precision", "precision"),
                ("checkpoint_every", "checkpoint_every"),
                ("validate_every", "validate_every"),
            )
            if kw[k1] is not None
        }
        if training:
            over["training"] = training
        if kw["crop_size"] is not None:
            over["data"] = {"crop_size": kw["crop_size"]}
        if kw["network"] is not None:
            over["network"] = {"name": kw["network"], "options": {}}
        if kw["gan"] is not None:
            over["adversarial"] = {"enabled": kw["gan"]}
        recipe = merge(recipe, over)
        if kw["backbone_weights"] is not None:
            for section in (recipe.get("objective", {}), recipe.get("pretrain", {}).get("objective", {})):
                for spec in section.get("backbones", {}).values():
                    if spec.get("arch") != "patches":
                        spec["weights"] = kw["backbone_weights"]
        recipe = merge(recipe, overrides)
        recipe = validate_recipe(recipe)
        lpips: Any = {"auto": "auto", "none": None}.get(kw["lpips_net"])
        if lpips is None and kw["lpips_net"] != "none":
            from ..metrics import LPIPS

            lpips = LPIPS(kw["lpips_net"])
        device = resolve_device(kw["device"])
        apply_threads(kw["threads"], device)
        # auto: the trainer's own choice (cuda:LOCAL_RANK under torchrun, else CUDA when available, else CPU)
        device = None if kw["device"] == "auto" else str(device)
        summary = train(
            recipe,
            data,
            out_dir,
            task=task,
            val=val,
            resume=kw["resume"],
            device=device,
            lpips=lpips,
            progress=not kw["quiet"],
        )
        val_scores = summary.get("validation") or {}
        scores = "  ".join(f"{k} {v:.4g}" for k, v in val_scores.items())
        click.echo(
            f"{name}: {summary['steps']} steps, {summary['steps_per_second']:.3g} steps/s"
            + (f"; validation: {scores}" if scores else "")
            + f"; outputs in {out_dir}"
        )

    return command


def add_recipe_commands(group: click.Group) -> None:
    """Add one subcommand per recipe (``pixel``, ``cx-sr``, ``tsrn``, ``pdl-sr``, ...) to ``group``."""
    from ..restoration.recipes import recipe_names

    for name in recipe_names():
        group.add_command(_recipe_command(name))


# ------------------------------------------------------------------------------------------------ restore


@click.command(cls=FeatstatCommand, name="restore", context_settings=CONTEXT)
@checkpoint_argument()
@path_argument("images", many=True)
@out_option("Output folder (one PNG per input, same stem).")
@click.option(
    "--tile",
    type=click.IntRange(min=16),
    default=512,
    show_default=True,
    help="Process images larger than this in tiles (input pixels).",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Overlap between tiles (input pixels); seams vanish when it covers the receptive field.",
)
@device_option()
@click.option("--suffix", default="", help="Appended to output file stems.")
@set_option(example="tile=256")
def restore_command(
    checkpoint: Path,
    images: tuple[Path, ...],
    out: Path,
    tile: int,
    overlap: int,
    device: str,
    suffix: str,
) -> None:
    """Restore IMAGES (files or folders) with a trained network (CHECKPOINT: model.pt or checkpoint.pt of a
    'featstat train' run, or the run folder itself), tile by tile for large images.

    The images must be degraded the way the network was trained (low-resolution for SR, noisy for denoise,
    the bilinear demosaicking of the mosaic for demosaic; photographs for normals).

    \b
    Examples:
      featstat restore runs/cx-sr/model.pt lr/*.png -o sr/
      featstat restore runs/cx-sr lr/ -o sr/                   # the run folder: its model.pt
      featstat restore runs/pdl-denoise/model.pt noisy/ -o clean/ --tile 256 --overlap 48
      featstat degrade photos/ --task sr4 -o lr/ && featstat restore runs/cx-sr/model.pt lr/ -o sr/
    """

    from ..engine.runs import Progress
    from ..io import read_image, write_image
    from ..restoration.trainer import load_model, restore

    if tile <= 2 * overlap:
        raise click.BadParameter(
            f"--tile ({tile}) must be larger than 2·--overlap ({2 * overlap})", param_hint="--tile"
        )
    checkpoint = checkpoint_file(checkpoint, ("model.pt", "checkpoint.pt"))
    check_output_folder(out)
    dev = resolve_device(device)
    model, meta = load_model(checkpoint, device=dev)
    files = image_files(images)
    start = time.perf_counter()
    with Progress(len(files), "restoring") as bar:
        for k, f in enumerate(files):
            x = read_image(f, alpha="drop", device=dev)
            y = restore(model, x, tile=tile, overlap=overlap)
            write_image(out / f"{f.stem}{suffix}.png", y)
            bar.update(k + 1)
    task = meta.get("task", "?")
    click.echo(f"restored {len(files)} image(s) ({task}) in {time.perf_counter() - start:.1f} s → {out}")


# ------------------------------------------------------------------------------------------------ degrade


@click.command(cls=FeatstatCommand, name="degrade", context_settings=CONTEXT)
@path_argument("images", many=True)
@click.option(
    "--task",
    required=True,
    type=click.Choice(["sr2", "sr4", "sr8", "denoise", "deblur", "jpeg", "demosaic"]),
    help="Degradation to apply.",
)
@out_option("Output folder.")
@seed_option("Seed (image i uses seed_for(seed, i)).")
@set_option(_degrade_keys, what="an option of the --task's degradation (featstat.restoration.degrade.TASKS)",
            example="sigma=50 or --set quality=10")  # fmt: skip
def degrade_command(
    images: tuple[Path, ...], task: str, out: Path, seed: int, overrides: dict[str, Any]
) -> None:
    """Degrade IMAGES (files or folders) as a training task does, writing PNGs to OUT: make test inputs for
    'featstat restore', or look at what a recipe trains on. SR inputs are cropped to a multiple of the scale.

    \b
    Examples:
      featstat degrade set5/ --task sr4 -o set5_lr/
      featstat degrade photos/ --task denoise --set sigma=50 -o noisy/
      featstat degrade photos/ --task jpeg --set quality=10 -o blocky/
    """
    import torch

    from ..io import read_image, write_image
    from ..restoration.data import seed_for
    from ..restoration.degrade import make_degradation

    check_output_folder(out)
    degradation = make_degradation(task, **overrides)
    files = image_files(images)
    for i, f in enumerate(files):
        x = read_image(f, alpha="drop")
        m = degradation.multiple
        x = x[..., : x.shape[-2] - x.shape[-2] % m, : x.shape[-1] - x.shape[-1] % m]
        y = degradation(x, torch.Generator().manual_seed(seed_for(seed, i))).clamp(0, 1)
        write_image(out / f"{f.stem}.png", y)
    click.echo(f"degraded {len(files)} image(s) ({task}) → {out}")
