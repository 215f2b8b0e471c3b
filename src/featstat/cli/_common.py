"""What every ``featstat`` verb shares: one error mapping, output-path checks made before any work, and the
words of the command line in messages written for Python callers.

This module imports neither torch nor the products, so ``featstat --help`` stays fast.

- :class:`FeatstatGroup` (the ``featstat`` group) and :class:`FeatstatCommand` (each verb) turn what
  escapes a verb into one line: missing pretrained weights and ``ValueError`` (``FileLoadError`` included:
  a bad argument, option or file) → ``Error: …`` and exit status 2; ``OSError`` / ``FloatingPointError`` /
  out-of-memory → ``Error: …`` and status 1; Ctrl-C → status 130, SIGTERM → 143 (a checkpointing verb
  registers its checkpoint with :func:`on_interrupt`, and the message says where it is and how to resume).
  For the whole verb SIGTERM behaves as Ctrl-C. ``FEATSTAT_DEBUG=1`` shows the traceback instead of the one
  line.
- :func:`cli_words` rewrites advice phrased for Python callers ("pass weights=None") into the verb's flag.
- :func:`output_file` / :func:`check_output_folder` validate ``-o`` before a run starts.
- :func:`device_option` (``--device``, default ``auto``: CUDA when available, else CPU) and
  :func:`resolve_device`; :func:`run_options` (``--steps/--seed/--threads/--checkpoint-every/--resume/
  --quiet``, each verb choosing its defaults); :func:`set_option`, the one ``--set dotted.key=VALUE``
  grammar of every verb (see :func:`parse_value`), with :func:`alias_option` for old spellings that map onto
  it; :class:`FeatstatCommand`, the error mapping for one verb (what :class:`FeatstatGroup` does for all).
- The arguments and options several verbs take, each spelled once: :data:`CONTEXT` (``-h``, width),
  :func:`path_argument` / :func:`checkpoint_argument` (inputs that must exist), :func:`out_option`
  (``-o/--out``: a folder, a file or an image-or-folder), :func:`seed_option`, :func:`quiet_option`, and
  :func:`stack` to reuse a block of them.
- :func:`configure_logging`: the handler of ``logging.getLogger("featstat")`` (rich on a terminal, plain
  text otherwise); ``--quiet`` keeps only warnings.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import tomllib

__all__ = [
    "CONTEXT",
    "IMAGE_SUFFIXES",
    "FeatstatCommand",
    "FeatstatGroup",
    "alias_option",
    "apply_threads",
    "auto_threads",
    "check_output_folder",
    "checkpoint_argument",
    "checkpoint_file",
    "cli_words",
    "configure_logging",
    "device_option",
    "image_files",
    "is_grayscale_file",
    "on_interrupt",
    "out_option",
    "output_file",
    "parse_assignment",
    "parse_value",
    "path_argument",
    "quiet_option",
    "resolve_device",
    "resume_command",
    "run_options",
    "seed_option",
    "set_option",
    "short_help",
    "stack",
]

#: Image formats :func:`featstat.io.write_image` writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

#: Exit status for missing pretrained weights (a usage problem the user fixes by getting a file).
MISSING_WEIGHTS_EXIT = 2

#: Exit status for a bad argument, option value or input file (``ValueError``): click's usage-error status.
USAGE_EXIT = 2

log = logging.getLogger("featstat")


# -- messages -------------------------------------------------------------------------------------------


def _random_weights_flag(path: Sequence[str]) -> str:
    """The flag that selects seeded random weights in the verb ``path`` (e.g. ("train", "cx-sr"))."""
    head = path[0] if path else ""
    sub = path[1] if len(path) > 1 else ""
    if head == "train" and sub in ("texture", "style"):
        return "--preset random-filters"
    if head == "train":
        return "--backbone-weights random"
    if head == "prior":
        return "--weights random" if sub == "invert" else "--extra-weights random"
    if head in ("texture", "style"):
        return "--preset random-filters"
    return "random weights"


_PYTHON_TO_CLI: list[tuple[str, Any]] = [
    # (pattern, replacement: str or callable(match, path) -> str)
    (r"\bpass weights=None\b", lambda m, p: f"use {_random_weights_flag(p)}"),
    (r"\bor weights=None\b", lambda m, p: f"or {_random_weights_flag(p)}"),
    (r"\bweights=None\b", lambda m, p: _random_weights_flag(p)),
    (
        r"\bpass alpha='drop' to ignore it\b",
        lambda m, p: "remove the alpha channel (e.g. save as JPEG) to ignore it",
    ),
    (r"\bresume=True\b", lambda m, p: "--resume"),
    (r"\bresume with resume=True\b", lambda m, p: "resume with --resume"),
    (
        r"\buse stylize\(\) for stylisation nets\b",
        lambda m, p: "use `featstat stylize` for stylisation networks",
    ),
    (r"\blower lr\b", lambda m, p: "lower --lr"),
]


def cli_words(message: str, path: Sequence[str] = ()) -> str:
    """``message`` with Python-argument advice replaced by the command line's flags for verb ``path``."""
    for pattern, repl in _PYTHON_TO_CLI:
        message = re.sub(pattern, lambda m, r=repl: r(m, path), message)
    return message.replace(
        "--preset random-filters for seeded random weights", "--preset random-filters (needs no weights file)"
    )


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def _missing_weights_from(err: BaseException) -> BaseException | None:
    seen = 0
    cur: BaseException | None = err
    while cur is not None and seen < 10:
        if type(cur).__name__ == "WeightsNotFoundError":
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _invoke_mapped(ctx: click.Context, invoke: Callable[[click.Context], Any]) -> Any:
    """``invoke(ctx)`` under the one error mapping (see the module docstring)."""
    words = ctx.command_path.split()[1:]
    if not words:  # the top group: its verb and sub-verb are still in the arguments
        words = [a for a in [*getattr(ctx, "_protected_args", []), *ctx.args] if not a.startswith("-")][:2]
    try:
        with _sigterm_as_interrupt():
            return invoke(ctx)
    except click.exceptions.Exit:
        raise
    except click.ClickException as err:
        missing = _missing_weights_from(err)
        if missing is not None and not isinstance(err, click.UsageError):
            raise _error(cli_words(str(missing), words), MISSING_WEIGHTS_EXIT) from None
        err.message = cli_words(err.message, words)
        raise
    except click.Abort:
        raise
    except KeyboardInterrupt as err:
        raise _stopped(ctx, err) from None
    except (ValueError, OSError, FloatingPointError, RuntimeError) as err:
        if os.environ.get("FEATSTAT_DEBUG") or (isinstance(err, RuntimeError) and not _torch_error(err)):
            raise
        missing = _missing_weights_from(err)
        if missing is not None:
            raise _error(cli_words(str(missing), words), MISSING_WEIGHTS_EXIT) from None
        code = USAGE_EXIT if isinstance(err, ValueError) else 1
        raise _error(cli_words(_one_line(err), words), code) from None


