"""`featstat train translate`, `featstat translate`, `featstat train age`, `featstat age …` end to end on tiny
data (seeded random trunks, a few steps)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from featstat.cli import main
from featstat.io import read_image, write_image

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("adv")
    g = torch.Generator().manual_seed(0)
    for side in ("a", "b", "digits"):
        (root / side).mkdir()
    for i in range(4):
        coarse = torch.rand(1, 3, 4, 4, generator=g)
        x = torch.nn.functional.interpolate(coarse, size=(40, 36), mode="bilinear")
        write_image(root / "a" / f"{i}.png", x)
        write_image(root / "b" / f"{i}.png", (0.5 * x + 0.4).clamp(0, 1))
    for i in range(12):
        d = (torch.rand(1, 1, 4, 4, generator=g) > 0.5).float()
        write_image(root / "digits" / f"{i}.png", torch.nn.functional.interpolate(d, size=(16, 16)))
    return root


def test_train_translate_then_translate(data, tmp_path):
    out = tmp_path / "run"
    args = ["train", "translate", "--source", data / "a", "--target", data / "b", "-o", out, "--size", 32,
            "--batch-size", 2, "--steps", 2, "--weights", "random", "--blocks", 1, "--pretrain", 1,
            "--set", "options.width=8", "--set", "options.generator_width=8", "-q"]  # fmt: skip
    r = run(*args)
    assert r.exit_code == 0, r.output
    for name in ("checkpoint.pt", "samples.png", "history.csv", "run.json", "curves.png"):
        assert (out / name).is_file(), name
    r = run("translate", out, data / "a", "-o", tmp_path / "t", "--tile", 32)
    assert r.exit_code == 0, r.output
    y = read_image(tmp_path / "t" / "0.png")
    assert y.shape == (1, 3, 40, 36)
    r = run(*args, "--resume", "--steps", 3)
    assert r.exit_code == 0, r.output
    r = run(*args[:-1], "--set", "options.widht=8")
    assert r.exit_code == 2 and "did you mean 'width'" in r.output


def test_train_age_sample_reconstruct(data, tmp_path):
    out = tmp_path / "age"
    r = run("train", "age", "--data", data / "digits", "-o", out, "--size", 16, "--channels", 1,
            "--latent", 4, "--batch-size", 4, "--steps", 2, "--set", "options.width=8", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("age", "sample", out, "-o", tmp_path / "s.png", "--count", 10)
    assert r.exit_code == 0 and read_image(tmp_path / "s.png", channels=1).shape == (1, 1, 32, 128)
    r = run("age", "reconstruct", out, data / "digits", "-o", tmp_path / "rec")
    assert r.exit_code == 0 and "mean L1" in r.output
    assert len(list((tmp_path / "rec").glob("*.png"))) == 12


@pytest.mark.parametrize("verb", [["train", "translate"], ["translate"], ["train", "age"], ["age"],
                                  ["age", "sample"], ["age", "reconstruct"], ["age", "colorize"],
                                  ["age", "transfer"]])  # fmt: skip
def test_help_has_examples(verb):
    r = run(*verb, "--help")
    assert r.exit_code == 0 and "Examples:" in r.output


def test_conditional_age_colorize_and_transfer(data, tmp_path):
    out = tmp_path / "color"
    r = run("train", "age", "--data", data / "a", "-o", out, "--size", 16, "--latent", 3, "--conditional",
            "--batch-size", 2, "--steps", 2, "--set", "options.width=8", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("age", "colorize", out, data / "a", "-o", tmp_path / "c", "--count", 3)
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "c" / "0.png").shape == (1, 3, 16, 64)  # gray + 3 colourisations
    r = run("age", "transfer", out, data / "a" / "0.png", data / "a" / "1.png", "-o", tmp_path / "t.png")
    assert r.exit_code == 0 and read_image(tmp_path / "t.png").shape == (1, 3, 16, 48)
    r = run("age", "colorize", tmp_path / "missing", data / "a", "-o", tmp_path / "x")
    assert r.exit_code == 2
