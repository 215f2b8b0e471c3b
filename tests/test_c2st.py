"""Classifier two-sample test (thesis table 5.1b): separable sets score far below chance, sets from one
distribution near chance, the protocol is seeded, bad inputs name themselves."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from featstat.metrics.c2st import c2st

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth(n, seed):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(32, 32), mode="bilinear")


def test_separable_sets_are_told_apart():
    real = smooth(48, 0)
    g = torch.Generator().manual_seed(1)
    fake = (smooth(48, 2) + 0.25 * torch.randn(48, 3, 32, 32, generator=g)).clamp(0, 1)  # noisy: easy to tell
    res = c2st(real, fake, size=32, epochs=15)
    assert res.accuracy > 0.9 and res.log_loss < 0.3
    assert res.n_train == 24 and res.n_test == 24


def test_one_distribution_scores_near_chance_and_is_seeded():
    a, b = smooth(48, 0), smooth(48, 5)
    res = c2st(a, b, size=32, epochs=15)
    assert res.log_loss > 0.6 * math.log(2) and 0.25 < res.accuracy < 0.75
    assert c2st(a, b, size=32, epochs=15) == res  # same seed, same number
    other = c2st(a, b, size=32, epochs=15, seed=1)
    assert other.log_loss != res.log_loss


def test_copies_warn_and_bad_inputs_name_themselves():
    a = smooth(16, 0)
    with pytest.warns(UserWarning, match="identical"):
        assert c2st(a, a.clone(), size=32, epochs=1).duplicates == 16
    with pytest.raises(ValueError, match="fake holds 4 images"):
        c2st(a, a[:4], size=32)
    with pytest.raises(ValueError, match="real"):
        c2st(a * 3, a, size=32)
    with pytest.raises(ValueError, match="size"):
        c2st(a, a, size=8)
