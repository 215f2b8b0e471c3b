"""featstat.ops against independent oracles: Pillow (resize, JPEG, YCbCr), SciPy (blurs, convolution), NumPy
transcriptions (MATLAB imresize, the reference DIP Lanczos-2 kernel), MATLAB's rgb2ycbcr values, and the
benchmark's own MATLAB-made Set5 images; explicit units and seeds; the layer's imports."""

from __future__ import annotations

import ast
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from featstat import ops

PIL_FILTERS = {
    "lanczos3": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
}


def _image(n: int = 1, h: int = 48, w: int = 40, seed: int = 0, c: int = 3) -> torch.Tensor:
    """Smooth random images in [0, 1] (bilinear upsampling of coarse noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, h // 8 + 2, w // 8 + 2, generator=g)
    return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


# --------------------------------------------------------------------------------------------- layer


def test_ops_imports_only_checks_and_numeric_libraries():
    """ops is the bottom of the image stack: featstat._checks, its own modules, torch/NumPy/SciPy/Pillow."""
    allowed_roots = {"torch", "numpy", "scipy", "PIL", "__future__", "collections", "functools", "io", "math"}
    for path in sorted((Path(ops.__file__).parent).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 2:
                    assert node.module == "_checks", f"{path.name} imports featstat.{node.module}"
                    continue
                if node.level == 1:
                    continue  # a sibling inside ops
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed_roots, f"{path.name} imports {name}"


# ------------------------------------------------------------------------------------ Pillow resizing


@pytest.mark.parametrize("kernel", list(PIL_FILTERS))
@pytest.mark.parametrize(
    ("size", "out"),
    [
        ((64, 48), (16, 12)),
        ((37, 50), (9, 25)),
        ((30, 30), (11, 7)),
        ((16, 12), (64, 48)),
        ((13, 9), (20, 31)),
    ],
)
def test_resize_matches_pillow(kernel, size, out):
    """Antialiased reduction and enlargement, integer and fractional factors, odd sizes: Pillow's
    ``Image.resize`` on float ("F") images is the reference (edges renormalised, as Pillow does)."""
    a = np.random.default_rng(0).random(size).astype(np.float32)
    expected = np.asarray(Image.fromarray(a, mode="F").resize(out[::-1], PIL_FILTERS[kernel]))
    got = ops.resize(torch.from_numpy(a)[None, None], out, kernel)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def _reference_dip_kernel(factor: int) -> np.ndarray:
    """The public Deep Image Prior code's 'lanczos2' kernel with phase 1/2, transcribed from its formula:
    (4f)×(4f) taps at d = |i + 1/2 − c| / f, value 2·sin(πd)·sin(πd/2) / (π²d²) per axis, normalised."""
    width = 4 * factor + 1
    n = width - 1
    centre = (width + 1) / 2
    k = np.zeros((n, n))
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            v = 1.0
            for d in (abs(i + 0.5 - centre) / factor, abs(j + 0.5 - centre) / factor):
                if d != 0:
                    v *= 2 * np.sin(np.pi * d) * np.sin(np.pi * d / 2) / (np.pi**2 * d * d)
            k[i - 1, j - 1] = v
    return k / k.sum()


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_downsampler_is_the_reference_lanczos2(factor):
    """Replicate padding by (4f − f)/2, a strided depthwise convolution: the reference ``Downsampler``."""
    g = torch.Generator().manual_seed(factor)
    x = torch.rand(1, 3, 6 * factor, 5 * factor, generator=g, dtype=torch.float64)
    k = torch.from_numpy(_reference_dip_kernel(factor))
    pad = (k.shape[0] - factor) // 2
    weight = k[None, None].expand(3, 1, -1, -1).contiguous()
    expected = F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), weight, stride=factor, groups=3)
    got = ops.Downsampler(factor)(x)
    assert got.shape == (1, 3, 6, 5)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_downsampler_interior_equals_the_pillow_style_lanczos2():
    """Edges aside, replicate and renormalise are the same operator (same kernel, same pixel centres)."""
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    a = ops.Downsampler(4)(x)
    b = ops.resize(x, (16, 16), "lanczos2", edge="renormalise")
    torch.testing.assert_close(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], atol=1e-12, rtol=0)
    assert not torch.allclose(a, b)


def test_resize_properties_and_edge_modes():
    for kernel in ops.KERNELS:
        for edge in ops.EDGES:
            m = ops.resample_matrix(23, 7, kernel, edge=edge)
            torch.testing.assert_close(m.sum(1), torch.ones(7, dtype=torch.float64))  # constants preserved
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    assert torch.equal(ops.resize(x, (12, 10), "lanczos3"), x)  # same size: identity
    before = ops.resize(x, (7, 10), "box", edge="reflect")
    ops.resample_matrix(12, 7, "box", edge="reflect").zero_()  # the caller's copy, not the cached matrix
    assert torch.equal(ops.resize(x, (7, 10), "box", edge="reflect"), before)
    assert ops.resize(x.float(), (6, 5)).dtype == torch.float32
    assert ops.resize(x.to(torch.bfloat16), (6, 5)).dtype == torch.bfloat16
    # first output of a ×2 bilinear reduction: taps −1, 0, 1, 2 with weights 1, 3, 3, 1 (/8); tap −1 is
    # pixel 1 when reflecting (no repeated border), pixel 0 when replicating, dropped when renormalising
    first = {"reflect": [3, 4, 1], "replicate": [4, 3, 1], "renormalise": [3 / 7 * 8, 3 / 7 * 8, 1 / 7 * 8]}
    for edge, row in first.items():
        m = ops.resample_matrix(8, 4, "bilinear", edge=edge)
        torch.testing.assert_close(m[0, :3], torch.tensor(row, dtype=torch.float64) / 8)


def test_resize_gradients_and_autocast():
    x = torch.rand(1, 2, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ops.resize(t, (4, 3), "lanczos3"), (x,))
    assert torch.autograd.gradcheck(lambda t: ops.Downsampler(2)(t[..., :8, :8]), (x,))
    assert torch.autograd.gradcheck(lambda t: ops.imresize(t, scale=0.5), (x,))
    y = torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = ops.Downsampler(4)(y)
    assert z.dtype == torch.float32
    torch.testing.assert_close(z, ops.Downsampler(4)(y))


# ---------------------------------------------------------------------------------- MATLAB imresize


def _matlab_imresize_1d(v: np.ndarray, scale: float, out_len: int) -> np.ndarray:
    """imresize.m's bicubic path along one axis, written as its loops: for each output pixel, the input
    coordinate u, the taps floor(u − w/2) + 0..P−1, cubic weights (stretched when shrinking), normalised,
    out-of-range taps mirrored with the edge repeated (MATLAB's 'symmetric')."""

    def cubic(t: float) -> float:
        a = abs(t)
        if a <= 1:
            return 1.5 * a**3 - 2.5 * a**2 + 1
        if a <= 2:
            return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
        return 0.0

    n = len(v)
    width = 4 / scale if scale < 1 else 4.0
    out = np.zeros(out_len)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + p for p in range(math.ceil(width) + 2)]
        w = [scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j) for j in taps]
        total = sum(w)
        for j, wj in zip(taps, w, strict=True):
            k = j - 1  # 0-based
            while k < 0 or k >= n:
                k = -k - 1 if k < 0 else 2 * n - 1 - k
            out[x - 1] += wj / total * v[k]
    return out


