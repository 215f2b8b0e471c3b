"""The deep-layer methods on real deep features: HED's VGG-16 (``featstat weights fetch vgg16-hed``).

    .venv/bin/python benchmarks/deep_features.py textures   # Gatys textures, relu1_1…relu5_1, 256²
    .venv/bin/python benchmarks/deep_features.py style      # style transfer amber × wave, starry night
    .venv/bin/python benchmarks/deep_features.py invert     # DIP natural pre-image of conv5_3 and conv2_2
    .venv/bin/python benchmarks/deep_features.py pdl        # L1 vs L1 + PDL(conv4_3), denoise and ×4 SR
    .venv/bin/python benchmarks/deep_features.py figures    # the docs' grids from the per-run images
    .venv/bin/python benchmarks/deep_features.py activations  # reference activations for the tests

Every image goes to ``docs/images/deep/``, every number to ``benchmarks/results/deep_features.json`` with
the weights and layers used. The weights are HED's VGG-16 (ImageNet VGG-16 fine-tuned on BSDS500 edges), not
the papers' VGG-19: the results show what the methods do with trained deep layers, not the papers' exact
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "deep_features.json"
SHARED = Path(os.environ.get("FEATSTAT_SHARED", HERE.parent.parent / "shared"))
DOCS = HERE.parent / "docs" / "images" / "deep"
PRESET = "gatys-vgg16-hed"


def _save(section: str, key: str, value: Any) -> None:
    from featstat.engine.precision import machine_signature
    from featstat.engine.runs import write_json

    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data.setdefault("machine", {})[section] = {
        "cpu": machine_signature(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    data.setdefault(section, {})[key] = value
    write_json(RESULTS, data)


def _square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Centre square crop, resized to ``size`` (antialiased)."""
    h, w = img.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = img[..., top : top + s, left : left + s]
    return torch.nn.functional.interpolate(crop, size=(size, size), mode="bicubic", antialias=True).clamp(
        0, 1
    )


def textures(args: argparse.Namespace) -> None:
    import featstat
    from featstat.texture.synthesis import PRESETS, synthesize_texture

    folder = SHARED / "images" / "textures"
    names = args.only or sorted(p.name for p in folder.iterdir())
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in names:
        example = _square(featstat.read_image(folder / name, channels=3), args.size)
        t0 = time.perf_counter()
        result = synthesize_texture(example, size=args.size, preset=PRESET, steps=args.steps, seed=0)
        seconds = time.perf_counter() - t0
        stem = Path(name).stem.split(".")[0]
        pair = torch.cat([example, result.image.clamp(0, 1)], dim=-1)
        featstat.write_image(DOCS / f"texture-{stem}.png", pair)
        history = result.history if hasattr(result, "history") else {}
        losses = history.get("total") if isinstance(history, dict) else None
        entry = {
            "size": args.size,
            "steps": args.steps,
            "seconds": round(seconds, 1),
            "loss_first": float(losses[0]) if losses else None,
            "loss_final": float(losses[-1]) if losses else None,
            "preset": PRESET,
            "layers": list(PRESETS[PRESET].texture_layers),
            "weights": PRESETS[PRESET].weights,
        }
        print(name, json.dumps(entry), flush=True)
        _save("textures", stem, entry)


def style(args: argparse.Namespace) -> None:
    import featstat
    from featstat.texture.synthesis import PRESETS, transfer_style

    content = _square(featstat.read_image(SHARED / "images" / "content" / "amber.jpg", channels=3), args.size)
    DOCS.mkdir(parents=True, exist_ok=True)
    for style_name in args.only or ["wave.jpg", "starry_night.jpg"]:
        style_img = _square(
            featstat.read_image(SHARED / "images" / "styles" / style_name, channels=3), args.size
        )
        for weight in args.style_weights:
            t0 = time.perf_counter()
            result = transfer_style(
                content, style_img, preset=PRESET, steps=args.steps, style_weight=weight, seed=0
            )
            seconds = time.perf_counter() - t0
            stem = f"style-{Path(style_name).stem}-w{weight:g}"
            row = torch.cat([content, style_img, result.image.clamp(0, 1)], dim=-1)
            featstat.write_image(DOCS / f"{stem}.png", row)
            entry = {
                "size": args.size,
                "steps": args.steps,
                "style_weight": weight,
                "seconds": round(seconds, 1),
                "terms": {k: float(v) for k, v in getattr(result, "terms", {}).items()},
                "preset": PRESET,
                "style_layers": list(PRESETS[PRESET].texture_layers),
                "content_layers": list(PRESETS[PRESET].content_layers),
            }
            print(stem, json.dumps(entry), flush=True)
            _save("style", stem, entry)


