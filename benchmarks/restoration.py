"""×4 super-resolution with five training recipes under one small budget: does the perception–distortion
trade-off of the papers appear?

    .venv/bin/python benchmarks/restoration.py run                    # every recipe from scratch ("scratch")
    .venv/bin/python benchmarks/restoration.py run --label finetune --init-steps 600   # from one L2 model
    .venv/bin/python benchmarks/restoration.py speed                  # training steps/s per recipe
    .venv/bin/python benchmarks/restoration.py figures                # PNGs for docs/ from the saved outputs

Two protocols: "scratch" trains each recipe as it is (its own pre-training fraction included) for the same
number of steps; "finetune" first trains one ``pixel-l2`` model and starts every recipe from its weights
(what CX-SR and TSRN do with their L2/MSE pre-training; at a budget this small it separates the effect of the
loss from the speed of convergence), the recipes' own pre-training then being skipped.

Setting (identical for every recipe; all numbers are in the JSON):

- data: random HR crops of the 24 Kodak images (``../shared/images/kodak``), flips/transposes, LR made by
  MATLAB-style bicubic ×4 downsampling (:func:`featstat.restoration.degrade.bicubic_downsample`);
  validation on the 5
  Set5 ground-truth images (LR made the same way);
- network: the same small EDSR (no BN) for every recipe, so only the loss differs;
- budget: the same steps, batch, crop size and Adam learning rate (``--lr``, default TSRN's 5e-4: the
  recipes' own rates range from 1e-4 to 1e-3, which over a few hundred steps would compare learning rates
  rather than losses) for every recipe, with the recipes' own pre-training fractions (CX-SR: L2 for 1/16 of
  the steps, TSRN: MSE for 1/11) and CX-SR's adversarial term (a narrower SRGAN discriminator);
- loss networks: only the Caffe VGG-19 up to relu3_1 exists on this machine
  (``vgg19-caffe-normalised-to-relu3_1``), so every statistical term uses those layers instead of the
  papers' deeper ones: CX on conv3_1 (paper: conv3_4), Gram on conv2_2 + conv3_1 (paper: conv2_2, conv3_4,
  conv4_4, conv5_2; layer weights C²/4 as eq. 1), PDL on VGG-19 conv3_1 (paper: VGG-16 conv4_3), the
  perceptual loss on VGG-19 relu2_2 (Johnson: VGG-16 relu2_2);
- metrics on Set5 (``featstat.metrics``): PSNR on the luma with 4 border pixels cropped (the SR convention),
  SSIM (RGB), and an LPIPS-style distance: unit-normalised VGG-19 (same Caffe weights) features at relu1_2,
  relu2_2, relu3_1, uncalibrated (LPIPS' heads need AlexNet/VGG-16 trunks that are not available here);
  plus the bicubic-upsampling baseline.

Results: ``benchmarks/results/restoration.json``; the run folders (logs, curves, checkpoints, Set5 outputs) go
to ``--runs`` (default a temporary folder outside the repository); figures in ``docs/images/restoration/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = Path(os.environ.get("FEATSTAT_SHARED", HERE.parent.parent / "shared"))
DOCS = HERE.parent / "docs" / "images" / "restoration"
RECIPES = ["pixel", "perceptual", "cx-sr", "tsrn", "pdl-sr"]
WEIGHTS = "vgg19-caffe-normalised-to-relu3_1"

#: what replaces each recipe's loss network in this offline comparison (layers ≤ relu3_1)
OFFLINE: dict[str, dict[str, Any]] = {
    "pixel": {},
    "pixel-l2": {},
    "perceptual": {
        "objective": {
            "backbones": {"vgg": {"arch": "vgg19", "weights": WEIGHTS}},
            "terms": {"feature": {"layers": ["relu2_2"]}},
        }
    },
    "cx-sr": {
        "objective": {"backbones": {"vgg": {"weights": WEIGHTS}}, "terms": {"cx": {"layers": ["conv3_1"]}}},
    },
    "tsrn": {
        "objective": {
            "backbones": {"vgg": {"weights": WEIGHTS}},
            "terms": {
                "gram": {
                    "layers": ["conv2_2", "conv3_1"],
                    "layer_weights": {"conv2_2": 128**2 / 4, "conv3_1": 256**2 / 4},
                }
            },
        },
    },
    "pdl-sr": {
        "objective": {
            "backbones": {"vgg": {"arch": "vgg19", "weights": WEIGHTS}},
            "terms": {"pdl": {"layers": ["conv3_1"]}},
        }
    },
}


def _setting(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "train": "kodak (24 images, 768×512), random HR crops",
        "validate": "set5 HR (5 images), LR by MATLAB-style bicubic ×4",
        "network": {"name": "edsr", "options": {"blocks": args.blocks, "channels": args.channels}},
        "steps": args.steps,
        "batch_size": args.batch,
        "crop_size": args.crop,
        "lr": args.lr,
        "gan": args.gan,
        "loss_network": f"VGG-19 {WEIGHTS} (layers <= relu3_1)" if args.features == "shallow"
        else "weights 'auto' (HED's VGG-16 here: vgg16-hed), the recipes' own layers mapped to VGG-16",
        "lpips_style": "uncalibrated, VGG-19 Caffe relu1_2, relu2_2, relu3_1" if args.features == "shallow"
        else "uncalibrated, vgg16-hed relu1_2, relu2_2, relu3_3, relu4_3, relu5_3",
        "threads": torch.get_num_threads(),
    }


def _overrides(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from featstat.restoration.recipes import RECIPES as PRESETS
    from featstat.restoration.recipes import merge

    over = merge(
        OFFLINE[name] if args.features == "shallow" else {},
        {
            "network": {"name": "edsr", "options": {"blocks": args.blocks, "channels": args.channels}},
            "training": {
                "steps": args.steps,
                "batch_size": args.batch,
                "lr": args.lr,
                "log_every": 10,
                "checkpoint_every": 0,
                "validate_every": 0,
                "save_images": 5,
                "seed": 0,
                "progress": False,
            },
            "data": {"crop_size": args.crop},
        },
    )
    if "adversarial" in PRESETS[name]:
        over["adversarial"] = {"enabled": args.gan, "discriminator": {"channels": 16, "hidden": 256}}
    return over


def _train(name: str, over: dict[str, Any], args: argparse.Namespace, init: dict | None, lp: Any) -> dict:
    from featstat.io import list_images
    from featstat.restoration.data import RestorationDataset, ValidationSet
    from featstat.restoration.recipes import get_recipe, setup

    kodak = list_images(SHARED / "images" / "kodak")
    set5 = [p for p in list_images(SHARED / "images" / "set5") if p.name.endswith("_HR.png")]
    s = setup(get_recipe(name, over))
    if init is not None:
        s.model.load_state_dict(init)
    torch.manual_seed(0)
    train = RestorationDataset(
        kodak, s.degradation, crop_size=args.crop, samples_per_epoch=len(kodak), seed=0
    )
    val = ValidationSet(set5, s.degradation)
    out = args.runs / args.label / name
    t0 = time.perf_counter()
    trainer = s.trainer(train, out, val_data=val, lpips=lp, device="cpu")
    summary = trainer.fit()
    return {
        "validation": summary["validation"],
        "bicubic": summary["input_baseline"],
        "steps": s.options.steps,
        "steps_per_second": summary["steps_per_second"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": time.perf_counter() - t0,
        "pretrain_steps": s.options.pretrain_steps,
        "lr": s.options.lr,
        "terms": {t.name: {"weight": t.weight, "layers": t.layers} for t in s.objective.terms},
        "features": s.metadata.get("features", {}),
        "gan": s.adversarial is not None,
        "final_loss": summary["final_loss"],
        "out": str(out),
    }


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
    os.environ["FEATSTAT_OFFLINE"] = "1"
    torch.set_num_threads(args.threads)
    from featstat.engine.runs import load_checkpoint
    from featstat.metrics import LPIPS

    if args.features == "deep":
        # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
        lp = LPIPS("vgg16", weights="vgg16-hed", calibration=None)
    else:
        lp = LPIPS("vgg19", layers=["relu1_2", "relu2_2", "relu3_1"], weights=WEIGHTS, calibration=None)
    result: dict[str, Any] = {"setting": _setting(args), "recipes": {}}
    init = None
    if args.init_steps:
        # the papers' practice for CX-SR and TSRN, applied to every recipe: start from one L2-trained model
        pre = _overrides("pixel-l2", args)
        pre["training"]["steps"] = args.init_steps
        entry = _train("pixel-l2", pre, args, None, lp)
        result["init"] = entry
        print("init (pixel-l2)", json.dumps(entry["validation"]), flush=True)
        init = load_checkpoint(Path(entry["out"]) / "model.pt")["model"]
    for name in args.recipes:
        over = _overrides(name, args)
        if init is not None:
            over["pretrain"] = {"fraction": 0.0}  # already pre-trained
        entry = _train(name, over, args, init, lp)
        result["recipes"][name] = entry
        result["bicubic"] = entry.pop("bicubic")
        print(name, json.dumps(entry["validation"]), f"{entry['steps_per_second']:.2f} steps/s", flush=True)
        _save(args.label, result, args.output)


def _save(label: str, result: dict[str, Any], path: Path) -> None:
    from featstat.engine.runs import write_json

    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    runs = data.setdefault("runs", {})
    old = runs.get(label, {})
    if old.get("setting") == result["setting"]:
        result["recipes"] = {**old.get("recipes", {}), **result["recipes"]}
    from featstat.engine.precision import machine_signature

    # each run names its own machine: runs of one file may come from different machines
    result["machine"] = f"{machine_signature()}, {os.cpu_count()} CPUs (shared), {platform.platform()}"
    runs[label] = result
    write_json(path, data)


def speed(args: argparse.Namespace) -> None:
    """Training steps per second of each recipe: the trainer's step (forward, objective, backward, Adam; GAN
    step included) on the same batches, recipes interleaved over ``--rounds`` so that the load of this shared
    machine hits all alike; median over rounds of the mean step time of ``--speed-steps`` steps."""
    import statistics

    os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
    os.environ["FEATSTAT_OFFLINE"] = "1"
    torch.set_num_threads(args.threads)
    from featstat.io import list_images
    from featstat.restoration.data import RestorationDataset
    from featstat.restoration.recipes import get_recipe, setup

    kodak = list_images(SHARED / "images" / "kodak")
    trainers = {}
    variants = [(n, n, args.gan) for n in args.recipes]
    if "cx-sr" in args.recipes and args.gan:
        variants.append(("cx-sr (no GAN)", "cx-sr", False))
    for label, name, gan in variants:
        over = _overrides(name, args)
        over["pretrain"] = {"fraction": 0.0}  # time the main objective (with the GAN step where there is one)
        if "adversarial" in over:
            over["adversarial"]["enabled"] = gan
        s = setup(get_recipe(name, over))
        data = RestorationDataset(kodak, s.degradation, crop_size=args.crop, samples_per_epoch=len(kodak))
        trainers[label] = s.trainer(data, args.runs / "speed" / name, lpips=None, device="cpu")
    batch = torch.utils.data.default_collate(
        [trainers[args.recipes[0]].train_data[i] for i in range(args.batch)]
    )
    times: dict[str, list[float]] = {n: [] for n in trainers}
    for _ in range(args.rounds):
        for name, tr in trainers.items():
            tr._train_step(batch)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.speed_steps):
                tr._train_step(batch)
            times[name].append((time.perf_counter() - t0) / args.speed_steps)
    result = {
        "setting": {**_setting(args), "rounds": args.rounds, "steps_per_round": args.speed_steps},
        "steps_per_second": {n: 1.0 / statistics.median(t) for n, t in times.items()},
        "seconds_per_step_all_rounds": times,
    }
    from featstat.engine.runs import write_json

    data: dict[str, Any] = json.loads(args.output.read_text()) if args.output.is_file() else {}
    data["speed"] = result
    write_json(args.output, data)
    print(json.dumps(result["steps_per_second"], indent=1))


def figures(args: argparse.Namespace) -> None:
    """Perception–distortion scatter and a zoomed crop of Set5 'butterfly' per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from featstat.io import read_image, write_image
    from featstat.restoration.degrade import bicubic_downsample, resize_bicubic

    data = json.loads(args.output.read_text())
    DOCS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    markers = {"scratch": "o", "finetune": "s"}
    first = next(iter(data["runs"].values()))
    ax.scatter(first["bicubic"]["lpips"], first["bicubic"]["psnr_y"], marker="x", color="k", s=40)
    ax.annotate(
        "bicubic",
        (first["bicubic"]["lpips"], first["bicubic"]["psnr_y"]),
        textcoords="offset points",
        xytext=(5, 3),
        fontsize=8,
    )
    colours = {n: f"C{i}" for i, n in enumerate(RECIPES)}
    for label, res in data["runs"].items():
        for name, v in res["recipes"].items():
            val = v["validation"]
            ax.scatter(
                val["lpips"],
                val["psnr_y"],
                marker=markers.get(label, "^"),
                color=colours.get(name, "C9"),
                s=36,
                label=f"{name} ({label})",
            )
    ax.set_xlabel("LPIPS-style distance (VGG-19 ≤ relu3_1, uncalibrated) ↓")
    ax.set_ylabel("PSNR-Y (dB) ↑")
    ax.set_title("×4 SR on Set5, small CPU budget (o: from scratch, □: from an L2 init)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(DOCS / "perception-distortion.png", dpi=100)
    plt.close(fig)

    label = "finetune" if "finetune" in data["runs"] else next(iter(data["runs"]))
    res = data["runs"][label]
    hr = read_image(SHARED / "images" / "set5" / "img_003_SRF_4_HR.png")
    top, left, size = 100, 60, 96
    crop = (slice(None), slice(None), slice(top, top + size), slice(left, left + size))
    panels = [("HR", hr[crop])]
    lr = bicubic_downsample(hr, 4)
    panels.append(("bicubic", resize_bicubic(lr, hr.shape[-2:]).clamp(0, 1)[crop]))
    for name in res["recipes"]:
        path = args.runs / label / name / "final" / "img_003_SRF_4_HR.png"
        if path.is_file():
            panels.append((name, read_image(path)[crop]))
    zoom = [torch.nn.functional.interpolate(p, scale_factor=2, mode="nearest") for _, p in panels]
    strip = torch.cat([torch.nn.functional.pad(z, (2, 2, 2, 2), value=1.0) for z in zoom], dim=3)
    write_image(DOCS / "butterfly-crops.png", strip)
    _degradations_figure()
    print("figures in", DOCS)


def _degradations_figure() -> None:
    """A Kodak crop and what each task's network sees (seed 0)."""
    from featstat.io import read_image, write_image
    from featstat.restoration.degrade import make_degradation, resize_bicubic

    clean = read_image(SHARED / "images" / "kodak" / "kodim23.png")[..., 180:308, 130:258]
    g = torch.Generator().manual_seed(0)
    tiles = [clean]
    for task in ("sr4", "denoise", "deblur", "jpeg", "demosaic"):
        y = make_degradation(task)(clean, g).clamp(0, 1)
        tiles.append(resize_bicubic(y, clean.shape[-2:]).clamp(0, 1) if task == "sr4" else y)
    strip = torch.cat([torch.nn.functional.pad(t, (2, 2, 2, 2), value=1.0) for t in tiles], dim=3)
    write_image(DOCS / "degradations.png", strip)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["run", "speed", "figures"])
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate of every recipe")
    parser.add_argument("--gan", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1: least contention)")
    parser.add_argument("--output", type=Path, default=RESULTS / "restoration.json")
    parser.add_argument("--label", default="scratch", help="name of this run in the JSON")
    parser.add_argument("--rounds", type=int, default=3, help="speed: interleaved rounds")
    parser.add_argument("--speed-steps", type=int, default=10, help="speed: timed steps per round")
    parser.add_argument(
        "--init-steps",
        type=int,
        default=0,
        help="first train pixel-l2 for this many steps and start every recipe from it",
    )
    parser.add_argument(
        "--runs", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "featstat-restoration"
    )
    parser.add_argument(
        "--features",
        choices=["shallow", "deep"],
        default="shallow",
        help="shallow: every term on the Caffe VGG-19 ≤ relu3_1 (layers replaced as above); deep: the "
        "recipes' own layers on the best trained features here (weights 'auto': HED's VGG-16 after `featstat "
        "weights fetch vgg16-hed`, VGG-19 names mapped, e.g. conv3_4 → conv3_3), LPIPS-style on HED relu1_2…"
        "relu5_3",
    )
    args = parser.parse_args()
    if not (SHARED / "images" / "kodak").is_dir():
        sys.exit(f"needs {SHARED}/images (set FEATSTAT_SHARED)")
    {"run": run, "speed": speed, "figures": figures}[args.what](args)


if __name__ == "__main__":
    main()
