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


def test_lists_of_images_and_the_registered_set_metric():
    from featstat.metrics.c2st import C2ST
    from featstat.registry import SET_METRICS, get_registry

    a, b = smooth(16, 0), smooth(16, 3)
    as_list = [a[i] if i % 2 else a[i : i + 1] for i in range(len(a))]  # 3×H×W and 1×3×H×W items
    assert c2st(as_list, b, size=16, epochs=2) == c2st(a, b, size=16, epochs=2)
    odd = [*as_list[:5], F.interpolate(a[5:6], size=(24, 32))]
    with pytest.raises(
        ValueError, match=r"real: the images of a set must share one size.*real\[5\] is 32×24"
    ):
        c2st(odd, b, size=16)
    with pytest.raises(ValueError, match=r"fake\[1\]"):
        c2st(a, [b[0], b[1, :2]], size=16)
    with pytest.raises(ValueError, match="fake is an empty list"):
        c2st(a, [], size=16)
    # the registry entry: the set metric (pred = generated, target = real) is the function (real, fake)
    assert get_registry("set_metric") is SET_METRICS and SET_METRICS.get("two_sample") is C2ST
    metric = SET_METRICS.build("c2st", size=16, epochs=2, seed=3)
    assert C2ST.higher_is_better and metric(b, a) == c2st(a, b, size=16, epochs=2, seed=3)
    assert (
        metric(b, a).value == metric(b, a).log_loss
        and metric(b, a).to_dict()["value"] == metric(b, a).log_loss
    )
    with pytest.raises(ValueError, match="epochs"):
        C2ST(epochs=0)
    with pytest.raises(ValueError, match="min_per_set"):
        C2ST(min_per_set=1)
