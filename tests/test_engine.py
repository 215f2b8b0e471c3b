"""The one run loop (featstat.engine.loop) on a toy Run: history and outputs, callbacks, exact resume after
an interrupt (callback or a real SIGINT mid-step), the one resume check, divergence before checkpoint, early
stop, snapshots and the recorded precision."""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Mapping
from typing import Any

import pytest
import torch

from featstat._checks import FileLoadError
from featstat.engine.loop import (
    CHECKPOINT_FORMAT,
    Outputs,
    Run,
    read_checkpoint,
    resumed_choice,
    run_loop,
)
from featstat.engine.precision import Choice
from featstat.engine.runs import DivergenceWatch, TrainingDiverged, save_checkpoint


class Toy:
    """Fit w to y = X·w_true with Adam on fresh random batches (global RNG), noise from its own generator."""

    kind = "toy"

    def __init__(self, lr: float = 0.05, seed: int = 0, on_step: Any = None) -> None:
        torch.manual_seed(seed)
        self.lr = lr
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.opt = torch.optim.Adam([self.w], lr=lr)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.true = torch.tensor([1.0, -2.0, 0.5, 3.0])
        self.snapshots: list[int] = []
        self.on_step = on_step

    def fingerprint(self) -> Mapping[str, Any]:
        return {"lr": self.lr, "dims": 4}

    def step(self, step: int) -> Mapping[str, Any]:
        x = torch.randn(8, 4)
        y = x @ self.true + 0.01 * torch.randn(8, generator=self.noise)
        loss = (x @ self.w - y).square().mean()
        self.opt.zero_grad()
        loss.backward()
        if self.on_step is not None:
            self.on_step(step)
        self.opt.step()
        return {"loss": loss.detach(), "w0": float(self.w[0].detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict(), "noise": self.noise.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])
        self.noise.set_state(state["noise"])

    def snapshot(self, step: int) -> None:
        self.snapshots.append(step)

    def finish(self, step: int) -> dict[str, Any]:
        return {"w": self.w.detach().tolist()}


