"""CLI: recipe subcommands on a click group, ``restore`` (tiled) and ``degrade``; help texts; bad inputs."""

from __future__ import annotations

import json

import click
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from featstat.cli.restoration import add_recipe_commands, degrade_command, parse_assignment, restore_command
from featstat.io import read_image, write_image
from featstat.restoration.recipes import recipe_names

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        pass

    @main.group()
    def train() -> None:
        pass

    add_recipe_commands(train)
    main.add_command(restore_command)
    main.add_command(degrade_command)
    return main


def _images(folder, n=3, h=48, w=40):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        low = torch.rand(1, 3, 8, 8, generator=g)
        write_image(folder / f"p{i}.png", F.interpolate(low, size=(h, w), mode="bicubic").clamp(0, 1))
    return folder


def test_every_command_has_help_with_examples(cli):
    runner = CliRunner()
    assert set(cli.commands["train"].commands) == set(recipe_names())
    for name in recipe_names():
        result = runner.invoke(cli, ["train", name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Examples:" in result.output and f"featstat train {name}" in result.output
    for name in ("restore", "degrade"):
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output
    assert "--gan / --no-gan" in runner.invoke(cli, ["train", "cx-sr", "--help"]).output


def test_train_resume_restore_and_degrade_end_to_end(cli, tmp_path):
    runner = CliRunner()
    data = _images(tmp_path / "data")
    val = _images(tmp_path / "val", n=1, h=36, w=28)
    out = tmp_path / "run"
    args = [
        "train",
        "pixel",
        "--data",
        str(data),
        "--val",
        str(val),
        "--task",
        "sr2",
        "-o",
        str(out),
        "--batch-size",
        "2",
        "--crop-size",
        "32",
        "--network",
        "edsr",
        "--set",
        "network.options.channels=4",
        "--set",
        "network.options.blocks=1",
        "--set",
        "training.log_every=1",
        "--set",
        "training.plots=false",
        "--no-progress",
        "--device",
        "cpu",
        "--lpips",
        "none",
    ]
    result = runner.invoke(cli, [*args, "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output and "psnr" in result.output
    for name in ("checkpoint.pt", "model.pt", "train_log.csv", "val_log.csv", "run.json"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["network"]["options"] == {"channels": 4, "blocks": 1}
    assert run["metadata"]["task"] == "sr2" and run["metadata"]["recipe"]["name"] == "pixel"
    result = runner.invoke(cli, [*args, "--steps", "4", "--resume"])
    assert result.exit_code == 0, result.output
    steps = [int(line.split(",")[0]) for line in (out / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4]  # continued from step 2
    # degrade whole images, then restore them tile by tile
    lr = tmp_path / "lr"
    result = runner.invoke(cli, ["degrade", str(data), "--task", "sr2", "-o", str(lr)])
    assert result.exit_code == 0, result.output
    assert read_image(lr / "p0.png").shape == (1, 3, 24, 20)
    sr = tmp_path / "sr"
    result = runner.invoke(
        cli,
        [
            "restore",
            str(out / "model.pt"),
            str(lr),
            "-o",
            str(sr),
            "--tile",
            "16",
            "--overlap",
            "4",
            "--suffix",
            "_x2",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    restored = read_image(sr / "p1_x2.png")
    assert restored.shape == (1, 3, 48, 40)
    noisy = tmp_path / "noisy"
    result = runner.invoke(
        cli, ["degrade", str(data / "p0.png"), "--task", "denoise", "--set", "sigma=50", "-o", str(noisy)]
    )
    assert result.exit_code == 0, result.output
    diff = read_image(noisy / "p0.png") - read_image(data / "p0.png")
    assert 0.1 < float(diff.std()) < 0.25  # σ = 50/255 ≈ 0.196 (slightly less after clipping)


def test_cli_bad_inputs(cli, tmp_path):
    runner = CliRunner()
    data = _images(tmp_path / "data", n=1)
    result = runner.invoke(cli, ["train", "pixel", "--data", str(data), "--set", "nokey"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output
    result = runner.invoke(cli, ["train", "cx-sr", "--data", str(data), "--task", "denoise"])
    assert result.exit_code == 2 and "'denoise' is not one of" in result.output
    result = runner.invoke(
        cli, ["train", "pixel", "--data", str(data), "--set", "training.epochs=3", "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "unknown key 'epochs' in training" in result.output
    assert "valid keys:" in result.output and "steps" in result.output
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    result = runner.invoke(
        cli, ["restore", str(tmp_path / "foreign.pt"), str(data), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "not a featstat restoration checkpoint" in result.output
    result = runner.invoke(
        cli,
        [
            "restore",
            str(tmp_path / "foreign.pt"),
            str(data),
            "-o",
            str(tmp_path / "o"),
            "--tile",
            "32",
            "--overlap",
            "16",
        ],
    )
    assert result.exit_code == 2 and "must be larger than 2·--overlap" in result.output
    result = runner.invoke(
        cli, ["degrade", str(data), "--task", "jpeg", "--set", "quality=0", "-o", str(tmp_path)]
    )
    assert result.exit_code == 2 and "quality must be an integer in [1, 100]" in result.output


def test_parse_assignment():
    assert parse_assignment("a.b.c=0.5") == {"a": {"b": {"c": 0.5}}}
    assert parse_assignment("x=[1, 2]") == {"x": [1, 2]}
    assert parse_assignment("flag=false") == {"flag": False}
    assert parse_assignment("name=edsr") == {"name": "edsr"}
