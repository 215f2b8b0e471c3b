"""Adversarial chapters (thesis ch. 4–5) on data we have: demonstrations with numbers, and step timings.

    python benchmarks/adversarial.py step        # one translation step, perceptual vs image discriminator
    python benchmarks/adversarial.py age         # AGE on scikit-learn's 8×8 digits (upsampled to 16×16)
    python benchmarks/adversarial.py translate   # unaligned translation with a known hidden mapping (Kodak)

No CelebA / CIFAR here: the digits stand in for the unconditional AGE experiments, Kodak crops for the
translation ones. Results go to ``benchmarks/results/adversarial-<what>.json`` with PNGs beside them.

- **step**: one generator + discriminator update at 128², batch 4, the perceptual discriminator (frozen
  VGG trunk to relu4, the best local weights) against the DCGAN image discriminator widened to a similar
  count of learnable parameters; the same run, ratios reported (target: perceptual ≤ 2× image). A fresh
  process per case, rounds interleaved; ``--base-src OTHER/src`` times another tree (the code before a
  change) in the same run; a breakdown of the perceptual step's parts.
- **age**: 1,437 training / 360 held-out digits; samples and reconstructions as PNG grids; held-out L1
  reconstruction error; mode coverage: a logistic-regression classifier trained on the real digits labels
  2,000 samples — the class histogram, its entropy and the rarest class's share (uniform: 10 %). The real
  digits reach the classifier as the samples do (16² → 8², area) and the held-out digits' own histogram
  is the reference.
- **translate**: source = crops of Kodak images 1–10, target = crops of images 13–22 through a fixed
  "hidden" mapping the model never sees in pairs (a warm colour grade, gamma 0.8, plus a 3×3 box blur);
  test = crops of the held-out images 11, 12, 23, 24 and their hidden mapping. Same steps and seed for the
  perceptual, image and Rand-MS discriminators; PSNR and LPIPS-style (featstat.metrics, uncalibrated) of
  G(test) against the hidden mapping, the identity baseline (no change), and the C2ST log-loss against
  hidden(other crops of the test images). Crops stay in memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import featstat  # noqa: E402
from _harness import machine  # noqa: E402
from featstat.adversarial.age import AGEOptions, AGERun, data_reconstruction_loss, sample_sphere  # noqa: E402
from featstat.adversarial.translation import TranslationOptions, TranslationRun, UnpairedCrops  # noqa: E402
from featstat.io import list_images, read_image, write_image  # noqa: E402

RESULTS = HERE / "results"
KODAK = HERE.parent.parent / "shared" / "images" / "kodak"


def _save(name: str, data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    data = {"machine": machine(), "featstat": featstat.__version__, **data}
    (RESULTS / f"adversarial-{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))


# ------------------------------------------------------------------------------------------------ step
# Each (tree, discriminator) case runs in a fresh process; rounds interleave the cases, so drift in the load
# of this shared machine hits all alike. A case builds the run, takes one warm-up step and times ``repeat``
# steps. The crops are 128² PNGs written once to a temporary folder (reading full Kodak images would add the
# same decoding time to both sides and blur the ratio). Only names that exist in the tree before the
# optimisation are used, so ``--base-src`` can time that tree in the same run.

STEP_KINDS = ("perceptual", "image")


def _step_crops(folder: Path, size: int) -> None:
    files = sorted(list_images(KODAK))
    for name, chosen, seed in (("source", files[:12], 0), ("target", files[12:], 1)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        crops = _crops(chosen, size, 2, seed=seed)
        for i in range(len(crops)):
            write_image(folder / name / f"{i:03d}.png", crops[i : i + 1])


def _step_runs(data: Path, size: int, batch: int) -> dict:
    """The two runs of the step benchmark: the perceptual discriminator (frozen VGG trunk, the best local
    weights, learnable width 64) and the DCGAN image discriminator widened to a similar learnable size."""
    from featstat.adversarial.discriminators import ImageDiscriminator

    runs: dict = {}
    for kind in STEP_KINDS:
        opts = TranslationOptions(batch=batch, size=size, discriminator=kind, width=64, seed=0)
        run = TranslationRun(opts, UnpairedCrops(data / "source", data / "target", size))
        if kind == "image":  # widen the DCGAN discriminator to a similar learnable size
            perceptual = sum(p.numel() for p in runs["perceptual"].d_y.parameters() if p.requires_grad)
            width = 16
            while sum(p.numel() for p in ImageDiscriminator(width=width * 2).parameters()) <= perceptual:
                width *= 2
            run.d_y = ImageDiscriminator(width=width)
            run.opt_d = torch.optim.Adam(run.d_y.parameters(), lr=2e-4, betas=(0.5, 0.999))
            for attr in ("discriminators", "_d"):  # the optimised tree keeps lists of what the step calls
                if hasattr(run, attr):
                    setattr(run, attr, [run.d_y])
            if hasattr(run, "_learnable"):
                run._learnable = [list(run.d_y.parameters())]
        runs[kind] = run
    return runs


def step_case(args: argparse.Namespace) -> None:
    """One case in this process (called by ``step``): print {"kind", "seconds", "times", ...} as JSON."""
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    run = _step_runs(Path(args.data), args.size, args.batch)[args.kind]
    learn = sum(p.numel() for p in run.d_y.parameters() if p.requires_grad)
    gen = sum(p.numel() for p in run.g_xy.parameters())
    run.step(0)  # warm-up
    times = []
    for i in range(args.repeat):
        t = time.perf_counter()
        run.step(i + 1)
        times.append(time.perf_counter() - t)
    print(json.dumps({"kind": args.kind, "seconds": sorted(times)[len(times) // 2], "times": times,
                      "learnable_parameters": learn, "generator_parameters": gen,
                      "featstat": featstat.__file__}))  # fmt: skip


def _breakdown(data: Path, size: int, batch: int, repeat: int) -> dict:
    """Where a perceptual step's time goes (this tree), and what each saving buys: every part timed alone,
    the variants of a part ("before" = the way the step did it before the optimisation) interleaved in the
    same rounds, so the machine's load hits them alike; median of ``repeat`` rounds."""
    from featstat.adversarial.discriminators import discriminator_head_loss
    from featstat.adversarial.translation import _OnePass

    run = _step_runs(data, size, batch)["perceptual"]
    g, d, trunk = run.g_xy, run.d_y, run.trunks[0]
    flat = _OnePass(trunk.inner, channels_last=False)  # the same trunk on contiguous tensors
    x = run.data.draw("source", batch, 0)
    y = run.data.draw("target", batch, 1)
    learn = run._learnable[0]

    def generator() -> None:
        g(x).mean().backward()

    def trunk_fake(t: _OnePass) -> None:  # G(x)'s features with a graph, and the gradient back to the image
        img = x.clone().requires_grad_(True)
        sum(f.float().mean() for f in t(img).values()).backward()  # type: ignore[misc]
        t.forget()

    def trunk_real(t: _OnePass) -> None:
        with torch.no_grad():
            t(y)

    with torch.no_grad():
        feats = {k: v for k, v in trunk(y).items()}

    def heads_d() -> None:  # the discriminator's update: real and fake features, weight gradients
        discriminator_head_loss(d(features=feats), d(features=feats)).backward()

    def heads_g(fixed: bool) -> None:  # the generator's update: gradients to the features (and the weights)
        f = {k: v.clone().requires_grad_(True) for k, v in feats.items()}
        if fixed:
            with run._fixed_discriminators():
                out = d(features=f)
        else:
            out = d(features=f)
        out[0].mean().backward()

    parts = {
        "generator fwd+bwd (×2 per step: G(x), identity G(y))": generator,
        "trunk on G(x), fwd+bwd to the image (channels-last)": lambda: trunk_fake(trunk),
        "trunk on G(x), fwd+bwd to the image (contiguous, before)": lambda: trunk_fake(flat),
        "trunk on y, no graph (channels-last)": lambda: trunk_real(trunk),
        "trunk on y, no graph (contiguous, before)": lambda: trunk_real(flat),
        "discriminator heads, D update (2 fwd + bwd)": heads_d,
        "discriminator heads, G update (no weight grads)": lambda: heads_g(True),
        "discriminator heads, G update (with weight grads, before)": lambda: heads_g(False),
    }
    times: dict = {name: [] for name in parts}
    for fn in parts.values():  # warm-up
        fn()
    for _ in range(repeat):
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            for p in [*g.parameters(), *learn]:
                p.grad = None
    return {name: statistics.median(v) for name, v in times.items()}


