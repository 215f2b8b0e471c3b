"""Fréchet (Gaussian 2-Wasserstein) distance of feature distributions: featstat.losses.frechet.

Against an independent oracle (SciPy's sqrtm on NumPy float64 covariances), gradcheck, invariances and a
closed form; then every place a registered statistic reaches with no other file touched: the function and
module, an Objective from a dict and from a TOML file, `featstat texture` / `featstat style --statistic`, a
Deep Image Prior extra term, a restoration recipe via `--set`, and `featstat eval --metrics`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner

import featstat
from featstat.cli import main
from featstat.io import write_image
from featstat.losses import LOSSES, distribution_statistics, get_loss
from featstat.losses.frechet import FrechetLoss, frechet_distance, gaussian_moments
from featstat.objective.config import build_objective

pytestmark = pytest.mark.usefixtures("one_thread")


def _oracle(pred: torch.Tensor, target: torch.Tensor, eps: float = 0.0) -> np.ndarray:
    """FD per image with NumPy/SciPy: np.cov (unbiased), scipy.linalg.sqrtm, float64."""
    out = []
    for i in range(pred.shape[0]):
        x = pred[i].reshape(pred.shape[1], -1).double().numpy()
        y = target[min(i, target.shape[0] - 1)].reshape(target.shape[1], -1).double().numpy()
        sx = np.cov(x) + eps * np.eye(x.shape[0])
        sy = np.cov(y) + eps * np.eye(y.shape[0])
        root = scipy.linalg.sqrtm(sx)
        cross = scipy.linalg.sqrtm(root @ sy @ root).real
        out.append(((x.mean(1) - y.mean(1)) ** 2).sum() + np.trace(sx + sy - 2 * cross))
    return np.array(out)


def _features(seed: int, n: int, c: int, h: int, w: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    x = torch.einsum("dc,nchw->ndhw", mix, torch.randn(n, c, h, w, generator=g, dtype=torch.float64))
    return (x + torch.randn(c, 1, 1, generator=g, dtype=torch.float64)).to(dtype)


# ------------------------------------------------------------------------------------------- the formula


@pytest.mark.parametrize(
    ("c", "size_p", "size_t"), [(3, (6, 5), (6, 5)), (8, (7, 9), (5, 4)), (16, (8, 8), (6, 7))]
)
def test_matches_scipy_oracle(c, size_p, size_t):
    pred, target = _features(0, 2, c, *size_p), _features(1, 2, c, *size_t)
    for eps in (0.0, 1e-3):
        got = frechet_distance(pred, target, reduction="none", eps=eps)
        np.testing.assert_allclose(got.numpy(), _oracle(pred, target, eps), rtol=1e-8, atol=1e-10)
    # float32 inputs: float32 result, computed in float64 inside
    got32 = frechet_distance(pred.float(), target.float(), reduction="none")
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), _oracle(pred.float(), target.float(), 1e-6), rtol=1e-5)


def test_rank_deficient_covariances_match_the_oracle_with_the_ridge():
    # 4 positions, 12 channels: covariances of rank ≤ 3; the ridge keeps the value and gradient finite
    pred, target = _features(2, 1, 12, 2, 2), _features(3, 1, 12, 1, 4)
    got = frechet_distance(pred, target, eps=1e-4, reduction="none")
    np.testing.assert_allclose(got.numpy(), _oracle(pred, target, 1e-4), rtol=1e-7)
    x = pred.float().requires_grad_(True)
    frechet_distance(x, target.float()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_closed_form_for_diagonal_covariances():
    # channels built from orthonormal, zero-mean position patterns: exactly diagonal covariances
    n_pos, c = 16, 5
    raw = torch.randn(n_pos, c, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    basis, _ = torch.linalg.qr(raw - raw.mean(0))  # orthonormal columns, each with zero mean
    assert torch.allclose(basis.T @ basis, torch.eye(c, dtype=torch.float64), atol=1e-12)
    sd_p, sd_t = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.1]), torch.tensor([1.5, 1.0, 0.2, 3.5, 0.7])
    mu_p, mu_t = torch.tensor([0.0, 1.0, -2.0, 0.5, 3.0]), torch.tensor([1.0, 1.0, 0.0, -0.5, 2.0])

    def feats(sd: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        x = basis * (sd.double() * (n_pos - 1) ** 0.5) + mu.double()  # channel variances sd² exactly
        return x.T.reshape(1, c, 4, 4)

    var_p, var_t = (sd_p.double() ** 2), (sd_t.double() ** 2)
    for eps in (0.0, 0.01):
        expected = ((mu_p - mu_t).double() ** 2).sum()
        expected += ((var_p + eps).sqrt() - (var_t + eps).sqrt()).square().sum()
        got = frechet_distance(feats(sd_p, mu_p), feats(sd_t, mu_t), eps=eps)
        assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    _, cov = gaussian_moments(feats(sd_p, mu_p))
    assert torch.allclose(cov[0], torch.diag(var_p), atol=1e-10)


def test_gradcheck_float64_both_arguments():
    pred = _features(5, 2, 3, 3, 3).requires_grad_(True)
    target = _features(6, 1, 3, 2, 4).requires_grad_(True)
    fn = lambda p, t: frechet_distance(p, t, reduction="none", eps=1e-3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (pred, target))
    module = FrechetLoss(eps=1e-3, reduction="sum")
    assert torch.autograd.gradcheck(lambda p, t: module(p, t), (pred, target))


def test_invariances():
    a, b = _features(7, 2, 6, 5, 5), _features(8, 2, 6, 4, 6)
    # identical inputs → 0 (and a zero gradient), symmetric, positions are an unordered set
    assert frechet_distance(a, a, reduction="none").abs().max() < 1e-9
    x = a.clone().requires_grad_(True)
    frechet_distance(x, a).backward()
    assert x.grad.abs().max() < 1e-6
    ab, ba = frechet_distance(a, b, reduction="none"), frechet_distance(b, a, reduction="none")
    assert torch.allclose(ab, ba, rtol=1e-10)
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(9))
    shuffled = a.flatten(2)[:, :, perm].reshape(a.shape)
    assert torch.allclose(frechet_distance(shuffled, b, reduction="none"), ab, rtol=1e-10)
    # a translation of both distributions changes nothing; a shift of one adds ‖shift‖²
    assert torch.allclose(frechet_distance(a + 3.0, b + 3.0, reduction="none"), ab, rtol=1e-9)
    shift = torch.arange(6, dtype=torch.float64).reshape(1, 6, 1, 1)
    moved = frechet_distance(a + shift, a, reduction="none")
    assert torch.allclose(moved, torch.full((2,), float((shift**2).sum()), dtype=torch.float64), rtol=1e-9)


def test_reductions_batch_broadcast_half_and_bad_inputs():
    a, b = _features(10, 3, 4, 5, 5, torch.float32), _features(11, 1, 4, 3, 8, torch.float32)
    none = frechet_distance(a, b, reduction="none")
    assert none.shape == (3,) and (none > 0).all()
    assert torch.allclose(frechet_distance(a, b), none.mean()) and torch.allclose(
        frechet_distance(a, b, reduction="sum"), none.sum()
    )
    assert torch.allclose(frechet_distance(a, b.expand(3, -1, -1, -1), reduction="none"), none, rtol=1e-6)
    module = FrechetLoss(reduction="none")
    assert torch.allclose(module(a, b), none) and "eps=1e-06" in repr(module)
    half = frechet_distance(a.half(), b.half(), reduction="none")
    assert half.dtype == torch.float32 and torch.allclose(half, none, rtol=2e-2)
    with pytest.raises(ValueError, match="at least 2 positions"):
        frechet_distance(a, b[:, :, :1, :1])
    with pytest.raises(ValueError, match="same number of channels"):
        frechet_distance(a, b[:, :3])
    with pytest.raises(ValueError, match="target batch size"):
        frechet_distance(a, torch.cat([b, b]))
    with pytest.raises(ValueError, match="eps"):
        FrechetLoss(eps=-1.0)
    with pytest.raises(ValueError, match=r"pred must be a torch\.Tensor"):
        frechet_distance(a.numpy(), b)  # type: ignore[arg-type]


def test_gradient_descent_moves_the_statistics_in_float32():
    target = _features(12, 1, 8, 6, 6, torch.float32)
    # a nearly flat start (covariance ~1e-4, 25 positions for 8 channels) reaches the target's statistics
    x = (0.01 * torch.randn(1, 8, 5, 5, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.1)
    values = []
    for _ in range(100):
        opt.zero_grad()
        loss = FrechetLoss()(x, target)
        loss.backward()
        assert torch.isfinite(x.grad).all()
        opt.step()
        values.append(loss.item())
    assert values[-1] < 1e-3 * values[0]
    flat = torch.zeros(1, 8, 5, 5, requires_grad=True)  # exactly flat: finite gradient (the mean only)
    FrechetLoss()(flat, target).backward()
    assert torch.isfinite(flat.grad).all()


# ------------------------------------------------------------------------- registered: every path works


def test_registered_as_a_distribution_statistic():
    assert get_loss("frechet") is FrechetLoss and get_loss("fd") is FrechetLoss
    assert "frechet" in distribution_statistics() and LOSSES.build({"name": "fd", "eps": 0.1}).eps == 0.1


def _vgg_config(loss: str) -> dict:
    return {
        "backbones": {"vgg": {"arch": "vgg19", "weights": "random", "seed": 0}},
        "terms": {"fd": {"loss": loss, "weight": 2.0, "backbone": "vgg", "layers": ["relu1_2", "relu2_1"]}},
    }


def test_in_an_objective_from_a_dict_and_a_toml_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 24, 24, generator=g), torch.rand(1, 3, 20, 28, generator=g)
    obj = build_objective(_vgg_config("frechet"))
    out = obj(x, y)
    vgg = featstat.vgg19(["relu1_2", "relu2_1"], weights=None, seed=0)
    fx, fy = vgg(x), vgg(y)
    expected = 2.0 * sum(frechet_distance(fx[k], fy[k]) for k in ("relu1_2", "relu2_1"))
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    path = tmp_path / "fd.toml"
    path.write_text(
        '[backbones.vgg]\narch = "vgg19"\nweights = "random"\n\n'
        '[terms.fd]\nloss = "fd"\nweight = 2.0\nbackbone = "vgg"\nlayers = ["relu1_2", "relu2_1"]\n'
        "eps = 1e-6\n"
    )
    from_toml = featstat.Objective.from_config(path)(x, y).total
    assert from_toml.item() == pytest.approx(out.total.item(), rel=1e-6)


def _image(path, size=(32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, size[0] // 4, size[1] // 4, generator=g)
    write_image(path, torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False))
    return path


def test_texture_and_style_cli_statistic(tmp_path):
    ex = _image(tmp_path / "ex.png")
    common = ["--steps", "2", "--preset", "random-filters", "--quiet", "--size", "24", "--layers", "k3,k5"]
    out = str(tmp_path / "t.png")
    res = CliRunner().invoke(main, ["texture", str(ex), "-o", out, "--statistic", "frechet", *common])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "t.json").read_text())["settings"]["statistic"] == {"frechet": 1.0}
    content = _image(tmp_path / "content.png", seed=1)
    res = CliRunner().invoke(
        main, ["style", str(content), str(ex), "-o", str(tmp_path / "s.png"), "--statistic", "fd:5",
               "--statistic", "gram", "--option", "fd.eps=1e-4", "--steps", "1", "--preset", "random-filters",
               "--quiet", "--style-layers", "k3", "--content-layers", "k5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").is_file()
    assert "frechet" in CliRunner().invoke(main, ["texture", "--help"]).output


def test_deep_image_prior_extra_term(tmp_path):
    from featstat import prior

    extra = prior.statistics_objective({"frechet": 1.0}, layers=["relu1_2"], weights=None)
    assert isinstance(extra.terms[0].loss, FrechetLoss)
    noisy = _image(tmp_path / "noisy.png", size=(32, 32))
    res = CliRunner().invoke(
        main, ["prior", "denoise", str(noisy), "--sigma", "25", "--steps", "2", "--depth", "2",
               "--channels", "8", "--extra", "frechet=0.1", "--extra-weights", "random",
               "--extra-layers", "relu1_2", "-q", "-o", str(tmp_path / "p")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "result.png").is_file()


def test_restoration_recipe_via_set(tmp_path):
    from featstat.restoration.recipes import get_recipe, setup

    over = {
        "objective": {
            "backbones": {"vgg": {"arch": "vgg16", "weights": "random"}},
            "terms": {"fd": {"loss": "frechet", "weight": 0.1, "backbone": "vgg", "layers": ["relu1_2"]}},
        },
        "network": {"options": {"channels": 4, "blocks": 1}},
    }
    s = setup(get_recipe("pixel", over), task="sr2")
    assert [type(t.loss) for t in s.objective.terms][-1] is FrechetLoss
    data = tmp_path / "data"
    for i in range(2):
        _image(data / f"p{i}.png", size=(40, 40), seed=i)
    res = CliRunner().invoke(
        main, ["train", "pixel", "--data", str(data), "--task", "sr2", "-o", str(tmp_path / "run"),
               "--batch-size", "2", "--crop-size", "32", "--network", "edsr", "--steps", "2",
               "--set", "network.options.channels=4", "--set", "network.options.blocks=1",
               "--set", "objective.backbones.vgg.arch=vgg16",
               "--set", "objective.backbones.vgg.weights=random",
               "--set", "objective.terms.fd.loss=frechet", "--set", "objective.terms.fd.weight=0.1",
               "--set", "objective.terms.fd.backbone=vgg", "--set", 'objective.terms.fd.layers=["relu1_2"]',
               "--set", "training.plots=false", "--no-progress", "--device", "cpu", "--lpips", "none"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["metadata"]["recipe"]["objective"]["terms"]["fd"]["loss"] == "frechet"


def test_eval_metric(tmp_path):
    from featstat import metrics

    assert metrics.canonical_name("fd") == "frechet" and not metrics.get_metric("frechet").higher_is_better
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for i in range(2):
        _image(gt / f"im{i}.png", seed=i)
        _image(pred / f"im{i}.png", seed=i if i == 0 else 7)  # im0 identical, im1 another image
    res = CliRunner().invoke(
        main, ["eval", str(pred), str(gt), "-m", "psnr,frechet", "--random-weights",
               "--set", 'frechet.layers=["relu1_2","relu2_2"]', "-o", str(tmp_path / "out"), "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data["higher_is_better"]["frechet"] is False
    values = {row["image"]: row["frechet"] for row in data["per_image"]}
    assert values["im0"] == pytest.approx(0.0, abs=1e-6) and values["im1"] > 1e-3
    m = metrics.build_metric("frechet", weights=None, layers=["relu1_2"], reduction="none")
    a, b = torch.rand(2, 3, 24, 24), torch.rand(1, 3, 16, 20)
    assert m(a, b).shape == (2,) and m(a, a).abs().max() < 1e-5
