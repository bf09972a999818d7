"""Integrals of a polled power curve: the trapezoid rule, read between and across samples.

A device's power between two samples is taken as the straight line joining them (the
trapezoid rule's own model), so any sub-interval has an exact integral under that model;
the window total, phase splits and the timeseries' bin means all use the same one.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from llem_nb.energy.base import PowerSample


def _points(samples: Sequence[PowerSample], k: int) -> list[tuple[float, float]]:
    return [(s.t, w) for s in samples if (w := s.watts[k]) is not None]


def _value(points: list[tuple[float, float]], times: list[float], t: float) -> float:
    """The joined-line power at ``t``, held flat before the first and after the last point."""
    i = bisect.bisect_right(times, t)
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (ta, wa), (tb, wb) = points[i - 1], points[i]
    return wa + (wb - wa) * (t - ta) / (tb - ta) if tb > ta else wb


def power_at(samples: Sequence[PowerSample], k: int, t: float) -> float | None:
    """Device ``k``'s power at ``t`` on the line through its samples; None without samples."""
    points = _points(samples, k)
    if not points:
        return None
    return _value(points, [p[0] for p in points], t)


def integral(samples: Sequence[PowerSample], k: int, a: float, b: float) -> float | None:
    """Joules of device ``k`` from ``a`` to ``b`` under the joined-line model; None if unread."""
    points = _points(samples, k)
    if len(points) < 2 and not (points and a == b):
        return None
    if b <= a:
        return 0.0
    times = [p[0] for p in points]
    knots = [a, *(t for t in times if a < t < b), b]
    values = [_value(points, times, t) for t in knots]
    return sum(
        (t1 - t0) * (w0 + w1) / 2
        for (t0, w0), (t1, w1) in itertools.pairwise(zip(knots, values, strict=True))
    )


def trapezoid(samples: Sequence[PowerSample], k: int) -> tuple[float | None, int]:
    """Joules of device ``k`` from the first to the last sample, and the samples read.

    Samples that could not be read are bridged by the line between their neighbours
    (held flat at the edges); None with fewer than two readable samples.
    """
    n = len(_points(samples, k))
    if n < 2:
        return None, n
    return integral(samples, k, samples[0].t, samples[-1].t), n


class PowerCurve:
    """One device's joined-line power curve, with O(log n) integrals over any span.

    The same model as ``integral`` (straight lines between readable samples, held flat
    before the first and after the last), precomputed once, for the many integrals that
    counter interpolation and phase splits ask for.
    """

    def __init__(self, samples: Sequence[PowerSample], k: int) -> None:
        points = _points(samples, k)
        self.times = [t for t, _ in points]
        self.watts = [w for _, w in points]
        self.cumulative = [0.0]
        for (t0, w0), (t1, w1) in itertools.pairwise(points):
            self.cumulative.append(self.cumulative[-1] + (t1 - t0) * (w0 + w1) / 2)

    def __len__(self) -> int:
        return len(self.times)

    def _energy(self, t: float) -> float:
        """Joules from the first sample to ``t`` (negative before it, held flat)."""
        times, watts = self.times, self.watts
        if t <= times[0]:
            return watts[0] * (t - times[0])
        if t >= times[-1]:
            return self.cumulative[-1] + watts[-1] * (t - times[-1])
        i = bisect.bisect_right(times, t) - 1
        ta, tb, wa, wb = times[i], times[i + 1], watts[i], watts[i + 1]
        w = wa + (wb - wa) * (t - ta) / (tb - ta) if tb > ta else wb
        return self.cumulative[i] + (t - ta) * (wa + w) / 2

    def integral(self, a: float, b: float) -> float | None:
        """Joules from ``a`` to ``b``; None with fewer than two readable samples."""
        if len(self.times) < 2:
            return None
        if b <= a:
            return 0.0
        return self._energy(b) - self._energy(a)
