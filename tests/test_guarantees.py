"""Issue 12, "nothing wrong passes silently": generated bad and degenerate inputs per class of failure.

Every test here is parametrised over the entry points we can enumerate (the loss registry, the metric
registry, the loaders, the image entry points) so that a new entry point is covered by adding it to the
lists at the top, or automatically when it comes from a registry.
"""

from __future__ import annotations

import io as _pyio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import featstat
from featstat import io as fio
from featstat import losses, metrics

G = torch.Generator().manual_seed(12)


def rand(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=G)


# ------------------------------------------------------------------------------------ 1. degenerate scores

DEGENERATE_NORMALS = {
    "zeros": torch.zeros(2, 3, 16, 16),
    "zeros-one-pixel": torch.cat([torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)]),
}
DEGENERATE_ENCODED = {f"grey{v}": torch.full((2, 3, 16, 16), v) for v in (0.5,)}


@pytest.mark.parametrize("stat", list(metrics.ANGULAR_STATISTICS))
@pytest.mark.parametrize("case", [*DEGENERATE_NORMALS, *DEGENERATE_ENCODED])
def test_zero_length_normals_never_score_perfect(stat, case):
    encoded = case in DEGENERATE_ENCODED
    pred = (DEGENERATE_ENCODED if encoded else DEGENERATE_NORMALS)[case]
    target = rand(2, 3, 16, 16) if encoded else rand(2, 3, 16, 16) * 2 - 1
    fn = metrics.get_metric(f"angular_{stat}").function
    value = fn(pred, target, encoded=encoded, reduction="none")
    perfect = 100.0 if metrics.ANGULAR_STATISTICS[stat] else 0.0
    zero_images = [0, 1] if case != "zeros-one-pixel" else [0]
    for i in zero_images:
        assert float(value[i]) != pytest.approx(perfect, abs=1e-3), (case, stat, value)


