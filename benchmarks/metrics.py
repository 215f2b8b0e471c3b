"""Throughput (images per second) of every featstat metric at 256² and 512².

    nice -n 10 .venv/bin/python benchmarks/metrics.py             # CPU, both sizes (~5 min on 2 cores)
    .venv/bin/python benchmarks/metrics.py --sizes 256 --quick     # a few metrics, one size
    .venv/bin/python benchmarks/metrics.py --device cuda           # on a GPU

Each case (metric × size) runs in its own process (benchmarks/_harness.py): one warm-up call, then the median
of ``repeat`` calls on a batch of RGB images in [0, 1] (prediction = reference + noise), under
``torch.no_grad()`` (evaluation). Deep metrics use seeded random backbones: the cost is the same as with the
pretrained files, which are not available offline. Results: ``benchmarks/results/metrics[-DEVICE].json`` and
a PNG of images/s per metric; a Markdown table is printed for the write-up.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import torch

from _harness import machine, measure, run_case
from featstat._atomic import atomic_write_bytes, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"

#: name → (registry name, options, batch at 256², repeats)
CASES: dict[str, tuple[str, dict, int, int]] = {
    "psnr": ("psnr", {}, 8, 5),
    "ssim": ("ssim", {}, 8, 5),
    "ms_ssim": ("ms_ssim", {}, 8, 5),
    "lpips-alex": ("lpips", {"net": "alex", "weights": None, "calibration": None}, 4, 3),
    "lpips-vgg": ("lpips", {"net": "vgg", "weights": None, "calibration": None}, 2, 2),
    "lpips-squeeze": ("lpips", {"net": "squeeze", "weights": None, "calibration": None}, 4, 3),
    "gram (vgg16 paper layers)": ("gram", {"weights": None}, 2, 2),
    "cx (vgg19 conv3_4, 65² sampled)": ("cx", {"weights": None}, 2, 2),
    "pdl (vgg16 conv4_3)": ("pdl", {"weights": None}, 2, 2),
    "spectrum": ("spectrum", {}, 8, 5),
    "angular_mean": ("angular_mean", {"encoded": True}, 8, 5),
    "patch_kl (100 proj.)": ("patch_kl", {}, 1, 1),
    "patch_emd (100 proj.)": ("patch_emd", {}, 1, 1),
}
QUICK = ("psnr", "ssim", "lpips-alex", "gram (vgg16 paper layers)", "spectrum")


def run_metric_case(case: dict) -> dict:
    import featstat.metrics as fm

    torch.set_num_threads(case.get("threads", torch.get_num_threads()))
    name, options, batch, repeat = CASES[case["case"]]
    size, device = case["size"], case.get("device", "cpu")
    batch = max(1, batch * 256 * 256 // (size * size))
    g = torch.Generator().manual_seed(0)
    base = torch.rand(batch, 3, size // 8, size // 8, generator=g)
    target = torch.nn.functional.interpolate(base, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    pred = (target + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    pred, target = pred.to(device), target.to(device)
    metric = fm.build_metric(name, reduction="none", **options).to(device)

    def step() -> None:
        with torch.no_grad():
            metric(pred, target)

    result = measure(step, device, repeat=repeat)
    return {**case, "batch": batch, **result, "images_per_s": batch / result["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--quick", action="store_true", help="only " + ", ".join(QUICK))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_metric_case(json.loads(args.case))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    names = QUICK if args.quick else tuple(CASES)
    rows = []
    for name in names:
        for size in sizes:
            row = run_case("metrics", {"case": name, "size": size, "device": args.device}, timeout=600)
            rows.append(row)
            shown = (
                row.get("error")
                or f"{row['images_per_s']:.3g} img/s ({row['seconds']:.3g} s / {row['batch']})"
            )
            print(f"{name:34s} {size:4d}²  {shown}", file=sys.stderr, flush=True)
    suffix = "" if args.device == "cpu" else f"-{args.device.replace(':', '')}"
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": machine(), "device": args.device, "results": rows}
    atomic_write_text(RESULTS / f"metrics{suffix}.json", json.dumps(out, indent=2) + "\n")
    _plot(rows, sizes, RESULTS / f"metrics{suffix}.png", out["machine"])
    print(_markdown(rows, sizes))


def _markdown(rows: list[dict], sizes: list[int]) -> str:
    by = {(r["case"], r["size"]): r for r in rows}
    lines = ["| metric | " + " | ".join(f"{s}² img/s" for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for name in dict.fromkeys(r["case"] for r in rows):
        cells = []
        for s in sizes:
            r = by.get((name, s), {})
            cells.append("error" if "error" in r else f"{r.get('images_per_s', float('nan')):.3g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(rows: list[dict], sizes: list[int], path: Path, info: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["case"] for r in rows))
    by = {(r["case"], r["size"]): r.get("images_per_s", 0.0) for r in rows}
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.4))
    height = 0.8 / len(sizes)
    for k, s in enumerate(sizes):
        ys = [i + k * height for i in range(len(names))]
        ax.barh(ys, [by.get((n, s), 0.0) for n in names], height=height, label=f"{s}²")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))])
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("images per second (log scale, higher is better)")
    ax.set_title(
        f"featstat metrics throughput — {info.get('cpu', '?')}, {info.get('threads')} threads", fontsize=8
    )
    ax.legend(fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())


if __name__ == "__main__":
    main()
