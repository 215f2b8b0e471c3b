"""Run utilities: exact RNG restore, atomic checkpoints that load with weights_only, curves and JSON."""
# ruff: noqa: NPY002  (the legacy global NumPy generator is exactly what is saved and restored)

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from featstat.engine.runs import (
    interruptible,
    load_checkpoint,
    plot_curves,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)


def test_rng_state_round_trip_through_checkpoint(tmp_path):
    torch.manual_seed(1), random.seed(2), np.random.seed(3)
    torch.rand(3), random.random(), np.random.rand()
    save_checkpoint(tmp_path / "ck.pt", {"rng": rng_state(), "step": 7})
    expected = (torch.rand(4), random.random(), np.random.rand(2))
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    state = load_checkpoint(tmp_path / "ck.pt")
    set_rng_state(state["rng"])
    got = (torch.rand(4), random.random(), np.random.rand(2))
    assert state["step"] == 7
    assert torch.equal(expected[0], got[0]) and expected[1] == got[1] and np.array_equal(expected[2], got[2])


def test_model_and_optimiser_state_resume_identically(tmp_path):
    def make():
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 2)
        return net, torch.optim.Adam(net.parameters(), lr=0.1)

    def step(net, opt):
        opt.zero_grad()
        net(torch.randn(8, 4)).square().mean().backward()
        opt.step()

    net, opt = make()
    for _ in range(3):
        step(net, opt)
    save_checkpoint(
        tmp_path / "ck.pt", {"net": net.state_dict(), "opt": opt.state_dict(), "rng": rng_state()}
    )
    for _ in range(2):
        step(net, opt)
    net2, opt2 = make()
    ck = load_checkpoint(tmp_path / "ck.pt")
    net2.load_state_dict(ck["net"]), opt2.load_state_dict(ck["opt"]), set_rng_state(ck["rng"])
    for _ in range(2):
        step(net2, opt2)
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"step": 2, "bad": Boom()})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_interruptible_calls_handler_and_reraises():
    saved = []
    with pytest.raises(KeyboardInterrupt), interruptible(lambda: saved.append(True)):
        raise KeyboardInterrupt
    assert saved == [True]


def test_curves_png_and_json(tmp_path):
    plot_curves(tmp_path / "c.png", {"loss": [3.0, 2.0, 1.0], "psnr": [20.0, 21.0, 22.5]}, title="t")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_json(
        tmp_path / "r.json", {"x": torch.tensor(1.5), "y": np.float32(2.0), "z": [torch.tensor([1, 2])]}
    )
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5, "y": 2.0, "z": [[1, 2]]}
    with pytest.raises(ValueError, match="empty"):
        plot_curves(tmp_path / "e.png", {})


def test_plot_curves_leaves_the_users_matplotlib_backend_alone(tmp_path):
    """Library code never calls ``matplotlib.use`` nor imports pyplot: a user's backend (here pdf, chosen
    before) is still the backend after a plot, and pyplot's global figure state is never touched."""
    script = textwrap.dedent(
        f"""
        import sys
        import matplotlib
        matplotlib.use("pdf")
        from featstat.engine.runs import plot_curves
        plot_curves({str(tmp_path / "c.png")!r}, {{"loss": [3.0, 2.0, 1.0]}})
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pdf", "False"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
