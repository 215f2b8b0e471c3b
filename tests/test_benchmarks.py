"""The benchmark tooling of issue 14: targets as data (``benchmarks/targets.py``), the ``--compare`` mode
(``benchmarks/compare.py``) on the committed results, and the GPU check script (``benchmarks/gpu.py``) end to
end on the CPU at tiny sizes. No speed is asserted here (targets live in BENCHMARKS.md, never in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import compare  # noqa: E402
import targets  # noqa: E402
from targets import TARGETS, Measure, Target  # noqa: E402

VERDICTS = {"met", "not met", "no data"}


def _script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FEATSTAT_PRECISION_MEASURE="0", FEATSTAT_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


# ------------------------------------------------------------------------------------------------ targets


def test_targets_are_well_formed_data():
    names = [t.name for t in TARGETS]
    assert len(names) == len(set(names))
    for t in TARGETS:
        assert t.op in targets.OPS and t.measures and t.source.startswith("issue")
        for m in t.measures:
            assert m.best in ("only", "max", "min", "count")
            assert m.file == "gpu.json" or (BENCH / "results" / m.file).is_file(), m.file


def _doc() -> dict:
    return {
        "rows": [
            {"variant": "fp32", "threads": 1, "speed": 1.0, "size": 8},
            {"variant": "fast", "threads": 1, "speed": 3.0, "size": 8},
            {"variant": "fast", "threads": 2, "speed": 1.5, "size": 8},
            {"variant": "fast", "threads": 2, "speed": 9.0, "size": 4},
            {"variant": "fast", "threads": 3, "error": "timed out", "size": 8},
        ],
        "den": [{"k": "a", "seconds": 2.0}],
    }


def test_measure_selection_reduction_and_ratio():
    doc = _doc()
    fast = Measure(
        "x.json", ("rows",), "speed", {"size": 8, "variant": ("fast", "other")}, best="max", per="threads"
    )
    assert targets.value(doc, fast, ">=") == 1.5  # worst thread count (records with an error are ignored)
    assert targets.value(doc, fast, "<=") == 3.0
    assert targets.value(doc, fast, ">=", quick=False) == 1.5
    quick = Measure(
        "x.json", ("rows",), "speed", {"size": 8, "variant": "fast", "threads": 2}, quick={"size": 4}
    )
    assert targets.value(doc, quick, ">=", quick=True) == 9.0
    several = Measure("x.json", ("rows",), "speed", {"variant": "fast"})
    assert targets.value(doc, several, ">=") is None  # "only" refuses an ambiguous selection
    ratio = Measure(
        "x.json", ("rows",), "speed", {"variant": "fp32"}, divide_by=Measure("x.json", ("den",), "seconds")
    )
    assert targets.value(doc, ratio, "<=") == 0.5
    count = Measure("x.json", ("rows",), "speed", {"variant": "fast"}, best="count")
    assert targets.value(doc, count, "<=") == 3
    assert targets.value({"other": []}, count, "<=") is None  # a document without the list: no data
    t = Target("t", "d", ">=", 2.0, "×", "issue 0", "x", (fast,))
    assert [targets.verdict(t, v) for v in (1.5, 2.0, None)] == ["not met", "met", "no data"]


# ------------------------------------------------------------------------------------------------ compare


def test_compare_from_results_judges_every_target():
    out = _script(str(BENCH / "compare.py"), "--from-results", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["target"] for r in rows} == {t.name for t in TARGETS}
    assert all(r["verdict"] in VERDICTS for r in rows)
    by = {(r["target"], r["file"]): r for r in rows}
    # the committed CPU numbers (BENCHMARKS.md): CX 219 MiB at 128², PDL step 1.20× on the Xeon, 1.04× on EPYC
    assert by["cx-128-memory", "losses.json"]["verdict"] == "met"
    assert by["cx-128-memory", "losses.json"]["value"] == pytest.approx(219, abs=1)
    assert by["pdl-step", "losses.json"]["verdict"] == "not met"
    assert by["pdl-step", "losses.json"]["value"] == pytest.approx(1.196, abs=0.01)
    assert by["pdl-step", "pdl-step-amd-epyc.json"]["verdict"] == "met"
    assert by["objective", "losses.json"]["value"] == pytest.approx(1.217, abs=0.01)
    strict = _script(str(BENCH / "compare.py"), "--strict", timeout=120)
    assert strict.returncode == 1 and "NOT MET" in strict.stdout


def test_benchmarks_md_targets_table_matches_the_results():
    rows = compare.judge(compare.results_sources())
    table = compare.markdown(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[1] == "|---" * 6 + "|"
    for line, row in zip(lines[2:], rows, strict=True):  # one parsable row of 6 cells per verdict
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 6 and cells[0] == row["description"]
        assert {"met": "met", "not met": "**not met**", "no data": "no data yet"}[row["verdict"]] == cells[4]
    assert compare.markdown_block() == table, (
        "BENCHMARKS.md's targets table is out of date: run .venv/bin/python benchmarks/compare.py --write"
    )


def test_write_markdown_replaces_only_the_block(tmp_path):
    md = tmp_path / "B.md"
    md.write_text(f"intro\n{compare.START}\nold\n{compare.END}\ntail\n")
    rows = compare.judge(compare.results_sources())
    assert compare.write_markdown(rows, md)
    text = md.read_text()
    assert text.startswith("intro\n") and text.endswith("tail\n") and "\nold\n" not in text
    assert not compare.write_markdown(rows, md)  # idempotent


# ------------------------------------------------------------------------------------------------ gpu.py


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_script_without_cuda_measures_nothing(tmp_path):
    out = _script(str(BENCH / "gpu.py"), "--out", str(tmp_path / "g.json"), timeout=120)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"torch {torch.__version__}, CUDA available: False")
    assert "no CUDA device: nothing measured" in out.stdout
    assert not (tmp_path / "g.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_sh_without_cuda_exits_0(tmp_path):
    """The device tool's one-liner: finds a Python with torch, says why nothing ran, copies nothing."""
    wrapper = subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), "--quick"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, OUT=str(tmp_path)), check=False,
    )  # fmt: skip
    assert wrapper.returncode == 0, wrapper.stderr
    assert "no CUDA device: nothing measured" in wrapper.stdout and not list(tmp_path.glob("gpu*.json"))


