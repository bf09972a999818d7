"""Arrival times: seeded, and Poisson/gamma gaps whose statistics fall in their bounds.

Bounds are four standard errors for 10,000 draws: the mean gap's SE is σ/√n; the sample
CV's SE follows from the gaps' kurtosis κ (exponential 9, gamma 3 + 6/shape) as
CV·√((κ − 1)/(4n) + CV²/n). With fixed seeds the draws are fixed too: the bounds say the
generator is right, not that a rerun might pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from llem_nb.backends.serving.arrivals import arrival_times_s, gaps_s

N = 10_000


def cv_bound(cv: float, kurtosis: float, n: int = N) -> float:
    return 4 * cv * math.sqrt((kurtosis - 1) / (4 * n) + cv**2 / n)


def test_poisson_gaps_have_mean_one_over_rate_and_cv_one() -> None:
    gaps = gaps_s(N, 8.0, "poisson", 1.0, seed=1)
    mean = 1 / 8.0
    assert abs(gaps.mean() - mean) < 4 * mean / math.sqrt(N)
    assert abs(gaps.std(ddof=1) / gaps.mean() - 1.0) < cv_bound(1.0, 9.0)
    assert stats.kstest(gaps, "expon", args=(0, mean)).pvalue > 1e-3


@pytest.mark.parametrize("burstiness", [0.5, 2.0, 4.0])
def test_gamma_gaps_have_the_rate_and_the_burstiness_as_cv(burstiness: float) -> None:
    rate = 20.0
    gaps = gaps_s(N, rate, "gamma", burstiness, seed=2)
    mean, shape = 1 / rate, 1 / burstiness**2
    assert abs(gaps.mean() - mean) < 4 * burstiness * mean / math.sqrt(N)
    cv = gaps.std(ddof=1) / gaps.mean()
    assert abs(cv - burstiness) < cv_bound(burstiness, 3 + 6 / shape)
    assert stats.kstest(gaps, "gamma", args=(shape, 0, mean / shape)).pvalue > 1e-3


def test_constant_infinite_and_seeded() -> None:
    assert arrival_times_s(4, 2.0, "constant") == [0.0, 0.5, 1.0, 1.5]
    assert arrival_times_s(3, math.inf, "poisson") == [0.0, 0.0, 0.0]
    one = arrival_times_s(50, 5.0, "gamma", 2.0, seed=7)
    assert one == arrival_times_s(50, 5.0, "gamma", 2.0, seed=7)
    assert one != arrival_times_s(50, 5.0, "gamma", 2.0, seed=8)
    assert np.all(np.diff(one) >= 0) and one[0] == 0.0 and len(one) == 50
    assert arrival_times_s(0, 1.0) == []


def test_bad_arrival_is_refused() -> None:
    with pytest.raises(ValueError, match="known: poisson, gamma, constant"):
        gaps_s(3, 1.0, "uniform", 1.0, 0)
    with pytest.raises(ValueError, match="rate_rps > 0"):
        gaps_s(3, 0.0, "poisson", 1.0, 0)
