"""NullMeter: no energy source here; the result says so (``energy_source="none"``)."""

from __future__ import annotations

from llem_nb.energy.base import EnergyMeter, EnergyReading


class NullMeter(EnergyMeter):
    source = "none"

    def __init__(self, reason: str = "no energy source requested or available") -> None:
        super().__init__()
        self.reason = reason

    def _start(self) -> None:
        return None

    def _stop(self, window_s: float) -> EnergyReading:
        return EnergyReading(
            source=self.source,
            window_s=window_s,
            warnings=[f"energy not measured: {self.reason}"],
            flags=["no_energy_source"],
        )
