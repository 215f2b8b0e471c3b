"""Radial power spectra: known sinusoids, white noise, 1/f images, spectral distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import featstat.metrics as fm


def sinusoid(h: int, w: int, fx: float, fy: float = 0.0) -> torch.Tensor:
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    return (0.5 + 0.4 * torch.sin(2 * math.pi * (fx * x + fy * y)))[None, None]


@pytest.mark.parametrize("freq", [0.0625, 0.125, 0.3125])
def test_sinusoid_peaks_at_its_frequency(freq):
    img = sinusoid(64, 64, freq)
    freqs, power = fm.radial_power_spectrum(img)
    peak = int(power[0].argmax())
    assert abs(freqs[peak].item() - freq) <= 0.5 / 32 / 2 + 1e-9  # within half a ring
    # the same radial frequency along a diagonal peaks in the same ring (±1 for the ring boundary)
    f = freq / math.sqrt(2)
    _, p2 = fm.radial_power_spectrum(sinusoid(64, 64, f, f), window=None)
    assert abs(int(p2[0].argmax()) - peak) <= 1


def test_white_noise_is_flat_at_its_variance():
    g = torch.Generator().manual_seed(0)
    noise = 0.5 + 0.1 * torch.randn(8, 1, 64, 64, generator=g, dtype=torch.float64)
    _, power = fm.mean_power_spectrum(noise, window=None)
    assert power.mean().item() == pytest.approx(0.01, rel=0.05)
    assert power.std().item() / power.mean().item() < 0.3


def test_power_law_slope_and_numpy_reference():
    n = 128
    rng = np.random.default_rng(1)
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    r = np.hypot(fy, fx)
    amp = np.where(r > 0, r, 1.0) ** -1.0  # power ∝ 1/f²
    img = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n)))))
    t = torch.from_numpy(img)[None, None]
    freqs, power = fm.radial_power_spectrum(t, window=None)
    assert fm.spectral_slope(freqs, power[0]).item() == pytest.approx(-2.0, abs=0.25)
    # NumPy reference of the radial average (no window): periodogram averaged over rings
    p = np.abs(np.fft.fft2(img - img.mean())) ** 2 / img.size
    ring = np.ceil(r / 0.5 * (n // 2)).astype(int) - 1
    want = np.array([p[ring == b].mean() for b in range(n // 2)])
    np.testing.assert_allclose(power[0].numpy(), want, rtol=1e-10)


def test_sets_of_different_sizes_and_distance():
    a = sinusoid(64, 64, 0.125).float()
    b = sinusoid(96, 80, 0.125).float()
    freqs, power = fm.mean_power_spectrum([a, b])
    assert freqs.shape == power.shape == (32,)
    assert abs(freqs[int(power.argmax())].item() - 0.125) < 0.02
    assert fm.spectrum_distance(a, a).item() == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool2d(a, 3, stride=1, padding=1, count_include_pad=False)
    g = torch.Generator().manual_seed(3)
    noisy = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    noisier = (a + 0.2 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    d1, d2 = fm.spectrum_distance(noisy, a).item(), fm.spectrum_distance(noisier, a).item()
    assert 0 < d1 < d2
    assert fm.spectrum_distance(blurred, a).item() > 0
    assert fm.SpectrumDistance(reduction="none")(noisy, a).shape == (1,)


def test_rgb_luma_and_bad_inputs():
    rgb = sinusoid(32, 32, 0.25).float().expand(1, 3, 32, 32)
    _, p_rgb = fm.radial_power_spectrum(rgb)
    _, p_gray = fm.radial_power_spectrum(rgb[:, :1])
    torch.testing.assert_close(p_rgb, p_gray, rtol=1e-4, atol=1e-8)
    with pytest.raises(ValueError, match="channel"):
        fm.radial_power_spectrum(rgb, channel="red")
    with pytest.raises(ValueError, match="window"):
        fm.radial_power_spectrum(rgb, window="kaiser")
    with pytest.raises(ValueError, match="at least 4×4"):
        fm.radial_power_spectrum(rgb[..., :2, :2])
    with pytest.raises(ValueError, match="n_bins"):
        fm.radial_power_spectrum(rgb, n_bins=0)
    with pytest.raises(ValueError, match="NaN"):
        fm.radial_power_spectrum(torch.full((1, 1, 8, 8), float("nan")))