@pytest.mark.parametrize(
    ("size", "scale"), [((24, 16), 0.5), ((24, 16), 0.25), ((9, 7), 2.0), ((15, 20), 1 / 3)]
)
def test_imresize_matches_a_loop_transcription_of_matlab(size, scale):
    a = np.random.default_rng(1).random(size)
    out_h, out_w = math.ceil(size[0] * scale), math.ceil(size[1] * scale)
    rows = np.stack([_matlab_imresize_1d(r, scale, out_w) for r in a])
    expected = np.stack([_matlab_imresize_1d(c, scale, out_h) for c in rows.T]).T
    got = ops.imresize(torch.from_numpy(a)[None, None], scale=scale)[0, 0].numpy()
    assert got.shape == (out_h, out_w)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    m = ops.imresize_matrix(size[1], out_w, scale).numpy()
    np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-12)


def test_matlab_bicubic_equals_antialiased_torch_away_from_borders_and_keeps_constants():
    x = _image(1, 64, 48).double()
    for s in (2, 4, 8):
        m = ops.bicubic_downsample(x, s)
        t = ops.bicubic_downsample(x, s, method="torch")
        assert m.shape == (1, 3, 64 // s, 48 // s)
        b = 2  # border pixels where MATLAB mirrors and Pillow renormalises
        assert torch.allclose(m[..., b:-b, b:-b], t[..., b:-b, b:-b], atol=1e-9)
    const = torch.full((1, 1, 32, 32), 0.3, dtype=torch.float64)
    torch.testing.assert_close(
        ops.bicubic_downsample(const, 4), torch.full((1, 1, 8, 8), 0.3, dtype=torch.float64)
    )
    up = ops.resize_bicubic(x, scale=2.0)
    assert up.shape == (1, 3, 128, 96)
    assert torch.allclose(ops.bicubic_downsample(up, 2)[..., 2:-2, 2:-2], x[..., 2:-2, 2:-2], atol=0.05)


def test_bicubic_downsample_reproduces_set5_low_resolution(shared):
    from featstat.io import read_image

    hr = read_image(shared / "images/set5/img_002_SRF_4_HR.png")
    lr = read_image(shared / "images/set5/img_002_SRF_4_LR.png")
    ours = (ops.bicubic_downsample(hr, 4).clamp(0, 1) * 255).round() / 255
    inner = (ours - lr)[..., 4:-4, 4:-4].abs() * 255
    assert inner.max() <= 1.0 + 1e-4  # within one 8-bit level of the benchmark's MATLAB images
    assert -10 * torch.log10((ours - lr).square().mean()) > 50


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ops.resize(torch.rand(3, 8, 8), (4, 4)), "4 dimensions"),
        (lambda: ops.resize(torch.rand(1, 3, 8, 8), (4, 0)), "size must be"),
        (lambda: ops.resize(torch.rand(1, 3, 8, 8), (4, 4), "nearest"), "kernel must be one of"),
        (lambda: ops.resize(torch.rand(1, 3, 8, 8), (4, 4), edge="wrap"), "edge must be one of"),
        (lambda: ops.Downsampler(4)(torch.rand(1, 3, 10, 8)), r"10×8 pixels, not divisible by the factor 4"),
        (lambda: ops.Downsampler(0), "factor must be a positive integer"),
        (lambda: ops.bicubic_downsample(torch.rand(1, 3, 30, 32), 4), "not multiples of scale 4"),
        (lambda: ops.bicubic_downsample(torch.rand(1, 3, 30, 30), 5), "scale must be one of"),
        (lambda: ops.imresize(torch.rand(1, 3, 8, 8)), "exactly one of size"),
        (lambda: ops.resize_bicubic(torch.rand(1, 3, 8, 8), scale=0.5, method="lanczos"), "method must be"),
        (lambda: ops.imresize_matrix(0, 4), "in_len must be a positive integer"),
    ],
)
def test_resampling_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------------------- noise


