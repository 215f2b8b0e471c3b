"""Conditional AGE colourisation (thesis 4.3.2) on Kodak / Set5 crops, against the same generator trained
with L1 only: how diverse the colourisations across z are, and how close they come to the truth.

    python benchmarks/age_colorization.py                 # train both models (two processes), then evaluate
    python benchmarks/age_colorization.py --part age      # or l1, eval: one part (e.g. to resume one)

No Stanford Cars here (the thesis' data): Kodak and Set5 stand in, downscaled so that the short side is 128
pixels (Kodak ÷ 4). Training: random 64² crops (with random horizontal flips) of Kodak 1–20. Test: the four
64² quadrants of the central 128² of Kodak 21–24 and of the five Set5 images (36 crops, never seen).

Two runs of ``featstat.adversarial.age.train_age`` (the shared run loop), identical data, steps, batch, seed
and generator architecture (``ColorizationGenerator``: z as 3 constant maps + ResNet, 3-D latent):

- **AGE**: the game of eqs. 4.5–4.6 (λ = 1000, μ = 10, Adam 2·10⁻⁴, two generator updates per step);
- **L1-only**: ``objective="l1"`` — the same generator with z ignored, two L1 updates (ab against the
  truth) per step.

Reported on the test crops, with K = 8 codes z drawn once on the sphere: diversity across z (mean pairwise
ab distance and per-pixel ab spread, in Lab units, ``colorization_diversity``; mean pairwise LPIPS-style
distance), the ab L1 (Lab units) and RGB PSNR of a single draw (mean over z), of the best of the 8 draws per
image, and of the reconstruction z = e(x | L); the chroma (mean √(a² + b²)) of outputs and truth; the grey
(ab = 0) baseline; colour transfer g(e(x₁ | L₁) | L₂) over all ordered test pairs. PNGs beside the JSON:
``age-colorization.png`` (rows: test crops; columns: grey input, truth, L1-only, AGE z = e(x | L), AGE under
six drawn z) and ``age-colorization-transfer.png`` (columns: source x₁, grey target L₂, transfer
g(e(x₁|L₁)|L₂), AGE reconstruction of the target, target truth).

LPIPS-style: the LPIPS form (unit-normalised features, squared differences, spatial mean, sum over layers)
on the only real ImageNet VGG-19 layers here (Caffe weights normalised, to relu3_1), uncalibrated — a
perceptual distance, not the calibrated LPIPS number.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import featstat  # noqa: E402
from _harness import machine  # noqa: E402
from featstat.adversarial.age import (  # noqa: E402
    AGEOptions,
    color_transfer,
    colorization_diversity,
    colorize,
    lab_split,
    load_age,
    sample_sphere,
    train_age,
)
from featstat.io import image_grid, list_images, read_image, write_image  # noqa: E402
from featstat.metrics import psnr  # noqa: E402
from featstat.ops import rgb_to_lab  # noqa: E402

RESULTS = HERE / "results"
IMAGES = HERE.parent.parent / "shared" / "images"
VGG = HERE.parent.parent / "shared" / "weights" / "vgg19-caffe-normalised-to-relu3_1.pth"
SHORT = 128  # short side after downscaling
K = 8  # codes per test image


# ------------------------------------------------------------------------------------------------ data


def _downscaled(path: Path) -> torch.Tensor:
    img = read_image(path, channels=3, alpha="drop")
    h, w = img.shape[-2:]
    s = SHORT / min(h, w)
    return F.interpolate(img, size=(round(h * s), round(w * s)), mode="area").clamp(0, 1)


def train_crops(size: int, per_image: int, seed: int) -> torch.Tensor:
    """``per_image`` random size² crops (random horizontal flip) of each downscaled Kodak 1–20 image."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in sorted(list_images(IMAGES / "kodak"))[:20]:
        img = _downscaled(f)
        h, w = img.shape[-2:]
        for _ in range(per_image):
            t = int(torch.randint(h - size + 1, (1,), generator=g))
            l_ = int(torch.randint(w - size + 1, (1,), generator=g))
            crop = img[..., t : t + size, l_ : l_ + size]
            out.append(crop.flip(-1) if torch.rand((), generator=g) < 0.5 else crop)
    return torch.cat(out)


