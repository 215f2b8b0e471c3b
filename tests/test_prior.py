"""Deep Image Prior engine and tasks on tiny images: exact resume, inpainting only through the prior, run
averaging, backtracking, each task's data term, bad inputs; the real images of ../shared when present."""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch

from featstat import prior
from featstat.nets.hourglass import Skip, input_code
from featstat.prior import FitOptions, Problem, solve
from featstat.prior.engine import resolve_precision

TINY = dict(channels_down=[8, 8, 8], channels_up=[8, 8, 8], channels_skip=[2, 2, 2])


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def smooth_image(size: int = 32, seed: int = 0) -> torch.Tensor:
    """A smooth colour image with one sharp disc: something a deep image prior fits easily."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    a = torch.rand(3, 3, generator=g)
    img = torch.stack(
        [0.5 + 0.3 * torch.sin(3 * a[c, 0] * x + 3 * a[c, 1] * y + 6 * a[c, 2]) for c in range(3)]
    )
    disc = (x - 0.4) ** 2 + (y - 0.6) ** 2 < 0.05
    img[:, disc] = torch.tensor([0.9, 0.2, 0.1])[:, None]
    return img[None]


# ---------------------------------------------------------------------------------------------- engine


def _interrupt_at(step_to_stop: int, run_to_stop: int = 0):
    def callback(run: int, step: int, loss: float) -> None:
        if run == run_to_stop and step == step_to_stop:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize(("precision", "runs", "stop"), [("fp32", 1, 5), ("bf16", 2, 3)])
def test_resume_continues_identically(tmp_path, precision, runs, stop):
    """Interrupt (as Ctrl-C would) mid-run, resume from the checkpoint: bit-for-bit the uninterrupted result,
    with input-noise perturbation, averaging, backtracking and (bf16) autocast + channels_last all on."""
    clean = smooth_image(28)
    noisy = prior.add_gaussian_noise(clean, 0.1, seed=0)
    kw = dict(clean=clean, steps=8, runs=runs, net_options=TINY, precision=precision, checkpoint_every=3)
    full = prior.denoise(noisy, checkpoint=tmp_path / "a.pt", **kw)
    ck = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        prior.denoise(noisy, checkpoint=ck, callback=_interrupt_at(stop, runs - 1), **kw)
    saved = torch.load(ck, weights_only=True)
    current = saved["state"]["current"]
    assert saved["status"] == "interrupted" and saved["kind"] == "prior"
    assert current["run"] == runs - 1 and current["step"] == stop
    resumed = prior.denoise(noisy, checkpoint=ck, resume=True, **kw)
    assert torch.equal(full.image, resumed.image)
    assert torch.equal(full.average, resumed.average)
    assert full.history == resumed.history
    assert len(full.history["loss"]) == 8 * runs
    assert full.info["precision"] == precision and full.info["channels_last"] is None


def test_ctrl_c_finishes_the_step_saves_and_resumes_identically(tmp_path):
    """A real SIGINT (what Ctrl-C sends) mid-run: the step completes, the checkpoint is saved, the run stops
    with KeyboardInterrupt; resuming gives the uninterrupted result."""
    img = smooth_image(24)
    kw = dict(clean=img, steps=6, net_options=TINY, precision="fp32")
    full = prior.denoise(img, **kw)

    def ctrl_c(run: int, step: int, loss: float) -> None:
        if step == 2:
            signal.raise_signal(signal.SIGINT)

    ck = tmp_path / "sig.pt"
    with pytest.raises(KeyboardInterrupt):
        prior.denoise(img, checkpoint=ck, callback=ctrl_c, **kw)
    saved = torch.load(ck, weights_only=True)
    assert saved["status"] == "interrupted" and saved["step"] == 2 and saved["state"]["current"]["step"] == 2
    resumed = prior.denoise(img, checkpoint=ck, resume=True, **kw)
    assert torch.equal(full.image, resumed.image) and full.history == resumed.history


def test_resume_can_extend_the_step_count(tmp_path):
    img = smooth_image(24)
    kw = dict(net_options=TINY, precision="fp32", checkpoint=tmp_path / "c.pt")
    prior.denoise(img, steps=4, **kw)
    longer = prior.denoise(img, steps=7, resume=True, **kw)
    straight = prior.denoise(img, steps=7, net_options=TINY, precision="fp32")
    assert longer.history["step"] == list(range(1, 8))
    assert torch.equal(longer.image, straight.image)


def test_resume_refuses_a_different_problem(tmp_path):
    img = smooth_image(24)
    ck = tmp_path / "d.pt"
    prior.denoise(img, steps=2, net_options=TINY, checkpoint=ck)
    with pytest.raises(ValueError, match=r"different problem or different options.*lr: 0.01 → 0.02"):
        prior.denoise(img, steps=2, net_options=TINY, checkpoint=ck, resume=True, lr=0.02)
    with pytest.raises(ValueError, match="different problem"):
        prior.denoise(img.flip(-1), steps=2, net_options=TINY, checkpoint=ck, resume=True)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        prior.denoise(img, steps=2, net_options=TINY, checkpoint=tmp_path / "junk.pt", resume=True)


def test_checkpoint_holds_net_adam_and_a_parameter_snapshot_only(tmp_path):
    """Issue 13: the backtracking snapshot is the parameters alone (what the reference restores), so the
    checkpoint is the network, Adam and one copy of the parameters; a finished checkpoint resumes to the same
    result (its final outputs are not counted twice)."""
    img = smooth_image(24)
    ck = tmp_path / "s.pt"
    first = prior.denoise(img, steps=4, net_options=TINY, precision="fp32", checkpoint=ck)
    saved = torch.load(ck, weights_only=True)
    assert saved["format"] == "featstat-run-2" and saved["status"] == "complete" and saved["step"] == 4
    current = saved["state"]["current"]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = {k: v for k, v in current["net"].items() if not k.endswith(buffers)}
    assert isinstance(current["snapshot"], list) and len(current["snapshot"]) == len(params)
    assert [t.shape for t in current["snapshot"]] == [p.shape for p in params.values()]
    assert set(current["optimizer"]["state"]) == set(range(len(params)))  # Adam: one entry per parameter
    again = prior.denoise(img, steps=4, net_options=TINY, precision="fp32", checkpoint=ck, resume=True)
    assert torch.equal(again.image, first.image) and again.history == first.history


def test_resume_with_several_runs_refuses_another_step_count(tmp_path):
    img = smooth_image(24)
    ck = tmp_path / "r.pt"
    prior.denoise(img, steps=3, runs=2, net_options=TINY, precision="fp32", checkpoint=ck)
    with pytest.raises(ValueError, match=r"options.steps: 3 → 4"):
        prior.denoise(img, steps=4, runs=2, net_options=TINY, precision="fp32", checkpoint=ck, resume=True)


def test_a_checkpoint_at_each_seed_boundary_resumes_the_next_seed_exactly(tmp_path):
    """Three seeds of four steps, no periodic checkpoint: each finished seed is checkpointed, so a hard stop
    (here an exception that saves nothing, as a second Ctrl-C or a crash would) in seed k resumes from the
    end of seed k − 1 and continues with seed k bit for bit as an uninterrupted solve."""
    clean = smooth_image(24)
    noisy = prior.add_gaussian_noise(clean, 0.1, seed=0)
    kw = dict(clean=clean, steps=4, runs=3, net_options=TINY, precision="fp32", checkpoint_every=100)
    full = prior.denoise(noisy, **kw)
    ck = tmp_path / "seeds.pt"
    done: list[tuple[int, int]] = []

    def crash_at(run_to_stop: int, step_to_stop: int):
        def callback(run: int, step: int, loss: float) -> None:
            done.append((run, step))
            if (run, step) == (run_to_stop, step_to_stop):
                raise RuntimeError("hard stop")

        return callback

    for stop, boundary in (((1, 2), 4), ((2, 1), 8)):
        done.clear()
        with pytest.raises(RuntimeError, match="hard stop"):
            prior.denoise(noisy, checkpoint=ck, resume=True, callback=crash_at(*stop), **kw)
        saved = torch.load(ck, weights_only=True)
        assert saved["status"] == "running" and saved["step"] == boundary
        assert (
            saved["state"]["current"]["run"] == boundary // 4 - 1 and saved["state"]["current"]["step"] == 4
        )
        assert len(saved["state"]["finals"]) == boundary // 4 - 1  # closed when the next seed starts
    assert done[0] == (1, 1)  # the second session began with the first step of seed 1
    done.clear()
    resumed = prior.denoise(noisy, checkpoint=ck, resume=True, callback=crash_at(-1, -1), **kw)
    assert done == [(2, s) for s in range(1, 5)]  # seed 2 from its first step
    assert torch.equal(full.image, resumed.image) and torch.equal(full.average, resumed.average)
    assert full.history == resumed.history
    assert full.info["psnr_per_run"] == resumed.info["psnr_per_run"]


def test_solve_writes_the_run_folder(tmp_path):
    """``outputs=`` (a folder, or an Outputs) gives Python callers the command line's run folder, written by
    the run loop: history JSON/CSV (one row per logged step), curves over the steps of all seeds, run.json
    with the loop's record and the solve's summary, and the result and average images."""
    from featstat import read_image
    from featstat.engine.loop import Outputs

    img = smooth_image(24)
    folder = tmp_path / "run"
    result = prior.denoise(
        img, clean=img, steps=3, runs=2, net_options=TINY, precision="fp32", outputs=folder
    )
    names = {"history.json", "history.csv", "curves.png", "run.json", "result.png", "average.png"}
    assert {p.name for p in folder.iterdir()} == names
    record = json.loads((folder / "run.json").read_text())
    assert record["kind"] == "prior" and record["task"] == "denoise" and record["runs"] == 2
    assert record["psnr"] == pytest.approx(result.psnr) and record["outputs"] == str(folder)
    assert record["fingerprint"]["task"] == "denoise" and record["steps_per_second"] > 0
    rows = json.loads((folder / "history.json").read_text())["history"]
    assert [(r["run"], r["step"]) for r in rows] == [(r, s) for r in (0, 1) for s in (1, 2, 3)]
    assert len((folder / "history.csv").read_text().splitlines()) == 1 + 6
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    torch.testing.assert_close(
        read_image(folder / "result.png"), result.image.clamp(0, 1), atol=1 / 255, rtol=0
    )
    assert result.info["outputs"] == str(folder) and result.info["seconds"] > 0
    # an Outputs chooses the files; a plain solve writes none
    other = tmp_path / "other"
    prior.denoise(
        img, steps=2, net_options=TINY, precision="fp32", outputs=Outputs(other, csv=None, run_json=None)
    )
    assert {p.name for p in other.iterdir()} == {"history.json", "curves.png", "result.png", "average.png"}
    with pytest.raises(ValueError, match="outputs must be a folder path"):
        prior.denoise(img, steps=2, net_options=TINY, outputs=3)


def test_runs_are_averaged():
    img = smooth_image(24)
    kw = dict(steps=5, net_options=TINY, precision="fp32")
    both = prior.denoise(img, clean=img, runs=2, **kw)
    first = prior.denoise(img, seed=0, **kw)
    second = prior.denoise(img, seed=1, **kw)
    torch.testing.assert_close(both.image, (first.image + second.image) / 2, rtol=0, atol=1e-6)
    torch.testing.assert_close(both.average, (first.average + second.average) / 2, rtol=0, atol=1e-6)
    assert not torch.equal(first.image, second.image)
    assert len(both.info["psnr_per_run"]) == 2


def _tiny_problem(data_term, clean=None) -> Problem:
    return Problem(
        task="test",
        data_term=data_term,
        make_net=lambda seed: Skip(4, 3, **TINY, seed=seed),
        make_code=lambda seed: input_code("noise", 4, (24, 24), seed=seed),
        clean=clean,
    )


@pytest.mark.parametrize("start", [0, 3])
def test_exponential_average_follows_the_reference_formula(start):
    """avg ← 0.9·avg + 0.1·out from the first output (reference ``out_avg``), or from step ``ema_start``."""
    target = smooth_image(24)
    outputs = []

    def term(out):
        outputs.append(out.detach().clone())
        return (out - target).square().mean()

    opts = FitOptions(steps=6, ema=0.9, ema_start=start, input_noise=0.0, precision="fp32", backtrack=None)
    result = solve(_tiny_problem(term), opts)
    first = max(start - 1, 0)  # the output of step `start` (1-based) seeds the average
    avg = outputs[first]
    for o in outputs[first + 1 :]:
        avg = 0.9 * avg + 0.1 * o
    torch.testing.assert_close(result.average, avg)
    assert not torch.allclose(result.average, result.image)


def test_backtracking_restores_the_last_good_weights():
    """A step whose loss jumps by more than 5 dB is undone: the network parameters return to the last
    accepted step (Adam's moments are kept, as in the public reference), and the run goes on from there."""
    target = smooth_image(24)
    calls = {"n": 0}
    states = []

    def term(out):
        calls["n"] += 1
        loss = (out - target).square().mean()
        return loss * 100 if calls["n"] == 5 else loss  # +20 dB at the 5th evaluation

    opts = FitOptions(steps=8, input_noise=0.0, precision="fp32", callback=lambda r, s, v: states.append(v))
    result = solve(_tiny_problem(term), opts)
    assert result.info["backtracks"] == 1
    assert states[4] > 50 * states[3]  # the spike is recorded
    assert states[5] == pytest.approx(states[3], rel=1e-6)  # same weights as step 4, same (unperturbed) input
    no_backtrack = solve(_tiny_problem(lambda out: (out - target).square().mean()), steps=3, backtrack=None)
    assert no_backtrack.info["backtracks"] == 0


def test_psnr_helper_and_precision():
    x = torch.full((1, 3, 8, 8), 0.5)
    assert prior.psnr(x, x + 0.1) == pytest.approx(20.0)
    assert prior.psnr(x, x) == math.inf
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps must be a positive integer"),
        (dict(ema=1.0), r"ema must be in \[0, 1\)"),
        (dict(lr=-1.0), "lr must be a finite number > 0"),
        (dict(input_noise=-0.1), "input_noise must be"),
        (dict(precision="int8"), "precision must be one of"),
        (dict(resume=True), "resume=True needs checkpoint"),
        (dict(runs=0), "runs must be a positive integer"),
        (dict(stepz=3), r"unknown option\(s\) \['stepz'\]"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prior.denoise(smooth_image(24), net_options=TINY, **kwargs)


# ----------------------------------------------------------------------------------------------- tasks


def test_denoising_removes_noise_then_overfits_it():
    """Fig. 7.2 / §7.3.1: the output's PSNR against the clean image rises far above the noisy input's, peaks,
    then falls as the network starts fitting the noise (the step count is the regulariser)."""
    clean = smooth_image(32)
    noisy = prior.add_gaussian_noise(clean, 25 / 255, seed=0)
    result = prior.denoise(noisy, clean=clean, steps=200, lr=0.02, net_options=TINY, precision="fp32")
    noisy_psnr = prior.psnr(noisy, clean)
    curve = result.history["psnr"]
    peak = max(range(len(curve)), key=curve.__getitem__)
    assert curve[peak] > noisy_psnr + 8
    assert peak < 160 and curve[-1] < curve[peak] - 0.5
    assert (
        result.psnr_average > noisy_psnr + 4
    )  # the average lags behind early on but is well above the input
    assert len(curve) == 200 and result.info["steps_per_second"] > 0


def test_inpainting_ignores_the_missing_pixels():
    """The data term's gradient is zero on missing pixels, so what the image holds there cannot matter:
    two images that differ only under the mask give bit-identical restorations."""
    img = smooth_image(24)
    mask = prior.random_mask((24, 24), 0.4, seed=2)
    out = torch.rand(1, 3, 24, 24, requires_grad=True)
    prior.inpainting_loss(out, img, mask).backward()
    missing = (mask == 0).expand_as(out)
    assert float(out.grad[missing].abs().max()) == 0.0
    assert float(out.grad[~missing].abs().min()) > 0.0
    other = torch.where(missing, torch.rand_like(img), img)
    kw = dict(steps=6, net_options=TINY, precision="fp32")
    a = prior.inpaint(img, mask, **kw)
    b = prior.inpaint(other, mask, **kw)
    assert torch.equal(a.image, b.image)
    assert a.info["mask"] == pytest.approx(float(mask.mean()))


def test_inpainting_fills_holes_from_the_prior():
    img = smooth_image(32)
    result = prior.inpaint(img, drop=0.5, steps=120, lr=0.02, net_options=TINY, precision="fp32")
    mask = prior.random_mask((32, 32), 0.5, seed=0)
    holes = (mask == 0).expand_as(img)
    err_holes = float((result.average - img)[holes].square().mean())
    err_grey = float((0.5 - img)[holes].square().mean())  # what a prior-less fill would leave
    assert err_holes < err_grey / 5
    assert result.psnr is not None  # with drop, the image itself is the ground truth


def test_super_resolution_fits_the_low_resolution_image():
    hr = smooth_image(32)
    lr = prior.resize(hr, (8, 8), "lanczos3")
    result = prior.super_resolve(lr, 4, clean=hr, steps=60, lr=0.02, net_options=TINY, precision="fp32")
    assert result.image.shape == (1, 3, 32, 32)
    assert result.info["factor"] == 4 and result.info["input_noise"] == 0.03 and result.info["steps"] == 60
    assert prior.psnr(prior.Downsampler(4)(result.image), lr) > 25  # d(x) ≈ x₀
    assert result.history["loss"][-1] < result.history["loss"][0] / 10


def test_super_resolution_defaults_follow_the_reference():
    lr = smooth_image(8)
    x8 = prior.super_resolve(lr[..., :5, :5], 8, steps=1, net_options=TINY)
    assert x8.info["input_noise"] == 0.05 and x8.image.shape[-1] == 40
    with pytest.raises(ValueError, match="factor must be an integer >= 2"):
        prior.super_resolve(lr, 1)
    with pytest.raises(ValueError, match=r"clean must have the shape of the ×4 high-resolution output"):
        prior.super_resolve(lr, 4, clean=smooth_image(30))


def test_extra_statistics_term_is_added(tmp_path):
    hr = smooth_image(32)
    lr = prior.resize(hr, (16, 16), "lanczos3")
    extra = prior.statistics_objective({"pdl": 1.0}, layers=["relu1_2"], weights=None)
    kw = dict(steps=3, net_options=TINY, precision="fp32", input_noise=0.0)
    plain = prior.super_resolve(lr, 2, **kw)
    more = prior.super_resolve(lr, 2, extra=extra, **kw)
    assert more.history["loss"][0] > plain.history["loss"][0]  # same start, extra term on top
    with pytest.raises(ValueError, match="unknown loss"):
        prior.statistics_objective({"ssim": 1.0}, weights=None)


def test_jpeg_artifact_removal_uses_the_reference_small_net():
    clean = smooth_image(36)
    jpeg = prior.jpeg_compress(clean, 10)
    result = prior.remove_jpeg_artifacts(jpeg, clean=clean, steps=3)
    assert result.info["net"] == "skip-small" and result.info["steps"] == 3
    assert result.info["parameters"] < 600_000


def test_flash_no_flash_uses_the_flash_image_as_code():
    no_flash = smooth_image(24)
    flash = (no_flash * 1.5).clamp(0, 1).flip(-1)
    opts = dict(TINY, upsample="nearest")
    result = prior.flash_no_flash(flash, no_flash, steps=40, net_options=opts, precision="fp32")
    assert result.info["input_noise"] == 0.0 and result.info["lr"] == 0.1
    assert result.history["loss"][-1] < result.history["loss"][0] / 5
    with pytest.raises(ValueError, match="same shape"):
        prior.flash_no_flash(flash, no_flash[..., :20, :20])


def test_feature_inversion_matches_features():
    image = smooth_image(36)
    opts = dict(
        channels_down=[8, 8, 8], channels_up=[8, 8, 8], channels_skip=[2, 2, 2], kernel_down=3, kernel_up=3
    )
    result = prior.invert_features(
        image, "relu1_2", arch="vgg19", weights=None, steps=30, lr=0.01, net_options=opts, precision="fp32"
    )
    assert result.image.shape == (1, 3, 36, 36) and result.info["net_size"] == [
        40,
        40,
    ]  # 2³ multiple, cropped
    assert result.history["loss"][-1] < result.history["loss"][0] / 3
    with pytest.raises(ValueError, match="unknown alexnet layer"):
        prior.invert_features(image, "fc6", weights=None)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: prior.denoise(torch.rand(1, 3, 24, 24) * 255), r"values in \[0, 1\].*divide by 255"),
        (lambda: prior.denoise(torch.rand(2, 3, 24, 24)), "one image"),
        (lambda: prior.denoise(torch.rand(3, 24, 24)), "4 dimensions"),
        (lambda: prior.denoise(torch.rand(1, 3, 24, 24), clean=torch.rand(1, 3, 20, 24)), "clean must have"),
        (lambda: prior.denoise(torch.rand(1, 3, 20, 20)), r"needs at least 33×33"),
        (lambda: prior.denoise(torch.rand(1, 3, 40, 40), net="transformer"), "net must be one of"),
        (lambda: prior.inpaint(torch.rand(1, 3, 24, 24)), "exactly one of mask"),
        (lambda: prior.inpaint(torch.rand(1, 3, 24, 24), torch.ones(1, 1, 20, 24)), "mask must have shape"),
        (
            lambda: prior.inpaint(torch.rand(1, 3, 24, 24), torch.zeros(1, 1, 24, 24)),
            "every pixel as missing",
        ),
    ],
)
def test_task_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_result_save_writes_outputs(tmp_path):
    img = smooth_image(24)
    result = prior.denoise(img, clean=img, steps=3, net_options=TINY)
    paths = result.save(tmp_path / "out")
    for kind in ("result", "average", "curves", "json"):
        assert paths[kind].is_file() and paths[kind].stat().st_size > 0
    data = json.loads(paths["json"].read_text())
    assert data["task"] == "denoise" and data["steps"] == 3 and len(data["history"]["psnr"]) == 3
    assert data["psnr"] == pytest.approx(result.psnr)


