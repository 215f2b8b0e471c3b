"""The GPU check: one prepared run that proves featstat's CUDA paths and measures them, written to one JSON.

    bash benchmarks/gpu.sh                              # on a CUDA machine: ≤ 8 min on one H200
    .venv/bin/python benchmarks/gpu.py --quick          # ~2 min: smaller CX sizes, fewer steps
    .venv/bin/python benchmarks/gpu.py --device cpu --quick   # every check on the CPU at tiny sizes (a test)

What it prints first: torch's version, whether CUDA is available, the CUDA / cuDNN versions and the device.
Without a CUDA device (and without ``--device cpu``) it stops there: "no CUDA device: nothing measured",
exit status 0, no file written.

Sections (each case guarded: an error or out-of-memory is recorded, the run goes on; cases past the time
budget are recorded as skipped):

1. ``equality`` — every registered loss and metric (``featstat.registry`` when it exists, else
   ``featstat.losses.LOSSES`` / ``featstat.metrics.METRICS``) on seeded inputs, computed on the device in
   float32 and under bfloat16 / float16 autocast, against the CPU float32 value (and, for losses, the gradient
   with respect to the prediction). Tolerances: :data:`TOLERANCES` (float32 tight, TF32 switched off for the
   check; autocast loose, in units of the format's machine epsilon).
2. ``losses`` — the contextual loss forward+backward at 64², 128², 256² × 256 channels against the full-matrix
   formulation (``_naive.py``; out of memory is a result), the shared ``Objective`` against one VGG-19
   forward+backward, and the PDL vs perceptual-L1 training step (VGG-16 to conv4_3, batch 4, 256²): the
   functions of ``losses.py`` with ``device``; time = median after a warm-up, each call synchronised; peak =
   ``torch.cuda.max_memory_allocated`` minus the memory in use before the calls. Same JSON shape as
   ``results/losses.json`` (``results``, ``ratios``).
3. ``prior`` — Deep Image Prior seconds per Adam step of the default skip network at 256² (and 512² in the
   full run; ``prior.py``'s speed case with ``device``): "fp32" is float32, NCHW, eager — the public
   reference code's settings, our faithful stand-in for it (TF32 as torch's defaults leave it, like the
   reference) — against "auto" (what the precision policy picks) and the explicit fp32 / bf16 / fp16 +
   channels_last variants. Same shape as ``results/prior.json`` (``speed.rows``).

Cases run in this one process (the CUDA allocator's peak statistics are per case; ``--fresh`` runs the loss
cases in fresh processes instead, as ``losses.py`` does). The JSON goes to ``results/gpu.json`` (CUDA) or
``results/gpu-cpu.json``, or ``--out``; ``benchmarks/compare.py --from-results`` judges its numbers against
the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
if str(HERE) not in sys.path:  # so that ``import losses`` finds the benchmark module when run from elsewhere
    sys.path.insert(0, str(HERE))

#: Equality tolerances against the CPU float32 result: a value passes when |v − ref| ≤ atol + rtol·|ref|, a
#: gradient when ‖g − g_ref‖₂ ≤ grad · ‖g_ref‖₂ (atol only matters for values near 0). float32 is tight
#: (different summation orders only; TF32 off); autocast is loose: bfloat16 has ε = 2⁻⁸ ≈ 3.9e-3, so
#: rtol ≈ 10 ε; float16 has ε = 2⁻¹¹ ≈ 4.9e-4, rtol ≈ 20 ε
#: (a few chained reduced-precision products, e.g. a VGG pass in a deep metric, before float32 statistics).
TOLERANCES: dict[str, dict[str, float]] = {
    "float32": {"rtol": 1e-4, "atol": 1e-7, "grad": 1e-3},
    "bfloat16": {"rtol": 4e-2, "atol": 1e-5, "grad": 1e-1},
    "float16": {"rtol": 1e-2, "atol": 1e-6, "grad": 5e-2},
}

#: The CX metric's paper bandwidth h = 0.1 saturates on these near-duplicate pairs of random-weight features
#: (every column maximum is exactly 1 in float32, so the value is exactly 0 whatever the precision: a check
#: that cannot fail); h = 0.5 gives values 0.01-0.25 at 32²-64² images.
_NOT_SATURATED: dict[str, dict[str, Any]] = {"cx": {"bandwidth": 0.5}}

#: Sizes per mode. "cpu-quick" is the tiny run the test uses; "quick" ≈ 2 min and "full" ≤ 8 min on an H200.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "feature": (2, 32, 32, 32), "image": 64, "ms_ssim": 192, "metric_options": {**_NOT_SATURATED},
        "cx": [64, 128, 256], "channels": 256, "cx_repeat": 3,
        "objective": 256, "step": (4, 256), "repeat": 5,
        "dip": [256, 512], "dip_steps": 20, "dip_warmup": 3,
    },
    "quick": {
        "feature": (2, 32, 32, 32), "image": 64, "ms_ssim": 192, "metric_options": {**_NOT_SATURATED},
        "cx": [64, 128], "channels": 256, "cx_repeat": 3,
        "objective": 256, "step": (4, 256), "repeat": 3,
        "dip": 256, "dip_steps": 8, "dip_warmup": 2,
    },
    "cpu-quick": {
        "feature": (2, 8, 16, 16), "image": 32, "ms_ssim": 176,
        "metric_options": {
            "patch_": {"num_projections": 8, "grid_size": 32, "emd_bins": 8}, **_NOT_SATURATED
        },
        "cx": [8, 16], "channels": 32, "cx_repeat": 1,
        "objective": 32, "step": (1, 32), "repeat": 1,
        "dip": 64, "dip_steps": 2, "dip_warmup": 1,
    },
}  # fmt: skip

#: Default time budget in seconds per mode (cases that would start after it are skipped and say so).
BUDGET = {"full": 480.0, "quick": 120.0, "cpu-quick": 120.0}


# ------------------------------------------------------------------------------------------------ context


def versions() -> dict[str, Any]:
    """torch / CUDA / cuDNN versions, CUDA availability and the device; nothing here imports featstat."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "tf32": {  # torch's defaults, which the speed cases keep (the equality check turns both off)
            "matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn": torch.backends.cudnn.allow_tf32,
        },
    }
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info.update(
            device_count=torch.cuda.device_count(),
            device_name=torch.cuda.get_device_name(0),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            memory_gib=round(props.total_memory / 2**30, 1),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return info


def commit() -> dict[str, Any]:
    """The featstat commit measured: ``git rev-parse HEAD`` (and whether the tree had changes), else
    ``$FEATSTAT_COMMIT`` (a copy of the tree without ``.git``), else "unknown"."""
    root = HERE.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=20, check=False,
        ).stdout.strip()  # fmt: skip
        return {"commit": head, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": os.environ.get("FEATSTAT_COMMIT", "unknown"), "dirty": None}


class Budget:
    """Wall-clock budget: :meth:`left` says whether a new case may start."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.elapsed() < self.seconds


def _error(exc: BaseException) -> str:
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "out of memory"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _free(device: str) -> None:
    """Return cached CUDA blocks after a case (so the next case's peak starts clean); never raises."""
    if device.startswith("cuda"):
        try:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        except RuntimeError as exc:  # a sticky CUDA error: the next case will report it
            _log(f"could not free CUDA memory: {_error(exc)}")


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """float32 means float32 for the equality check (cuDNN convolutions default to TF32 on Ampere+)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---------------------------------------------------------------------------------------------- equality


def registered() -> dict[str, dict[str, Callable[..., torch.nn.Module]]]:
    """``{"loss": {name: factory}, "metric": {name: factory}}``: the one registry (``featstat.registry``) when
    it exists, else the per-package tables. A factory builds the module from keyword options."""
    tables: dict[str, Any] = {}
    if importlib.util.find_spec("featstat.registry") is not None:
        import featstat.registry as reg

        tables = {"loss": getattr(reg, "LOSSES", None), "metric": getattr(reg, "METRICS", None)}
    if tables.get("loss") is None:
        from featstat.losses import LOSSES

        tables["loss"] = LOSSES
    if tables.get("metric") is None:
        from featstat.metrics import METRICS

        tables["metric"] = METRICS
    out: dict[str, dict[str, Callable[..., torch.nn.Module]]] = {}
    for kind, table in tables.items():
        names = table.names() if hasattr(table, "names") else list(table)
        out[kind] = {}
        for name in names:
            entry = table[name]
            out[kind][name] = getattr(entry, "module", entry)  # MetricInfo(function, module, ...) or a class
    return out


def _options(kind: str, name: str, factory: Callable[..., Any], sizes: dict[str, Any]) -> dict[str, Any]:
    """Constructor options: seeded random weights for deep metrics (no download), no LPIPS calibration file,
    and the mode's cheaper settings (``metric_options``, by name prefix)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    opts: dict[str, Any] = {}
    if "weights" in params and isinstance(params["weights"].default, str):  # a weights registry name
        opts["weights"] = None
    if "calibration" in params:
        opts["calibration"] = None
    if kind == "metric":
        for prefix, extra in sizes["metric_options"].items():
            if name.startswith(prefix):
                opts.update({k: v for k, v in extra.items() if k in params})
    return opts


def _inputs(kind: str, name: str, sizes: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded CPU inputs: feature maps (losses) or images in [0, 1] (metrics; unit normals for angular
    metrics); the target is the prediction plus noise, so that values are far from zero."""
    g = torch.Generator().manual_seed(0)
    if kind == "loss":
        shape = sizes["feature"]
    else:
        s = sizes["ms_ssim"] if name.startswith("ms_ssim") else sizes["image"]
        shape = (2, 3, s, s)
    pred = torch.rand(shape, generator=g)
    target = (pred + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
    if name.startswith("angular"):
        pred, target = (torch.nn.functional.normalize(t * 2 - 1, dim=1) for t in (pred, target))
    return pred, target


def _evaluate(
    module: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor, grad: bool
) -> tuple[float, torch.Tensor | None]:
    p = pred.clone().requires_grad_(grad)
    if grad:
        value = module(p, target)
        value.float().sum().backward()
        return float(value.detach().float().mean()), p.grad.detach().float().cpu()
    with torch.no_grad():
        return float(module(p, target).float().mean()), None


def check_entry(
    kind: str, name: str, factory: Callable[..., Any], device: str, sizes: dict[str, Any]
) -> dict[str, Any]:
    """One registered loss or metric: CPU float32 reference, then the device in float32 / bf16 / fp16."""
    opts = _options(kind, name, factory, sizes)
    out: dict[str, Any] = {"kind": kind, "name": name, "options": {k: repr(v) for k, v in opts.items()}}
    grad = kind == "loss"
    try:
        torch.manual_seed(0)
        module = factory(**opts)
        pred, target = _inputs(kind, name, sizes)
        ref, ref_grad = _evaluate(module, pred, target, grad)
    except Exception as exc:  # a failure is a result
        return {**out, "ok": False, "error": f"CPU reference: {_error(exc)}"}
    out.update(reference=ref, checks={})
    dev_module = copy.deepcopy(module).to(device)
    dp, dt = pred.to(device), target.to(device)
    for dtype, tol in TOLERANCES.items():
        try:
            if dtype == "float32":
                with _no_tf32():
                    value, g = _evaluate(dev_module, dp, dt, grad)
            else:
                with torch.autocast(torch.device(device).type, dtype=getattr(torch, dtype)):
                    value, g = _evaluate(dev_module, dp, dt, grad)
        except Exception as exc:  # a failure is a result
            out["checks"][dtype] = {"ok": False, "error": _error(exc)}
            continue
        err = abs(value - ref)
        ok = math.isfinite(value) and err <= tol["atol"] + tol["rtol"] * abs(ref)
        res: dict[str, Any] = {"value": value, "abs_error": err, "rel_error": err / max(abs(ref), 1e-30)}
        if g is not None and ref_grad is not None:
            norm = float(ref_grad.norm())
            gerr = float((g - ref_grad).norm()) / norm if norm > 0 else float(g.norm())
            res["grad_rel_error"] = gerr
            ok = ok and math.isfinite(gerr) and gerr <= tol["grad"]
        out["checks"][dtype] = {**res, "ok": bool(ok)}
    out["ok"] = all(c["ok"] for c in out["checks"].values())
    _free(device)
    return out


def equality(device: str, sizes: dict[str, Any], budget: Budget) -> dict[str, Any]:
    entries = []
    for kind, table in registered().items():
        for name, factory in table.items():
            if not budget.left():
                entries.append({"kind": kind, "name": name, "ok": None, "error": "skipped: time budget"})
                continue
            t0 = time.perf_counter()
            entry = check_entry(kind, name, factory, device, sizes)
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            entries.append(entry)
            failed = [d for d, c in entry.get("checks", {}).items() if not c["ok"]]
            note = entry.get("error") or (f"outside tolerance: {', '.join(failed)}" if failed else "ok")
            _log(f"equality {kind} {name}: {note}")
    return {
        "tolerances": TOLERANCES,
        "entries": entries,
        "passed": sum(e["ok"] is True for e in entries),
        "failed": [f"{e['kind']} {e['name']}" for e in entries if e["ok"] is False],
        "skipped": [f"{e['kind']} {e['name']}" for e in entries if e["ok"] is None],
    }


# -------------------------------------------------------------------------------------------- measurements


def _run(fn: Callable[[dict], dict], case: dict, budget: Budget, fresh: bool) -> dict:
    if not budget.left():
        return {**case, "error": "skipped: time budget"}
    if fresh:
        from _harness import run_case

        return run_case("losses", case, timeout=max(budget.seconds - budget.elapsed(), 30))
    try:
        return fn(case)
    except Exception as exc:  # a failure is a result
        return {**case, "error": _error(exc)}
    finally:
        _free(case.get("device", "cpu"))


def loss_cases(device: str, sizes: dict[str, Any]) -> list[dict]:
    """The cases of ``losses.py`` this check runs: CX (featstat and full matrix), PDL / perceptual step,
    Objective vs one VGG pass."""
    out = []
    for size in sizes["cx"]:
        for impl in ("featstat", "full-matrix"):
            out.append({"kind": "loss", "loss": "cx", "impl": impl, "size": size,
                        "channels": sizes["channels"], "device": device,
                        "repeat": 1 if size >= 256 else sizes["cx_repeat"]})  # fmt: skip
    batch, size = sizes["step"]
    for impl in ("perceptual-l1", "pdl"):
        out.append({"kind": "step", "impl": impl, "size": size, "batch": batch, "device": device,
                    "repeat": sizes["repeat"]})  # fmt: skip
    for impl in ("vgg-only", "objective", "separate"):
        out.append({"kind": "objective", "impl": impl, "size": sizes["objective"], "device": device,
                    "repeat": sizes["repeat"]})  # fmt: skip
    return out


def measure_losses(device: str, sizes: dict[str, Any], budget: Budget, fresh: bool) -> dict[str, Any]:
    import losses as bench

    fns = {"loss": bench.run_loss_case, "step": bench.run_step_case, "objective": bench.run_objective_case}
    results = []
    for case in loss_cases(device, sizes):
        r = _run(fns[case["kind"]], case, budget, fresh)
        results.append(r)
        what = f"{case['kind']} {case.get('loss', '')} {case['impl']} {case['size']}"
        _log(f"{what}: " + (r["error"] if "error" in r else f"{r['seconds']:.4f} s, "
                            f"{r['peak_extra_mib']:.0f} MiB"))  # fmt: skip
    return {"results": results, "ratios": bench._ratio_rows(results), "markdown": bench.markdown(results)}


def dip_variants(device: str) -> dict[str, dict[str, Any]]:
    """Variant name → FitOptions overrides: the reference settings, the policy's pick and the explicit
    reduced-precision layouts the device has."""
    out: dict[str, dict[str, Any]] = {"fp32": {}, "auto": {"precision": "auto", "channels_last": None}}
    if device.startswith("cuda"):
        out["fp32-cl"] = {"precision": "fp32", "channels_last": True}
        if torch.cuda.is_bf16_supported():
            out["bf16-cl"] = {"precision": "bf16", "channels_last": True}
        out["fp16-cl"] = {"precision": "fp16", "channels_last": True}
    return out


def measure_prior(device: str, sizes: dict[str, Any], budget: Budget) -> dict[str, Any]:
    import prior as bench

    labelled, results = [], []
    dip_sizes = sizes["dip"] if isinstance(sizes["dip"], list) else [sizes["dip"]]
    for size in dip_sizes:
        for variant, options in dip_variants(device).items():
            # "variant" of the case is the VARIANTS base the options override; the label goes on the result
            case = {"kind": "speed", "variant": "fp32", "size": size, "steps": sizes["dip_steps"],
                    "warmup": sizes["dip_warmup"], "device": device, "options": options}  # fmt: skip
            if not device.startswith("cuda"):
                case["threads"] = torch.get_num_threads()
            r = {**_run(bench.run_speed_case, case, budget, fresh=False), "variant": variant}
            labelled.append({**case, "variant": variant})
            results.append(r)
            _log(f"prior {variant} {size}²: " + (r["error"] if "error" in r else
                 f"{r['seconds']:.4f} s/step, {r['peak_extra_mib']:.0f} MiB"))  # fmt: skip
    return {"speed": {"cases": results, "rows": bench.speed_rows(labelled, results)}}


# ------------------------------------------------------------------------------------------------- driver


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_suite(
    device: str,
    quick: bool,
    sections: tuple[str, ...] = ("equality", "losses", "prior"),
    budget_s: float | None = None,
    fresh: bool = False,
    mode: str | None = None,
) -> dict[str, Any]:
    """Run the checks on ``device`` and return the JSON document (also used by ``compare.py --run``).

    Sizes: ``SIZES[mode]``; by default "full" or "quick" on CUDA, "full" or "cpu-quick" on the CPU.
    """
    from _harness import machine

    if mode is None:
        mode = ("cpu-quick" if quick else "full") if device == "cpu" else ("quick" if quick else "full")
    sizes = SIZES[mode]
    budget = Budget(BUDGET.get(mode, 600.0) if budget_s is None else budget_s)
    if device == "cpu":
        torch.set_num_threads(1)  # shared machines: one thread, as the CPU benchmarks' single-thread rows
    doc: dict[str, Any] = {
        "what": "benchmarks/gpu.py: CUDA vs CPU equality and CUDA speed/memory of featstat",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": device,
        "mode": mode,
        "sizes": sizes,
        "versions": versions(),
        **commit(),
        "machine": machine(),
    }
    import featstat

    doc["featstat"] = getattr(featstat, "__version__", None)
    for section in sections:
        t0 = time.perf_counter()
        try:
            if section == "equality":
                doc["equality"] = equality(device, sizes, budget)
            elif section == "losses":
                doc["losses"] = measure_losses(device, sizes, budget, fresh)
            elif section == "prior":
                doc["prior"] = measure_prior(device, sizes, budget)
        except Exception:  # a broken section must not lose the others
            doc[section] = {"error": traceback.format_exc(limit=4)}
        doc.setdefault("section_seconds", {})[section] = round(time.perf_counter() - t0, 2)
    doc["seconds"] = round(budget.elapsed(), 2)
    return doc


def summary(doc: dict[str, Any]) -> str:
    """A few lines for the terminal: equality verdicts and the headline ratios."""
    lines = [f"{doc['device']} ({doc['versions'].get('device_name', doc['machine'].get('cpu'))}), "
             f"mode {doc['mode']}, {doc['seconds']:.0f} s"]  # fmt: skip
    eq = doc.get("equality", {})
    if "entries" in eq:
        failed, skipped = ", ".join(eq["failed"]) or "none", ", ".join(eq["skipped"]) or "none"
        lines.append(f"equality: {eq['passed']} of {len(eq['entries'])} within tolerance; "
                     f"failed: {failed}; skipped: {skipped}")  # fmt: skip
    if "markdown" in doc.get("losses", {}):
        lines.append(doc["losses"]["markdown"])
    rows = doc.get("prior", {}).get("speed", {}).get("rows", [])
    for r in rows:
        sp = r.get("speedup_vs_fp32")
        lines.append(f"DIP {r['variant']} {r['size']}²: {r['best_seconds_per_step']:.4f} s/step"
                     + (f", {sp:.2f}× fp32" if sp else ""))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~2 min on a GPU; tiny on CPU)")
    parser.add_argument("--only", help="comma-separated sections: equality,losses,prior")
    parser.add_argument("--budget", type=float, help="seconds; later cases are skipped (default per mode)")
    parser.add_argument("--fresh", action="store_true", help="loss cases in fresh processes")
    parser.add_argument("--out", type=Path, help="JSON path (default results/gpu.json or gpu-cpu.json)")
    args = parser.parse_args(argv)
    info = versions()
    print(
        f"torch {info['torch']}, CUDA available: {info['cuda_available']}, CUDA build {info['cuda_build']}, "
        f"cuDNN {info['cudnn']}" + (f", device {info['device_name']}" if info["cuda_available"] else ""),
        flush=True,
    )
    if args.device == "cuda" and not info["cuda_available"]:
        print("no CUDA device: nothing measured (run with --device cpu --quick to exercise the script)")
        return 0
    sections = tuple(args.only.split(",")) if args.only else ("equality", "losses", "prior")
    unknown = set(sections) - {"equality", "losses", "prior"}
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from equality, losses, prior")
    doc = run_suite(args.device, args.quick, sections, args.budget, args.fresh)
    out = args.out or RESULTS / ("gpu.json" if args.device == "cuda" else "gpu-cpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    from featstat._atomic import atomic_write_text

    atomic_write_text(out, json.dumps(doc, indent=1, default=str) + "\n")
    print(summary(doc))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
