"""NvmlMeter against FakeNvml traces whose integrals are known exactly."""

from __future__ import annotations

import math
import threading
from typing import Any

import pynvml
import pytest

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.factory import nvml_available
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import visible_nvml_indices
from llem_nb.errors import MeterError
from llem_nb.testing import SimClock
from llem_nb.testing.nvml import (
    FakeGpu,
    FakeNvml,
    NVMLError,
    NVMLError_LibraryNotFound,
    NVMLError_NotSupported,
)
from llem_nb.testing.traces import Trace, constant, numeric, ramp, spikes

REL = 0.005
FINE_POLL_S = 0.002


def gpu(n: int, power_w: Trace | float, **kw: Any) -> FakeGpu:
    return FakeGpu(
        name=f"NVIDIA Fake {n}",
        uuid=f"GPU-{n:08x}-aaaa-bbbb-cccc-dddddddddddd",
        power_w=power_w,
        **kw,
    )


def sim(*gpus: FakeGpu, **kw: Any) -> FakeNvml:
    """The simulator on a virtual clock (``fake.clock``)."""
    return FakeNvml(list(gpus), clock=SimClock(), **kw)


def measure(
    fake: FakeNvml,
    indices: list[int] | None = None,
    seconds: float = 0.4,
    poll: float = FINE_POLL_S,
) -> tuple[NvmlMeter, EnergyReading, float, float]:
    """One window in virtual time; the meter, its reading and the window on the fake's timeline."""
    meter = NvmlMeter(indices, poll_interval_s=poll, nvml=fake, clock=fake.clock)
    meter.start()
    fake.clock.sleep(seconds)
    reading = meter.stop()
    meter.close()
    return meter, reading, fake.elapsed(reading.t0), fake.elapsed(reading.t1)


def poll_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llem-nvml-poll"]


@pytest.mark.parametrize(
    "trace",
    [constant(250.0), ramp(80.0, 420.0, 1.0), spikes(100.0, 400.0, 0.1, 0.02)],
    ids=["constant", "ramp", "spikes"],
)
def test_counter_matches_exact_integral(trace: Trace) -> None:
    fake = sim(gpu(0, trace, counter_start_mj=123_456_789_000))
    meter, reading, t0, t1 = measure(fake)
    dev = reading.devices[0]
    assert reading.source == "nvml"
    assert (dev.label, dev.index, dev.method) == ("gpu0", 0, "counter")
    assert dev.name == "NVIDIA Fake 0" and dev.uuid == fake.gpus[0].uuid
    assert dev.energy_j == pytest.approx(trace.integral(t0, t1), rel=REL)
    assert dev.power_integral_j is not None and dev.power_integral_j > 0
    assert dev.samples >= 2 and dev.samples == sum(
        1 for x in reading.samples if t0 <= fake.elapsed(x.t) <= t1
    )
    assert reading.energy_j == dev.energy_j
    assert reading.flags == [] and reading.warnings == []


@pytest.mark.parametrize("trace", [constant(250.0), ramp(80.0, 420.0, 1.0)], ids=["const", "ramp"])
def test_power_cross_check_on_smooth_traces(trace: Trace) -> None:
    _, reading, t0, t1 = measure(sim(gpu(0, trace)))
    assert reading.devices[0].power_integral_j == pytest.approx(trace.integral(t0, t1), rel=REL)


@pytest.mark.parametrize("trace", [constant(180.0), ramp(50.0, 350.0, 1.0)], ids=["const", "ramp"])
def test_power_fallback_when_counter_not_supported(trace: Trace) -> None:
    _, reading, t0, t1 = measure(sim(gpu(0, trace, counter_supported=False)))
    dev = reading.devices[0]
    assert dev.method == "power"
    assert dev.energy_j == dev.power_integral_j
    assert dev.energy_j == pytest.approx(trace.integral(t0, t1), rel=REL)
    assert reading.flags == ["counter_unsupported"]
    assert "no NVML energy counter" in reading.warnings[0]


