"""The GPU check's NVML probe finds, on simulated GPUs, the behaviour they were given."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.energy.device import Nvml
from llem_nb.gpu_check.probe import probe_gpu
from llem_nb.testing import FakeGpu, FakeNvml, LiveTrace, SimClock


def probe(**gpu: object) -> tuple[object, FakeNvml]:
    clock = SimClock()
    trace = LiveTrace(90.0)
    fake = FakeNvml([FakeGpu(power_w=trace, read_latency_s=0.002, **gpu)], clock=clock)  # type: ignore[arg-type]
    nvml = Nvml(fake)
    nvml.init()

    def load(seconds: float) -> None:
        trace.set(fake.now(), 390.0)

    return probe_gpu(nvml.device(0), clock, load, idle_s=2.0, load_s=3.0), fake


@pytest.mark.parametrize(("update_s", "avg_s"), [(0.1, 1.0), (0.02, 1.0), (0.0, 0.0)])
def test_the_probe_measures_update_period_and_averaging(update_s: float, avg_s: float) -> None:
    found, _ = probe(counter_update_s=update_s, power_avg_s=avg_s, instant_power=True)
    assert found.counter_update_s == pytest.approx(update_s, abs=0.005)  # type: ignore[attr-defined]
    assert found.counter_live is (update_s == 0)  # type: ignore[attr-defined]
    assert found.power_avg_s == pytest.approx(avg_s, abs=0.05)  # type: ignore[attr-defined]
    assert found.step_w == pytest.approx(300.0, rel=0.02)  # type: ignore[attr-defined]
    assert found.read_ms["counter"] == pytest.approx(2.0)  # type: ignore[attr-defined]


def test_without_the_instant_field_the_counter_is_the_reference(tmp_path: Path) -> None:
    found, _ = probe(counter_update_s=0.0, power_avg_s=1.0, instant_power=False)
    assert found.power_avg_s == pytest.approx(1.0, abs=0.1)  # type: ignore[attr-defined]
    path = found.write_trace(tmp_path / "trace.csv", max_rows=500)  # type: ignore[attr-defined]
    lines = path.read_text().splitlines()
    assert lines[0] == "t_s,counter_mj,power_usage_mw,power_instant_mw"
    assert 100 < len(lines) <= 502
