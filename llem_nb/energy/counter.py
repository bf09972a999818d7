"""What an energy counter that updates in steps says about the energy at any instant.

NVML's total-energy counter (mJ) advances only every ~20–100 ms on many GPUs: a read at
time ``r`` returns the energy up to the counter's last update before ``r``, so the
difference of two reads belongs to the span between two unknown update instants, not
to the span between the reads. A ``CounterTrack`` keeps every read of one GPU with its
own timestamp (GPUs are read one after another), finds the updates ("ticks": where the
value changed, bracketed by the reads before and after), fits the regular grid such
counters tick on, and gives the energy at any instant inside its reads: interpolated
between the ticks around it, shaped by the power curve where there is one. A counter
whose every read differs is live: each read is then itself a tick.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

Weight = Callable[[float, float], float | None]
"""Relative energy between two instants (a power integral); None when unknown."""

MIN_TICKS_FOR_GRID = 3
GRID_SEARCH = 0.2
GRID_TOLERANCE = 0.01
LIVE_GAP_S = 0.002
MIN_LIVE_CHANGES = 4


@dataclass(frozen=True)
class Tick:
    """The counter reached ``joules`` at ``t``; the update lies in (``lo``, ``hi``]."""

    t: float
    lo: float
    hi: float
    joules: float


class CounterTrack:
    """One GPU's energy-counter reads over a span: (read instant, joules) in time order."""

    def __init__(self, power: Weight | None = None) -> None:
        self.times: list[float] = []
        self.values: list[float] = []
        self.went_backwards = False
        self.power = power
        self._cache: tuple[int, _Analysis] | None = None

    def add(self, t: float, joules: float) -> None:
        """One read (another thread may read the track meanwhile: times grow first)."""
        if self.times and t <= self.times[-1]:
            return
        if self.values and joules < self.values[-1]:
            self.went_backwards = True
        self.times.append(t)
        self.values.append(joules)

    def __len__(self) -> int:
        return len(self.times)

    # ------------------------------------------------------------------ ticks

    def _analyse(self) -> _Analysis:
        n = len(self.values)
        if self._cache is None or self._cache[0] != n:
            self._cache = (n, _find_ticks(self.times[:n], self.values[:n], self.power))
        return self._cache[1]

    def ticks(self) -> list[Tick]:
        return self._analyse().ticks

    @property
    def live(self) -> bool:
        """True when (nearly) every read showed a new value: each read is a tick."""
        return self._analyse().live

    @property
    def update_period_s(self) -> float | None:
        """Seconds between counter updates (0.0: live, as fast as it was read); None: unknown."""
        return self._analyse().period

    @property
    def regular(self) -> bool:
        """Whether each tick's instant is known precisely (live, or on a fitted grid)."""
        return self._analyse().precise

    def ticks_after(self, t: float) -> int:
        """How many updates the reads show entirely after ``t`` (read-to-read changes)."""
        n = len(self.values)
        return sum(
            1
            for i in range(1, n)
            if self.times[i - 1] >= t and self.values[i] != self.values[i - 1]
        )

    def ticks_before(self, t: float) -> int:
        """How many updates the reads show entirely before ``t``."""
        n = len(self.values)
        return sum(
            1 for i in range(1, n) if self.times[i] <= t and self.values[i] != self.values[i - 1]
        )

    # ------------------------------------------------------------------ energy

    def _around(self, t: float) -> int | None:
        """Index ``i`` of the ticks ``i``, ``i + 1`` around ``t``; None outside the ticks."""
        ticks = self.ticks()
        if len(ticks) < 2 or not ticks[0].t <= t <= ticks[-1].t:
            return None
        i = bisect.bisect_right([tick.t for tick in ticks], t) - 1
        return min(max(i, 0), len(ticks) - 2)

    def _rate(self, i: int) -> float | None:
        """Mean watts between ticks ``i`` and ``i + 1``; None outside the ticks."""
        ticks = self.ticks()
        if i < 0 or i + 1 >= len(ticks) or ticks[i + 1].t <= ticks[i].t:
            return None
        return (ticks[i + 1].joules - ticks[i].joules) / (ticks[i + 1].t - ticks[i].t)

    def energy_at(self, t: float, weight: Weight | None = None) -> float | None:
        """Joules on the counter's scale at instant ``t``; None outside the ticks read.

        Between the two ticks around ``t`` the counter's exact increase is shared out as if
        power were the counter's own mean power of the interval before them up to ``t``,
        and of the interval after them from ``t`` on: exact for a step in power at ``t``
        (a window edge, a phase boundary) and for steady power. Without neighbours on both
        sides, in proportion to ``weight`` (the power integral), else to time.
        """
        i = self._around(t)
        if i is None:
            return None
        ticks = self.ticks()
        a, b = ticks[i], ticks[i + 1]
        if b.t <= a.t:
            return a.joules
        left, right = self._rate(i - 1), self._rate(i + 1)
        part = whole = None
        if left is not None and right is not None and left + right > 0:
            part = left * (t - a.t)
            whole = part + right * (b.t - t)
        elif weight is not None:
            part, whole = weight(a.t, t), weight(a.t, b.t)
        if part is None or whole is None or whole <= 0:
            part, whole = t - a.t, b.t - a.t
        return a.joules + (b.joules - a.joules) * min(max(part / whole, 0.0), 1.0)

    def energy_between(self, t0: float, t1: float, weight: Weight | None = None) -> float | None:
        e0, e1 = self.energy_at(t0, weight), self.energy_at(t1, weight)
        return None if e0 is None or e1 is None else e1 - e0

    def uncertainty_s(self, t: float) -> float | None:
        """How much time around ``t`` the counter cannot resolve: the shorter distance to
        the ticks on either side (0 at a tick); None outside the ticks read."""
        i = self._around(t)
        if i is None:
            return None
        a, b = self.ticks()[i], self.ticks()[i + 1]
        return max(0.0, min(t - a.t, b.t - t))


