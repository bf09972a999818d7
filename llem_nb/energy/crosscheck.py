"""The counter-vs-power cross-check, comparing like with like when power is averaged.

``nvmlDeviceGetPowerUsage`` on Ampere and later (except GA100) reports the mean power of
the last ``avg_s`` (1 s): a reading at ``t`` describes [t − avg_s, t]. Integrating such
readings over [a, b] weighs the true power with a trapezoid kernel that lags the window,
so on a window that starts from idle the power integral falls short of the counter by up
to ``avg_s`` × the power step. Here the counter's energy curve ``E(t)`` is put through
the same trailing average before comparing: the readings' integral over [a, b] equals

    (1 / avg_s) × (∫_{b−avg_s}^{b} E dt − ∫_{a−avg_s}^{a} E dt)

for any power curve. With a = t0 + avg_s and b = t1 both stretches of ``E`` lie inside
the window, where the counter is resolved. Instantaneous power (``avg_s`` 0) needs none
of this: the plain energy ÷ power integral is already like with like.
"""

from __future__ import annotations

import bisect

from llem_nb.energy.counter import CounterTrack
from llem_nb.energy.integrate import PowerCurve

MEAN_POINTS = 200
MIN_SPAN_PER_AVERAGE = 2.0


def _mean_energy(track: CounterTrack, weight: PowerCurve, a: float, b: float) -> float | None:
    """Mean of the counter's energy curve over [a, b] (trapezoid over a grid and its ticks)."""
    ticks = [tick.t for tick in track.ticks()]
    grid = [a + (b - a) * i / MEAN_POINTS for i in range(MEAN_POINTS + 1)]
    inner = ticks[bisect.bisect_right(ticks, a) : bisect.bisect_left(ticks, b)]
    knots = sorted({*grid, *inner})
    values = [track.energy_at(t, weight.integral) for t in knots]
    if any(v is None for v in values):
        return None
    area = 0.0
    for i in range(1, len(knots)):
        v0, v1 = values[i - 1], values[i]
        assert v0 is not None and v1 is not None
        area += (knots[i] - knots[i - 1]) * (v0 + v1) / 2
    return area / (b - a)


def averaged_check_j(
    track: CounterTrack, curve: PowerCurve, t0: float, t1: float, avg_s: float | None
) -> tuple[float, float] | None:
    """(counter joules as averaged power would show them, power-reading integral) over the
    window's [t0 + avg_s, t1]; None when power is instantaneous (``avg_s`` 0 or unknown),
    the window is shorter than ``MIN_SPAN_PER_AVERAGE`` averaging windows, or the counter
    or the curve does not cover it."""
    if not avg_s or avg_s <= 0 or t1 - t0 < MIN_SPAN_PER_AVERAGE * avg_s or len(curve) < 2:
        return None
    a = t0 + avg_s
    late = _mean_energy(track, curve, t1 - avg_s, t1)
    early = _mean_energy(track, curve, t0, a)
    power_j = curve.integral(a, t1)
    if late is None or early is None or not power_j:
        return None
    return late - early, power_j