def test_two_gpus_one_idle() -> None:
    busy, idle = ramp(100.0, 500.0, 1.0), constant(60.0)
    fake = sim(gpu(0, busy), gpu(1, idle))
    _, reading, t0, t1 = measure(fake)
    by_label = {d.label: d for d in reading.devices}
    assert list(by_label) == ["gpu0", "gpu1"]
    assert by_label["gpu0"].energy_j == pytest.approx(busy.integral(t0, t1), rel=REL)
    assert by_label["gpu1"].energy_j == pytest.approx(idle.integral(t0, t1), rel=REL)
    assert reading.energy_j == pytest.approx(busy.integral(t0, t1) + idle.integral(t0, t1), rel=REL)
    assert all(len(s.watts) == 2 for s in reading.samples)
    assert [s.t for s in reading.samples] == sorted(s.t for s in reading.samples)


def test_subset_of_gpus_keeps_nvml_index_in_label() -> None:
    fake = sim(gpu(0, 300.0), gpu(1, 70.0))
    _, reading, t0, t1 = measure(fake, indices=[1])
    (dev,) = reading.devices
    assert (dev.label, dev.index, dev.uuid) == ("gpu1", 1, fake.gpus[1].uuid)
    assert dev.energy_j == pytest.approx(70.0 * (t1 - t0), rel=REL)


@pytest.mark.parametrize(
    "counter",
    [
        {"counter_start_mj": 10**9, "counter_reset_at_s": 0.2},
        {"counter_start_mj": 10**6 - 20_000, "counter_wrap_mj": 10**6},
    ],
    ids=["reset", "wrap"],
)
def test_counter_going_backwards_falls_back_to_power(counter: dict[str, int]) -> None:
    trace = constant(250.0)
    _, reading, t0, t1 = measure(sim(gpu(0, trace, **counter)))
    dev = reading.devices[0]
    assert dev.method == "power"
    assert dev.energy_j == pytest.approx(trace.integral(t0, t1), rel=REL)
    assert "counter_reset" in reading.flags
    assert any("went backwards" in w for w in reading.warnings)


def test_gpu_failing_mid_window_is_flagged_not_guessed() -> None:
    fake = sim(gpu(0, 200.0), gpu(1, 200.0, fail_after_s=0.2))
    _, reading, t0, t1 = measure(fake)
    good, bad = reading.devices
    assert good.energy_j == pytest.approx(200.0 * (t1 - t0), rel=REL)
    assert bad.energy_j is None and bad.power_integral_j is None
    assert reading.energy_j is None
    assert reading.flags == ["gpu_read_error"]
    assert any("gpu1" in w and "GPU is lost" in w for w in reading.warnings)
    assert fake.calls["nvmlShutdown"] == 1
    assert any(s.watts[1] is None for s in reading.samples)


def test_neither_counter_nor_power_is_flagged() -> None:
    fake = sim(gpu(0, 200.0, counter_supported=False, power_supported=False))
    _, reading, _, _ = measure(fake, seconds=0.05)
    assert reading.devices[0].energy_j is None
    assert reading.flags == ["counter_unsupported", "gpu_read_error"]


def test_mig_mode_is_flagged() -> None:
    _, reading, _, _ = measure(sim(gpu(0, 200.0, mig=True)), seconds=0.05)
    assert reading.flags == ["mig_whole_gpu"]
    assert reading.devices[0].energy_j is not None


@pytest.mark.parametrize("counter_supported", [True, False])
def test_idle_power(counter_supported: bool) -> None:
    fake = sim(gpu(0, 75.0, counter_supported=counter_supported), gpu(1, 40.0))
    meter = NvmlMeter(None, poll_interval_s=FINE_POLL_S, nvml=fake, clock=fake.clock)
    idle = meter.idle_power_w(0.3)
    assert idle == {"gpu0": pytest.approx(75.0, rel=REL), "gpu1": pytest.approx(40.0, rel=REL)}
    meter.start()
    reading = meter.stop()
    meter.close()
    assert [d.idle_power_w for d in reading.devices] == [idle["gpu0"], idle["gpu1"]]
    assert meter.idle_power_w(0) == {}


