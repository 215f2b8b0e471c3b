"""Objective configs of the wrong type (issue 12 item 7): every one a ValueError that names the offending
entry — generated per class: wrong file content, a list or a scalar where a table is expected, wrong scalar
types (string weights, booleans), non-finite weights, unhashable values where a name is expected, unknown
loss options."""

from __future__ import annotations

import math

import pytest

from featstat.objective import Objective

_VGG = {"arch": "vgg19", "weights": "random", "seed": 0}


def _cfg(term: dict | None = None, backbone: dict | None = None, **top) -> dict:
    """A valid config (a Gram term on a random VGG and an L1 term) with one part replaced."""
    t = {"loss": "gram", "backbone": "vgg", "layers": ["relu1_1"], **(term or {})}
    return {
        "backbones": {"vgg": {**_VGG, **(backbone or {})}},
        "terms": {"g": t, "l1": {"loss": "l1"}},
        **top,
    }


def _drop(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


# (config, words the message must hold: the entry named)
_CASES = {
    # a list or a scalar where a table is expected
    "backbones list": ({"backbones": [1, 2], "terms": {"l1": {"loss": "l1"}}}, "backbones"),
    "backbones string": ({"backbones": "vgg", "terms": {"l1": {"loss": "l1"}}}, "backbones"),
    "backbone not a table": (
        {"backbones": {"vgg": 1}, "terms": {"l1": {"loss": "l1"}}},
        "backbones.vgg",
    ),
    "backbone table a list": (
        {"backbones": {"vgg": ["vgg19"]}, "terms": {"l1": {"loss": "l1"}}},
        "backbones.vgg",
    ),
    "terms list of numbers": ({"terms": [1, 2]}, "terms"),
    "terms string": ({"terms": "l1"}, "terms"),
    "term not a table": ({"terms": {"l1": 1}}, "terms.l1"),
    "term a list": ({"terms": {"l1": ["l1"]}}, "terms.l1"),
    "layer_weights a string": (_cfg({"layer_weights": "1"}), "terms.g.layer_weights"),
    # wrong scalar types
    "string weight": (_cfg({"weight": "a"}), "terms.g.weight"),
    "numeric-string weight": (_cfg({"weight": "1.0"}), "terms.g.weight"),
    "boolean weight": (_cfg({"weight": True}), "terms.g.weight"),
    "list weight": (_cfg({"weight": [1.0]}), "terms.g.weight"),
    "string layer weight": (_cfg({"layer_weights": {"relu1_1": "a"}}), "terms.g.layer_weights"),
    "layers a string": (_cfg({"layers": "relu1_1"}), "terms.g.layers"),
    "layers of numbers": (_cfg({"layers": [1]}), "terms.g.layers"),
    "loss a number": (_cfg({"loss": 3}), "terms.g.loss"),
    "target a number": (_cfg({"target": 3}), "terms.g.target"),
    "arch a number": (_cfg(backbone={"arch": 19}), "backbones.vgg.arch"),
    "weights a number": (_cfg(backbone={"weights": 1}), "backbones.vgg.weights"),
    "seed a string": (_cfg(backbone={"seed": "a"}), "backbones.vgg.seed"),
    "pooling a number": (_cfg(backbone={"pooling": 1}), "backbones.vgg.pooling"),
    "patch size a string": (
        {
            "backbones": {"p": {"arch": "patches", "size": "5"}},
            "terms": {"cx": {"loss": "cx", "backbone": "p"}},
        },
        "backbones.p.size",
    ),
    "name in a list of terms": ({"terms": [{"name": 3, "loss": "l1"}]}, "name"),
    "missing name in a list of terms": ({"terms": [{"loss": "l1"}]}, "name"),
    # non-finite weights
    "nan weight": (_cfg({"weight": math.nan}), "terms.g.weight"),
    "inf weight": (_cfg({"weight": math.inf}), "terms.g.weight"),
    "-inf weight": (_cfg({"weight": -math.inf}), "terms.g.weight"),
    "nan layer weight": (_cfg({"layer_weights": {"relu1_1": math.nan}}), "terms.g.layer_weights"),
    "inf layer weight (list)": (_cfg({"layer_weights": [math.inf]}), "terms.g.layer_weights"),
    # unhashable values where a name is expected
    "backbone a list": (_cfg({"backbone": ["vgg"]}), "terms.g.backbone"),
    "backbone a table": (_cfg({"backbone": {"a": 1}}), "terms.g.backbone"),
    "loss a list": (_cfg({"loss": ["gram"]}), "terms.g.loss"),
    "arch a list": (_cfg(backbone={"arch": ["vgg19"]}), "backbones.vgg.arch"),
    "weights a list": (_cfg(backbone={"weights": ["random"]}), "backbones.vgg.weights"),
    "layers of lists": (_cfg({"layers": [["relu1_1"]]}), "terms.g.layers"),
    "target a list": (_cfg({"target": ["style"]}), "terms.g.target"),
    "name a list": ({"terms": [{"name": ["a"], "loss": "l1"}]}, "name"),
    # options routed to the loss constructor
    "unknown loss option": (_cfg({"bandwidth": 0.1}), "terms.g"),
    "loss option of the wrong type": (_cfg({"reduction": ["mean"]}), "terms.g"),
    "loss option a table": (
        {"terms": {"cx": {"loss": "cx", "bandwidth": {"a": 1}}}},
        "terms.cx",
    ),
    # the config itself
    "config a number": (3, "config"),
    "config a list": ([{"terms": {}}], "config"),
    "no terms section": ({"backbones": {"vgg": _VGG}}, "terms"),
    "backbone without arch": (
        {"backbones": {"vgg": _drop(_VGG, "arch")}, "terms": _cfg()["terms"]},
        "backbones.vgg.arch",
    ),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_bad_config_types_name_the_entry(case):
    config, where = _CASES[case]
    with pytest.raises(ValueError) as info:
        Objective.from_config(config)
    assert where in str(info.value), str(info.value)


def _valid_toml() -> str:
    return '[terms.l1]\nloss = "l1"\nweight = 2.0\n'


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00\x00binary\x80\x81",  # not UTF-8
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image renamed .toml
        '[terms.l1]\nloss = "l1"\nweight = 2.0\n'.encode("utf-16"),  # valid TOML, wrong encoding
        b"[terms.l1\nloss = 1",  # not TOML
        b"",  # empty: no terms
    ],
)
def test_bad_toml_files_name_the_file(tmp_path, content):
    path = tmp_path / "objective.toml"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        Objective.from_config(path)
    assert "objective.toml" in str(info.value) or "terms" in str(info.value), str(info.value)
    path.write_text(_valid_toml())
    assert "l1" in Objective.from_config(path).terms[0].name  # the same path with a valid file builds


@pytest.mark.parametrize("weight", [0, 0.5, 2, 1e-3, -1.0])
def test_finite_number_weights_are_accepted(weight):
    objective = Objective.from_config({"terms": {"l1": {"loss": "l1", "weight": weight}}})
    assert objective.terms[0].weight == float(weight)
