"""What this GPU's NVML actually does: the energy counter's update period, how
``nvmlDeviceGetPowerUsage`` averages, and what each read costs; and a trace of it.

Idle first: the counter is read back to back, so every update is bracketed by two reads
a few ms apart; the update period is the median gap between updates (0 when every read
moves). Then a load step (the caller's ``load``, e.g. a matmul loop on the GPU): the
instantaneous power (or, without that field, the counter's own rate) jumps at once,
while a moving average rises as a ramp as long as its window; the window is the ramp's
10 %→90 % time over 0.8. Every read is kept as a trace (time, counter mJ, averaged and
instantaneous mW), written as CSV: a fixture the simulator (``llem_nb.testing``) can be
checked against.
"""

from __future__ import annotations

import csv
import itertools
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llem_nb.energy.clock import Clock
from llem_nb.energy.device import GpuDevice

Row = tuple[float, float | None, float | None, float | None]
"""(seconds since the probe started, counter mJ, averaged power mW, instantaneous mW)."""


@dataclass
class Probe:
    """What the probe found (None: could not be read or could not be told)."""

    counter_update_s: float | None
    counter_live: bool | None
    power_avg_s: float | None
    read_ms: dict[str, float]
    step_w: float | None
    trace: list[Row] = field(default_factory=list)

    def lines(self) -> list[str]:
        def fmt(value: float | None, unit: str, scale: float = 1.0) -> str:
            return "?" if value is None else f"{value * scale:.3g} {unit}"

        live = {True: " (live)", False: "", None: ""}[self.counter_live]
        reads = ", ".join(f"{k} {v:.2f} ms" for k, v in self.read_ms.items())
        return [
            f"energy counter update period : {fmt(self.counter_update_s, 'ms', 1000)}{live}",
            f"PowerUsage averaging window  : {fmt(self.power_avg_s, 's')}",
            f"load step seen               : {fmt(self.step_w, 'W')}",
            f"read cost (median)           : {reads or '?'}",
        ]

    def write_trace(self, path: Path, max_rows: int = 3000) -> Path:
        """The trace as CSV, thinned evenly to at most ``max_rows`` rows (a few hundred KB)."""
        step = max(1, -(-len(self.trace) // max_rows))
        with path.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["t_s", "counter_mj", "power_usage_mw", "power_instant_mw"])
            out.writerows(self.trace[::step])
        return path


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:
        return None


class _Reader:
    def __init__(self, device: GpuDevice, clock: Clock) -> None:
        self.device, self.clock = device, clock
        self.t0 = clock.now()
        self.trace: list[Row] = []
        self.costs: dict[str, list[float]] = {"counter": [], "power": [], "instant": []}

    def _timed(self, kind: str, call: Callable[[], Any]) -> Any:
        before = self.clock.now()
        value = _try(call)
        self.costs[kind].append((self.clock.now() - before) * 1000)
        return value

    def instant(self) -> float | None:
        value = self._timed("instant", self.device.instant_power_mw)
        return float(value) if value else None

    def row(self) -> Row:
        """Counter, averaged power and instantaneous power, read one after another."""
        t = self.clock.now()
        counter = self._timed("counter", self.device.energy_mj)
        usage = self._timed("power", self.device.power_mw)
        row: Row = (
            t - self.t0,
            None if counter is None else float(counter),
            None if usage is None else float(usage),
            self.instant(),
        )
        self.trace.append(row)
        return row

    def counter_only(self) -> None:
        t = self.clock.now()
        counter = self._timed("counter", self.device.energy_mj)
        self.trace.append((t - self.t0, None if counter is None else float(counter), None, None))


def _update_period(rows: list[Row]) -> tuple[float | None, bool | None]:
    """Median time between counter changes in back-to-back reads; (0, True) if every read moved."""
    reads = [(t, c) for t, c, _, _ in rows if c is not None]
    if len(reads) < 3:
        return None, None
    changes = [t for (_, a), (t, b) in itertools.pairwise(reads) if b != a]
    if len(changes) >= len(reads) - 2:
        return 0.0, True
    if len(changes) < 3:
        return None, False
    return statistics.median(b - a for a, b in itertools.pairwise(changes)), False


def _ramp_s(rows: list[Row], column: int, start_s: float) -> tuple[float | None, float | None]:
    """(10 %→90 % rise time / 0.8, step size in W) of ``column`` after ``start_s``."""
    before = [float(v) for r in rows if r[0] < start_s and (v := r[column]) is not None]
    after = [(r[0], float(v)) for r in rows if r[0] >= start_s and (v := r[column]) is not None]
    if len(before) < 3 or len(after) < 10:
        return None, None
    low = statistics.median(before[-10:])
    high = statistics.median(v for _, v in after[-max(3, len(after) // 5) :])
    if high - low <= 0.05 * max(low, 1.0):
        return None, None

    def crossing(fraction: float) -> float | None:
        level = low + fraction * (high - low)
        return next((t for t, v in after if v >= level), None)

    t10, t90 = crossing(0.1), crossing(0.9)
    if t10 is None or t90 is None:
        return None, (high - low) / 1000
    return max(0.0, (t90 - t10) / 0.8), (high - low) / 1000


def _counter_rate(rows: list[Row], span_s: float = 0.05) -> list[Row]:
    """The counter's own mean power (mW) over spans of at least ``span_s``, as column 3."""
    reads = [(t, c) for t, c, _, _ in rows if c is not None]
    out: list[Row] = []
    j = 0
    for t, c in reads:
        while j < len(reads) and t - reads[j][0] > span_s:
            j += 1
        if j > 0 and t > reads[j - 1][0]:
            t0, c0 = reads[j - 1]
            out.append((t, None, None, (c - c0) / (t - t0)))
    return out


def probe_gpu(
    device: GpuDevice,
    clock: Clock,
    load: Callable[[float], None],
    *,
    idle_s: float = 1.5,
    load_s: float = 3.0,
    poll_s: float = 0.005,
) -> Probe:
    """Idle reads back to back, then reads while ``load(load_s)`` runs on another thread."""
    reader = _Reader(device, clock)
    end = clock.now() + idle_s / 2
    while clock.now() < end:
        before = clock.now()
        reader.counter_only()
        if clock.now() <= before:
            clock.sleep(poll_s / 5)
    idle_rows = list(reader.trace)
    end = clock.now() + idle_s / 2
    while clock.now() < end:
        reader.row()
        clock.sleep(poll_s)
    start_s = clock.now() - reader.t0
    worker = threading.Thread(target=load, args=(load_s,), daemon=True)
    worker.start()
    end = clock.now() + load_s
    while clock.now() < end:
        reader.row()
        clock.sleep(poll_s)
    worker.join(timeout=load_s + 30)
    period, live = _update_period(idle_rows)
    rows = reader.trace
    avg_s, step_w = _ramp_s(rows, 2, start_s)
    reference = rows if any(r[3] is not None for r in rows) else _counter_rate(rows)
    reference_s, _ = _ramp_s(reference, 3, start_s)
    if avg_s is not None and reference_s is not None:
        avg_s = max(0.0, avg_s - reference_s)
    costs = {k: statistics.median(v) for k, v in reader.costs.items() if v}
    return Probe(period, live, avg_s, costs, step_w, rows)