def test_close_shuts_down_once_and_stops_polling() -> None:
    fake = FakeNvml([gpu(0, 100.0)])
    meter = NvmlMeter([0], poll_interval_s=FINE_POLL_S, nvml=fake)
    meter.start()
    assert poll_threads()
    meter.close()
    meter.close()
    assert not poll_threads()
    assert (fake.calls["nvmlInit"], fake.calls["nvmlShutdown"]) == (1, 1)


def test_poll_thread_stops_at_stop() -> None:
    """On the real clock: the poller is a thread, gone once the window closes."""
    fake = FakeNvml([gpu(0, 100.0)])
    meter = NvmlMeter([0], poll_interval_s=FINE_POLL_S, nvml=fake)
    meter.start()
    assert poll_threads()
    reading = meter.stop()
    assert not poll_threads()
    assert reading.devices[0].method == "counter" and len(reading.samples) >= 2
    meter.close()


def test_init_failure_is_a_meter_error() -> None:
    fake = FakeNvml([gpu(0, 100.0)], init_error=12)
    with pytest.raises(MeterError, match="NVML library not found"):
        NvmlMeter([0], nvml=fake).start()
    assert nvml_available(fake) == (False, "NVML library not found (no NVIDIA driver)")


def test_bad_index_is_a_meter_error_and_releases_nvml() -> None:
    fake = FakeNvml([gpu(0, 100.0)])
    meter = NvmlMeter([3], nvml=fake)
    with pytest.raises(MeterError, match="do not all exist"):
        meter.start()
    assert fake.calls == {"nvmlInit": 1, "nvmlShutdown": 1}


def test_nvml_available_with_fake() -> None:
    ok, why = nvml_available(FakeNvml([gpu(0, 1.0), gpu(1, 1.0)]))
    assert ok and "2 GPU(s)" in why
    assert nvml_available(FakeNvml([])) == (False, "NVML found no GPUs")


UUIDS = [
    "GPU-aaaa1111-0000-0000-0000-000000000000",
    "GPU-bbbb2222-0000-0000-0000-000000000000",
    "GPU-aaab3333-0000-0000-0000-000000000000",
]


@pytest.fixture
def three_gpus() -> FakeNvml:
    gpus = [FakeGpu(uuid=u, power_w=10.0) for u in UUIDS]
    gpus[1].mig, gpus[1].mig_uuids = True, ("MIG-1234abcd-0000-0000-0000-000000000000",)
    return FakeNvml(gpus)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2]),
        ("", []),
        ("2,0", [2, 0]),
        (" 1 , 1 ", [1]),
        ("1,-1,2", [1]),
        (UUIDS[1], [1]),
        ("GPU-bbbb", [1]),
        ("bbbb2222", [1]),
        ("GPU-AAAB", [2]),
        (f"{UUIDS[2]},0", [2, 0]),
        ("MIG-1234abcd-0000-0000-0000-000000000000", [1]),
    ],
)
def test_visible_nvml_indices(three_gpus: FakeNvml, value: str | None, expected: list[int]) -> None:
    assert visible_nvml_indices(three_gpus, value) == expected
    assert three_gpus.calls["nvmlInit"] == three_gpus.calls["nvmlShutdown"]


@pytest.mark.parametrize("value", ["GPU-ffff", "GPU-aaa", "5", "0,MIG-nope"])
def test_visible_nvml_indices_names_the_bad_entry(three_gpus: FakeNvml, value: str) -> None:
    bad = value.split(",")[-1]
    with pytest.raises(MeterError, match=bad):
        visible_nvml_indices(three_gpus, value)
    assert three_gpus.calls["nvmlInit"] == three_gpus.calls["nvmlShutdown"]


def test_fake_errors_behave_like_pynvml() -> None:
    for code in (3, 12, 15):
        ours, theirs = NVMLError(code), pynvml.NVMLError(code)
        assert type(ours).__name__ == type(theirs).__name__
        assert ours.value == theirs.value == code
        assert str(ours) == str(theirs)
    assert isinstance(NVMLError_NotSupported(), NVMLError)
    assert NVMLError_NotSupported().value == 3
    assert NVMLError_LibraryNotFound().value == 12


