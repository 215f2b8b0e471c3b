"""Weight registry, resolution order, hash checks, loading formats, download path and import."""

from __future__ import annotations

import os
import re
import urllib.error
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from featstat import features
from featstat.features import (
    REGISTRY,
    WeightEntry,
    WeightsHashError,
    WeightsNotFoundError,
    build_backbone,
    file_sha256,
    import_weights,
    list_weights,
    load_weights,
    resolve_weights,
)
from featstat.features import weights as weights_module

NORMALISED = "vgg19-caffe-normalised-to-relu3_1"
ORIGINAL = "vgg19-caffe-to-relu2_2"


def weights_folder() -> Path:
    folder = Path(os.environ["FEATSTAT_WEIGHTS"])  # a per-test temporary folder (conftest)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"  # under the per-test TORCH_HOME


def save_trunk(
    path: Path, arch: str = "vgg19", last: int = 8, seed: int = 1, prefix: str = "features."
) -> dict:
    """A torchvision-layout state dict of a random trunk (plus classifier keys), saved to ``path``."""
    state = build_backbone(arch, last=last, seed=seed).state_dict()
    full = {prefix + k: v for k, v in state.items()}
    full["classifier.0.weight"] = torch.randn(3, 4)
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in full.items()}, str(path))
    else:
        torch.save(full, path)
    return state


# ---------------------------------------------------------------------------------------------------------
# Registry


def test_registry_entries():
    for name, arch in [
        ("vgg19", "vgg19"),
        ("vgg16", "vgg16"),
        ("alexnet", "alexnet"),
        ("squeezenet1_1", "squeezenet1_1"),
        ("vgg19-caffe", "vgg19"),
        ("vgg16-caffe", "vgg16"),
    ]:
        entry = REGISTRY[name]
        assert entry.arch == arch and entry.url.endswith("/" + entry.filename)
        prefix = re.search(r"-([0-9a-f]{8,})\.pth$", entry.filename).group(1)
        assert entry.sha256 == prefix and not entry.full_hash  # torchvision-style prefix, checked as such
    assert REGISTRY["vgg19"].url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert REGISTRY["alexnet"].filename == "alexnet-owt-7be5be79.pth"
    assert REGISTRY["squeezenet1_1"].filename == "squeezenet1_1-b8a52dc0.pth"
    assert REGISTRY["vgg19-caffe"].url == "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth"
    assert REGISTRY["vgg19-caffe"].preprocessing == REGISTRY["vgg16-caffe"].preprocessing == "caffe"
    for name, deepest in [(NORMALISED, "relu3_1"), (ORIGINAL, "relu2_2")]:
        entry = REGISTRY[name]
        assert entry.full_hash and entry.url is None and entry.deepest == deepest
        assert entry.preprocessing == "caffe" and entry.filename == f"{name}.pth"
    with pytest.raises(ValueError, match="sha256 must be"):
        WeightEntry("x", "vgg19", "x.pth", None, "xyz", "caffe", "relu1_1")
    with pytest.raises(ValueError, match="unknown vgg19 layer"):
        WeightEntry("x", "vgg19", "x.pth", None, "abcdef12", "caffe", "fire9")


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match=r"unknown weights name 'vgg91'; did you mean 'vgg19'"):
        resolve_weights("vgg91")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_weights("no/such/file.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        features.vgg19(["relu1_1"], weights=Path("missing.pth"))


# ---------------------------------------------------------------------------------------------------------
# Real files (../shared)


def test_real_files_by_path_and_by_name(shared):
    src = shared / "weights" / f"{NORMALISED}.pth"
    assert file_sha256(src) == REGISTRY[NORMALISED].sha256
    assert resolve_weights(src) == src
    state, entry = load_weights(src)
    assert entry is REGISTRY[NORMALISED]
    assert sorted(state) == sorted(f"{i}.{p}" for i in (0, 2, 5, 7, 10) for p in ("weight", "bias"))
    (weights_folder() / src.name).symlink_to(src)
    assert resolve_weights(NORMALISED) == weights_folder() / src.name
    by_name = features.vgg19(["relu3_1"], weights=NORMALISED)
    assert by_name.weights_name == NORMALISED and by_name.preprocessing == "caffe"
    assert torch.equal(by_name.backbone[10].weight, state["10.weight"])


def test_real_file_shallower_than_request(shared, tmp_path):
    src = shared / "weights" / f"{ORIGINAL}.pth"
    with pytest.raises(ValueError, match=r"only up to relu2_2.*relu3_1.*weights=None"):
        features.vgg19(["relu1_1", "relu3_1"], weights=src)
    renamed = tmp_path / "unregistered.pth"  # no registry entry: found from the keys themselves
    renamed.write_bytes(src.read_bytes())
    with pytest.raises(ValueError, match=r"only up to pool2, but relu3_1 was requested.*weights=None"):
        features.vgg19(["relu3_1"], weights=renamed)
    assert features.vgg19(["relu2_2"], weights=renamed).preprocessing == "torchvision"  # unknown file
    assert features.vgg19(["relu2_2"], weights=renamed, preprocessing="caffe").preprocessing == "caffe"


def test_import_real_file_by_hash(shared, tmp_path):
    copy = tmp_path / "downloaded.pth"
    copy.write_bytes((shared / "weights" / f"{ORIGINAL}.pth").read_bytes())
    dest = import_weights(copy)
    assert dest == weights_folder() / f"{ORIGINAL}.pth" and file_sha256(dest) == REGISTRY[ORIGINAL].sha256
    found = {f.entry.name: f.path for f in list_weights()}
    assert found[ORIGINAL] == dest and found["vgg19"] is None
    with pytest.raises(WeightsHashError, match="expected sha256 4ceb8882"):
        import_weights(copy, name=NORMALISED)


# ---------------------------------------------------------------------------------------------------------
# Loading formats


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("prefix", ["features.", ""])
def test_state_dict_round_trip_is_bit_exact(tmp_path, suffix, prefix):
    path = tmp_path / f"trunk{suffix}"
    state = save_trunk(path, prefix=prefix)
    extractor = features.vgg19(["relu2_2"], weights=path)
    loaded = extractor.backbone.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert extractor.weights_name == str(path) and extractor.preprocessing == "torchvision"
    shallower = features.vgg19(["relu1_1"], weights=path)  # keys beyond the truncation are ignored
    assert torch.equal(shallower.backbone[0].weight, state["0.weight"])


def test_wrapped_state_dict_and_squeezenet_keys(tmp_path):
    state = build_backbone("squeezenet1_1", seed=2).state_dict()
    path = tmp_path / "squeeze.pt"
    torch.save({"state_dict": {"features." + k: v for k, v in state.items()}}, path)
    extractor = features.squeezenet1_1(["fire9"], weights=path)
    assert torch.equal(extractor.backbone[12].expand3x3.weight, state["12.expand3x3.weight"])


def test_file_for_another_arch_is_rejected(tmp_path):
    path = tmp_path / "alexnet.pth"
    save_trunk(path, arch="alexnet", last=12)
    with pytest.raises(ValueError, match=r"does not fit the vgg19 layout.*0\.weight"):
        features.vgg19(["relu1_1"], weights=path)
    weights_folder().joinpath(f"{ORIGINAL}.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="are for vgg19, not vgg16"):
        features.vgg16(["relu1_1"], weights=ORIGINAL)


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"0.weight": torch.zeros(1), "payload": Path("x")}, path)
    with pytest.raises(ValueError, match="refuses to unpickle"):
        features.vgg19(["relu1_1"], weights=path)


