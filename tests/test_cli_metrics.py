"""featstat eval / compare / spectrum / twoafc through click's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import featstat.metrics as fm
from featstat.cli.metrics import compare_command, eval_command, spectrum_command, twoafc_command
from featstat.io import read_image, write_image


def _img(seed: int, h: int = 40, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for i in range(3):
        x = _img(i)
        write_image(gt / f"img{i}.png", x)
        g = torch.Generator().manual_seed(10 + i)
        write_image(
            pred / f"img{i}.png", (x + 0.03 * (i + 1) * torch.randn(x.shape, generator=g)).clamp(0, 1)
        )
    return pred, gt


def test_eval_writes_csv_json_png_matching_functions(folders, tmp_path):
    pred, gt = folders
    out = tmp_path / "out"
    args = [str(pred), str(gt), "-m", "psnr,ssim,gram", "--random-weights", "--y-channel"]
    args += [
        "--crop-border",
        "2",
        "--set",
        "gram.net=vgg19",
        "--set",
        "gram.layers=relu1_2,relu2_1",
        "-o",
        str(out),
    ]
    res = CliRunner().invoke(eval_command, args)
    assert res.exit_code == 0, res.output
    assert "mean" in res.output and "psnr ↑" in res.output and "gram ↓" in res.output
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["image"] for r in rows] == ["img0", "img1", "img2", "mean"]
    data = json.loads((out / "metrics.json").read_text())
    assert data["complete"] and data["higher_is_better"] == {"psnr": True, "ssim": True, "gram": False}
    assert (out / "metrics.png").stat().st_size > 1000
    for i in range(3):
        p, t = read_image(pred / f"img{i}.png"), read_image(gt / f"img{i}.png")
        assert float(rows[i]["psnr"]) == pytest.approx(
            fm.psnr(p, t, y_channel=True, crop_border=2).item(), rel=1e-6
        )
        assert float(rows[i]["ssim"]) == pytest.approx(
            fm.ssim(p, t, y_channel=True, crop_border=2).item(), rel=1e-6
        )
    psnrs = [float(r["psnr"]) for r in rows[:3]]
    assert psnrs[0] > psnrs[1] > psnrs[2]  # noise grows with the index
    assert float(rows[3]["psnr"]) == pytest.approx(np.mean(psnrs))
    # --resume reuses finished rows (here: all of them) and gives the same files
    res = CliRunner().invoke(eval_command, [*args, "--resume", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "metrics.json").read_text())["per_image"] == data["per_image"]


def test_eval_fails_clearly_on_mismatches(folders, tmp_path):
    pred, gt = folders
    (pred / "img2.png").rename(pred / "other.png")
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1  # one Error: line
    assert "PRED_DIR only: other" in res.output and "REF_DIR only: img2" in res.output
    res = CliRunner().invoke(
        eval_command, [str(pred), str(gt), "--skip-missing", "-q", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["count"] == 2
    write_image(pred / "img0.png", _img(0, 32, 32))
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "--skip-missing", "-o", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "img0.png is 32×32 but img0.png is 48×40" in res.output
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "-m", "psnr,lpipz"])
    assert res.exit_code != 0 and "did you mean 'lpips'" in res.output
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "-m", "psnr", "--set", "ssim.k1=0.1"])
    assert res.exit_code == 2 and "unknown key 'ssim'" in res.output and "valid keys:" in res.output
    assert len(res.output.strip().splitlines()) <= 3  # usage line, hint, one error line


def test_compare_and_help(folders, tmp_path):
    pred, gt = folders
    out = tmp_path / "cmp.png"
    res = CliRunner().invoke(compare_command, [str(gt / "img1.png"), str(pred / "img1.png"), "-o", str(out),
                                               "--crop", "4,4,16,16"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(out.with_suffix(".json").read_text())
    got = report["metrics"][str(pred / "img1.png")]["psnr"]
    want = fm.psnr(read_image(pred / "img1.png"), read_image(gt / "img1.png")).item()
    assert got == pytest.approx(want, rel=1e-6) and report["crops"] == [[4, 4, 16, 16]]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    args = [str(pred / "img0.png"), str(pred / "img2.png"), "--ref", str(gt / "img0.png")]
    res = CliRunner().invoke(compare_command, [*args, "-o", str(tmp_path / "c2.png")])
    assert res.exit_code == 0 and len(json.loads((tmp_path / "c2.json").read_text())["metrics"]) == 2
    write_image(tmp_path / "small.png", _img(5, 16, 16))
    res = CliRunner().invoke(
        compare_command, [str(gt / "img0.png"), str(tmp_path / "small.png"), "-o", str(out)]
    )
    assert res.exit_code == 2 and "same size" in res.output
    for cmd in (eval_command, compare_command, spectrum_command, twoafc_command):
        assert "Examples" in CliRunner().invoke(cmd, ["--help"]).output


def test_spectrum_command(folders, tmp_path):
    pred, gt = folders
    out = tmp_path / "spec.png"
    res = CliRunner().invoke(spectrum_command, [str(gt), str(pred), "-o", str(out), "--labels", "gt,noisy"])
    assert res.exit_code == 0, res.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["spectra"]) == {"gt", "noisy"} and report["bins"] == 20
    assert report["spectra"]["gt"]["images"] == 3
    # noise adds high-frequency power
    assert report["spectra"]["noisy"]["power"][-1] > report["spectra"]["gt"]["power"][-1]
    _, power = fm.mean_power_spectrum([read_image(gt / f"img{i}.png") for i in range(3)], n_bins=20)
    np.testing.assert_allclose(report["spectra"]["gt"]["power"], power.numpy(), rtol=1e-5)


def test_twoafc_command(tmp_path):
    sub = tmp_path / "traditional"
    for part in ("ref", "p0", "p1", "judge"):
        (sub / part).mkdir(parents=True)
    for i in range(2):
        ref = _img(30 + i, 32, 32)
        write_image(sub / "ref" / f"{i}.png", ref)
        write_image(sub / "p0" / f"{i}.png", (ref + 0.02).clamp(0, 1))
        write_image(sub / "p1" / f"{i}.png", (ref + 0.3).clamp(0, 1))
        np.save(sub / "judge" / f"{i}.npy", np.array([0.2]))
    res = CliRunner().invoke(twoafc_command, [str(sub), "-m", "psnr", "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "Traditional" in res.output and "80.0" in res.output
    report = json.loads((tmp_path / "r" / "twoafc.json").read_text())
    assert report["results"][0]["overall"] == pytest.approx(0.8)
    assert (tmp_path / "r" / "twoafc.png").stat().st_size > 1000


def test_eval_interrupt_then_resume(folders, tmp_path, monkeypatch):
    import featstat.cli.metrics as cm

    pred, gt = folders
    out = tmp_path / "o"
    real_read = cm.read_image
    calls = {"n": 0}

    def flaky_read(path, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the first pair reads 2 files; interrupt while reading the second pair
            raise KeyboardInterrupt
        return real_read(path, **kw)

    monkeypatch.setattr(cm, "read_image", flaky_read)
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "-q", "-o", str(out)])
    assert res.exit_code == 130 and "--resume" in res.output
    partial = json.loads((out / "metrics.json").read_text())
    assert not partial["complete"] and partial["count"] == 1 and partial["total"] == 3
    monkeypatch.setattr(cm, "read_image", real_read)
    res = CliRunner().invoke(eval_command, [str(pred), str(gt), "-q", "-o", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    full = json.loads((out / "metrics.json").read_text())
    assert full["complete"] and full["count"] == 3
    assert full["per_image"][0] == partial["per_image"][0]


# ---------------------------------------------------------------------------------- set-level metrics (c2st)

#: a classifier small and short enough for a test (the protocol's defaults: 64², 20 epochs)
_FAST_C2ST = ["--set", "c2st.size=16", "--set", "c2st.epochs=3"]


def _image_set(folder: Path, images: torch.Tensor, prefix: str) -> Path:
    for i, x in enumerate(images):
        write_image(folder / f"{prefix}{i:02d}.png", x[None])
    return folder


def _smooth(n: int, seed: int, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(
        torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear"
    )


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text().splitlines()))


def test_eval_c2st_compares_unpaired_folders_as_sets(tmp_path, one_thread):
    """One distribution (two independent draws, other names and counts): near chance, ln 2; dark vs bright
    images: told apart (log-loss near 0). The CLI's number is the Python function's on the same files."""
    import math

    from featstat.io import list_images, read_images
    from featstat.metrics.c2st import c2st
    from featstat.registry import SET_METRICS

    assert SET_METRICS.get("c2st").higher_is_better is True
    same_a = _image_set(tmp_path / "same_a", _smooth(24, 0), "a")
    same_b = _image_set(tmp_path / "same_b", _smooth(27, 100), "b")
    out = tmp_path / "same"
    res = CliRunner().invoke(
        eval_command, [str(same_a), str(same_b), "-m", "c2st", *_FAST_C2ST, "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "metrics.json").read_text())
    c = doc["set_level"]["c2st"]
    assert abs(c["log_loss"] - math.log(2)) < 0.15 and c["value"] == c["log_loss"]
    assert (c["pred_images"], c["ref_images"], c["n_train"], c["n_test"]) == (24, 27, 12, 12)
    assert doc["higher_is_better"] == {"c2st": True} and doc["per_image"] == [] and doc["complete"]
    real, fake = read_images(list_images(same_b)), read_images(list_images(same_a))
    assert c["log_loss"] == c2st(real, fake, size=16, epochs=3).log_loss  # REF_DIR real, PRED_DIR fake
    assert _csv_rows(out / "metrics.csv") == [["image", "c2st"], ["set", repr(c["log_loss"])]]
    assert not (out / "metrics.png").exists() and "set" in res.output and "c2st ↑" in res.output

    dark = _image_set(tmp_path / "dark", 0.3 * _smooth(24, 1), "d")
    bright = _image_set(tmp_path / "bright", 0.7 + 0.3 * _smooth(24, 2), "b")
    out = tmp_path / "apart"
    res = CliRunner().invoke(
        eval_command, [str(dark), str(bright), "-m", "c2st", *_FAST_C2ST, "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    c = json.loads((out / "metrics.json").read_text())["set_level"]["c2st"]
    assert c["log_loss"] < 0.25 and c["accuracy"] == 1.0  # ln 2 ≈ 0.69 at chance

    # a copy of the real set is flagged (a classifier that remembers its training images scores above ln 2)
    res = CliRunner().invoke(eval_command, [str(same_a), str(same_a), "-m", "c2st", *_FAST_C2ST, "-q",
                                            "-o", str(tmp_path / "copy")])  # fmt: skip
    assert res.exit_code == 0 and "identical to real ones" in res.output, res.output


def test_eval_c2st_beside_paired_metrics_and_bad_inputs(tmp_path, one_thread):
    pred = _image_set(tmp_path / "pred", _smooth(8, 3), "x")
    ref = _image_set(tmp_path / "ref", _smooth(8, 4), "x")
    out = tmp_path / "both"
    res = CliRunner().invoke(eval_command, [str(pred), str(ref), "-m", "psnr,c2st", *_FAST_C2ST, "-q",
                                            "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "metrics.json").read_text())
    rows = _csv_rows(out / "metrics.csv")
    assert rows[0] == ["image", "psnr", "c2st"] and len(rows) == 1 + 8 + 2
    assert rows[-2][0] == "mean" and rows[-2][2] == "" and float(rows[-2][1]) == doc["mean"]["psnr"]
    assert rows[-1] == ["set", "", repr(doc["set_level"]["c2st"]["value"])]
    assert all(r[2] == "" for r in rows[1:-2]) and doc["count"] == 8

    def error(args: list[str]) -> str:
        res = CliRunner().invoke(eval_command, args)
        assert res.exit_code == 2, res.output
        return res.output

    few = _image_set(tmp_path / "few", _smooth(4, 5), "f")
    text = error([str(few), str(ref), "-m", "c2st", *_FAST_C2ST, "-o", str(tmp_path / "o1")])
    assert "PRED_DIR" in text and "fake holds 4 images" in text  # too few for the split, named
    write_image(ref / "odd.png", _smooth(1, 6, size=20))
    text = error([str(pred), str(ref), "-m", "c2st", *_FAST_C2ST, "-o", str(tmp_path / "o2")])
    assert "REF_DIR" in text and "20" in text  # mixed sizes in one set, named
    text = error([str(pred), str(ref), "-m", "psnr,c2st", "-o", str(tmp_path / "o3")])
    assert "REF_DIR only: odd" in text  # a paired metric still pairs
    text = error([str(pred), str(ref), "-m", "c2st", "--set", "c2st.size=8", "-o", str(tmp_path / "o4")])
    assert "size must be at least 16" in text
    text = error([str(pred), str(ref), "-m", "c2s", "-o", str(tmp_path / "o5")])
    assert "did you mean 'c2st'" in text
    res = CliRunner().invoke(compare_command, [str(pred / "x00.png"), str(ref / "x00.png"), "-m", "c2st",
                                               "-o", str(tmp_path / "cmp.png")])  # fmt: skip
    assert res.exit_code == 2 and "set-level metric" in res.output
    help_text = " ".join(CliRunner().invoke(eval_command, ["--help"]).output.split())
    assert "sets, unpaired: any names and counts): c2st (two_sample)" in help_text  # from SET_METRICS
    assert "featstat eval translated/ held_out_target/ -m c2st" in help_text
