"""The grammar every ``featstat`` verb shares (featstat.cli._common): ``--set KEY=VALUE`` on every verb (one
parser, keys checked with a did-you-mean, one error line and status 2), ``--device`` defaulting to auto, the
old override spellings kept as deprecated aliases, and one error mapping (status 2 / 1 / 130 / 143)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from featstat import io
from featstat.cli import main
from featstat.cli._common import (
    FeatstatCommand,
    configure_logging,
    on_interrupt,
    parse_assignment,
    parse_value,
    resolve_device,
    set_option,
    short_help,
)


def _image(path: Path, size=(40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_image(path, torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)))
    return path


def _lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


# -- values and assignments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("2e-4", 2e-4),
        ("-3.5", -3.5),
        ("true", True),
        ("False", False),
        ("none", None),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('"a b"', "a b"),
        ("{a = 1}", {"a": 1}),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ("edsr", "edsr"),
        ("conv3_1,conv4_1", ["conv3_1", "conv4_1"]),
        ("vgg19-caffe", "vgg19-caffe"),
        ("4:2:0", "4:2:0"),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_parse_assignment_nests_dotted_keys_and_refuses_bad_text():
    assert parse_assignment("a.b.c=0.5") == {"a": {"b": {"c": 0.5}}}
    for bad in ("nokey", "=3", "a..b=1", ".a=1"):
        with pytest.raises(click.ClickException, match="expected KEY=VALUE"):
            parse_assignment(bad)


# -- every verb accepts --set, and a bad key is one line with status 2 ------------------------------------


def _verbs(tmp: Path) -> dict[str, list[str]]:
    """Each verb with arguments that get it past click's own checks (no work is done: --set is checked
    before the verb's body runs)."""
    img = _image(tmp / "in" / "a.png")
    folder = img.parent
    ckpt = tmp / "model.pt"
    ckpt.write_bytes(b"not read")
    from featstat.restoration.recipes import recipe_names

    verbs = {
        "texture": ["texture", str(img), "-o", str(tmp / "t.png")],
        "style": ["style", str(img), str(img), "-o", str(tmp / "s.png")],
        "train texture": ["train", "texture", str(img), "-o", str(tmp / "tt")],
        "train style": ["train", "style", str(img), str(img), "-o", str(tmp / "ts")],
        "sample": ["sample", str(ckpt), "-o", str(tmp / "sa")],
        "stylize": ["stylize", str(ckpt), str(img), "-o", str(tmp / "st")],
        "restore": ["restore", str(ckpt), str(img), "-o", str(tmp / "r")],
        "degrade": ["degrade", str(img), "--task", "sr2", "-o", str(tmp / "d")],
        "eval": ["eval", str(folder), str(folder), "-o", str(tmp / "e")],
        "compare": ["compare", str(img), str(img), "-o", str(tmp / "c.png")],
        "spectrum": ["spectrum", str(img), "-o", str(tmp / "sp.png")],
        "twoafc": ["twoafc", str(folder)],
        "prior denoise": ["prior", "denoise", str(img), "-o", str(tmp / "pd")],
        "prior sr": ["prior", "sr", str(img), "-o", str(tmp / "ps")],
        "prior inpaint": ["prior", "inpaint", str(img), "--drop", "0.5", "-o", str(tmp / "pi")],
        "prior jpeg": ["prior", "jpeg", str(img), "-o", str(tmp / "pj")],
        "prior flash": ["prior", "flash", str(img), str(img), "-o", str(tmp / "pf")],
        "prior invert": ["prior", "invert", str(img), "-o", str(tmp / "pv")],
    }
    verbs["weights list"] = ["weights", "list"]
    verbs["weights path"] = ["weights", "path", "vgg19"]
    verbs["weights import"] = ["weights", "import", str(ckpt)]
    for name in recipe_names():
        verbs[f"train {name}"] = ["train", name, "--data", str(folder), "-o", str(tmp / name)]
    return verbs