class FeatstatGroup(click.Group):
    """The ``featstat`` group (and its verb groups): every verb runs under one error mapping (see the module
    docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke_mapped(ctx, super().invoke)


class FeatstatCommand(click.Command):
    """One verb under the error mapping of :class:`FeatstatGroup`, also when it is invoked on its own (a
    test, or a group of another program); configures the ``featstat`` logger (``--quiet``: warnings only)."""

    def invoke(self, ctx: click.Context) -> Any:
        configure_logging(quiet=bool(ctx.params.get("quiet")))
        return _invoke_mapped(ctx, super().invoke)


FeatstatGroup.command_class = FeatstatCommand  # @group.command() of a featstat group maps errors too
FeatstatGroup.group_class = type  # and its sub-groups are featstat groups


def _torch_error(err: BaseException) -> bool:
    """Out-of-memory and similar RuntimeErrors from torch: worth one line, not a traceback."""
    text = str(err).lower()
    return "out of memory" in text or "not enough memory" in text


def _error(message: str, code: int) -> click.ClickException:
    e = click.ClickException(message.replace("\n", " ").strip())
    e.exit_code = code
    return e


@contextmanager
def _sigterm_as_interrupt() -> Any:
    """SIGTERM raises ``featstat.engine.runs.Terminated`` (a ``KeyboardInterrupt``) for the whole verb;
    imported
    lazily so that --help never loads torch."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        from ..engine.runs import Terminated

        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- output paths ---------------------------------------------------------------------------------------