def _step_summary(times: dict) -> dict:
    """Medians and minima of the timed steps, and the perceptual ÷ image ratio of each. On a machine other
    jobs share, the minimum is the least disturbed step; both are reported."""
    med = {k: statistics.median(times[k]) for k in STEP_KINDS}
    low = {k: min(times[k]) for k in STEP_KINDS}
    return {"perceptual_seconds": med["perceptual"], "image_seconds": med["image"],
            "perceptual_over_image": med["perceptual"] / med["image"],
            "perceptual_min_seconds": low["perceptual"], "image_min_seconds": low["image"],
            "perceptual_over_image_of_minima": low["perceptual"] / low["image"],
            "times": times}  # fmt: skip


def bench_step(args: argparse.Namespace) -> None:
    import subprocess
    import tempfile

    torch.set_num_threads(args.threads)
    trees = {"this tree": str(HERE.parent / "src")}
    if args.base_src:
        trees = {"base": str(Path(args.base_src).resolve()), **trees}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        _step_crops(data, args.size)
        raw: dict = {t: {k: [] for k in STEP_KINDS} for t in trees}
        learnable: dict = {}
        for r in range(args.rounds):
            for tree, src in trees.items():
                for kind in STEP_KINDS:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "step-case", "--kind", kind,
                           "--data", str(data), "--size", str(args.size), "--batch", str(args.batch),
                           "--repeat", str(args.repeat), "--threads", str(args.threads)]  # fmt: skip
                    env = {**os.environ, "PYTHONPATH": src}
                    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if out.returncode:
                        raise RuntimeError(f"{tree} {kind} failed:\n{out.stderr[-3000:]}")
                    case = json.loads(out.stdout.strip().splitlines()[-1])
                    if not case["featstat"].startswith(src):
                        raise RuntimeError(f"case imported {case['featstat']}, not the tree {src}")
                    raw[tree][kind].extend(case["times"])
                    learnable[kind] = case["learnable_parameters"]
                    learnable["generator"] = case["generator_parameters"]
                    print(f"round {r + 1} {tree:9s} {kind:10s} median {case['seconds']:.2f} s", flush=True)
        breakdown = _breakdown(data, args.size, args.batch, args.repeat)
    results = {tree: _step_summary(raw[tree]) for tree in trees}
    ratio = results["this tree"]["perceptual_over_image"]
    _save("step", {
        "size": args.size, "batch": args.batch, "threads": args.threads, "rounds": args.rounds,
        "repeat": args.repeat, "base_src": args.base_src, "learnable_parameters": learnable,
        "method": "fresh process per (tree, discriminator) case, rounds interleaved; per case one warm-up "
                  "step then `repeat` timed steps; seconds = median (and minimum) over all timed steps of "
                  "all rounds",
        "load_average_at_end": os.getloadavg(),
        "results": results, "perceptual_over_image": ratio, "target": "<= 2.0", "met": ratio <= 2.0,
        "breakdown_seconds_this_tree": breakdown,
    })  # fmt: skip


