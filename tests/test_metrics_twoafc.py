"""2AFC harness on generated BAPPS-layout folders where the answer is known."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import featstat.metrics as fm
from featstat.io import read_image, write_image


def _img(seed: int, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)


def _noisy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def make_subset(folder: Path, triplets: list[tuple[float, float, float]], seed: int = 0) -> None:
    """Triplets (σ of p0, σ of p1, human judgement h = share preferring p1)."""
    for part in ("ref", "p0", "p1", "judge"):
        (folder / part).mkdir(parents=True)
    for i, (s0, s1, h) in enumerate(triplets):
        ref = _img(seed + i)
        name = f"{i:06d}"
        write_image(folder / "ref" / f"{name}.png", ref)
        write_image(folder / "p0" / f"{name}.png", _noisy(ref, s0, 100 + i) if s0 else ref)
        write_image(folder / "p1" / f"{name}.png", _noisy(ref, s1, 200 + i) if s1 else ref)
        np.save(folder / "judge" / f"{name}.npy", np.array([h], dtype=np.float32))


TRAD = [(0.05, 0.3, 0.1), (0.3, 0.05, 0.9), (0.02, 0.2, 0.25), (0.0, 0.0, 0.6)]
SR = [(0.1, 0.4, 0.3), (0.4, 0.1, 0.8)]


@pytest.fixture
def bapps(tmp_path) -> Path:
    root = tmp_path / "val"
    make_subset(root / "traditional", TRAD)
    make_subset(root / "superres", SR, seed=50)
    make_subset(root / "mine", [(0.05, 0.2, 0.0)], seed=80)
    return root


def expected(triplets) -> float:
    """PSNR picks the less noisy image; agreement = 1 − h when it picks p0, h when p1, ½ on ties."""
    scores = []
    for s0, s1, h in triplets:
        scores.append(0.5 if s0 == s1 else (1 - h if s0 < s1 else h))
    return float(np.mean(scores))


def test_scores_known_answers(bapps):
    psnr = fm.PSNR(reduction="none")
    res = fm.score_2afc(psnr, bapps, name="psnr", higher_is_better=True, batch_size=3)
    assert list(res.scores) == ["traditional", "superres", "mine"]  # papers' order, then others
    assert res.scores["traditional"] == pytest.approx(expected(TRAD))
    assert res.scores["superres"] == pytest.approx(expected(SR))
    assert res.scores["mine"] == pytest.approx(1.0)
    assert res.counts == {"traditional": 4, "superres": 2, "mine": 1}
    assert res.overall == pytest.approx(np.mean([expected(TRAD), expected(SR), 1.0]))
    assert res.group_score("Distortions") == pytest.approx(expected(TRAD))
    # a distance (lower is better) that ranks the other way round gets the complementary score
    anti = fm.score_2afc(lambda p, t: -(p - t).square().flatten(1).mean(1), bapps, subsets=["superres"])
    assert anti.scores["superres"] == pytest.approx(1 - expected(SR))


def test_twoafc_scores_formula():
    d0 = torch.tensor([0.1, 0.5, 0.3])
    d1 = torch.tensor([0.2, 0.4, 0.3])
    h = torch.tensor([0.3, 0.3, 0.9])
    assert fm.twoafc_scores(d0, d1, h).tolist() == pytest.approx([0.7, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fm.twoafc_scores(d0, d1, torch.tensor([0.1, 1.5, 0.0]))


def test_table_format(bapps):
    res = fm.score_2afc(fm.SSIM(win_size=7, reduction="none"), bapps, name="ssim", higher_is_better=True)
    table = fm.format_table([res])
    lines = table.splitlines()
    assert "Distortions" in lines[0] and "Real algorithms" in lines[0]
    assert "Traditional" in lines[1] and "Super-res" in lines[1] and "mine" in lines[1]
    assert lines[-1].startswith("ssim")
    assert f"{100 * res.overall:.1f}" == lines[-1].split()[-1]
    assert res.to_dict()["overall"] == pytest.approx(res.overall)


def test_real_bapps_triplet(shared, tmp_path):
    src = shared / "images" / "bapps-example"
    sub = tmp_path / "traditional"
    for part, name in (("ref", "ex_ref"), ("p0", "ex_p0"), ("p1", "ex_p1")):
        (sub / part).mkdir(parents=True)
        shutil.copy(src / f"{name}.png", sub / part / "000000.png")
    (sub / "judge").mkdir()
    np.save(sub / "judge" / "000000.npy", np.array([0.7]))
    ref, p0, p1 = (read_image(src / f"{n}.png").double().numpy() for n in ("ex_ref", "ex_p0", "ex_p1"))
    d0, d1 = ((p0 - ref) ** 2).mean(), ((p1 - ref) ** 2).mean()
    want = 0.3 if d0 < d1 else 0.7
    res = fm.score_2afc(lambda p, t: (p - t).square().flatten(1).mean(1), sub)
    assert res.scores["traditional"] == pytest.approx(want)


def test_layout_errors(tmp_path, bapps):
    with pytest.raises(ValueError, match="one value per image"):
        fm.score_2afc(lambda p, t: (p - t).mean(), bapps, subsets=["superres"])
    with pytest.raises(ValueError, match="no 2AFC subset"):
        fm.find_subsets(tmp_path / "val" / "traditional" / "ref")
    (bapps / "traditional" / "judge" / "000001.npy").unlink()
    with pytest.raises(ValueError, match="000001: missing in judge"):
        fm.list_triplets(bapps / "traditional")
    np.save(bapps / "superres" / "judge" / "000000.npy", np.array([2.0]))
    with pytest.raises(ValueError, match=r"one fraction in \[0, 1\]"):
        fm.score_2afc(fm.PSNR(reduction="none"), bapps, subsets=["superres"])
    with pytest.raises(ValueError, match="not found"):
        fm.score_2afc(fm.PSNR(reduction="none"), bapps, subsets=["cnn"])