def test_gaussian_noise_units_are_explicit():
    x = torch.full((2, 3, 64, 64), 0.5)
    in_255 = ops.gaussian_noise(x, 25, units="255", seed=3)
    in_unit = ops.gaussian_noise(x, 25 / 255, units="unit", seed=3)
    torch.testing.assert_close(in_255, in_unit, atol=1e-7, rtol=0)
    # the documented draw: N×C×H×W float32 standard normals from the seed, times σ / white
    oracle = x + (25 / 255) * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(in_255, oracle, atol=1e-7, rtol=0)
    torch.testing.assert_close(
        ops.gaussian_noise(x, 1000, units=65535.0, seed=3) - x, (oracle - x) * 255 * 1000 / 65535 / 25
    )
    with pytest.raises(TypeError, match="units"):
        ops.gaussian_noise(x, 25, seed=0)  # type: ignore[call-arg]  # no default: a factor of 255 is at stake
    for bad in ("0-255", "[0, 1]", None, 0, -1.0, True):
        with pytest.raises(ValueError, match="units"):
            ops.gaussian_noise(x, 25, units=bad, seed=0)  # type: ignore[arg-type]


def test_gaussian_noise_seed_and_ranges():
    x = _image(4)
    with pytest.raises(ValueError, match="seed must be"):
        ops.gaussian_noise(x, 0.1, units="unit", seed=None)  # type: ignore[arg-type]
    a = ops.gaussian_noise(x, 0.2, units="unit", seed=7)
    assert torch.equal(a, ops.gaussian_noise(x, 0.2, units="unit", seed=7))
    assert not torch.equal(a, ops.gaussian_noise(x, 0.2, units="unit", seed=8))
    assert a.min() < 0 or a.max() > 1  # not clipped by default
    c = ops.gaussian_noise(x, 0.2, units="unit", seed=7, clip=True)
    assert torch.equal(c, a.clamp(0, 1))
    g = torch.Generator().manual_seed(5)
    first, second = (ops.gaussian_noise(x, 0.1, units="unit", seed=g) for _ in range(2))
    assert not torch.equal(first, second)  # a generator is advanced, not reseeded
    big = torch.full((6, 1, 96, 96), 0.5)
    stds = (ops.gaussian_noise(big, (5, 50), units="255", seed=1) - 0.5).flatten(1).std(dim=1) * 255
    assert (stds > 4.5).all() and (stds < 52).all() and stds.max() - stds.min() > 5
    assert ops.gaussian_noise(x.double(), 10, units="255", seed=0).dtype == torch.float64
    with pytest.raises(ValueError, match="low <= high"):
        ops.gaussian_noise(x, (30, 10), units="255", seed=0)


