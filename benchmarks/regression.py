"""Did a change make featstat slower? Time the same public calls on two source trees, in the same run.

Each case runs in a fresh process per tree and per round (rounds interleave the trees, so drift in the
machine's load hits both alike); the time of a case is the median over its repeated calls after a warm-up,
and the verdict is the ratio of medians over rounds (``new ÷ base``; < 1 is faster). The process's CPU time
is recorded beside the wall time: when other jobs share the cores, its ratio is the steadier one. The cases
use names that exist in both trees (the redesign kept every old module path as an alias), so the same
script times the code before and after it::

    .venv/bin/python benchmarks/regression.py --base b633f50           # the tree before the redesign
    .venv/bin/python benchmarks/regression.py --base HEAD~5 --rounds 5 --cases cx,prior

Writes ``benchmarks/results/regression.json`` (and ``regression.png``). One thread per process by default
(``--threads``), pinned to the CPUs given by ``--cpus`` when the OS allows it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# ------------------------------------------------------------------------------------------------ cases
# Each case returns (setup → closure); the closure is timed. Only names present in both trees are used.


def _case_cx() -> Callable[[], None]:
    import torch

    from featstat.losses import functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 64, 64, generator=g, requires_grad=True)
    y = torch.randn(1, 256, 64, 64, generator=g)
    return lambda: F.contextual_loss(x, y).backward()


def _case_gram() -> Callable[[], None]:
    import torch

    from featstat.losses import functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 256, 128, 128, generator=g, requires_grad=True)
    y = torch.randn(2, 256, 128, 128, generator=g)
    return lambda: F.gram_loss(x, y).backward()


def _case_pdl() -> Callable[[], None]:
    import torch

    from featstat.losses import functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 256, 128, 128, generator=g, requires_grad=True)
    y = torch.randn(2, 256, 128, 128, generator=g)
    return lambda: F.projected_distribution_loss(x, y).backward()


def _case_objective() -> Callable[[], None]:
    import torch

    import featstat
    from featstat.losses import ContextualLoss, GramLoss, PerceptualLoss, ProjectedDistributionLoss

    torch.manual_seed(0)
    vgg = featstat.vgg19(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv4_2"], weights=None)
    objective = featstat.Objective(
        [
            featstat.Term("cx", ContextualLoss(), layers=["relu3_1"], extractor=vgg),
            featstat.Term(
                "gram", GramLoss(), layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1"], extractor=vgg
            ),
            featstat.Term("pdl", ProjectedDistributionLoss(), layers=["conv4_2"], extractor=vgg),
            featstat.Term("perceptual", PerceptualLoss(), layers=["conv4_2"], extractor=vgg),
        ]
    )
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 128, 128, generator=g, requires_grad=True)
    y = torch.rand(1, 3, 128, 128, generator=g)
    return lambda: objective(x, y).total.backward()


def _case_synthesis() -> Callable[[], None]:
    import torch

    import featstat
    from featstat import synthesis

    torch.manual_seed(0)
    vgg = featstat.vgg19(["relu1_1", "relu2_1", "relu3_1"], weights=None)
    example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    return lambda: synthesis.synthesize_texture(
        example, extractor=vgg, layers=["relu1_1", "relu2_1", "relu3_1"], steps=10, seed=0
    )


def _case_prior() -> Callable[[], None]:
    import torch

    from featstat import prior

    noisy = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    return lambda: prior.denoise(noisy, steps=5, precision="fp32", seed=0)


def _case_metrics() -> Callable[[], None]:
    import torch

    from featstat import metrics

    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(2, 3, 256, 256, generator=g), torch.rand(2, 3, 256, 256, generator=g)

    def run() -> None:
        metrics.psnr(x, y)
        metrics.ssim(x, y)
        metrics.ms_ssim(x, y)

    return run


def _case_restoration() -> Callable[[], None]:
    import shutil

    import torch
    import torch.nn.functional as F
    from featstat.training.data import RestorationDataset
    from featstat.training.trainer import Trainer, TrainOptions

    from featstat.io import write_image
    from featstat.losses import L1Loss
    from featstat.nets.restoration import build_network
    from featstat.objective import Objective, Term

    work = Path(tempfile.mkdtemp(prefix="featstat-regression-"))
    for i in range(3):
        low = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(i))
        write_image(
            work / "data" / f"img{i}.png", F.interpolate(low, size=(64, 64), mode="bicubic").clamp(0, 1)
        )
    data = RestorationDataset(work / "data", "sr2", crop_size=32, samples_per_epoch=64, seed=0)
    options = TrainOptions(
        steps=40, batch_size=4, lr=1e-3, log_every=10, checkpoint_every=0, validate_every=0,
        progress=False, plots=False,
    )  # fmt: skip

    def run() -> None:
        torch.manual_seed(0)
        model = build_network("edsr", scale=2, channels=32, blocks=4)
        out = work / "run"
        shutil.rmtree(out, ignore_errors=True)
        Trainer(model, Objective([Term("l1", L1Loss())]), data, out, lpips=None, options=options).fit()

    return run


CASES: dict[str, tuple[str, Callable[[], Callable[[], None]], int]] = {
    "cx": ("contextual loss fwd+bwd, 64²×256", _case_cx, 5),
    "gram": ("Gram loss fwd+bwd, 2×256×128²", _case_gram, 5),
    "pdl": ("PDL fwd+bwd, 2×256×128²", _case_pdl, 5),
    "objective": ("Objective CX+Gram+PDL+perceptual step, VGG-19 (random), 128²", _case_objective, 5),
    "synthesis": ("synthesize_texture, 64², 10 L-BFGS steps", _case_synthesis, 3),
    "prior": ("prior.denoise, 128², 5 Adam steps, fp32", _case_prior, 3),
    "metrics": ("psnr + ssim + ms_ssim, 2×3×256²", _case_metrics, 5),
    "restoration": ("Trainer.fit, EDSR 4×32, sr2, 40 steps of batch 4", _case_restoration, 3),
}


def _child(case: str, threads: int) -> None:
    """Run one case in this process and print its median seconds as JSON."""
    import time

    import torch

    warnings.simplefilter("ignore", DeprecationWarning)
    torch.set_num_threads(threads)
    os.environ.setdefault("FEATSTAT_PRECISION_MEASURE", "0")
    closure = CASES[case][1]()
    closure()  # warm-up
    times, cpu = [], []
    for _ in range(CASES[case][2]):
        start, start_cpu = time.perf_counter(), time.process_time()
        closure()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(
        json.dumps(
            {"median_s": statistics.median(times), "median_cpu_s": statistics.median(cpu), "times": times}
        )
    )


# ------------------------------------------------------------------------------------------------ driver


def _export(rev: str, into: Path) -> Path:
    """``git archive rev`` into ``into``; returns the tree's ``src`` folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return into / "src"