def test_crops(size: int) -> tuple[torch.Tensor, list[str]]:
    """The four size² quadrants of the central (2·size)² of Kodak 21–24 and of the Set5 images."""
    files = sorted(list_images(IMAGES / "kodak"))[20:24]
    files += sorted(f for f in list_images(IMAGES / "set5") if f.name.endswith("_HR.png"))
    out, names = [], []
    for f in files:
        img = _downscaled(f)
        h, w = img.shape[-2:]
        t, l_ = (h - 2 * size) // 2, (w - 2 * size) // 2
        for dy in (0, size):
            for dx in (0, size):
                out.append(img[..., t + dy : t + dy + size, l_ + dx : l_ + dx + size])
                names.append(f"{f.stem}@{dy},{dx}")
    return torch.cat(out), names


# --------------------------------------------------------------------------------------------- training


def options(args: argparse.Namespace, objective: str) -> AGEOptions:
    return AGEOptions(
        steps=args.steps,
        batch=args.batch,
        size=args.size,
        latent=3,
        width=args.width,
        conditional=True,
        objective=objective,
        seed=args.seed,
    )


def train(args: argparse.Namespace, objective: str) -> None:
    torch.set_num_threads(args.threads)
    data = train_crops(args.size, args.per_image, seed=args.seed)
    folder = Path(args.work) / objective
    _, result = train_age(
        data,
        folder,
        options(args, objective),
        resume=args.resume,
        checkpoint_every=250,
        log_every=max(1, args.steps // 40),
    )
    last = result.history[-1] if result.history else {}
    record = {
        "objective": objective,
        "steps": result.step,
        "seconds": result.seconds,
        "seconds_per_step": result.seconds / max(1, result.step - result.started_at),
        "resumed_from": result.started_at,
        "training_crops": int(data.shape[0]),
        "last_logged": {k: float(v) for k, v in last.items() if isinstance(v, (int, float))},
        "history": [
            {k: float(v) for k, v in r.items() if isinstance(v, (int, float))} for r in result.history
        ],
    }
    (folder / "benchmark-train.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{objective}: {result.step} steps in {result.seconds:.0f} s", flush=True)


# ------------------------------------------------------------------------------------------- evaluation


def _ab(rgb: torch.Tensor) -> torch.Tensor:
    return rgb_to_lab(rgb)[:, 1:]


def _grid(rows: list[list[torch.Tensor]], gap: int = 2) -> torch.Tensor:
    """Rows of 1×3×h×w images (equal-length rows) → one image (``featstat.io.image_grid``), ``gap`` white
    pixels between cells."""
    cells = torch.cat([torch.cat(r) for r in rows])
    padded = F.pad(cells, (0, gap, 0, gap), value=1.0)
    return image_grid(padded, len(rows[0]))[..., :-gap, :-gap]


class Perceptual:
    """Uncalibrated LPIPS form on the real VGG-19 layers to relu3_1 (see the module docstring)."""

    def __init__(self) -> None:
        self.metric = featstat.metrics.LPIPS(
            "vgg19",
            layers=["relu1_2", "relu2_2", "relu3_1"],
            weights=str(VGG),
            calibration=None,
            reduction="none",
        )

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.metric(a[i : i + 128], b[i : i + 128]) for i in range(0, len(a), 128)])


