"""Layer 8, plots: matplotlib figures read from a results DataFrame only.

- ``energy_per_token``: energy per output token vs batch size, gross and net, 95 % intervals.
- ``throughput_vs_energy``: one point per configuration, the Pareto front highlighted.
- ``power_timeseries``: power over an experiment, window and phases shaded.
- ``prefill_decode``: energy per output token split into prefill and decode.
- ``explore``: any column against any other, by hue and facet.
"""

from __future__ import annotations

from llem_nb.plots.base import UNITS, label
from llem_nb.plots.energy import energy_per_token, explore, pareto_front, throughput_vs_energy
from llem_nb.plots.phases import power_timeseries, prefill_decode

__all__ = [
    "UNITS",
    "energy_per_token",
    "explore",
    "label",
    "pareto_front",
    "power_timeseries",
    "prefill_decode",
    "throughput_vs_energy",
]
