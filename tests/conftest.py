"""Shared fixtures. Tests never reach the network: FEATSTAT_OFFLINE is set for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ["FEATSTAT_OFFLINE"] = "1"
# precision="auto" follows its unmeasured rule in tests (timing-dependent choices would make two runs of one
# test differ on CPUs with bfloat16); tests of the measured policy turn it on themselves
os.environ["FEATSTAT_PRECISION_MEASURE"] = "0"

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    env = os.environ.get("FEATSTAT_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


SHARED = _shared_dir()

# where the user's real weight files live, read before each test isolates FEATSTAT_WEIGHTS and TORCH_HOME
_REAL_WEIGHT_DIRS = [
    Path(d)
    for d in (os.environ.get("FEATSTAT_WEIGHTS"), os.path.join(torch.hub.get_dir(), "checkpoints"))
    if d
]


def real_weights_file(filename: str) -> Path | None:
    """A real weights file installed on this machine ($FEATSTAT_WEIGHTS or the torch hub cache as they were
    when the tests started), or None."""
    return next((d / filename for d in _REAL_WEIGHT_DIRS if (d / filename).is_file()), None)


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
    monkeypatch.setenv("FEATSTAT_CACHE", str(tmp_path / "cache"))  # the precision cache
    yield


#: the devices of device tests: the CPU always, CUDA where there is one
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """A device test runs once per device of :data:`DEVICES` ("cpu"; "cuda" when available): take a
    ``device`` argument. A test that parametrises ``device`` itself overrides this fixture."""
    return request.param


@pytest.fixture
def one_thread():
    """One intra-op thread for tests of tiny tensors: OpenMP's overhead and a busy shared CPU make two threads
    slower there, and results do not depend on it. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_spawned(worker, args: tuple, nprocs: int = 2, timeout: float = 300) -> None:
    """Run ``worker(rank, *args)`` in ``nprocs`` spawned processes and wait; fail the test after ``timeout``
    seconds. Spawn, not fork: a fork after torch's OpenMP pool exists (any earlier test) can deadlock the
    children."""
    import time

    import torch.multiprocessing as mp

    ctx = mp.start_processes(worker, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail(f"the {nprocs} worker processes did not finish within {timeout:.0f} s")
