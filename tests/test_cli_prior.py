"""``featstat prior ...`` on tiny images: every verb writes its outputs, --resume continues, help has
examples, bad inputs give clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from featstat.cli.prior import prior
from featstat.io import write_image

TINY = ["--depth", "2", "--channels", "8", "--skip-channels", "2", "-q", "--threads", "1"]
OUTPUTS = ("result.png", "average.png", "curves.png", "run.json", "checkpoint.pt")


@pytest.fixture(autouse=True)
def _restore_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def _image(path, size=(24, 24), seed=0):
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    img = torch.stack([x, y, 0.5 + 0.3 * torch.sin(6 * x * y)])[None] * 0.8 + 0.1
    img = (img + 0.05 * torch.rand(img.shape, generator=g)).clamp(0, 1)
    write_image(path, img)
    return path


def _run(args):
    result = CliRunner().invoke(prior, [str(a) for a in args], catch_exceptions=False)
    return result


def _check_outputs(out, *extra):
    for name in (*OUTPUTS, *extra):
        assert (out / name).is_file(), name
    return json.loads((out / "run.json").read_text())


def test_denoise_without_an_image_runs_on_the_sample(tmp_path):
    out = tmp_path / "sample"
    r = _run(["denoise", "-o", out, "--steps", "3", *TINY])
    assert r.exit_code == 0, r.output
    assert "no IMAGE given" in r.output and "PSNR final" in r.output
    data = _check_outputs(out, "noisy.png", "clean.png")
    assert data["task"] == "denoise" and data["size"] == [128, 128] and data["steps"] == 3
    assert len(data["history"]["psnr"]) == 3 and data["psnr"] > 10


def test_denoise_sigma_and_resume(tmp_path):
    img = _image(tmp_path / "photo.png")
    out = tmp_path / "dn"
    r = _run(["denoise", img, "--sigma", "25", "-o", out, "--steps", "3", *TINY])
    assert r.exit_code == 0, r.output
    first = _check_outputs(out, "noisy.png")
    assert len(first["history"]["loss"]) == 3
    r = _run(["denoise", img, "--sigma", "25", "-o", out, "--steps", "5", "--resume", *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "run.json").read_text())
    assert (
        data["history"]["step"] == [1, 2, 3, 4, 5] and data["history"]["loss"][:3] == first["history"]["loss"]
    )


def test_sr_from_hr(tmp_path):
    img = _image(tmp_path / "hr.png", (26, 25))
    out = tmp_path / "sr"
    r = _run(["sr", img, "--from-hr", "--factor", "2", "-o", out, "--steps", "2", *TINY])
    assert r.exit_code == 0, r.output
    assert "bicubic baseline: PSNR" in r.output
    data = _check_outputs(out, "lowres.png", "bicubic.png", "clean.png")
    assert data["factor"] == 2 and data["size"] == [26, 24]  # centre-cropped to a multiple of the factor


def test_inpaint_with_mask_and_drop(tmp_path):
    img = _image(tmp_path / "img.png")
    mask = torch.ones(1, 1, 24, 24)
    mask[..., 8:14, 5:20] = 0
    write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "inp"
    r = _run(["inpaint", img, "--mask", tmp_path / "mask.png", "-o", out, "--steps", "2", *TINY])
    assert r.exit_code == 0, r.output
    data = _check_outputs(out, "masked.png")
    assert data["mask"] == pytest.approx(1 - 6 * 15 / 24**2)
    r = _run(["inpaint", img, "--drop", "0.5", "-o", tmp_path / "inp2", "--steps", "2", *TINY])
    assert r.exit_code == 0 and "PSNR final" in r.output
    r = _run(["inpaint", img, "-o", tmp_path / "inp3", "--steps", "2", *TINY])
    assert r.exit_code == 2 and "exactly one of --mask FILE or --drop FRACTION" in r.output
    write_image(tmp_path / "small_mask.png", mask[..., :20, :20])
    r = _run(["inpaint", img, "--mask", tmp_path / "small_mask.png", "-o", tmp_path / "inp4", *TINY])
    assert r.exit_code == 2 and "they must match" in r.output


def test_jpeg_flash_invert(tmp_path):
    img = _image(tmp_path / "img.png")
    r = _run(["jpeg", img, "--quality", "10", "-o", tmp_path / "jpeg", "--steps", "2", *TINY])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "jpeg/run.json").read_text())["net"] == "skip-small"
    other = _image(tmp_path / "other.png", seed=1)
    r = _run(["flash", img, other, "-o", tmp_path / "flash", "--steps", "2", *TINY])
    assert r.exit_code == 0, r.output
    _check_outputs(tmp_path / "flash")
    big = _image(tmp_path / "big.png", (36, 36))
    args = ["invert", big, "--arch", "vgg19", "--layer", "relu1_1", "--weights", "random"]
    r = _run([*args, "-o", tmp_path / "inv", "--steps", "2", *TINY])
    assert r.exit_code == 0, r.output
    data = _check_outputs(tmp_path / "inv")
    assert data["layer"] == "relu1_1" and data["net_size"] == [36, 36]


def test_help_has_examples_for_every_verb():
    for verb in ("denoise", "sr", "inpaint", "jpeg", "flash", "invert", "nets"):
        r = _run([verb, "--help"])
        assert r.exit_code == 0 and "Examples:" in r.output, verb
    r = _run(["nets"])
    assert "skip " in r.output and "2.22 M parameters" in r.output and "encoder-decoder" in r.output


def test_bad_inputs(tmp_path):
    img = _image(tmp_path / "img.png")
    r = _run(["denoise", tmp_path / "missing.png"])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = _run(["denoise", img, "-o", tmp_path / "x", "-q"])  # 24 px is too small for the 5-level default
    assert r.exit_code == 2 and "needs at least 33×33" in r.output  # a ValueError: status 2
    r = _run(["denoise", img, "--sigma", "25", "--clean", img, "-o", tmp_path / "y", *TINY])
    assert r.exit_code == 2 and "do not pass --clean" in r.output
    r = _run(["denoise", img, "--extra", "cx=abc", "-o", tmp_path / "z", *TINY])
    assert r.exit_code == 2 and "LOSS=WEIGHT" in r.output
    r = _run(["denoise", img, "--net", "unet", "--depth", "3", "-o", tmp_path / "w"])
    assert r.exit_code == 2 and "apply to the skip and encoder-decoder presets" in r.output
    r = _run(["denoise", img, "--net", "nope", "-o", tmp_path / "v", *TINY])
    assert r.exit_code == 2 and "net must be one of skip, skip-small" in r.output