def _time(src: Path, case: str, threads: int, cpus: str | None) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) of one case in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    env["FEATSTAT_CACHE"] = env.get("FEATSTAT_CACHE", tempfile.gettempdir())
    command = [sys.executable, __file__, "--child", case, "--threads", str(threads)]
    if cpus and sys.platform.startswith("linux"):
        command = ["taskset", "-c", cpus, *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode:
        raise RuntimeError(f"case {case} failed in {src}:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return float(out["median_s"]), float(out["median_cpu_s"])


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # a script, not library code
    import matplotlib.pyplot as plt

    names = list(result["cases"])
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(names) + 1.2))
    rows = range(len(names))
    for offset, key, label in ((-0.2, "ratio", "wall time"), (0.2, "cpu_ratio", "CPU time")):
        ratios = [result["cases"][n][key] for n in names]
        colours = ["tab:green" if r <= 1.05 else "tab:red" for r in ratios]
        alpha = 1.0 if offset < 0 else 0.55
        ax.barh([i + offset for i in rows], ratios, height=0.38, color=colours, alpha=alpha, label=label)
    ax.set_yticks(list(rows), names)
    ax.legend(loc="lower right", fontsize=8)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xlabel(f"time, {result['new']} ÷ {result['base']} (< 1: faster)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base", default="b633f50", help="git revision to compare against (default: pre-redesign)"
    )
    parser.add_argument(
        "--new", default="WORKTREE", help="git revision, or WORKTREE for this checkout's src/"
    )
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpus", default=None, help="taskset CPU list for the timed processes, e.g. 0")
    parser.add_argument("--out", type=Path, default=RESULTS / "regression.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.threads)
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"--cases: unknown {unknown}; choose from {sorted(CASES)}")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="featstat-regression-") as tmp:
        base_src = _export(args.base, Path(tmp) / "base")
        new_src = ROOT / "src" if args.new == "WORKTREE" else _export(args.new, Path(tmp) / "new")
        times: dict[str, dict[str, list[float]]] = {c: {"base": [], "new": []} for c in cases}
        cpu: dict[str, dict[str, list[float]]] = {c: {"base": [], "new": []} for c in cases}
        for r in range(args.rounds):
            for case in cases:
                order = (
                    [("base", base_src), ("new", new_src)]
                    if r % 2 == 0
                    else [("new", new_src), ("base", base_src)]
                )
                for label, src in order:
                    wall, used = _time(src, case, args.threads, args.cpus)
                    times[case][label].append(wall)
                    cpu[case][label].append(used)
                print(
                    f"round {r + 1}/{args.rounds} {case:12s} base {times[case]['base'][-1]:.4f} s  "
                    f"new {times[case]['new'][-1]:.4f} s  (CPU {cpu[case]['base'][-1]:.4f} / "
                    f"{cpu[case]['new'][-1]:.4f} s)",
                    flush=True,
                )
    result: dict[str, Any] = {
        "benchmark": "regression",
        "base": args.base,
        "new": args.new if args.new != "WORKTREE" else _describe_worktree(),
        "machine": {"cpu": _cpu(), "python": platform.python_version(), "threads": args.threads,
                    "cpus": args.cpus, "load_average_start": load_start},
        "rounds": args.rounds,
        "cases": {},
    }  # fmt: skip
    for case in cases:
        base, new = statistics.median(times[case]["base"]), statistics.median(times[case]["new"])
        base_cpu, new_cpu = statistics.median(cpu[case]["base"]), statistics.median(cpu[case]["new"])
        result["cases"][case] = {
            "what": CASES[case][0],
            "base_s": round(base, 5),
            "new_s": round(new, 5),
            "ratio": round(new / base, 3),
            "base_cpu_s": round(base_cpu, 5),
            "new_cpu_s": round(new_cpu, 5),
            "cpu_ratio": round(new_cpu / base_cpu, 3),
            "base_rounds_s": [round(t, 5) for t in times[case]["base"]],
            "new_rounds_s": [round(t, 5) for t in times[case]["new"]],
        }
    result["machine"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, args.out.with_suffix(".png"))
    print(json.dumps(result, indent=2))
    return 0


def _describe_worktree() -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
