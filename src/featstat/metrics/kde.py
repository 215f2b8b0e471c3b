"""Two-dimensional kernel density estimation by diffusion (Botev, Grotowski, Kroese 2010), in NumPy.

The contextual-loss paper (Mechrez et al. 2018, sec. 3) fits the 2-D random projections of image patches
"using KDE with a Gaussian kernel in 2D [25]", [25] being this estimator. It bins the points on an n×n grid,
chooses the bandwidth with the paper's "improved Sheather–Jones" fixed point (no normal-reference
assumption), and smooths the histogram with a Gaussian kernel (reflecting boundaries) through the discrete
cosine transform. This is a transcription of the authors' MATLAB ``kde2d`` (also of the ``kde-diffusion``
Python port, which the tests use as the oracle), with the DCT computed by FFTs so that only NumPy is needed.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["botev_smooth", "brent_root", "dct2_matrix", "kde2d"]


@functools.lru_cache(maxsize=8)
def dct2_matrix(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(D, D⁻¹) for the unnormalised DCT-II of length n: ``D[k, m] = 2 cos(π k (2m + 1) / (2n))``
    (``scipy.fft.dct(type=2)``), and its inverse ``D⁻¹[m, k] = c_k cos(π k (2m + 1) / (2n)) / n`` with
    c_0 = 1/2, c_k = 1 otherwise. A reference for the FFT-based transforms below."""
    k = np.arange(n)[:, None]
    m = np.arange(n)[None, :]
    cos = np.cos(np.pi * k * (2 * m + 1) / (2 * n))
    forward = 2.0 * cos
    c = np.ones(n)
    c[0] = 0.5
    inverse = (cos * c[:, None]).T / n
    forward.setflags(write=False)
    inverse.setflags(write=False)
    return forward, inverse


def _dct_halved(x: np.ndarray, axis: int) -> np.ndarray:
    """DCT-II along ``axis`` with the first coefficient halved (the reference code's convention):
    ``a_0 = Σ_m x_m``, ``a_k = 2 Σ_m x_m cos(π k (2m + 1) / (2n))``; by one FFT of length n (Makhoul)."""
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    v = np.concatenate([x[0::2], x[1::2][::-1]], axis=0)
    w = 2 * np.exp(-1j * np.pi * np.arange(n) / (2 * n))
    w[0] = 1
    out = np.real(w.reshape((n,) + (1,) * (x.ndim - 1)) * np.fft.fft(v, axis=0))
    return np.moveaxis(out, 0, axis)


