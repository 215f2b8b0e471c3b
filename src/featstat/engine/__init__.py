"""What every run shares: the one run loop (:mod:`featstat.engine.loop`: the ``Run`` protocol and
``run_loop`` — progress, history, callbacks, interrupts, checkpoints with one header and one resume check,
divergence checks, run-folder outputs), its building blocks (checkpoints and RNG state, progress, interrupts,
divergence: :mod:`featstat.engine.runs`) and the precision policy (:mod:`featstat.engine.precision`)."""

from __future__ import annotations
