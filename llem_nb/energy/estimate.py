"""EstimateMeter: a CPU energy *estimate* for machines with no readable energy source.

Model::

    energy_j = cpu_seconds × cpu_w_per_core

where ``cpu_seconds`` is the CPU time (user + system) this process and its waited-for
children used during the window, from ``os.times()``, and ``cpu_w_per_core`` is the
power of one fully busy core (``energy.cpu_w_per_core``, default 10 W). So one core
busy for 1 s is 10 J; four cores busy for 1 s is 40 J; a process that sleeps costs 0 J.
It ignores idle and uncore power, DRAM, frequency scaling, other processes and any
GPU. It is a rough, comparable-on-one-machine number, never a measurement: every
reading says so in a warning and carries the flag ``energy_estimated``.
"""

from __future__ import annotations

import os
import time

from llem_nb.energy.base import DeviceReading, EnergyMeter, EnergyReading


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class EstimateMeter(EnergyMeter):
    """CPU time × watts per busy core; see the module docstring for the model."""

    source = "estimate"

    def __init__(self, cpu_w_per_core: float = 10.0, *, note: str | None = None) -> None:
        super().__init__()
        if cpu_w_per_core <= 0:
            raise ValueError("cpu_w_per_core must be > 0")
        self.cpu_w_per_core = cpu_w_per_core
        self.note = note
        self._cpu0 = 0.0
        self._idle: dict[str, float] = {}

    @property
    def model(self) -> str:
        return (
            f"CPU time of this process and its children × {self.cpu_w_per_core:g} W per busy core"
        )

    def _start(self) -> None:
        self._cpu0 = cpu_seconds()

    def _stop(self, window_s: float) -> EnergyReading:
        busy_s = max(cpu_seconds() - self._cpu0, 0.0)
        warnings = [f"energy is an estimate, not a measurement: {self.model}"]
        if self.note:
            warnings.append(self.note)
        device = DeviceReading(
            label="cpu",
            energy_j=busy_s * self.cpu_w_per_core,
            method="estimate",
            name="CPU (estimated)",
            idle_power_w=self._idle.get("cpu"),
        )
        return EnergyReading(
            source=self.source,
            window_s=window_s,
            devices=[device],
            warnings=warnings,
            flags=["energy_estimated"],
        )

    def idle_power_w(self, seconds: float) -> dict[str, float]:
        """The model's idle power: this process's background CPU use over ``seconds``, in W."""
        if seconds <= 0:
            return {}
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        busy_s = max(cpu_seconds() - cpu0, 0.0)
        self._idle = {"cpu": busy_s * self.cpu_w_per_core / (time.perf_counter() - t0)}
        return dict(self._idle)

    def describe(self) -> str:
        return f"estimate ({self.model})"
