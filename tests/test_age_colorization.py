"""Conditional AGE colourisation (thesis 4.3.2): the L1-only baseline of the same generator, the diversity
measure across z, and the ``seed`` spelling of :func:`colorize`."""

from __future__ import annotations

import math

import pytest
import torch

from featstat.adversarial.age import (
    AGEOptions,
    AGERun,
    L1Colorizer,
    colorization_diversity,
    colorize,
    data_reconstruction_loss,
    lab_split,
    load_age,
    sample_sphere,
    train_age,
)
from featstat.adversarial.nets import ColorizationGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(batch=4, size=16, latent=3, width=8, lr=1e-3, conditional=True)


def _images(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear")


# ------------------------------------------------------------------------------------------- diversity


def test_diversity_against_a_hand_computation():
    # one image, K = 3 colourisations, 2 channels, 1×2 pixels
    c = torch.zeros(1, 3, 2, 1, 2)
    c[0, 1, :, 0, 0] = torch.tensor([3.0, 4.0])  # pixel 0: (0,0), (3,4), (0,0); pixel 1: (1,1) three times
    c[:, :, :, 0, 1] = 1.0
    got = colorization_diversity(c)
    # pixel 0: pair distances 5, 0, 5 → 10/3; pixel 1: 0 → pairwise = 5/3
    assert got.pairwise.shape == (1,) and got.pairwise.item() == pytest.approx(5 / 3)
    # pixel 0: mean (1, 4/3); squared deviations 25/9, 100/9, 25/9 → variance 50/9; pixel 1: 0
    assert got.spread.item() == pytest.approx(math.sqrt(50) / 3 / 2)


def test_diversity_is_zero_for_identical_colourisations_and_checks_its_input():
    same = torch.rand(2, 1, 2, 5, 5).expand(2, 4, 2, 5, 5)
    got = colorization_diversity(same)
    assert torch.equal(got.pairwise, torch.zeros(2)) and torch.equal(got.spread, torch.zeros(2))
    with pytest.raises(ValueError, match="K ≥ 2"):
        colorization_diversity(torch.rand(2, 1, 2, 5, 5))
    with pytest.raises(ValueError, match="colorizations"):
        colorization_diversity(torch.rand(2, 2, 5, 5))


# ----------------------------------------------------------------------------------------- L1 baseline


def test_l1_baseline_has_the_same_generator_and_ignores_z():
    age = AGERun(AGEOptions(steps=1, **TINY), _images())
    l1 = AGERun(AGEOptions(steps=1, objective="l1", **TINY), _images())
    assert isinstance(l1.generator, L1Colorizer) and type(age.generator) is ColorizationGenerator
    a, b = age.generator.state_dict(), l1.generator.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same architecture, same init
    z = sample_sphere(5, 3, seed=0)
    out = colorize(l1.generator, _images(2), z).view(2, 5, 3, 16, 16)
    assert torch.equal(out, out[:, :1].expand_as(out))  # every z gives the same colourisation
    varied = colorize(age.generator, _images(2), z).view(2, 5, 3, 16, 16)
    assert not torch.equal(varied, varied[:, :1].expand_as(varied))  # the AGE generator does read z


def test_l1_baseline_trains_the_generator_only_and_lowers_l1():
    x = _images()
    run = AGERun(AGEOptions(steps=1, objective="l1", **TINY), x)
    lum, ab = lab_split(x)
    encoder_before = [p.clone() for p in run.encoder.parameters()]

    def l1() -> float:
        with torch.no_grad():
            return data_reconstruction_loss(ab, run.generator.eval()(torch.zeros(len(x), 3), lum)).item()

    before = l1()
    rows = [run.step(i) for i in range(25)]
    assert set(rows[0]) == {"generator", "data_rec", "loss"}
    assert l1() < 0.8 * before  # eval mode: batch-norm running statistics
    first, last = (sum(float(r["loss"]) for r in rows[a:b]) / 5 for a, b in ((0, 5), (20, 25)))
    assert last < 0.8 * first
    assert all(torch.equal(p, q) for p, q in zip(encoder_before, run.encoder.parameters(), strict=True))


def test_l1_baseline_on_the_run_loop_and_back_from_its_checkpoint(tmp_path):
    import warnings

    warnings.simplefilter("ignore")
    run, result = train_age(_images(), tmp_path / "l1", objective="l1", steps=3, log_every=1, **TINY)
    assert result.started_at == 0
    encoder, gen = load_age(tmp_path / "l1")
    assert encoder.latent == 3
    assert isinstance(gen, L1Colorizer)
    for p, q in zip(gen.state_dict().values(), run.generator.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="conditional=True"):
        AGEOptions(objective="l1")
    with pytest.raises(ValueError, match="objective"):
        AGEOptions(objective="l2", conditional=True)


def test_the_conditional_generator_reads_z():
    """z enters as constant maps; instance normalisation would erase them (the output would not depend on
    z), so the colourisation generator uses batch normalisation."""
    gen = ColorizationGenerator(3, width=8).train()
    lum = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)).repeat(4, 1, 1, 1)
    out = gen(sample_sphere(4, 3, seed=0), lum)
    assert (out - out[:1]).abs().amax(dim=(1, 2, 3))[1:].min() > 0.05
    run = AGERun(AGEOptions(steps=1, **TINY), _images())
    for i in range(3):
        run.step(i)
    ab = lab_split(colorize(run.generator, _images(2), count=4, seed=0))[1].view(2, 4, 2, 16, 16)
    assert colorization_diversity(ab * 220).pairwise.min() > 0.05  # ab units (instance norm: ~1e-3)


# ---------------------------------------------------------------------------------------- seed spelling


def test_colorize_draws_codes_from_a_seed_and_the_old_keyword_warns():
    gen = ColorizationGenerator(3, width=8)
    x = _images(2)
    by_int = colorize(gen, x, count=4, seed=3)
    assert by_int.shape == (8, 3, 16, 16)
    torch.testing.assert_close(colorize(gen, x, count=4, seed=torch.Generator().manual_seed(3)), by_int)
    torch.testing.assert_close(colorize(gen, x, sample_sphere(4, 3, seed=3)), by_int)
    with pytest.warns(DeprecationWarning, match="'generator' is now 'colorizer'"):
        old = colorize(generator=gen, images=x, z=sample_sphere(4, 3, seed=3))
    torch.testing.assert_close(old, by_int)
    with pytest.raises(ValueError, match="count"):
        colorize(gen, x, count=0)
