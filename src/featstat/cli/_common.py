"""What every ``featstat`` verb shares: one error mapping, output-path checks made before any work, and the
words of the command line in messages written for Python callers.

This module imports neither torch nor the products, so ``featstat --help`` stays fast.

- :class:`FeatstatGroup` (the ``featstat`` group) turns what escapes a verb into one line: missing
  pretrained weights → ``Error: …`` and exit status 2; ``ValueError`` / ``OSError`` / ``FloatingPointError``
  → ``Error: …`` and status 1; Ctrl-C → status 130, SIGTERM → 143 (a checkpointing verb has already said
  where its checkpoint is). For the whole verb SIGTERM behaves as Ctrl-C. ``FEATSTAT_DEBUG=1`` shows the
  traceback instead of the one line.
- :func:`cli_words` rewrites advice phrased for Python callers ("pass weights=None") into the verb's flag.
- :func:`output_file` / :func:`check_output_folder` validate ``-o`` before a run starts.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = [
    "IMAGE_SUFFIXES",
    "FeatstatGroup",
    "auto_threads",
    "check_output_folder",
    "checkpoint_file",
    "cli_words",
    "is_grayscale_file",
    "output_file",
]

#: Image formats :func:`featstat.io.write_image` writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

#: Exit status for missing pretrained weights (a usage problem the user fixes by getting a file).
MISSING_WEIGHTS_EXIT = 2


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


class FeatstatGroup(click.Group):
    """The ``featstat`` group: every verb runs under one error mapping (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        words = [a for a in [*getattr(ctx, "_protected_args", []), *ctx.args] if not a.startswith("-")][:2]
        try:
            with _sigterm_as_interrupt():
                return super().invoke(ctx)
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
            from ..engine.runs import interrupt_exit_code

            code = interrupt_exit_code(err)
            click.echo("\nterminated" if code == 143 else "\ninterrupted", err=True)
            raise SystemExit(code) from None
        except (ValueError, OSError, FloatingPointError, RuntimeError) as err:
            if os.environ.get("FEATSTAT_DEBUG") or (isinstance(err, RuntimeError) and not _torch_error(err)):
                raise
            missing = _missing_weights_from(err)
            if missing is not None:
                raise _error(cli_words(str(missing), words), MISSING_WEIGHTS_EXIT) from None
            raise _error(cli_words(_one_line(err), words), 1) from None


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
