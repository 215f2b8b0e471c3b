"""weights="auto" (featstat.features.sources): the order paper → vgg16-hed → shallow Caffe → random, the
VGG-19 → VGG-16 layer mapping, and its use by Objective configs, recipes, synthesis presets and DIP extras."""

from __future__ import annotations

import hashlib

import pytest
import torch

from featstat import features
from featstat.features.layers import LAYERS
from featstat.features.sources import HED, SHALLOW, choose_features, vgg16_layer
from featstat.features.weights import REGISTRY, WeightEntry, weights_dir
from featstat.objective.config import build_objective


def _install(name: str, arch: str, last_conv: str, monkeypatch) -> None:
    """A small random trunk stored under registry name ``name`` (entry replaced to match its hash)."""
    trunk = features.build_backbone(arch, "max", features.layer_index(arch, last_conv), seed=0, init=True)
    path = weights_dir() / f"{name}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    old = REGISTRY[name]
    monkeypatch.setitem(REGISTRY, name, WeightEntry(name, arch, path.name, None, digest, old.preprocessing,
                                                    last_conv.replace("conv", "relu")))  # fmt: skip


def test_vgg16_mapping_is_complete_and_valid():
    """Every VGG-19 layer name maps to an existing VGG-16 layer of the same kind and block."""
    for name in LAYERS["vgg19"]:
        mapped = vgg16_layer(name)
        assert mapped in LAYERS["vgg16"], name
        assert mapped.rstrip("0123456789_") == name.rstrip("0123456789_")
        assert (
            mapped[len(mapped.rstrip("0123456789_"))] == name[len(name.rstrip("0123456789_"))]
        )  # same block
    assert vgg16_layer("conv3_4") == "conv3_3" and vgg16_layer("conv4_4") == "conv4_3"
    assert vgg16_layer("relu5_4") == "relu5_3" and vgg16_layer("conv5_2") == "conv5_2"
    assert vgg16_layer("pool4") == "pool4" and vgg16_layer("relu4_2") == "relu4_2"
    assert all(vgg16_layer(n) == n for n in LAYERS["vgg16"])


def test_auto_order_paper_then_hed_then_shallow_then_random(monkeypatch):
    layers = ["conv2_2", "conv3_4", "conv4_4", "conv5_2"]
    with pytest.warns(UserWarning, match="RANDOM"):
        src = choose_features("vgg19", layers)
    assert src.kind == "random" and src.weights is None and src.layers == {n: n for n in layers}
    with pytest.raises(ValueError, match="fetch vgg16-hed"):
        choose_features("vgg19", layers, allow_random=False)

    _install(SHALLOW, "vgg19", "conv3_1", monkeypatch)
    src = choose_features("vgg19", layers)
    assert src.kind == "shallow-caffe" and src.arch == "vgg19"
    assert src.layers == {
        "conv2_2": "conv2_2",
        "conv3_4": "conv3_1",
        "conv4_4": "conv3_1",
        "conv5_2": "conv3_1",
    }

    _install(HED, "vgg16", "conv5_3", monkeypatch)
    src = choose_features("vgg19", layers)
    assert src.kind == HED and src.arch == "vgg16" and src.weights == HED
    assert src.layers == {
        "conv2_2": "conv2_2",
        "conv3_4": "conv3_3",
        "conv4_4": "conv4_3",
        "conv5_2": "conv5_2",
    }
    assert "conv3_4→conv3_3" in src.note and src.info()["weights"] == HED

    _install("vgg19", "vgg19", "conv5_4", monkeypatch)
    src = choose_features("vgg19", layers)
    assert src.kind == "paper" and src.weights == "vgg19" and src.layers == {n: n for n in layers}
    # a paper file too shallow for the layers is skipped
    assert choose_features("vgg19", ["relu5_4"], paper_weights=SHALLOW).kind == HED


def test_objective_config_auto_renames_layers_and_records_the_choice(monkeypatch):
    _install(HED, "vgg16", "conv5_3", monkeypatch)
    cfg = {
        "backbones": {"vgg": {"arch": "vgg19", "weights": "auto", "paper_weights": "vgg19-caffe"}},
        "terms": {
            "gram": {
                "loss": "gram",
                "backbone": "vgg",
                "layers": ["conv2_2", "conv3_4", "conv4_4"],
                "layer_weights": {"conv2_2": 1.0, "conv3_4": 2.0, "conv4_4": 3.0},
            },
            "cx": {"loss": "contextual", "backbone": "vgg", "layers": ["conv3_4"], "weight": 0.1},
        },
    }
    obj = build_objective(cfg)
    gram, cx = obj.terms
    assert gram.layers == ["conv2_2", "conv3_3", "conv4_3"] and cx.layers == ["conv3_3"]
    assert gram.layer_weights == {"conv2_2": 1.0, "conv3_3": 2.0, "conv4_3": 3.0}
    assert gram.extractor.arch == "vgg16" and gram.extractor.weights_name == HED
    assert gram.extractor.preprocessing == "caffe"
    info = obj.feature_sources["vgg"]
    assert info["kind"] == HED and info["layers"]["conv4_4"] == "conv4_3"
    assert info["paper_weights"] == ["vgg19-caffe"]
    x = torch.rand(1, 3, 32, 32)
    assert torch.isfinite(obj(x, x.flip(-1)).total)


def test_recipes_synthesis_and_prior_use_auto(monkeypatch):
    from featstat.prior import statistics_objective
    from featstat.restoration.recipes import get_recipe, setup
    from featstat.texture.synthesis import available_presets, resolve_preset

    _install(HED, "vgg16", "conv5_3", monkeypatch)
    s = setup(get_recipe("tsrn", {"network": {"options": {"blocks": 1, "channels": 8}}}))
    assert s.metadata["features"]["vgg"]["kind"] == HED
    assert s.objective.terms[0].layers == ["conv2_2", "conv3_3", "conv4_3", "conv5_2"]
    assert available_presets()[0] == "gatys-vgg16-hed" and resolve_preset("auto").weights == HED
    extra = statistics_objective({"cx": 0.1}, layers=["relu2_1", "relu3_4"])
    assert extra.terms[0].layers == ["relu2_1", "relu3_3"]
    assert extra.feature_sources["extra"]["kind"] == HED


def test_deep_metrics_auto_never_fall_back_to_random(monkeypatch):
    from featstat.metrics import LPIPS, GramDistance

    with pytest.raises(ValueError, match="fetch vgg16-hed"):
        GramDistance("vgg19", weights="auto")
    _install(HED, "vgg16", "conv5_3", monkeypatch)
    m = GramDistance("vgg19", layers=["conv3_4", "conv5_4"], weights="auto")
    assert m.arch == "vgg16" and m.layers == ["conv3_3", "conv5_3"] and m.feature_source["kind"] == HED
    x = torch.rand(1, 3, 32, 32)
    assert m(x, x).item() == pytest.approx(0.0, abs=1e-12) and m(x, x.flip(-1)).item() > 0
    lp = LPIPS("vgg", weights="auto")  # HED is not the trunk LPIPS' heads were calibrated on
    assert not lp.calibrated and lp.feature_source["kind"] == HED