def _idct_halved(a: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`_dct_halved` along ``axis``: ``x_m = (1/n) Σ_k a_k cos(π k (2m + 1) / (2n))``."""
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    w = np.exp(1j * np.pi * np.arange(n) / (2 * n)).reshape((n,) + (1,) * (a.ndim - 1))
    y = np.real(np.fft.ifft(w * a, axis=0))
    out = np.empty_like(y)
    out[0::2] = y[: n // 2]
    out[1::2] = y[n // 2 :][::-1]
    return np.moveaxis(out, 0, axis)


def brent_root(f, a: float, b: float, xtol: float = 2e-12, rtol: float = 4 * np.finfo(float).eps,
               maxiter: int = 200) -> float:  # fmt: skip
    """Root of ``f`` in [a, b] (f(a), f(b) of opposite signs) by Brent's method (as
    ``scipy.optimize.brentq``).

    Raises ``ValueError`` when the interval does not bracket a root.
    """
    fa, fb = f(a), f(b)
    if fa == 0:
        return a
    if fb == 0:
        return b
    if np.sign(fa) == np.sign(fb):
        raise ValueError(f"f(a) and f(b) must have opposite signs, got f({a})={fa}, f({b})={fb}")
    c, fc = a, fa
    d = e = b - a
    for _ in range(maxiter):
        if np.sign(fb) == np.sign(fc):
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2 * rtol * abs(b) + 0.5 * xtol
        m = 0.5 * (c - b)
        if abs(m) <= tol or fb == 0:
            return b
        if abs(e) >= tol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:  # secant
                p, q = 2 * m * s, 1 - s
            else:  # inverse quadratic interpolation
                q, r = fa / fc, fb / fc
                p = s * (2 * m * q * (q - r) - (b - a) * (r - 1))
                q = (q - 1) * (r - 1) * (s - 1)
            if p > 0:
                q = -q
            p = abs(p)
            if 2 * p < min(3 * m * q - abs(tol * q), abs(e * q)):
                e, d = d, p / q
            else:
                d = e = m
        else:
            d = e = m
        a, fa = b, fb
        b += d if abs(d) > tol else (tol if m > 0 else -tol)
        fb = f(b)
    return b


def _golden_min(f, a: float, b: float, iters: int = 100) -> float:
    """Minimiser of a unimodal ``f`` on [a, b] by golden-section search (MATLAB kde2d's last resort)."""
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return 0.5 * (a + b)


def botev_smooth(hist: np.ndarray, count: int) -> tuple[np.ndarray, float, float]:
    """Smooth a normalised n×n histogram (masses summing to 1, n a power of two) by Botev's diffusion KDE.

    Args:
        hist: n×n bin masses (the histogram of ``count`` points divided by ``count``), axis 0 = x, axis 1 = y.
        count: number of points N (enters the bandwidth selection).

    Returns:
        (smoothed masses n×n summing to 1, t_x, t_y): the diffusion times along x and y in units of the grid
        range squared (bandwidth_x = sqrt(t_x)·range_x). Small negative values of the smoothed masses
        (round-off) are left for the caller to floor.
    """
    n = hist.shape[0]
    if hist.shape != (n, n) or n < 4:
        raise ValueError(f"hist must be a square n×n array with n >= 4, got shape {hist.shape}")
    if count < 2:
        raise ValueError(f"count must be at least 2 points for a density estimate, got {count}")
    a = _dct_halved(_dct_halved(np.asarray(hist, dtype=np.float64), 0), 1)
    k2 = np.arange(n, dtype=np.float64) ** 2
    a2 = a**2
    half = np.full(n, 0.5)
    half[0] = 1.0
    pi = math.pi
    big_n = float(count)

    cache: dict[tuple[int, int, float], float] = {}

    def psi(i: int, j: int, t: float) -> float:
        key = (i, j, t)
        if key in cache:
            return cache[key]
        tt = t
        if i + j <= 4:
            total = abs(psi(i + 1, j, t) + psi(i, j + 1, t))
            c = (1 + 1 / 2 ** (i + j + 1)) / 3
            prod_i = float(np.prod(np.arange(1, 2 * i, 2))) if i else 1.0
            prod_j = float(np.prod(np.arange(1, 2 * j, 2))) if j else 1.0
            tt = (c * prod_i * prod_j / (pi * big_n * total)) ** (1 / (2 + i + j))
        w = half * np.exp(-(pi**2) * k2 * tt)
        wx = w * k2**i
        wy = w * k2**j
        value = (-1) ** (i + j) * pi ** (2 * (i + j)) * float(wy @ a2 @ wx)
        cache[key] = value
        return value

    def equation(t: float) -> float:
        s = psi(0, 2, t) + psi(2, 0, t) + 2 * psi(1, 1, t)
        gamma = (2 * pi * big_n * s) ** (-1 / 3)
        return t - (t - gamma) / gamma  # as in the reference code (root ≈ the fixed point t = γ(t))

    with np.errstate(all="ignore"):
        try:
            t_star = brent_root(equation, 0.0, 0.1)
        except ValueError:
            t_star = _golden_min(lambda t: abs(equation(t)), 0.0, 0.1)
        p02, p20, p11 = psi(0, 2, t_star), psi(2, 0, t_star), psi(1, 1, t_star)
        root = math.sqrt(max(p02 * p20, 0.0))
        t_y = (p02 ** (3 / 4) / (4 * pi * big_n * p20 ** (3 / 4) * (p11 + root))) ** (1 / 3)
        t_x = (p20 ** (3 / 4) / (4 * pi * big_n * p02 ** (3 / 4) * (p11 + root))) ** (1 / 3)
    if not (math.isfinite(t_x) and math.isfinite(t_y)) or t_x <= 0 or t_y <= 0:
        raise ValueError(
            "the diffusion KDE bandwidth selection failed (degenerate points: all equal, or on a line?); "
            "use more varied data or a fixed bandwidth"
        )
    # kde-diffusion's naming: its tx2 (MATLAB t_x) smooths axis 0 (x), tx1 (MATLAB t_y) smooths axis 1 (y)
    smooth = a * np.outer(np.exp(-(pi**2) * k2 * t_x / 2), np.exp(-(pi**2) * k2 * t_y / 2))
    return _idct_halved(_idct_halved(smooth, 0), 1), t_x, t_y


def kde2d(
    x: np.ndarray,
    y: np.ndarray,
    n: int = 256,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Diffusion KDE of 2-D points (x_i, y_i) on an n×n grid (n rounded up to a power of two).

    ``limits`` = ((xmin, xmax), (ymin, ymax)); None pads the data range by half of it on each side (as the
    authors' MATLAB code). Returns (density n×n in (x, y) index order, per unit area; (x grid, y grid): the
    left edges of the bins; bandwidth (2,): the Gaussian kernel's standard deviation along x and y). Same
    interface as ``kde_diffusion.kde2d``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    n = int(2 ** math.ceil(math.log2(max(int(n), 4))))
    if limits is None:
        rx, ry = x.max() - x.min(), y.max() - y.min()
        limits = ((x.min() - rx / 2, x.max() + rx / 2), (y.min() - ry / 2, y.max() + ry / 2))
    (x0, x1), (y0, y1) = limits
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"limits must be increasing ((xmin, xmax), (ymin, ymax)), got {limits}")
    hist, xedges, yedges = np.histogram2d(x, y, bins=n, range=((x0, x1), (y0, y1)))
    smoothed, t_x, t_y = botev_smooth(hist / x.size, x.size)
    density = smoothed * (n / (x1 - x0)) * (n / (y1 - y0))
    bandwidth = np.array([math.sqrt(t_x) * (x1 - x0), math.sqrt(t_y) * (y1 - y0)])
    return density, (xedges[:-1], yedges[:-1]), bandwidth
