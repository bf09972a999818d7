"""The Harness with a fake NVML injected: baseline, net, clamping, preflight, latency, flags."""

from __future__ import annotations

import os
from typing import Any

import pytest

from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput
from llem_nb.config.experiment import ExperimentConfig, validate_experiment
from llem_nb.energy.estimate import EstimateMeter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.errors import PreflightError
from llem_nb.measure.harness import Harness
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing import FakeGpu, FakeNvml, SimClock, constant, steps


class WaitingBackend(Backend):
    """Generates by waiting ``hold_s``; with ``switch`` = (before W, after W) the fake GPU
    draws ``before`` until generation starts and ``after`` from then on (a trace that only
    changes the future, so every reading taken so far stays exact)."""

    name = "waiting"
    fake: FakeNvml | None = None
    hold_s = 0.02
    switch: tuple[float, float] | None = None
    loaded = False

    def load(self) -> None:
        self.loaded = True

    def warmup(self, prompts: list[str]) -> None: ...

    def generate(self, prompts: list[str]) -> GenerationOutput:
        assert self.fake is not None
        if self.switch is not None:
            before, after = self.switch
            self.fake.gpus[0].trace = steps([(0.0, before), (self.fake.now(), after)])
        clock = self.fake.clock
        start = clock()
        self.fake.clock.sleep(self.hold_s)  # type: ignore[attr-defined]
        e2e = clock() - start
        return GenerationOutput([RequestOutput(3, 5, e2e, e2e / 5) for _ in prompts])


def sim(*gpus: FakeGpu) -> FakeNvml:
    """The NVML simulator on a virtual clock: the Harness, meter and backend share it."""
    return FakeNvml(list(gpus), clock=SimClock())


def config(**over: Any) -> ExperimentConfig:
    base = {"model": "m", "n_prompts": 2, "batch_size": 2, "baseline": {"seconds": 0.2}}
    return validate_experiment({**base, **over})


def run(
    fake: FakeNvml,
    hold_s: float = 0.02,
    switch: tuple[float, float] | None = None,
    **over: Any,
) -> tuple[ExperimentResult, NvmlMeter]:
    cfg = config(**over)
    backend = WaitingBackend(cfg)
    backend.fake, backend.hold_s, backend.switch = fake, hold_s, switch
    if switch is not None:
        fake.gpus[0].trace = constant(switch[0])
    meter = NvmlMeter([0], poll_interval_s=0.002, nvml=fake, clock=fake.clock)  # type: ignore[arg-type]
    try:
        return Harness(backend, meter).run(cfg), meter
    finally:
        meter.close()


def test_net_is_gross_minus_idle_times_window() -> None:
    fake = sim(FakeGpu())
    result, meter = run(fake, hold_s=0.5, switch=(50.0, 300.0))
    trace = fake.gpus[0].trace
    t0, t1 = (fake.elapsed(t) for t in meter.window_edges)
    assert result.idle_power_w == pytest.approx(50.0, rel=1e-3)
    assert result.energy_gross_j == pytest.approx(trace.integral(t0, t1), rel=0.01)
    assert result.window_s is not None and result.energy_gross_j is not None
    expected_net = result.energy_gross_j - 50.0 * result.window_s
    assert result.energy_net_j == pytest.approx(expected_net, rel=1e-3)
    (device,) = result.energy_devices
    assert device.energy_net_j == pytest.approx(expected_net, rel=1e-3)
    assert device.idle_power_w == result.idle_power_w
    assert device.counter_vs_power_ratio == pytest.approx(1.0, rel=0.01)
    assert result.counter_vs_power_ratio == device.counter_vs_power_ratio
    assert "net_energy_clamped" not in result.quality_flags


