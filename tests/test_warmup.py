"""Warm-up (fixed and CV) and the window cooldown, with scripted latencies and a fake clock."""

from __future__ import annotations

import itertools

import pytest

from llem_nb.config.sections import WarmupConfig, WindowCooldownConfig
from llem_nb.measure.warmup import coefficient_of_variation, cool_down, warm_up


def scripted(latencies: list[float]):  # type: ignore[no-untyped-def]
    it = iter(latencies)
    return lambda: next(it)


def test_cv() -> None:
    assert coefficient_of_variation([1.0]) is None
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(2**0.5 / 2)


def test_fixed_runs_exactly_n() -> None:
    record = warm_up(scripted([0.5, 0.3, 0.31]), WarmupConfig(runs=3))
    assert (record.mode, record.runs, record.converged) == ("fixed", 3, None)
    assert record.latencies_s == [0.5, 0.3, 0.31]
    assert warm_up(scripted([]), WarmupConfig(runs=0)).runs == 0


def test_cv_stops_once_the_window_is_steady() -> None:
    latencies = [2.0, 1.0, 0.5, 0.30, 0.31, 0.30, 0.31, 0.30, 9.9]
    record = warm_up(scripted(latencies), WarmupConfig(mode="cv", window=4, cv_threshold=0.05))
    assert (record.runs, record.converged) == (7, True)
    assert record.cv is not None and record.cv < 0.05


def test_cv_gives_up_at_the_cap() -> None:
    noisy = itertools.cycle([1.0, 2.0])
    config = WarmupConfig(mode="cv", window=3, max_runs=6, cv_threshold=0.01)
    record = warm_up(lambda: next(noisy), config)
    assert (record.runs, record.converged) == (6, False)


def test_cv_runs_at_least_runs_and_window() -> None:
    config = WarmupConfig(mode="cv", runs=6, window=2, max_runs=10)
    record = warm_up(lambda: 1.0, config)
    assert record.runs == 6 and record.converged is True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_cooldown_polls_until_within_reach() -> None:
    clock = Clock()
    temps = iter([70.0, 60.0, 50.0, 44.0])
    config = WindowCooldownConfig(until_within_c=5, poll_s=2.0, max_s=60)
    record = cool_down(lambda: {"gpu0": next(temps)}, {"gpu0": 40.0}, config,
                       sleep=clock.sleep, clock=clock)  # fmt: skip
    assert record is not None
    assert (record.reached, record.waited_s) == (True, 6.0)
    assert record.start_c == {"gpu0": 70.0} and record.end_c == {"gpu0": 44.0}


def test_cooldown_cap_and_overrides() -> None:
    clock = Clock()
    config = WindowCooldownConfig(until_within_c=2, idle_c=30, poll_s=4.0, max_s=10)
    record = cool_down(lambda: {"gpu0": 35.0, "gpu1": 31.0}, {}, config,
                       sleep=clock.sleep, clock=clock)  # fmt: skip
    assert record is not None and record.reached is False
    assert record.waited_s == 10.0 and record.idle_c == {"gpu0": 30.0, "gpu1": 30.0}
    assert record.note is not None and "gpu0 35°C" in record.note and "gpu1" not in record.note


def test_cooldown_off_or_unreadable() -> None:
    assert cool_down(lambda: {"gpu0": 80.0}, {}, WindowCooldownConfig()) is None
    config = WindowCooldownConfig(until_within_c=5)
    none = cool_down(dict, {}, config)
    assert none is not None and none.reached is None and "no GPU temperature" in (none.note or "")
    unknown = cool_down(lambda: {"gpu0": 80.0}, {}, config)
    assert unknown is not None and unknown.reached is None and "gpu0" in (unknown.note or "")
