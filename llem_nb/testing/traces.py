"""Power traces with exact integrals, for the NVML simulator and the tests that check meters.

``Trace.integral(t0, t1)`` is what a perfect meter reports over a window; every helper
here computes it in closed form (``numeric`` wraps any function, integrating finely).
Times are seconds on the simulator's timeline (0 = when the ``FakeNvml`` was built).
Workload shapes: ``constant`` (idle), ``ramp``, ``spikes``, ``steps`` (any piecewise
level, e.g. ``prefill_decode``) and ``LiveTrace``, whose levels a simulated backend sets
as it runs (prefill burst, decode, back to idle).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    """A power trace ``watts(t)`` with its exact cumulative ``energy(t)`` (joules from t=0)."""

    watts: Callable[[float], float]
    energy: Callable[[float], float]

    def __call__(self, t: float) -> float:
        return self.watts(t)

    def integral(self, t0: float, t1: float) -> float:
        """Joules from ``t0`` to ``t1`` seconds: what a perfect meter would report."""
        return self.energy(t1) - self.energy(t0)


def constant(w: float) -> Trace:
    """``w`` watts throughout."""
    return Trace(lambda t: w, lambda t: w * t)


def ramp(w0: float, w1: float, seconds: float) -> Trace:
    """Linear from ``w0`` at t=0 to ``w1`` at t=``seconds``, then ``w1``."""
    slope = (w1 - w0) / seconds

    def watts(t: float) -> float:
        return w0 + slope * t if t < seconds else w1

    def energy(t: float) -> float:
        if t < seconds:
            return w0 * t + slope * t * t / 2
        return (w0 + w1) / 2 * seconds + w1 * (t - seconds)

    return Trace(watts, energy)


def spikes(base_w: float, spike_w: float, period_s: float, width_s: float) -> Trace:
    """``base_w``, with a ``spike_w`` pulse of ``width_s`` at the start of every period."""

    def watts(t: float) -> float:
        return spike_w if t % period_s < width_s else base_w

    def energy(t: float) -> float:
        high = math.floor(t / period_s) * width_s + min(t % period_s, width_s)
        return base_w * t + (spike_w - base_w) * high

    return Trace(watts, energy)


def numeric(watts: Callable[[float], float], step_s: float = 1e-5) -> Trace:
    """Wrap any trace; its energy is a trapezoid integral from 0 with ``step_s`` steps."""

    def energy(t: float) -> float:
        n = max(1, math.ceil(t / step_s))
        h = t / n
        return h * (sum(watts(i * h) for i in range(1, n)) + (watts(0.0) + watts(t)) / 2)

    return Trace(watts, energy)


def steps(levels: Sequence[tuple[float, float]]) -> Trace:
    """Piecewise constant: ``[(t_start, watts), …]`` sorted by time; the first level also
    holds before its start."""
    starts = [t for t, _ in levels]
    watts_at = [w for _, w in levels]
    cumulative = [0.0]
    for (t0, w), t1 in zip(levels, starts[1:], strict=False):
        cumulative.append(cumulative[-1] + w * (t1 - t0))

    def watts(t: float) -> float:
        return watts_at[max(0, bisect.bisect_right(starts, t) - 1)]

    def energy(t: float) -> float:
        if t < starts[0]:
            return watts_at[0] * t
        i = bisect.bisect_right(starts, t) - 1
        return watts_at[0] * starts[0] + cumulative[i] + watts_at[i] * (t - starts[i])

    return Trace(watts, energy)


def prefill_decode(
    *,
    idle_w: float,
    prefill_w: float,
    decode_w: float,
    start_s: float,
    prefill_s: float,
    decode_s: float,
    batches: int = 1,
) -> Trace:
    """Idle, then ``batches`` × (a prefill burst, then decode), then idle again."""
    levels = [(0.0, idle_w)]
    t = start_s
    for _ in range(batches):
        levels += [(t, prefill_w), (t + prefill_s, decode_w)]
        t += prefill_s + decode_s
    levels.append((t, idle_w))
    return steps(levels)


class LiveTrace(Trace):
    """Piecewise-constant power whose next level is set as a simulation runs.

    ``set(t, watts)`` starts a new level at ``t`` (not before the last one); the trace
    holds ``idle_w`` before the first change. Integrals are exact.
    """

    def __init__(self, idle_w: float) -> None:
        self._starts = [0.0]
        self._levels = [float(idle_w)]
        self._cumulative = [0.0]
        object.__setattr__(self, "watts", self._watts)
        object.__setattr__(self, "energy", self._energy)

    def set(self, t: float, watts: float) -> None:
        if t < self._starts[-1]:
            raise ValueError(
                f"LiveTrace.set at {t} s is before the last change at {self._starts[-1]} s"
            )
        last_t, last_w = self._starts[-1], self._levels[-1]
        self._cumulative.append(self._cumulative[-1] + last_w * (t - last_t))
        self._starts.append(t)
        self._levels.append(float(watts))

    def _watts(self, t: float) -> float:
        return self._levels[max(0, bisect.bisect_right(self._starts, t) - 1)]

    def _energy(self, t: float) -> float:
        if t < 0:
            return self._levels[0] * t
        i = bisect.bisect_right(self._starts, t) - 1
        return self._cumulative[i] + self._levels[i] * (t - self._starts[i])