def test_net_below_zero_is_clamped_and_flagged() -> None:
    fake = sim(FakeGpu())
    result, _ = run(fake, hold_s=0.3, switch=(300.0, 50.0))
    assert result.energy_gross_j is not None and result.energy_gross_j > 0
    assert result.idle_power_w == pytest.approx(300.0, rel=1e-3)
    assert result.energy_net_j == 0.0
    assert result.window_s is not None
    device_net = result.energy_gross_j - 300.0 * result.window_s
    assert result.energy_devices[0].energy_net_j == pytest.approx(device_net, rel=1e-3)
    assert device_net < 0, "the device's own net keeps its sign; only the total is clamped"
    assert "net_energy_clamped" in result.quality_flags
    assert any("gpu0: idle power" in w for w in result.warnings)


def test_baseline_zero_disables_net() -> None:
    fake = sim(FakeGpu(power_w=constant(100.0)))
    result, _ = run(fake, baseline={"seconds": 0})
    assert result.energy_gross_j is not None
    assert result.idle_power_w is None and result.energy_net_j is None


@pytest.mark.parametrize("visible", ["3", "0,5", "GPU-does-not-exist"])
def test_cuda_visible_devices_naming_a_missing_gpu_stops_before_loading(
    visible: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    fake = sim(FakeGpu())
    backend = WaitingBackend(config())
    with pytest.raises(PreflightError, match="CUDA_VISIBLE_DEVICES"):
        Harness(backend, NvmlMeter([0], nvml=fake, clock=fake.clock)).run(config())  # type: ignore[arg-type]
    assert backend.loaded is False


def test_gpus_zero_skips_the_cuda_visible_devices_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    result, _ = run(sim(FakeGpu()), gpus=0, baseline={"seconds": 0})
    assert result.status == "ok"


class ScriptedBackend(Backend):
    """Known per-request timings, no clock involved."""

    name = "scripted"
    TTFT = (0.1, 0.2, 0.3, 0.4)
    ITL = ([0.01, 0.02], [0.03], [], [0.04, 0.05, 0.06])

    def load(self) -> None: ...

    def warmup(self, prompts: list[str]) -> None: ...

    def generate(self, prompts: list[str]) -> GenerationOutput:
        reqs = [
            RequestOutput(10 + i, len(itl) + 1, ttft + sum(itl), ttft, list(itl))
            for i, (ttft, itl) in enumerate(zip(self.TTFT, self.ITL, strict=True))
        ]
        return GenerationOutput(reqs, phases=[(0.0, 0.1)])


def test_latency_percentiles_from_known_timings() -> None:
    cfg = config(n_prompts=4, energy={"source": "none"})
    result = Harness(ScriptedBackend(cfg)).run(cfg)
    assert (result.ttft_ms_p50, result.ttft_ms_p90, result.ttft_ms_p99) == pytest.approx(
        (250.0, 370.0, 397.0)
    )
    assert (result.itl_ms_p50, result.itl_ms_p90, result.itl_ms_p99) == pytest.approx(
        (35.0, 55.0, 59.5)
    )
    e2e = [t + sum(i) for t, i in zip(ScriptedBackend.TTFT, ScriptedBackend.ITL, strict=True)]
    assert result.latency_s_mean == pytest.approx(sum(e2e) / 4)
    assert result.input_tokens == 10 + 11 + 12 + 13 and result.output_tokens == 3 + 2 + 1 + 4
    assert result.energy_source == "none" and "no_energy_source" in result.quality_flags
    assert result.prefill_energy_j is None and result.phase_method is None


def test_quality_flags_from_the_gpu() -> None:
    gpu = FakeGpu(
        power_w=constant(200.0),
        power_scale=0.8,
        temperature_c=lambda t: 40 + 100 * t,
        throttle_reasons=0x1 | 0x4,
        processes=[(os.getpid(), 2**30), (999_999, 2**20)],
    )
    result, _ = run(sim(gpu), baseline={"seconds": 0})
    flags = set(result.quality_flags)
    assert {"short_window", "counter_power_disagree", "other_processes", "throttled"} <= flags
    assert any("999999" in w for w in result.warnings)
    assert any("software power cap" in w for w in result.warnings)
    assert result.quality_ok is False


def test_temperature_drift_and_few_samples() -> None:
    gpu = FakeGpu(power_w=constant(200.0), temperature_c=lambda t: 40 + 60 * t)
    fake = sim(gpu)
    cfg = config(baseline={"seconds": 0}, energy={"poll_interval_s": 0.1})
    backend = WaitingBackend(cfg)
    backend.fake, backend.hold_s = fake, 0.5
    meter = NvmlMeter([0], poll_interval_s=0.1, nvml=fake, clock=fake.clock)  # type: ignore[arg-type]
    result = Harness(backend, meter).run(cfg)
    meter.close()
    assert {"temperature_drift", "few_power_samples"} <= set(result.quality_flags)
    assert "throttled" not in result.quality_flags


def test_idle_only_throttling_is_not_flagged() -> None:
    result, _ = run(sim(FakeGpu(throttle_reasons=0x1)), baseline={"seconds": 0})
    assert "throttled" not in result.quality_flags


def test_estimate_is_flagged_once() -> None:
    cfg = config(n_prompts=4, baseline={"seconds": 0})
    result = Harness(ScriptedBackend(cfg), EstimateMeter()).run(cfg)
    assert result.quality_flags.count("energy_estimated") == 1
    assert sum("estimate" in w for w in result.warnings) == 1
    assert result.counter_vs_power_ratio is None and result.timeseries_file is None


def test_cooldown_waits_until_within_reach_of_idle() -> None:
    fake = sim(FakeGpu())
    reads = iter([80.0, 80.0, 61.0])
    fake.gpus[0].temperature_c = lambda t: next(reads, 42.0)
    result, _ = run(
        fake,
        baseline={"seconds": 0},
        cooldown={"until_within_c": 5, "idle_c": 40, "max_s": 30, "poll_s": 0.01},
    )
    record = result.window_cooldown
    assert record is not None and record["reached"] is True
    assert record["start_c"] == {"gpu0": 80.0} and record["end_c"] == {"gpu0": 42.0}
    assert record["idle_c"] == {"gpu0": 40.0}
    assert "cooldown_timeout" not in result.quality_flags


def test_cooldown_cap_is_flagged() -> None:
    fake = sim(FakeGpu(temperature_c=90))
    result, _ = run(
        fake, baseline={"seconds": 0}, cooldown={"until_within_c": 5, "idle_c": 40, "max_s": 0.05}
    )
    assert result.window_cooldown is not None and result.window_cooldown["reached"] is False
    assert "cooldown_timeout" in result.quality_flags
    assert any("cooldown cap" in w for w in result.warnings)


def test_cooldown_reference_is_the_temperature_before_loading() -> None:
    fake = sim(FakeGpu(temperature_c=55))
    result, _ = run(fake, baseline={"seconds": 0}, cooldown={"until_within_c": 3})
    assert result.window_cooldown is not None
    assert result.window_cooldown["idle_c"] == {"gpu0": 55.0}
    assert result.window_cooldown["reached"] is True


def test_environment_names_the_measured_gpu() -> None:
    result, _ = run(sim(FakeGpu(name="NVIDIA H200")), baseline={"seconds": 0})
    env = result.environment
    assert env["gpu_name"] == "NVIDIA H200" and env["driver_version"] == "550.54.15"
    assert env["gpus"][0]["power_limit_w"] == 700.0
    assert env["cuda_driver_version"] == "12.4"
    assert {"python", "cpu_model", "ram_gib", "git_commit", "llem_nb_version"} <= set(env)
    assert result.warmup is not None and result.warmup["mode"] == "fixed"


def test_co2_from_carbon_settings() -> None:
    fake = sim(FakeGpu(power_w=constant(360.0)))
    result, _ = run(fake, carbon={"grid_gco2_per_kwh": 500, "pue": 1.2})
    assert result.energy_gross_j is not None and result.energy_net_j is not None
    assert result.co2_g == pytest.approx(result.energy_gross_j / 3.6e6 * 1.2 * 500)
    assert result.co2_net_g == pytest.approx(result.energy_net_j / 3.6e6 * 1.2 * 500)
    plain, _ = run(sim(FakeGpu()), baseline={"seconds": 0})
    assert plain.co2_g is None
