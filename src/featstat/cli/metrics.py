"""``featstat eval | compare | spectrum | twoafc``: score, compare and look at results from the command line.

The command objects (:data:`eval_command`, :data:`compare_command`, :data:`spectrum_command`,
:data:`twoafc_command`) are registered in :mod:`featstat.cli`. Every command writes its outputs atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import torch

from .._atomic import atomic_write_bytes, atomic_write_text
from ..io import list_images, read_image
from ._common import (
    CONTEXT,
    FeatstatCommand,
    device_option,
    image_files,
    out_option,
    path_argument,
    quiet_option,
    resolve_device,
    set_option,
    stack,
)
from ._registry import RegistryHelpOption, names_help


def _facts(name: str) -> Any:
    """The Metric class of a registered metric: its facts (same_size, backbone, auto_weights, luma_options)
    decide which command options apply, so a newly registered metric gets them with no change here."""
    from ..metrics import get_metric, metric_class

    return metric_class(get_metric(name).module)


def _metrics_help(set_level: bool = False) -> str:
    text = (
        f"Comma-separated metric names: {names_help('metric')}; groups: angular, patch. Every distribution "
        "statistic of featstat.losses is also a deep metric."
    )
    if set_level:
        text += (
            f" Set-level (the two folders compared as sets, unpaired: any names and counts): "
            f"{names_help('set_metric')}."
        )
    return text


# ------------------------------------------------------------------------------------------------ helpers


def _is_set_level(name: str) -> bool:
    """Whether ``name`` (canonical) is a set-level metric (:data:`featstat.registry.SET_METRICS`)."""
    from ..registry import SET_METRICS

    return name in SET_METRICS.names()


def _canonical(name: str) -> str:
    """The registry name of a per-image metric (:data:`featstat.registry.METRICS`) or a set-level one
    (:data:`featstat.registry.SET_METRICS`); aliases resolve. Unknown: a did-you-mean ``ValueError``."""
    import difflib

    from ..metrics import METRICS
    from ..registry import SET_METRICS

    for registry in (METRICS, SET_METRICS):
        if name in registry:
            return registry.canonical(name)
    pool = [*METRICS.names(), *METRICS.aliases, *SET_METRICS.names(), *SET_METRICS.aliases]
    close = difflib.get_close_matches(name, pool, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown metric {name!r}{hint} choose one of {', '.join(METRICS.names())} or, set-level, "
        f"{', '.join(SET_METRICS.names())}"
    )


def _metric_factory(name: str) -> Any:
    """What builds metric ``name``: the module class (or factory) of a per-image metric, the class of a
    set-level one."""
    from ..metrics import get_metric
    from ..registry import SET_METRICS

    return SET_METRICS.get(name) if _is_set_level(name) else get_metric(name).module


def _metric_names(text: str, *, set_level: bool = False) -> list[str]:
    """The canonical names of ``--metrics``; set-level ones only where the verb takes them (``set_level``)."""
    from ..metrics import GROUP_NAMES

    names: list[str] = []
    for raw in text.split(","):
        raw = raw.strip().lower()
        if not raw:
            continue
        expanded = GROUP_NAMES.get(raw, (raw,))
        for n in expanded:
            try:
                key = _canonical(n)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--metrics") from None
            if _is_set_level(key) and not set_level:
                raise click.BadParameter(
                    f"{key} is a set-level metric (it compares two sets of images, not image pairs); use "
                    f"`featstat eval --metrics {key} PRED_DIR REF_DIR`",
                    param_hint="--metrics",
                )
            if key not in names:
                names.append(key)
    if not names:
        raise click.BadParameter("name at least one metric, e.g. --metrics psnr,ssim", param_hint="--metrics")
    return names


def _metric_keys(prefix: tuple[str, ...]) -> list[str] | None:
    """``--set`` keys of the metric verbs: METRIC.OPTION, METRIC one of --metrics (name or alias) and OPTION
    a keyword of its constructor."""
    import inspect

    from ..metrics import ALIASES
    from ..registry import SET_METRICS

    ctx = click.get_current_context()
    names = _metric_names(ctx.params["metrics_text"], set_level=ctx.command.name == "eval")
    if not prefix:
        aliases = {**ALIASES, **SET_METRICS.aliases}
        return [*names, *(a for a, n in aliases.items() if n in names)]
    if len(prefix) == 1:
        signature = inspect.signature(_metric_factory(_canonical(prefix[0])))
        if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return None
        return [n for n, p in signature.parameters.items() if p.kind is not p.VAR_POSITIONAL]
    return None


def _metric_options(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``--set`` assignments by canonical metric name."""
    out: dict[str, dict[str, Any]] = {}
    for name, options in overrides.items():
        out.setdefault(_canonical(name), {}).update(options)
    return out


