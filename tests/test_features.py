"""Feature extractors, layer tables, backbones, raw patches and sampling.

Real-weight checks use ../shared (the Caffe VGG-19 files and their reference activations) and are skipped
without it; everything else runs on seeded random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from featstat import features
from featstat.features import (
    FeatureExtractor,
    PatchExtractor,
    build_backbone,
    deepest_layer,
    gather_positions,
    layer_index,
    layer_names,
    sample_features,
    sample_positions,
)

# ---------------------------------------------------------------------------------------------------------
# Reference activations from ../shared/weights/README.md: layer → (mean, std, first 4 channels at centre)
REFERENCE = {
    "vgg19-caffe-normalised-to-relu3_1": {
        "relu1_1": (0.889093, 1.63774, (0.3083, 0, 0, 0.71798)),
        "relu1_2": (0.797428, 1.477, (0.73922, 1.3779, 0.95566, 0)),
        "relu2_1": (0.864989, 1.41194, (1.7934, 0, 0, 0.81092)),
        "relu2_2": (0.903148, 2.12913, (6.6534, 0, 0, 3.0324)),
        "relu3_1": (0.794437, 1.75079, (2.9953, 0, 1.3882, 0)),
    },
    "vgg19-caffe-to-relu2_2": {
        "relu1_1": (19.7074, 43.3255, (6.1438, 0, 0, 16.005)),
        "relu1_2": (99.5554, 186.967, (38.95, 104.51, 270.1, 0)),
        "relu2_1": (105.225, 152.081, (47.695, 0, 0, 147.37)),
        "relu2_2": (98.6651, 217.87, (562.71, 0, 0, 405.31)),
    },
}
SIZES = {"relu1_1": 512, "relu1_2": 512, "relu2_1": 256, "relu2_2": 256, "relu3_1": 128}
CHANNELS = {"relu1_1": 64, "relu1_2": 64, "relu2_1": 128, "relu2_2": 128, "relu3_1": 256}


def read_rgb(path: Path) -> torch.Tensor:
    """1×3×H×W float32 RGB in [0, 1] (a local reader: the tests do not depend on featstat.io)."""
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


_REAL: dict[str, dict[str, torch.Tensor]] = {}  # one 512² forward per file for the whole module


def real_features(shared: Path, name: str) -> dict[str, torch.Tensor]:
    """Features of F16_GT.png through the real file ``name``, loaded by registry name via FEATSTAT_WEIGHTS."""
    if name not in _REAL:
        folder = Path(os.environ["FEATSTAT_WEIGHTS"])
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / f"{name}.pth"
        if not link.exists():
            link.symlink_to(shared / "weights" / f"{name}.pth")
        extractor = features.vgg19(list(REFERENCE[name]), weights=name)
        assert extractor.preprocessing == "caffe"
        with torch.no_grad():
            _REAL[name] = extractor(read_rgb(shared / "images" / "dip" / "denoising" / "F16_GT.png"))
    return _REAL[name]


@pytest.mark.slow  # up to ~7 s per case with the real weights present
@pytest.mark.parametrize(
    ("name", "layer"), [(name, layer) for name, table in REFERENCE.items() for layer in table]
)
def test_real_weights_match_reference_activations(shared, name, layer):
    feats = real_features(shared, name)[layer]
    mean, std, centre = REFERENCE[name][layer]
    size = SIZES[layer]
    assert feats.shape == (1, CHANNELS[layer], size, size)
    assert feats.mean().item() == pytest.approx(mean, rel=1e-3)
    assert feats.std().item() == pytest.approx(std, rel=1e-3)
    seen = feats[0, :4, size // 2, size // 2]
    torch.testing.assert_close(seen, torch.tensor(centre, dtype=seen.dtype), rtol=0, atol=1e-3 * std)


def test_real_weights_by_explicit_path_equal_registry_name(shared, tmp_path):
    for name in REFERENCE:
        link = tmp_path / "weights" / f"{name}.pth"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(shared / "weights" / f"{name}.pth")
        by_path = features.vgg19(["relu2_2"], weights=shared / "weights" / f"{name}.pth")
        by_name = features.vgg19(["relu2_2"], weights=name)
        assert by_path.preprocessing == by_name.preprocessing == "caffe"  # found from the file name
        assert by_path.cache_key == by_name.cache_key
        for a, b in zip(by_path.state_dict().values(), by_name.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_normalised_file_is_a_per_channel_rescaling_of_the_original(shared):
    """README: normalised = original × a positive per-channel scale, so relu1_1 maps differ by one factor."""
    image = read_rgb(shared / "images" / "dip" / "denoising" / "F16_GT.png")[..., 200:264, 200:264]
    a = features.vgg19(["relu1_1"], weights=shared / "weights" / "vgg19-caffe-normalised-to-relu3_1.pth")(
        image
    )
    b = features.vgg19(["relu1_1"], weights=shared / "weights" / "vgg19-caffe-to-relu2_2.pth")(image)
    a, b = a["relu1_1"][0].flatten(1), b["relu1_1"][0].flatten(1)
    alive = b.abs().amax(1) > 0
    scale = (a[alive] * b[alive]).sum(1) / (b[alive] ** 2).sum(1)
    assert (scale > 0).all()
    torch.testing.assert_close(a[alive], scale[:, None] * b[alive], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Layer tables and backbones


def test_layer_tables_match_torchvision_indices():
    assert layer_index("vgg19", "conv1_1") == 0 and layer_index("vgg19", "relu1_1") == 1
    assert layer_index("vgg19", "pool1") == 4 and layer_index("vgg19", "conv2_1") == 5
    assert layer_index("vgg19", "conv3_1") == 10 and layer_index("vgg19", "relu4_2") == 22
    assert layer_index("vgg19", "conv5_4") == 34 and layer_index("vgg19", "pool5") == 36
    assert len(layer_names("vgg19")) == 37 and len(layer_names("vgg16")) == 31
    assert layer_index("vgg16", "conv5_3") == 28 and layer_index("vgg16", "relu4_3") == 22
    assert layer_names("alexnet")[:6] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert layer_index("alexnet", "conv5") == 10 and layer_index("alexnet", "pool5") == 12
    assert layer_index("squeezenet1_1", "fire2") == 3 and layer_index("squeezenet1_1", "pool5") == 8
    assert layer_index("squeezenet1_1", "fire9") == 12
    assert deepest_layer("vgg19", ["relu3_1", "conv1_1", "pool2"]) == "relu3_1"


def test_unknown_layer_lists_names_and_suggests():
    with pytest.raises(ValueError, match=r"layers: unknown vgg19 layer 'relu3_5'.*did you mean.*Valid names"):
        layer_index("vgg19", "relu3_5")
    with pytest.raises(ValueError, match="arch must be one of"):
        layer_names("vgg18")


CONV_INDICES = {
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "alexnet": [0, 3, 6, 8, 10],
}
#: parameters in torchvision's ``features`` (from torchvision's model summaries)
PARAMS = {"vgg19": 20_024_384, "vgg16": 14_714_688, "alexnet": 2_469_696, "squeezenet1_1": 722_496}


@pytest.mark.parametrize("arch", list(PARAMS))
def test_backbone_state_dict_keys_match_torchvision(arch):
    trunk = build_backbone(arch)
    keys = list(trunk.state_dict())
    if arch in CONV_INDICES:
        assert keys == [f"{i}.{p}" for i in CONV_INDICES[arch] for p in ("weight", "bias")]
    else:
        fires = [
            f"{i}.{m}.{p}"
            for i in (3, 4, 6, 7, 9, 10, 11, 12)
            for m in ("squeeze", "expand1x1", "expand3x3")
            for p in ("weight", "bias")
        ]
        assert keys == ["0.weight", "0.bias", *fires]
    assert sum(p.numel() for p in trunk.parameters()) == PARAMS[arch]


def _vgg_expected(arch: str, size: int) -> dict[str, tuple[int, int]]:
    out = {}
    for name in layer_names(arch):
        block = int(name[4])  # conv3_1, relu3_1, pool3 → block 3
        channels = min(64 * 2 ** (block - 1), 512)
        side = size // 2 ** (block if name.startswith("pool") else block - 1)
        out[name] = (channels, side)
    return out


EXPECTED_64 = {
    "vgg19": _vgg_expected("vgg19", 64),
    "vgg16": _vgg_expected("vgg16", 64),
    "alexnet": {
        "conv1": (64, 15),
        "relu1": (64, 15),
        "pool1": (64, 7),
        "conv2": (192, 7),
        "relu2": (192, 7),
        "pool2": (192, 3),
        "conv3": (384, 3),
        "relu3": (384, 3),
        "conv4": (256, 3),
        "relu4": (256, 3),
        "conv5": (256, 3),
        "relu5": (256, 3),
        "pool5": (256, 1),
    },
    "squeezenet1_1": {
        "conv1": (64, 31),
        "relu1": (64, 31),
        "pool1": (64, 15),
        "fire2": (128, 15),
        "fire3": (128, 15),
        "pool3": (128, 7),
        "fire4": (256, 7),
        "fire5": (256, 7),
        "pool5": (256, 3),
        "fire6": (384, 3),
        "fire7": (384, 3),
        "fire8": (512, 3),
        "fire9": (512, 3),
    },
}


@pytest.mark.parametrize("arch", list(EXPECTED_64))
def test_every_layer_has_the_right_shape(arch):
    extractor = FeatureExtractor(arch, layer_names(arch), weights=None)
    with torch.no_grad():
        feats = extractor(torch.rand(2, 3, 64, 64))
    assert list(feats) == layer_names(arch)
    for name, (channels, side) in EXPECTED_64[arch].items():
        assert feats[name].shape == (2, channels, side, side), name
    assert (feats[layer_names(arch)[1]] >= 0).all()  # relu


@pytest.mark.parametrize(
    ("arch", "layer", "size"),
    [
        ("vgg19", "pool5", 32),
        ("vgg19", "relu4_4", 8),
        ("alexnet", "pool5", 63),
        ("squeezenet1_1", "fire9", 17),
    ],
)
def test_min_size_is_exact(arch, layer, size):
    extractor = FeatureExtractor(arch, [layer], weights=None)
    assert extractor.min_size == size
    assert min(extractor(torch.rand(1, 3, size, size))[layer].shape[-2:]) >= 1
    with pytest.raises(ValueError, match=rf"images must be at least {size}×{size}.*{layer}"):
        extractor(torch.rand(1, 3, size - 1, size + 10))
    with pytest.raises(RuntimeError):  # the backbone itself cannot run there: the bound is not too strict
        extractor.backbone(torch.rand(1, 3, size - 1, size - 1))


def test_truncation_stops_at_deepest_requested_layer():
    extractor = features.vgg19(["relu1_1", "relu3_1", "conv2_2"], weights=None)
    assert len(extractor.backbone) == layer_index("vgg19", "relu3_1") + 1
    assert extractor.layers == ["relu1_1", "relu3_1", "conv2_2"]
    assert list(extractor(torch.rand(1, 3, 16, 16))) == ["relu1_1", "relu3_1", "conv2_2"]
    assert len(features.squeezenet1_1(["fire3"], weights=None).backbone) == 5


def test_tapped_conv_is_not_overwritten_by_its_relu():
    feats = features.vgg19(["conv1_1", "relu1_1"], weights=None)(torch.rand(1, 3, 8, 8))
    assert (feats["conv1_1"] < 0).any()
    torch.testing.assert_close(feats["relu1_1"], feats["conv1_1"].clamp_min(0))


def test_random_weights_are_deterministic_per_seed():
    x = torch.rand(1, 3, 32, 32)
    a = features.vgg19(["relu2_1"], weights=None, seed=3)
    b = features.vgg19(["relu2_1"], weights=None, seed=3)
    c = features.vgg19(["relu2_1"], weights=None, seed=4)
    deep = features.vgg19(["relu5_1"], weights=None, seed=3)
    assert torch.equal(a(x)["relu2_1"], b(x)["relu2_1"])
    assert not torch.equal(a(x)["relu2_1"], c(x)["relu2_1"])
    assert torch.equal(a(x)["relu2_1"], deep.with_layers(["relu2_1"])(x)["relu2_1"])  # same for any depth
    w = a.backbone[0].weight
    assert w.std().item() == pytest.approx((2 / 27) ** 0.5, rel=0.15)  # Kaiming normal, fan-in
    assert (a.backbone[0].bias == 0).all()
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(
        features.alexnet(["conv1"], weights=None, seed=g1).backbone[0].weight,
        features.alexnet(["conv1"], weights=None, seed=g2).backbone[0].weight,
    )


def test_avg_and_max_pooling_differ():
    x = torch.rand(1, 3, 16, 16)
    mx = features.vgg19(["pool1"], weights=None, pooling="max")
    avg = features.vgg19(["pool1"], weights=None, pooling="avg")
    assert isinstance(mx.backbone[4], torch.nn.MaxPool2d) and isinstance(avg.backbone[4], torch.nn.AvgPool2d)
    assert torch.equal(mx.backbone[0].weight, avg.backbone[0].weight)
    a, b = mx(x)["pool1"], avg(x)["pool1"]
    assert a.shape == b.shape and (a >= b).all() and not torch.equal(a, b)
    assert mx.cache_key != avg.cache_key


def test_frozen_eval_and_gradients_reach_the_image():
    extractor = features.vgg16(["relu2_2"], weights=None)
    assert not any(p.requires_grad for p in extractor.parameters())
    extractor.train()
    assert not extractor.training and not extractor.backbone.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    extractor(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_preprocessing_exact_values():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.25], [1.0, 0.1]]).view(1, 3, 1, 2)  # R, G, B channels
    caffe = features.vgg19(["relu1_1"], weights=None, preprocessing="caffe").preprocess(x)
    expected_caffe = torch.stack(
        [x[:, 2] * 255 - 103.939, x[:, 1] * 255 - 116.779, x[:, 0] * 255 - 123.68], 1
    )
    torch.testing.assert_close(caffe, expected_caffe)
    assert caffe[0, 0, 0, 0].item() == pytest.approx(255 - 103.939)  # blue first
    tv = features.vgg19(["relu1_1"], weights=None).preprocess(x)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(tv, (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert features.vgg19(["relu1_1"], weights=None).preprocessing == "torchvision"  # default for random


def test_dtype_path():
    x = torch.rand(1, 3, 16, 16)
    extractor = features.vgg19(["relu2_1"], weights=None)
    ref = extractor(x)["relu2_1"]
    double = features.vgg19(["relu2_1"], weights=None, dtype=torch.float64)
    out = double(x)["relu2_1"]  # float32 images are cast to the parameters' dtype
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), ref, rtol=1e-4, atol=1e-5)
    assert extractor.to(torch.float64)(x.double())["relu2_1"].dtype == torch.float64
    half = features.vgg19(["relu2_1"], weights=None, dtype=torch.bfloat16)(x)["relu2_1"]
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), ref, rtol=0.05, atol=0.05 * ref.abs().max().item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_agree():
    x = torch.rand(2, 3, 32, 32)
    cpu = features.vgg19(["relu1_2", "relu3_1"], weights=None, preprocessing="caffe")
    gpu = features.vgg19(["relu1_2", "relu3_1"], weights=None, preprocessing="caffe", device="cuda")
    reference = cpu(x)
    for name, value in gpu(x.cuda()).items():  # cuDNN may use TF32: compare relative to the map's scale
        assert value.device.type == "cuda"
        scale = reference[name].abs().max().item()
        torch.testing.assert_close(value.cpu(), reference[name], rtol=0, atol=5e-3 * scale)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_an_extractor_is_never_moved_to_the_images_device():
    """Images on another device are refused with the fix; the user's module stays where it is."""
    from featstat.features import RandomFilterExtractor

    x = torch.rand(1, 3, 64, 64, device="cuda")  # above the largest random filter (55)
    for extractor in (features.vgg19(["relu1_1"], weights=None), RandomFilterExtractor(seed=0)):
        with pytest.raises(ValueError, match=r"move the extractor with \.to\(images\.device\)"):
            extractor(x)
        assert next(iter(extractor.buffers())).device.type == "cpu"