def _bad_out(message: str, option: str) -> click.ClickException:
    """A one-line ``Error: OPTION: message`` with click's usage-error status 2."""
    return _error(f"{option}: {message}", 2)


def _writable_parent(path: Path, option: str) -> None:
    """Refuse a path below a regular file, or in a folder we cannot create or write."""
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise _bad_out(
                    f"{str(path)!r} is below {str(parent)!r}, which is a file, not a folder",
                    option,
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise _bad_out(f"cannot write into {str(parent)!r} (permission denied)", option)
            return


def output_file(
    out: str | os.PathLike[str],
    default_name: str,
    *,
    suffixes: Iterable[str] = IMAGE_SUFFIXES,
    option: str = "-o/--out",
) -> Path:
    """The image file ``-o OUT`` names, checked before any work starts.

    ``OUT`` may be a file name with one of ``suffixes``, or a folder (an existing one, or any path written
    with a trailing slash; pass the option's text, not a ``Path``, which drops the slash): then
    ``default_name`` is written into it. The folder is created here.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    raw = os.fspath(out)  # a str keeps its trailing slash (pathlib drops it)
    out = Path(raw)
    if raw.endswith(("/", os.sep)) or out.is_dir():
        target = out / default_name
    else:
        target = out
    if target.exists() and target.is_dir():
        raise _bad_out(f"{str(target)!r} is a folder", option)
    if target.suffix.lower() not in suffixes:
        shown = target.suffix or "no extension"
        raise _bad_out(
            f"{str(out)!r} has {shown}; write one of {', '.join(suffixes)} (e.g. {target.stem}.png), or "
            f"name a folder with a trailing slash (e.g. {target.stem}/) to get {default_name} in it",
            option,
        )
    _writable_parent(target, option)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _bad_out(f"cannot create {str(target.parent)!r}: {_one_line(err)}", option) from None
    return target


def check_output_folder(out: Path, *, option: str = "-o/--out", create: bool = True) -> Path:
    """The run folder ``-o OUT``, checked (and created) before any work starts."""
    if out.exists() and not out.is_dir():
        raise _bad_out(f"{str(out)!r} is a file; name a folder", option)
    _writable_parent(out / "x", option) if out.exists() else _writable_parent(out, option)
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _bad_out(f"cannot create {str(out)!r}: {_one_line(err)}", option) from None
    return out


def checkpoint_file(path: Path, names: Sequence[str] = ("checkpoint.pt", "model.pt")) -> Path:
    """A checkpoint given as its file or as the run folder holding one of ``names`` (first found wins)."""
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        raise _bad_out(
            f"folder {str(path)!r} holds no {' or '.join(names)}; pass the folder of a `featstat train` run "
            "or its checkpoint file",
            "CHECKPOINT",
        )
    return path


def image_files(paths: Iterable[Path], *, hint: str = "IMAGES") -> list[Path]:
    """The image files that ``paths`` name: each file as given, each folder's images (sorted, see
    :func:`featstat.io.list_images`). None at all is a one-line usage error (status 2) naming ``hint``."""
    from ..io import list_images

    paths = [Path(p) for p in paths]
    files: list[Path] = []
    for p in paths:
        files.extend(list_images(p) if p.is_dir() else [p])
    if not files:
        raise _error(f"{hint}: no image files found in {', '.join(str(p) for p in paths)}", USAGE_EXIT)
    return files


def is_grayscale_file(path: str | os.PathLike[str]) -> bool:
    """Whether the image file stores one channel (L, LA, I;16, I, F, 1-bit); False when unreadable."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    except (OSError, ValueError):
        return False


def auto_threads() -> int | None:
    """CPU threads for a long run when the user gave none: 1 when other processes already keep the cores
    busy (the 1-minute load average leaves less than one core idle), else None (torch's default).

    Measured on a 2-core machine with one competing process: `featstat prior denoise` ran 0.23 steps/s with
    2 threads and 0.78 steps/s with 1 (OpenMP threads wait for each other when a core is taken).
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None
    cores = os.cpu_count() or 1
    return 1 if cores > 1 and cores - load < 1.0 else None


# -- logging --------------------------------------------------------------------------------------------


class _EchoHandler(logging.Handler):
    """Plain text on the current ``sys.stderr`` (looked up per message, so click's test runner sees it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # logging must never raise
            self.handleError(record)


def configure_logging(*, quiet: bool = False) -> None:
    """Give ``logging.getLogger("featstat")`` one handler: rich when stderr is a terminal, else plain lines
    (``note`` messages, no timestamps); level INFO, or WARNING with ``quiet``. Library code only logs; this is
    the one place that decides where the messages go."""
    handler = next((h for h in log.handlers if getattr(h, "_featstat_cli", False)), None)
    if handler is None:
        if sys.stderr.isatty():
            try:
                from rich.logging import RichHandler

                handler = RichHandler(show_time=False, show_path=False)
            except ImportError:
                handler = _EchoHandler()
        else:
            handler = _EchoHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._featstat_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)  # records still propagate (pytest's caplog, an embedding application)
    log.setLevel(logging.WARNING if quiet else logging.INFO)


