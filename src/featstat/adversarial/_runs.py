"""What the adversarial product's training functions share: driving a Run in a run folder, and finding a
run's checkpoint file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..engine.loop import LoopResult, Outputs, Run, run_loop
from ..engine.runs import load_checkpoint


def drive(run: Run, steps: int, folder: str | Path | None, *, description: str, device: torch.device | str,
          resume: bool, checkpoint_every: int, log_every: int, progress: bool,
          callback: Any) -> LoopResult:  # fmt: skip
    """``run_loop`` with the product's run-folder layout: ``folder/checkpoint.pt`` (every
    ``checkpoint_every`` steps, on interrupt, at the end), history, curves and ``run.json``; no files and no
    checkpoints without a folder."""
    out = Path(folder) if folder is not None else None
    return run_loop(
        run, steps, log_every=log_every,
        checkpoint=out / "checkpoint.pt" if out else None, checkpoint_every=checkpoint_every if out else 0,
        resume=resume, callback=callback, outputs=Outputs(out) if out else None, progress=progress,
        description=description, device=device,
    )  # fmt: skip


def load_run(checkpoint: str | Path, kind: str, what: str) -> dict[str, Any]:
    """The checkpoint of a ``kind`` run (a checkpoint file or its run folder); ValueError for another kind."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "checkpoint.pt"
    ck = load_checkpoint(path)
    if ck.get("kind") != kind:
        raise ValueError(f"checkpoint {str(path)!r} is a {ck.get('kind')!r} run, not {what}")
    return ck
