"""The ``featstat`` entry point: lazy verbs, one error mapping, output paths checked before work, CLI words,
Ctrl-C / SIGTERM handling, run folders, generator trainers that notice a dead run."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from featstat import io
from featstat.cli import VERBS, main
from featstat.cli._common import cli_words, output_file
from featstat.engine.runs import Terminated, graceful_interrupt, interrupt_exit_code
from featstat.texture.training import DivergenceWatch, TrainingDiverged

FEATSTAT = [sys.executable, "-m", "featstat"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _image(path: Path, size=(40, 48), seed=0, channels=3) -> Path:
    g = torch.Generator().manual_seed(seed)
    io.write_image(path, torch.rand(1, channels, *size, generator=g))
    return path


# -- the entry point ----------------------------------------------------------------------------------------


def test_verb_table_matches_the_verbs():
    """The help lines `featstat --help` shows without importing the verbs are the start of their real help."""
    for name, (module, attr, start) in VERBS.items():
        command = getattr(importlib.import_module(module), attr)
        first = " ".join((command.help or "").split())
        assert start and first.startswith(start), (name, start, first[:120])
    assert sorted(main.list_commands(None)) == sorted(VERBS)


def test_help_does_not_import_torch_and_python_m_works():
    code = "import sys; from featstat.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\n"
    code += "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out and "texture" in out and out.strip().endswith("NO-TORCH")
    res = subprocess.run([*FEATSTAT, "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "Usage: featstat" in res.stdout and "prior" in res.stdout


def test_cli_words_replace_python_advice_with_flags():
    msg = "weights were not found; or pass weights=None for seeded random weights"
    assert "--backbone-weights random" in cli_words(msg, ["train", "cx-sr"])
    assert "--weights random" in cli_words(msg, ["prior", "invert"])
    assert "--extra-weights random" in cli_words(msg, ["prior", "sr"])
    assert "--preset random-filters" in cli_words(msg, ["texture"])
    assert "weights=None" not in cli_words(msg, ["eval"])
    assert "--resume" in cli_words("continue with resume=True", ["prior", "denoise"])
    assert "alpha='drop'" not in cli_words("has alpha; pass alpha='drop' to ignore it or composite it", [])


# -- output paths, before any work --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("out/", "out/ex.png"), ("deep/er/", "deep/er/ex.png"), ("a.png", "a.png"), ("b.JPG", "b.JPG")],
)
def test_output_file_accepts_files_and_folders(tmp_path, given, expected):
    os.chdir(tmp_path)
    assert output_file(given, "ex.png") == Path(expected)
    assert Path(expected).parent.is_dir()


def test_output_file_existing_folder_without_slash(tmp_path):
    (tmp_path / "here").mkdir()
    assert output_file(str(tmp_path / "here"), "ex.png") == tmp_path / "here" / "ex.png"


@pytest.mark.parametrize("bad", ["out.gif", "noext", "file/x.png", "file/sub/"])
def test_bad_outputs_refused_before_any_work(tmp_path, monkeypatch, bad):
    """Every bad -o of every image-writing verb is one `Error:` line (status 2) and nothing runs."""
    os.chdir(tmp_path)
    (tmp_path / "file").write_text("a regular file")
    ex = _image(tmp_path / "ex.png")
    import featstat.texture.synthesis as synthesis

    def boom(*a, **k):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(synthesis, "synthesize_texture", boom)
    monkeypatch.setattr(synthesis, "transfer_style", boom)
    for args in (["texture", str(ex), "-o", bad], ["style", str(ex), str(ex), "-o", bad]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: -o/--out:"), res.output
    assert not list(tmp_path.glob("**/*.ckpt.pt"))


def test_run_folders_below_a_file_are_one_line_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    ex = _image(tmp_path / "ex.png")
    cases = [
        ["train", "texture", str(ex), "-o", str(tmp_path / "file" / "run")],
        ["train", "style", str(ex), str(ex), "-o", str(tmp_path / "file" / "run")],
        ["prior", "denoise", "-o", str(tmp_path / "file" / "p")],
        ["degrade", str(ex), "--task", "sr2", "-o", str(tmp_path / "file" / "d")],
    ]
    for args in cases:
        res = CliRunner().invoke(main, args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), (args, res.output)


def test_os_errors_are_one_line(tmp_path, monkeypatch):
    ex = _image(tmp_path / "ex.png")
    import featstat.texture.synthesis as synthesis

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(synthesis, "synthesize_texture", denied)
    res = CliRunner().invoke(main, ["texture", str(ex), "-o", str(tmp_path / "t.png"), "--quiet"])
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1].startswith("Error: Permission denied")
    assert "Traceback" not in res.output


def test_missing_weights_is_one_line_with_status_2(tmp_path):
    """A verb that needs a weights file that is not there: one line naming the file and the flag, status 2."""
    ex = _image(tmp_path / "ex.png", size=(48, 48))
    env = _env(FEATSTAT_OFFLINE="1", FEATSTAT_WEIGHTS=str(tmp_path / "none"), TORCH_HOME=str(tmp_path / "th"))
    res = subprocess.run(
        [*FEATSTAT, "texture", str(ex), "-o", str(tmp_path / "t.png"), "--preset", "gatys", "--steps", "1"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert res.returncode == 2 and len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "featstat weights import" in errors[0] and "--preset random-filters" in errors[0]
    assert "weights=None" not in errors[0]


# -- texture verbs: --steps 0, Ctrl-C / SIGTERM, run folders ------------------------------------------------


def test_steps_zero_is_not_an_error(tmp_path):
    ex = _image(tmp_path / "ex.png", size=(32, 32))
    res = CliRunner().invoke(
        main, ["texture", str(ex), "-o", f"{tmp_path}/o/", "--steps", "0", "--preset", "random-filters",
               "--quiet", "--size", "24", "--layers", "k3,k5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "ex.png").is_file() and "no loss curve" in res.output


def test_graceful_interrupt_handles_sigterm_like_ctrl_c():
    for signum, kind, code in ((signal.SIGTERM, Terminated, 143), (signal.SIGINT, KeyboardInterrupt, 130)):
        with graceful_interrupt() as stop:
            signal.raise_signal(signum)  # the first signal only sets the flag
            assert stop.requested and stop.signum == signum
            err = stop.interrupt()
        assert type(err) is kind and interrupt_exit_code(err) == code
    with pytest.raises(Terminated), graceful_interrupt():  # a second signal interrupts at once
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)


def test_texture_ctrl_c_saves_image_and_prints_the_resume_command(tmp_path, monkeypatch):
    ex = _image(tmp_path / "ex.png", size=(32, 32))
    import featstat.texture.synthesis as synthesis

    real = synthesis.synthesize_texture

    def stop_at_step_2(*a, **k):
        def callback(scale, step, image, values):
            if step == 2:
                signal.raise_signal(signal.SIGINT)

        return real(*a, **k, callback=callback)

    monkeypatch.setattr(synthesis, "synthesize_texture", stop_at_step_2)
    out = tmp_path / "t.png"
    args = ["texture", str(ex), "-o", str(out), "--steps", "50", "--preset", "random-filters", "--quiet",
            "--size", "24", "--optimizer", "adam", "--layers", "k3,k5"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 130, res.output
    assert "checkpoint saved to" in res.output and "resume with" in res.output
    assert out.is_file() and (tmp_path / "t.ckpt.pt").is_file()
    assert "Aborted" not in res.output


def test_sigterm_stops_a_prior_run_with_a_checkpoint_and_status_143(tmp_path):
    """A real SIGTERM to a running `featstat prior denoise`: the step finishes, the checkpoint is saved, the
    resume command printed, status 143; --resume then finishes the run."""
    out = tmp_path / "p"
    args = [*FEATSTAT, "prior", "denoise", "--steps", "400", "--depth", "2", "--channels", "8", "-q",
            "--threads", "1", "--snapshot-every", "1", "-o", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "snapshots" / "step_00002.png").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never reached step 2"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143, err
    assert "terminated" in err and "resume with" in err and "--resume" in err
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["status"] == "interrupted" and 2 <= state["step"] < 400  # the run loop's header


def test_prior_resume_of_a_finished_run_reports_it(tmp_path):
    out = tmp_path / "p"
    args = ["prior", "denoise", "--steps", "2", "--depth", "2", "--channels", "8", "-q", "-o", str(out),
            "--snapshot-every", "1"]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [
        "step_00001.png", "step_00001_avg.png", "step_00002.png", "step_00002_avg.png"]  # fmt: skip
    res = CliRunner().invoke(main, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert "already finished its 2 steps" in res.output


def test_prior_max_size_downscales_the_photo(tmp_path):
    photo = _image(tmp_path / "big.png", size=(60, 90))
    out = tmp_path / "p"
    res = CliRunner().invoke(
        main, ["prior", "denoise", str(photo), "--sigma", "25", "--max-size", "30", "--steps", "1", "--depth",
               "2", "--channels", "8", "-q", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert io.read_image(out / "result.png").shape[-2:] == (20, 30)


# -- generator training: defaults that train, divergence noticed --------------------------------------------


def test_divergence_watch():
    w = DivergenceWatch()
    flat = torch.full((2, 3, 8, 8), 0.5)
    lively = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for step in range(1, 5):
        w.update(step, 1.0, flat, 0.1)  # four flat steps: not yet
    w.update(5, 1.0, lively, 0.1)  # recovers: counter reset
    with pytest.raises(TrainingDiverged, match=r"one flat colour.*--lr 0\.01"):
        for step in range(6, 12):
            w.update(step, 1.0, flat, 0.1)
    w = DivergenceWatch()
    w.update(1, 1.0, lively, 0.1)
    with pytest.raises(TrainingDiverged, match=r"stayed above 10× its lowest value"):
        for step in range(2, 40):
            w.update(step, 50.0, lively, 0.1)
    w = DivergenceWatch()  # negative totals (diversity term) and noisy losses are not divergence
    for step in range(1, 60):
        w.update(step, -1e-5 * (1 + step % 3), lively, 0.01)
        w.update(step, 3.0 + (step % 5), lively, 0.01)


@pytest.mark.slow
def test_train_style_with_default_settings_trains(tmp_path):
    """`featstat train style` with its defaults (only sizes and steps made tiny) gives stylised samples that
    are not one flat colour; the same run at the thesis' texture rate 0.1 stops with advice instead."""
    style = _image(tmp_path / "style.png", size=(64, 64), seed=1)
    content = _image(tmp_path / "content.png", size=(72, 80), seed=2)
    base = ["train", "style", str(style), str(content), "--size", "64", "--batch-size", "2", "--samples", "1",
            "--quiet", "--preset", "random-filters"]  # fmt: skip
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "run"), "--steps", "8"])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["settings"]["lr"] == 0.001
    samples = io.read_image(tmp_path / "run" / "samples.png")
    assert float(samples.flatten(2).std(-1).mean()) > 0.02
    bad = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "bad"), "--steps", "30", "--lr", "0.1"])
    assert bad.exit_code == 1 and "training diverged" in bad.output and "--lr 0.01" in bad.output, bad.output