# -- help -----------------------------------------------------------------------------------------------


def short_help(text: str, limit: int = 45) -> str:
    """The first sentence of ``text`` (a command's help), cut at a word boundary to at most ``limit``
    characters with "..." appended when cut (what ``featstat --help`` lists per verb)."""
    words = " ".join(text.split())
    end = words.find(". ")
    sentence = words if end < 0 else words[: end + 1]
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: max(0, limit - 3)].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}..."


# -- device and threads ---------------------------------------------------------------------------------

_DEVICE_HELP = "cpu, cuda, cuda:1, mps … or auto: CUDA when available, else the CPU."


def device_option(help: str = _DEVICE_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--device DEVICE`` with the default every computing verb shares: ``auto``. The callback receives the
    text; :func:`resolve_device` turns it into a ``torch.device`` (torch is imported only then)."""
    return click.option("--device", default="auto", show_default=True, metavar="DEVICE", help=help)


def resolve_device(name: str | None) -> Any:
    """``torch.device`` for ``--device``: ``auto`` (or None) → ``cuda`` when available, else ``cpu``. An
    unknown name, or CUDA on a machine without it, is a ``click.BadParameter`` (status 2)."""
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise click.BadParameter(
            f"{name!r} is not a device ({exc}); {_DEVICE_HELP}", param_hint="--device"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu or auto",
                                 param_hint="--device")  # fmt: skip
    return device


def apply_threads(threads: int | None, device: Any) -> None:
    """``--threads N`` → ``torch.set_num_threads(N)``; without it, 1 thread on a CPU that other processes
    keep busy (:func:`auto_threads`; a note says so)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    elif getattr(device, "type", device) == "cpu" and auto_threads() == 1:
        torch.set_num_threads(1)
        log.info("the CPU is busy with other work: running on 1 thread (--threads N to choose)")


# -- shared arguments and options -----------------------------------------------------------------------

#: click context settings of every verb: -h as well as --help, help text up to 110 columns.
CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def stack(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators`` as if written as ``@`` lines in this order (the first on top,
    so its option is listed first): how a verb reuses a block of options."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            f = d(f)
        return f

    return decorate


_PATH_KINDS: dict[str, dict[str, bool]] = {
    "any": {},
    "file": {"dir_okay": False},
    "folder": {"file_okay": False},
}


def path_argument(name: str, *, kind: str = "any", many: bool = False, required: bool = True) -> Decorator:
    """A positional path that must exist, as a ``Path``: ``kind`` "file" (not a folder), "folder" or "any"
    (a file or a folder of images); ``many``: one or more of them (a tuple); not ``required``: may be left
    out (then None)."""
    extra: dict[str, Any] = {"nargs": -1, "required": True} if many else {"required": required}
    return click.argument(name, type=click.Path(exists=True, path_type=Path, **_PATH_KINDS[kind]), **extra)


def checkpoint_argument() -> Decorator:
    """``CHECKPOINT``: a checkpoint file or the run folder holding it (see :func:`checkpoint_file`)."""
    return path_argument("checkpoint")


def out_option(
    help: str,
    *,
    kind: str = "folder",
    dest: str | None = None,
    decls: Sequence[str] = ("-o", "--out"),
    required: bool = True,
) -> Decorator:
    """``-o/--out``, where a verb writes: ``kind`` "folder" (a ``Path``; created by the verb, see
    :func:`check_output_folder`), "file" (a ``Path`` that is not a folder) or "image" (the text as typed,
    an image file or a folder written with a trailing slash, for :func:`output_file`). ``dest`` names the
    callback's parameter (default: from the long flag); not ``required``: the default is None."""
    types = {
        "folder": click.Path(file_okay=False, path_type=Path),
        "file": click.Path(dir_okay=False, path_type=Path),
        "image": click.Path(path_type=str),
    }
    names = [*decls, dest] if dest else list(decls)
    extra: dict[str, Any] = {"required": True} if required else {"default": None}
    return click.option(*names, type=types[kind], help=help, **extra)


def seed_option(help: str = "Seeds the noise.", default: int | None = 0) -> Decorator:
    """``--seed N`` (an int; a default of None means "the task's or recipe's own")."""
    return click.option("--seed", type=int, default=default, show_default=default is not None, help=help)


def quiet_option(help: str = "No progress bar, no notes.") -> Decorator:
    """``--quiet/-q``: no progress bar (and, for the verbs that say so, no notes or table)."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


# -- the run-options block ------------------------------------------------------------------------------

_KEEP: Any = object()


def run_options(
    *,
    steps: Any = _KEEP,
    steps_help: str = "Optimisation or training steps.",
    seed: Any = 0,
    seed_help: str = "Seeds initialisation, noise and data.",
    checkpoint_every: Any = _KEEP,
    checkpoint_help: str = "Save a checkpoint every N steps (and at the end and on Ctrl-C).",
    resume_help: str = "Continue from the checkpoint of an interrupted run (same settings): exactly.",
    threads: bool = True,
    quiet: bool = True,
    min_steps: int = 0,
    min_checkpoint_every: int = 0,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every long-running verb shares, in one order with one meaning: ``--steps``, ``--seed``,
    ``--threads``, ``--checkpoint-every``, ``--resume`` and ``--quiet/-q``. Each verb gives its defaults (a
    default of None means "the task's or recipe's own"); leave ``steps`` or ``checkpoint_every`` out to
    omit the option."""

    def count(flag: str, default: Any, minimum: int, help: str) -> Decorator:
        return click.option(flag, type=click.IntRange(min=minimum), default=default,
                            show_default=default is not None, help=help)  # fmt: skip

    options: list[Any] = []
    if steps is not _KEEP:
        options.append(count("--steps", steps, min_steps, steps_help))
    options.append(seed_option(seed_help, seed))
    if threads:
        options.append(
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                default=None,
                help="CPU threads (torch.set_num_threads) [default: 1 when other processes keep the cores "
                "busy (several times faster then), else torch's default].",
            )
        )
    if checkpoint_every is not _KEEP:
        options.append(count("--checkpoint-every", checkpoint_every, min_checkpoint_every, checkpoint_help))
    options.append(click.option("--resume", is_flag=True, help=resume_help))
    if quiet:
        options.append(quiet_option())
    return stack(*options)


# -- the one --set grammar ------------------------------------------------------------------------------

#: Valid keys below a dotted prefix of a verb's spec: a function of the prefix (e.g. ("statistic",) or
#: ("objective", "terms")) returning the names allowed there, or None when anything goes (the engine checks).
KeyFn = Callable[[tuple[str, ...]], Collection[str] | None]

_SETS_META = "featstat.sets"


def parse_value(text: str) -> Any:
    """A ``--set`` value: ``true``/``false`` (any case), ``none``/``null`` → None, then a TOML value
    (``10``, ``2e-4``, ``inf``, ``"text"``, ``[1, 2]``, ``{a = 1}``), then JSON (``{"a": 1}``); else the text
    itself, or a list of strings when it has commas (``conv3_1,conv4_1``)."""
    text = text.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, KeyError):
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [t.strip() for t in text.split(",")]
    return text