def test_one_seed_gives_the_same_draws_on_every_device(device):  # conftest: cpu, cuda when present
    x = _image(2)
    ref = ops.gaussian_noise(x, (0, 30), units="255", seed=4)
    got = ops.gaussian_noise(x.to(device), (0, 30), units="255", seed=4)
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), ref, atol=1e-6, rtol=0)
    assert torch.equal(
        ops.random_mask((9, 7), 0.3, seed=2, device=device).cpu(), ops.random_mask((9, 7), 0.3, seed=2)
    )


# ------------------------------------------------------------------------------------------------ JPEG


@pytest.mark.parametrize(("channels", "subsampling"), [(3, "4:2:0"), (3, "4:4:4"), (1, "4:2:0")])
def test_jpeg_equals_a_pillow_round_trip(channels, subsampling):
    x = _image(2, 40, 48)[:, :channels]
    y = ops.jpeg(x, [15, 60], subsampling=subsampling)
    for i, q in enumerate((15, 60)):
        arr = (x[i].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=q, subsampling=subsampling)
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255
        ref = ref[:, :, None] if ref.ndim == 2 else ref
        assert torch.equal(y[i], torch.from_numpy(ref).permute(2, 0, 1))
    assert (y[0] - x[0]).abs().max() > 2 / 255  # real artefacts at q = 15
    assert torch.equal(ops.jpeg(x, 15)[0], y[0]) == (subsampling == "4:2:0")


def test_jpeg_bad_inputs_and_quantisation():
    x = _image(2, 16, 16)
    q = ops.quantize_8bit(torch.tensor([[[[-0.1, 0.5 / 255, 1.5 / 255, 2.0]]]]))
    assert torch.equal(q, torch.tensor([[[[0, 0, 2, 255]]]], dtype=torch.uint8))  # half to even, clamped
    with pytest.raises(ValueError, match=r"quality must be an integer in \[1, 100\]"):
        ops.jpeg(x, 0)
    with pytest.raises(ValueError, match="one per image"):
        ops.jpeg(x, [10, 20, 30])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ops.jpeg(torch.rand(1, 2, 8, 8), 50)
    with pytest.raises(ValueError, match="subsampling must be one of"):
        ops.jpeg(x, 50, subsampling="4:1:1")


# ----------------------------------------------------------------------------------------------- blurs

SCIPY_MODES = {"reflect": "mirror", "replicate": "nearest", "zeros": "constant", "circular": "wrap"}


