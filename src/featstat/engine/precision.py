"""One precision/layout policy for every engine: ``precision="auto"`` is measured, never assumed.

bfloat16 autocast with channels_last is 2.6–3× faster than float32 for Deep Image Prior's network on a CPU
with AMX, but *slower* on CPUs that only have AVX-512-BF16 (measured 0.90× on a Xeon without AMX), and
oneDNN cannot run it at all on AVX2-only CPUs. So ``"auto"`` resolves as follows (:func:`choose`):

- **CUDA**: bf16 autocast + channels_last where the GPU supports bfloat16 (fp16 + gradient scaling where it
  does not, for engines that allow fp16; else fp32).
- **CPU without native bfloat16** (oneDNN says so: AVX2-only x86, most ARM): fp32, NCHW — nothing to measure.
- **CPU with native bfloat16**: the candidates (fp32 NCHW, fp32 channels_last, bf16 channels_last) are timed
  for a few steps of the *actual* network and input size (the engine passes a ``measure`` function) and the
  fastest wins; bf16 must beat the best fp32 by :data:`MARGIN` to be chosen, so "auto" is never slower than
  fp32. The choice is cached per machine (CPU model, relevant ISA flags, torch version, thread count) and
  per engine key (network and shape) in ``$FEATSTAT_CACHE/precision.json`` (default
  ``~/.cache/featstat``), written atomically; later runs reuse it without measuring. Without a ``measure``
  function (or with ``FEATSTAT_PRECISION_MEASURE=0``) the rule is: bf16 where the CPU has AMX, else fp32.

This is the one meaning of "auto" for every engine: each passes a ``measure`` function of its real step —
Deep Image Prior times its network on its input, restoration training times training steps on a copy of
the model and the first batch — so the unmeasured AMX rule only applies with ``FEATSTAT_PRECISION_MEASURE=0``
(or to callers that have no step to time). A resumed run keeps the choice its checkpoint recorded
(:func:`featstat.engine.loop.resumed_choice`). Every engine records :meth:`Choice.info` (precision, layout,
the reason, the timings) in its run JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_write_text
from .._checks import check_choice

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: bf16 is chosen only when it is at least this much faster (time ratio) than the best fp32 candidate
MARGIN = 0.95
#: (precision, channels_last) candidates timed on CPUs with native bfloat16
CPU_CANDIDATES: tuple[tuple[str, bool], ...] = (("fp32", False), ("fp32", True), ("bf16", True))


@dataclass(frozen=True)
class Choice:
    """A resolved precision: ``precision`` ("fp32", "bf16", "fp16"), ``channels_last`` (NHWC layout),
    ``reason`` (one line), ``timings`` (candidate → seconds per step, when measured), ``cached``."""

    precision: str
    channels_last: bool
    reason: str
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def info(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "channels_last": self.channels_last,
            "reason": self.reason,
            "timings_s_per_step": dict(self.timings),
            "from_cache": self.cached,
        }


def cpu_flags() -> set[str]:
    """The CPU's ISA flags from /proc/cpuinfo (empty where unavailable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_amx() -> bool:
    return "amx_bf16" in cpu_flags()