def test_sha256_mismatch(tmp_path):
    fake = weights_folder() / f"{NORMALISED}.pth"
    save_trunk(fake, last=11)
    seen = file_sha256(fake)
    with pytest.raises(
        WeightsHashError, match=rf"expected sha256 {REGISTRY[NORMALISED].sha256}, seen sha256 {seen}"
    ):
        features.vgg19(["relu3_1"], weights=NORMALISED)
    with pytest.raises(WeightsHashError, match="delete it and download or import it again"):
        features.vgg19(["relu1_1"], weights=fake)  # explicit path with a registry file name: checked too


# ---------------------------------------------------------------------------------------------------------
# Resolution order, offline errors, download


def test_resolution_order(tmp_path, monkeypatch):
    entry = WeightEntry("toy", "vgg19", "toy-trunk.pth", None, "0" * 8, "torchvision", "relu2_2")
    monkeypatch.setitem(REGISTRY, "toy", entry)
    hub = hub_checkpoints()
    hub.mkdir(parents=True)
    (hub / entry.filename).write_bytes(b"hub")
    assert resolve_weights("toy") == hub / entry.filename
    (weights_folder() / entry.filename).write_bytes(b"env")
    assert resolve_weights("toy") == weights_folder() / entry.filename
    assert resolve_weights("toy-trunk.pth") == weights_folder() / entry.filename  # by file name
    explicit = tmp_path / "elsewhere.pth"
    explicit.write_bytes(b"explicit")
    assert resolve_weights(explicit) == explicit
    monkeypatch.delenv("FEATSTAT_WEIGHTS")
    assert weights_module.weights_dir() == hub


