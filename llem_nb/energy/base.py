"""The energy meter interface: a window opens, a window closes, joules per device come back.

A meter never invents a number: a device it could not read reports ``energy_j=None``
with a warning, and a machine with no source at all uses ``NullMeter``
(``source="none"``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar


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


@dataclass
class EnergyReading:
    """What a meter measured between ``start()`` and ``stop()``."""

    source: str
    window_s: float
    devices: list[DeviceReading] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def energy_j(self) -> float | None:
        """Sum over devices; None if no device was read or any device failed."""
        values = [d.energy_j for d in self.devices]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))


class EnergyMeter(ABC):
    """Base class: owns window timing and state checks; subclasses read hardware."""

    source: ClassVar[str] = "none"

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.perf_counter
        self._t0: float | None = None

    def start(self) -> None:
        if self._t0 is not None:
            raise RuntimeError("meter window already open; call stop() first")
        self._start()
        self._t0 = self._clock()

    def stop(self) -> EnergyReading:
        if self._t0 is None:
            raise RuntimeError("meter window not open; call start() first")
        t1 = self._clock()
        window_s = t1 - self._t0
        self._t0 = None
        return self._stop(window_s)

    def idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean power per device label while idle for ``seconds``; {} when unsupported."""
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
