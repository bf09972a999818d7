"""The counter-vs-power cross-check compares like with like, on averaged and instant power.

NVML's ``PowerUsage`` is a trailing 1 s average on Ampere and later: its integral over a
window lags the energy the counter saw. A healthy GPU must still give a ratio of 1 within
1 % on windows that start from idle, and a power sensor 10 % off must still be flagged.
"""

from __future__ import annotations

import pytest

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.measure.quality import assess
from llem_nb.testing import SimClock
from llem_nb.testing.nvml import FakeGpu, FakeNvml
from llem_nb.testing.traces import Trace, constant, prefill_decode, ramp, steps

LOAD_AT_S = 1.0
TRACES: dict[str, Trace] = {
    "constant": constant(250.0),
    "ramp": ramp(80.0, 420.0, 12.0),
    "step": steps([(0.0, 80.0), (LOAD_AT_S, 400.0)]),
    "prefill_decode": prefill_decode(
        idle_w=80.0,
        prefill_w=500.0,
        decode_w=300.0,
        start_s=LOAD_AT_S,
        prefill_s=0.15,
        decode_s=0.9,
        batches=40,
    ),
}


def window(trace: Trace, window_s: float, avg_s: float, **kw: float) -> EnergyReading:
    """One window opened just before the load starts (the GPU idle until then)."""
    gpu = FakeGpu(
        power_w=trace,
        counter_update_s=0.1,
        counter_phase_s=0.013,
        power_avg_s=avg_s,
        instant_power=avg_s == 0,
        read_latency_s=0.002,
        **kw,
    )
    fake = FakeNvml([gpu], clock=SimClock())
    meter = NvmlMeter([0], nvml=fake, clock=fake.clock)
    fake.clock.sleep(LOAD_AT_S - 0.5)
    meter.start()
    fake.clock.sleep(window_s)
    reading = meter.stop()
    meter.close()
    return reading


@pytest.mark.parametrize("window_s", [5.0, 10.0, 30.0])
@pytest.mark.parametrize("avg_s", [0.0, 1.0])
@pytest.mark.parametrize("shape", list(TRACES))
def test_healthy_gpu_ratio_is_one(shape: str, avg_s: float, window_s: float) -> None:
    reading = window(TRACES[shape], window_s, avg_s)
    ratio = reading.devices[0].counter_vs_power_ratio
    assert ratio is not None
    assert ratio == pytest.approx(1.0, abs=0.01), f"{shape}, {avg_s:g} s average, {window_s:g} s"
    assert reading.counter_vs_power_ratio == pytest.approx(ratio)
    assert "counter_power_disagree" not in assess(reading, window_s=window_s).flags


@pytest.mark.parametrize(("scale", "flagged"), [(1.10, True), (0.90, True), (1.02, False)])
@pytest.mark.parametrize("avg_s", [0.0, 1.0])
def test_a_miscalibrated_sensor_is_flagged(scale: float, flagged: bool, avg_s: float) -> None:
    reading = window(TRACES["step"], 5.0, avg_s, power_scale=scale)
    ratio = reading.devices[0].counter_vs_power_ratio
    assert ratio == pytest.approx(1 / scale, abs=0.01)
    assert ("counter_power_disagree" in assess(reading, window_s=5.0).flags) is flagged