def test_cache_key_and_with_layers_share_one_backbone():
    a = features.vgg19(["relu1_1", "relu3_1"], weights=None, seed=1)
    b = features.vgg19(["relu2_1"], weights=None, seed=1)
    assert a.cache_key == b.cache_key and hash(a.cache_key) == hash(b.cache_key)
    assert a.cache_key != features.vgg19(["relu2_1"], weights=None, seed=2).cache_key
    assert a.cache_key != features.vgg19(["relu2_1"], weights=None, seed=1, preprocessing="caffe").cache_key
    sub = a.with_layers(["relu2_1"])
    assert sub.backbone[0] is a.backbone[0] and len(sub.backbone) == layer_index("vgg19", "relu2_1") + 1
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(sub(x)["relu2_1"], b(x)["relu2_1"])
    deeper = b.with_layers(["relu4_1"])
    assert deeper.cache_key == b.cache_key and torch.equal(deeper.backbone[5].weight, a.backbone[5].weight)


def test_validate_flag_checks_range():
    extractor = features.vgg19(["relu1_1"], weights=None)
    x = torch.rand(1, 3, 8, 8) * 255
    with pytest.raises(ValueError, match=r"images must hold values in \[0, 1\].*divide by 255"):
        extractor(x)  # value checks are on by default (issue 12)
    extractor(x, validate=False)  # per-call opt-out
    import featstat

    with featstat.value_checks(False):  # the switch for hot loops
        extractor(x)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 16, 16), "images must have 4 dimensions"),
        (torch.rand(1, 1, 16, 16), "images must have 3 channels"),
        (torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), "images must be a floating-point"),
        (torch.rand(1, 3, 16, 4), r"images must be at least 8×8"),
        ([[0.0]], "images must be a torch.Tensor"),
    ],
)
def test_bad_images_raise(images, match):
    extractor = features.vgg19(["relu4_1"], weights=None)
    with pytest.raises(ValueError, match=match):
        extractor(images)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"layers: unknown vgg19 layer 'relu9_1'"):
        features.vgg19(["relu9_1"], weights=None)
    with pytest.raises(ValueError, match="did you mean 'fire9'"):
        features.squeezenet1_1(["fire99"], weights=None)
    with pytest.raises(ValueError, match="layers must name at least one"):
        features.vgg19([], weights=None)
    with pytest.raises(ValueError, match=r"pooling must be one of \('max', 'avg'\), got 'mean'"):
        features.vgg19(["relu1_1"], weights=None, pooling="mean")
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        features.vgg19(["relu1_1"], weights=None, preprocessing="imagenet")
    with pytest.raises(ValueError, match="arch must be one of"):
        FeatureExtractor("resnet50", ["relu1_1"], weights=None)


