"""benchmarks/reproduce.py end to end at smoke sizes: JSON and Markdown written, finished experiments skipped,
per-image results kept across calls, and the numbers moving the right way."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reproduce():
    name, threads = "featstat_benchmarks_reproduce", torch.get_num_threads()
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        torch.set_num_threads(threads)  # --threads 1 (the test machines are shared) is process-wide


def _args(tmp_path: Path, *only: str) -> list[str]:
    return [
        "--mode", "smoke", "--threads", "1", "--only", *only,
        "--results", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "R.md"),
        "--images", str(tmp_path / "img"), "--checkpoints", str(tmp_path / "ck"),
    ]  # fmt: skip


def test_list_names_every_experiment(reproduce, capsys):
    assert reproduce.main(["--list", "--mode", "full"]) is None
    out = capsys.readouterr().out
    for exp in reproduce.EXPERIMENTS:
        assert exp.name in out
    # the full mode carries the paper's step counts
    assert reproduce.BY_NAME["dip-denoise-f16"].settings["full"]["steps"] == 1800
    assert reproduce.BY_NAME["dip-sr-set5-x4"].settings["full"]["steps"] == 2000


@pytest.mark.slow  # ~5 s: a reproduction run end to end
def test_end_to_end_then_skip(reproduce, shared, tmp_path, capsys):
    md = tmp_path / "R.md"
    md.write_text("# Reproduction\n\nHand-written text that must survive.\n")
    args = _args(tmp_path, "dip-denoise-f16", "pdl-input-denoise", "texture-net-speedup")
    data = reproduce.main(args)
    exps = data["experiments"]

    den = exps["dip-denoise-f16"]
    assert den["status"] == "done"
    assert den["featstat"] and den["machine"]["device"] == "cpu" and den["settings"]["steps"] == 60
    assert den["seconds"] > 0
    # the network fits the image before the noise: its output beats the noisy input
    assert den["values"]["psnr"] > den["values"]["input"] + 1.0
    assert 19.5 < den["values"]["input"] < 21.5  # σ = 25 clipped on F16: about 20.3 dB
    assert not any((tmp_path / "ck").rglob("*.pt"))  # checkpoints removed once an experiment is recorded
    image = REPO / den["image"] if not Path(den["image"]).is_absolute() else Path(den["image"])
    assert image.is_file() and image.stat().st_size < 100_000

    # the PDL recipe's denoising degradation matches the paper's input PSNR (10.49 dB on DIV2K)
    assert abs(exps["pdl-input-denoise"]["values"]["psnr"] - 10.49) < 0.5
    assert exps["texture-net-speedup"]["status"] == "not-run"

    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk["experiments"]["dip-denoise-f16"]["values"] == pytest.approx(den["values"])
    text = md.read_text()
    assert "Hand-written text that must survive." in text
    assert "| dip-denoise-f16 | single run, final | 29.22 |" in text
    assert "texture-net-speedup" in text  # listed as missing, with the reason

    capsys.readouterr()
    again = reproduce.main(args)
    out = capsys.readouterr().out
    assert "skip dip-denoise-f16" in out and "skip pdl-input-denoise" in out
    assert again["experiments"]["dip-denoise-f16"]["finished"] == den["finished"]
    text2 = md.read_text()
    assert text2.count("reproduce:begin mode=smoke") == 1
    assert "Hand-written text that must survive." in text2


def test_partial_results_are_kept_and_changed_settings_rerun(reproduce, shared, tmp_path):
    settings = reproduce.BY_NAME["bicubic-set5-x4"].settings["smoke"]
    (tmp_path / "r.json").write_text(
        json.dumps(
            {
                "experiments": {
                    "bicubic-set5-x4": {
                        "status": "running",
                        "settings": settings,
                        "per_image": {"img_001": {"psnr": 99.0}},
                    }
                }
            }
        )
    )
    data = reproduce.main(_args(tmp_path, "bicubic-set5-x4"))
    assert data["experiments"]["bicubic-set5-x4"]["values"]["psnr"] == 99.0  # the interrupted call's image

    stored = json.loads((tmp_path / "r.json").read_text())
    stored["experiments"]["bicubic-set5-x4"]["settings"] = {**settings, "crop": 32}
    (tmp_path / "r.json").write_text(json.dumps(stored))
    data = reproduce.main(_args(tmp_path, "bicubic-set5-x4"))
    psnr = data["experiments"]["bicubic-set5-x4"]["values"]["psnr"]
    assert 20 < psnr < 45  # recomputed under the mode's own settings
    assert data["experiments"]["bicubic-set5-x4"]["settings"] == settings
