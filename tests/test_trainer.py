"""Training data and the trainer: deterministic items, sharding, normal-map augmentation; a few steps reduce
the loss; Ctrl-C saves and resume is exact (bitwise on CPU); DDP on two gloo processes equals one process on
the combined batch; validation outputs; bad inputs."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from conftest import run_spawned
from featstat import features
from featstat.engine.runs import TrainingDiverged
from featstat.io import read_image, write_image
from featstat.losses import ContextualLoss, GramLoss, L1Loss, L2Loss, LowFrequencyL2Loss
from featstat.nets.discriminator import SRGANDiscriminator
from featstat.nets.restoration import build_network
from featstat.objective import Objective, Term
from featstat.restoration.data import (
    EpochSampler,
    RestorationDataset,
    ValidationSet,
    dihedral,
    split_validation,
)
from featstat.restoration.trainer import AdversarialOptions, Trainer, TrainOptions, load_model, restore

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _image(seed: int, h: int = 64, w: int = 64) -> torch.Tensor:
    """A smooth random image with stripes in its bright parts: structure an SR network can learn."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    x = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    stripes = (torch.arange(w).view(1, 1, 1, w) % 6 < 3).float() * 0.3
    return (0.7 * x + stripes * (x.mean(1, keepdim=True) > 0.5)).clamp(0, 1)


def _folder(root: Path, n: int = 3, h: int = 64, w: int = 64) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_image(root / f"img{i}.png", _image(i, h, w))
    return root


def _options(**kw) -> TrainOptions:
    base = {
        "steps": 6,
        "batch_size": 2,
        "lr": 2e-3,
        "log_every": 1,
        "checkpoint_every": 0,
        "validate_every": 0,
        "progress": False,
        "plots": False,
    }
    return TrainOptions(**{**base, **kw})


def _edsr(seed: int = 0):
    torch.manual_seed(seed)
    return build_network("edsr", scale=2, channels=8, blocks=1)


# ----------------------------------------------------------------------------------------------- data


