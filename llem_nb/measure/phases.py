"""Prefill/decode energy for static batches: each batch's start → its first token is prefill.

Two methods, both recorded, and a rule for which one stands:

- ``counter``: each GPU's energy counter interpolated at every boundary
  (``CounterTrack.energy_at``, which shares an update interval out by the mean power of
  the intervals beside it). Used only where the counter resolves every phase: it was read
  close to both boundaries (live, or read right after a mark: the time it cannot resolve
  is at most ``COUNTER_RESOLUTION`` of the phase), or it updated at least
  ``TICKS_PER_PHASE`` times inside the phase, so that the intervals beside each boundary
  lie on the right side of it. A counter that updates every 100 ms cannot split a 50 ms
  prefill. A counter that changed at every read is taken as live, but reads far apart
  cannot tell it from one that updates every few tens of ms: a live counter resolves a
  phase only when the longest update period its reads leave plausible (``live_bound_s``)
  is at most ``LIVE_SHARE`` of the phase. A counter whose updates fit no grid has its
  ticks placed by guess inside their read brackets: those brackets, not the guesses, say
  how close it was read to a boundary.
- ``power``: each GPU's share of its power integral that falls in prefill intervals, times
  its window energy (prefill + decode = gross whatever the source). Its resolution is
  the power curve's: a prefill shorter than ``POLL_PERIODS_PER_PHASE`` configured poll
  periods (not the samples' median gap: the poller dithers its rounds), or than
  ``AVERAGES_PER_PHASE`` windows NVML averages power over (1 s on Ampere and later), is
  smeared into decode; the split is then flagged ``phase_unresolved``.

Continuous batching has no phases to split by time (one request's prefill overlaps
others' decode): no split there. Without phases or energy both methods are None.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.counter import CounterTrack
from llem_nb.energy.integrate import PowerCurve

COUNTER_RESOLUTION = 0.1
TICKS_PER_PHASE = 3
POLL_PERIODS_PER_PHASE = 3
AVERAGES_PER_PHASE = 10
LIVE_CHANCE = 0.05
LIVE_SHARE = 0.25


@dataclass
class PhaseSplit:
    """Prefill and decode energy (J) and time (s); ``method`` says how energy was split."""

    prefill_energy_j: float | None = None
    decode_energy_j: float | None = None
    method: str | None = None
    prefill_s: float = 0.0
    decode_s: float = 0.0
    batches: int = 0
    prefill_power_j: float | None = None
    prefill_counter_j: float | None = None
    shortest_prefill_s: float | None = None
    resolution_s: float | None = None
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("flags")
        out.pop("warnings")
        return out


def clip(phases: Sequence[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    """Phase intervals cut to the window, empty ones dropped."""
    out = []
    for start, first in phases:
        a, b = max(start, t0), min(first, t1)
        if b > a:
            out.append((a, b))
    return out


def _power_split(
    reading: EnergyReading, intervals: list[tuple[float, float]], t0: float, t1: float
) -> float | None:
    total = 0.0
    for k, device in enumerate(reading.devices):
        curve = PowerCurve(reading.samples, k)
        whole = curve.integral(t0, t1)
        if device.energy_j is None or not whole:
            return None
        part = sum(curve.integral(a, b) or 0.0 for a, b in intervals)
        total += part / whole * device.energy_j
    return total


def live_bound_s(track: CounterTrack) -> float:
    """For a live track, the longest update period under which every read changing still
    had a ``LIVE_CHANCE`` chance (a gap of ``g`` sees an update with probability
    ``g / period``): reads far apart cannot tell a live counter from a stepped one. 0 for
    a counter that updates in steps (its ticks are located, not assumed)."""
    if not track.live:
        return 0.0
    gaps = [
        b - a
        for a, b, va, vb in zip(
            track.times, track.times[1:], track.values, track.values[1:], strict=False
        )
        if vb != va and b > a
    ]
    if not gaps:
        return 0.0

    def log_chance(period: float) -> float:
        return sum(math.log(min(1.0, g / period)) for g in gaps)

    lo, hi = min(gaps), max(gaps) * 2
    if log_chance(hi) >= math.log(LIVE_CHANCE):
        return hi
    for _ in range(50):
        mid = (lo + hi) / 2
        if log_chance(mid) >= math.log(LIVE_CHANCE):
            lo = mid
        else:
            hi = mid
    return lo


def _bracket_s(track: CounterTrack, t: float) -> float:
    """For ticks placed by guess, the time around ``t`` they may really lie in: the
    widest read bracket of the two ticks around it."""
    ticks = track.ticks()
    i = bisect.bisect_right([tick.t for tick in ticks], t)
    around = ticks[max(i - 1, 0) : i + 1]
    return max((tick.hi - tick.lo for tick in around), default=math.inf)


def _counter_split(
    reading: EnergyReading, intervals: list[tuple[float, float]]
) -> tuple[float | None, bool]:
    """(prefill joules by the counter, whether it resolves every phase); None: no counter."""
    if not reading.devices or any(d.method != "counter" for d in reading.devices):
        return None, False
    if len(reading.tracks) != len(reading.devices):
        return None, False
    total, resolved = 0.0, True
    for k, track in enumerate(reading.tracks):
        if track is None:
            return None, False
        curve = PowerCurve(reading.samples, k)
        weight = curve.integral if len(curve) >= 2 else None
        instants = [tick.t for tick in track.ticks()]
        bound_s = live_bound_s(track)
        for a, b in intervals:
            e0, e1 = track.energy_at(a, weight), track.energy_at(b, weight)
            u0, u1 = track.uncertainty_s(a), track.uncertainty_s(b)
            if e0 is None or e1 is None or u0 is None or u1 is None:
                return None, False
            total += e1 - e0
            inside = bisect.bisect_left(instants, b) - bisect.bisect_right(instants, a)
            if not track.regular:
                u0, u1 = _bracket_s(track, a), _bracket_s(track, b)
            close = u0 + u1 <= COUNTER_RESOLUTION * (b - a)
            many = inside >= TICKS_PER_PHASE
            proven = bound_s <= LIVE_SHARE * (b - a)
            resolved = resolved and proven and (close or many)
    return total, resolved


def _poll_period(reading: EnergyReading) -> float | None:
    """The configured poll period; without one, the samples' mean gap (not the median:
    dithered rounds make most gaps shorter than the period)."""
    if reading.poll_interval_s:
        return reading.poll_interval_s
    times = [s.t for s in reading.samples]
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else None


def _power_resolution(reading: EnergyReading) -> float:
    """The shortest phase the power curve resolves: a few polls, and ``AVERAGES_PER_PHASE``
    of NVML's averaging windows (averaged power smears half a window of each phase into
    the next)."""
    poll = _poll_period(reading) or 0.0
    averaging = max((d.power_avg_s or 0.0 for d in reading.devices), default=0.0)
    return max(POLL_PERIODS_PER_PHASE * poll, AVERAGES_PER_PHASE * averaging)


def split_phases(
    reading: EnergyReading,
    phases: Sequence[tuple[float, float]],
    t0: float,
    t1: float,
    *,
    batching: str = "static",
) -> PhaseSplit:
    """Split the window's energy into prefill and decode (see the module docstring)."""
    if batching == "continuous":
        return PhaseSplit(decode_s=t1 - t0, batches=0)
    intervals = clip(phases, t0, t1)
    prefill_s = sum(b - a for a, b in intervals)
    split = PhaseSplit(prefill_s=prefill_s, decode_s=(t1 - t0) - prefill_s, batches=len(phases))
    gross = reading.energy_j
    if not intervals or gross is None:
        return split
    split.shortest_prefill_s = min(b - a for a, b in intervals)
    split.prefill_power_j = _power_split(reading, intervals, t0, t1)
    counter_j, resolved = _counter_split(reading, intervals)
    split.prefill_counter_j = counter_j
    if counter_j is not None and resolved:
        prefill, split.method = counter_j, "counter"
    elif split.prefill_power_j is not None:
        prefill, split.method = split.prefill_power_j, "power"
        split.resolution_s = _power_resolution(reading)
        if split.shortest_prefill_s < split.resolution_s:
            split.flags.append("phase_unresolved")
            split.warnings.append(
                f"prefill phases as short as {split.shortest_prefill_s * 1000:.0f} ms are below "
                f"what the power curve resolves ({split.resolution_s * 1000:.0f} ms: poll period "
                "or NVML's power averaging) and the energy counter could not split them; the "
                "prefill/decode split is approximate"
            )
    else:
        return split
    split.prefill_energy_j = min(max(prefill, 0.0), gross)
    split.decode_energy_j = gross - split.prefill_energy_j
    return split