@pytest.mark.slow
def test_gpu_script_on_cpu_end_to_end(tmp_path):
    """``gpu.py --device cpu --quick``: every section runs, every registered loss and metric is checked, and
    compare.py judges the document (the CPU stands in for CUDA: same code paths, tiny sizes)."""
    path = tmp_path / "gpu-cpu.json"
    out = _script(str(BENCH / "gpu.py"), "--device", "cpu", "--quick", "--out", str(path), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(path.read_text())
    assert doc["versions"]["torch"] == torch.__version__ and doc["commit"]
    assert doc["mode"] == "cpu-quick" and "error" not in doc.get("equality", {})
    import gpu

    registered = gpu.registered()
    checked = {(e["kind"], e["name"]) for e in doc["equality"]["entries"]}
    assert checked == {(k, n) for k, table in registered.items() for n in table}
    assert len(checked) >= 20
    for e in doc["equality"]["entries"]:
        if "checks" in e:  # float32 on the same device is bit-identical to the reference
            assert e["checks"]["float32"]["ok"], e
    assert {(r["loss"], r["size"]) for r in doc["losses"]["ratios"]} == {("cx", 8), ("cx", 16)}
    kinds = {(r["kind"], r["impl"]) for r in doc["losses"]["results"] if "error" not in r}
    assert {("step", "pdl"), ("step", "perceptual-l1"), ("objective", "objective")} <= kinds
    rows = {r["variant"]: r for r in doc["prior"]["speed"]["rows"]}
    assert set(rows) == {"fp32", "auto"} and rows["fp32"]["speedup_vs_fp32"] == 1.0
    judged = compare.judge([("run", compare._sections(doc), True)])
    assert {r["target"] for r in judged} == {t.name for t in TARGETS}
    assert next(r for r in judged if r["target"] == "gpu-equality")["verdict"] in ("met", "not met")


@pytest.mark.slow
def test_compare_run_quick_measures_and_judges(monkeypatch, capsys, tmp_path):
    """``compare.py --run --quick`` through gpu.py's suite, at even smaller sizes than its own quick mode."""
    tiny = {**compare.RUN_SIZES["compare-quick"], "channels": 16, "objective": 32, "step": (1, 32)}
    tiny.update(dip_steps=1, dip_warmup=1, repeat=1)
    monkeypatch.setitem(compare.RUN_SIZES, "compare-quick", tiny)
    monkeypatch.setenv("FEATSTAT_PRECISION_MEASURE", "0")
    threads = torch.get_num_threads()
    try:
        code = compare.main(["--run", "--quick", "--json", "--save", str(tmp_path / "run.json")])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["target"] for r in rows} == {t.name for t in TARGETS}
    measured = {r["target"] for r in rows if r["verdict"] != "no data"}
    assert {"cx-64-memory", "cx-128-time", "pdl-step", "objective", "dip-speed", "dip-auto"} <= measured
    assert all(r["quick"] for r in rows if r["verdict"] != "no data")
    assert json.loads((tmp_path / "run.json").read_text())["mode"] == "compare-quick"
