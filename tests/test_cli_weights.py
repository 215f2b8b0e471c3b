"""``featstat weights list | path | import`` through click's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from featstat.cli import main
from featstat.features import REGISTRY

ORIGINAL = "vgg19-caffe-to-relu2_2"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "command", [[], ["weights"], ["weights", "list"], ["weights", "path"], ["weights", "import"]]
)
def test_help_has_examples(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "featstat weights" in result.output


def test_list_shows_found_and_missing(shared):
    folder = Path(os.environ["FEATSTAT_WEIGHTS"])
    folder.mkdir(parents=True)
    (folder / f"{ORIGINAL}.pth").symlink_to(shared / "weights" / f"{ORIGINAL}.pth")
    result = run("weights", "list")
    assert result.exit_code == 0, result.output
    for name in REGISTRY:
        assert name in result.output
    assert "missing" in result.output and str(folder) in result.output
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in result.output
    rows = {r["name"]: r for r in json.loads(run("weights", "list", "--json").output)}
    assert rows[ORIGINAL]["path"] == str(folder / f"{ORIGINAL}.pth")
    assert rows["vgg19"]["path"] is None and rows["vgg19"]["preprocessing"] == "torchvision"
    assert rows[ORIGINAL]["deepest"] == "relu2_2" and rows[ORIGINAL]["full_hash"] is True


def test_path_found_and_missing(tmp_path):
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "vgg16-397923af.pth").write_bytes(b"x")
    result = run("weights", "path", "vgg16")
    assert result.exit_code == 0 and result.output.strip() == str(hub / "vgg16-397923af.pth")
    result = run("weights", "path", "vgg19")
    assert result.exit_code == 2  # missing weights: status 2 in every verb (cli_common)
    assert "featstat weights import vgg19-dcbb9e9d.pth" in result.output
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in result.output
    result = run("weights", "path", "vgg91")
    assert result.exit_code == 2 and "did you mean 'vgg19'" in result.output


def test_import(tmp_path, shared):
    copy = tmp_path / "download.pth"
    copy.write_bytes((shared / "weights" / f"{ORIGINAL}.pth").read_bytes())
    result = run("weights", "import", str(copy))
    assert result.exit_code == 0, result.output
    dest = Path(os.environ["FEATSTAT_WEIGHTS"]) / f"{ORIGINAL}.pth"
    assert result.output.strip() == str(dest) and dest.read_bytes() == copy.read_bytes()
    assert run("weights", "path", ORIGINAL).output.strip() == str(dest)


def test_import_unknown_file_fails(tmp_path):
    bogus = tmp_path / "bogus.pth"
    torch.save({"0.weight": torch.zeros(1)}, bogus)
    result = run("weights", "import", str(bogus))
    assert result.exit_code == 2 and "matches no registry entry" in result.output
    result = run("weights", "import", str(bogus), "--name", "vgg19")
    assert result.exit_code == 2 and "expected sha256 prefix dcbb9e9d" in result.output
    result = run("weights", "import", str(tmp_path / "absent.pth"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_fetch_downloads_files_with_a_url_and_refuses_files_without(monkeypatch, tmp_path):
    import hashlib

    from featstat.features.weights import WeightEntry, hub_dir

    data = b"not really weights, but hashed"
    entry = WeightEntry("toy-url", "vgg19", "toy-url.pth", "https://example.invalid/toy-url.pth",
                        hashlib.sha256(data).hexdigest()[:8], "caffe", "relu1_1")  # fmt: skip
    monkeypatch.setitem(REGISTRY, "toy-url", entry)
    calls = []

    def fake_download(url, dest, progress=True):
        calls.append(url)
        Path(dest).write_bytes(data)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.delenv("FEATSTAT_OFFLINE")
    result = run("weights", "fetch", "toy-url")
    assert result.exit_code == 0, result.output
    assert calls == [entry.url] and (hub_dir() / "toy-url.pth").read_bytes() == data
    assert result.output.strip().endswith("toy-url.pth")
    result = run("weights", "fetch", "vgg19-caffe-to-relu2_2")  # no URL, not a pip package
    assert result.exit_code != 0 and "no download address" in result.output