def test_items_are_deterministic_per_seed_epoch_and_index(tmp_path):
    data = _folder(tmp_path / "d")
    ds = RestorationDataset(data, "denoise", crop_size=32, samples_per_epoch=6, seed=3)
    a, b = ds[(1, 4)], ds[(1, 4)]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert a["input"].shape == a["target"].shape == (3, 32, 32)
    assert not torch.equal(ds[(2, 4)]["target"], a["target"]) or not torch.equal(
        ds[(2, 4)]["input"], a["input"]
    )
    other = RestorationDataset(data, "denoise", crop_size=32, samples_per_epoch=6, seed=4)
    assert not torch.equal(other[(1, 4)]["input"], a["input"])
    # the same items whatever the number of DataLoader workers
    sampler = EpochSampler(6, epoch=1, seed=0)
    batches0 = [b["input"] for b in DataLoader(ds, batch_size=3, sampler=sampler)]
    batches2 = [b["input"] for b in DataLoader(ds, batch_size=3, sampler=sampler, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(batches0, batches2, strict=True))
    sr = RestorationDataset(data, "sr4", crop_size=32, samples_per_epoch=2)
    assert sr[0]["input"].shape == (3, 8, 8) and sr[0]["target"].shape == (3, 32, 32)


def test_epoch_sampler_shards_like_distributed_sampler_and_resumes():
    single = list(EpochSampler(12, epoch=2, seed=5))
    assert sorted(i for _, i in single) == list(range(12)) and all(e == 2 for e, _ in single)
    ranks = [list(EpochSampler(12, epoch=2, seed=5, rank=r, world=2)) for r in range(2)]
    for k in range(3):  # per-rank batches of 2 ↔ combined batch of 4
        combined = {i for r in range(2) for _, i in ranks[r][2 * k : 2 * k + 2]}
        assert combined == {i for _, i in single[4 * k : 4 * k + 4]}
    assert list(EpochSampler(12, epoch=2, seed=5, skip=5)) == single[5:]
    assert list(EpochSampler(12, epoch=3, seed=5)) != single


def _normals_from_height(h: torch.Tensor) -> torch.Tensor:
    """Encoded normal map of a height field (x right, y up): n ∝ (−∂h/∂col, ∂h/∂row, 1)."""
    d_row, d_col = torch.gradient(h)
    n = torch.stack([-d_col, d_row, torch.ones_like(h)])
    return (n / n.norm(dim=0, keepdim=True) + 1) / 2


def test_dihedral_transforms_normal_vectors_with_the_image():
    g = torch.Generator().manual_seed(0)
    height = F.interpolate(torch.rand(1, 1, 6, 7, generator=g), size=(20, 24), mode="bicubic")[0, 0] * 8
    normals = _normals_from_height(height)
    for k in range(8):
        moved = dihedral(height.unsqueeze(0), k)[0]  # transform the surface, then take its normals
        assert torch.allclose(dihedral(normals, k, normals=True), _normals_from_height(moved), atol=1e-6), k
    # DirectX maps store y down: flipping up-down negates the stored y either way
    flipped = dihedral(normals, 2, normals=True, convention="directx")
    assert torch.allclose(2 * flipped[1] - 1, -(2 * normals.flip(-2)[1] - 1), atol=1e-6)


def test_normals_pairs_split_and_validation_set(tmp_path):
    root = tmp_path / "surf"
    (root / "images").mkdir(parents=True)
    (root / "normals").mkdir()
    for i in range(3):
        write_image(root / "images" / f"s{i}.png", _image(i, 40, 40))
        write_image(root / "normals" / f"s{i}.png", _image(10 + i, 40, 40))
    ds = RestorationDataset(root, "normals", crop_size=32, augment=False)
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (3, 32, 32)
    train, val = split_validation(list(range(10)), 0.2, seed=1)
    assert (
        len(val) == 2
        and not set(train) & set(val)
        and split_validation(list(range(10)), 0.2, seed=1)[1] == val
    )
    vs = ValidationSet(_folder(tmp_path / "v", 2, 37, 30), "sr4", max_size=24)
    v = vs[0]
    assert v["target"].shape == (3, 24, 24) and v["input"].shape == (3, 6, 6) and v["name"] == "img0"
    assert torch.equal(vs[1]["input"], vs[1]["input"])


def test_data_bad_inputs(tmp_path):
    data = _folder(tmp_path / "d", 2, 40, 40)
    with pytest.raises(ValueError, match="crop_size must be a positive multiple of 4"):
        RestorationDataset(data, "sr4", crop_size=30)
    with pytest.raises(ValueError, match="every image is smaller than crop_size=48"):
        RestorationDataset(data, "denoise", crop_size=48)
    with pytest.raises(ValueError, match="does not exist"):
        RestorationDataset(tmp_path / "missing", "denoise")
    with pytest.raises(ValueError, match="images/ and normals/"):
        RestorationDataset(data, "normals")
    with pytest.raises(ValueError, match="keep at least one for training"):
        split_validation([1, 2], 2)
    with pytest.raises(ValueError, match="task must be one of"):
        RestorationDataset(data, "colourise")


# -------------------------------------------------------------------------------------------- trainer


def test_a_few_steps_reduce_the_loss_and_write_the_run(tmp_path):
    ds = RestorationDataset(_folder(tmp_path / "d"), "sr2", crop_size=32, samples_per_epoch=16)
    out = tmp_path / "run"
    trainer = Trainer(
        _edsr(),
        Objective([Term("l1", L1Loss())]),
        ds,
        out,
        lpips=None,
        options=_options(steps=30, batch_size=4, lr=3e-3, log_every=5, plots=True),
    )
    summary = trainer.fit()
    losses = [r["loss"] for r in trainer.history.train]
    assert len(losses) == 6 and losses[-1] < 0.6 * losses[0]
    assert summary["steps"] == 30 and summary["steps_per_second"] > 0
    for name in ("checkpoint.pt", "model.pt", "train_log.csv", "curves_train.png", "run.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30] and "l1" in rows[0]
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["steps"] == 30 and run["network"]["name"] == "edsr"
    model, _ = load_model(out / "model.pt")
    x = ds[0]["input"].unsqueeze(0)
    assert torch.equal(restore(model, x), restore(trainer.model, x))


def _resumable(tmp_path: Path, out: Path, seed: int, *, log_every: int = 1, **options) -> Trainer:
    ds = RestorationDataset(_folder(tmp_path / "d"), "sr2", crop_size=32, samples_per_epoch=8, seed=1)
    patches = features.PatchExtractor(3, 2)
    objective = Objective(
        [
            Term("l1", L1Loss()),
            Term(
                "cx", ContextualLoss(0.2, sample_size=4, seed=0), 0.05, patches, ["patch3"]
            ),  # random sampling
        ]
    )
    torch.manual_seed(seed)
    disc = SRGANDiscriminator(channels=2, hidden=4)
    return Trainer(
        _edsr(seed),
        objective,
        ds,
        out,
        lpips=None,
        pretrain_objective=Objective([Term("l2", L2Loss())]),
        discriminator=disc,
        adversarial=AdversarialOptions(weight=0.01, lr=1e-3),
        options=_options(
            **{"steps": 6, "pretrain_steps": 2, "grad_clip": 1.0, "lr_milestones": (4,), **options},
            log_every=log_every,
        ),
    )


def test_resume_refuses_other_settings_and_names_them(tmp_path):
    _resumable(tmp_path, tmp_path / "r", 0, steps=3).fit()
    with pytest.raises(ValueError, match=r"differences, saved → now: options.lr: 0.002 → 0.001"):
        _resumable(tmp_path, tmp_path / "r", 0, lr=1e-3).fit(resume=True)
    longer = _resumable(tmp_path, tmp_path / "r", 0, steps=5, checkpoint_every=2)  # steps may grow
    longer.fit(resume=True)
    assert longer.step == 5 and [r["step"] for r in longer.history.train] == [1, 2, 3, 4, 5]
    model, _ = load_model(tmp_path / "r" / "checkpoint.pt")  # the loop's checkpoint still restores
    assert torch.equal(next(model.parameters()), next(longer.model.parameters()))


def test_auto_precision_is_measured_on_the_first_batch_without_moving_the_random_streams(
    tmp_path, monkeypatch
):
    """On a CPU with native bfloat16, "auto" times training steps on a copy (fp32, fp32-cl, bf16-cl), keeps
    the fastest (cached), records it in run.json, and trains bit-identically to asking for it explicitly."""
    import featstat.engine.precision as policy
    from featstat.engine.precision import Choice
    from featstat.restoration import trainer as trainer_module

    monkeypatch.setenv("FEATSTAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FEATSTAT_PRECISION_MEASURE", "1")
    monkeypatch.setattr(policy, "cpu_bf16_supported", lambda: True)
    monkeypatch.setattr(trainer_module, "cpu_bf16_supported", lambda: True)
    auto = _resumable(tmp_path, tmp_path / "auto", 0, steps=3, precision="auto")
    auto.fit()
    choice = json.loads((tmp_path / "auto" / "run.json").read_text())["precision_choice"]
    assert set(choice["timings_s_per_step"]) == {"fp32", "fp32-cl", "bf16-cl"} and not choice["from_cache"]
    again = _resumable(tmp_path, tmp_path / "again", 0, steps=3, precision="auto")
    again.fit()
    assert again.choice.cached and again.choice.precision == auto.choice.precision
    explicit = _resumable(tmp_path, tmp_path / "explicit", 0, steps=3, precision=choice["precision"])
    asked = Choice(choice["precision"], choice["channels_last"], "asked for")  # the measured layout too
    monkeypatch.setattr(explicit, "_precision_choice", lambda header: asked)
    explicit.fit()
    for a, b in zip(auto.model.state_dict().values(), explicit.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("stop_at", "log_every"), [(3, 1), (4, 1), (3, 2)])
def test_interrupt_saves_and_resume_is_bitwise_exact(tmp_path, stop_at, log_every, caplog, capsys):
    """Interrupted mid-epoch (3), at an epoch's end (4: the epoch has 4 batches) or inside a logging window
    (3 with log_every 2): the resumed run equals the uninterrupted one bit for bit, history included. The
    interruption is reported through the ``featstat`` logger, never printed."""
    straight = _resumable(tmp_path, tmp_path / "a", 0, log_every=log_every)
    straight.fit()

    def stop(step, values):
        if step == stop_at:
            raise KeyboardInterrupt

    first = _resumable(tmp_path, tmp_path / "b", 0, log_every=log_every)
    capsys.readouterr()
    with caplog.at_level("INFO", logger="featstat"), pytest.raises(KeyboardInterrupt):
        first.fit(on_step=stop)
    said = [r for r in caplog.records if r.name == "featstat" and "checkpoint saved" in r.getMessage()]
    assert len(said) == 1 and f"interrupted at step {stop_at}" in said[0].getMessage()
    assert "checkpoint saved" not in capsys.readouterr().out
    saved = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert saved["kind"] == "restoration" and saved["status"] == "interrupted" and saved["step"] == stop_at
    assert saved["state"]["batch_in_epoch"] == stop_at and saved["state"]["epoch"] == 0
    # other initial weights: everything comes from disk
    resumed = _resumable(tmp_path, tmp_path / "b", 7, log_every=log_every)
    resumed.fit(resume=True)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(
        straight.discriminator.state_dict().values(), resumed.discriminator.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    strip = [{k: v for k, v in r.items() if k != "steps_per_s"} for r in straight.history.train]
    assert strip == [{k: v for k, v in r.items() if k != "steps_per_s"} for r in resumed.history.train]
    if log_every == 1:
        assert [r["phase"] for r in strip] == ["pretrain", "pretrain", "main", "main", "main", "main"]
    assert resumed.epoch == straight.epoch == 1 and resumed.batch_in_epoch == straight.batch_in_epoch == 2
    first_param = next(resumed.model.parameters())
    assert int(resumed.optimizer.state[first_param]["step"]) == 4  # Adam restarted with the main objective
    assert "adv_g" in strip[-1] and "d_loss" in strip[-1] and "adv_g" not in strip[0]
    assert strip[-1]["lr"] == pytest.approx(2e-3 * 0.1)


def test_bf16_autocast_clipping_and_periodic_checkpoints(tmp_path):
    ds = RestorationDataset(_folder(tmp_path / "d", 2), "sr2", crop_size=32, samples_per_epoch=4)
    patches = features.PatchExtractor(3, 2)
    objective = Objective([Term("l1", L1Loss()), Term("cx", ContextualLoss(0.1), 0.1, patches, ["patch3"])])
    out = tmp_path / "run"
    trainer = Trainer(
        _edsr(),
        objective,
        ds,
        out,
        lpips=None,
        device="cpu",
        options=_options(steps=3, precision="bf16", grad_clip=0.5, checkpoint_every=2),
    )
    seen = []
    trainer.fit(
        on_step=lambda step, values: seen.append(
            torch.load(out / "checkpoint.pt")["step"] if (out / "checkpoint.pt").is_file() else None
        )
    )
    assert seen == [None, 2, 2]  # written at step 2 (and at the end)
    assert trainer.precision == "bf16" and all(
        torch.isfinite(torch.tensor(r["loss"])) for r in trainer.history.train
    )
    assert all(r["grad_norm"] > 0 for r in trainer.history.train)


def _ddp_setup(data: Path, out: Path, batch_size: int) -> Trainer:
    ds = RestorationDataset(data, "sr2", crop_size=32, samples_per_epoch=8, seed=2)
    objective = Objective([Term("l1", L1Loss()), Term("lf", LowFrequencyL2Loss(5, 1.0), 2.0)])
    return Trainer(_edsr(0), objective, ds, out, lpips=None, options=_options(steps=3, batch_size=batch_size))


def _ddp_worker(rank: int, world: int, root: str, data: str) -> None:
    os.environ["FEATSTAT_OFFLINE"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=world)
    try:
        trainer = _ddp_setup(Path(data), Path(root) / "ddp", batch_size=2)
        assert trainer.world == 2 and isinstance(trainer.ddp_model, torch.nn.parallel.DistributedDataParallel)
        trainer.fit()
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_equal_one_process_on_the_combined_batch(tmp_path):
    data = _folder(tmp_path / "d")
    run_spawned(_ddp_worker, (2, str(tmp_path), str(data)))
    ddp, _ = load_model(tmp_path / "ddp" / "model.pt")
    single = _ddp_setup(data, tmp_path / "one", batch_size=4)
    single.fit()
    changed = False
    for (name, a), b in zip(single.model.state_dict().items(), ddp.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
        changed |= not torch.allclose(a, _edsr(0).state_dict()[name])
    assert changed  # training moved the weights
    rows = list(csv.DictReader((tmp_path / "ddp" / "train_log.csv").open()))
    assert float(rows[-1]["loss"]) == pytest.approx(single.history.train[-1]["loss"], rel=1e-5)


def test_validation_metrics_images_and_curves(tmp_path):
    from featstat.metrics import LPIPS

    ds = RestorationDataset(_folder(tmp_path / "d"), "sr2", crop_size=32, samples_per_epoch=4)
    val = ValidationSet(_folder(tmp_path / "v", 2, 36, 44), "sr2")
    lp = LPIPS("vgg19", layers=["relu1_2", "relu2_1"], weights=None, calibration=None)
    out = tmp_path / "run"
    trainer = Trainer(
        _edsr(),
        Objective([Term("l1", L1Loss())]),
        ds,
        out,
        val_data=val,
        lpips=lp,
        task="sr2",
        options=_options(steps=4, validate_every=2, save_images=1, tile=16, overlap=4, plots=True),
    )
    summary = trainer.fit()
    assert set(summary["validation"]) == {"psnr", "psnr_y", "ssim", "lpips"}
    assert summary["input_baseline"]["psnr"] > 10  # bicubic upsampling of the input scores too
    rows = list(csv.DictReader((out / "val_log.csv").open()))
    assert [(r["what"], int(r["step"])) for r in rows] == [("input", 0), ("model", 2), ("model", 4)]
    assert (out / "curves_val.png").is_file() and (out / "val" / "step_000002" / "img0.png").is_file()
    final = read_image(out / "final" / "img1.png")
    assert final.shape == (1, 3, 36, 44)


def test_trainer_bad_inputs(tmp_path):
    ds = RestorationDataset(_folder(tmp_path / "d", 1), "sr2", crop_size=32, samples_per_epoch=2)
    obj = Objective([Term("l1", L1Loss())])
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainOptions(steps=0)
    with pytest.raises(ValueError, match=r"pretrain_steps \(5\) must be smaller than steps \(5\)"):
        TrainOptions(steps=5, pretrain_steps=5)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainOptions(precision="fp8")
    with pytest.raises(ValueError, match="fewer than one batch of 4"):
        Trainer(_edsr(), obj, ds, tmp_path / "r", options=_options(batch_size=4), lpips=None)
    with pytest.raises(ValueError, match="give both discriminator= and adversarial="):
        Trainer(_edsr(), obj, ds, tmp_path / "r", discriminator=SRGANDiscriminator(), lpips=None)
    with pytest.raises(ValueError, match="needs a pretrain_objective"):
        Trainer(_edsr(), obj, ds, tmp_path / "r", options=_options(pretrain_steps=2), lpips=None)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Trainer(
            _edsr(), obj, ds, tmp_path / "r", options=_options(precision="fp16"), lpips=None, device="cpu"
        )
    with pytest.raises(ValueError, match="does not exist"):
        Trainer(_edsr(), obj, ds, tmp_path / "r", options=_options(), lpips=None).fit(
            resume=tmp_path / "x.pt"
        )
    with pytest.raises(ValueError, match="not a featstat restoration checkpoint"):
        torch.save({"a": 1}, tmp_path / "foreign.pt")
        load_model(tmp_path / "foreign.pt")


def test_divergence_stops_with_advice_and_a_sound_run_is_not_stopped(tmp_path):
    """The restoration trainer shares the generator trainers' DivergenceWatch (checked at log steps): a run
    whose loss blows up (lr 10) stops with the --lr advice and leaves no checkpoint of the blown-up weights;
    the same run at a sound rate trains to the end with the watch on."""
    ds = RestorationDataset(_folder(tmp_path / "d"), "sr2", crop_size=32, samples_per_epoch=16)

    def run(lr: float, out: str) -> Trainer:
        t = Trainer(
            _edsr(),
            Objective([Term("l1", L1Loss())]),
            ds,
            tmp_path / out,
            lpips=None,
            options=_options(steps=40, batch_size=4, lr=lr, log_every=2, checkpoint_every=30),
        )
        assert t.watch is not None
        return t

    bad = run(10.0, "bad")
    with pytest.raises(
        TrainingDiverged, match=r"step \d+: the loss .* stayed above 10× .*--lr 1\b.*--resume"
    ):
        bad.fit()
    assert 0 < bad.step < 40 and bad.history.train[-1]["loss"] > 1e3
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()  # stopped before the first checkpoint (30)

    sound = run(3e-3, "sound")
    sound.fit()
    losses = [r["loss"] for r in sound.history.train]
    assert sound.step == 40 and losses[-1] < 0.6 * losses[0]
    assert sound.watch.best == pytest.approx(min(losses), rel=0.5)


@pytest.mark.parametrize("case", ["nan", "flat"])
def test_divergence_nan_loss_and_flat_output(tmp_path, case):
    """A non-finite loss stops at the first check; a network whose output is one flat colour stops after the
    flat patience (2 checks at log_every 5), naming the sign."""

    class Flat(torch.nn.Module):  # a dead SR network: one grey level everywhere, whatever the input
        def __init__(self) -> None:
            super().__init__()
            self.level = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            out = self.level.expand(x.shape[0], 3, x.shape[-2] * 2, x.shape[-1] * 2)
            return out * (float("nan") if case == "nan" else 1.0)

    ds = RestorationDataset(_folder(tmp_path / "d"), "sr2", crop_size=32, samples_per_epoch=8)
    t = Trainer(Flat(), Objective([Term("l1", L1Loss())]), ds, tmp_path / "r", lpips=None,
                options=_options(steps=30, log_every=5))  # fmt: skip
    sign = "the loss became nan" if case == "nan" else "one flat colour"
    with pytest.raises(TrainingDiverged, match=sign):
        t.fit()
    assert t.step == (5 if case == "nan" else 10)
    off = Trainer(Flat(), Objective([Term("l1", L1Loss())]), ds, tmp_path / "off", lpips=None,
                  options=_options(steps=6, watch=False))  # fmt: skip
    off.fit()  # watch=False: the run is not checked
    assert off.step == 6


def test_bf16_runs_the_loss_network_under_autocast_and_the_statistic_in_float32(tmp_path):
    """precision="bf16": the objective's backbone computes in bfloat16 (autocast covers it), the Gram
    statistic of the half features in float32 (the loss rule), so the logged loss is a finite number."""
    ds = RestorationDataset(_folder(tmp_path / "d", 2), "sr2", crop_size=32, samples_per_epoch=4)
    torch.manual_seed(0)
    vgg = features.vgg19(["relu1_1", "relu2_1"], weights=None)
    seen: list[torch.dtype] = []
    vgg.register_forward_hook(lambda module, args, out: seen.extend(v.dtype for v in out.values()))
    objective = Objective([Term("l1", L1Loss()), Term("gram", GramLoss(), 10.0, vgg, ["relu1_1", "relu2_1"])])
    trainer = Trainer(
        _edsr(),
        objective,
        ds,
        tmp_path / "run",
        lpips=None,
        device="cpu",
        options=_options(steps=2, precision="bf16"),
    )
    trainer.fit()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(math.isfinite(r["loss"]) and r["gram"] > 0 for r in trainer.history.train)