def assess(enc, gen, test: torch.Tensor, z: torch.Tensor, perceptual: Perceptual) -> tuple[dict, dict]:
    n, _, h, w = test.shape
    k = z.shape[0]
    truth_ab = _ab(test)
    outs = colorize(gen, test, z).view(n, k, 3, h, w)
    ab = _ab(outs.flatten(0, 1)).view(n, k, 2, h, w)
    div = colorization_diversity(ab)
    rows, cols = torch.triu_indices(k, k, offset=1)
    pair_lp = perceptual(outs[:, rows].flatten(0, 1), outs[:, cols].flatten(0, 1))
    l1 = (ab - truth_ab[:, None]).abs().mean(dim=(2, 3, 4))  # N×K, Lab units
    ps = psnr(outs.flatten(0, 1), test.repeat_interleave(k, dim=0), reduction="none").view(n, k)
    best = l1.argmin(dim=1)
    pick = torch.arange(n)
    best_img = outs[pick, best]
    rec = color_transfer(enc, gen, test, test)  # z = e(x | L), then g(z | L)
    rec_ab = _ab(rec)
    chroma = ab.square().sum(dim=2).sqrt().mean().item()
    numbers = {
        "diversity_pairwise_ab": div.pairwise.mean().item(),
        "diversity_spread_ab": div.spread.mean().item(),
        "diversity_pairwise_lpips_style": pair_lp.mean().item(),
        "single_draw": {"l1_ab": l1.mean().item(), "psnr": ps.mean().item()},
        "best_of_8": {
            "l1_ab": l1[pick, best].mean().item(),
            "psnr": ps[pick, best].mean().item(),
            "lpips_style": perceptual(best_img, test).mean().item(),
        },
        "reconstruction_z_e_x": {
            "l1_ab": (rec_ab - truth_ab).abs().mean().item(),
            "psnr": psnr(rec, test).item(),
            "lpips_style": perceptual(rec, test).mean().item(),
        },
        "chroma": chroma,
    }
    return numbers, {"outs": outs, "rec": rec}


@torch.no_grad()
def transfer_stats(enc, gen, test: torch.Tensor) -> dict:
    """Over all ordered pairs i ≠ j: is the mean ab of g(e(x_i|L_i) | L_j) closer to x_i's mean ab than the
    model's own reconstruction g(e(x_j|L_j) | L_j) is?"""
    n = len(test)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    i, j = i[keep], j[keep]
    moved = torch.cat(
        [color_transfer(enc, gen, test[i[s : s + 256]], test[j[s : s + 256]]) for s in range(0, len(i), 256)]
    )
    own = color_transfer(enc, gen, test, test)
    mean_src = _ab(test).mean(dim=(2, 3))[i]
    d_moved = (_ab(moved).mean(dim=(2, 3)) - mean_src).norm(dim=1)
    d_own = (_ab(own).mean(dim=(2, 3))[j] - mean_src).norm(dim=1)
    d_truth = (_ab(test).mean(dim=(2, 3))[j] - mean_src).norm(dim=1)
    return {
        "pairs": len(i),
        "fraction_closer_to_source_than_own_reconstruction": (d_moved < d_own).float().mean().item(),
        "mean_ab_distance_transfer_to_source": d_moved.mean().item(),
        "mean_ab_distance_own_reconstruction_to_source": d_own.mean().item(),
        "mean_ab_distance_target_truth_to_source": d_truth.mean().item(),
    }


