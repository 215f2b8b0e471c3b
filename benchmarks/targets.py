"""featstat's speed and memory targets, declared once as data.

Each :class:`Target` names what is compared (``op`` and ``threshold``), the issue that set it, and one or
more :class:`Measure` — where the number lives in a results JSON (``benchmarks/results/<file>``; the same
shapes appear as sections of ``results/gpu.json`` and of a ``compare.py --run`` document). ``compare.py``
reads this table to print every target as met / not met and to write the "Against the targets" table of
``BENCHMARKS.md``, so thresholds live nowhere else.

Add a target by appending to :data:`TARGETS`; a measure selects records from a list in the JSON (``path``),
keeps those matching ``where`` (a value, or a tuple of accepted values), reads ``field`` and reduces:
``best="only"`` (exactly one record), ``"max"`` / ``"min"`` (the best of several, e.g. the fastest variant) or
``"count"`` (how many records match). With ``per``, the reduction runs within each group of that key and the
*worst* group decides (a target must hold at every thread count). ``divide_by`` makes the value a ratio of two
measures read from the same document. ``quick`` replaces ``where`` entries for ``compare.py --run --quick``
(smaller sizes: indicative, not the target's setting).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Comparison name → function(value, threshold).
OPS = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Measure:
    """Where one number lives in a results document (see the module docstring)."""

    file: str
    path: tuple[str, ...]
    field: str
    where: Mapping[str, Any] = field(default_factory=dict)
    best: str = "only"
    per: str | None = None
    divide_by: Measure | None = None
    quick: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Target:
    """One target: ``value op threshold`` (``unit`` for printing), set by ``source``."""

    name: str
    description: str
    op: str
    threshold: float
    unit: str
    source: str
    benchmark: str
    measures: tuple[Measure, ...]


def _loss_ratio(size: int, key: str) -> Measure:
    """CX against the full matrix at ``size``²; quick runs measure 64² (the 128² verdicts are indicative)."""
    return Measure("losses.json", ("ratios",), key, {"loss": "cx", "size": size}, quick={"size": 64})


def _case(kind: str, impl: str, quick: Mapping[str, Any] | None = None) -> Measure:
    return Measure("losses.json", ("results",), "seconds", {"kind": kind, "impl": impl}, quick=quick or {})


#: The policy's candidates of ``precision="auto"`` for Deep Image Prior (and "auto" itself where measured).
DIP_CANDIDATES = ("auto", "fp32-cl", "bf16-cl", "fp16-cl")

TARGETS: tuple[Target, ...] = (
    Target(
        "cx-128-memory", "CX fwd+bwd, 128²×256, no sampling: extra peak memory", "<=", 1024, "MiB",
        "issue 1", "losses", (_loss_ratio(128, "peak_mib"),),
    ),
    Target(
        "cx-128-time", "CX fwd+bwd, 128²×256: time ÷ full-matrix time (same run)", "<=", 1 / 3, "×",
        "issue 1", "losses", (_loss_ratio(128, "time_ratio"),),
    ),
    Target(
        "cx-64-memory", "CX fwd+bwd, 64²×256: full-matrix memory ÷ featstat memory", ">=", 4, "×",
        "issue 1", "losses", (_loss_ratio(64, "memory_ratio"),),
    ),
    Target(
        "cx-64-time", "CX fwd+bwd, 64²×256: time ÷ full-matrix time (no slower)", "<=", 1, "×",
        "issue 1", "losses", (_loss_ratio(64, "time_ratio"),),
    ),
    Target(
        "pdl-step", "PDL training step ÷ perceptual-L1 step (VGG-16 conv4_3, batch 4, 256²)", "<=", 1.10, "×",
        "issues 1, 14", "losses",
        (
            Measure(
                "losses.json", ("results",), "seconds", {"kind": "step", "impl": "pdl"},
                divide_by=_case("step", "perceptual-l1"),
            ),
            Measure(
                "pdl-step-amd-epyc.json", ("runs",), "ratio_median", per="threads",
                note="medians of 5 interleaved rounds per thread count",
            ),
        ),
    ),
    Target(
        "objective", "Objective (CX + Gram + PDL + perceptual) step ÷ one VGG-19 fwd+bwd, 256²",
        "<=", 1.3, "×", "issue 1", "losses",
        (
            Measure(
                "losses.json", ("results",), "seconds", {"kind": "objective", "impl": "objective"},
                divide_by=_case("objective", "vgg-only"),
            ),
        ),
    ),
    Target(
        "dip-speed",
        "Deep Image Prior at 256²: best policy candidate's steps/s ÷ fp32 eager NCHW (the public reference's "
        "settings)", ">=", 2, "×", "issues 3, 14", "prior",
        (
            Measure(
                "prior.json", ("speed", "rows"), "speedup_vs_fp32", {"size": 256, "variant": DIP_CANDIDATES},
                best="max", per="threads", quick={"size": 64},
            ),
            Measure(
                "prior-amd-epyc.json", ("speed", "rows"), "cpu_speedup_vs_fp32",
                {"size": 256, "variant": ("fp32-cl", "fp32-compile")}, best="max", per="threads",
                note="AVX2, no bf16; CPU-time ratio under load; the float32 limit is in its 'anatomy'",
            ),
        ),
    ),
    Target(
        "dip-auto", "Deep Image Prior at 256²: precision=\"auto\" steps/s ÷ fp32 (never slower; 5 % timing "
        "noise allowed)", ">=", 0.95, "×", "issue 14", "prior",
        (
            Measure(
                "prior.json", ("speed", "rows"), "speedup_vs_fp32", {"size": 256, "variant": "auto"},
                per="threads", quick={"size": 64},
            ),
        ),
    ),
    Target(
        "gpu-equality",
        "registered losses and metrics outside tolerance, CUDA vs CPU (fp32, bf16/fp16 autocast)",
        "<=", 0, "entries", "issue 14", "gpu",
        (Measure("gpu.json", ("equality", "entries"), "ok", {"ok": False}, best="count"),),
    ),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------ reading


def records(doc: Any, measure: Measure, quick: bool = False) -> list[Mapping[str, Any]]:
    """The records of ``doc`` at ``measure.path`` that match ``measure.where`` (``quick`` overrides
    applied)."""
    node = doc
    for key in measure.path:
        if not isinstance(node, Mapping) or key not in node:
            return []
        node = node[key]
    if not isinstance(node, list):
        return []
    where = {**measure.where, **(measure.quick if quick else {})}

    def matches(rec: Any) -> bool:
        if not isinstance(rec, Mapping) or "error" in rec:
            return False
        for k, want in where.items():
            got = rec.get(k)
            if got not in want if isinstance(want, tuple) else got != want:
                return False
        return True

    return [r for r in node if matches(r)]


def _reduce(values: list[float], best: str) -> float | None:
    if not values:
        return None
    if best == "only":
        return values[0] if len(values) == 1 else None
    return max(values) if best == "max" else min(values)


def value(doc: Any, measure: Measure, op: str, quick: bool = False) -> float | None:
    """The number ``measure`` reads from ``doc`` (None when the document does not hold it)."""
    recs = records(doc, measure, quick)
    if measure.best == "count":
        return float(len(recs)) if _has_path(doc, measure.path) else None
    groups: dict[Any, list[float]] = {}
    for r in recs:
        v = r.get(measure.field)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            groups.setdefault(r.get(measure.per) if measure.per else None, []).append(float(v))
    reduced = [_reduce(vs, measure.best) for vs in groups.values()]
    if not reduced or any(v is None for v in reduced):
        return None
    worst = max(reduced) if op == "<=" else min(reduced)  # type: ignore[type-var]
    if measure.divide_by is None:
        return worst
    den = value(doc, measure.divide_by, op, quick)
    return worst / den if den else None


def _has_path(doc: Any, path: tuple[str, ...]) -> bool:
    node = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return isinstance(node, list)


def verdict(target: Target, v: float | None) -> str:
    """ "met", "not met" or "no data"."""
    if v is None:
        return "no data"
    return "met" if OPS[target.op](v, target.threshold) else "not met"
