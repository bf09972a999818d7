"""NvmlMeter beyond the window total: power sources, gaps, states, marks, facts, processes."""

from __future__ import annotations

import os
from typing import Any

import pytest

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import (
    check_visible_devices,
    nvml_indices_for,
    visible_temperatures,
)
from llem_nb.energy.nvml_facts import own_pids
from llem_nb.errors import PreflightError
from llem_nb.testing import FakeGpu, FakeNvml, SimClock, Trace, constant, ramp, steps
from llem_nb.testing.nvml import NVMLError_NotSupported

REL = 0.005
POLL_S = 0.002


def gpu(n: int, power_w: Trace | float, **kw: Any) -> FakeGpu:
    return FakeGpu(uuid=f"GPU-{n:08x}-aaaa-bbbb-cccc-dddddddddddd", power_w=power_w, **kw)


def sim(*gpus: FakeGpu) -> FakeNvml:
    return FakeNvml(list(gpus), clock=SimClock())


def window(
    fake: FakeNvml, seconds: float = 0.3, poll: float = POLL_S, marks: list[str] | None = None
) -> tuple[NvmlMeter, EnergyReading, float, float]:
    """One window in virtual time (optionally marking boundaries); meter, reading, edges."""
    clock = fake.clock
    meter = NvmlMeter(None, poll_interval_s=poll, state_interval_s=0.1, nvml=fake, clock=clock)
    meter.start()
    for label in marks or []:
        clock.sleep(seconds / (len(marks or []) + 1))
        meter.mark(label, clock())
    clock.sleep(seconds / (len(marks or []) + 1))
    reading = meter.stop()
    meter.close()
    return meter, reading, fake.elapsed(reading.t0), fake.elapsed(reading.t1)


@pytest.mark.parametrize("instant", [True, False], ids=["instant-field", "power-usage"])
def test_both_power_sources_integrate_the_trace(instant: bool) -> None:
    trace = ramp(100.0, 400.0, 1.0)
    fake = sim(gpu(0, trace, instant_power=instant, counter_supported=False, power_avg_s=0.0))
    _, reading, t0, t1 = window(fake)
    dev = reading.devices[0]
    assert dev.power_method == ("instant" if instant else "power_usage")
    assert dev.method == "power"
    assert dev.energy_j == pytest.approx(trace.integral(t0, t1), rel=REL)


@pytest.mark.parametrize("trace", [constant(220.0), ramp(50.0, 450.0, 1.0)], ids=["const", "ramp"])
def test_missing_samples_are_bridged_exactly_on_linear_traces(trace: Trace) -> None:
    fake = sim(gpu(0, trace, counter_supported=False, gap_error=NVMLError_NotSupported))
    gap = (fake.now() + 0.08, fake.now() + 0.18)
    fake.gpus[0].power_gaps = (gap,)
    _, reading, t0, t1 = window(fake)
    dev = reading.devices[0]
    inside = [s for s in reading.samples if t0 <= fake.elapsed(s.t) <= t1]
    read = sum(1 for s in inside if s.watts[0] is not None)
    assert read < len(inside)
    assert dev.samples == read
    assert dev.energy_j == pytest.approx(trace.integral(t0, t1), rel=REL)
    assert reading.flags == ["counter_unsupported"]


def test_counter_vs_power_ratio_per_device_and_summed() -> None:
    fake = sim(gpu(0, 200.0, power_scale=0.9), gpu(1, 100.0))
    _, reading, _, _ = window(fake)
    first, second = reading.devices
    assert first.counter_vs_power_ratio == pytest.approx(1 / 0.9, rel=REL)
    assert second.counter_vs_power_ratio == pytest.approx(1.0, rel=REL)
    expected = (200.0 + 100.0) / (180.0 + 100.0)
    assert reading.counter_vs_power_ratio == pytest.approx(expected, rel=REL)


def test_ratio_is_none_without_a_counter() -> None:
    _, reading, _, _ = window(sim(gpu(0, 200.0, counter_supported=False)), seconds=0.05)
    assert reading.devices[0].counter_vs_power_ratio is None
    assert reading.counter_vs_power_ratio is None


def test_mig_device_is_marked_and_flagged() -> None:
    _, reading, t0, t1 = window(sim(gpu(0, 300.0, mig=True)))
    assert reading.devices[0].mig is True
    assert reading.devices[0].energy_j == pytest.approx(300.0 * (t1 - t0), rel=REL)
    assert reading.flags == ["mig_whole_gpu"]


def test_states_are_snapshotted_at_most_every_state_interval() -> None:
    """On the simulated clock the schedule is exact: no gap under the state interval but the
    last (the closing snapshot), and none over it by more than one poll."""
    fake = sim(gpu(0, 150.0, temperature_c=lambda t: 30 + 10 * t, throttle_reasons=0x4))
    _, reading, _, _ = window(fake, seconds=0.5)
    gaps = [b.t - a.t for a, b in zip(reading.states, reading.states[1:], strict=False)]
    assert len(reading.states) >= 5
    assert all(0.1 - 1e-9 <= g <= 0.1 + 2 * POLL_S for g in gaps[:-1])
    assert all(s.throttle_reasons == (0x4,) for s in reading.states)
    assert all(s.sm_clock_mhz == (1980,) for s in reading.states)
    assert all(s.memory_used_mib == (1024.0,) for s in reading.states)
    temps = [s.temperature_c[0] for s in reading.states]
    assert temps == sorted(temps)