# ---------------------------------------------------------------------------------------------------------
# Raw patches


def test_patch_extractor_equals_python_loop():
    x = torch.rand(2, 3, 11, 9)
    k, s = 5, 2
    out = PatchExtractor(k, s)(x)
    assert list(out) == ["patch5"]
    patches = out["patch5"]
    rows, cols = (11 - k) // s + 1, (9 - k) // s + 1
    assert patches.shape == (2, 3 * k * k, rows, cols)
    for i in range(rows):
        for j in range(cols):
            expected = x[:, :, i * s : i * s + k, j * s : j * s + k].reshape(2, -1)
            assert torch.equal(patches[:, :, i, j], expected)


def test_patch_extractor_name_and_errors():
    ext = PatchExtractor(3, 1, name="normals3")
    assert ext.layers == ["normals3"] and ext(torch.rand(1, 3, 3, 3))["normals3"].shape == (1, 27, 1, 1)
    with pytest.raises(ValueError, match="images must be at least 3×3"):
        ext(torch.rand(1, 3, 2, 5))
    with pytest.raises(ValueError, match="size must be a positive int"):
        PatchExtractor(0)


# ---------------------------------------------------------------------------------------------------------
# Sampling


def test_sample_positions_seeded_and_without_replacement():
    a = sample_positions(10, 12, 50, 0)
    assert a.dtype == torch.long and a.shape == (50,)
    assert torch.equal(a, sample_positions(10, 12, 50, 0))
    assert not torch.equal(a, sample_positions(10, 12, 50, 1))
    assert len(set(a.tolist())) == 50 and a.min() >= 0 and a.max() < 120
    many = sample_positions(2, 3, 20, torch.Generator().manual_seed(0))
    assert many.shape == (20,) and many.max() < 6


