"""Every target of BENCHMARKS.md as met / not met, from one run — so a regression is visible at a glance.

    .venv/bin/python benchmarks/compare.py                     # = --from-results: judge results/*.json, fast
    .venv/bin/python benchmarks/compare.py --run --quick       # re-measure at small sizes (~1 min, 1 thread)
    .venv/bin/python benchmarks/compare.py --run --device cuda # re-measure at the targets' sizes on a GPU
    .venv/bin/python benchmarks/compare.py --write             # rewrite BENCHMARKS.md's targets table
    .venv/bin/python benchmarks/compare.py --strict            # exit status 1 if a measured target is not met

Targets are declared once, as data, in ``targets.py``. ``--from-results`` reads the latest JSON of each
benchmark in ``benchmarks/results/`` (and ``results/gpu.json`` when a GPU run has been saved: its sections
have the same shapes), one verdict line per target and measurement. ``--run`` runs the cases the targets
need through ``gpu.py``'s suite (loss, Objective, PDL-step and DIP cases; on CUDA also the equality check)
and judges that document; with ``--quick`` the sizes are smaller than the targets' (CX 64² only, also
standing in for 128²; 64² DIP, Objective and training step, batch 1), so its verdicts are indicative. A
target a document does not measure says "no data". Without ``--run``, nothing is computed (a fraction of a
second).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from targets import TARGETS, Target, value, verdict  # noqa: E402

RESULTS = HERE / "results"
BENCHMARKS_MD = HERE.parent / "BENCHMARKS.md"
START, END = "<!-- targets:start -->", "<!-- targets:end -->"

#: Sizes of ``--run`` per mode (``gpu.py``'s suite keys); "quick" keeps the CPU light (one thread).
RUN_SIZES: dict[str, dict[str, Any]] = {
    "compare-quick": {
        "feature": (2, 8, 16, 16), "image": 32, "ms_ssim": 176, "metric_options": {},
        "cx": [64], "channels": 256, "cx_repeat": 1,
        "objective": 64, "step": (1, 64), "repeat": 2,
        "dip": 64, "dip_steps": 2, "dip_warmup": 1,
    },
    "compare": {
        "feature": (2, 32, 32, 32), "image": 64, "ms_ssim": 192, "metric_options": {},
        "cx": [64, 128], "channels": 256, "cx_repeat": 1,
        "objective": 256, "step": (4, 256), "repeat": 3,
        "dip": 256, "dip_steps": 4, "dip_warmup": 2,
    },
}  # fmt: skip

#: A source: (label, file name → document or None, quick sizes?).
Source = tuple[str, Callable[[str], Any], bool]


def machine_label(doc: Any) -> str:
    """A short description of the machine a document was measured on."""
    if not isinstance(doc, dict):
        return "?"
    m = doc.get("machine") or doc.get("speed", {}).get("machine")
    if isinstance(m, str):
        return m.split("|")[0].strip() or m
    if isinstance(m, dict):
        parts = [m.get("gpu") or m.get("cpu", "?")]
        if m.get("threads") and not m.get("gpu"):
            parts.append(f"{m['threads']} thread{'s' if m['threads'] != 1 else ''}")
        return ", ".join(str(p) for p in parts)
    return "?"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def results_sources(folder: Path = RESULTS) -> list[Source]:
    """The committed results (one file per benchmark) and, when present, ``gpu.json``."""
    sources: list[Source] = [("results", lambda name: _read(folder / name), False)]
    gpu = _read(folder / "gpu.json")
    if isinstance(gpu, dict):
        sources.append((f"gpu.json ({gpu.get('mode', '?')})", _sections(gpu), False))
    return sources


def _sections(doc: dict) -> Callable[[str], Any]:
    """A ``gpu.py`` suite document seen as files: ``gpu.json`` is the document, ``<stem>.json`` its section
    (with the document's machine when the section has none)."""

    def get(name: str) -> Any:
        if name == "gpu.json":
            return doc
        section = doc.get(name.removesuffix(".json"))
        if isinstance(section, dict):
            return {"machine": doc.get("machine"), **section}
        return None

    return get


def judge(sources: list[Source], targets: tuple[Target, ...] = TARGETS) -> list[dict[str, Any]]:
    """One row per target and measurement found (or one "no data" row for a target nothing measures)."""
    rows = []
    for t in targets:
        found = []
        for label, get, quick in sources:
            for m in t.measures:
                doc = get(m.file)
                if doc is None:
                    continue
                v = value(doc, m, t.op, quick)
                if v is None:
                    continue
                found.append({"target": t.name, "description": t.description, "source": t.source,
                              "op": t.op, "threshold": t.threshold, "unit": t.unit, "value": v,
                              "verdict": verdict(t, v), "file": m.file if label == "results" else label,
                              "machine": machine_label(doc) + (f"; worst {m.per}" if m.per else ""),
                              "quick": quick, "note": m.note})  # fmt: skip
        rows += found or [{"target": t.name, "description": t.description, "source": t.source, "op": t.op,
                           "threshold": t.threshold, "unit": t.unit, "value": None, "verdict": "no data",
                           "file": ", ".join(sorted({m.file for m in t.measures})), "machine": "",
                           "quick": False, "note": ""}]  # fmt: skip
    return rows


def _num(v: float, unit: str) -> str:
    if unit == "MiB":
        return f"{v:.0f} MiB"
    if unit == "entries":
        return f"{v:.0f}"
    return f"{v:.3g}{unit}" if unit == "×" else f"{v:.3g} {unit}"


def _threshold(row: dict[str, Any]) -> str:
    t = row["threshold"]
    shown = "1/3" if abs(t - 1 / 3) < 1e-12 else _num(t, row["unit"])
    if row["unit"] == "×" and shown == "1/3":
        shown += "×"
    return f"{row['op'].replace('<=', '≤').replace('>=', '≥')} {shown}"


def table(rows: list[dict[str, Any]]) -> str:
    """The terminal table: verdict first."""
    out = []
    for r in rows:
        measured = _num(r["value"], r["unit"]) if r["value"] is not None else "—"
        where = f"{r['file']}, {r['machine']}" if r["machine"] else r["file"]
        mark = {"met": "met    ", "not met": "NOT MET", "no data": "no data"}[r["verdict"]]
        quick = " (quick sizes)" if r["quick"] else ""
        out.append(f"{mark}  {r['target']:<14} {measured:>10} (target {_threshold(r)})  [{where}]{quick}")
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table BENCHMARKS.md carries between its targets markers (generated: do not edit by hand)."""
    lines = [
        "| target | set by | threshold | measured | verdict | where (machine) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        measured = _num(r["value"], r["unit"]) if r["value"] is not None else "—"
        where = f"`{r['file']}` ({r['machine']})" if r["machine"] else f"`{r['file']}`"
        verdict_cell = {"met": "met", "not met": "**not met**", "no data": "no data yet"}[r["verdict"]]
        cells = [r["description"], r["source"], _threshold(r), measured, verdict_cell, where]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(rows: list[dict[str, Any]], path: Path = BENCHMARKS_MD) -> bool:
    """Replace the block between the targets markers of ``path``; True when the file changed."""
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no {START} … {END} block to write the targets table into")
    block = f"{START}\n{markdown(rows)}\n{END}"
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, count=1, flags=re.S)
    if new != text:
        from featstat._atomic import atomic_write_text

        atomic_write_text(path, new)
    return new != text


def markdown_block(path: Path = BENCHMARKS_MD) -> str | None:
    """The table currently between the targets markers of ``path`` (None without markers)."""
    text = path.read_text()
    m = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, flags=re.S)
    return m.group(1) if m else None


def run_sources(device: str, quick: bool, save: Path | None) -> list[Source]:
    """Measure what the targets need now, through ``gpu.py``'s suite."""
    import gpu

    mode = "compare-quick" if quick else "compare"
    if device == "cuda":
        mode = "quick" if quick else "full"
    if mode in RUN_SIZES:  # this module's sizes for its own modes (gpu.py's for "quick" / "full")
        gpu.SIZES[mode] = RUN_SIZES[mode]
    sections = ("equality", "losses", "prior") if device == "cuda" else ("losses", "prior")
    doc = gpu.run_suite(device, quick, sections, mode=mode, budget_s=3600)
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return [(f"this run ({mode})", _sections(doc), quick)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--from-results", action="store_true", help="judge results/*.json (default)")
    mode.add_argument("--run", action="store_true", help="measure now (through gpu.py's suite) and judge")
    p.add_argument("--quick", action="store_true", help="with --run: small sizes (indicative verdicts)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="with --run")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the results JSON files")
    p.add_argument("--save", type=Path, help="with --run: also write the run's JSON here")
    p.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md table instead")
    p.add_argument("--write", action="store_true", help="rewrite the targets table of BENCHMARKS.md")
    p.add_argument("--json", action="store_true", help="print the verdict rows as JSON")
    p.add_argument("--strict", action="store_true", help="exit status 1 when a measured target is not met")
    args = p.parse_args(argv)
    if args.run:
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                print("no CUDA device: nothing measured")
                return 0
        sources = run_sources(args.device, args.quick, args.save)
    else:
        sources = results_sources(args.results)
    rows = judge(sources)
    if args.write:
        if args.run:
            p.error("--write takes the committed results (--from-results), not a fresh run")
        changed = write_markdown(rows)
        print(f"{BENCHMARKS_MD.name}: targets table {'rewritten' if changed else 'already up to date'}")
    if args.json:
        print(json.dumps(rows, indent=1))
    elif args.markdown:
        print(markdown(rows))
    else:
        print(table(rows))
        counts = {v: sum(r["verdict"] == v for r in rows) for v in ("met", "not met", "no data")}
        print(f"\n{counts['met']} met, {counts['not met']} not met, {counts['no data']} without data "
              f"({len(TARGETS)} targets)")  # fmt: skip
    return 1 if args.strict and any(r["verdict"] == "not met" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
