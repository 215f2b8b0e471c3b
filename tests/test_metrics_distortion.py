"""PSNR, SSIM and MS-SSIM against scikit-image and plain NumPy oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate1d
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import featstat.metrics as fm
from featstat.io import read_image


def natural_image(h: int, w: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """A natural-like test image: 1/f (pink) noise per channel, mixed between channels, plus an edge."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    base = []
    for _ in range(channels):
        spec = amp * np.exp(2j * np.pi * rng.random((h, w)))
        base.append(np.real(np.fft.ifft2(spec)))
    arr = np.stack(base)
    if channels == 3:
        arr = np.einsum("ij,jhw->ihw", np.array([[1, 0.6, 0.3], [0.6, 1, 0.6], [0.3, 0.6, 1]]), arr)
    arr[:, :, w // 2 :] += arr.std()  # an edge
    arr = (arr - arr.min()) / (arr.max() - arr.min())
    return torch.from_numpy(arr).float()[None]


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _np(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).double().numpy()


def _y_np(x: np.ndarray) -> np.ndarray:
    return (16 + x @ np.array([65.481, 128.553, 24.966])) / 255


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    x = natural_image(64, 80)
    return noisy(x, 0.05), x


def test_psnr_matches_skimage_per_image(pair):
    pred, target = pair
    pred2 = torch.cat([pred, noisy(target, 0.2, seed=3)])
    target2 = torch.cat([target, target])
    got = fm.psnr(pred2, target2, reduction="none")
    assert got.shape == (2,)
    for i in range(2):
        want = peak_signal_noise_ratio(_np(target2[i : i + 1]), _np(pred2[i : i + 1]), data_range=1.0)
        assert got[i].item() == pytest.approx(want, abs=1e-4)
    assert fm.psnr(pred2, target2).item() == pytest.approx(got.mean().item())
    assert fm.psnr(pred2, target2, reduction="sum").item() == pytest.approx(got.sum().item())


def test_psnr_y_channel_and_crop_match_numpy(pair):
    pred, target = pair
    got = fm.psnr(pred, target, y_channel=True, crop_border=4, reduction="none").item()
    yp, yt = _y_np(_np(pred))[4:-4, 4:-4], _y_np(_np(target))[4:-4, 4:-4]
    want = peak_signal_noise_ratio(yt, yp, data_range=1.0)
    assert got == pytest.approx(want, abs=1e-4)
    # the Y channel of white is 235/255, of black 16/255 (studio swing)
    y = fm.rgb_to_y(torch.tensor([[[[1.0]], [[1.0]], [[1.0]]], [[[0.0]], [[0.0]], [[0.0]]]]))
    assert y.flatten().tolist() == pytest.approx([235 / 255, 16 / 255], abs=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(pair, channels):
    pred, target = pair
    if channels == 1:
        pred, target = pred[:, :1], target[:, :1]
    got = fm.ssim(pred, target, reduction="none").item()
    want = structural_similarity(
        _np(target), _np(pred), data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=2,
    )  # fmt: skip
    assert got == pytest.approx(want, abs=2e-5)


def test_ssim_y_channel_crop_matches_skimage(pair):
    pred, target = pair
    got = fm.ssim(pred, target, y_channel=True, crop_border=3).item()
    yp, yt = _y_np(_np(pred))[3:-3, 3:-3], _y_np(_np(target))[3:-3, 3:-3]
    want = structural_similarity(yt, yp, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)  # fmt: skip
    assert got == pytest.approx(want, abs=2e-5)


def _ssim_cs_np(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Plain NumPy SSIM and contrast-structure term with an 11-tap σ=1.5 Gaussian, valid region."""
    t = np.arange(11) - 5
    g = np.exp(-(t**2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(a):
        out = correlate1d(correlate1d(a, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return out[5:-5, 5:-5]

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return float((lum * cs).mean()), float(cs.mean())


def test_ms_ssim_matches_numpy_pyramid():
    target = natural_image(192, 192, seed=4, channels=1)
    pred = noisy(target, 0.08, seed=5)
    got = fm.ms_ssim(pred, target, reduction="none").item()
    x, y = target[0, 0].double().numpy(), pred[0, 0].double().numpy()
    weights = fm.MS_SSIM_WEIGHTS
    value = 1.0
    for j, wj in enumerate(weights):
        s, cs = _ssim_cs_np(x, y)
        value *= (max(s, 0) if j == len(weights) - 1 else max(cs, 0)) ** wj
        x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
        y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean(axis=(1, 3))
    assert got == pytest.approx(value, abs=1e-5)
    assert fm.ms_ssim(target, target).item() == pytest.approx(1.0, abs=1e-6)


def test_identity_is_best_and_symmetry(pair):
    pred, target = pair
    assert torch.isinf(fm.psnr(target, target)).item()
    assert fm.ssim(target, target).item() == pytest.approx(1.0, abs=1e-6)
    assert fm.ssim(pred, target).item() < 1.0
    assert fm.psnr(pred, target).item() == pytest.approx(fm.psnr(target, pred).item(), abs=1e-5)
    assert fm.ssim(pred, target).item() == pytest.approx(fm.ssim(target, pred).item(), abs=1e-6)


def test_monotone_under_increasing_noise():
    target = natural_image(168, 168, seed=7)
    sigmas = [0.02, 0.06, 0.15, 0.3]
    preds = torch.cat([noisy(target, s, seed=11) for s in sigmas])
    for fn in (fm.psnr, fm.ssim, fm.ms_ssim):
        v = fn(preds, target, reduction="none")
        assert bool((v[1:] < v[:-1]).all()), (fn.__name__, v)


def test_real_images_match_skimage(shared):
    target = read_image(shared / "images" / "kodak" / "kodim05.png")[..., :192, :256]
    pred = noisy(target, 0.04, seed=2)
    want_p = peak_signal_noise_ratio(_np(target), _np(pred), data_range=1.0)
    want_s = structural_similarity(_np(target), _np(pred), data_range=1.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, channel_axis=2)  # fmt: skip
    assert fm.psnr(pred, target).item() == pytest.approx(want_p, abs=1e-4)
    assert fm.ssim(pred, target).item() == pytest.approx(want_s, abs=2e-5)
    # an SR-style check on Set5: bicubic-upsampled LR is worse than the HR itself, better than noise
    hr = read_image(shared / "images" / "set5" / "img_001_SRF_4_HR.png")
    lr = read_image(shared / "images" / "set5" / "img_001_SRF_4_LR.png")
    up = torch.nn.functional.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(
        0, 1
    )
    v = fm.psnr(up, hr, y_channel=True, crop_border=4).item()
    assert 20 < v < 45


def test_modules_match_functions_and_flags(pair):
    pred, target = pair
    assert fm.PSNR(y_channel=True)(pred, target).item() == pytest.approx(
        fm.psnr(pred, target, y_channel=True).item()
    )
    assert fm.SSIM(reduction="none")(pred, target).shape == (1,)
    assert fm.PSNR.higher_is_better and fm.SSIM.higher_is_better and fm.MSSSIM.higher_is_better
    assert fm.METRICS["psnr"].higher_is_better and fm.get_metric("msssim").module is fm.MSSSIM


def test_target_batch_broadcast_and_half(pair):
    pred, target = pair
    batch = torch.cat([pred, pred])
    v = fm.psnr(batch, target, reduction="none")
    assert v.shape == (2,) and v[0] == v[1]
    half = fm.ssim(pred.half(), target.half()).item()
    assert half == pytest.approx(fm.ssim(pred, target).item(), abs=2e-3)


def test_gradients_flow(pair):
    pred, target = pair
    p = pred.clone().requires_grad_(True)
    (fm.ssim(p, target) + fm.psnr(p, target) / 100).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_bad_inputs(pair):
    pred, target = pair
    with pytest.raises(ValueError, match="pred must have 4 dimensions"):
        fm.psnr(pred[0], target)
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*divide by 255"):
        fm.psnr(pred * 255, target)
    with pytest.raises(ValueError, match="same shape"):
        fm.ssim(pred[..., :32, :32], target)
    with pytest.raises(ValueError, match="crop_border"):
        fm.psnr(pred, target, crop_border=40)
    with pytest.raises(ValueError, match="win_size"):
        fm.ssim(pred, target, win_size=4)
    with pytest.raises(ValueError, match="larger than 160 pixels"):
        fm.ms_ssim(pred, target)
    with pytest.raises(ValueError, match="RGB"):
        fm.psnr(pred[:, :1], target[:, :1], y_channel=True)
    with pytest.raises(ValueError, match="reduction"):
        fm.psnr(pred, target, reduction="avg")
    with pytest.raises(ValueError, match="NaN"):
        fm.ssim(torch.full_like(pred, float("nan")), target)