def evaluate(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    test, names = test_crops(args.size)
    z = sample_sphere(K, 3, seed=args.seed + 100)
    perceptual = Perceptual()
    models = {"age": load_age(work / "age"), "l1_only": load_age(work / "l1")}
    results, shown = {}, {}
    for name, (enc, gen) in models.items():
        t = time.perf_counter()
        results[name], shown[name] = assess(enc, gen, test, z, perceptual)
        results[name]["colour_transfer"] = transfer_stats(enc, gen, test)
        results[name]["evaluation_seconds"] = time.perf_counter() - t
    train_set = train_crops(args.size, 4, seed=args.seed + 7)  # crops of the training images
    enc, gen = models["age"]
    results["age"]["reconstruction_on_training_images_l1_ab"] = (
        (_ab(color_transfer(enc, gen, train_set, train_set)) - _ab(train_set)).abs().mean().item()
    )
    lum, _ = lab_split(test)
    grey_rgb = featstat.ops.lab_to_rgb(torch.cat([lum * 100, torch.zeros_like(lum).expand(-1, 2, -1, -1)], 1))
    out = Path(args.out)
    results["grey_ab_zero"] = {
        "l1_ab": _ab(test).abs().mean().item(),
        "psnr": psnr(grey_rgb, test).item(),
        "lpips_style": perceptual(grey_rgb, test).mean().item(),
    }
    results["truth_chroma"] = _ab(test).square().sum(dim=1).sqrt().mean().item()
    trained = {m: json.loads((work / m / "benchmark-train.json").read_text()) for m in ("age", "l1")}

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in range(0, len(test), 5):  # 8 of the 36 test crops, Kodak and Set5
        rows.append(
            [
                grey_rgb[r : r + 1],
                test[r : r + 1],
                shown["l1_only"]["outs"][r, :1],
                shown["age"]["rec"][r : r + 1],
                *shown["age"]["outs"][r, :6].split(1),
            ]
        )
    write_image(out / "age-colorization.png", _grid(rows))
    enc, gen = models["age"]
    pairs = [(0, 17), (4, 9), (8, 26), (13, 30), (21, 2), (33, 12)]
    src, tgt = test[[p[0] for p in pairs]], test[[p[1] for p in pairs]]
    moved = color_transfer(enc, gen, src, tgt)
    tgt_grey = grey_rgb[[p[1] for p in pairs]]
    own = shown["age"]["rec"][[p[1] for p in pairs]]
    write_image(
        out / "age-colorization-transfer.png",
        _grid(
            [
                [src[i : i + 1], tgt_grey[i : i + 1], moved[i : i + 1], own[i : i + 1], tgt[i : i + 1]]
                for i in range(len(pairs))
            ]
        ),
    )
    record = {
        "machine": machine(),
        "featstat": featstat.__version__,
        "data": (
            "Kodak and Set5 downscaled to short side 128 (Kodak ÷ 4); train: "
            f"{trained['age']['training_crops']} random {args.size}² crops (random h-flip) of Kodak 1–20; "
            f"test: {len(test)} crops (4 quadrants of the central {2 * args.size}² of Kodak 21–24 and "
            "Set5). No Stanford Cars here (the thesis' data)."
        ),
        "settings": {
            "steps": args.steps,
            "batch": args.batch,
            "size": args.size,
            "width": args.width,
            "generator_width": max(8, args.width // 2),
            "latent": 3,
            "lr": 2e-4,
            "latent_weight_lambda": 1000.0,
            "data_weight_mu": 10.0,
            "generator_updates": 2,
            "seed": args.seed,
            "threads_per_process": args.threads,
            "codes_per_image": K,
            "codes": "sample_sphere(8, 3, seed=seed + 100), the same 8 for every image",
        },
        "units": (
            "l1_ab: mean |Δa|, |Δb| in Lab units; diversity_*_ab in Lab ab units (0 = identical); "
            "psnr: RGB dB; lpips_style: uncalibrated LPIPS form on VGG-19 (Caffe, normalised) to "
            "relu3_1, lower = closer"
        ),
        "training": {m: {k: v for k, v in t.items() if k != "history"} for m, t in trained.items()},
        "results": results,
        "notes": [
            "The L1-only generator ignores z by construction (L1Colorizer feeds zeros for z): its "
            "diversity is exactly 0 and its single draw, best of 8 and reconstruction are the same "
            "image.",
            "grid columns: grey input, truth, L1-only, AGE z = e(x|L), AGE under six drawn z.",
            "transfer grid columns: source x1, grey target L2, g(e(x1|L1)|L2), AGE reconstruction "
            "of the target, target truth.",
        ],
        "test_crops": names,
        "history": {m: t["history"] for m, t in trained.items()},
    }
    (out / "age-colorization.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("settings", "training", "results")}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("all", "age", "l1", "eval"), default="all")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--per-image", type=int, default=32, help="training crops per Kodak image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="per process (more oversubscribes a shared CPU)")
    p.add_argument("--work", default="/tmp/age-colorization-runs", help="run folders (checkpoints)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON and PNGs")
    args = p.parse_args()
    if args.part in ("age", "l1"):
        train(args, args.part)
    elif args.part == "eval":
        evaluate(args)
    else:  # the two trainings in parallel processes, one thread each, then the evaluation
        base = [sys.executable, __file__, *sys.argv[1:]]
        procs = [subprocess.Popen([*base, "--part", part]) for part in ("age", "l1")]
        if any(proc.wait() for proc in procs):
            raise SystemExit("a training process failed")
        evaluate(args)


if __name__ == "__main__":
    main()