def parse_assignment(text: str) -> dict[str, Any]:
    """``"a.b.c=VALUE"`` → ``{"a": {"b": {"c": VALUE}}}`` (VALUE by :func:`parse_value`); a text without
    ``=`` or with an empty key is a one-line ``click.ClickException`` (status 2) naming ``--set``."""
    keys, value = _split_assignment(text)
    out: dict[str, Any] = {keys[-1]: value}
    for k in reversed(keys[:-1]):
        out = {k: out}
    return out


def _split_assignment(text: str) -> tuple[list[str], Any]:
    key, eq, value = text.partition("=")
    keys = [k.strip() for k in key.split(".")]
    if not eq or not all(keys):
        raise _error(
            f"--set: expected KEY=VALUE, KEY an option or a dotted key (e.g. steps=100, "
            f"contextual.bandwidth=0.5), got {text!r}",
            USAGE_EXIT,
        )
    return keys, parse_value(value)


def _merge_into(target: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    for k in keys[:-1]:
        nxt = target.get(k)
        if not isinstance(nxt, dict):
            nxt = target[k] = {}
        target = nxt
    target[keys[-1]] = value


def _unknown_key(key: str, valid: Collection[str], where: str) -> click.ClickException:
    close = difflib.get_close_matches(key, [v.removesuffix(".KEY") for v in valid], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return _error(
        f"--set: unknown key {key!r}{where}{hint}; valid keys: {', '.join(sorted(valid))}", USAGE_EXIT
    )


def _option_params(ctx: click.Context) -> dict[str, click.Parameter]:
    """The verb's options by every spelling ``--set`` accepts: the long flag without dashes (``crop-border``)
    and the Python name (``crop_border``)."""
    out: dict[str, click.Parameter] = {}
    for p in ctx.command.params:
        if (
            not isinstance(p, click.Option)
            or not p.name
            or not p.expose_value
            or p.name == "sets"
            or p.hidden
        ):
            continue
        for opt in p.opts:
            if opt.startswith("--"):
                out[opt[2:]] = out[opt[2:].replace("-", "_")] = p
        out.setdefault(p.name, p)
    return out


def _flag_names(ctx: click.Context) -> list[str]:
    names = []
    for p in ctx.command.params:
        if isinstance(p, click.Option) and p.expose_value and p.name != "sets" and not p.hidden:
            long = [o[2:] for o in p.opts if o.startswith("--")]
            if long:
                names.append(long[0])
    return names


def _apply_sets(ctx: click.Context, kwargs: dict[str, Any], keys: KeyFn | None) -> dict[str, Any]:
    """Route each assignment of ``--set`` (after those of the old spellings) to a verb option or to the
    verb's spec (returned as a nested dict)."""
    texts = [*ctx.meta.pop(_SETS_META, []), *kwargs.pop("sets", ())]
    params = _option_params(ctx)
    overrides: dict[str, Any] = {}
    roots = keys(()) if keys is not None else ()
    roots = () if roots is None else roots
    for text in texts:
        parts, value = _split_assignment(text)
        if len(parts) == 1 and parts[0] in params and parts[0] not in roots:
            param = params[parts[0]]
            if param.multiple and not isinstance(value, list):
                value = [value]
            if isinstance(value, list) and not param.multiple and param.nargs == 1:
                value = ",".join(str(v) for v in value)
            try:
                kwargs[param.name] = param.type_cast_value(ctx, value)  # type: ignore[index]
            except click.BadParameter as exc:
                raise _error(f"--set {parts[0]}: {exc.message}", USAGE_EXIT) from None
            continue
        if keys is None or (roots and parts[0] not in roots):
            valid = [*_flag_names(ctx), *(f"{r}.KEY" if keys else r for r in roots)]
            raise _unknown_key(parts[0], valid, "")
        for depth in range(1, len(parts)):
            allowed = keys(tuple(parts[:depth]))
            if allowed is not None and parts[depth] not in allowed:
                raise _unknown_key(parts[depth], allowed, f" in {'.'.join(parts[:depth])}")
        _merge_into(overrides, parts, value)
    if keys is not None:
        kwargs["overrides"] = overrides
    return kwargs


def set_option(
    keys: KeyFn | None = None,
    *,
    what: str = "",
    example: str = "steps=100",
    aliases: str = "",
    names: Callable[[], str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--set KEY=VALUE`` (repeatable), the one override grammar of every verb.

    A KEY without a dot names one of the verb's options (``--set steps=100`` is ``--steps 100``; it applies
    after the options given as flags). A dotted KEY goes into the verb's spec — ``what`` says what that is
    (statistic options, a recipe, metric options...) — and ``keys`` gives the valid names below each prefix;
    the callback then receives ``overrides`` (the nested dict of those assignments). An unknown key is a
    one-line error (status 2) listing the valid keys, with a did-you-mean. VALUE: see :func:`parse_value`.
    ``aliases`` names old spellings that still work (deprecated), for the help text; ``names()`` (computed
    when the help is shown, e.g. from a registry) lists the names the dotted keys take.
    """
    if what:
        text = (f"Override a setting, repeatable: an option (KEY without a dot: --set seed=1 is --seed 1) or "
                f"{what}, e.g. --set {example}.")  # fmt: skip
    else:
        text = f"Set an option by name, repeatable: --set NAME=VALUE is --NAME VALUE, e.g. --set {example}."
    text += " VALUE is a TOML/JSON value, a string or a comma list."
    if aliases:
        text += f" Deprecated, still accepted: {aliases}."

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **_apply_sets(click.get_current_context(), kwargs, keys))

        if names is None:
            return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help=text)(wrapper)
        from ._registry import RegistryHelpOption

        return click.option(
            "--set", "sets", multiple=True, metavar="KEY=VALUE", cls=RegistryHelpOption,
            help_fn=lambda: f"{text} Names: {names()}.",
        )(wrapper)  # fmt: skip

    return decorate


def alias_option(
    *decls: str,
    to: Callable[[str], str],
    metavar: str = "TEXT",
    multiple: bool = True,
    flag: bool = False,
    instead: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hidden, deprecated option whose every value ``v`` becomes ``--set to(v)`` (applied before the
    ``--set`` options, so those win); a note on stderr names the new spelling. ``flag``: an option without a
    value (``to`` is then called with "true" when it is given). ``instead``: the new spelling to name in
    the note, when it is not the ``--set`` form (e.g. ``--quiet``)."""

    def callback(ctx: click.Context, param: click.Parameter, values: Any) -> None:
        if flag:
            values = ["true"] if values else []
        values = values if multiple or flag else ([] if values is None else [values])
        if not values:
            return
        new = [to(v) for v in values]
        ctx.meta.setdefault(_SETS_META, []).extend(new)
        spelled = instead or " ".join(f"--set {shlex.quote(n)}" for n in new)
        configure_logging()  # parsing comes before FeatstatCommand.invoke sets the handler up
        log.warning(f"note: {param.opts[-1]} is deprecated (removed in 0.3); use {spelled}")

    if flag:
        return click.option(*decls, is_flag=True, hidden=True, expose_value=False, callback=callback)
    return click.option(*decls, multiple=multiple, metavar=metavar, hidden=True, expose_value=False,
                        callback=callback)  # fmt: skip


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------------

_INTERRUPT_META = "featstat.interrupt"


def on_interrupt(checkpoint: Path, *, save_image: Callable[[Path], str | None] | None = None) -> None:
    """Register the current verb's checkpoint: after Ctrl-C or SIGTERM the error mapping says whether it was
    saved, what ``save_image(checkpoint)`` reports (e.g. the image so far) and the command that resumes."""
    click.get_current_context().meta[_INTERRUPT_META] = (Path(checkpoint), save_image)


def resume_command() -> str:
    """The command line that continues this run: the one typed, with --resume."""
    args = sys.argv[1:]
    if Path(sys.argv[0]).name not in ("featstat", "__main__.py", "featstat.exe") or not args:
        return "the same command with --resume"
    if "--resume" not in args:
        args = [*args, "--resume"]
    return "featstat " + " ".join(shlex.quote(a) for a in args)


def _stopped(ctx: click.Context, err: KeyboardInterrupt) -> SystemExit:
    """After Ctrl-C or SIGTERM: what was saved and how to resume; status 130 (Ctrl-C) or 143 (SIGTERM)."""
    code = int(getattr(err, "exit_code", 130))  # featstat.engine.runs.interrupt_exit_code, without torch
    what = "terminated (SIGTERM)" if code == 143 else "interrupted"
    registered = ctx.meta.pop(_INTERRUPT_META, None)
    if registered is None:
        click.echo(f"\n{what}", err=True)
        return SystemExit(code)
    checkpoint, save_image = registered
    if not checkpoint.is_file():
        click.echo(f"\n{what} before the first checkpoint; nothing was saved", err=True)
        return SystemExit(code)
    lines = [f"\n{what}: checkpoint saved to {checkpoint}"]
    if save_image is not None:
        note = save_image(checkpoint)
        if note:
            lines.append(note)
    lines.append(f"resume with: {resume_command()}")
    click.echo("\n".join(lines), err=True)
    return SystemExit(code)
