"""Before the window: warm the engine up, then (optionally) let the GPUs cool down.

Warm-up runs a fixed number of batches, or (``warmup.mode="cv"``) keeps going until
the coefficient of variation of the last ``warmup.window`` batch latencies drops under
``warmup.cv_threshold`` (never past ``warmup.max_runs``). The window cooldown then waits
until every measured GPU is within ``cooldown.until_within_c`` °C of its idle
temperature (never past ``cooldown.max_s``). Both return a record of what happened,
stored on the result; neither decides anything silently.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llem_nb.config.sections import WarmupConfig, WindowCooldownConfig


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample standard deviation ÷ mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


@dataclass
class WarmupRecord:
    """Warm-up runs done, their latencies, the final CV and (cv mode) whether it converged."""

    mode: str
    runs: int
    latencies_s: list[float] = field(default_factory=list)
    cv: float | None = None
    converged: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warm_up(run_once: Callable[[], float], config: WarmupConfig) -> WarmupRecord:
    """Call ``run_once`` (it returns one run's latency in seconds) as ``config`` says."""
    latencies: list[float] = []
    if config.mode == "fixed":
        for _ in range(config.runs):
            latencies.append(run_once())
        cv = coefficient_of_variation(latencies[-config.window :])
        return WarmupRecord("fixed", len(latencies), latencies, cv)
    minimum = max(config.runs, config.window)
    cv = None
    while len(latencies) < config.max_runs:
        latencies.append(run_once())
        if len(latencies) >= minimum:
            cv = coefficient_of_variation(latencies[-config.window :])
            if cv is not None and cv < config.cv_threshold:
                return WarmupRecord("cv", len(latencies), latencies, cv, True)
    return WarmupRecord("cv", len(latencies), latencies, cv, False)


@dataclass
class CooldownRecord:
    """Per GPU label: idle reference, temperature at start and end; waited seconds; outcome."""

    within_c: float
    idle_c: dict[str, float]
    start_c: dict[str, float]
    end_c: dict[str, float]
    waited_s: float
    reached: bool | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cool_down(
    read: Callable[[], dict[str, float]],
    idle_c: dict[str, float],
    config: WindowCooldownConfig,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CooldownRecord | None:
    """Wait until ``read()`` is within ``config.until_within_c`` of idle on every GPU.

    ``idle_c`` holds each GPU's idle temperature (``config.idle_c`` overrides it). None
    when the cooldown is off; a record saying why when no temperature is readable.
    """
    within = config.until_within_c
    if within is None:
        return None
    t0 = clock()
    start = read()
    idle = {k: config.idle_c if config.idle_c is not None else idle_c.get(k) for k in start}
    unknown = sorted(k for k, v in idle.items() if v is None)
    target = {k: v for k, v in idle.items() if v is not None}
    if not start or unknown:
        why = "no GPU temperature readable" if not start else f"no idle value for {unknown}"
        return CooldownRecord(within, target, start, start, 0.0, None, f"cooldown skipped: {why}")
    now = start
    while True:
        hot = sorted(k for k, t in now.items() if t > target[k] + within)
        waited = clock() - t0
        if not hot or waited >= config.max_s - 1e-6:
            break
        sleep(min(config.poll_s, config.max_s - waited))
        now = read()
    note = None
    if hot:
        worst = ", ".join(f"{k} {now[k]:.0f}°C" for k in hot)
        note = f"cooldown cap {config.max_s:g} s reached; still hot: {worst}"
    return CooldownRecord(within, target, start, now, clock() - t0, not hot, note)