def test_gather_positions_picks_flat_positions():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    index = torch.tensor([0, 7, 19])
    out = gather_positions(x, index)
    assert out.shape == (2, 3, 3, 1)
    assert torch.equal(out[1, 2, 1, 0], x[1, 2, 1, 2])  # 7 = row 1, col 2


def test_sample_features_same_positions_for_equal_sizes():
    pred = torch.rand(2, 4, 80, 70)
    target = pred * 2 + 1
    p, t = sample_features(pred, target, size=65, seed=5)
    assert p.shape == t.shape == (2, 4, 65 * 65, 1)
    torch.testing.assert_close(t, p * 2 + 1)  # same positions in both maps
    p2, _ = sample_features(pred, target, size=65, seed=5)
    assert torch.equal(p, p2)
    p3, _ = sample_features(pred, target, size=65, seed=6)
    assert not torch.equal(p, p3)


def test_sample_features_different_sizes_and_small_maps():
    pred, target = torch.rand(1, 2, 20, 20), torch.rand(1, 2, 30, 40)
    p, t = sample_features(pred, target, size=15, seed=0)
    assert p.shape == (1, 2, 225, 1) and t.shape == (1, 2, 225, 1)
    small = torch.rand(1, 2, 10, 10)
    s, _ = sample_features(small, small, size=65)
    assert torch.equal(s, small.flatten(2).unsqueeze(-1))  # all positions, in order
    with pytest.raises(ValueError, match="pred must have 4 dimensions"):
        sample_features(small[0], small)


def test_patch_features_are_feature_maps_for_losses():
    normals = F.normalize(torch.randn(1, 3, 32, 32), dim=1)
    feats = PatchExtractor()(normals)["patch5"]
    p, t = sample_features(feats, feats, size=8, seed=0)
    assert p.shape == (1, 75, 64, 1) and torch.equal(p, t)
