"""Warm-up (fixed and CV) and the window cooldown, with scripted latencies and a fake clock."""

from __future__ import annotations

import itertools

import pytest

from llem_nb.config.sections import WarmupConfig
from llem_nb.measure.warmup import coefficient_of_variation, warm_up


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