# ------------------------------------------------------------------------------------- real images (shared)


def test_real_image_denoising_improves_psnr(shared):
    """F16 (the reference's image), 64² crop, σ = 25: a short run already beats the noisy input clearly."""
    from featstat import read_image

    clean = read_image(shared / "images/dip/denoising/F16_GT.png")[..., 224:288, 224:288]
    noisy = prior.add_gaussian_noise(clean, 25 / 255, seed=0)
    small = dict(channels_down=[16] * 4, channels_up=[16] * 4, channels_skip=[4] * 4)
    result = prior.denoise(noisy, clean=clean, steps=150, net_options=small)
    assert result.psnr > prior.psnr(noisy, clean) + 2


def test_auto_precision_is_measured_once_and_does_not_move_the_random_streams(tmp_path, monkeypatch):
    """On a CPU with native bfloat16, "auto" times fp32 / fp32-channels_last / bf16-channels_last on the real
    network, keeps the fastest (cached for the next run), and the result is bit-identical to asking for the
    chosen settings explicitly."""
    import featstat.engine.precision as policy
    from featstat.prior import engine

    monkeypatch.setenv("FEATSTAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FEATSTAT_PRECISION_MEASURE", "1")
    monkeypatch.setattr(policy, "cpu_bf16_supported", lambda: True)
    monkeypatch.setattr(engine, "cpu_bf16_supported", lambda: True)
    img = smooth_image(24)
    kw = dict(clean=img, steps=3, net_options=TINY)
    auto = prior.denoise(img, precision="auto", **kw)
    choice = auto.info["precision_choice"]
    assert set(choice["timings_s_per_step"]) == {"fp32", "fp32-cl", "bf16-cl"} and not choice["from_cache"]
    again = prior.denoise(img, precision="auto", **kw)
    assert again.info["precision_choice"]["from_cache"]
    explicit = prior.denoise(img, precision=choice["precision"], channels_last=choice["channels_last"], **kw)
    assert torch.equal(auto.image, explicit.image) and torch.equal(again.image, explicit.image)
