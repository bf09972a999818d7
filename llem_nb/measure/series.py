"""The window's timeseries: power, temperature, clocks, memory and phase, per GPU, over time.

Rows sit on a grid of at most ``MAX_HZ`` per second across the window (its first edge, or
its first power sample, to its second edge): ``power_w`` is the mean power over the row's bin
(energy-preserving, from the polled power curve), the state columns are the latest
snapshot at the row's time (snapshots come less often than power samples), ``phase`` is
prefill / decode / "" outside the window. The file format lives in ``results.timeseries``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.integrate import PowerCurve
from llem_nb.results.timeseries import COLUMNS, MAX_HZ, Timeseries


def _phase(t: float, intervals: Sequence[tuple[float, float]], t0: float, t1: float) -> str:
    if any(a <= t < b for a, b in intervals):
        return "prefill"
    return "decode" if t0 <= t <= t1 else ""


def _grid(reading: EnergyReading, t0: float, t1: float) -> list[float]:
    """Row times: every 1 / ``MAX_HZ`` s across the window (where power was polled)."""
    times = sorted(s.t for s in reading.samples)
    if len(times) < 2:
        return times
    start, end = max(times[0], t0), min(times[-1], t1)
    if end <= start:
        return []
    step = 1 / MAX_HZ
    n = max(1, math.ceil((end - start) / step - 1e-9))
    return [start + i * step for i in range(n + 1)]


def build_timeseries(
    reading: EnergyReading,
    t0: float,
    t1: float,
    phases: Sequence[tuple[float, float]] = (),
    meta: Mapping[str, Any] | None = None,
) -> Timeseries | None:
    """The window's rows (≤ ``MAX_HZ`` per GPU); None when the meter kept no power or state."""
    grid = _grid(reading, t0, t1)
    states = sorted(reading.states, key=lambda s: s.t)
    if len(grid) < 2 or not states or not reading.devices:
        return None
    state_times = [s.t for s in states]
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for k, device in enumerate(reading.devices):
        curve = PowerCurve(reading.samples, k)
        for j, t in enumerate(grid):
            end = grid[j + 1] if j + 1 < len(grid) else t + 1 / MAX_HZ
            joules = curve.integral(t, end) if len(curve) >= 2 else None
            state = states[max(0, bisect.bisect_right(state_times, t) - 1)]
            cols["t_s"].append(t - t0)
            cols["gpu"].append(device.label)
            cols["gpu_index"].append(device.index)
            cols["power_w"].append(None if joules is None else joules / (end - t))
            cols["temperature_c"].append(state.temperature_c[k])
            cols["sm_clock_mhz"].append(state.sm_clock_mhz[k])
            cols["memory_used_mib"].append(state.memory_used_mib[k])
            cols["throttle_reasons"].append(state.throttle_reasons[k])
            cols["phase"].append(_phase(t, phases, t0, t1))
    info = {
        "window_s": t1 - t0,
        "phases_s": [[a - t0, b - t0] for a, b in phases],
        "gpus": [d.label for d in reading.devices],
        "power_method": [d.power_method for d in reading.devices],
        **(meta or {}),
    }
    return Timeseries(cols, info)
