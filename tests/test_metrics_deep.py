"""LPIPS-style, Gram, CX and PDL distances against plainly written references; properties; weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

import featstat.metrics as fm
from featstat.features import alexnet, vgg16, vgg19
from featstat.features.weights import WeightsNotFoundError
from featstat.losses.functional import contextual_loss


def natural_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    arr = np.stack([np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((h, w))))) for _ in range(3)])
    arr = np.einsum("ij,jhw->ihw", np.array([[1, 0.6, 0.3], [0.6, 1, 0.6], [0.3, 0.6, 1]]), arr)
    arr = (arr - arr.min()) / (arr.max() - arr.min())
    return torch.from_numpy(arr).float()[None]


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def lpips_reference(fp: list[np.ndarray], ft: list[np.ndarray], heads: list[np.ndarray] | None) -> np.ndarray:
    """LPIPS eq. 1 written out in NumPy: per layer unit-normalise over channels, weighted squared difference
    summed over channels, mean over positions; sum over layers. Arrays N×C×H×W."""
    total = 0.0
    for k, (a, b) in enumerate(zip(fp, ft, strict=True)):
        na = a / (np.sqrt((a**2).sum(axis=1, keepdims=True)) + 1e-10)
        nb = b / (np.sqrt((b**2).sum(axis=1, keepdims=True)) + 1e-10)
        w = np.ones(a.shape[1]) if heads is None else heads[k]
        d = ((na - nb) ** 2 * w[None, :, None, None]).sum(axis=1)
        total = total + d.reshape(d.shape[0], -1).mean(axis=1)
    return total


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    x = natural_image(64, 64, seed=3)
    return torch.cat([noisy(x, 0.05), noisy(x, 0.15, seed=2)]), x


def test_lpips_uncalibrated_matches_numpy(images):
    pred, target = images
    net = alexnet(list(fm.LPIPS_LAYERS["alexnet"]), weights=None, seed=0)
    fp = [v.double().numpy() for v in net(pred).values()]
    ft = [v.double().numpy() for v in net(target).values()]
    want = lpips_reference(fp, ft, None)
    got = fm.lpips(pred, target, "alex", weights=None, calibration=None, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)
    mean_form = fm.lpips(pred, target, "alex", weights=None, calibration=None, layer_reduction="mean")
    assert mean_form.item() == pytest.approx(want.mean() / 5, rel=1e-4)


def test_lpips_calibrated_heads_from_file(images, tmp_path):
    """Heads in the LPIPS file format (lin{k}.model.1.weight, 1×C×1×1) are applied per channel."""
    pred, target = images
    g = torch.Generator().manual_seed(5)
    chans = (64, 192, 384, 256, 256)
    state = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(chans)}
    path = tmp_path / "heads.pth"
    torch.save(state, path)
    m = fm.LPIPS("alex", weights=None, calibration=path, reduction="none")
    assert m.calibrated and len(m.heads) == 5
    net = alexnet(list(fm.LPIPS_LAYERS["alexnet"]), weights=None, seed=0)
    fp = [v.double().numpy() for v in net(pred).values()]
    ft = [v.double().numpy() for v in net(target).values()]
    heads = [state[f"lin{k}.model.1.weight"].reshape(-1).double().numpy() for k in range(5)]
    np.testing.assert_allclose(m(pred, target).detach().numpy(), lpips_reference(fp, ft, heads), rtol=1e-4)


def test_lpips_real_heads_from_shared(images, shared, monkeypatch):
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(shared / "weights"))
    heads = fm.load_lpips_heads("squeeze")
    assert [h.numel() for h in heads] == [64, 128, 256, 384, 384, 512, 512]
    assert all(bool((h >= 0).all()) for h in heads)  # LPIPS clamps its heads to be non-negative
    pred, target = images
    m = fm.LPIPS("squeeze", weights=None, reduction="none")  # calibration="auto" finds the heads
    assert m.calibrated
    net = m.extractor
    fp = [v.double().numpy() for v in net(pred).values()]
    ft = [v.double().numpy() for v in net(target).values()]
    want = lpips_reference(fp, ft, [h.double().numpy() for h in heads])
    np.testing.assert_allclose(m(pred, target).detach().numpy(), want, rtol=1e-4)


def test_lpips_calibration_missing(images):
    with pytest.warns(UserWarning, match="uncalibrated"):
        m = fm.LPIPS("alex", weights=None)  # offline, FEATSTAT_WEIGHTS is an empty temp dir
    assert not m.calibrated
    with pytest.raises(WeightsNotFoundError, match=r"lpips-v0\.1/alex\.pth"):
        fm.LPIPS("alex", weights=None, calibration="lpips")
    with pytest.raises(ValueError, match="LPIPS layers"):
        fm.LPIPS("alex", ["relu1", "relu2"], weights=None, calibration="lpips")


def test_lpips_heads_file_errors(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"weight": torch.ones(3)}, path)
    with pytest.raises(ValueError, match="not an LPIPS calibration file"):
        fm.load_lpips_heads(path)
    torch.save({"lin0.model.1.weight": torch.ones(1, 3, 1, 1)}, path)
    with pytest.raises(ValueError, match="heads has 1 layers"):
        fm.LPIPS("alex", weights=None, calibration=path)(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))


def test_lpips_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    fp = [torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)]
    ft = [torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64)]
    heads = [torch.rand(4, generator=g, dtype=torch.float64)]
    assert torch.autograd.gradcheck(lambda a: fm.lpips_from_features([a], ft, heads), fp)


def test_lpips_properties(images):
    pred, target = images
    m = fm.LPIPS("alex", weights=None, calibration=None, reduction="none")
    assert m(target, target).abs().max().item() < 1e-6
    assert torch.allclose(m(pred, target), m(target.expand_as(pred), pred), rtol=1e-5)  # symmetric
    p = pred.clone().requires_grad_(True)
    m(p, target).sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_gram_distance_matches_eq5(images):
    pred, target = images[0][..., :40, :40], images[1][..., :40, :40]
    assert fm.paper_gram_layers("vgg") == ("relu2_2", "relu3_3", "relu4_3")
    assert fm.paper_gram_layers("vgg19") == ("relu2_2", "relu3_4", "relu4_4")
    assert fm.GramDistance(weights=None).layers == ["relu2_2", "relu3_3", "relu4_3"]
    layers = ("relu2_2", "relu3_3")  # the first two paper layers keep the test fast
    net = vgg16(list(layers), weights=None, seed=0)
    want = np.zeros(2)
    for a, b in zip(net(pred).values(), net(target).values(), strict=True):
        a, b = a.double().numpy(), b.double().numpy()
        n, c, h, w = a.shape
        fa, fb = a.reshape(n, c, -1), b.reshape(1, c, -1)
        ga = fa @ fa.transpose(0, 2, 1) / (c * h * w)
        gb = fb @ fb.transpose(0, 2, 1) / (c * b.shape[2] * b.shape[3])
        want += ((ga - gb) ** 2).sum(axis=(1, 2)) / c**2  # eq. 5: Σ_l 1/C_l² Σ_ij (G − A)²
    got = fm.gram_distance(pred, target, layers=layers, weights=None, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)


def test_gram_distance_different_sizes_and_shift_invariance(images):
    _, target = images
    m = fm.GramDistance("vgg19", ["relu1_2", "relu2_1"], weights=None)
    big = natural_image(96, 96, seed=3)
    assert m(big, target).item() > 0
    shifted = torch.roll(target, shifts=(16, 16), dims=(2, 3))
    d_shift = m(shifted, target).item()
    d_noise = m(noisy(target, 0.2), target).item()
    assert d_shift < d_noise  # a texture statistic barely sees a (circular) shift


def test_cx_and_pdl_distances_match_losses(images):
    pred, target = images[0][..., :32, :32], images[1][..., :32, :32]
    net = vgg19(["relu2_1"], weights=None, seed=0)
    a, b = net(pred)["relu2_1"], net(target)["relu2_1"]
    cx = fm.cx_distance(pred, target, weights=None, layers=["relu2_1"], sample_size=None, reduction="none")
    torch.testing.assert_close(cx, contextual_loss(a, b, 0.1, reduction="none"), rtol=1e-4, atol=1e-6)
    pdl = fm.pdl_distance(pred, target, "vgg19", layers=["relu2_1"], weights=None, reduction="none")
    an, bn = a.double().numpy(), b.double().numpy()
    for i in range(2):
        want = np.mean([wasserstein_distance(an[i, c].ravel(), bn[0, c].ravel()) for c in range(an.shape[1])])
        assert pdl[i].item() == pytest.approx(want, rel=1e-4)


def test_cx_sampling_is_deterministic_per_call():
    x = natural_image(48, 48, seed=8)
    y = noisy(x, 0.2)
    m = fm.CXDistance("vgg19", ["relu1_2"], weights=None, sample_size=20)
    assert m(y, x).item() == m(y, x).item()  # fresh generator every call
    assert m(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_deep_metrics_monotone_under_noise_random_trunk():
    target = natural_image(48, 48, seed=9)
    preds = torch.cat([noisy(target, s, seed=4) for s in (0.02, 0.08, 0.2, 0.4)])
    for metric in (
        fm.LPIPS("alex", weights=None, calibration=None, reduction="none"),
        fm.GramDistance("vgg19", ["relu1_2", "relu2_2"], weights=None, reduction="none"),
    ):
        v = metric(preds, target)
        assert bool((v[1:] > v[:-1]).all()), (metric, v)


def test_deep_metrics_monotone_real_vgg(shared, monkeypatch):
    """Real Caffe VGG-19 (up to relu3_1) on a real photo: distances grow with the noise level."""
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(shared / "weights"))
    from featstat.io import read_image

    target = read_image(shared / "images" / "kodak" / "kodim23.png")[..., 100:148, 200:248]
    preds = torch.cat([noisy(target, s, seed=6) for s in (0.03, 0.1, 0.3)])
    weights = "vgg19-caffe-normalised-to-relu3_1"
    layers = ["relu1_2", "relu2_2", "relu3_1"]
    for metric in (
        fm.LPIPS("vgg19", layers, weights, calibration=None, reduction="none"),
        fm.GramDistance("vgg19", layers, weights, reduction="none"),
    ):
        v = metric(preds, target)
        assert bool((v[1:] > v[:-1]).all()), (metric, v)
        assert metric(target, target).abs().max().item() < 1e-6


def test_registry_and_bad_inputs(images):
    pred, target = images
    assert fm.get_metric("lpips").module is fm.LPIPS and not fm.METRICS["gram"].higher_is_better
    assert fm.build_metric("texture", weights=None).__class__ is fm.GramDistance
    with pytest.raises(ValueError, match=r"unknown metric 'lpip'.*did you mean 'lpips'"):
        fm.get_metric("lpip")
    with pytest.raises(ValueError, match="net must be one of"):
        fm.LPIPS("resnet", weights=None)
    with pytest.raises(ValueError, match="layer_reduction"):
        fm.GramDistance(weights=None, layer_reduction="max")
    with pytest.raises(ValueError, match="same shape"):
        fm.lpips(pred[..., :48, :48], target, weights=None, calibration=None)
    with pytest.raises(ValueError, match="3 channels"):
        fm.gram_distance(pred[:, :1], target[:, :1], weights=None)
    with pytest.raises(ValueError, match="images must be at least"):
        fm.lpips(pred[..., :16, :16], target[..., :16, :16], weights=None, calibration=None)


def test_lpips_heads_are_in_the_weights_registry(shared, monkeypatch):
    from featstat.features import REGISTRY, resolve_weights

    entry = REGISTRY["lpips-vgg"]
    assert entry.filename == "lpips-v0.1/vgg.pth" and entry.full_hash and entry.arch == "vgg16"
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(shared / "weights"))
    assert resolve_weights("lpips-vgg") == shared / "weights" / "lpips-v0.1" / "vgg.pth"
    assert [h.numel() for h in fm.load_lpips_heads("vgg")] == [64, 128, 256, 512, 512]


# ------------------------------------------------------- built on the Objective: caching, modules, devices


def test_one_backbone_pass_per_image_and_the_reference_cached(images):
    pred, target = images
    m = fm.LPIPS("alex", weights=None, calibration=None, reduction="none")
    first = m(pred, target)
    assert m.objective.last_passes == 2  # pred and target, every layer from one pass each
    again = m(pred, target)
    assert m.objective.last_passes == 1  # the same unmodified reference: its features come from the cache
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    changed = target.clone()
    m(pred, changed)
    assert m.objective.last_passes == 2
    changed.mul_(0.5)  # modified in place: the cache must not answer for it
    torch.testing.assert_close(
        m(pred, changed),
        fm.LPIPS("alex", weights=None, calibration=None, reduction="none")(pred, changed.clone()),
    )


def test_functional_form_takes_a_module_the_caller_owns(images):
    pred, target = images
    m = fm.GramDistance("vgg19", ["relu1_2", "relu2_1"], weights=None, reduction="none")
    got = fm.gram_distance(pred, target, module=m, reduction="none")
    torch.testing.assert_close(got, m(pred, target))
    built = fm.gram_distance(
        pred, target, "vgg19", layers=("relu1_2", "relu2_1"), weights=None, reduction="none"
    )
    torch.testing.assert_close(got, built)
    with pytest.raises(ValueError, match=r"module= carries its own configuration, but \['layers'\]"):
        fm.gram_distance(pred, target, layers=["relu1_2"], module=m)
    with pytest.raises(ValueError, match="module must be a CXDistance"):
        fm.cx_distance(pred, target, module=m)


def test_functional_calls_keep_no_hidden_module(images):
    import gc

    from featstat.features import FeatureExtractor

    def alive() -> int:
        gc.collect()
        return sum(type(o) is FeatureExtractor for o in gc.get_objects())

    pred, target = images
    before = alive()
    fm.pdl_distance(pred, target, "vgg19", layers=["relu1_2"], weights=None)
    fm.lpips(pred, target, weights=None, calibration=None)
    assert alive() == before


def test_a_module_is_never_moved_by_a_call(images):
    """A metric on another device than the images raises (naming it and the fix) instead of moving."""
    pred, target = images
    m = fm.GramDistance("vgg19", ["relu1_2"], weights=None, device="meta")
    with pytest.raises(ValueError, match=r"GramDistance is on meta but the images are on cpu.*\.to\('cpu'\)"):
        m(pred, target)
    with pytest.raises(ValueError, match=r"module is on meta"):
        fm.gram_distance(pred, target, module=m)
    assert m.device == torch.device("meta") and m.extractor.mean.is_meta


def test_functional_form_builds_on_the_images_device_and_dtype(images, device):
    pred, target = (x[..., :32, :32].to(device) for x in images)
    got = fm.gram_distance(pred, target, "vgg19", layers=["relu1_2"], weights=None, reduction="none")
    assert got.device.type == torch.device(device).type and got.dtype == torch.float32
    double = fm.gram_distance(pred.double(), target.double(), "vgg19", layers=["relu1_2"], weights=None,
                              reduction="none")  # fmt: skip
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), got, rtol=1e-3, atol=1e-9)


def test_deep_metric_is_any_loss_on_a_fixed_extractor(images):
    from featstat.losses import ChamferLoss, GramLoss
    from featstat.losses.functional import chamfer_distance

    pred, target = images[0][..., :32, :32], images[1][..., :32, :32]
    m = fm.DeepMetric("vgg19", ["relu1_2", "relu2_1"], weights=None, loss=ChamferLoss(reduction="none"),
                      reduction="none")  # fmt: skip
    net = vgg19(["relu1_2", "relu2_1"], weights=None, seed=0)
    fp, ft = net(pred), net(target)
    want = sum(chamfer_distance(fp[k], ft[k], reduction="none") for k in fp) / 2  # layers averaged
    torch.testing.assert_close(m(pred, target), want, rtol=1e-5, atol=1e-7)
    by_name = fm.DeepMetric("vgg19", ["relu1_2", "relu2_1"], weights=None, loss="chamfer", reduction="none")
    torch.testing.assert_close(by_name(pred, target), want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="reduction='none'"):
        fm.DeepMetric("vgg19", ["relu1_2"], weights=None, loss=GramLoss())
    with pytest.raises(ValueError, match="has no loss"):
        fm.DeepMetric("vgg19", ["relu1_2"], weights=None)(pred, target)


def test_lpips_heads_are_declared_without_importing_metrics():
    import subprocess
    import sys

    code = (
        "import sys, featstat.features as f; e = f.REGISTRY['lpips-squeeze']; "
        "assert e.arch == 'squeezenet1_1' and e.full_hash and e.url.endswith('v0.1/squeeze.pth'); "
        "assert 'featstat.metrics' not in sys.modules, 'metrics was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
