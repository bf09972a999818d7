"""The counter-vs-power cross-check compares like with like, on averaged and instant power.

NVML's ``PowerUsage`` is a trailing 1 s average on Ampere and later: its integral over a
window lags the energy the counter saw. A healthy GPU must still give a ratio of 1 within
1 % on windows that start from idle, and a power sensor 10 % off must still be flagged.
"""

from __future__ import annotations

import pytest

from llem_nb.energy.base import EnergyReading
from llem_nb.measure.quality import assess
from llem_nb.testing.accuracy import RATIO_GOAL, TRACES, cross_check_window
from llem_nb.testing.traces import Trace


def window(trace: Trace, window_s: float, avg_s: float, **kw: float) -> EnergyReading:
    return cross_check_window(trace, window_s, avg_s, **kw)


@pytest.mark.parametrize("window_s", [5.0, 10.0, 30.0])
@pytest.mark.parametrize("avg_s", [0.0, 1.0])
@pytest.mark.parametrize("shape", list(TRACES))
def test_healthy_gpu_ratio_is_one(shape: str, avg_s: float, window_s: float) -> None:
    reading = window(TRACES[shape], window_s, avg_s)
    ratio = reading.devices[0].counter_vs_power_ratio
    assert ratio is not None
    assert ratio == pytest.approx(1.0, abs=RATIO_GOAL), (
        f"{shape}, {avg_s:g} s average, {window_s:g} s"
    )
    assert reading.counter_vs_power_ratio == pytest.approx(ratio)
    assert "counter_power_disagree" not in assess(reading, window_s=window_s).flags


@pytest.mark.parametrize(("scale", "flagged"), [(1.10, True), (0.90, True), (1.02, False)])
@pytest.mark.parametrize("avg_s", [0.0, 1.0])
def test_a_miscalibrated_sensor_is_flagged(scale: float, flagged: bool, avg_s: float) -> None:
    reading = window(TRACES["step"], 5.0, avg_s, power_scale=scale)
    ratio = reading.devices[0].counter_vs_power_ratio
    assert ratio == pytest.approx(1 / scale, abs=0.01)
    assert ("counter_power_disagree" in assess(reading, window_s=5.0).flags) is flagged