@dataclass(frozen=True)
class _Analysis:
    ticks: list[Tick]
    period: float | None
    live: bool = False
    precise: bool = False


def _mid(tick: Tick) -> float:
    return (tick.lo + tick.hi) / 2


def _at_mids(brackets: list[Tick], period: float | None) -> _Analysis:
    return _Analysis([Tick(_mid(b), b.lo, b.hi, b.joules) for b in brackets], period)


def _find_ticks(times: list[float], values: list[float], power: Weight | None = None) -> _Analysis:
    """Ticks, update period and liveness from the reads (see ``CounterTrack``).

    Live: no two reads ``LIVE_GAP_S`` or more apart showed the same value, over at least
    ``MIN_LIVE_CHANGES`` changes (two changing reads say nothing yet). Otherwise the
    counter updates in steps, at least as far apart as the longest unchanged gap; when
    its updates sit on a grid the brackets pin down, each tick is put on it; when they
    come faster than the reads (no grid fits), each is put half that lower bound before
    the read that showed it.
    """
    if len(times) < 2:
        return _Analysis([], None)
    changed = [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    unchanged = [
        (times[i - 1], times[i]) for i in range(1, len(values)) if values[i] == values[i - 1]
    ]
    quiet_s = max((b - a for a, b in unchanged), default=0.0)
    if len(changed) >= MIN_LIVE_CHANGES and quiet_s < LIVE_GAP_S:
        ticks = [Tick(t, t, t, v) for t, v in zip(times, values, strict=True)]
        return _Analysis(ticks, 0.0, live=True, precise=True)
    brackets = [Tick(times[i], times[i - 1], times[i], values[i]) for i in changed]
    if len(brackets) >= MIN_TICKS_FOR_GRID:
        gaps_changed = [
            (times[i] - times[i - 1], values[i] != values[i - 1]) for i in range(1, len(values))
        ]
        before = values[changed[0] - 1]
        estimate = _period_estimate(gaps_changed)
        fitted = _fit_grid(brackets, unchanged, estimate, power, before, times[-1])
        if fitted.precise:
            return fitted
    widths = sorted(b.hi - b.lo for b in brackets)
    if widths and quiet_s < widths[len(widths) // 2]:
        ticks = [Tick(max(b.lo, b.hi - quiet_s / 2), b.lo, b.hi, b.joules) for b in brackets]
        return _Analysis(ticks, quiet_s)
    gaps = [_mid(b) - _mid(a) for a, b in itertools.pairwise(brackets)]
    return _at_mids(brackets, statistics.median(gaps) if gaps else None)


def _period_estimate(gaps: list[tuple[float, bool]]) -> float | None:
    """The update period that explains how many read gaps saw an update: a gap of ``g`` sees
    one with probability ``min(1, g / period)``; None when every gap saw one."""
    changes = sum(1 for _, changed in gaps if changed)
    if not gaps or changes == len(gaps) or changes == 0:
        return None

    def expected(period: float) -> float:
        return sum(min(1.0, g / period) for g, _ in gaps)

    lo = max(g for g, changed in gaps if not changed)
    hi = max(lo * 2, max(g for g, _ in gaps)) * 4
    for _ in range(60):
        mid = (lo + hi) / 2
        if expected(mid) > changes:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _steps(
    brackets: list[Tick],
    period: float,
    mids: list[float],
    power: Weight | None,
    before: float | None,
) -> list[int]:
    """The index of the last update each bracket shows, counting the first update seen as 0.

    Brackets shorter than a period hold one update each, so they are consecutive. Wider ones
    may hold several: their count is the energy gained (from the value ``before`` the
    first bracket, then bracket to bracket) over the energy per update (``period`` × the
    power curve's mean power), or the time between brackets over ``period``.
    """
    if max(b.hi - b.lo for b in brackets) < (1 - GRID_SEARCH) * period:
        return list(range(len(brackets)))
    first = brackets[0]
    count = 1.0
    watts = power(first.lo, first.hi) if power is not None and first.hi > first.lo else None
    if before is not None and watts is not None and watts > 0:
        count = (first.joules - before) / (watts / (first.hi - first.lo) * period)
    steps = [max(1, round(count)) - 1]
    for (a, b), (ma, mb) in zip(
        itertools.pairwise(brackets), itertools.pairwise(mids), strict=True
    ):
        count = (mb - ma) / period
        watts = power(ma, mb) if power is not None and mb > ma else None
        if watts is not None and watts > 0:
            count = (b.joules - a.joules) / (watts / (mb - ma) * period)
        steps.append(steps[-1] + max(1, round(count)))
    return steps


def _fit_grid(
    brackets: list[Tick],
    unchanged: list[tuple[float, float]],
    estimate: float | None = None,
    power: Weight | None = None,
    before: float | None = None,
    last_read: float | None = None,
) -> _Analysis:
    """Put the ticks on ``phase + n × period`` when every bracket allows it, else mid-bracket.

    When every bracket is shorter than a period, no update went unseen and the ticks are
    consecutive. For a trial period, the phases every bracket allows form one interval; its
    width is a concave function of the period: the period is the middle of the range where
    that width is positive, the phase the middle of its room. A grid the brackets barely
    constrain (room of a whole period), or one with an update between two reads
    that showed the same value, is no grid.
    """
    mids = [_mid(b) for b in brackets]
    period0 = estimate or statistics.median(b - a for a, b in itertools.pairwise(mids))
    if period0 <= 0:
        return _at_mids(brackets, None)
    steps = _steps(brackets, period0, mids, power, before)
    if steps[-1] > steps[0]:
        period0 = (mids[-1] - mids[0]) / (steps[-1] - steps[0])

    firsts = [0, *(n + 1 for n in steps[:-1])]
    end = last_read if last_read is not None else brackets[-1].hi

    def room(period: float) -> tuple[float, float]:
        """Phases that put every bracket's updates (first to last) inside it, the update
        before the first bracket at or before the read before it, and none after the last
        bracket before the last read."""
        low = max(b.lo - n * period for b, n in zip(brackets, firsts, strict=True))
        high = min(b.hi - n * period for b, n in zip(brackets, steps, strict=True))
        low = max(low, end - (steps[-1] + 1) * period)
        high = min(high, brackets[0].lo + period)
        return low, high

    def width(period: float) -> float:
        low, high = room(period)
        return high - low

    lo_p, hi_p = period0 * (1 - GRID_SEARCH), period0 * (1 + GRID_SEARCH)
    for _ in range(80):
        a, b = lo_p + (hi_p - lo_p) / 3, hi_p - (hi_p - lo_p) / 3
        if width(a) < width(b):
            lo_p = a
        else:
            hi_p = b
    best = (lo_p + hi_p) / 2
    if width(best) < -max(1e-6, GRID_TOLERANCE * best):
        return _at_mids(brackets, best)
    period = (
        _edge(width, best, period0 * (1 - GRID_SEARCH))
        + _edge(width, best, period0 * (1 + GRID_SEARCH))
    ) / 2
    low, high = room(period)
    if low > high + max(1e-6, GRID_TOLERANCE * period) or high - low >= period:
        return _at_mids(brackets, period)
    phase = (low + high) / 2
    if any(_ticks_in(phase, period, a, b) for a, b in unchanged):
        return _at_mids(brackets, period)
    pairs = zip(itertools.pairwise(brackets), itertools.pairwise(steps), strict=True)
    if any(_ticks_in(phase, period, a.hi, b.hi) != nb - na for (a, b), (na, nb) in pairs):
        return _at_mids(brackets, period)
    ticks = [
        Tick(phase + n * period, b.lo, b.hi, b.joules) for b, n in zip(brackets, steps, strict=True)
    ]
    return _Analysis(ticks, period, precise=True)


def _edge(width: Callable[[float], float], inside: float, outside: float) -> float:
    """Where ``width`` (positive at ``inside``, concave) falls to 0 towards ``outside``."""
    if width(inside) < 0 or width(outside) >= 0:
        return inside if width(inside) < 0 else outside
    for _ in range(60):
        middle = (inside + outside) / 2
        if width(middle) >= 0:
            inside = middle
        else:
            outside = middle
    return (inside + outside) / 2


def _ticks_in(phase: float, period: float, a: float, b: float) -> int:
    """How many points of the grid ``phase + n × period`` lie in (a, b]."""
    return math.floor((b - phase) / period) - math.floor((a - phase) / period)
