"""Layer 8, plots: matplotlib figures read from a results DataFrame only.

- ``energy_per_token``: energy per output token vs batch size, gross and net.
- ``throughput_vs_energy``: one point per configuration, the Pareto front highlighted.
- ``reference``: ours next to the published ML.ENERGY figures, matched by model and batch.
- ``power_timeseries``: power over an experiment, window and phases shaded.
- ``prefill_decode``: energy per output token split into prefill and decode.
- ``explore``: any column against any other, by hue and facet.
- ``energy_boundary``: GPU, CPU and DRAM energy per token per configuration, stacked.
- ``energy_vs_rate`` / ``latency_vs_rate``: served runs against the offered request rate.

Each returns a matplotlib ``Figure`` that pyplot does not manage: as the last line of a
Jupyter cell it draws once; assigned to a name it draws when shown (``fig`` or
``display(fig)``). Each takes ``ax=`` to draw into your own axes, and ``**kwargs`` for its
main matplotlib call. Every error bar is a 95 % confidence interval over cycles.
"""

from __future__ import annotations

from llem_nb.plots.base import UNITS, PlotFigure, label
from llem_nb.plots.boundary import energy_boundary
from llem_nb.plots.energy import energy_per_token, explore, pareto_front, throughput_vs_energy
from llem_nb.plots.phases import power_timeseries, prefill_decode
from llem_nb.plots.published import match_reference, reference
from llem_nb.plots.serving import energy_vs_rate, latency_vs_rate

__all__ = [
    "UNITS",
    "PlotFigure",
    "energy_boundary",
    "energy_per_token",
    "energy_vs_rate",
    "explore",
    "label",
    "latency_vs_rate",
    "match_reference",
    "pareto_front",
    "power_timeseries",
    "prefill_decode",
    "reference",
    "throughput_vs_energy",
]