def test_sample_and_stylize_accept_a_run_folder(tmp_path):
    from featstat.nets.texture import TextureNetV1
    from featstat.texture.training import train_texture

    ex = _image(tmp_path / "ex.png", size=(32, 32))
    net = TextureNetV1(scales=2, channels=4, seed=0)
    train_texture(net, io.read_image(ex), steps=1, size=16, batch_size=2, preset="random-filters",
                  layers=["k3"], checkpoint=tmp_path / "run" / "checkpoint.pt")  # fmt: skip
    args = ["sample", str(tmp_path / "run"), "-o", str(tmp_path / "s"), "--count", "1", "--size", "16"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "sample_000.png").is_file()
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["sample", str(tmp_path / "empty"), "-o", str(tmp_path / "s2")])
    assert res.exit_code == 2 and "holds no checkpoint.pt" in res.output


def test_weights_list_is_readable_on_80_columns():
    import re

    res = CliRunner().invoke(main, ["weights", "list"], env={"FORCE_COLOR": "1", "COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in text  # whole, not squeezed away
    assert "found at:" in text


def test_luminance_transfer_keeps_the_content_colours():
    from featstat.cli.texture import luminance_transfer
    from featstat.ops import rgb_to_ycbcr

    def _ycbcr(image):
        return rgb_to_ycbcr(image, swing="full").unbind(1)

    g = torch.Generator().manual_seed(0)
    content = 0.4 + 0.2 * torch.rand(1, 3, 16, 16, generator=g)  # in gamut after the swap (no clamping)
    stylised = 0.4 + 0.2 * torch.rand(1, 3, 16, 16, generator=g)
    out = luminance_transfer(stylised, content)
    y_out, cb_out, cr_out = _ycbcr(out)
    y_s, _, _ = _ycbcr(stylised)
    _, cb_c, cr_c = _ycbcr(content)
    torch.testing.assert_close(y_out, y_s, atol=2e-3, rtol=0)  # luminance of the stylised image
    torch.testing.assert_close(cb_out, cb_c, atol=2e-3, rtol=0)  # colour of the content
    torch.testing.assert_close(cr_out, cr_c, atol=2e-3, rtol=0)
    gray = torch.full((1, 3, 4, 4), 0.5)
    torch.testing.assert_close(luminance_transfer(stylised[..., :4, :4], gray).std(1), torch.zeros(1, 4, 4),
                               atol=2e-3, rtol=0)  # fmt: skip


def test_grayscale_inputs_stay_grayscale(tmp_path):
    from PIL import Image

    ex = _image(tmp_path / "gray.png", size=(32, 32), channels=1)
    args = ["texture", str(ex), "-o", str(tmp_path / "t.png"), "--steps", "1", "--preset", "random-filters",
            "--layers", "k3", "--size", "24", "--quiet"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "t.png").mode == "L"
    args = ["prior", "denoise", str(ex), "--sigma", "25", "--steps", "1", "--depth", "2", "--channels", "8",
            "-q", "-o", str(tmp_path / "p")]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    for name in ("noisy", "result", "average"):  # noise was not added per colour channel
        assert Image.open(tmp_path / "p" / f"{name}.png").mode == "L"


def test_the_offline_prior_demo_uses_the_lighter_net(tmp_path):
    res = CliRunner().invoke(main, ["prior", "denoise", "--steps", "1", "-q", "-o", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert run["net_options"]["channels_down"] == [64] * 5 and "--channels 128" in res.output
    res = CliRunner().invoke(main, ["prior", "denoise", "--steps", "1", "-q", "-o", str(tmp_path / "q"),
                                    "--channels", "16"])  # fmt: skip
    assert json.loads((tmp_path / "q" / "run.json").read_text())["net_options"]["channels_down"] == [16] * 5


def test_subpackages_are_attributes_of_the_lazy_package():
    import featstat

    assert callable(featstat.metrics.psnr) and callable(featstat.prior.denoise)
    with pytest.raises(AttributeError, match="no attribute 'nothere'"):
        featstat.nothere  # noqa: B018
