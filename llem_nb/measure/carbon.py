"""CO₂ from measured energy: ``energy_kWh × PUE × grid intensity (gCO₂/kWh)``.

The intensity and PUE come from the experiment's ``carbon`` settings only; llem_nb never
looks them up over a network. Without an intensity the figures are None (NaN in a
DataFrame), never a default guess.
"""

from __future__ import annotations

from llem_nb.config.sections import CarbonConfig

J_PER_KWH = 3.6e6


def co2_grams(energy_j: float | None, carbon: CarbonConfig) -> float | None:
    """Grams of CO₂ for ``energy_j`` joules of device energy, or None when not computable."""
    if energy_j is None or carbon.grid_gco2_per_kwh is None:
        return None
    return energy_j / J_PER_KWH * carbon.pue * carbon.grid_gco2_per_kwh