# ------------------------------------------------------------------------------------------------- age


def bench_age(args: argparse.Namespace) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from featstat.io import image_grid

    torch.set_num_threads(args.threads)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = digits.target
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=g)
    train_idx, test_idx = order[:1437], order[1437:]
    up = F.interpolate(x, size=(16, 16), mode="bilinear").clamp(0, 1)
    opts = AGEOptions(steps=args.steps, batch=64, size=16, channels=1, latent=16, width=32, seed=0)
    run = AGERun(opts, up[train_idx])
    t = time.perf_counter()
    history = []
    for step in range(opts.steps):
        values = run.step(step)
        if (step + 1) % max(1, opts.steps // 20) == 0:
            history.append({"step": step + 1, **{k: float(v) for k, v in values.items()}})
    seconds = time.perf_counter() - t
    enc, gen = run.encoder.eval(), run.generator.eval()
    with torch.no_grad():
        test = up[test_idx]
        rec = gen(enc(test))
        rec_l1 = data_reconstruction_loss(test, rec).item()
        mean_l1 = (test - up[train_idx].mean(0, keepdim=True)).abs().mean().item()  # "predict the mean"
        samples = gen(sample_sphere(2000, opts.latent, seed=1))

    def small(images: torch.Tensor):  # 16² → 8²: the real digits take the samples' path too
        return F.interpolate(images, size=(8, 8), mode="area").flatten(1).numpy() * 16.0

    clf = LogisticRegression(max_iter=2000).fit(small(up[train_idx]), labels[train_idx.numpy()])
    accuracy = float(clf.score(small(test), labels[test_idx.numpy()]))
    hist = [int(c) for c in torch.bincount(torch.tensor(clf.predict(small(samples))), minlength=10)]
    real_hist = [int(c) for c in torch.bincount(torch.tensor(clf.predict(small(test))), minlength=10)]
    p = torch.tensor(hist, dtype=torch.float64) / sum(hist)
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    RESULTS.mkdir(exist_ok=True)
    write_image(RESULTS / "adversarial-age-samples.png", image_grid(samples[:64], 8))
    pairs = torch.stack([test[:32], rec[:32]], dim=1).flatten(0, 1)
    write_image(RESULTS / "adversarial-age-reconstructions.png", image_grid(pairs, 8))
    _save("age", {
        "data": "sklearn digits 8×8 → 16×16, 1437 train / 360 held out", "options": opts.__dict__ | {
            "betas": list(opts.betas)},
        "steps_per_second": opts.steps / seconds, "seconds": seconds, "threads": args.threads,
        "held_out_l1": rec_l1, "held_out_l1_of_mean_image": mean_l1,
        "classifier_accuracy_on_real": accuracy, "sample_class_histogram": hist,
        "held_out_real_class_histogram": real_hist,
        "class_entropy_nats": entropy, "uniform_entropy_nats": math.log(10),
        "rarest_class_share": float(p.min()),
        "history": history,
    })  # fmt: skip


# ------------------------------------------------------------------------------------------- translate


def hidden(x: torch.Tensor) -> torch.Tensor:
    """The fixed mapping of the target domain: warm grade, gamma 0.8, 3×3 box blur."""
    grade = torch.tensor([1.08, 1.0, 0.82]).view(1, 3, 1, 1)
    y = (x * grade + torch.tensor([0.03, 0.0, -0.02]).view(1, 3, 1, 1)).clamp(0, 1) ** 0.8
    return F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _crops(files: list[Path], size: int, per_image: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in files:
        img = read_image(f)
        h, w = img.shape[-2:]
        for _ in range(per_image):
            t = int(torch.randint(h - size + 1, (1,), generator=g))
            l_ = int(torch.randint(w - size + 1, (1,), generator=g))
            out.append(img[..., t : t + size, l_ : l_ + size])
    return torch.cat(out)


#: the demo's split of the 24 Kodak images (sorted names): the generator never sees the test images
TRAIN_SOURCE, TRAIN_TARGET, TEST = slice(0, 10), slice(12, 22), [10, 11, 22, 23]


def _lpips_style() -> dict:
    """Two LPIPS-style distances available offline (uncalibrated LPIPS form: unit-normalised features,
    every channel weight 1): on VGG-16-HED (the network the perceptual discriminator's trunk also uses,
    so it may favour that discriminator) and on the VGG-19 Caffe layers to relu3_1 (another network)."""
    from featstat.metrics import LPIPS

    out = {}
    for name, kw in (("lpips_style_vgg16_hed", dict(net="vgg", weights="vgg16-hed")),
                     ("lpips_style_vgg19_caffe_to_relu3_1",
                      dict(net="vgg19", layers=["relu1_1", "relu2_1", "relu3_1"],
                           weights="vgg19-caffe-normalised-to-relu3_1"))):  # fmt: skip
        try:
            out[name] = LPIPS(**kw, calibration=None)
        except Exception as err:  # weights missing on this machine: say so in the JSON
            out[name] = f"unavailable: {str(err).splitlines()[0]}"
    return out


def bench_translate(args: argparse.Namespace) -> None:
    from featstat.io import image_grid
    from featstat.metrics import psnr
    from featstat.metrics.c2st import c2st

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    os.environ.setdefault("FEATSTAT_WEIGHTS", str(KODAK.parent.parent / "weights"))  # ../shared/weights
    files = sorted(list_images(KODAK))
    size = args.size
    # crops kept in memory (UnpairedCrops takes tensors: no image file is read per step)
    src_train = _crops(files[TRAIN_SOURCE], size, 16, seed=0)
    tgt_train = hidden(_crops(files[TRAIN_TARGET], size, 16, seed=1))
    test_files = [files[i] for i in TEST]
    test_src = _crops(test_files, size, 16, seed=2)
    test_ref = hidden(test_src)  # what a perfect translator would output
    held_target = hidden(_crops(test_files, size, 16, seed=3))  # real target-domain crops for the C2ST
    metrics = _lpips_style()

    def score(out: torch.Tensor | None, name: str) -> dict:
        row: dict = {}
        if out is not None:
            row["psnr"] = float(psnr(out, test_ref))
            for key, metric in metrics.items():
                row[key] = metric if isinstance(metric, str) else float(metric(out, test_ref))
        test = c2st(held_target, test_ref if out is None else out, size=size)
        row.update(c2st_log_loss=test.log_loss, c2st_accuracy=test.accuracy)
        print(name, row, flush=True)
        return row

    results = {"identity (no change)": score(test_src, "identity"),
               "hidden mapping (oracle, C2ST only)": score(None, "oracle")}  # fmt: skip
    shown = [test_src[:8], test_ref[:8]]
    histories: dict = {}

    def options(kind: str) -> TranslationOptions:
        return TranslationOptions(batch=4, size=size, discriminator=kind, width=32, generator_width=16,
                                  blocks=3, identity=1.0, pretrain=args.pretrain, seed=0)  # fmt: skip

    # Pre-training (auto-encoder, 5.3.3.3) touches only the generator, its optimiser and the data draw, which
    # start the same for every discriminator (same seed): it runs once and every run continues from it — the
    # same numbers as pre-training in each run, a third of the time.
    pre = TranslationRun(
        options(args.discriminators[0]), UnpairedCrops(src_train, tgt_train, size), device="cpu"
    )
    history = []
    t = time.perf_counter()
    for step in range(args.pretrain):
        values = pre.step(step)
        if (step + 1) % 50 == 0 or step + 1 == args.pretrain:
            history.append({"step": step + 1, **{k: round(float(v), 5) for k, v in values.items()}})
            print("pretrain", history[-1], f"{time.perf_counter() - t:.0f} s", flush=True)
    pretrain_seconds = time.perf_counter() - t
    histories["pretrain (shared)"] = history
    start = {
        "g_xy": pre.g_xy.state_dict(),
        "opt_g": pre.opt_g.state_dict(),
        "sampler": pre.sampler.get_state(),
    }
    with torch.no_grad():
        auto = pre.g_xy.eval()(test_src).clamp(0, 1)
    results["auto-encoder after pre-training (start of every run)"] = {
        **score(auto, "auto-encoder"), "psnr_against_its_input": float(psnr(auto, test_src)),
        "seconds": pretrain_seconds, "steps": args.pretrain}  # fmt: skip
    for kind in args.discriminators:
        run = TranslationRun(options(kind), UnpairedCrops(src_train, tgt_train, size), device="cpu")
        run.g_xy.load_state_dict(start["g_xy"])
        run.opt_g.load_state_dict(start["opt_g"])
        run.sampler.set_state(start["sampler"])
        history = []
        t = time.perf_counter()
        for step in range(args.pretrain, args.steps):
            values = run.step(step)
            if (step + 1) % 25 == 0 or step + 1 == args.steps:
                history.append({"step": step + 1, **{k: round(float(v), 5) for k, v in values.items()}})
                print(kind, history[-1], f"{time.perf_counter() - t:.0f} s", flush=True)
        seconds = time.perf_counter() - t
        g = run.g_xy.eval()
        with torch.no_grad():
            out = g(test_src).clamp(0, 1)
        adversarial = args.steps - args.pretrain
        results[kind] = {**score(out, kind), "seconds": seconds, "adversarial_steps": adversarial,
                         "seconds_per_adversarial_step": seconds / max(1, adversarial)}  # fmt: skip
        histories[kind] = history
        shown.append(out[:8])
    RESULTS.mkdir(exist_ok=True)
    write_image(RESULTS / "adversarial-translate.png", image_grid(torch.cat(shown), 8))
    _save("translate", {
        "size": size, "steps": args.steps, "pretrain": args.pretrain, "threads": args.threads,
        "hidden_mapping": hidden.__doc__,
        "data": {"kodak_sorted_indices": {"train_source": [0, 9], "train_target": [12, 21], "test": TEST},
                 "train_crops_per_side": len(src_train), "test_crops": len(test_src),
                 "c2st_real": "hidden(other crops of the test images)"},
        "settings": "batch 4, generator ResnetTranslator(M=2, N=3, width 16), discriminator width 32, "
                    "identity λ 1, non-saturating GAN, Adam 2e-4 (0.5, 0.999), seed 0; the perceptual "
                    "trunk: the best local VGG (VGG-16-HED to relu4_3, VGG*); Rand-MS: VGG-19* to relu4_4, "
                    "random, trained",
        "metrics": "PSNR and LPIPS-style of G(test) against hidden(test) (higher / lower is better); C2ST "
                   "log-loss of a small CNN telling hidden(held-out crops) from G(test) (higher = harder to "
                   "tell; ln 2 = 0.693 at chance)",
        "steps_note": "steps counts pre-training: `pretrain` auto-encoder steps (run once, shared), then "
                      "steps − pretrain adversarial steps per discriminator",
        "rows_of_png": ["source", "hidden(source)", *args.discriminators],
        "results": results, "history": histories,
    })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["step", "age", "translate", "step-case"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="step: timed steps per case (after one warm-up)")
    ap.add_argument("--rounds", type=int, default=3, help="step: interleaved rounds of fresh processes")
    ap.add_argument("--base-src", default=None, help="step: another tree's src/ to time in the same run")
    ap.add_argument("--kind", default="perceptual", help=argparse.SUPPRESS)  # step-case
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)  # step-case
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--pretrain", type=int, default=100)
    ap.add_argument("--size", type=int, default=None, help="crop side (default: 128 step, 64 translate)")
    ap.add_argument("--discriminators", nargs="+", default=["perceptual", "image", "rand-ms"])
    args = ap.parse_args()
    if args.size is None:
        args.size = 64 if args.what == "translate" else 128
    benches = {"step": bench_step, "age": bench_age, "translate": bench_translate, "step-case": step_case}
    benches[args.what](args)


if __name__ == "__main__":
    main()