def test_trace_integrals_agree_with_numeric_integration() -> None:
    for trace in (constant(42.0), ramp(10.0, 90.0, 0.7), spikes(50.0, 300.0, 0.13, 0.04)):
        slow = numeric(trace.watts, step_s=1e-5)
        for t0, t1 in ((0.0, 0.25), (0.31, 1.4)):
            assert trace.integral(t0, t1) == pytest.approx(slow.integral(t0, t1), rel=1e-3)
    assert ramp(0.0, 100.0, 1.0).integral(0.0, 2.0) == pytest.approx(150.0)
    assert spikes(0.0, 100.0, 1.0, 0.25).integral(0.0, 2.5) == pytest.approx(75.0)


def test_fake_counter_is_integral_in_mj() -> None:
    g = FakeGpu(power_w=ramp(100.0, 200.0, 2.0), counter_start_mj=5_000)
    assert g.counter_mj(1.0) == 5_000 + math.floor(1000 * 125.0)
    callable_gpu = FakeGpu(power_w=lambda t: 2.0 * t)
    assert callable_gpu.counter_mj(1.0) == pytest.approx(1000, abs=1)


def test_fake_requires_init() -> None:
    fake = FakeNvml([gpu(0, 1.0)])
    with pytest.raises(NVMLError, match="Uninitialized"):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    h = fake.nvmlDeviceGetHandleByIndex(0)
    assert fake.nvmlDeviceGetPowerUsage(h) == 1000
    assert fake.nvmlDeviceGetTemperature(h, fake.NVML_TEMPERATURE_GPU) == 40
    assert fake.nvmlDeviceGetMemoryInfo(h).total == 80 * 2**30
    assert fake.nvmlDeviceGetPowerManagementLimit(h) == 700_000
    assert fake.nvmlDeviceGetHandleByUUID(fake.gpus[0].uuid) == h
    fake.nvmlShutdown()


def test_failed_power_reads_at_the_end_keep_a_valid_counter() -> None:
    fake = sim(gpu(0, 200.0), gpu(1, 100.0))
    fake.gpus[0].power_gaps = ((fake.now() + 0.3, fake.now() + 10.0),)
    _, reading, t0, t1 = measure(fake)
    first, second = reading.devices
    assert first.method == "counter"
    assert first.energy_j == pytest.approx(200.0 * (t1 - t0), rel=REL)
    assert reading.energy_j == pytest.approx(300.0 * (t1 - t0), rel=REL)
    assert reading.flags == ["power_poll_gaps"]
    assert second.energy_j == pytest.approx(100.0 * (t1 - t0), rel=REL)


def test_failed_counter_reads_at_the_end_keep_the_power_curve() -> None:
    fake = sim(gpu(0, 200.0))
    fake.gpus[0].counter_gaps = ((fake.now() + 0.3, fake.now() + 10.0),)
    _, reading, t0, t1 = measure(fake)
    (dev,) = reading.devices
    assert dev.energy_j == pytest.approx(200.0 * (t1 - t0), rel=REL)
    assert "gpu_read_error" not in reading.flags
    assert "counter_read_gaps" in reading.flags


def test_a_single_failed_power_read_is_flagged() -> None:
    fake = sim(gpu(0, 200.0))
    start = fake.now() + 0.2
    fake.gpus[0].power_gaps = ((start, start + FINE_POLL_S * 0.9),)
    _, reading, t0, t1 = measure(fake)
    assert sum(1 for s in reading.samples if s.watts[0] is None) == 1
    assert reading.flags == ["power_poll_gaps"]
    assert any(w.startswith("gpu0: 1 power read(s) failed") for w in reading.warnings)
    assert reading.devices[0].energy_j == pytest.approx(200.0 * (t1 - t0), rel=REL)


@pytest.mark.parametrize(("before_w", "after_w"), [(300.0, 350.0), (350.0, 300.0)])
def test_a_power_limit_raised_or_lowered_in_the_window_is_flagged(
    before_w: float, after_w: float
) -> None:
    fake = sim(gpu(0, 200.0))
    switch = fake.now() + 0.2
    fake.gpus[0].power_limit_w = lambda t: before_w if t < switch else after_w
    _, reading, _, _ = measure(fake)
    assert reading.flags == ["power_limit_changed"]
    assert f"power limit changed from {before_w:g} W to {after_w:g} W" in reading.warnings[0]
