"""The precision policy (featstat.engine.precision): "auto" is measured, never slower than fp32, cached per
machine
and shape; explicit choices are checked."""

from __future__ import annotations

import json

import pytest
import torch

from featstat.engine import precision as P


@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    """A CPU that claims native bfloat16, without AMX, with the cache in the test's folder."""
    monkeypatch.setenv("FEATSTAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FEATSTAT_PRECISION_MEASURE", "1")
    monkeypatch.setattr(P, "cpu_bf16_supported", lambda: True)
    monkeypatch.setattr(P, "cpu_has_amx", lambda: False)


def _measure(times: dict[str, float], calls: list):
    def measure(prec: str, cl: bool) -> float:
        calls.append((prec, cl))
        return times[f"{prec}{'-cl' if cl else ''}"]

    return measure


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"fp32": 2.0, "fp32-cl": 1.86, "bf16-cl": 2.24}, ("fp32", True)),  # AVX-512-BF16 without AMX
        ({"fp32": 1.04, "fp32-cl": 0.86, "bf16-cl": 0.34}, ("bf16", True)),  # AMX
        ({"fp32": 1.0, "fp32-cl": 1.2, "bf16-cl": 0.97}, ("fp32", False)),  # within the margin: fp32
    ],
)
def test_auto_picks_the_fastest_and_never_a_slower_bf16(bf16_cpu, times, expected):
    calls: list = []
    c = P.choose("auto", "cpu", key="net-256", measure=_measure(times, calls))
    assert (c.precision, c.channels_last) == expected
    assert len(calls) == 3 and c.timings == times and not c.cached
    best_fp32 = min(v for k, v in times.items() if k.startswith("fp32"))
    chosen = times[f"{c.precision}{'-cl' if c.channels_last else ''}"]
    assert chosen <= best_fp32  # never slower than fp32
    assert c.info()["reason"].startswith("measured")


def test_choice_is_cached_per_machine_and_key(bf16_cpu):
    calls: list = []
    times = {"fp32": 2.0, "fp32-cl": 1.9, "bf16-cl": 0.5}
    first = P.choose("auto", "cpu", key="a", measure=_measure(times, calls))
    again = P.choose("auto", "cpu", key="a", measure=_measure(times, calls))
    assert len(calls) == 3 and again.cached and again.precision == first.precision == "bf16"
    P.choose("auto", "cpu", key="b", measure=_measure(times, calls))  # another shape: measured
    assert len(calls) == 6
    data = json.loads(P.cache_path().read_text())
    assert set(data[P.machine_signature()]) == {"a", "b"}
    P.cache_path().write_text("{not json")  # damaged cache: measured again, rewritten
    assert not P.choose("auto", "cpu", key="a", measure=_measure(times, calls)).cached
    assert len(calls) == 9 and json.loads(P.cache_path().read_text())


def test_unmeasured_rule_and_no_native_bf16(monkeypatch, tmp_path, bf16_cpu):
    assert P.choose("auto", "cpu").precision == "fp32"  # no measure function, no AMX
    monkeypatch.setattr(P, "cpu_has_amx", lambda: True)
    assert P.choose("auto", "cpu").precision == "bf16"
    monkeypatch.setenv("FEATSTAT_PRECISION_MEASURE", "0")
    calls: list = []
    assert P.choose("auto", "cpu", key="k", measure=_measure({}, calls)).precision == "bf16" and not calls
    monkeypatch.setattr(P, "cpu_bf16_supported", lambda: False)
    c = P.choose("auto", "cpu", key="k", measure=_measure({}, calls))
    assert (c.precision, c.channels_last, calls) == ("fp32", False, [])


def test_explicit_precisions_are_checked():
    assert P.choose("bf16", "cpu").channels_last and not P.choose("fp32", "cpu").channels_last
    assert P.choose("fp32", "cpu", channels_last=True).channels_last
    with pytest.raises(ValueError, match="needs a CUDA device"):
        P.choose("fp16", "cpu")
    with pytest.raises(ValueError, match="precision"):
        P.choose("half", "cpu")


def test_time_steps_takes_the_least_disturbed_call():
    calls = []
    assert P.time_steps(lambda: calls.append(1), warmup=2, steps=3) >= 0 and len(calls) == 5


def test_this_machine_is_described():
    sig = P.machine_signature()
    assert f"torch {torch.__version__}" in sig and f"threads {torch.get_num_threads()}" in sig
