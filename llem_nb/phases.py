"""Prefill/decode energy for static batches.

Prefill is each batch's start → its first token; decode is the rest of the window. Two
methods, both recorded:

- ``counter``: the energy counter read at every boundary (``EnergyMeter.mark``), each
  read corrected back to its boundary with the power curve between boundary and read;
  prefill = Σ counter(first token) − counter(batch start), per GPU, summed.
- ``power``: each GPU's share of its power integral that falls in prefill intervals,
  times its window energy (so prefill + decode = gross whatever the source).

``counter`` is used where every boundary was read on every GPU whose energy came
from the counter, else ``power``; without phases or energy both are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llem_nb.energy.base import CounterMark, EnergyReading, PowerSample
from llem_nb.energy.integrate import integral

BATCH_START = "batch_start"
FIRST_TOKEN = "first_token"


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        whole = integral(reading.samples, k, t0, t1)
        if device.energy_j is None or not whole:
            return None
        part = sum(integral(reading.samples, k, a, b) or 0.0 for a, b in intervals)
        total += part / whole * device.energy_j
    return total


def _energy_at(mark: CounterMark, samples: Sequence[PowerSample], k: int) -> float | None:
    """Device ``k``'s counter (J) at the boundary: the read, less what flowed until the read."""
    value = mark.counters_j[k]
    if value is None:
        return None
    after = integral(samples, k, mark.t, mark.t_read) if mark.t_read > mark.t else 0.0
    return None if after is None else value - after


def _counter_split(reading: EnergyReading, phases: Sequence[tuple[float, float]]) -> float | None:
    marks = {(m.label, m.t): m for m in reading.marks}
    pairs = [(marks.get((BATCH_START, s)), marks.get((FIRST_TOKEN, f))) for s, f in phases]
    if not pairs or any(a is None or b is None for a, b in pairs):
        return None
    if any(d.method != "counter" for d in reading.devices):
        return None
    total = 0.0
    for k in range(len(reading.devices)):
        for start, first in pairs:
            assert start is not None and first is not None
            e0 = _energy_at(start, reading.samples, k)
            e1 = _energy_at(first, reading.samples, k)
            if e0 is None or e1 is None:
                return None
            total += e1 - e0
    return total


def split_phases(
    reading: EnergyReading, phases: Sequence[tuple[float, float]], t0: float, t1: float
) -> PhaseSplit:
    """Split the window's energy into prefill and decode (see the module docstring)."""
    intervals = clip(phases, t0, t1)
    prefill_s = sum(b - a for a, b in intervals)
    split = PhaseSplit(prefill_s=prefill_s, decode_s=(t1 - t0) - prefill_s, batches=len(phases))
    gross = reading.energy_j
    if not phases or gross is None:
        return split
    split.prefill_power_j = _power_split(reading, intervals, t0, t1)
    split.prefill_counter_j = _counter_split(reading, phases)
    if split.prefill_counter_j is not None:
        prefill, split.method = split.prefill_counter_j, "counter"
    elif split.prefill_power_j is not None:
        prefill, split.method = split.prefill_power_j, "power"
    else:
        return split
    split.prefill_energy_j = min(max(prefill, 0.0), gross)
    split.decode_energy_j = gross - split.prefill_energy_j
    return split