def cpu_bf16_supported() -> bool:
    """True when oneDNN computes bfloat16 natively on this CPU (AVX-512-BF16, AMX, or ARM's BF16)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_signature() -> str:
    """What a cached choice depends on: CPU model, bf16-relevant flags, torch version, thread count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx") or f == "avx512f")
    return f"{model}|{','.join(flags)}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def cache_path() -> Path:
    root = os.environ.get("FEATSTAT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "featstat") / "precision.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again (and rewrite it)


def _write_cache(signature: str, key: str, choice: Choice) -> None:
    data = _read_cache()
    data.setdefault(signature, {})[key] = {
        "precision": choice.precision,
        "channels_last": choice.channels_last,
        "timings": choice.timings,
    }
    try:
        atomic_write_text(cache_path(), json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home only costs a new measurement next time


def _measuring_enabled() -> bool:
    return os.environ.get("FEATSTAT_PRECISION_MEASURE", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def choose(
    precision: str,
    device: torch.device | str,
    *,
    key: str = "",
    measure: Callable[[str, bool], float] | None = None,
    allow_fp16: bool = True,
    channels_last: bool | None = None,
) -> Choice:
    """Resolve ``precision`` for ``device`` (see the module docstring).

    Args:
        precision: "auto", "fp32", "bf16" or "fp16" (fp16: CUDA only).
        device: where the engine runs.
        key: what the measurement is specific to (network, input shape, batch), for the cache.
        measure: ``measure(precision, channels_last) -> seconds per step`` of the engine's real step (a few
            steps after a warm-up); called only for "auto" on CPUs with native bfloat16 and no cached choice.
        allow_fp16: whether the engine can run fp16 (with gradient scaling) on CUDA GPUs without bf16.
        channels_last: force the layout (None: the policy's).
    """
    check_choice("precision", precision, PRECISIONS)
    dev = torch.device(device)
    if precision != "auto":
        if precision == "fp16" and dev.type != "cuda":
            raise ValueError(f"precision 'fp16' needs a CUDA device, got {dev}; use 'bf16' or 'fp32' on CPU")
        layout = (precision != "fp32") if channels_last is None else channels_last
        return Choice(precision, layout, "asked for")
    if dev.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Choice("bf16", True if channels_last is None else channels_last, "CUDA GPU with bfloat16")
        if allow_fp16:
            return Choice(
                "fp16", True if channels_last is None else channels_last, "CUDA GPU without bfloat16"
            )
        return Choice("fp32", bool(channels_last), "CUDA GPU without bfloat16")
    if dev.type != "cpu" or not cpu_bf16_supported():
        return Choice("fp32", bool(channels_last), f"{dev.type}: no native bfloat16 (oneDNN)")
    signature = machine_signature()
    hit = _read_cache().get(signature, {}).get(key)
    if isinstance(hit, dict) and hit.get("precision") in ("fp32", "bf16"):
        layout = bool(hit.get("channels_last")) if channels_last is None else channels_last
        return Choice(
            hit["precision"], layout, "measured on this machine earlier", hit.get("timings", {}), True
        )
    if measure is None or not _measuring_enabled():
        if cpu_has_amx():
            return Choice(
                "bf16", True if channels_last is None else channels_last, "CPU with AMX (not measured)"
            )
        return Choice("fp32", bool(channels_last), "CPU bfloat16 without AMX is often slower (not measured)")
    candidates = [c for c in CPU_CANDIDATES if channels_last is None or c[1] == channels_last]
    timings = {f"{p}{'-cl' if cl else ''}": float(measure(p, cl)) for p, cl in candidates}
    fp32 = {k: v for k, v in timings.items() if k.startswith("fp32")}
    best32 = min(fp32, key=fp32.get)
    choice_key = best32
    if "bf16-cl" in timings and timings["bf16-cl"] < MARGIN * timings[best32]:
        choice_key = "bf16-cl"
    ratio = timings[best32] / timings[choice_key] if timings[choice_key] > 0 else 1.0
    choice = Choice(
        "bf16" if choice_key.startswith("bf16") else "fp32",
        choice_key.endswith("-cl"),
        f"measured: {choice_key} fastest ({ratio:.2f}× the best fp32)" if choice_key.startswith("bf16")
        else f"measured: {choice_key} (bf16 not faster by {1 / MARGIN - 1:.0%})",
        timings,
    )  # fmt: skip
    _write_cache(signature, key, choice)
    return choice


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved ``precision`` ("fp32": none; "bf16" / "fp16": ``torch.autocast``
    on ``device``'s type)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)


def time_steps(step: Callable[[], None], *, warmup: int = 1, steps: int = 2) -> float:
    """Seconds per call of ``step`` after ``warmup`` calls: the minimum over ``steps`` timed calls (the least
    disturbed by other processes)."""
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


__all__ = [
    "CPU_CANDIDATES",
    "MARGIN",
    "PRECISIONS",
    "Choice",
    "autocast",
    "cache_path",
    "choose",
    "cpu_bf16_supported",
    "cpu_has_amx",
    "machine_signature",
    "time_steps",
]