def test_a_mark_gets_a_counter_read_right_after_it_on_the_pollers_side() -> None:
    fake = sim(gpu(0, constant(250.0), read_latency_s=0.003))
    _, reading, _, _ = window(fake, poll=0.05, marks=["batch_start", "first_token"])
    assert [label for label, _ in reading.marks] == ["batch_start", "first_token"]
    track = reading.tracks[0]
    assert track is not None
    for _, t in reading.marks:
        after = [x for x in track.times if x >= t]
        assert after and after[0] - t <= 0.003
        assert track.uncertainty_s(t) == pytest.approx(0.0015, abs=1e-9)


def test_marks_outside_a_window_are_ignored() -> None:
    fake = sim(gpu(0, 100.0))
    meter = NvmlMeter([0], poll_interval_s=POLL_S, nvml=fake, clock=fake.clock)
    meter.mark("batch_start", fake.clock())
    meter.start()
    reading = meter.stop()
    meter.mark("first_token", fake.clock())
    meter.close()
    assert reading.marks == []


def test_device_facts_and_temperatures() -> None:
    fake = FakeNvml([gpu(0, 100.0, temperature_c=47, power_limit_w=650.0)])
    meter = NvmlMeter([0], nvml=fake)
    (facts,) = meter.device_facts()
    assert meter.temperatures() == {"gpu0": 47.0}
    meter.close()
    assert facts["name"] == "NVIDIA H100 80GB HBM3" and facts["uuid"] == fake.gpus[0].uuid
    assert facts["driver_version"] == "550.54.15" and facts["cuda_driver_version"] == "12.4"
    assert facts["power_limit_w"] == 650.0 and facts["persistence_mode"] is True
    assert facts["mig_mode"] is False and facts["temperature_c"] == 47
    assert facts["sm_clock_mhz"] == 1980 and facts["memory_total_mib"] == 80 * 1024


def test_other_processes_exclude_ours() -> None:
    me = os.getpid()
    fake = FakeNvml([gpu(0, 1.0, processes=[(me, 2**30), (999_999, 2**20)]), gpu(1, 1.0)])
    meter = NvmlMeter(None, nvml=fake)
    assert meter.other_processes() == {"gpu0": [999_999]}
    meter.close()


def test_other_processes_when_our_pid_is_hidden_by_a_container() -> None:
    fake = FakeNvml([gpu(0, 1.0, processes=[(4242, 2**33), (5151, 2**20)])])
    meter = NvmlMeter([0], nvml=fake)
    assert meter.other_processes() == {"gpu0": [5151]}
    meter.close()
    assert os.getpid() in own_pids()


UUIDS = [f"GPU-{c * 8}-0000-0000-0000-000000000000" for c in "abc"]


@pytest.fixture
def three() -> FakeNvml:
    return FakeNvml([FakeGpu(uuid=u) for u in UUIDS])


@pytest.mark.parametrize(
    "value", ["3", "0,7", "GPU-ffff", "MIG-00000000-0000-0000-0000-000000000000"]
)
def test_cuda_visible_devices_naming_a_missing_gpu_fails_preflight(
    three: FakeNvml, value: str
) -> None:
    with pytest.raises(PreflightError, match="CUDA_VISIBLE_DEVICES") as info:
        check_visible_devices(value, nvml=three)
    assert "nvidia-smi -L" in (info.value.fix or "")


@pytest.mark.parametrize("value", [None, "", "2,0", UUIDS[1], "-1"])
def test_cuda_visible_devices_that_exist_pass(three: FakeNvml, value: str | None) -> None:
    check_visible_devices(value, nvml=three)


def test_preflight_without_nvml_leaves_it_to_torch() -> None:
    check_visible_devices("7", nvml=FakeNvml(init_error=12))


def test_cuda_devices_map_to_nvml_by_uuid(three: FakeNvml) -> None:
    torch_uuids = [UUIDS[2].removeprefix("GPU-"), UUIDS[0].upper()]
    assert nvml_indices_for([0, 1], torch_uuids, "2,0", nvml=three) == [2, 0]
    assert nvml_indices_for([0, 1], torch_uuids, None, nvml=three) == [2, 0]
    assert nvml_indices_for([1], ["MIG-not-in-nvml"], f"{UUIDS[1]},{UUIDS[2]}", nvml=three) == [2]
    assert three.calls["nvmlInit"] == three.calls["nvmlShutdown"]


def test_visible_temperatures(three: FakeNvml) -> None:
    three.gpus[2].temperature_c = 61
    assert visible_temperatures("2,0", nvml=three) == {"gpu2": 61.0, "gpu0": 40.0}
    assert visible_temperatures(None, nvml=FakeNvml(init_error=12)) == {}


def test_steps_trace_integral() -> None:
    trace = steps([(0.0, 100.0), (1.0, 300.0), (1.5, 50.0)])
    assert trace(1.2) == 300.0
    assert trace.integral(0.0, 2.0) == pytest.approx(100 + 150 + 25)
    assert trace.integral(0.5, 1.25) == pytest.approx(50 + 75)
    assert trace.integral(-1.0, 0.0) == pytest.approx(100.0)