def test_every_verb_accepts_set_and_a_bad_key_is_one_line(tmp_path):
    runner = CliRunner()
    for verb, args in _verbs(tmp_path).items():
        res = runner.invoke(main, [*args, "--set", "stepz.x=1"])
        lines = _lines(res.output)
        assert res.exit_code == 2, (verb, res.output)
        assert len(lines) == 1 and lines[0].startswith("Error: --set: unknown key 'stepz'"), (
            verb,
            res.output,
        )
        assert "valid keys:" in lines[0], verb
        head = args[: 2 if args[0] in ("train", "prior", "weights") else 1]
        assert "--set KEY=VALUE" in runner.invoke(main, [*head, "--help"]).output, verb
    assert not list(tmp_path.glob("**/*.ckpt.pt")) and not (tmp_path / "pd" / "checkpoint.pt").exists()


def test_set_suggests_the_key_meant(tmp_path):
    img = _image(tmp_path / "a.png")
    base = ["texture", str(img), "-o", str(tmp_path / "t.png")]
    res = CliRunner().invoke(main, [*base, "--set", "stpes=3"])
    assert res.exit_code == 2 and "did you mean 'steps'" in res.output
    res = CliRunner().invoke(main, [*base, "--set", "contextual.bandwith=0.5"])
    assert (
        res.exit_code == 2
        and "unknown key 'bandwith' in contextual (did you mean 'bandwidth'?)" in res.output
    )
    res = CliRunner().invoke(main, [*base, "--set", "gramm.x=1"])
    assert res.exit_code == 2 and "did you mean 'gram'" in res.output
    res = CliRunner().invoke(main, ["degrade", str(img), "--task", "denoise", "-o", str(tmp_path / "d"),
                                    "--set", "sigmma=3"])  # fmt: skip
    assert res.exit_code == 2 and "did you mean 'sigma'" in res.output
    res = CliRunner().invoke(main, [*base, "--set", "steps=many"])
    assert res.exit_code == 2 and "--set steps:" in res.output and "not a valid integer" in res.output


def test_set_reaches_options_and_statistic_options(tmp_path, monkeypatch):
    """--set steps=… is --steps (and wins over it); --set STAT.OPTION and the old --option give the same
    options to synthesis."""
    import featstat.texture.synthesis as synthesis

    seen = []

    def capture(*args, **kwargs):
        seen.append(kwargs)
        raise ValueError("captured")

    monkeypatch.setattr(synthesis, "synthesize_texture", capture)
    img = _image(tmp_path / "a.png")
    base = ["texture", str(img), "-o", str(tmp_path / "t.png"), "--preset", "random-filters"]
    sets = ["steps=3", "tile=true", "contextual.bandwidth=0.5", 'cx.distance="l2"']
    res = CliRunner().invoke(main, [*base, "--steps", "9", *(w for s in sets for w in ("--set", s))])
    assert res.exit_code == 2 and "captured" in res.output, res.output
    new = seen[-1]
    assert new["steps"] == 3 and new["tile"] is True
    assert new["options"] == {"contextual": {"bandwidth": 0.5}, "cx": {"distance": "l2"}}
    res = CliRunner().invoke(main, [*base, "--option", "contextual.bandwidth=0.5"])
    assert (
        res.exit_code == 2
        and "--option is deprecated" in res.output
        and "--set contextual.bandwidth=0.5" in (res.output)
    )
    assert seen[-1]["options"] == {"contextual": {"bandwidth": 0.5}}
    help_text = " ".join(CliRunner().invoke(main, ["texture", "--help"]).output.split())
    assert "--option STAT.KEY=VALUE" in help_text and "Deprecated" in help_text  # the note, not the option


def test_prior_extra_alias_and_set(tmp_path, monkeypatch):
    import featstat.prior.tasks as tasks

    seen = []

    def capture(terms, **kwargs):
        seen.append(dict(terms))
        raise ValueError("captured")

    monkeypatch.setattr(tasks, "statistics_objective", capture)
    img = _image(tmp_path / "a.png")
    base = ["prior", "denoise", str(img), "-o", str(tmp_path / "p"), "--threads", "1", "-q"]
    for extra in (
        ["--set", "extra.cx=0.05", "--set", "extra.pdl=1"],
        ["--extra", "cx=0.05", "--extra", "pdl"],
    ):
        res = CliRunner().invoke(main, [*base, *extra])
        assert res.exit_code == 2 and "captured" in res.output, res.output
        assert seen[-1] == {"cx": 0.05, "pdl": 1.0}
    res = CliRunner().invoke(main, [*base, "--set", "extra.cxx=1"])
    assert res.exit_code == 2 and "did you mean 'cx'" in res.output
    res = CliRunner().invoke(main, [*base, "--set", "extra.cx=abc"])
    assert res.exit_code == 2 and "LOSS=WEIGHT" in res.output


