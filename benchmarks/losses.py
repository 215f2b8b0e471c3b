"""Speed and peak memory of featstat's losses against the straightforward formulations, in one run.

    .venv/bin/python benchmarks/losses.py                  # full run (~10 min on 2 CPU cores)
    .venv/bin/python benchmarks/losses.py --quick          # 32² and 64² only
    .venv/bin/python benchmarks/losses.py --device cuda    # on a GPU

Each case (loss × implementation × feature size, C = 256, batch 1, forward + backward) runs in its own
process; results go to ``benchmarks/results/losses[-DEVICE].json`` with a PNG of the ratios beside it,
and a Markdown table is printed for BENCHMARKS.md.

Baselines (``_naive.py``): CX and Chamfer with the full N×M matrix through autograd (how public ports
write them); Gram with an unbatched ``mm`` per sample; PDL is compared with a perceptual L1 loss on the
same features (the PDL paper's claim: sorting adds little). The objective case compares one featstat
``Objective`` (CX + Gram + PDL + perceptual sharing one VGG-19 pass, target cached) with the same four
terms each running its own VGG-19 on prediction and target, and with one bare VGG-19 forward+backward.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from _harness import machine, measure, run_case

RESULTS = Path(__file__).resolve().parent / "results"


def _features(size: int, channels: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, size, size, generator=g).to(device).requires_grad_()
    y = torch.rand(1, channels, size, size, generator=g).to(device)
    return x, y


def _loss_fn(loss: str, impl: str):
    from _naive import chamfer_full, contextual_loss_full, gram_loss_unbatched
    from featstat.losses import functional as F

    table = {
        ("cx", "featstat"): lambda x, y: F.contextual_loss(x, y, 0.1),
        ("cx", "full-matrix"): lambda x, y: contextual_loss_full(x, y, 0.1),
        ("chamfer", "featstat"): lambda x, y: F.chamfer_distance(x, y),
        ("chamfer", "full-matrix"): chamfer_full,
        ("gram", "featstat"): F.gram_loss,
        ("gram", "unbatched"): gram_loss_unbatched,
        ("pdl", "featstat"): F.projected_distribution_loss,
        ("sliced-w", "featstat"): lambda x, y: F.projected_distribution_loss(x, y, "sphere"),
        ("perceptual-l1", "featstat"): F.perceptual_loss,
    }
    return table[(loss, impl)]


def run_loss_case(case: dict) -> dict:
    device = case.get("device", "cpu")
    x, y = _features(case["size"], case["channels"], device)
    fn = _loss_fn(case["loss"], case["impl"])

    def step() -> None:
        x.grad = None
        fn(x, y).backward()

    return {**case, **measure(step, device, repeat=case.get("repeat", 3))}


def run_objective_case(case: dict) -> dict:
    from featstat import features
    from featstat.losses import ContextualLoss, GramLoss, PerceptualLoss, ProjectedDistributionLoss
    from featstat.objective import Objective, Term

    device, size = case.get("device", "cpu"), case["size"]
    gram_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    deep = "conv4_2"
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 3, size, size, generator=g).to(device).requires_grad_()
    target = torch.rand(1, 3, size, size, generator=g).to(device)

    def extractor(layers):
        return features.vgg19(layers, weights=None, seed=0).to(device)

    specs = [
        ("cx", ContextualLoss(0.1), [deep]),
        ("gram", GramLoss(), gram_layers),
        ("pdl", ProjectedDistributionLoss(), [deep]),
        ("perceptual", PerceptualLoss(), [deep]),
    ]
    if case["impl"] == "vgg-only":
        vgg = extractor([*gram_layers, deep])

        def step() -> None:
            pred.grad = None
            sum(f.sum() for f in vgg(pred).values()).backward()

    elif case["impl"] == "objective":
        vgg = extractor([*gram_layers, deep])
        objective = Objective([Term(n, loss, 1.0, vgg, layers) for n, loss, layers in specs])

        def step() -> None:
            pred.grad = None
            objective(pred, target).total.backward()

    else:  # "separate": every term builds and runs its own VGG on pred and target each step
        own = [(loss, extractor(layers), layers) for _, loss, layers in specs]

        def step() -> None:
            pred.grad = None
            total = 0.0
            for loss, vgg, layers in own:
                fp, ft = vgg(pred), vgg(target)
                total = total + sum(loss(fp[layer], ft[layer]) for layer in layers)
            total.backward()

    return {**case, **measure(step, device, repeat=case.get("repeat", 3))}


def run_step_case(case: dict) -> dict:
    """A training-style step: VGG-16 to conv4_3 on a batch of images, then PDL or perceptual L1 on conv4_3
    (the PDL paper's setting, Table I: "PDL and the perceptual loss have very similar training times")."""
    from featstat import features
    from featstat.losses import functional as F

    device, size = case.get("device", "cpu"), case["size"]
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(case["batch"], 3, size, size, generator=g).to(device).requires_grad_()
    target = torch.rand(case["batch"], 3, size, size, generator=g).to(device)
    vgg = features.vgg16(["conv4_3"], weights=None, seed=0).to(device)
    loss = {"pdl": F.projected_distribution_loss, "perceptual-l1": F.perceptual_loss}[case["impl"]]
    with torch.no_grad():
        ft = vgg(target)["conv4_3"]

    def step() -> None:
        pred.grad = None
        loss(vgg(pred)["conv4_3"], ft).backward()

    return {**case, **measure(step, device, repeat=case.get("repeat", 3))}


def cases(quick: bool, device: str) -> list[dict]:
    sizes = [32, 64] if quick else [32, 64, 128]
    out = []
    for size in sizes:
        repeat = 1 if size >= 128 else 3
        for loss, impls in [
            ("cx", ["featstat", "full-matrix"]),
            ("chamfer", ["featstat", "full-matrix"]),
            ("gram", ["featstat", "unbatched"]),
            ("pdl", ["featstat"]),
            ("sliced-w", ["featstat"]),
            ("perceptual-l1", ["featstat"]),
        ]:
            for impl in impls:
                out.append(
                    {
                        "kind": "loss",
                        "loss": loss,
                        "impl": impl,
                        "size": size,
                        "channels": 256,
                        "device": device,
                        "repeat": repeat,
                    }
                )
    for impl in ["perceptual-l1", "pdl"]:
        out.append({"kind": "step", "impl": impl, "size": 256, "batch": 4, "device": device, "repeat": 3})
    for impl in ["vgg-only", "objective", "separate"]:
        out.append({"kind": "objective", "impl": impl, "size": 256, "device": device, "repeat": 3})
    return out


BASELINES = {
    "cx": ("cx", "full-matrix"),
    "chamfer": ("chamfer", "full-matrix"),
    "gram": ("gram", "unbatched"),
    "pdl": ("perceptual-l1", "featstat"),
    "sliced-w": ("perceptual-l1", "featstat"),
}


def _ratio_rows(results: list[dict]) -> list[dict]:
    """Pair featstat with its baseline for each loss and size."""
    by = {(r["loss"], r["impl"], r["size"]): r for r in results if r["kind"] == "loss" and "error" not in r}
    rows = []
    for (loss, impl, size), r in sorted(by.items()):
        if impl != "featstat" or loss not in BASELINES:
            continue
        b = by.get((*BASELINES[loss], size))
        if b is None:
            continue
        rows.append(
            {
                "loss": loss,
                "size": size,
                "baseline": " ".join(dict.fromkeys(BASELINES[loss])),
                "seconds": r["seconds"],
                "baseline_seconds": b["seconds"],
                "time_ratio": r["seconds"] / b["seconds"],
                "peak_mib": r["peak_extra_mib"],
                "baseline_peak_mib": b["peak_extra_mib"],
                "memory_ratio": b["peak_extra_mib"] / max(r["peak_extra_mib"], 1e-9),
            }
        )
    return rows


def markdown(results: list[dict]) -> str:
    lines = [
        "| loss | features | featstat s | baseline | baseline s | time ratio | featstat MiB | "
        "baseline MiB | memory saved |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    channels = {r["size"]: r.get("channels", 256) for r in results if r.get("kind") == "loss"}
    for r in _ratio_rows(results):
        features = f"{r['size']}²×{channels.get(r['size'], 256)}"
        lines.append(
            f"| {r['loss']} | {features} | {r['seconds']:.3f} | {r['baseline']} | "
            f"{r['baseline_seconds']:.3f} | {r['time_ratio']:.2f} | {r['peak_mib']:.0f} | "
            f"{r['baseline_peak_mib']:.0f} | {r['memory_ratio']:.1f}× |"
        )
    obj = {r["impl"]: r for r in results if r.get("kind") == "objective" and "error" not in r}
    if "vgg-only" in obj:
        lines += [
            "",
            f"| objective ({obj['vgg-only']['size']}² image, VGG-19 to conv4_2) | s / step | "
            "× one VGG fwd+bwd | peak MiB |",
            "|---|---|---|---|",
        ]
        for impl in ("vgg-only", "objective", "separate"):
            if impl in obj:
                r = obj[impl]
                lines.append(
                    f"| {impl} | {r['seconds']:.3f} | {r['seconds'] / obj['vgg-only']['seconds']:.2f} | "
                    f"{r['peak_extra_mib']:.0f} |"
                )
    step = {r["impl"]: r for r in results if r.get("kind") == "step" and "error" not in r}
    if len(step) == 2:
        r = step["pdl"]
        ratio = r["seconds"] / step["perceptual-l1"]["seconds"]
        lines += [
            "",
            f"| training step (VGG-16 to conv4_3, batch {r['batch']}, {r['size']}²) | s / step | "
            "× perceptual L1 step |",
            "|---|---|---|",
            f"| perceptual L1 | {step['perceptual-l1']['seconds']:.3f} | 1.00 |",
            f"| PDL (identity projections) | {r['seconds']:.3f} | {ratio:.2f} |",
        ]
    errors = [r for r in results if "error" in r]
    for r in errors:
        lines.append(f"\n{r.get('loss', r['kind'])} {r['impl']} {r['size']}: {r['error']}")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _ratio_rows(results) if r["loss"] in ("cx", "chamfer")]
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{r['loss']} {r['size']}²" for r in rows]
    pos = range(len(rows))
    for ax, (key, base, title) in zip(
        axes,
        [
            ("seconds", "baseline_seconds", "forward+backward (s)"),
            ("peak_mib", "baseline_peak_mib", "peak extra memory (MiB)"),
        ],
        strict=True,
    ):
        ax.bar([p - 0.2 for p in pos], [r[base] for r in rows], 0.4, label="full matrix")
        ax.bar([p + 0.2 for p in pos], [r[key] for r in rows], 0.4, label="featstat (chunked)")
        ax.set_xticks(list(pos), labels, rotation=30)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.legend()
    fig.suptitle("featstat vs full-matrix formulation, C = 256, batch 1")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", help="internal: run one case given as JSON and print its result")
    parser.add_argument("--quick", action="store_true", help="only 32² and 64² feature maps")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", help="comma-separated loss names to run (e.g. cx,chamfer)")
    args = parser.parse_args()
    if args.case:
        case = json.loads(args.case)
        fn = {"objective": run_objective_case, "step": run_step_case, "loss": run_loss_case}[case["kind"]]
        print(json.dumps(fn(case)))
        return
    todo = cases(args.quick, args.device)
    if args.only:
        keep = set(args.only.split(","))
        todo = [c for c in todo if c.get("loss", c["kind"]) in keep]
    results = []
    for case in todo:
        r = run_case("losses", case)
        results.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    RESULTS.mkdir(exist_ok=True)
    stem = "losses" if args.device == "cpu" else f"losses-{args.device}"
    out = {"machine": machine(), "results": results, "ratios": _ratio_rows(results)}
    from featstat._atomic import atomic_write_text

    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(out, indent=2))
    plot(results, RESULTS / f"{stem}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
