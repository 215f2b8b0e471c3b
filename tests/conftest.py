"""Shared fixtures. Tests never reach the network: FEATSTAT_OFFLINE is set for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ["FEATSTAT_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    env = os.environ.get("FEATSTAT_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


SHARED = _shared_dir()


@pytest.fixture
def shared() -> Path:
    """The ../shared folder (real weights and images); tests that need it are skipped without it."""
    if SHARED is None:
        pytest.skip("../shared is not present (set FEATSTAT_SHARED to its path)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed_and_isolate(tmp_path, monkeypatch):
    """Seed torch, keep the weight cache and hub directory inside the test's temporary folder."""
    torch.manual_seed(0)
    monkeypatch.setenv("FEATSTAT_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    yield