def test_toy_is_a_run_and_the_loop_logs_writes_and_finishes(tmp_path):
    toy = Toy()
    assert isinstance(toy, Run)
    seen: list[tuple[int, dict]] = []
    result = run_loop(
        toy, 10, log_every=4, snapshot_every=3, callback=lambda s, v: seen.append((s, dict(v))),
        outputs=Outputs(tmp_path / "out", title="toy"), checkpoint=tmp_path / "ck.pt",
        precision=Choice("fp32", False, "asked for"),
    )  # fmt: skip
    assert [r["step"] for r in result.history] == [4, 8, 10]
    assert result.history[0]["loss"] > result.history[-1]["loss"]
    assert toy.snapshots == [3, 6, 9]
    # the callback sees floats every step (tensor values only on logged steps, as the window's mean)
    assert [s for s, _ in seen] == list(range(1, 11))
    assert set(seen[0][1]) == {"w0"} and set(seen[3][1]) == {"step", "loss", "w0"}
    assert seen[3][1] == result.history[0]
    out = tmp_path / "out"
    for name in ("history.json", "history.csv", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "toy" and run["step"] == 10 and run["w"] == toy.w.detach().tolist()
    assert run["precision"]["precision"] == "fp32" and run["fingerprint"] == {"dims": 4, "lr": 0.05}
    ck = read_checkpoint(tmp_path / "ck.pt", "toy")
    assert ck["format"] == CHECKPOINT_FORMAT and ck["status"] == "complete" and ck["step"] == 10
    assert resumed_choice(ck) == Choice("fp32", False, "as the checkpointed run")
    assert result.steps_per_second is not None and result.steps_per_second > 0


def _interrupt_at(k: int):
    def callback(step: int, values: Mapping[str, float]) -> None:
        if step == k:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("log_every", [1, 3])
def test_interrupt_then_resume_is_bit_identical(tmp_path, log_every):
    straight = Toy()
    full = run_loop(straight, 9, log_every=log_every)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        run_loop(Toy(), 9, log_every=log_every, checkpoint=ck, callback=_interrupt_at(5))
    header = read_checkpoint(ck, "toy")
    assert header["status"] == "interrupted" and header["step"] == 5
    torch.manual_seed(123)  # everything must come from the checkpoint
    resumed_toy = Toy(seed=7)
    resumed = run_loop(resumed_toy, 9, log_every=log_every, checkpoint=ck, resume=True)
    assert resumed.started_at == 5 and resumed.step == 9
    assert torch.equal(straight.w, resumed_toy.w)
    assert [r["step"] for r in full.history] == [r["step"] for r in resumed.history]
    assert full.history == resumed.history  # a window cut by the interrupt is saved: the same means


def test_a_real_sigint_mid_step_finishes_the_step_saves_and_reraises(tmp_path):
    ck = tmp_path / "ck.pt"

    def signal_mid_step(step: int) -> None:
        if step == 3:  # during the 4th step, between backward and the optimiser step
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_loop(Toy(on_step=signal_mid_step), 8, checkpoint=ck, checkpoint_every=2)
    header = read_checkpoint(ck, "toy")
    assert header["status"] == "interrupted" and header["step"] == 4  # the 4th step completed
    straight = Toy()
    run_loop(straight, 8)
    again = Toy()
    run_loop(again, 8, checkpoint=ck, resume=True)
    assert torch.equal(straight.w, again.w)


def test_a_second_signal_stops_at_once_keeping_the_last_consistent_checkpoint(tmp_path):
    ck = tmp_path / "ck.pt"

    def twice(step: int) -> None:
        if step == 4:  # during the 5th step
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_loop(Toy(on_step=twice), 8, checkpoint=ck, checkpoint_every=2)
    header = read_checkpoint(ck, "toy")
    assert header["status"] == "running" and header["step"] == 4  # the half-done 5th step was not saved
    straight, again = Toy(), Toy()
    run_loop(straight, 8)
    run_loop(again, 8, checkpoint=ck, resume=True)
    assert torch.equal(straight.w, again.w)


def test_resume_check_names_the_differences_and_the_fix(tmp_path):
    ck = tmp_path / "ck.pt"
    run_loop(Toy(), 3, checkpoint=ck)
    with pytest.raises(ValueError, match=r"different problem or different options.*lr: 0.05 → 0.1.*afresh"):
        run_loop(Toy(lr=0.1), 3, checkpoint=ck, resume=True)
    with pytest.raises(ValueError, match="beyond steps=2"):
        run_loop(Toy(), 2, checkpoint=ck, resume=True)

    class Other(Toy):
        kind = "other"

    with pytest.raises(FileLoadError, match="written by a 'toy' run, not a 'other' run"):
        run_loop(Other(), 3, checkpoint=ck, resume=True)
    save_checkpoint(tmp_path / "old.pt", {"format": "featstat-prior-1", "step": 1})
    with pytest.raises(FileLoadError, match="earlier featstat version"):
        read_checkpoint(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(FileLoadError, match="could not be read"):
        run_loop(Toy(), 3, checkpoint=tmp_path / "junk.pt", resume=True)
    # resume=True without a file starts afresh; a longer run continues the saved one
    fresh = run_loop(Toy(), 2, checkpoint=tmp_path / "none.pt", resume=True)
    assert fresh.started_at == 0
    longer = run_loop(Toy(), 5, checkpoint=ck, resume=True)
    assert longer.started_at == 3 and [r["step"] for r in longer.history] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        run_loop(Toy(), 2, resume=True)
    with pytest.raises(ValueError, match="log_every must be an integer >= 0"):
        run_loop(Toy(), 2, log_every=-1)


def test_callback_true_stops_early_with_a_final_checkpoint(tmp_path):
    ck = tmp_path / "ck.pt"
    result = run_loop(Toy(), 20, log_every=4, checkpoint=ck, callback=lambda s, v: s == 6)
    assert result.stopped_early and result.step == 6
    assert [r["step"] for r in result.history] == [4, 6]  # the cut window is the last row
    assert read_checkpoint(ck)["status"] == "stopped early"


def test_divergence_stops_before_the_checkpoint(tmp_path):
    class Exploding(Toy):
        def step(self, step: int) -> Mapping[str, Any]:
            values = dict(super().step(step))
            if step >= 2:
                values["loss"] = torch.tensor(math.inf)
            return values

    ck = tmp_path / "ck.pt"
    with pytest.raises(TrainingDiverged, match="step 3: the loss became inf"):
        run_loop(Exploding(), 10, checkpoint=ck, checkpoint_every=3, watch=DivergenceWatch())
    assert not ck.exists()


def test_extra_header_data_and_the_log_hook(tmp_path):
    class Logged(Toy):
        def log(self, step: int, means: Mapping[str, Any], seconds: float) -> dict[str, Any]:
            return {"step": step, "loss": float(means["loss"]), "stage": "a"}

    ck = tmp_path / "ck.pt"
    result = run_loop(Logged(), 4, log_every=2, checkpoint=ck, extra=lambda: {"level": 2})
    assert result.history == [
        {"step": 2, "loss": result.history[0]["loss"], "stage": "a"},
        {"step": 4, "loss": result.history[1]["loss"], "stage": "a"},
    ]
    assert read_checkpoint(ck)["extra"] == {"level": 2}


def test_a_logs_hook_chooses_the_rows():
    class Staged(Toy):
        def logs(self, step: int) -> bool:  # stages of 3 steps: a row at each stage's end
            return step % 3 == 0

    result = run_loop(Staged(), 7, log_every=1)
    assert [r["step"] for r in result.history] == [3, 6, 7]  # the last step always gets a row