def test_recipe_no_progress_alias_and_set(tmp_path, monkeypatch):
    import featstat.restoration.recipes as recipes

    seen = []

    def capture(recipe, data, out_dir, **kwargs):
        seen.append((recipe, kwargs))
        raise ValueError("captured")

    monkeypatch.setattr(recipes, "train", capture)
    folder = _image(tmp_path / "in" / "a.png").parent
    base = ["train", "pixel", "--data", str(folder), "-o", str(tmp_path / "r")]
    res = CliRunner().invoke(main, [*base, "--no-progress", "--set", "training.lr=2e-4", "--set", "seed=7"])
    assert res.exit_code == 2 and "captured" in res.output, res.output
    recipe, kwargs = seen[-1]
    assert kwargs["progress"] is False and kwargs["device"] is None  # auto: the trainer's own choice
    assert recipe["training"]["lr"] == 2e-4 and recipe["training"]["seed"] == 7
    assert "--no-progress is deprecated" in res.output and "--quiet" in res.output
    res = CliRunner().invoke(main, [*base, "--set", "training.stepss=1"])
    assert res.exit_code == 2 and "did you mean 'steps'" in res.output


def test_metric_set_keys(tmp_path, monkeypatch):
    folder = _image(tmp_path / "in" / "a.png").parent
    base = ["eval", str(folder), str(folder), "-o", str(tmp_path / "e"), "-q"]
    res = CliRunner().invoke(main, [*base, "-m", "psnr", "--set", "psnr.crop_border=2"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, [*base, "-m", "psnr", "--set", "psnr.crop_bordr=2"])
    assert res.exit_code == 2 and "did you mean 'crop_border'" in res.output


# -- --device ------------------------------------------------------------------------------------------


def test_device_defaults_to_auto(monkeypatch, tmp_path):
    assert resolve_device("auto") == resolve_device(None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(click.BadParameter, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(click.BadParameter, match="is not a device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    computing = [v for v in _verbs(tmp_path).values()]
    for args in computing:
        if args[0] in ("degrade", "spectrum", "weights"):  # CPU file transforms: no device to choose
            continue
        head = args[: 2 if args[0] in ("train", "prior") else 1]
        text = CliRunner().invoke(main, [*head, "--help"]).output
        assert "--device DEVICE" in text and "[default: auto]" in " ".join(text.split()), head


def test_bad_device_is_one_line_status_2(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    img = _image(tmp_path / "a.png")
    res = CliRunner().invoke(main, ["texture", str(img), "-o", str(tmp_path / "t.png"), "--device", "cuda"])
    assert res.exit_code == 2 and "CUDA is not available" in res.output


# -- the error mapping ---------------------------------------------------------------------------------


def _raising(exc: BaseException, checkpoint: Path | None = None) -> click.Command:
    @click.command(cls=FeatstatCommand)
    @set_option()
    def cmd() -> None:
        if checkpoint is not None:
            on_interrupt(checkpoint)
        raise exc

    return cmd


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (ValueError("bad value: use 3"), 2, "Error: bad value: use 3"),
        (PermissionError(13, "Permission denied", "/x"), 1, "Error: Permission denied: /x"),
        (FloatingPointError("loss is nan"), 1, "Error: loss is nan"),
        (RuntimeError("CUDA out of memory. Tried"), 1, "Error: CUDA out of memory. Tried"),
    ],
)
def test_errors_are_one_line(exc, code, text, monkeypatch):
    monkeypatch.delenv("FEATSTAT_DEBUG", raising=False)
    res = CliRunner().invoke(_raising(exc), [])
    assert res.exit_code == code and _lines(res.output) == [text], res.output


def test_file_load_and_missing_weights_errors_are_status_2(monkeypatch):
    from featstat import FileLoadError
    from featstat.features import WeightsNotFoundError

    monkeypatch.delenv("FEATSTAT_DEBUG", raising=False)
    res = CliRunner().invoke(_raising(FileLoadError("checkpoint 'x' is empty")), [])
    assert res.exit_code == 2 and _lines(res.output) == ["Error: checkpoint 'x' is empty"]
    res = CliRunner().invoke(_raising(WeightsNotFoundError("no file vgg19.pth; pass weights=None")), [])
    assert res.exit_code == 2 and len(_lines(res.output)) == 1 and "weights=None" not in res.output


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("FEATSTAT_DEBUG", "1")
    res = CliRunner().invoke(_raising(ValueError("boom")), [])
    assert isinstance(res.exception, ValueError)


def test_interrupts_exit_130_and_143_with_the_checkpoint(tmp_path):
    from featstat.engine.runs import Terminated

    res = CliRunner().invoke(_raising(KeyboardInterrupt()), [])
    assert res.exit_code == 130 and "interrupted" in res.output and "Aborted" not in res.output
    ck = tmp_path / "checkpoint.pt"
    res = CliRunner().invoke(_raising(Terminated(), ck), [])
    assert res.exit_code == 143 and "nothing was saved" in res.output
    ck.write_bytes(b"x")
    res = CliRunner().invoke(_raising(Terminated(), ck), [])
    assert res.exit_code == 143 and f"checkpoint saved to {ck}" in res.output and "resume with" in res.output


# -- logging and help ----------------------------------------------------------------------------------


def test_logging_goes_through_the_featstat_logger():
    configure_logging(quiet=False)
    log = logging.getLogger("featstat")
    assert log.level == logging.INFO and sum(getattr(h, "_featstat_cli", False) for h in log.handlers) == 1
    configure_logging(quiet=True)
    assert log.level == logging.WARNING and sum(getattr(h, "_featstat_cli", False) for h in log.handlers) == 1


def test_short_help():
    assert short_help("Do a thing. More words here.", 45) == "Do a thing."
    text = short_help(
        "Synthesise a texture like EXAMPLE by optimising pixels (Gatys et al.; any statistic).", 40
    )
    assert text.endswith("...") and len(text) <= 40 and text.startswith("Synthesise a texture")


def test_image_files_lists_files_and_folders(tmp_path):
    from featstat.cli._common import image_files

    a = _image(tmp_path / "f" / "b.png")
    _image(tmp_path / "f" / "a.png")
    assert image_files([a, a.parent]) == [a, a.parent / "a.png", a]
    (tmp_path / "empty").mkdir()
    with pytest.raises(click.ClickException, match="CONTENTS: no image files found") as info:
        image_files([tmp_path / "empty"], hint="CONTENTS")
    assert info.value.exit_code == 2


# -- the shared arguments and options ------------------------------------------------------------------


def test_shared_arguments_and_options_check_paths_and_keep_their_order(tmp_path):
    from featstat.cli._common import (
        CONTEXT,
        checkpoint_argument,
        out_option,
        path_argument,
        quiet_option,
        seed_option,
        stack,
    )

    image = _image(tmp_path / "a.png")
    seen = {}

    @click.command(cls=FeatstatCommand, context_settings=CONTEXT)
    @checkpoint_argument()
    @path_argument("images", kind="file", many=True)
    @stack(out_option("Where.", dest="out_dir"), seed_option("Seeds it."), quiet_option())
    @out_option("A PNG.", kind="file", decls=("--plot",), required=False)
    def verb(checkpoint, images, out_dir, seed, quiet, plot):
        seen.update(checkpoint=checkpoint, images=images, out_dir=out_dir, seed=seed, quiet=quiet, plot=plot)

    runner = CliRunner()
    result = runner.invoke(verb, [str(tmp_path), str(image), str(image), "-o", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert seen == {"checkpoint": tmp_path, "images": (image, image), "out_dir": tmp_path / "run", "seed": 0,
                    "quiet": True, "plot": None}  # fmt: skip
    help_text = runner.invoke(verb, ["-h"]).output
    assert help_text.index("--out") < help_text.index("--seed") < help_text.index("--quiet")  # stack order
    assert "Seeds it.  [default: 0]" in help_text
    for args, words in [
        ([str(tmp_path), str(tmp_path), "-o", "x"], "is a directory"),  # a file argument given a folder
        ([str(tmp_path), str(image)], "Missing option '-o'"),
        ([str(tmp_path), str(image), "-o", str(image)], "is a file"),  # a folder option given a file
        ([str(tmp_path), str(image), "-o", "x", "--plot", str(tmp_path)], "is a directory"),
        ([str(tmp_path / "none"), str(image), "-o", "x"], "does not exist"),
    ]:
        result = runner.invoke(verb, args)
        assert result.exit_code == 2 and words in result.output, (args, result.output)