def test_missing_weights_offline_say_how_to_get_them():
    with pytest.raises(WeightsNotFoundError) as info:
        features.vgg19(["relu1_1"])  # default weights: torchvision's VGG-19
    message = str(info.value)
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "featstat weights import vgg19-dcbb9e9d.pth" in message and "FEATSTAT_WEIGHTS" in message
    assert "FEATSTAT_OFFLINE=1" in message and "weights=None" in message
    assert isinstance(info.value, FileNotFoundError)


def test_download_false_and_no_url(monkeypatch):
    monkeypatch.delenv("FEATSTAT_OFFLINE")
    called = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: called.append(a))
    with pytest.raises(WeightsNotFoundError, match=r"download=False.*featstat weights import vgg16-397923af"):
        resolve_weights("vgg16", download=False)
    with pytest.raises(WeightsNotFoundError, match=r"no download address.*featstat weights import"):
        resolve_weights(NORMALISED)
    assert called == []


def _fake_download(payload: bytes, calls: list):
    def download(url, dst, hash_prefix=None, progress=True):
        calls.append(url)
        Path(dst).write_bytes(payload)

    return download


def test_download_into_hub_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FEATSTAT_OFFLINE")
    path = tmp_path / "src.pth"
    state = save_trunk(path, last=3)
    payload = path.read_bytes()
    entry = WeightEntry(
        "toy",
        "vgg19",
        "toy-1.pth",
        "https://example.invalid/toy-1.pth",
        file_sha256(path),
        "torchvision",
        "relu1_2",
    )
    monkeypatch.setitem(REGISTRY, "toy", entry)
    calls: list = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", _fake_download(payload, calls))
    extractor = features.vgg19(["relu1_2"], weights="toy")
    assert calls == [entry.url]
    assert (hub_checkpoints() / "toy-1.pth").read_bytes() == payload
    assert torch.equal(extractor.backbone[2].weight, state["2.weight"])
    assert [p.name for p in hub_checkpoints().iterdir()] == ["toy-1.pth"]  # no temporary file left
    features.vgg19(["relu1_2"], weights="toy")
    assert len(calls) == 1  # found in the cache the second time


def test_download_with_wrong_hash_leaves_nothing(monkeypatch):
    monkeypatch.delenv("FEATSTAT_OFFLINE")
    calls: list = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", _fake_download(b"not the file", calls))
    with pytest.raises(WeightsHashError, match="expected sha256 prefix 397923af"):
        resolve_weights("vgg16")
    assert calls == [REGISTRY["vgg16"].url] and list(hub_checkpoints().iterdir()) == []


def test_download_failure_gives_clear_error(monkeypatch):
    monkeypatch.delenv("FEATSTAT_OFFLINE")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsNotFoundError, match=r"downloading https://.*failed.*featstat weights import"):
        features.alexnet(["relu1"])
    assert list(hub_checkpoints().iterdir()) == []


def test_import_by_name_and_unknown_file(tmp_path, monkeypatch):
    path = tmp_path / "mine.pth"
    save_trunk(path, last=3)
    junk = tmp_path / "junk.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, junk)
    with pytest.raises(ValueError, match=r"matches no registry entry.*no convolution kernels"):
        import_weights(junk)
    # an unknown VGG trunk is converted (torchvision layout → safetensors) under its own name
    converted = import_weights(path)
    assert converted.parent == weights_folder() and converted.name.startswith("mine-")
    assert converted.suffix == ".safetensors"
    reread = features.vgg19(["relu1_2"], weights=converted)
    direct = features.vgg19(["relu1_2"], weights=path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(reread(x)["relu1_2"], direct(x)["relu1_2"])
    converted.unlink()
    entry = WeightEntry("toy", "vgg19", "toy-2.pth", None, file_sha256(path)[:10], "caffe", "relu1_2")
    monkeypatch.setitem(REGISTRY, "toy", entry)
    assert import_weights(path) == weights_folder() / "toy-2.pth"  # identified by its hash prefix
    monkeypatch.delenv("FEATSTAT_WEIGHTS")
    dest = import_weights(path, name="toy")
    assert dest == hub_checkpoints() / "toy-2.pth" and dest.read_bytes() == path.read_bytes()
    assert features.vgg19(["relu1_2"], weights="toy").preprocessing == "caffe"