@pytest.mark.parametrize("padding", list(SCIPY_MODES))
def test_gaussian_and_box_blur_match_scipy(padding):
    x = _image(2, 20, 17).double()
    g = ops.gaussian_blur(x, 9, 1.7, padding=padding)
    b = ops.box_blur(x, 5, padding=padding)
    for i in range(2):
        for c in range(3):
            a = x[i, c].numpy()
            ref_g = ndimage.gaussian_filter(a, 1.7, truncate=4 / 1.7, mode=SCIPY_MODES[padding])
            ref_b = ndimage.uniform_filter(a, 5, mode=SCIPY_MODES[padding])
            np.testing.assert_allclose(g[i, c].numpy(), ref_g, atol=1e-12)
            np.testing.assert_allclose(b[i, c].numpy(), ref_b, atol=1e-12)
    assert ops.gaussian_blur(x.half(), 5, 1.0).dtype == torch.float32  # half computes in float32
    assert torch.autograd.gradcheck(
        lambda t: ops.gaussian_blur(t, 3, 0.8), (x[:1, :1, :6, :6].requires_grad_(),)
    )
    with pytest.raises(ValueError, match="too small for reflect padding"):
        ops.gaussian_blur(torch.rand(1, 1, 4, 4), 21, 3.0)
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        ops.box_blur(x, 4)


def test_blur_is_a_true_convolution():
    x = _image(2, 24, 20)
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1
    assert torch.allclose(ops.blur(x, delta), x, atol=1e-7)
    shift = torch.zeros(5, 5, dtype=torch.float64)
    shift[2, 3] = 1  # mass right of centre moves the image right
    assert torch.allclose(ops.blur(x, shift)[..., 1:], x[..., :-1], atol=1e-7)
    k = ops.random_motion_kernels(2, 7, seed=1)
    y = ops.blur(x.double(), k)
    for i in range(2):
        for c in range(3):  # scipy's convolve with mirrored borders is the oracle
            ref = ndimage.convolve(x[i, c].double().numpy(), k[i].numpy(), mode="mirror")
            assert np.allclose(y[i, c].numpy(), ref, atol=1e-12)
    with pytest.raises(ValueError, match="kernels must be k×k or N×k×k"):
        ops.blur(x, torch.ones(3, 3, 3) / 9)  # 3 kernels for 2 images


