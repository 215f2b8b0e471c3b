"""Texture synthesis: optimisation vs one feed-forward pass (thesis §2.4.4), throughput, quality figures.

    .venv/bin/python benchmarks/synthesis.py speed                 # ~15 min on 2 shared CPU cores
    .venv/bin/python benchmarks/synthesis.py speed --size 256      # the thesis' size (slower)
    .venv/bin/python benchmarks/synthesis.py quality --only textures   # docs/images/synthesis/*.png
    .venv/bin/python benchmarks/synthesis.py speed --device cuda

speed — the thesis measured the time the Gatys optimisation needs to reach the Gram loss that a trained
Texture Network's sample has, against one forward pass of that network (~10 s vs ~20 ms, "500×"; 1100 MB vs
170 MB for a 256² sample). Here:

1. a TextureNetV1 (K = 5, 8→40 channels, circular padding) is trained on the example with Adam (lr 0.1,
   ×0.7 from half-way, every tenth of the run: the thesis' schedule compressed to ``--train-steps``);
2. its loss is the mean Gram loss of 8 samples at ``--size`` (the thesis: "mean over several samples");
3. in fresh processes (clean peak-memory readings): one generator forward pass at ``--size`` (batch 1,
   eval mode, no gradient); the L-BFGS optimisation of featstat.texture.synthesis from noise at ``--size``
   until its
   loss is at or below the generator's (stop_below); samples per second at 256² and 1024².

The descriptor is the real Caffe VGG-19 up to relu3_1 (relu1_1, relu2_1, relu3_1; average pooling) when
``../shared/weights`` is present, else seeded random VGG-19 weights with the same layers; the thesis used
relu1_1…relu5_1, so each optimisation step here is cheaper than theirs (the ratio is understated).
Results: ``benchmarks/results/synthesis[-DEVICE].json`` and ``.png`` (loss against time, generator loss as
a horizontal line, as thesis Fig. 2.6).

quality — result PNGs for docs/synthesis.md: every texture of ../shared/images/textures synthesised by
optimisation with the real Caffe layers (preset caffe-relu3_1) and with the random-filter extractor, and
style transfer of ../shared/images/content/amber.jpg; settings in
``benchmarks/results/synthesis-quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from _harness import machine, measure, run_case

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS_IMAGES = HERE.parent / "docs" / "images" / "synthesis"
SHARED = Path(os.environ.get("FEATSTAT_SHARED", HERE.parent.parent / "shared"))
LAYERS = ["relu1_1", "relu2_1", "relu3_1"]


def _weights() -> str | None:
    if (SHARED / "weights" / "vgg19-caffe-normalised-to-relu3_1.pth").is_file():
        os.environ.setdefault("FEATSTAT_WEIGHTS", str(SHARED / "weights"))
        return "vgg19-caffe-normalised-to-relu3_1"
    return None


def _extractor(device: str):
    from featstat.features import vgg19

    return vgg19(LAYERS, weights=_weights(), pooling="avg", seed=0, device=device)


def _load(path: Path, longer: int, square: bool = False) -> torch.Tensor:
    import torch.nn.functional as F

    from featstat import read_image

    x = read_image(path)
    h, w = x.shape[-2:]
    if square:  # centre crop to a square first
        s = min(h, w)
        x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        h = w = s
    f = longer / max(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _example(size: int) -> torch.Tensor:
    path = SHARED / "images" / "textures" / "red-peppers256.o.jpg"
    if path.is_file():
        return _load(path, size, square=True)
    import torch.nn.functional as F  # no shared folder: a seeded synthetic texture

    g = torch.Generator().manual_seed(0)
    img = F.avg_pool2d(torch.rand(1, 3, size + 6, size + 6, generator=g), 7, 1)
    return (img - img.amin()) / (img.amax() - img.amin())


# -- speed ---------------------------------------------------------------------------------------------------


def _measure(step, device: str, repeat: int, warmup: bool = True) -> dict[str, float]:
    """Median seconds of ``repeat`` calls and the peak extra memory of those calls.

    CPU: the kernel's peak-RSS counter is reset (``/proc/self/clear_refs`` ← 5) after the warm-up call, so
    earlier peaks of the process (imports, loading, the warm-up's one-off allocations) do not count — unlike
    ``_harness.measure``, whose ``ru_maxrss`` covers the whole process. CUDA: the harness' allocator peak.
    """
    if device == "cuda":
        return measure(step, device, repeat=repeat)
    import statistics

    def status(key: str) -> float:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith(key))

    if warmup:
        step()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux or not allowed: fall back to the harness
        return measure(step, device, repeat=repeat)
    base = status("VmRSS")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "peak_extra_mib": max(status("VmHWM") - base, 0.0)}


def train_generator(args: argparse.Namespace, work: Path) -> dict:
    """Train (or reuse) the TextureNetV1 and return its loss and training time."""
    from featstat.nets.texture import TextureNetV1, generate
    from featstat.texture.synthesis import texture_objective
    from featstat.texture.training import load_generator, train_texture

    ckpt = work / f"texture_v1-{args.size}-{args.train_steps}-{args.device}.pt"
    example = _example(args.size).to(args.device)
    extractor = _extractor(args.device)
    info_path = ckpt.with_suffix(".json")
    if not (ckpt.is_file() and info_path.is_file()):
        net = TextureNetV1(seed=0).to(args.device)
        t0 = time.perf_counter()
        result = train_texture(
            net,
            example,
            steps=args.train_steps,
            size=args.size,
            batch_size=args.batch_size,
            extractor=extractor,
            layers=LAYERS,
            decay_start=args.train_steps // 2,
            decay_every=max(1, args.train_steps // 10),
            checkpoint=ckpt,
            checkpoint_every=50,
            resume=True,
            progress=False,
        )
        info = {"train_seconds": time.perf_counter() - t0, "train_history": result.history["total"]}
        info_path.write_text(json.dumps(info))
    info = json.loads(info_path.read_text())
    net = load_generator(ckpt, args.device)
    objective = texture_objective(extractor, LAYERS)
    with torch.no_grad():
        samples = generate(net, 8, args.size, generator=torch.Generator(args.device).manual_seed(1))
        losses = [float(objective(s[None], {"style": example}).total) for s in samples]
    return {
        "checkpoint": str(ckpt),
        "generator_loss": sum(losses) / len(losses),
        "sample_losses": losses,
        "train_steps": args.train_steps,
        "train_batch": args.batch_size,
        **info,
    }


def run_generator_case(case: dict) -> dict:
    from featstat.texture.training import load_generator

    device = case["device"]
    net = load_generator(case["checkpoint"], device)
    size, batch = case["size"], case["batch"]
    g = torch.Generator(device).manual_seed(0)

    def step() -> None:
        with torch.no_grad():
            net(net.noise(batch, size, size, generator=g))

    r = _measure(step, device, repeat=case.get("repeat", 5))
    return {**case, **r, "samples_per_second": batch / r["seconds"]}


def run_stylenet_case(case: dict) -> dict:
    """Stylisation throughput of a StyleNet (IN, the default 32-64-128 channels, 5 residual blocks); the
    weights do not matter for the timing, so the net is freshly initialised."""
    from featstat.nets.texture import StyleNet

    device, size = case["device"], case["size"]
    net = StyleNet(seed=0).to(device).eval()
    content = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    g = torch.Generator(device).manual_seed(0)

    def step() -> None:
        with torch.no_grad():
            net(net.noise(1, size, size, generator=g), content)

    r = _measure(step, device, repeat=case.get("repeat", 3))
    return {**case, **r, "samples_per_second": 1 / r["seconds"]}


class _Reached(Exception):
    pass


def run_optimise_case(case: dict) -> dict:
    """L-BFGS from noise until the *clamped* image (what one would save) has the generator's loss.

    After every step the clamped image is scored without gradient; that scoring is timed and subtracted from
    the run's clock, so the seconds are those of the optimisation alone. The step at which the optimiser's own
    loss (of the unclamped iterate, range penalty aside) first reaches the target is reported too.
    """
    from featstat.texture.synthesis import synthesize, texture_objective

    device = case["device"]
    example = _example(case["size"]).to(device)
    objective = texture_objective(_extractor(device), LAYERS)
    target = case["target_loss"]
    track: dict = {"scoring": 0.0, "clamped": [], "image": None}

    def callback(scale: int, step: int, image: torch.Tensor, values: dict) -> None:
        t0 = time.perf_counter()
        track.setdefault("times", []).append(t0 - track["start"] - track["scoring"])
        with torch.no_grad():
            loss = float(objective(image.clamp(0, 1), {"style": example}).total)
        track["clamped"].append(loss)
        track["image"] = image.clamp(0, 1)
        track["scoring"] += time.perf_counter() - t0
        if loss <= target:
            raise _Reached

    box: dict = {}

    def step() -> None:
        track["start"] = time.perf_counter()
        try:
            box["result"] = synthesize(
                objective,
                {"style": example},
                case["size"],
                steps=case["max_steps"],
                seed=0,
                callback=callback,
            )
        except _Reached:
            pass

    r = _measure(step, device, repeat=1, warmup=False)  # one run from noise: nothing to warm up
    clamped = track["clamped"]
    reached = next((i for i, v in enumerate(clamped) if v <= target), None)
    if case.get("save") and track["image"] is not None:
        from featstat import write_image

        write_image(case["save"], track["image"])
    times = track.get("times", [])
    return {
        **case,
        "peak_extra_mib": r["peak_extra_mib"],
        "reached": reached is not None,
        "steps": len(clamped),
        "seconds_to_target": times[reached] if reached is not None else None,
        "scoring_seconds_excluded": track["scoring"],
        "loss_curve": clamped,
        "time_curve": times,
    }


def speed(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gen = train_generator(args, work)
    print(
        f"generator trained/loaded: loss {gen['generator_loss']:.4g} ({time.perf_counter() - t0:.0f} s)",
        file=sys.stderr,
    )
    cases = [
        {
            "kind": "generator",
            "checkpoint": gen["checkpoint"],
            "size": args.size,
            "batch": 1,
            "device": args.device,
        },
        {
            "kind": "optimise",
            "save": str(work / f"optimised-{args.size}.png"),
            "size": args.size,
            "target_loss": gen["generator_loss"],
            "max_steps": args.max_steps,
            "device": args.device,
        },
        {
            "kind": "generator",
            "checkpoint": gen["checkpoint"],
            "size": 256,
            "batch": 1,
            "device": args.device,
        },
        {
            "kind": "generator",
            "checkpoint": gen["checkpoint"],
            "size": 1024,
            "batch": 1,
            "device": args.device,
            "repeat": 3,
        },
    ]
    cases += [{"kind": "stylenet", "size": size, "device": args.device, "repeat": 3} for size in (256, 1024)]
    results = []
    for case in cases:
        r = run_case("synthesis", case, timeout=1800)
        print(
            json.dumps({k: v for k, v in r.items() if not k.endswith("curve")}), file=sys.stderr, flush=True
        )
        results.append(r)
    opt = next(r for r in results if r["kind"] == "optimise")
    fwd = next(r for r in results if r["kind"] == "generator" and r["size"] == args.size)
    summary = {
        "size": args.size,
        "descriptor": f"VGG-19 {', '.join(LAYERS)} "
        f"({'Caffe, real' if _weights() else 'seeded random'} weights)",
        "generator_loss": gen["generator_loss"],
        "optimisation_seconds_to_generator_loss": opt.get("seconds_to_target"),
        "optimisation_steps_to_generator_loss": opt.get("steps"),
        "optimisation_peak_mib": opt.get("peak_extra_mib"),
        "generator_seconds": fwd.get("seconds"),
        "generator_peak_mib": fwd.get("peak_extra_mib"),
        "speedup": (opt["seconds_to_target"] / fwd["seconds"]) if opt.get("seconds_to_target") else None,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "synthesis" if args.device == "cpu" else f"synthesis-{args.device}"
    out = {"machine": machine(), "generator": gen, "results": results, "summary": summary}
    from featstat._atomic import atomic_write_text

    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(out, indent=2))
    plot_speed(out, RESULTS / f"{stem}.png")
    feedforward_figure(args, work, gen)
    print(markdown(out))


def feedforward_figure(args: argparse.Namespace, work: Path, gen: dict) -> None:
    """docs figure: example | optimisation result (stopped at the generator's loss) | two generator samples at
    the training size | one generator sample at twice the size (fully convolutional)."""
    from featstat import read_image
    from featstat.nets.texture import generate
    from featstat.texture.training import load_generator

    optimised = work / f"optimised-{args.size}.png"
    if args.device != "cpu" or not optimised.is_file():
        return
    net = load_generator(gen["checkpoint"])
    g = torch.Generator().manual_seed(7)
    small = generate(net, 2, args.size, generator=g)
    large = generate(net, 1, 2 * args.size, generator=g)
    top = _row([_example(args.size), read_image(optimised), small[:1], small[1:]])
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    _save_small(DOCS_IMAGES / "feedforward_peppers.png", top)
    _save_small(DOCS_IMAGES / "feedforward_peppers_large.png", large)


def plot_speed(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    opt = next(r for r in out["results"] if r["kind"] == "optimise")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(opt["time_curve"], opt["loss_curve"], label="optimisation (L-BFGS) from noise, clamped image")
    ax.axhline(
        out["generator"]["generator_loss"], color="k", ls="--", label="TextureNetV1 sample (mean of 8)"
    )
    fwd = out["summary"]["generator_seconds"]
    if fwd:
        ax.axvline(fwd, color="C3", ls=":", label=f"one generator pass ({fwd * 1e3:.0f} ms)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("Gram loss")
    ax.set_title(f"{out['summary']['size']}² texture, {out['machine']['threads']} CPU thread(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(out: dict) -> str:
    s = out["summary"]
    lines = [
        f"Descriptor: {s['descriptor']}; texture {s['size']}²; machine: {out['machine']}",
        "",
        "| method | seconds | peak extra MiB | Gram loss |",
        "|---|---|---|---|",
        "| optimisation (L-BFGS, strong Wolfe) until the clamped image has the generator's loss | "
        f"{s['optimisation_seconds_to_generator_loss']} "
        f"({s['optimisation_steps_to_generator_loss']} steps) | {s['optimisation_peak_mib']:.0f} | "
        f"≤ {s['generator_loss']:.4g} |",
        f"| TextureNetV1, one forward pass | {s['generator_seconds']:.4f} | {s['generator_peak_mib']:.0f} | "
        f"{s['generator_loss']:.4g} (mean of 8) |",
        f"| speed-up | {s['speedup']:.0f}× | | |" if s["speedup"] else "| speed-up | not reached | | |",
        "",
        "| TextureNetV1 sampling (batch 1, eval) | seconds / sample | samples / s | peak extra MiB |",
        "|---|---|---|---|",
    ]
    for r in out["results"]:
        if r["kind"] in ("generator", "stylenet") and "error" not in r:
            if r["kind"] == "stylenet" and r["size"] == 256:
                head = (
                    "| StyleNet stylisation (batch 1, eval) | seconds / image | images / s | peak extra MiB |"
                )
                lines += ["", head, "|---|---|---|---|"]
            lines.append(
                f"| {r['size']}² | {r['seconds']:.4f} | {r['samples_per_second']:.2f} | "
                f"{r['peak_extra_mib']:.0f} |"
            )
    return "\n".join(lines)


# -- quality -------------------------------------------------------------------------------------------------


def _save_small(path: Path, image: torch.Tensor) -> None:
    """Write a PNG, palette-quantised (256 colours) when that keeps it much smaller."""
    import io as _io

    from PIL import Image

    from featstat._atomic import atomic_write_bytes
    from featstat.io import to_uint8

    arr = to_uint8(image)
    pil = Image.fromarray(arr)
    buf = _io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    if buf.tell() > 150_000:
        buf = _io.BytesIO()
        pil.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buf, format="PNG", optimize=True
        )
    atomic_write_bytes(path, buf.getvalue())


def _row(images: list[torch.Tensor], gap: int = 4) -> torch.Tensor:
    h = max(i.shape[-2] for i in images)
    parts = []
    for img in images:
        pad = torch.ones(1, 3, h, img.shape[-1])
        pad[..., : img.shape[-2], :] = img.cpu()
        parts += [pad, torch.ones(1, 3, h, gap)]
    return torch.cat(parts[:-1], dim=3)


def quality(args: argparse.Namespace) -> None:
    from featstat.texture.synthesis import synthesize_texture, transfer_style

    if not (SHARED / "images").is_dir():
        raise SystemExit(f"quality needs the shared images in {SHARED} (set FEATSTAT_SHARED)")
    has_weights = _weights() is not None
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / "synthesis-quality.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    only = set(args.only.split(",")) if args.only else None
    size = args.quality_size
    presets = (["caffe-relu3_1"] if has_weights else []) + ["random-filters"]
    if "textures" in (only or {"textures"}) or only is None:
        for path in sorted((SHARED / "images" / "textures").iterdir()):
            name = path.name.split(".")[0]
            if args.texture and name not in args.texture.split(","):
                continue
            example = _load(path, size, square=True)
            row = [example]
            for preset in presets:
                t0 = time.perf_counter()
                steps = args.rf_steps if preset == "random-filters" else args.steps
                r = synthesize_texture(
                    example, size, preset=preset, steps=steps, scales=2, seed=0, progress=False
                )
                row.append(r.image)
                log[f"texture/{name}/{preset}"] = {
                    "example": str(path),
                    "example_size": list(example.shape[-2:]),
                    "size": size,
                    "scales": 2,
                    "steps_per_scale": steps,
                    "preset": preset,
                    "layers": r.settings["objective"][0]["layers"],
                    "initial_loss": r.history["total"][0],
                    "final_loss": r.total,
                    "evaluations": r.history["evaluations"][-1],
                    "seconds": time.perf_counter() - t0,
                    "threads": torch.get_num_threads(),
                }
                print(
                    name,
                    preset,
                    f"{r.history['total'][0]:.3g} → {r.total:.3g}",
                    f"{time.perf_counter() - t0:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
            _save_small(DOCS_IMAGES / f"texture_{name}.png", _row(row))
            _write_log(log_path, log)
    if "style" in (only or {"style"}):
        content = _load(SHARED / "images" / "content" / "amber.jpg", args.style_size)
        for style_name in args.styles.split(","):
            style = _load(SHARED / "images" / "styles" / style_name, args.style_size)  # style_scale 1
            row = [content, style]
            for preset in presets:
                t0 = time.perf_counter()
                steps = args.rf_steps if preset == "random-filters" else args.steps
                r = transfer_style(content, style, preset=preset, steps=steps, seed=0, progress=False)
                row.append(r.image)
                log[f"style/{style_name}/{preset}"] = {
                    "content": "amber.jpg",
                    "style": style_name,
                    "size": list(content.shape[-2:]),
                    "style_image_longer_side": max(style.shape[-2:]),
                    "steps": steps,
                    "preset": preset,
                    "style_weight": r.settings["objective"][0]["weight"],
                    "content_weight": r.settings["objective"][-1]["weight"],
                    "style_layers": r.settings["objective"][0]["layers"],
                    "content_layers": r.settings["objective"][-1]["layers"],
                    "init": "content",
                    "final_terms": r.terms,
                    "seconds": time.perf_counter() - t0,
                }
                print(
                    style_name,
                    preset,
                    r.terms,
                    f"{time.perf_counter() - t0:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
            _save_small(DOCS_IMAGES / f"style_amber_{style_name.split('.')[0]}.png", _row(row))
            _write_log(log_path, log)


def _write_log(path: Path, log: dict) -> None:
    from featstat._atomic import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(
        path, json.dumps({"machine": machine(), **{k: v for k, v in log.items() if k != "machine"}}, indent=2)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", choices=["speed", "quality"], default="speed")
    parser.add_argument("--case", help="internal: run one case given as JSON and print its result")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=128, help="texture side for the speed comparison")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=1000, help="L-BFGS step limit")
    parser.add_argument(
        "--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "featstat-bench-synthesis")
    )
    parser.add_argument("--only", help="quality: 'textures' and/or 'style'")
    parser.add_argument("--texture", help="quality: comma-separated texture names (file stems)")
    parser.add_argument("--quality-size", type=int, default=128)
    parser.add_argument(
        "--style-size", type=int, default=192, help="longer side of the style-transfer output"
    )
    parser.add_argument("--styles", default="wave.jpg,starry_night.jpg")
    parser.add_argument("--steps", type=int, default=100, help="quality: optimisation steps (per scale), VGG")
    parser.add_argument(
        "--rf-steps", type=int, default=60, help="quality: the same for random filters (slower)"
    )
    args = parser.parse_args()
    if args.case:
        case = json.loads(args.case)
        fn = {"generator": run_generator_case, "optimise": run_optimise_case, "stylenet": run_stylenet_case}
        fn = fn[case["kind"]]
        print(json.dumps(fn(case)))
        return
    if args.part == "speed":
        speed(args)
    else:
        quality(args)


if __name__ == "__main__":
    main()
