"""What every run shares: checkpoints and RNG state, progress, interrupts, divergence checks, the precision
policy and the run-folder outputs (:mod:`featstat.engine.runs`, :mod:`featstat.engine.precision`)."""

from __future__ import annotations