def test_camera_shake_kernels_sum_to_one_centred_and_seeded():
    kernels = ops.random_motion_kernels(6, 21, seed=0)
    assert kernels.shape == (6, 21, 21) and kernels.dtype == torch.float64
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(6, dtype=torch.float64), atol=1e-12)
    assert (kernels >= 0).all()
    grid = torch.arange(21, dtype=torch.float64)
    for k in kernels:  # centre of mass at the centre: bilinear splatting keeps the trajectory's mean
        assert abs(float((k.sum(1) * grid).sum()) - 10) < 1e-6
        assert abs(float((k.sum(0) * grid).sum()) - 10) < 1e-6
    assert torch.equal(kernels, ops.random_motion_kernels(6, 21, seed=0))
    assert not torch.equal(kernels[0], kernels[1])
    r2 = (grid - 10).square()  # a longer trajectory spreads the mass further from the centre
    spread = [
        float((ops.camera_shake_kernel(21, length=L, seed=5) * (r2[:, None] + r2[None, :])).sum())
        for L in (3.0, 30.0)
    ]
    assert spread[1] > 3 * spread[0]
    with pytest.raises(ValueError, match="seed must be"):
        ops.camera_shake_kernel(21, seed=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size must be an odd integer"):
        ops.camera_shake_kernel(8, seed=0)


# ----------------------------------------------------------------------------------------------- Bayer


@pytest.mark.parametrize("pattern", ops.BAYER_PATTERNS)
def test_bayer_mask_and_mosaic_follow_the_pattern(pattern):
    mask = ops.bayer_mask(6, 8, pattern)
    assert torch.equal(mask.sum(dim=1), torch.ones(1, 6, 8))  # one colour per site
    channel = {"R": 0, "G": 1, "B": 2}
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        assert mask[0, channel[colour], dy::2, dx::2].eq(1).all()
    assert mask[0, 1].sum() == 2 * mask[0, 0].sum() == 2 * mask[0, 2].sum()  # twice as many greens
    x = _image(2, 6, 8)
    raw = ops.bayer_mosaic(x, pattern)
    assert raw.shape == (2, 1, 6, 8)
    assert torch.equal(raw, (x * mask).sum(1, keepdim=True))


def test_bilinear_demosaicking_keeps_samples_and_is_exact_on_linear_images():
    rows = torch.arange(16.0).view(16, 1) / 40
    cols = torch.arange(20.0).view(1, 20) / 50
    x = torch.stack([0.1 + rows + cols, 0.2 + 0.5 * rows + 0 * cols, 0.3 + cols + 0 * rows]).unsqueeze(0)
    for pattern in ops.BAYER_PATTERNS:
        rgb = ops.demosaic_bilinear(ops.bayer_mosaic(x, pattern), pattern)
        mask = ops.bayer_mask(16, 20, pattern).bool()
        assert torch.allclose(rgb[mask], x[mask])  # recorded samples are kept
        assert torch.allclose(rgb[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-6)  # linear → exact
    with pytest.raises(ValueError, match="raw must have 1 channels"):
        ops.demosaic_bilinear(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="pattern must be one of"):
        ops.bayer_mask(4, 4, "RGBG")
    with pytest.raises(ValueError, match="RGB"):
        ops.bayer_mosaic(torch.rand(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------------- colour


def test_studio_ycbcr_matches_matlab_rgb2ycbcr():
    """MATLAB: rgb2ycbcr(uint8([0 0 0; 255 255 255; 255 0 0; 0 255 0; 0 0 255])) =
    [16 128 128; 235 128 128; 81 90 240; 145 54 34; 41 240 110] (rounded)."""
    rgb = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    ycc = ops.rgb_to_ycbcr(rgb.T[None, :, :, None])[0, :, :, 0].T * 255
    expected = torch.tensor(
        [[16, 128, 128], [235, 128, 128], [81, 90, 240], [145, 54, 34], [41, 240, 110]], dtype=torch.float64
    )
    assert torch.equal(ycc.round(), expected)
    x = _image(2).double()
    torch.testing.assert_close(ops.rgb_to_y(x), ops.rgb_to_ycbcr(x)[:, :1])


def test_full_range_ycbcr_matches_pillow_and_round_trips():
    x = _image(1, 24, 20)
    arr = (x[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    q = torch.from_numpy(arr).permute(2, 0, 1)[None].double() / 255
    pil = np.asarray(Image.fromarray(arr).convert("YCbCr"), dtype=np.float64)
    ours = ops.rgb_to_ycbcr(q, swing="full")[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - pil).max() <= 1.0  # Pillow's integer arithmetic: within one level
    luma = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.float64)
    assert np.abs(ops.rgb_to_y(q, swing="full")[0, 0].numpy() * 255 - luma).max() <= 1.0
    for swing in ops.SWINGS:
        torch.testing.assert_close(ops.ycbcr_to_rgb(ops.rgb_to_ycbcr(q, swing=swing), swing=swing), q)
    with pytest.raises(ValueError, match="swing must be one of"):
        ops.rgb_to_ycbcr(q, swing="pc")
    with pytest.raises(ValueError, match="RGB"):
        ops.rgb_to_y(q[:, :1])


def test_is_grayscale():
    gray = _image(1, c=1).expand(1, 3, -1, -1)
    colour = _image(1)
    both = torch.cat([gray, colour])
    assert ops.is_grayscale(both).tolist() == [True, False]
    assert ops.is_grayscale(_image(2, c=1)).tolist() == [True, True]
    nearly = gray.clone()
    nearly[0, 0, 3, 3] += 0.5 / 255
    assert ops.is_grayscale(nearly).tolist() == [False]
    assert ops.is_grayscale(nearly, tol=1 / 255).tolist() == [True]
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ops.is_grayscale(torch.rand(1, 2, 4, 4))


# ----------------------------------------------------------------------------------------------- masks


def test_random_mask():
    m = ops.random_mask((100, 120), 0.5, seed=1)
    assert m.shape == (1, 1, 100, 120) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(m.mean()) - 0.5) < 0.02
    oracle = torch.rand((1, 1, 100, 120), generator=torch.Generator().manual_seed(1)) >= 0.5
    assert torch.equal(m, oracle.float())
    assert float(ops.random_mask((50, 50), 0.0, seed=0).min()) == 1.0
    assert ops.random_mask((5, 5), 0.1, seed=0, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match=r"drop must be a fraction in \[0, 1\)"):
        ops.random_mask((8, 8), 1.0, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        ops.random_mask((8, 8), 0.5, seed=None)  # type: ignore[arg-type]
