"""Deep Image Prior: speed of the skip network's Adam step and PSNR reached per step, in one run.

    .venv/bin/python benchmarks/prior.py speed --sizes 256 512      # s/step and peak memory per variant
    .venv/bin/python benchmarks/prior.py anatomy --threads 1 2      # FLOPs/step, profile, this CPU's limit
    .venv/bin/python benchmarks/prior.py quality denoise             # PSNR vs steps, fp32 vs the default
    .venv/bin/python benchmarks/prior.py quality sr
    .venv/bin/python benchmarks/prior.py extra                       # SR ×4 with CX / PDL terms vs without
    .venv/bin/python benchmarks/prior.py plot                        # PNGs from the JSON

Speed: every variant is the *same* network (the reference "skip" default: 32-channel noise input, 5 levels ×
128 channels, 4 skip channels, 2.2 M parameters) running the *same* engine step (input perturbation, forward,
MSE, backward, Adam, averaging, backtracking snapshot), at 256² and 512². The baseline is "fp32": float32,
NCHW, eager — the reference code's settings. Each case runs in a fresh process (peak RSS is clean); cases are
interleaved over ``--rounds`` so that load from other processes on this shared machine hits all of them
alike; the table reports the median step time over rounds.

Quality: the engine on real images from ``../shared/images`` (reduced sizes and step counts, stated in the
output), logging the PSNR against the ground truth at every step, once per precision.

Results go to ``benchmarks/results/prior.json`` (one key per section) and ``prior-*.png``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from _harness import _rss_mib, machine, run_case

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = HERE.parent / "out" / "prior-bench"  # full-size outputs of the quality runs (git-ignored)
FIGURES = HERE.parent / "docs" / "images" / "prior"
SHARED = Path(os.environ.get("FEATSTAT_SHARED", HERE.parent.parent / "shared"))

#: variant → FitOptions precision / channels_last / compile
VARIANTS = {
    "fp32": dict(precision="fp32", channels_last=False, compile=False),
    "fp32-cl": dict(precision="fp32", channels_last=True, compile=False),
    "bf16": dict(precision="bf16", channels_last=False, compile=False),
    "bf16-cl": dict(precision="bf16", channels_last=True, compile=False),
    "fp32-compile": dict(precision="fp32", channels_last=False, compile=True),
    "bf16-cl-compile": dict(precision="bf16", channels_last=True, compile=True),
}


# ------------------------------------------------------------------------------------------------- speed


def run_speed_case(case: dict) -> dict:
    """One speed case: ``warmup + steps`` engine steps of :func:`featstat.prior.denoise` on a seeded random
    1×3×size² image; returns the median / best seconds per step after the warm-up and the peak extra memory.

    Keys of ``case``: ``variant`` (a :data:`VARIANTS` name; ``options`` overrides its FitOptions, e.g.
    ``{"precision": "auto"}``), ``size``, ``steps``, ``warmup``, ``threads`` (CPU threads; omitted: leave
    torch's setting), ``device`` ("cpu" default, or "cuda": steps are synchronised before each time stamp and
    peak memory is the CUDA allocator's).
    """
    from featstat import prior

    device = case.get("device", "cpu")
    cuda = device.startswith("cuda")
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    size = case["size"]
    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, 3, size, size, generator=g)
    stamps: list[float] = []
    cpu: list[float] = []

    def tick(run: int, step: int, loss: float) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())

    options = {**VARIANTS[case["variant"]], **case.get("options", {})}
    if cuda:
        options["device"] = device
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _rss_mib()
    t0 = time.perf_counter()
    steps = case["warmup"] + case["steps"]
    result = prior.denoise(noisy, steps=steps, progress=False, callback=tick, **options)
    times = [b - a for a, b in zip(stamps[case["warmup"] - 1 :], stamps[case["warmup"] :], strict=False)]
    cpu_times = [b - a for a, b in zip(cpu[case["warmup"] - 1 :], cpu[case["warmup"] :], strict=False)]
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    out = {
        **case,
        "seconds": statistics.median(times),
        "seconds_min": min(times),
        "cpu_seconds": statistics.median(cpu_times),
        "first_steps_seconds": stamps[case["warmup"] - 1] - t0,
        "peak_extra_mib": max(peak, 0.0),
        "load_average": os.getloadavg()[0],
    }
    if "options" in case:  # what the policy picked, for variants that leave it to "auto"
        out["precision_choice"] = result.info.get("precision_choice")
    return out


def speed_rows(cases: list[dict], results: list[dict]) -> list[dict]:
    """One row per distinct (variant, size, threads) of ``cases``: medians over the rounds in ``results`` and
    the best-step speed-up over the "fp32" row of the same size and threads (None without one)."""
    rows = []
    for case in cases:
        mine = [
            r
            for r in results
            if "error" not in r and all(r.get(k) == case.get(k) for k in ("variant", "size", "threads"))
        ]
        if not mine:
            continue
        rows.append(
            {
                "variant": case["variant"],
                "size": case["size"],
                "threads": case.get("threads"),
                "seconds_per_step": statistics.median(r["seconds"] for r in mine),
                "seconds_per_step_rounds": [r["seconds"] for r in mine],
                "best_seconds_per_step": min(r["seconds"] for r in mine),
                "cpu_seconds_per_step": statistics.median(r["cpu_seconds"] for r in mine),
                "peak_extra_mib": max(r["peak_extra_mib"] for r in mine),
                "first_steps_seconds": statistics.median(r["first_steps_seconds"] for r in mine),
                "load_average": [r["load_average"] for r in mine],
            }
        )
        if mine[-1].get("precision_choice") is not None:
            rows[-1]["precision_choice"] = mine[-1]["precision_choice"]
    for row in rows:
        base = next(
            (
                b
                for b in rows
                if b["variant"] == "fp32" and b["size"] == row["size"] and b["threads"] == row["threads"]
            ),
            None,
        )
        row["speedup_vs_fp32"] = (
            base["best_seconds_per_step"] / row["best_seconds_per_step"] if base else None
        )
    return rows


def speed(args: argparse.Namespace) -> dict:
    cases = []
    for size in args.sizes:
        for variant in args.variants:
            if "compile" in variant and size > 256 and not args.compile_large:
                continue
            for threads in args.threads:
                n = args.steps if size <= 256 else max(2, args.steps // 2)
                cases.append(
                    {"kind": "speed", "variant": variant, "size": size, "threads": threads, "steps": n,
                     "warmup": 3 if "compile" in variant else 2}
                )  # fmt: skip
    results = []
    for r in range(args.rounds):
        for case in cases:
            res = run_case("prior", {**case, "round": r}, timeout=1800)
            print(json.dumps(res), flush=True)
            results.append(res)
    rows = speed_rows(cases, results)
    _print_speed(rows)
    return {"machine": machine(), "cases": results, "rows": rows}


def _print_speed(rows: list[dict]) -> None:
    print("\n| size | threads | variant | s/step (median) | s/step (best) | steps/s (best) | × fp32 (best) | "
          "CPU s/step | peak extra MiB |")  # fmt: skip
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        sp = f"{r['speedup_vs_fp32']:.2f}" if r["speedup_vs_fp32"] else "-"
        print(
            f"| {r['size']}² | {r['threads']} | {r['variant']} | {r['seconds_per_step']:.3f} | "
            f"{r['best_seconds_per_step']:.3f} | {1 / r['best_seconds_per_step']:.2f} | {sp} | "
            f"{r['cpu_seconds_per_step']:.2f} | "
            f"{r['peak_extra_mib']:.0f} |"
        )


# ---------------------------------------------------------------------------------------------- anatomy


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            return set(next(line for line in fh if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def _rate(fn, flops: float, repeat: int = 5) -> tuple[float, float]:
    """FLOP/s of ``fn`` by wall time and by this process's CPU time (medians of ``repeat`` calls after two
    warm-up calls); with other jobs on the cores the CPU-time rate is the steadier one."""
    for _ in range(2):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return flops / statistics.median(wall), flops / statistics.median(cpu)


def run_anatomy_case(case: dict) -> dict:
    """Where one fp32 Adam step of the default skip network goes, and how fast it could be on this CPU.

    - ``step_flops``: FLOPs of one engine step, counted by ``torch.utils.flop_counter`` as the difference
      between ``denoise(steps=2)`` and ``denoise(steps=1)`` (so setup is not counted);
    - ``seconds_per_step``: median engine step (fp32, NCHW, eager: the public reference code's settings);
    - ``sgemm_gflops`` / ``conv_gflops``: this process's measured rate of a 2048² float32 matrix product and
      of a 128→128-channel 3×3 convolution at 128² — the best the CPU's BLAS / oneDNN reach here;
    - ``peak_gflops``: clock × FLOPs per cycle per core (32 with AVX2 FMA, 64 with AVX-512) × threads;
    - ``limit_seconds``: step_flops ÷ sgemm rate — the step if every FLOP ran at matrix-product speed and
      everything else were free; ``max_speedup_fp32`` = seconds_per_step ÷ limit_seconds is the most any
      float32 implementation of the same step could gain on this CPU; the ``*_cpu*`` fields repeat this with
      the process's CPU time instead of wall time (steadier when other jobs share the cores);
    - ``profile``: the top operators by self CPU time per step (torch.profiler).
    """
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    from featstat import prior

    torch.set_num_threads(case["threads"])
    size = case["size"]
    noisy = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    options = dict(VARIANTS["fp32"], progress=False)
    counts = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            prior.denoise(noisy, steps=steps, **options)
        counts.append(counter.get_total_flops())
    step_flops = counts[1] - counts[0]
    stamps: list[tuple[float, float]] = []

    def tick(*args: object) -> None:
        stamps.append((time.perf_counter(), time.process_time()))

    prior.denoise(noisy, steps=case["steps"] + 2, callback=tick, **options)
    seconds = statistics.median([b[0] - a[0] for a, b in itertools.pairwise(stamps[1:])])
    cpu_seconds = statistics.median([b[1] - a[1] for a, b in itertools.pairwise(stamps[1:])])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        prior.denoise(noisy, steps=2, **options)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:14]
    rows = [{"op": e.key, "share": e.self_cpu_time_total / total, "calls_per_step": e.count / 2} for e in top]
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    sgemm, sgemm_cpu = _rate(lambda: a @ b, 2 * 2048**3)
    x, w = torch.randn(1, 128, 128, 128), torch.randn(128, 128, 3, 3)
    conv, conv_cpu = _rate(lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * 128 * 128 * 9 * 128 * 128)
    flags = _cpu_flags()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
    mhz = None
    try:
        with open("/proc/cpuinfo") as fh:
            mhz = float(next(line for line in fh if line.startswith("cpu MHz")).split(":")[1])
    except (OSError, StopIteration, ValueError):
        pass
    limit = step_flops / sgemm
    return {
        **case,
        "step_flops": step_flops,
        "seconds_per_step": seconds,
        "achieved_gflops": step_flops / seconds / 1e9,
        "sgemm_gflops": sgemm / 1e9,
        "conv_gflops": conv / 1e9,
        "cpu_seconds_per_step": cpu_seconds,
        "sgemm_gflops_per_cpu_second": sgemm_cpu / 1e9,
        "conv_gflops_per_cpu_second": conv_cpu / 1e9,
        "max_speedup_fp32_cpu_time": cpu_seconds / (step_flops / sgemm_cpu),
        "peak_gflops": mhz * 1e6 * per_cycle * case["threads"] / 1e9 if mhz else None,
        "flops_per_cycle_per_core": per_cycle,
        "cpu_mhz": mhz,
        "simd": sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))),
        "limit_seconds": limit,
        "max_speedup_fp32": seconds / limit,
        "profile": rows,
        "load_average": os.getloadavg()[0],
    }


def anatomy(args: argparse.Namespace) -> dict:
    """One :func:`run_anatomy_case` per thread count and round (fresh processes), medians reported."""
    results = []
    for r in range(args.rounds):
        for threads in args.threads:
            case = {"kind": "anatomy", "size": args.sizes[0], "threads": threads, "steps": args.steps or 3}
            res = run_case("prior", {**case, "round": r}, timeout=1800)
            print(json.dumps({k: v for k, v in res.items() if k != "profile"}), flush=True)
            results.append(res)
    summary = []
    for threads in args.threads:
        mine = [r for r in results if r.get("threads") == threads and "error" not in r]
        if not mine:
            continue
        best = min(mine, key=lambda r: r["seconds_per_step"])
        summary.append(
            {
                "threads": threads,
                "size": best["size"],
                "step_gflop": best["step_flops"] / 1e9,
                "seconds_per_step": best["seconds_per_step"],
                "sgemm_gflops": max(r["sgemm_gflops"] for r in mine),
                "achieved_fraction_of_sgemm": best["achieved_gflops"] / max(r["sgemm_gflops"] for r in mine),
                "limit_seconds": best["step_flops"] / 1e9 / max(r["sgemm_gflops"] for r in mine),
                "max_speedup_fp32": best["seconds_per_step"]
                / (best["step_flops"] / 1e9 / max(r["sgemm_gflops"] for r in mine)),
                "peak_gflops": best["peak_gflops"],
                "cpu_seconds_per_step": min(r["cpu_seconds_per_step"] for r in mine),
                "sgemm_gflops_per_cpu_second": max(r["sgemm_gflops_per_cpu_second"] for r in mine),
                "max_speedup_fp32_cpu_time": min(r["cpu_seconds_per_step"] for r in mine)
                / (best["step_flops"] / 1e9 / max(r["sgemm_gflops_per_cpu_second"] for r in mine)),
                "profile": best["profile"],
            }
        )
    for row in summary:
        print(
            f"{row['size']}², {row['threads']} thread(s): {row['step_gflop']:.1f} GFLOP/step, "
            f"{row['seconds_per_step']:.2f} s/step "
            f"= {row['step_gflop'] / row['seconds_per_step']:.1f} GFLOP/s; "
            f"sgemm {row['sgemm_gflops']:.1f} GFLOP/s (peak {row['peak_gflops'] or 0:.0f}); limit "
            f"{row['limit_seconds']:.2f} s/step → at most {row['max_speedup_fp32']:.2f}× in float32; "
            f"by CPU time: "
            f"{row['cpu_seconds_per_step']:.2f} CPU s/step, sgemm {row['sgemm_gflops_per_cpu_second']:.1f} "
            f"GFLOP per CPU s → at most {row['max_speedup_fp32_cpu_time']:.2f}×"
        )
    return {"machine": machine(), "cases": results, "summary": summary}


# ----------------------------------------------------------------------------------------------- quality


def _load(path: Path) -> torch.Tensor:
    from featstat import read_image

    if not path.is_file():
        raise SystemExit(f"{path} is missing: the quality benchmark needs ../shared/images (FEATSTAT_SHARED)")
    return read_image(path)


def _centre_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def run_quality_case(case: dict) -> dict:
    from featstat import prior, write_image

    torch.set_num_threads(case["threads"])
    opts = dict(steps=case["steps"], progress=False, **VARIANTS[case["variant"]], seed=case.get("seed", 0))
    save = RUNS / case["name"] if case.get("name") else None
    t0 = time.perf_counter()
    if case["task"] == "denoise":
        clean = _centre_crop(_load(SHARED / case["image"]), case["size"], case["size"])
        noisy = prior.add_gaussian_noise(clean, 25 / 255, seed=0)
        result = prior.denoise(noisy, clean=clean, **opts)
        baseline = {"noisy": prior.psnr(noisy, clean)}
        inputs = {"noisy": noisy, "clean": clean}
    else:
        hr = _load(SHARED / case["image"])
        f = case["factor"]
        size = case.get("size")
        h, w = (size, size) if size else ((hr.shape[-2] // f) * f, (hr.shape[-1] // f) * f)
        hr = _centre_crop(hr, h, w)
        lr = prior.resize(hr, (h // f, w // f), case.get("degrade", "lanczos3")).clamp(0, 1)
        extra = None
        if case.get("extra"):
            extra = prior.statistics_objective(
                case["extra"], layers=case.get("extra_layers", ["relu3_1"]), weights=case["extra_weights"]
            )
        target = case.get("target", "bicubic")
        result = prior.super_resolve(lr, f, clean=hr, extra=extra, extra_target=target, **opts)
        bicubic = prior.resize(lr, (h, w), "bicubic").clamp(0, 1)
        baseline = {"bicubic": prior.psnr(bicubic, hr)}
        inputs = {"lowres": lr, "bicubic": bicubic, "clean": hr}
    if save is not None:
        result.save(save)
        for name, img in inputs.items():
            write_image(save / f"{name}.png", img)
    return {
        **case,
        "seconds": time.perf_counter() - t0,
        "steps_per_second": result.info["steps_per_second"],
        "psnr": result.psnr,
        "psnr_average": result.psnr_average,
        "psnr_curve": result.history["psnr"],
        "psnr_average_curve": result.history["psnr_average"],
        "baseline": baseline,
        "backtracks": result.info["backtracks"],
    }


QUALITY = {
    # Denoising σ = 25 on F16 (the reference code's image), centre crop.
    "denoise": [{"name": "denoise-f16", "task": "denoise", "image": "images/dip/denoising/F16_GT.png"}],
    # SR ×4 on the zebra (the reference's figure image) and Set5's butterfly; LR by Pillow's ANTIALIAS, the
    # reference code's degradation.
    "sr": [
        {"name": "sr-zebra", "task": "sr", "image": "images/dip/sr/zebra_GT.png", "factor": 4},
        {
            "name": "sr-butterfly",
            "task": "sr",
            "image": "images/set5/img_005_SRF_4_HR.png",
            "factor": 4,
            "size": 224,
        },  # 228 × 344
    ],
}


def quality(args: argparse.Namespace) -> dict:
    results = []
    for spec in QUALITY[args.task]:
        for seed in args.seeds:
            for variant in args.variants:
                case = {**spec, "kind": "quality", "variant": variant, "steps": args.steps, "seed": seed,
                        "threads": args.threads[0], "size": spec.get("size") or args.size or 256}  # fmt: skip
                case["name"] = f"{spec['name']}-{case['size']}-{variant}-seed{seed}"
                res = run_case("prior", case, timeout=3600)
                print(json.dumps({k: v for k, v in res.items() if "curve" not in k}), flush=True)
                results.append(res)
    _print_quality(results, args.marks)
    return {"machine": machine(), "cases": results}


def _print_quality(results: list[dict], marks: list[int]) -> None:
    head = " | ".join(f"{m} steps" for m in marks)
    print(f"\n| task | image | size | variant | seed | {head} | s/step |")
    print("|---|---|---|---|---:|" + "---:|" * (len(marks) + 1))
    for r in results:
        if "error" in r:
            print(r)
            continue
        cells = []
        for m in marks:
            if m <= len(r["psnr_curve"]):
                cells.append(f"{r['psnr_curve'][m - 1]:.2f} / {r['psnr_average_curve'][m - 1]:.2f}")
            else:
                cells.append("-")
        print(
            f"| {r['task']} | {Path(r['image']).name} | {r.get('size')} | {r.get('label') or r['variant']} | "
            f"{r.get('seed', 0)} | " + " | ".join(cells) + f" | {1 / r['steps_per_second']:.2f} |"
        )


def extra(args: argparse.Namespace) -> dict:
    """SR ×4 with an extra statistics term against the bicubic upsampling: does it help the PSNR?"""
    weights = "vgg19-caffe-normalised-to-relu3_1"
    os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
    spec = {**QUALITY["sr"][0], "kind": "quality", "steps": args.steps, "threads": args.threads[0]}
    spec["size"] = args.size or 128
    settings = [
        ("none", None, "bicubic"),
        ("cx 0.05 vs bicubic", {"contextual": 0.05}, "bicubic"),
        ("cx 0.01 vs bicubic", {"contextual": 0.01}, "bicubic"),
        ("cx 0.01 vs input", {"contextual": 0.01}, "input"),
        ("pdl 0.01 vs input", {"projected_distribution": 0.01}, "input"),
    ]
    results = []
    for label, terms, target in settings:
        case = {**spec, "variant": args.variants[0], "label": label, "extra": terms, "extra_weights": weights}
        case["target"] = target
        case["name"] = f"extra-{label.replace(' ', '')}-{spec['size']}"
        res = run_case("prior", case, timeout=3600)
        print(json.dumps({k: v for k, v in res.items() if "curve" not in k}), flush=True)
        results.append(res)
    _print_quality(results, args.marks)
    return {"machine": machine(), "cases": results}


def statistics_distances(data: dict) -> list[dict]:
    """For the extra-term experiment: how close each SR result's VGG-19 feature statistics are to the ground
    truth's (contextual loss and PDL on relu2_1 / relu3_1 of the real Caffe weights; lower = closer), next
    to its PSNR. Reads the PNGs the runs saved."""
    from featstat import read_image
    from featstat.features import vgg19
    from featstat.losses import functional as F
    from featstat.prior import psnr

    os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
    vgg = vgg19(["relu2_1", "relu3_1"], weights="vgg19-caffe-normalised-to-relu3_1")
    rows = []
    for r in data["extra"]["cases"]:
        folder = RUNS / r["name"]
        clean = read_image(folder / "clean.png")
        row = {"label": r["label"]}
        for kind in ("average", "result", "bicubic"):
            img = read_image(folder / f"{kind}.png")
            with torch.no_grad():
                a, b = vgg(img), vgg(clean)
                row[kind] = {
                    "psnr": psnr(img, clean),
                    "cx": sum(float(F.contextual_loss(a[k], b[k], 0.1)) for k in a),
                    "pdl": sum(float(F.projected_distribution_loss(a[k], b[k])) for k in a),
                }
        rows.append(row)
    print("\n| extra term | PSNR (average) | CX to truth | PDL to truth | PSNR (final) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        a, final = row["average"], row["result"]["psnr"]
        print(f"| {row['label']} | {a['psnr']:.2f} | {a['cx']:.3f} | {a['pdl']:.3f} | {final:.2f} |")
    b = rows[0]["bicubic"]
    print(f"| (bicubic) | {b['psnr']:.2f} | {b['cx']:.3f} | {b['pdl']:.3f} | |")
    return rows


# -------------------------------------------------------------------------------------------------- demos


def run_demo_case(case: dict) -> dict:
    """Inpainting, flash/no-flash and feature inversion on the paper's own images, reduced for the CPU."""
    from featstat import prior, read_image, write_image

    torch.set_num_threads(case["threads"])
    opts = dict(steps=case["steps"], progress=False, **VARIANTS[case["variant"]])
    out = RUNS / case["name"]
    out.mkdir(parents=True, exist_ok=True)
    dip = SHARED / "images" / "dip"
    t0 = time.perf_counter()
    if case["task"] == "inpaint":  # the text-removal example (Fig. 7.7 top), a 192² crop with two lines
        top, left, n = 160, 160, 192
        image = read_image(dip / "inpainting" / "kate.png")[..., top : top + n, left : left + n]
        mask = read_image(dip / "inpainting" / "kate_mask.png", channels=1)[
            ..., top : top + n, left : left + n
        ]
        mask = (mask > 0.5).float()
        result = prior.inpaint(image, mask, clean=image, **opts)
        inputs = {"masked": image * mask + (1 - mask), "clean": image}
    elif case["task"] == "flash":  # Fig. 7.10, both photos reduced 4× (Lanczos-3)
        flash = read_image(dip / "flash_no_flash" / "cave01_00_flash.jpg")
        no_flash = read_image(dip / "flash_no_flash" / "cave01_01_noflash.jpg")
        h, w = flash.shape[-2] // 4, flash.shape[-1] // 4
        flash = prior.resize(flash, (h, w), "lanczos3").clamp(0, 1)
        no_flash = prior.resize(no_flash, (h, w), "lanczos3").clamp(0, 1)
        result = prior.flash_no_flash(flash, no_flash, **opts)
        inputs = {"flash": flash, "no_flash": no_flash}
    else:  # natural pre-image of VGG-19 relu3_1 (the real Caffe weights of ../shared/weights), 128² input
        os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
        image = read_image(dip / "feature_inversion" / case["image"])
        image = prior.resize(image, (128, 128), "lanczos3").clamp(0, 1)
        weights = "vgg19-caffe-normalised-to-relu3_1"
        result = prior.invert_features(image, case["layer"], arch="vgg19", weights=weights, **opts)
        inputs = {"clean": image}
    result.save(out)
    for name, img in inputs.items():
        write_image(out / f"{name}.png", img)
    return {
        **case,
        "seconds": time.perf_counter() - t0,
        "steps_per_second": result.info["steps_per_second"],
        "psnr": result.psnr,
        "psnr_average": result.psnr_average,
        "first_loss": result.history["loss"][0],
        "final_loss": result.history["loss"][-1],
    }


DEMOS = {
    "inpaint": {"task": "inpaint", "steps": 1500},
    "flash": {"task": "flash", "steps": 600},
    "invert": {"task": "invert", "image": "building.jpg", "layer": "relu3_1", "steps": 1000},
}


def demo(args: argparse.Namespace) -> dict:
    spec = DEMOS[args.task]
    case = {**spec, "kind": "demo", "variant": args.variants[0], "threads": args.threads[0]}
    if args.steps:
        case["steps"] = args.steps
    case["name"] = f"demo-{args.task}"
    res = run_case("prior", case, timeout=3600)
    print(json.dumps(res), flush=True)
    return res


LABELS = {
    "noisy": "input (noise sigma 25)",
    "result": "DIP final",
    "average": "DIP average",
    "clean": "original",
    "lowres": "input (1/4 size)",
    "bicubic": "bicubic",
    "masked": "input",
    "flash": "flash (input code)",
    "no_flash": "no flash (fitted)",
}


def figures() -> None:
    """Montages for docs/prior.md from the runs under out/prior-bench (each PNG kept under 300 KB)."""
    from PIL import Image, ImageDraw, ImageFont

    FIGURES.mkdir(parents=True, exist_ok=True)
    panels = {
        "denoise.png": ("denoise-f16-256-bf16-cl-seed0", ["noisy", "result", "average", "clean"], 192),
        "sr.png": ("sr-zebra-256-bf16-cl-seed0", ["lowres", "bicubic", "average", "clean"], 192),
        "inpaint.png": ("demo-inpaint", ["masked", "average", "clean"], 192),
        "flash.png": ("demo-flash", ["flash", "no_flash", "average"], 192),
        "invert.png": ("demo-invert", ["clean", "average"], 128),
    }
    for fname, (run, names, size) in panels.items():
        folder = RUNS / run
        if not all((folder / f"{n}.png").is_file() for n in names):
            print(f"skipping {fname}: run {run} is missing")
            continue
        tiles = []
        for n in names:
            img = Image.open(folder / f"{n}.png").convert("RGB")
            scale = size / max(img.size)
            resample = Image.Resampling.NEAREST if n == "lowres" else Image.Resampling.LANCZOS
            img = img.resize((round(img.width * scale), round(img.height * scale)), resample)
            label = "pre-image of relu3_1" if run == "demo-invert" and n == "average" else LABELS.get(n, n)
            tiles.append((label, img))
        h = max(t.height for _, t in tiles)
        canvas = Image.new("RGB", (sum(t.width for _, t in tiles) + 4 * (len(tiles) - 1), h + 16), "white")
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default(size=12)
        x = 0
        for label, tile in tiles:
            canvas.paste(tile, (x, 16))
            draw.text((x + 2, 1), label, fill="black", font=font)
            x += tile.width + 4
        path = FIGURES / fname
        canvas.save(path, optimize=True)
        if path.stat().st_size > 290_000:  # keep the docs light: an adaptive palette
            canvas.quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
        print(f"{path}: {path.stat().st_size // 1024} KB")
    for src, dst in [
        ("prior-quality-denoise-256.png", "psnr-denoise.png"),
        ("prior-quality-sr-256.png", "psnr-sr.png"),
    ]:
        if (RESULTS / src).is_file():
            Image.open(RESULTS / src).save(FIGURES / dst, optimize=True)


# -------------------------------------------------------------------------------------------------- plots


def plot(data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "speed" in data:
        rows = data["speed"]["rows"]
        sizes = sorted({r["size"] for r in rows})
        fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.6), squeeze=False)
        for ax, size in zip(axes[0], sizes, strict=True):
            mine = [r for r in rows if r["size"] == size]
            labels = [f"{r['variant']}\n{r['threads']} thr" for r in mine]
            ax.bar(range(len(mine)), [1 / r["seconds_per_step"] for r in mine], color="tab:blue")
            ax.set_xticks(range(len(mine)), labels, fontsize=7)
            ax.set_ylabel("Adam steps per second")
            ax.set_title(f"skip network, {size}²")
            ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(RESULTS / "prior-speed.png", dpi=90)
        plt.close(fig)
    for key in sorted(k for k in data if k.startswith("quality-") or k == "extra"):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for r in data[key]["cases"]:
            if "error" in r:
                continue
            label = r.get("label") or f"{Path(r['image']).stem} {r['variant']} seed {r.get('seed', 0)}"
            line = ax.plot(
                range(1, len(r["psnr_curve"]) + 1),
                r["psnr_curve"],
                lw=0.8,
                alpha=0.6,
                label=f"{label} (output)",
            )[0]
            ax.plot(
                range(1, len(r["psnr_average_curve"]) + 1), r["psnr_average_curve"], lw=1.6,
                color=line.get_color(), label=f"{label} (average)",
            )  # fmt: skip
            for name, value in r["baseline"].items():
                ax.axhline(value, ls="--", lw=0.8, color="gray")
                ax.text(1, value, f" {name}", fontsize=7, va="bottom")
        ax.set_xlabel("step")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / f"prior-{key}.png", dpi=90)
        plt.close(fig)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        case = json.loads(sys.argv[2])
        kinds = {"speed": run_speed_case, "quality": run_quality_case, "demo": run_demo_case}
        fn = {**kinds, "anatomy": run_anatomy_case}[case["kind"]]
        print(json.dumps(fn(case)))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sections = ["speed", "anatomy", "quality", "extra", "extra-eval", "demo", "figures", "plot"]
    p.add_argument("section", choices=sections)
    p.add_argument(
        "task", nargs="?", default="denoise", choices=["denoise", "sr", "inpaint", "flash", "invert"]
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--size", type=int, default=None, help="quality/extra: crop size")
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--marks", type=int, nargs="+", default=[50, 100, 200, 300, 500, 1000, 1800])
    p.add_argument("--compile-large", action="store_true", help="also compile at 512² (slow to compile)")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "prior.json"
    data = json.loads(out.read_text()) if out.is_file() else {}
    if args.section == "speed":
        args.variants = args.variants or list(VARIANTS)
        args.steps = args.steps or 4
        new = speed(args)
        old = data.get("speed", {"cases": [], "rows": []})

        def key(r: dict) -> tuple:
            return (r["variant"], r["size"], r["threads"])

        fresh = {key(r) for r in new["rows"]}
        new["cases"] = [c for c in old["cases"] if "error" in c or key(c) not in fresh] + new["cases"]
        new["rows"] = sorted(
            [r for r in old["rows"] if key(r) not in fresh] + new["rows"],
            key=lambda r: (r["size"], r["threads"], list(VARIANTS).index(r["variant"])),
        )
        for row in new["rows"]:  # speedups against the baseline of the merged table
            base = next((b for b in new["rows"] if key(b) == ("fp32", row["size"], row["threads"])), None)
            row["speedup_vs_fp32"] = (
                base["best_seconds_per_step"] / row["best_seconds_per_step"] if base else None
            )
        _print_speed(new["rows"])
        data["speed"] = new
    elif args.section == "anatomy":
        args.sizes = args.sizes if args.sizes != [256, 512] else [256]
        data["anatomy"] = anatomy(args)
    elif args.section == "quality":
        args.variants = args.variants or ["fp32", "bf16-cl"]
        args.steps = args.steps or 300
        data[f"quality-{args.task}-{args.size or 256}"] = quality(args)
    elif args.section == "extra":
        args.variants = args.variants or ["bf16-cl"]
        args.steps = args.steps or 300
        data["extra"] = extra(args)
        data["extra"]["statistics"] = statistics_distances(data)
    elif args.section == "extra-eval":
        data["extra"]["statistics"] = statistics_distances(data)
    elif args.section == "demo":
        args.variants = args.variants or ["bf16-cl"]
        data.setdefault("demos", {})[args.task] = demo(args)
    elif args.section == "figures":
        plot(data)
        figures()
        return
    out.write_text(json.dumps(data, indent=1) + "\n")
    plot(data)


if __name__ == "__main__":
    main()