def _metrics_option(default: str, what: str = "", set_level: bool = False) -> Any:
    """``--metrics/-m NAMES`` (help generated from the metric registries), with what the verb does with them;
    ``set_level``: the verb also takes set-level metrics."""
    return click.option(
        "--metrics",
        "-m",
        "metrics_text",
        default=default,
        show_default=True,
        cls=RegistryHelpOption,
        help_fn=lambda: f"{what}{_metrics_help(set_level)}",
    )


#: How the metric verbs build their metrics: ``--set METRIC.OPTION=VALUE`` and ``--random-weights``.
_metric_setup = stack(
    set_option(
        _metric_keys,
        what="a metric's option (METRIC.OPTION, METRIC one of --metrics)",
        example="lpips.net=vgg --set cx.layers=conv3_1 --set gram.weights=vgg19-caffe",
    ),
    click.option(
        "--random-weights",
        is_flag=True,
        help="Seeded random backbones for the deep metrics (no weight files; for testing only).",
    ),
)

#: The SR papers' options of the distortion metrics (the facts' ``luma_options``).
_luma_options = stack(
    click.option("--y-channel", is_flag=True, help="PSNR/SSIM/MS-SSIM on the BT.601 luma only (SR papers)."),
    click.option(
        "--crop-border",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Pixels removed on every side before PSNR/SSIM/MS-SSIM (SR papers: the scale factor).",
    ),
)


