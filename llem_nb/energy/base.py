"""The energy meter interface: a window opens, a window closes, joules per device come back.

A meter never invents a number: a device it could not read reports ``energy_j=None``
with a warning, and a machine with no source at all uses ``NullMeter``
(``source="none"``). Meters that sample power (NVML) also return the samples, device
state snapshots and each GPU's energy-counter reads (``CounterTrack``), so the harness
can split energy by phase and write a timeseries. The window's edges are the meter's:
``start()`` returns the instant the window opened and the reading carries both edges,
on the meter's clock, which is the harness's and the backends' clock too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from llem_nb.energy.clock import SYSTEM_CLOCK, Clock
from llem_nb.energy.counter import CounterTrack


class PowerSample(NamedTuple):
    """One poll: ``time.perf_counter()`` and watts per metered device (None: read failed)."""

    t: float
    watts: tuple[float | None, ...]


class StateSample(NamedTuple):
    """A snapshot of each metered GPU's state (None where a value could not be read)."""

    t: float
    temperature_c: tuple[float | None, ...]
    sm_clock_mhz: tuple[float | None, ...]
    memory_used_mib: tuple[float | None, ...]
    throttle_reasons: tuple[int | None, ...]


@dataclass
class DeviceReading:
    """Energy of one device over a window. ``energy_j`` is None when it could not be read."""

    label: str
    energy_j: float | None
    method: str
    index: int | None = None
    uuid: str | None = None
    name: str = ""
    samples: int = 0
    power_integral_j: float | None = None
    idle_power_w: float | None = None
    mig: bool = False
    power_method: str = ""
    power_avg_s: float | None = None
    counter_update_s: float | None = None
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    check_j: tuple[float, float] | None = None
    """(counter joules, power joules) compared like with like when power readings are
    averaged (``llem_nb.energy.crosscheck``); None: the whole window's pair is compared."""

    def check_pair_j(self) -> tuple[float, float] | None:
        """The (counter, power) joules the cross-check compares; None unless both were read."""
        if self.method != "counter" or self.energy_j is None:
            return None
        if self.check_j is not None:
            return self.check_j if self.check_j[1] else None
        return (self.energy_j, self.power_integral_j) if self.power_integral_j else None

    @property
    def counter_vs_power_ratio(self) -> float | None:
        """Counter energy ÷ power-polling integral over the same span; None unless both
        were read."""
        pair = self.check_pair_j()
        return None if pair is None else pair[0] / pair[1]


@dataclass
class EnergyReading:
    """What a meter measured between ``start()`` and ``stop()`` (``t0``, ``t1`` on its clock).

    ``tracks[k]``: device ``k``'s counter reads (None without a counter);
    ``marks``: the phase boundaries the backend announced (label, instant);
    ``poll_interval_s``: the configured poll period (the samples' gaps are dithered).
    """

    source: str
    window_s: float
    devices: list[DeviceReading] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    samples: list[PowerSample] = field(default_factory=list)
    states: list[StateSample] = field(default_factory=list)
    tracks: list[CounterTrack | None] = field(default_factory=list)
    marks: list[tuple[str, float]] = field(default_factory=list)
    poll_interval_s: float | None = None
    t0: float = 0.0
    t1: float = 0.0

    @property
    def energy_j(self) -> float | None:
        """Sum over devices; None if no device was read or any device failed."""
        values = [d.energy_j for d in self.devices]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))

    @property
    def counter_vs_power_ratio(self) -> float | None:
        """Summed counter energy ÷ summed power integral, over devices that have both."""
        pairs = [pair for d in self.devices if (pair := d.check_pair_j()) is not None]
        power = sum(p for _, p in pairs)
        if not pairs or power <= 0:
            return None
        return sum(e for e, _ in pairs) / power


class EnergyMeter(ABC):
    """Base class: owns window timing and state checks; subclasses read hardware."""

    source: ClassVar[str] = "none"

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SYSTEM_CLOCK
        self._t0: float | None = None
        self.window_edges: tuple[float, float] = (0.0, 0.0)

    def start(self) -> float:
        """Open the window; returns the instant it opened (the window's first edge)."""
        if self._t0 is not None:
            raise RuntimeError("meter window already open; call stop() first")
        self._start()
        self._t0 = self.clock.now()
        return self._t0

    def stop(self) -> EnergyReading:
        """Close the window now (its second edge) and return what was measured over it."""
        if self._t0 is None:
            raise RuntimeError("meter window not open; call start() first")
        t1 = self.clock.now()
        t0, self._t0 = self._t0, None
        self.window_edges = (t0, t1)
        reading = self._stop(t1 - t0)
        reading.t0, reading.t1 = t0, t1
        return reading

    def idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean power per device label while idle for ``seconds``; {} when unsupported or 0 s.

        Needs a closed window; the meter keeps the values and later readings carry them.
        """
        if seconds <= 0:
            return {}
        if self._t0 is not None:
            raise RuntimeError("idle_power_w() needs a closed window; call stop() first")
        return self._idle_power_w(seconds)

    def _idle_power_w(self, seconds: float) -> dict[str, float]:
        return {}

    def mark(self, label: str, t: float) -> None:
        """A phase boundary at clock time ``t``: a hint to read counters soon; cheap, any thread."""

    def temperatures(self) -> dict[str, float]:
        """Current temperature per device label; {} when the meter cannot read any."""
        return {}

    def device_facts(self) -> list[dict[str, Any]]:
        """Per-device facts for the environment record (name, driver, clocks …); [] if none."""
        return []

    def other_processes(self) -> dict[str, list[int]]:
        """Processes other than ours using each metered device; {} when unknown."""
        return {}

    def describe(self) -> str:
        return self.source

    def close(self) -> None:
        """Release hardware handles; safe to call twice."""

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self, window_s: float) -> EnergyReading: ...