@pytest.mark.parametrize("level", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("target_kind", ["noise", "stripes", "checker"])
@pytest.mark.parametrize("window", ["hann", None])
def test_flat_image_has_positive_spectrum_distance(level, target_kind, window):
    h = 64
    if target_kind == "noise":
        target = rand(1, 3, h, h)
    elif target_kind == "stripes":
        target = (torch.arange(h) % 4 < 2).float().expand(1, 3, h, h).contiguous()
    else:
        ij = torch.arange(h)
        # period 4 (a checker of period 2 sits in the spectrum's corner, beyond the rings' 0.5 cycles/pixel)
        target = (((ij[:, None] // 2) + (ij[None, :] // 2)) % 2).float().expand(1, 3, h, h).contiguous()
    flat = torch.full((1, 3, h, h), level)
    d = metrics.spectrum_distance(flat, target, window=window)
    assert math.isfinite(float(d)) and float(d) > 1.0
    assert float(metrics.spectrum_distance(target, target, window=window)) == pytest.approx(0, abs=1e-4)


# ---------------------------------------------------------------------------- 2. NaN in the contextual loss

CX_CASES = [
    (side, chunk, distance, spatial)
    for side in ("x", "y")
    for chunk in (1, 5, 64, 1 << 20)
    for distance in ("cosine", "l2")
    for spatial in (0.0, 0.1)
]


@pytest.mark.parametrize(("side", "chunk", "distance", "spatial"), CX_CASES)
def test_contextual_nan_anywhere_gives_nan(side, chunk, distance, spatial):
    from featstat.losses.contextual import contextual_similarity

    g = torch.Generator().manual_seed(chunk + len(distance))
    x, y = torch.rand(2, 4, 6, 6, generator=g), torch.rand(2, 4, 5, 7, generator=g)
    t = x if side == "x" else y
    # a NaN at a position late in the row order (beyond the first chunk when chunks are small)
    t[1, int(torch.randint(4, (1,), generator=g)), -1, -2] = float("nan")
    cx = contextual_similarity(x, y, 0.1, distance, spatial_weight=spatial, chunk_size=chunk)
    assert bool(cx[1].isnan()), cx
    assert 0.0 < float(cx[0]) <= 1.0
    loss = losses.ContextualLoss(0.1, distance, spatial_weight=spatial, chunk_size=chunk, reduction="none")
    with featstat.value_checks(False):  # the kernel's guarantee, below the module's value check
        assert bool(loss(x, y)[1].isnan())
    with pytest.raises(ValueError, match=f"{'pred' if side == 'x' else 'target'} contains NaN"):
        loss(x, y)  # value checks on (default): the module's public boundary refuses NaN


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_contextual_similarity_stays_in_unit_interval(chunk):
    from featstat.losses.contextual import contextual_similarity

    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(3, 5, 4, 4, generator=g) * 10 ** (seed - 2)
        y = torch.randn(1, 5, 3, 5, generator=g)
        cx = contextual_similarity(x, y, 0.1 * (seed + 1), chunk_size=chunk)
        assert bool(((cx > 0) & (cx <= 1)).all()), cx


# ------------------------------------------------------------------------------ 3. image-level value checks

BAD_IMAGES = {
    "nan": lambda x: x.index_put_((torch.tensor(0), torch.tensor(1), torch.tensor(3), torch.tensor(3)),
                                  torch.tensor(float("nan"))),
    "inf": lambda x: x.index_put_((torch.tensor(0), torch.tensor(0), torch.tensor(0), torch.tensor(5)),
                                  torch.tensor(float("inf"))),
    "0-255": lambda x: x * 255,
    "[-1,1]": lambda x: x * 2 - 1,
}  # fmt: skip


def _entry_points():
    vgg = featstat.vgg19(["relu1_1"], weights=None)
    obj = featstat.Objective([featstat.Term("p", featstat.PerceptualLoss(), 1.0, vgg, ["relu1_1"])])
    obj_pix = featstat.Objective([featstat.Term("l1", featstat.L1Loss(), 1.0)])
    good = torch.rand(1, 3, 16, 16)
    eps = {
        "extractor": lambda bad: vgg(bad),
        "objective-pred": lambda bad: obj(bad, good),
        "objective-target": lambda bad: obj(good, bad),
        "objective-pixel-pred": lambda bad: obj_pix(bad, good),
        "write_image": lambda bad, _tmp=None: fio.write_image(Path(os.environ.get("TMPDIR", "/tmp"))
                                                              / f"fs-guarantee-{os.getpid()}.png", bad),
    }  # fmt: skip
    return eps


@pytest.fixture(scope="module")
def entry_points():
    return _entry_points()


ENTRY_NAMES = ["extractor", "objective-pred", "objective-target", "objective-pixel-pred", "write_image"]


@pytest.mark.parametrize("bad", list(BAD_IMAGES))
@pytest.mark.parametrize("entry", ENTRY_NAMES)
def test_image_entry_points_refuse_bad_values(entry_points, entry, bad):
    x = BAD_IMAGES[bad](torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"NaN or Inf|values in \[0, 1\]"):
        entry_points[entry](x)


@pytest.mark.parametrize("bad", ["0-255", "[-1,1]"])
@pytest.mark.parametrize("entry", ENTRY_NAMES)
def test_value_check_switch_turns_checks_off(entry_points, entry, bad):
    x = BAD_IMAGES[bad](torch.rand(1, 3, 16, 16))
    assert featstat.value_checks_enabled()
    with featstat.value_checks(False):
        entry_points[entry](x)  # no error: checks are off in the block
    assert featstat.value_checks_enabled()
    previous = featstat.set_value_checks(False)
    try:
        entry_points[entry](x)
    finally:
        featstat.set_value_checks(previous)


@pytest.mark.slow  # a fresh interpreter importing torch per case: 7-14 s each on two busy cores
@pytest.mark.parametrize(("value", "enabled"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_value_check_environment_variable(value, enabled):
    code = "import featstat; print(featstat.value_checks_enabled())"
    env = {**os.environ, "FEATSTAT_VALUE_CHECKS": value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(enabled)


# ---------------------------------------------- 4 + 7. module forms check what functional forms check

PAIR_LOSSES = [n for n in losses.LOSSES if n not in ("diversity", "total_variation")]


def _make(name):
    return losses.LOSSES[name]()


def _pair_bad_cases():
    p = torch.rand(2, 4, 8, 8)
    return {
        "channels": (p, torch.rand(2, 8, 8, 8)),
        "batch": (p, torch.rand(3, 4, 8, 8)),
        "meta-target": (p, torch.empty(2, 4, 8, 8, device="meta")),
        "rank": (p, torch.rand(4, 8, 8)),
        "int-target": (p, torch.ones(2, 4, 8, 8, dtype=torch.int64)),
        "not-a-tensor": (p, [[1.0]]),
    }


@pytest.mark.parametrize("case", list(_pair_bad_cases()))
@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_every_loss_module_checks_its_pair(name, case):
    pred, target = _pair_bad_cases()[case]
    with pytest.raises(ValueError):
        _make(name)(pred, target)


@pytest.mark.parametrize("projection", ["identity", "sphere", "r2p", "rpp"])
def test_projected_modules_refuse_channel_mismatch(projection):
    kw = {"num_projections": 8} if projection in ("sphere", "r2p", "rpp") else {}
    loss = losses.ProjectedDistributionLoss(projection, **kw)
    with pytest.raises(ValueError, match="channels"):
        loss(torch.rand(1, 4, 8, 8), torch.rand(1, 8, 8, 8))


NAN = float("nan")
CFLOAT = torch.cfloat
BAD_OPTIONS = [
    ("cx-bandwidth-tiny", lambda: losses.ContextualLoss(bandwidth=1e-40)),
    ("cx-bandwidth-nan", lambda: losses.ContextualLoss(bandwidth=NAN)),
    ("cx-bandwidth-str", lambda: losses.ContextualLoss(bandwidth="0.1")),
    ("cx-sample-bool", lambda: losses.ContextualLoss(sample_size=True)),
    ("cx-sample-float", lambda: losses.ContextualLoss(sample_size=65.0)),
    ("cx-chunk-zero", lambda: losses.ContextualLoss(chunk_size=0)),
    ("cx-fn-bandwidth-tiny", lambda: featstat.contextual_loss(rand(1, 2, 3, 3), rand(1, 2, 3, 3), 1e-40)),
    ("lf-sigma-tiny", lambda: losses.LowFrequencyL2Loss(sigma=1e-200)),
    ("lf-sigma-huge", lambda: losses.LowFrequencyL2Loss(sigma=1e300)),
    ("lf-sigma-nan", lambda: losses.LowFrequencyL2Loss(sigma=NAN)),
    ("lf-kernel-1e9", lambda: losses.LowFrequencyL2Loss(kernel_size=10**9)),
    ("blur-kernel-1e9", lambda: losses.pixel.gaussian_blur(rand(1, 1, 8, 8), kernel_size=10**9 + 1)),
    ("ssim-k0", lambda: metrics.SSIM(k1=0.0, k2=0.0)),
    ("ssim-kneg", lambda: metrics.SSIM(k1=-0.01)),
    ("ssim-fn-k0", lambda: metrics.ssim(rand(1, 3, 16, 16), rand(1, 3, 16, 16), k1=0.0, k2=0.0)),
    ("ssim-win-1e9", lambda: metrics.SSIM(win_size=10**9 + 1)),
    ("msssim-nan-weights", lambda: metrics.MSSSIM(weights=[NAN, 0.2, 0.3])),
    ("msssim-str-weights", lambda: metrics.MSSSIM(weights="abc")),
    ("pdl-nan-matrix", lambda: losses.ProjectedDistributionLoss(projections=torch.full((3, 4), NAN))),
    ("pdl-fn-nan-matrix", lambda: featstat.projected_distribution_loss(
        rand(1, 4, 4, 4), rand(1, 4, 4, 4), projections=torch.full((3, 4), NAN))),
    ("pdl-count-1e9", lambda: losses.ProjectedDistributionLoss("sphere", 10**9)),
    ("gram-nan-mask", lambda: featstat.gram_loss(
        rand(1, 2, 4, 4), rand(1, 2, 4, 4), mask_pred=torch.full((1, 1, 4, 4), NAN),
        mask_target=torch.ones(1, 1, 4, 4))),
    ("term-weight-nan", lambda: featstat.Term("a", featstat.L1Loss(), NAN)),
    ("term-weight-inf", lambda: featstat.Term("a", featstat.L1Loss(), float("inf"))),
    ("term-weight-str", lambda: featstat.Term("a", featstat.L1Loss(), "1")),
    ("term-layer-weight-nan", lambda: featstat.Term(
        "a", featstat.L1Loss(), 1.0, featstat.vgg19(["relu1_1"], weights=None), ["relu1_1"],
        {"relu1_1": NAN})),
    ("term-layer-weights-list", lambda: featstat.Term(
        "a", featstat.L1Loss(), 1.0, featstat.vgg19(["relu1_1"], weights=None), ["relu1_1"], [1.0])),
    ("term-backbone-no-layers", lambda: featstat.Term(
        "a", featstat.L1Loss(), 1.0, featstat.vgg19(["relu1_1"], weights=None), [])),
    ("device-gpu", lambda: fio.to_tensor(np.zeros((4, 4), np.uint8), device="gpu")),
    ("device-cuda-index", lambda: fio.to_tensor(np.zeros((4, 4), np.uint8), device="cuda:3")),
]  # fmt: skip


@pytest.mark.parametrize("make", [m for _, m in BAD_OPTIONS], ids=[n for n, _ in BAD_OPTIONS])
def test_bad_numeric_and_typed_options_are_refused(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("device", ["gpu", "cuda:3", "tpu:0", "banana"])
def test_bad_device_strings_name_the_argument(tmp_path, device):
    if device == "cuda:3" and torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    p = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(p)
    with pytest.raises(ValueError, match="device"):
        fio.read_image(p, device=device)


@pytest.mark.parametrize(
    ("mode", "values"),
    [("F", [-0.5, 0.5]), ("F", [0.0, 255.0]), ("F", [0.0, float("nan")]), ("I", [-7, 3])],
)
def test_unscaled_tiffs_are_refused_naming_the_file(tmp_path, mode, values):
    arr = np.array([values * 8] * 4, dtype=np.float32 if mode == "F" else np.int32)
    p = tmp_path / f"x_{mode}.tif"
    Image.fromarray(arr, mode=mode).save(p)
    with pytest.raises(ValueError, match="x_"):
        fio.read_image(p, channels=1)


# --------------------------------------------------------------------------- 6. damaged files, every loader


def _tensor_file(obj: object) -> bytes:
    buf = _pyio.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


GOOD_STATE = {"0.weight": torch.randn(64, 3, 3, 3), "0.bias": torch.zeros(64)}


def _damaged() -> dict[str, tuple[str, bytes]]:
    good = _tensor_file(GOOD_STATE)
    from safetensors.torch import save as st_save

    st = st_save({k: v.contiguous() for k, v in GOOD_STATE.items()})
    return {
        "empty": (".pth", b""),
        "truncated-zip": (".pth", good[: len(good) // 2]),
        "text": (".pth", b"this is not a weights file\n" * 10),
        "random-bytes": (".pth", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))),
        "list": (".pth", _tensor_file([torch.ones(3)])),
        "tensor": (".pth", _tensor_file(torch.ones(3))),
        "int": (".pth", _tensor_file(3)),
        "nan-weights": (".pth", _tensor_file({**GOOD_STATE, "0.bias": torch.full((64,), NAN)})),
        "complex-weights": (".pth", _tensor_file({**GOOD_STATE, "0.bias": torch.zeros(64, dtype=CFLOAT)})),
        # (complex: a tensor type torch.save keeps, which no backbone can use)
        "st-truncated": (".safetensors", st[: len(st) // 2]),
        "st-bad-header": (".safetensors", (50).to_bytes(8, "little") + b"{not json" + b" " * 60),
        "st-text": (".safetensors", b"hello world, not safetensors"),
        "st-empty": (".safetensors", b""),
    }  # fmt: skip


def _load_weights(path):
    from featstat.features.weights import load_weights

    return load_weights(path)


def _extractor(path):
    return featstat.vgg19(["relu1_1"], weights=str(path))


WEIGHT_LOADERS = {
    "read_state_dict": lambda p: featstat.features.weights.read_state_dict(p),
    "load_weights": _load_weights,
    "extractor": _extractor,
}
DAMAGES = list(_damaged())


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("loader", list(WEIGHT_LOADERS))
def test_damaged_weight_files_raise_one_error_naming_the_file(tmp_path, loader, damage):
    suffix, data = _damaged()[damage]
    p = tmp_path / f"damaged-{damage}{suffix}"
    p.write_bytes(data)
    with pytest.raises(featstat.FileLoadError, match=f"damaged-{damage}"):
        WEIGHT_LOADERS[loader](p)


CHECKPOINT_DAMAGES = [d for d in DAMAGES if not d.startswith("st-") and "weights" not in d]


@pytest.mark.parametrize("damage", [*CHECKPOINT_DAMAGES, "wrong-keys"])
def test_damaged_checkpoints_raise_one_error_naming_the_file(tmp_path, damage):
    from featstat.engine.runs import load_checkpoint

    p = tmp_path / f"ckpt-{damage}.pt"
    if damage == "wrong-keys":
        p.write_bytes(_tensor_file({"modle": {}, "stpe": 3}))
        state = load_checkpoint(p)
        with pytest.raises(featstat.FileLoadError, match=f"ckpt-{damage}"):
            state["model"]
        return
    p.write_bytes(_damaged()[damage][1])
    with pytest.raises(featstat.FileLoadError, match=f"ckpt-{damage}"):
        load_checkpoint(p)


# ------------------------------------------------------------------------------------- 8. decompression bombs


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch, mode):
    p = tmp_path / f"bomb-{mode}.png"
    Image.new(mode, (300, 200)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 200 - 1)
    with pytest.raises(ValueError, match=f"bomb-{mode}.*max_pixels=None"):
        fio.read_image(p)
    with pytest.raises(ValueError, match="bomb"):
        fio.read_image(p, max_pixels=1000)
    assert fio.read_image(p, max_pixels=None).shape == (1, 3, 200, 300)


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "I;16", "F"])
def test_pixels_are_converted_in_float32(mode):
    img = Image.new(mode, (8, 4))
    arr, _ = fio._pil_to_float(img)
    assert arr.dtype == np.float32


# ----------------------------------------------------------------------------- 12. killed atomic writes


_WRITER = """
import sys, time
from featstat._atomic import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write(b"x" * 1_000_000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("name", ["out.pt", "image.png", "weird name.bin"])
def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path, name):
    from featstat._atomic import atomic_write_bytes

    target = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        left = [f for f in tmp_path.iterdir() if f.name.startswith(f".{name}.")]
        assert len(left) == 1  # the live writer's temporary
        atomic_write_bytes(tmp_path / "other.pt", b"1")  # another target: never touched
        atomic_write_bytes(target, b"first")  # the writer still runs: its file must stay
        assert left[0].exists()
    finally:
        proc.kill()
        proc.wait()
    assert left[0].exists()  # SIGKILL: no cleanup was possible
    unrelated = tmp_path / f".{name}.keep.tmp"
    unrelated.write_bytes(b"not ours")
    atomic_write_bytes(target, b"second")
    assert not left[0].exists()
    assert unrelated.exists()
    assert target.read_bytes() == b"second"
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([name, "other.pt", unrelated.name])


def test_foreign_host_temporaries_are_kept_unless_old(tmp_path):
    from featstat._atomic import FOREIGN_STALE_AFTER, atomic_write_bytes

    target = tmp_path / "a.pt"
    young = tmp_path / ".a.pt.00000000.1.abcd1234.tmp"
    old = tmp_path / ".a.pt.00000000.2.abcd1234.tmp"
    for f in (young, old):
        f.write_bytes(b"x")
    past = time.time() - FOREIGN_STALE_AFTER - 10
    os.utime(old, (past, past))
    atomic_write_bytes(target, b"z")
    assert young.exists() and not old.exists()