def _build_metrics(
    names: Sequence[str],
    sets: dict[str, dict[str, Any]],
    *,
    y_channel: bool = False,
    crop_border: int = 0,
    random_weights: bool = False,
    encoded_normals: bool = True,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Metric modules (reduction "none") by name, with the command's options applied, built once per run and
    moved to ``device`` here (a metric never moves itself to its inputs)."""
    from ..metrics import build_metric

    modules: dict[str, Any] = {}
    for name in names:
        options: dict[str, Any] = {"reduction": "none"}
        facts = _facts(name)
        if facts.luma_options:
            options.update(y_channel=y_channel, crop_border=crop_border)
        if facts.backbone and random_weights:
            options["weights"] = None
        elif facts.backbone and facts.auto_weights:
            # the best trained features here (paper file, else HED's VGG-16, else the shallow Caffe layers);
            # LPIPS keeps torchvision's trunks, the ones its heads were calibrated on
            options["weights"] = "auto"
        if name.startswith("angular_"):
            options["encoded"] = encoded_normals
        options.update(sets.get(name, {}))
        try:
            modules[name] = build_metric(name, **options).to(device)
        except (TypeError, ValueError, FileNotFoundError) as exc:
            raise ValueError(f"cannot build metric {name!r} with options {options}: {exc}") from exc
    return modules


def _settings_of(modules: dict[str, Any]) -> dict[str, str]:
    return {
        name: repr(m) + (f" features={m.feature_source}" if getattr(m, "feature_source", None) else "")
        for name, m in modules.items()
    }


def _higher(names: Sequence[str], modules: dict[str, Any]) -> dict[str, bool]:
    return {n: bool(modules[n].higher_is_better) for n in names}


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf"
    a = abs(v)
    return f"{v:.4g}" if (a >= 1e4 or (a < 1e-3 and a != 0)) else f"{v:.4f}"


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = 200
    return console


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pair_files(
    pred_dir: Path, ref_dir: Path, skip_missing: bool
) -> tuple[list[tuple[str, Path, Path]], dict]:
    def by_stem(folder: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in list_images(folder):
            if f.stem in out:
                raise ValueError(
                    f"{folder} holds two images named {f.stem!r} ({out[f.stem].name}, {f.name}); files are "
                    f"paired by name without extension, so keep one of them"
                )
            out[f.stem] = f
        return out

    preds, refs = by_stem(pred_dir), by_stem(ref_dir)
    only_pred = sorted(set(preds) - set(refs))
    only_ref = sorted(set(refs) - set(preds))
    if (only_pred or only_ref) and not skip_missing:
        parts = []
        if only_pred:
            parts.append(f"{len(only_pred)} in PRED_DIR only: {', '.join(only_pred[:8])}")
        if only_ref:
            parts.append(f"{len(only_ref)} in REF_DIR only: {', '.join(only_ref[:8])}")
        raise ValueError(
            "PRED_DIR and REF_DIR do not hold the same image names (paired by name without extension): "
            + "; ".join(parts)
            + ". Rename the files, or pass --skip-missing to score only the names both have"
        )
    common = sorted(set(preds) & set(refs))
    if not common:
        raise ValueError(
            f"no image name is in both {pred_dir} ({len(preds)} images) and {ref_dir} ({len(refs)} images)"
        )
    return [(s, preds[s], refs[s]) for s in common], {"only_pred": only_pred, "only_ref": only_ref}


def _write_csv(
    path: Path,
    names: Sequence[str],
    rows: list[dict],
    mean: dict[str, float],
    set_values: dict[str, float] | None = None,
) -> None:
    """One row per image and a "mean" row for the per-image metrics ``names``; a "set" row for the
    set-level metrics (one value for the two folders; their cells in the other rows are empty)."""
    set_values = set_values or {}
    blank = [""] * len(set_values)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", *names, *set_values])
    for r in rows:
        writer.writerow([r["image"], *(repr(float(r[n])) for n in names), *blank])
    if names:
        writer.writerow(["mean", *(repr(float(mean[n])) for n in names), *blank])
    if set_values:
        writer.writerow(["set", *([""] * len(names)), *(repr(float(v)) for v in set_values.values())])
    atomic_write_text(path, buf.getvalue())


def _means(names: Sequence[str], rows: list[dict]) -> dict[str, float]:
    out = {}
    for n in names:
        vals = [float(r[n]) for r in rows]
        out[n] = float(sum(vals) / len(vals)) if vals else math.nan
    return out


def _plot_values(names: Sequence[str], rows: list[dict], higher: dict[str, bool], title: str) -> bytes:
    plt = _pyplot()
    k = len(names)
    fig, axes = plt.subplots(k, 1, figsize=(max(6.0, 0.25 * len(rows) + 3), 1.9 * k + 0.6), squeeze=False)
    labels = [r["image"] for r in rows]
    for ax, n in zip(axes[:, 0], names, strict=True):
        vals = [float(r[n]) for r in rows]
        finite = [v for v in vals if math.isfinite(v)]
        ax.bar(range(len(vals)), [v if math.isfinite(v) else 0 for v in vals], color="tab:blue")
        if finite:
            ax.axhline(sum(finite) / len(finite), color="tab:red", lw=1, label="mean")
        ax.set_ylabel(f"{n} {'↑' if higher[n] else '↓'}")
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(labels if len(labels) <= 40 else [""] * len(labels), rotation=90, fontsize=6)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    return _png_bytes(fig)


# --------------------------------------------------------------------------------------------------- eval


@click.command(cls=FeatstatCommand, name="eval", context_settings=CONTEXT)
@path_argument("pred_dir", kind="folder")
@path_argument("ref_dir", kind="folder")
@_metrics_option("psnr,ssim", set_level=True)
@_luma_options
@device_option()
@out_option(
    "Folder for metrics.csv, metrics.json and metrics.png [default: ./eval-<PRED_DIR name>].",
    decls=("--output", "-o"),
    required=False,
)
@_metric_setup
@click.option(
    "--alpha",
    type=click.Choice(["error", "drop", "composite"]),
    default="error",
    show_default=True,
    help="What to do with transparent images (see featstat.io.read_image).",
)
@click.option("--skip-missing", is_flag=True, help="Score the names both folders have instead of failing.")
@click.option("--resume", is_flag=True, help="Reuse the per-image results of an interrupted run in --output.")
@quiet_option("No progress bar and no table.")
def eval_command(
    pred_dir: Path,
    ref_dir: Path,
    metrics_text: str,
    y_channel: bool,
    crop_border: int,
    device: str,
    output: Path | None,
    overrides: dict[str, Any],
    random_weights: bool,
    alpha: str,
    skip_missing: bool,
    resume: bool,
    quiet: bool,
) -> None:
    """Score the images of PRED_DIR against those of REF_DIR with the same names.

    Files are paired by name without extension (result/0801.png with gt/0801.jpg); missing or extra names
    and size mismatches fail with a list of the offending files. Writes metrics.csv (one row per image and a
    "mean" row), metrics.json (settings, per-image values, means, which direction is better) and metrics.png,
    and prints a table. Ctrl-C writes the results so far; --resume continues from them.

    Set-level metrics (c2st, the classifier two-sample test of the thesis' table 5.1b: real REF_DIR images
    vs generated PRED_DIR images, higher log-loss = harder to tell apart, ln 2 = chance) compare the two
    folders as sets: any names and counts, no pairing (each folder's images share one size). They give one
    value for the sets: the row "set" of metrics.csv, and "set_level" in metrics.json with the whole result.

    \b
    Examples:
      featstat eval results/ gt/ --metrics psnr,ssim
      featstat eval sr_x4/ hr/ -m psnr,ssim --y-channel --crop-border 4 -o eval_x4
      featstat eval out/ gt/ -m psnr,ssim,lpips,gram,cx --device cuda
      featstat eval out/ gt/ -m lpips --set lpips.net=vgg --set lpips.calibration=null
      featstat eval normals_pred/ normals_gt/ -m angular        # normal maps stored as (n+1)/2 images
      featstat eval translated/ held_out_target/ -m c2st        # set-level: unpaired folders (table 5.1b)
      featstat eval translated/ target/ -m c2st --set c2st.epochs=40 --set c2st.seed=1
    """
    names = _metric_names(metrics_text, set_level=True)
    paired = [n for n in names if not _is_set_level(n)]  # one value per image pair
    set_names = [n for n in names if _is_set_level(n)]  # one value for the two folders
    set_options = _metric_options(overrides)
    dev = resolve_device(device)
    if paired:
        pairs, unmatched = _pair_files(pred_dir, ref_dir, skip_missing)
    else:  # set-level metrics only: the folders need not hold the same names
        pairs, unmatched = [], {"only_pred": [], "only_ref": []}
    out_dir = output if output is not None else Path(f"eval-{pred_dir.resolve().name}")
    modules = _build_metrics(paired, set_options, y_channel=y_channel, crop_border=crop_border,
                             random_weights=random_weights, device=dev)  # fmt: skip
    set_modules = _build_set_metrics(set_names, set_options)
    higher = {**_higher(paired, modules), **{n: bool(m.higher_is_better) for n, m in set_modules.items()}}
    settings = {
        "pred_dir": str(pred_dir),
        "ref_dir": str(ref_dir),
        "metrics": names,
        "options": {k: v for k, v in set_options.items()},
        "y_channel": y_channel,
        "crop_border": crop_border,
        "random_weights": random_weights,
        "modules": {**_settings_of(modules), **{n: repr(m) for n, m in set_modules.items()}},
    }
    json_path = out_dir / "metrics.json"
    done: dict[str, dict] = {}
    if resume and json_path.exists():
        previous = json.loads(json_path.read_text())
        if previous.get("settings", {}).get("modules") != settings["modules"]:
            raise ValueError(
                f"--resume: {json_path} was written with other settings; use another --output or drop "
                f"--resume"
            )
        done = {r["image"]: r for r in previous.get("per_image", [])}
    rows: list[dict] = []
    set_level: dict[str, dict[str, Any]] = {}
    interrupted: bool | int = False
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    progress = Progress(*columns, disable=quiet or not pairs)
    try:
        with progress:
            task = progress.add_task("eval", total=len(pairs))
            for stem, pp, rp in pairs:
                if stem in done:
                    rows.append(done[stem])
                    progress.advance(task)
                    continue
                pred = read_image(pp, alpha=alpha, device=dev)
                ref = read_image(rp, alpha=alpha, device=dev)
                if pred.shape != ref.shape and any(_facts(n).same_size for n in paired):
                    raise ValueError(
                        f"{pp.name} is {pred.shape[3]}×{pred.shape[2]} but {rp.name} is {ref.shape[3]}×"
                        f"{ref.shape[2]} (W×H); pointwise metrics ({', '.join(paired)}) need equal sizes: "
                        f"crop or resize the predictions"
                    )
                row: dict[str, Any] = {"image": stem, "pred": pp.name, "ref": rp.name}
                with torch.no_grad():
                    for n in paired:
                        try:
                            row[n] = float(modules[n](pred, ref).reshape(-1)[0])
                        except ValueError as exc:
                            raise ValueError(f"{n} on {pp.name}: {exc}") from exc
                rows.append(row)
                progress.advance(task)
        if set_modules:
            set_level = _score_sets(set_modules, pred_dir, ref_dir, alpha=alpha, device=dev)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (featstat.engine.runs.Terminated)
        from ..engine.runs import interrupt_exit_code

        interrupted = interrupt_exit_code(err)
    mean = _means(paired, rows)
    set_values = {n: float(r["value"]) for n, r in set_level.items()}
    result = {
        "settings": settings,
        "complete": not interrupted,
        "count": len(rows),
        "total": len(pairs),
        "unmatched": unmatched,
        "higher_is_better": higher,
        "mean": mean,
        "per_image": rows,
        "set_level": set_level,
    }
    atomic_write_text(json_path, json.dumps(result, indent=2, allow_nan=True) + "\n")
    _write_csv(out_dir / "metrics.csv", paired, rows, mean, set_values)
    written = [str(out_dir / "metrics.csv"), json_path.name]
    if rows:
        title = f"{pred_dir} vs {ref_dir} ({len(rows)} images)"
        atomic_write_bytes(out_dir / "metrics.png", _plot_values(paired, rows, higher, title))
        written.append("metrics.png")
    if interrupted:
        when = f"after {len(rows)} of {len(pairs)} images" if pairs else "before the set metrics finished"
        stopped = click.ClickException(
            f"interrupted {when}; results so far are in {out_dir}. Run the same command with --resume to "
            f"continue"
        )
        stopped.exit_code = int(interrupted)  # 130 after Ctrl-C, 143 after SIGTERM
        raise stopped
    if not quiet:
        _print_eval_table(paired, rows, mean, higher, set_values)
    click.echo(f"wrote {', '.join(written)}")


def _build_set_metrics(names: Sequence[str], sets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Set-level metrics by name (:data:`featstat.registry.SET_METRICS`) with their ``--set`` options."""
    from ..registry import SET_METRICS

    out: dict[str, Any] = {}
    for name in names:
        options = sets.get(name, {})
        try:
            out[name] = SET_METRICS.build(name, **options)
        except ValueError as exc:
            raise ValueError(f"cannot build metric {name!r} with options {options}: {exc}") from exc
    return out


def _read_set(folder: Path, argument: str, alpha: str, device: torch.device) -> torch.Tensor:
    """Every image of ``folder`` as one batch; none, or images of different sizes, is a ``ValueError``
    naming the ``argument`` (PRED_DIR / REF_DIR)."""
    from ..io import read_images

    files = list_images(folder)
    if not files:
        raise ValueError(f"{argument} ({folder}) holds no images")
    try:
        return read_images(files, alpha=alpha, device=device)
    except ValueError as exc:
        raise ValueError(
            f"{argument} ({folder}): {exc}. A set-level metric resizes a folder's images together: give "
            f"them one size"
        ) from exc


def _score_sets(
    modules: dict[str, Any], pred_dir: Path, ref_dir: Path, *, alpha: str, device: torch.device
) -> dict[str, dict[str, Any]]:
    """Each set-level metric on (PRED_DIR's images, REF_DIR's images): its result as plain data (with
    ``value``); the metric's warnings go to the featstat log."""
    import warnings

    from ._common import log

    pred, ref = _read_set(pred_dir, "PRED_DIR", alpha, device), _read_set(ref_dir, "REF_DIR", alpha, device)
    out: dict[str, dict[str, Any]] = {}
    for name, metric in modules.items():
        log.info(f"{name}: {len(pred)} PRED_DIR images vs {len(ref)} REF_DIR images")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = metric(pred, ref)
            except ValueError as exc:
                raise ValueError(
                    f"{name} (fake = the PRED_DIR set, real = the REF_DIR set, {len(pred)} and {len(ref)} "
                    f"images): {exc}"
                ) from exc
        for w in caught:
            log.warning(f"warning: {w.message}")
        out[name] = {"pred_images": len(pred), "ref_images": len(ref), **result.to_dict()}
    return out


def _print_eval_table(
    names: Sequence[str],
    rows: list[dict],
    mean: dict,
    higher: dict[str, bool],
    set_values: dict[str, float] | None = None,
) -> None:
    from rich.table import Table

    set_values = set_values or {}
    title = f"featstat eval ({len(rows)} images)" if names else "featstat eval (set-level)"
    table = Table(title=title)
    table.add_column("image", no_wrap=True)
    for n in [*names, *set_values]:
        table.add_column(f"{n} {'↑' if higher[n] else '↓'}", justify="right")
    blank = [""] * len(set_values)
    if names and len(rows) <= 40:
        for r in rows:
            table.add_row(r["image"], *(_fmt(r[n]) for n in names), *blank)
        table.add_section()
    if names:
        table.add_row("[bold]mean[/bold]", *(f"[bold]{_fmt(mean[n])}[/bold]" for n in names), *blank)
    if set_values:
        values = (f"[bold]{_fmt(v)}[/bold]" for v in set_values.values())
        table.add_row("[bold]set[/bold]", *([""] * len(names)), *values)
    _console().print(table)


# ------------------------------------------------------------------------------------------------ compare


def _parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected X,Y,W,H in pixels, got {text!r}", param_hint="--crop") from None
    if w < 1 or h < 1 or x < 0 or y < 0:
        raise click.BadParameter(f"crop {text!r} must have x, y >= 0 and w, h >= 1", param_hint="--crop")
    return x, y, w, h


def _auto_crop(images: list[torch.Tensor], ref: torch.Tensor | None, size: int) -> tuple[int, int, int, int]:
    """The size×size window where the images differ most from the reference (or from their mean)."""
    _, _, h, w = images[0].shape
    size = min(size, h, w)
    base = ref if ref is not None else torch.stack(images).mean(0)
    diff = torch.stack([(im - base).abs().mean(1) for im in images]).sum(0, keepdim=True)  # 1×1×H×W
    stride = max(1, size // 4)
    score = torch.nn.functional.avg_pool2d(diff, size, stride=stride)
    if float(score.max()) <= 0:
        return (w - size) // 2, (h - size) // 2, size, size
    idx = int(score.flatten().argmax())
    gy, gx = divmod(idx, score.shape[-1])
    return gx * stride, gy * stride, size, size


@click.command(cls=FeatstatCommand, name="compare", context_settings=CONTEXT)
@path_argument("images", kind="file", many=True)
@out_option(
    "PNG to write (a JSON with the numbers is written beside it).", kind="file", decls=("--output", "-o")
)
@click.option(
    "--ref",
    "ref_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Reference image the numbers are computed against [default: the first IMAGE].",
)
@_metrics_option("psnr,ssim", "Metrics shown under each image. ")
@click.option(
    "--crop",
    "crops",
    multiple=True,
    metavar="X,Y,W,H",
    help="Region to zoom into (pixels), repeatable [default: the window where the images differ most].",
)
@click.option(
    "--crop-size",
    type=click.IntRange(min=4),
    default=None,
    help="Side of the automatic crop [default: a quarter of the shorter side].",
)
@click.option("--labels", default=None, help="Comma-separated column titles [default: the file names].")
@_metric_setup
@_luma_options
@device_option()
def compare_command(
    images: tuple[Path, ...],
    output: Path,
    ref_path: Path | None,
    metrics_text: str,
    crops: tuple[str, ...],
    crop_size: int | None,
    labels: str | None,
    overrides: dict[str, Any],
    random_weights: bool,
    y_channel: bool,
    crop_border: int,
    device: str,
) -> None:
    """Put IMAGES side by side with zoomed crops and their metrics against a reference.

    The first row shows each image with the crop rectangles, the next rows the crops enlarged (nearest
    neighbour). Under each image: the metrics against the reference (--ref, or the first image). All images
    must have the same size. Writes OUT.png and OUT.json.

    \b
    Examples:
      featstat compare gt.png bicubic.png ours.png -o cmp.png
      featstat compare bicubic.png ours.png --ref gt.png -m psnr,ssim,lpips -o cmp.png
      featstat compare a.png b.png --crop 100,80,64,64 --crop 300,200,48,48 -o cmp.png
    """
    names = _metric_names(metrics_text)
    dev = resolve_device(device)
    modules = _build_metrics(names, _metric_options(overrides), y_channel=y_channel, crop_border=crop_border,
                             random_weights=random_weights, device=dev)  # fmt: skip
    tensors = [read_image(p, device=dev) for p in images]
    ref = read_image(ref_path, device=dev) if ref_path is not None else tensors[0]
    paths = list(images)
    ref_index = None if ref_path is not None else 0
    for p, t in zip([*paths, ref_path or paths[0]], [*tensors, ref], strict=True):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"all images must have the same size: {paths[0].name} is "
                f"{tensors[0].shape[3]}×{tensors[0].shape[2]} but {p.name} is {t.shape[3]}×{t.shape[2]} (W×H)"
            )
    titles = [p.name for p in paths]
    if labels is not None:
        titles = [s.strip() for s in labels.split(",")]
        if len(titles) != len(paths):
            raise click.BadParameter(f"{len(titles)} labels for {len(paths)} images", param_hint="--labels")
    _, _, h, w = tensors[0].shape
    boxes = [_parse_crop(c) for c in crops]
    for x, y, cw, ch in boxes:
        if x + cw > w or y + ch > h:
            raise click.BadParameter(f"crop {x},{y},{cw},{ch} leaves the {w}×{h} image", param_hint="--crop")
    if not boxes:
        others = [t for i, t in enumerate(tensors) if i != ref_index]
        boxes = [_auto_crop(others or tensors, ref, crop_size or max(8, min(h, w) // 4))]
    numbers: list[dict[str, float]] = []
    with torch.no_grad():
        for i, t in enumerate(tensors):
            if i == ref_index:
                numbers.append({})
                continue
            try:
                numbers.append({n: float(modules[n](t, ref).reshape(-1)[0]) for n in names})
            except ValueError as exc:
                raise ValueError(f"{paths[i].name}: {exc}") from exc
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    cols, rows_n = len(tensors), 1 + len(boxes)
    colours = ["tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple", "tab:cyan"]
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 3.2 * rows_n + 0.5), squeeze=False)
    for c, t in enumerate(tensors):
        img = t[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        ax = axes[0, c]
        ax.imshow(img, interpolation="lanczos")
        for k, (x, y, cw, ch) in enumerate(boxes):
            ax.add_patch(
                Rectangle((x - 0.5, y - 0.5), cw, ch, fill=False, lw=1.5, ec=colours[k % len(colours)])
            )
        if c == ref_index:
            caption = "reference"
        else:
            caption = "  ".join(f"{n} {_fmt(numbers[c][n])}" for n in names)
        ax.set_title(f"{titles[c]}\n{caption}", fontsize=8)
        for k, (x, y, cw, ch) in enumerate(boxes):
            axc = axes[1 + k, c]
            axc.imshow(img[y : y + ch, x : x + cw], interpolation="nearest")
            for side in axc.spines.values():
                side.set_edgecolor(colours[k % len(colours)])
                side.set_linewidth(2)
        for a in axes[:, c]:
            a.set_xticks([])
            a.set_yticks([])
    ref_name = ref_path.name if ref_path is not None else paths[0].name
    fig.suptitle(f"reference: {ref_name}", fontsize=9)
    fig.tight_layout()
    atomic_write_bytes(output, _png_bytes(fig))
    report = {
        "reference": str(ref_path or paths[0]),
        "images": [str(p) for p in paths],
        "labels": titles,
        "crops": [list(b) for b in boxes],
        "metrics": {str(p): numbers[i] for i, p in enumerate(paths) if i != ref_index},
        "higher_is_better": _higher(names, modules),
        "modules": _settings_of(modules),
    }
    atomic_write_text(output.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    click.echo(f"wrote {output} and {output.with_suffix('.json').name}")


# ----------------------------------------------------------------------------------------------- spectrum


def _images_of(path: Path) -> list[Path]:
    return image_files([path], hint="INPUTS")


@click.command(cls=FeatstatCommand, name="spectrum", context_settings=CONTEXT)
@path_argument("inputs", many=True)
@out_option(
    "PNG to write (a JSON with the spectra is written beside it).", kind="file", decls=("--output", "-o")
)
@click.option(
    "--bins",
    type=click.IntRange(min=2),
    default=None,
    help="Frequency rings [default: half the shortest image side of all inputs].",
)
@click.option("--channel", default="luma", show_default=True, help="luma, mean, or a channel index.")
@click.option("--window", type=click.Choice(["hann", "none"]), default="hann", show_default=True)
@click.option("--labels", default=None, help="Comma-separated legend labels [default: the input names].")
@click.option(
    "--fit-range",
    default="0.02,0.5",
    show_default=True,
    help="Frequencies (cycles/pixel) over which the log-log slope is fitted.",
)
@set_option(example="bins=64")
def spectrum_command(
    inputs: tuple[Path, ...],
    output: Path,
    bins: int | None,
    channel: str,
    window: str,
    labels: str | None,
    fit_range: str,
) -> None:
    """Plot the mean radial power spectrum of each INPUT (a folder of images or one image file).

    Spectra are averaged over the images of a folder (any sizes: the axis is in cycles per pixel), drawn on
    log-log axes with the fitted slope in the legend (natural images: about -2). Writes OUT.png and
    OUT.json (frequencies, power per input, slopes, image counts).

    \b
    Examples:
      featstat spectrum gt/ bicubic/ srgan/ ours/ -o spectra.png
      featstat spectrum photo.png --channel mean -o photo_spectrum.png
    """
    from ..metrics import mean_power_spectrum, spectral_slope

    sets = [_images_of(p) for p in inputs]
    names = [p.name or str(p) for p in inputs]
    if labels is not None:
        names = [s.strip() for s in labels.split(",")]
        if len(names) != len(inputs):
            raise click.BadParameter(f"{len(names)} labels for {len(inputs)} inputs", param_hint="--labels")
    ch: str | int = int(channel) if channel.isdigit() else channel
    try:
        lo, hi = (float(v) for v in fit_range.split(","))
    except ValueError:
        raise click.BadParameter(f"expected FMIN,FMAX, got {fit_range!r}", param_hint="--fit-range") from None
    loaded = [[read_image(f) for f in files] for files in sets]
    n_bins = bins or min(min(t.shape[-2:]) for group in loaded for t in group) // 2
    curves: dict[str, Any] = {}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, group in zip(names, loaded, strict=True):
        try:
            win = None if window == "none" else window
            freqs, power = mean_power_spectrum(group, n_bins=n_bins, window=win, channel=ch)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
        try:
            slope = float(spectral_slope(freqs, power, fmin=lo, fmax=hi))
        except ValueError:
            slope = math.nan
        curves[name] = {"images": len(group), "power": power.tolist(), "slope": slope}
        ax.loglog(freqs.numpy(), power.numpy(), label=f"{name} ({len(group)} img, slope {slope:.2f})")
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("mean power")
    ax.set_title("mean radial power spectrum", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(output, _png_bytes(fig))
    report = {
        "inputs": [str(p) for p in inputs],
        "bins": n_bins,
        "channel": channel,
        "window": window,
        "fit_range": [lo, hi],
        "frequencies": freqs.tolist(),
        "spectra": curves,
    }
    atomic_write_text(output.with_suffix(".json"), json.dumps(report, indent=2, allow_nan=True) + "\n")
    click.echo(f"wrote {output} and {output.with_suffix('.json').name}")


# ------------------------------------------------------------------------------------------------- twoafc


@click.command(cls=FeatstatCommand, name="twoafc", context_settings=CONTEXT)
@path_argument("root", kind="folder")
@_metrics_option("lpips", "Metrics to score (each a row of the table). ")
@click.option("--subsets", default=None, help="Comma-separated subset names [default: all found].")
@_metric_setup
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@device_option()
@out_option(
    "Folder for twoafc.json, twoafc.txt and twoafc.png [default: print only].",
    decls=("--output", "-o"),
    required=False,
)
@quiet_option("No progress bar.")
def twoafc_command(
    root: Path,
    metrics_text: str,
    subsets: str | None,
    overrides: dict[str, Any],
    random_weights: bool,
    batch_size: int,
    device: str,
    output: Path | None,
    quiet: bool,
) -> None:
    """Score metrics against human 2AFC judgements on a BAPPS-layout folder and print the papers' table.

    ROOT is a subset (with ref/, p0/, p1/, judge/) or a folder of subsets (BAPPS: dataset/2afc/val). The
    score is the fraction of human judgements a metric agrees with (in %, higher is better), per subset,
    per group (distortions, real algorithms) and overall.

    \b
    Examples:
      featstat twoafc dataset/2afc/val -m lpips,ssim,psnr
      featstat twoafc dataset/2afc/val -m lpips,gram --set lpips.net=vgg --set gram.net=vgg -o bapps_val
      featstat twoafc dataset/2afc/val/traditional -m cx --set cx.net=alex --set cx.normalize=true
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..metrics import find_subsets, format_table, list_triplets, score_2afc

    names = _metric_names(metrics_text)
    dev = resolve_device(device)
    modules = _build_metrics(names, _metric_options(overrides), random_weights=random_weights, device=dev)
    wanted = [s.strip() for s in subsets.split(",")] if subsets else None
    found = find_subsets(root)
    total = sum(len(list_triplets(f)) for n, f in found.items() if wanted is None or n in wanted)
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=quiet) as progress:
        for n in names:
            task = progress.add_task(n, total=total)
            m = modules[n]

            def advance(k: int, task=task) -> None:
                progress.advance(task, k)

            try:
                results.append(
                    score_2afc(m, root, name=n, higher_is_better=m.higher_is_better, subsets=wanted,
                               batch_size=batch_size, device=dev, progress=advance)
                )  # fmt: skip
            except ValueError as exc:
                raise ValueError(f"{n}: {exc}") from exc
    table = format_table(results)
    click.echo(table)
    if output is not None:
        report = {
            "root": str(root),
            "modules": _settings_of(modules),
            "results": [r.to_dict() for r in results],
        }
        atomic_write_text(output / "twoafc.json", json.dumps(report, indent=2, allow_nan=True) + "\n")
        atomic_write_text(output / "twoafc.txt", table + "\n")
        atomic_write_bytes(output / "twoafc.png", _plot_twoafc(results))
        click.echo(f"wrote {output / 'twoafc.json'}, twoafc.txt and twoafc.png")


def _plot_twoafc(results: list) -> bytes:
    plt = _pyplot()
    subsets = [*dict.fromkeys(s for r in results for s in r.scores), "All"]
    fig, ax = plt.subplots(figsize=(1.1 * len(subsets) + 2.5, 3.6))
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        values = [100 * r.scores.get(s, math.nan) for s in subsets[:-1]] + [100 * r.overall]
        ax.bar([i + k * width for i in range(len(subsets))], values, width=width, label=r.name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(subsets))])
    ax.set_xticklabels(subsets, fontsize=8)
    ax.set_ylabel("2AFC score (%) ↑")
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)


__all__ = ["compare_command", "eval_command", "spectrum_command", "twoafc_command"]