def invert(args: argparse.Namespace) -> None:
    import featstat
    from featstat.prior import invert_features

    image = _square(
        featstat.read_image(SHARED / "images" / "dip" / "feature_inversion" / "building.jpg"), 128
    )
    DOCS.mkdir(parents=True, exist_ok=True)
    outs = [image]
    for layer in args.layers:
        t0 = time.perf_counter()
        result = invert_features(
            image, layer, arch="vgg16", weights="vgg16-hed", steps=args.steps, seed=0, progress=False
        )
        seconds = time.perf_counter() - t0
        outs.append(result.average.clamp(0, 1))
        losses = result.history["loss"]
        entry = {
            "layer": layer,
            "steps": args.steps,
            "size": 128,
            "seconds": round(seconds, 1),
            "loss_first": float(losses[0]),
            "loss_final": float(losses[-1]),
            "psnr_vs_original": float(featstat.metrics.psnr(result.average.clamp(0, 1), image)),
            "weights": "vgg16-hed",
        }
        print(layer, json.dumps(entry), flush=True)
        _save("invert", layer, entry)
    featstat.write_image(DOCS / "invert.png", torch.cat(outs, dim=-1))


def pdl(args: argparse.Namespace) -> None:
    """PDL (VGG-16 conv4_3 of HED, the paper's layer) against its L1 baseline, denoising (σ = 75, the
    recipe's) and ×4 SR, same network, data and budget: 20 Kodak images for training, 4 held out (centre
    crops 256²) for validation; PSNR, SSIM and an LPIPS-style distance on HED's VGG-16 (uncalibrated)."""
    import featstat
    from featstat.features.sources import choose_features
    from featstat.metrics import LPIPS
    from featstat.restoration.recipes import train

    kodak = sorted((SHARED / "images" / "kodak").glob("*.png"))
    val_dir = Path(args.runs) / "kodak-val"
    val_dir.mkdir(parents=True, exist_ok=True)
    for p in kodak[-4:]:
        img = featstat.read_image(p)
        h, w = img.shape[-2:]
        featstat.write_image(
            val_dir / p.name, img[..., (h - 256) // 2 : (h + 256) // 2, (w - 256) // 2 : (w + 256) // 2]
        )
    lp = LPIPS("vgg16", weights="vgg16-hed", calibration=None)
    for task, recipes in (("denoise", ["pdl-denoise", "pdl-denoise-l1"]), ("sr4", ["pdl-sr", "pdl-sr-l1"])):
        for name in recipes:
            base = name.removesuffix("-l1")
            over: dict[str, Any] = {
                "network": {"name": "edsr" if task == "sr4" else "srn",
                            "options": {"blocks": 4, "channels": 32} if task == "sr4" else {}},
                "training": {"steps": args.steps, "batch_size": 4, "lr": 5e-4, "log_every": 10,
                             "checkpoint_every": 0, "validate_every": 0, "save_images": 4, "seed": 0,
                             "progress": False},
                "data": {"crop_size": 64, "val_count": 0},
            }  # fmt: skip
            if name.endswith("-l1"):
                over["objective"] = {"terms": {"pdl": {"enabled": False}}}
            t0 = time.perf_counter()
            summary = train(base, kodak[:-4], Path(args.runs) / f"pdl-{name}", task=task, overrides=over,
                            val=val_dir, lpips=lp, progress=False)  # fmt: skip
            entry = {
                "task": task,
                "objective": "L1 only" if name.endswith("-l1") else "L1 + 0.01·PDL(vgg16-hed conv4_3)",
                "steps": args.steps,
                "validation": summary["validation"],
                "input": summary.get("input_baseline"),
                "seconds": round(time.perf_counter() - t0, 1),
                "features": None if name.endswith("-l1") else choose_features("vgg16", ["conv4_3"]).info(),
            }
            print(name, json.dumps(entry), flush=True)
            _save("pdl", name, entry)


def figures(args: argparse.Namespace) -> None:
    """Grids for the docs from the per-run PNGs (which are then removed): textures.png (example | result,
    two per row) and style.png (content | style | result, one row per style image and weight)."""
    from PIL import Image

    def grid(paths: list[Path], columns: int, out: Path) -> None:
        images = [Image.open(p).convert("RGB") for p in paths]
        w, h = images[0].size
        rows = -(-len(images) // columns)
        canvas = Image.new("RGB", (w * columns, h * rows), "white")
        for i, im in enumerate(images):
            canvas.paste(im, ((i % columns) * w, (i // columns) * h))
        canvas.save(out, optimize=True)
        for p in paths:
            p.unlink()

    textures = sorted(DOCS.glob("texture-*.png"))
    if textures:
        grid(textures, 2, DOCS / "textures.png")
    styles = sorted(DOCS.glob("style-*.png"))
    if styles:
        grid(styles, 1, DOCS / "style.png")
    restoration = HERE / "results" / "restoration.json"
    runs = json.loads(restoration.read_text())["runs"] if restoration.is_file() else {}
    if "deep-hed" in runs:
        perception_distortion(runs["deep-hed"], DOCS / "perception-distortion.png")


def perception_distortion(run: dict[str, Any], out: Path) -> None:
    """PSNR-Y (distortion, higher is better) against the LPIPS-style distance on HED's VGG-16 (perception,
    lower is better) of every recipe, the L2 start and bicubic, on Set5 ×4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {"bicubic": run["bicubic"], "L2 start": run["init"]["validation"]}
    points.update({name: entry["validation"] for name, entry in run["recipes"].items()})
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, v in points.items():
        ax.scatter(v["lpips"], v["psnr_y"], s=30, color="grey" if name in ("bicubic", "L2 start") else None)
        ax.annotate(name, (v["lpips"], v["psnr_y"]), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xlabel("LPIPS-style distance, HED VGG-16, uncalibrated (lower: closer)")
    ax.set_ylabel("PSNR-Y (dB)")
    ax.set_title("×4 SR on Set5, same EDSR and budget, losses on HED's VGG-16", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def activations(args: argparse.Namespace) -> None:
    """Mean, std and the first four channels at the centre pixel (the shared README's convention)."""
    import featstat

    image = featstat.read_image(SHARED / "images" / "dip" / "denoising" / "F16_GT.png")
    vgg = featstat.vgg16(["relu1_2", "conv3_3", "conv5_3"], weights="vgg16-hed")
    with torch.no_grad():
        feats = vgg(image)
    out = {}
    for name, f in feats.items():
        f = f.double()
        c = f.shape[-1] // 2
        out[name] = {
            "shape": list(f.shape),
            "mean": float(f.mean()),
            "std": float(f.std()),
            "centre": [float(v) for v in f[0, :4, f.shape[-2] // 2, c]],
        }
    print(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["textures", "style", "invert", "pdl", "figures", "activations"])
    parser.add_argument("--runs", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "featstat-deep"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--only", nargs="*", default=None, help="file names (textures, styles)")
    parser.add_argument("--style-weights", type=float, nargs="+", default=[20.0])
    parser.add_argument("--layers", nargs="+", default=["conv2_2", "conv5_3"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["FEATSTAT_OFFLINE"] = "1"
    commands = {"textures": textures, "style": style, "invert": invert, "pdl": pdl}
    commands.update(figures=figures, activations=activations)
    commands[args.what](args)


if __name__ == "__main__":
    main()
