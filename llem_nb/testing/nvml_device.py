"""The device model behind the NVML simulator: how one simulated GPU behaves, by the clock.

``FakeGpu`` holds a power trace and the NVML behaviours that shape what a meter reads:
an energy counter that advances in steps (``counter_update_s``), ``nvmlDeviceGetPowerUsage``
as a moving average (``power_avg_s``, NVIDIA's documented default for the architecture),
read latency, clocks, temperature, throttle reasons, power limit, ECC, XID events,
processes, MIG. ``llem_nb.testing.nvml.FakeNvml`` answers pynvml calls from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llem_nb.testing.nvml_errors import NVMLError, NVMLError_Unknown
from llem_nb.testing.traces import Trace, constant, numeric

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_FI_DEV_POWER_INSTANT = 186
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_HOPPER = 9
nvmlEventTypeXidCriticalError = 0x8

Value = float | Callable[[float], float]


def documented_power_avg_s(architecture: int, name: str) -> float:
    """NVIDIA's word on ``nvmlDeviceGetPowerUsage``: a 1 s average on Ampere and later
    except GA100 (A100), instantaneous on GA100 and older architectures."""
    return 1.0 if architecture >= NVML_DEVICE_ARCH_AMPERE and "A100" not in name else 0.0


@dataclass
class FakeGpu:
    """One simulated GPU (see the module docstring for the behaviour each field controls).

    ``fail_after_s``: every call raises ``NVMLError_GpuIsLost`` from then on.
    ``counter_reset_at_s``: the counter restarts from 0 (a driver reload);
    ``counter_wrap_mj``: it wraps modulo that many mJ. ``power_scale`` scales power reads
    only (a counter and a power curve that disagree). ``power_gaps`` / ``counter_gaps``:
    (start, end) spans in which that read fails with ``power_gap_error`` (a transient error)
    or reports not supported. ``events``: (time, xid) critical errors.
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    power_w: Trace | Callable[[float], float] | float = 100.0
    architecture: int = NVML_DEVICE_ARCH_HOPPER
    counter_update_s: float = 0.0
    counter_phase_s: float = 0.0
    power_avg_s: float | None = None
    power_update_s: float = 0.0
    read_latency_s: float = 0.0
    counter_supported: bool = True
    power_supported: bool = True
    instant_power: bool = True
    mig: bool = False
    mig_uuids: tuple[str, ...] = ()
    fail_after_s: float | None = None
    counter_start_mj: int = 0
    counter_reset_at_s: float | None = None
    counter_wrap_mj: int | None = None
    temperature_c: Value = 40
    memory_total_b: int = 80 * 2**30
    memory_used_b: int = 2**30
    power_limit_w: Value = 700.0
    sm_clock_mhz: Value = 1980
    mem_clock_mhz: Value = 2619
    max_sm_clock_mhz: float = 1980
    throttle_reasons: int | Callable[[float], int] = 0
    persistence_mode: bool = True
    processes: list[tuple[int, int]] = field(default_factory=list)
    power_scale: float = 1.0
    power_gaps: tuple[tuple[float, float], ...] = ()
    counter_gaps: tuple[tuple[float, float], ...] = ()
    gap_error: type[NVMLError] = NVMLError_Unknown
    ecc_uncorrected: int | Callable[[float], int] | None = 0
    events: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = self.power_w
        self.trace = p if isinstance(p, Trace) else numeric(p) if callable(p) else constant(p)
        if self.power_avg_s is None:
            self.power_avg_s = documented_power_avg_s(self.architecture, self.name)

    def _energy_j(self, t: float) -> float:
        """Joules since 0 (the trace's first value held before 0)."""
        return self.trace.energy(t) if t >= 0 else self.trace(0.0) * t

    def average_w(self, t: float) -> float:
        """What ``nvmlDeviceGetPowerUsage`` reports at ``t`` (before scaling)."""
        if self.power_update_s > 0:
            t = math.floor(t / self.power_update_s) * self.power_update_s
        window = self.power_avg_s or 0.0
        if window <= 0:
            return self.trace(t)
        return (self._energy_j(t) - self._energy_j(t - window)) / window

    def power_mw(self, t: float, *, instant: bool) -> int | None:
        """The power reading (mW) at ``t``; None where the read reports not supported."""
        if not self.power_supported:
            return None
        watts = self.trace(t) if instant else self.average_w(t)
        return round(watts * self.power_scale * 1000)

    def last_tick(self, t: float) -> float:
        """When the energy counter last updated at or before ``t``."""
        period = self.counter_update_s
        if period <= 0:
            return t
        return self.counter_phase_s + math.floor((t - self.counter_phase_s) / period) * period

    def counter_mj(self, t: float) -> int:
        """The counter at ``t``: start value + energy up to its last update (or a reset)."""
        tick = self.last_tick(t)
        if self.counter_reset_at_s is not None and tick >= self.counter_reset_at_s:
            value = math.floor(1000 * self.trace.integral(self.counter_reset_at_s, tick))
        else:
            value = self.counter_start_mj + math.floor(1000 * self._energy_j(tick))
        return value % self.counter_wrap_mj if self.counter_wrap_mj else value


def value_at(value: Any, t: float) -> Any:
    """A field that is a constant or a function of time, at ``t``."""
    return value(t) if callable(value) else value


def inside(spans: Sequence[tuple[float, float]], t: float) -> bool:
    """Whether ``t`` falls in one of the (start, end) spans."""
    return any(a <= t < b for a, b in spans)
