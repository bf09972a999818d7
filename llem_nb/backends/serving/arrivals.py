"""Request arrival times: drawn once from a seeded generator, saved with the result.

Gaps between requests at ``rate_rps``: ``poisson`` — exponential (CV 1); ``gamma`` —
shape ``1/burstiness²``, so the gaps' coefficient of variation is ``burstiness`` (> 1:
bursts, < 1: smoother than Poisson) with the same mean ``1/rate``; ``constant`` — exactly
``1/rate``. ``rate_rps = inf`` sends every request at time 0. The first request goes at 0.
"""

from __future__ import annotations

import math

import numpy as np  # noqa: TID253 - arrival draws are numpy arrays


def gaps_s(n: int, rate_rps: float, arrival: str, burstiness: float, seed: int) -> np.ndarray:
    """``n`` gaps in seconds (the first one before the second request)."""
    if n < 0 or not rate_rps > 0:
        raise ValueError(f"need n >= 0 and rate_rps > 0 (got n={n}, rate_rps={rate_rps})")
    if math.isinf(rate_rps):
        return np.zeros(n)
    mean = 1.0 / rate_rps
    rng = np.random.default_rng(seed)
    if arrival == "constant":
        return np.full(n, mean)
    if arrival == "poisson":
        return rng.exponential(mean, n)
    if arrival == "gamma":
        shape = 1.0 / burstiness**2
        return rng.gamma(shape, mean / shape, n)
    raise ValueError(f"unknown arrival {arrival!r}; known: poisson, gamma, constant")


def arrival_times_s(
    n: int, rate_rps: float, arrival: str = "poisson", burstiness: float = 1.0, seed: int = 0
) -> list[float]:
    """When each of ``n`` requests is due, seconds after the run starts (0 first)."""
    gaps = gaps_s(max(n - 1, 0), rate_rps, arrival, burstiness, seed)
    return [0.0, *np.cumsum(gaps).tolist()][:n]
