"""Queueing next to TTFT: per-request ``queue_s`` → ``queue_ms_p50/p90`` → DataFrame columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.backends.base import GenerationOutput, RequestOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.sections import CarbonConfig
from llem_nb.energy.base import DeviceReading, EnergyReading, PowerSample, StateSample
from llem_nb.measure.accounting import (
    fill_derived,
    fill_energy,
    fill_quality,
    fill_tokens_and_latency,
)
from llem_nb.measure.carbon import co2_grams
from llem_nb.measure.flops import FLOPS_METHOD
from llem_nb.measure.thermal import CooldownRecord
from llem_nb.measure.warmup import WarmupRecord
from llem_nb.results.frame import load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore


def _result() -> ExperimentResult:
    config = ExperimentConfig(model="tiny-llama")
    return ExperimentResult(
        experiment_id="exp",
        config_hash="h" * 64,
        config=config.model_dump(mode="json"),
    )


def _request(ttft_s: float, queue_s: float | None) -> RequestOutput:
    return RequestOutput(
        input_tokens=4, output_tokens=2, e2e_s=ttft_s + 0.01, ttft_s=ttft_s, queue_s=queue_s
    )


def test_queue_percentiles_cover_the_requests_that_report_queueing() -> None:
    result = _result()
    reqs = [_request(0.01, 0.0), _request(0.05, 0.04), _request(0.09, 0.08), _request(0.2, None)]
    fill_tokens_and_latency(result, GenerationOutput(requests=reqs, batching="continuous"))
    assert result.requests is not None
    assert result.requests.queue_s == [0.0, 0.04, 0.08, None]
    assert result.queue_ms_p50 == pytest.approx(40.0)
    assert result.queue_ms_p90 == pytest.approx(72.0)
    assert result.ttft_ms_p50 == pytest.approx(70.0)


def test_no_queue_reported_is_none_not_zero() -> None:
    result = _result()
    reqs = [_request(0.01, None), _request(0.02, None)]
    fill_tokens_and_latency(result, GenerationOutput(requests=reqs))
    assert result.queue_ms_p50 is None and result.queue_ms_p90 is None


def test_queue_columns_reach_the_dataframe(tmp_path: Path) -> None:
    with_queue, without = _result(), _result()
    queued = [_request(0.02, 0.01), _request(0.03, 0.015), _request(0.05, 0.035)]
    fill_tokens_and_latency(with_queue, GenerationOutput(requests=queued))
    fill_tokens_and_latency(without, GenerationOutput(requests=[_request(0.02, None)]))
    without.experiment_id = "other"
    store = ResultStore(tmp_path)
    store.write(with_queue)
    store.write(without)
    df = load_results(tmp_path).set_index("experiment_id")
    assert df.loc["exp", "queue_ms_p50"] == pytest.approx(15.0)
    assert df.loc["exp", "queue_ms_p90"] == pytest.approx(31.0)
    assert df["queue_ms_p50"].dtype == "float64"
    assert df.loc["other", ["queue_ms_p50", "queue_ms_p90"]].isna().all()


def test_request_latency_percentile_is_in_seconds() -> None:
    result = _result()
    reqs = [_request(0.1, None), _request(0.3, None), _request(0.5, None), _request(1.9, None)]
    fill_tokens_and_latency(result, GenerationOutput(requests=reqs))
    assert result.latency_s_p50 == pytest.approx(0.41)
    assert result.latency_s_mean == pytest.approx(0.71)
    assert result.n_requests == 4
    assert result.input_tokens == 16 and result.output_tokens == 8


def _gpu(k: int, energy_j: float | None) -> DeviceReading:
    return DeviceReading(label=f"gpu{k}", energy_j=energy_j, method="counter", index=k)


def test_one_gpu_lost_leaves_net_energy_unknown_not_partial() -> None:
    result = _result()
    reading = EnergyReading(source="nvml", window_s=10.0, devices=[_gpu(0, 900.0), _gpu(1, None)])
    clamped = fill_energy(result, reading, {"gpu0": 50.0, "gpu1": 40.0}, 10.0)
    assert clamped == []
    assert result.energy_gross_j is None
    assert result.energy_net_j is None
    assert result.idle_power_w == pytest.approx(90.0)
    assert [d.energy_net_j for d in result.energy_devices] == [400.0, None]
    assert result.gpu_count == 2


def test_every_gpu_read_sums_gross_idle_and_net() -> None:
    result = _result()
    reading = EnergyReading(source="nvml", window_s=10.0, devices=[_gpu(0, 900.0), _gpu(1, 300.0)])
    clamped = fill_energy(result, reading, {"gpu0": 50.0, "gpu1": 40.0}, 10.0)
    assert clamped == []  # signed per device, summed, clamped once on the total
    assert result.energy_gross_j == pytest.approx(1200.0)
    assert result.energy_net_j == pytest.approx(300.0)
    assert [d.energy_net_j for d in result.energy_devices] == pytest.approx([400.0, -100.0])


@pytest.mark.parametrize("source, label", [("rapl", "package-0"), ("estimate", "cpu")])
def test_cpu_only_rows_count_no_gpu(source: str, label: str) -> None:
    result = _result()
    reading = EnergyReading(
        source=source,
        window_s=10.0,
        devices=[DeviceReading(label=label, energy_j=120.0, method=source)],
    )
    fill_energy(result, reading, {}, 10.0)
    assert result.gpu_count == 0
    assert result.energy_source == source
    assert result.energy_gross_j == pytest.approx(120.0)
    assert result.energy_net_j is None


def test_derived_flops_co2_and_tokens() -> None:
    config = ExperimentConfig(model="tiny-llama", carbon={"grid_gco2_per_kwh": 400.0, "pue": 1.5})
    result = ExperimentResult(
        experiment_id="exp", config_hash="h" * 64, config=config.model_dump(mode="json")
    )
    result.environment = {"parameters_for_flops": 1000}
    output = GenerationOutput(requests=[_request(0.1, None), _request(0.2, None)])
    fill_tokens_and_latency(result, output)
    reading = EnergyReading(source="nvml", window_s=10.0, devices=[_gpu(0, 3.6e6)])
    fill_energy(result, reading, {"gpu0": 100.0}, 10.0)
    pairs = fill_derived(result, config, reading, output, (0.0, 10.0))
    assert result.flops_estimate == 2.0 * 1000 * 12
    assert result.flops_method == FLOPS_METHOD
    assert result.co2_g == pytest.approx(600.0)
    assert result.co2_net_g == pytest.approx((3.6e6 - 1000.0) / 3.6e6 * 600.0)
    assert result.mig is False
    assert pairs == list(zip(result.quality_flags, result.warnings, strict=True))
    result.environment = {"parameters_for_flops": "unknown"}
    fill_derived(result, config, reading, output, (0.0, 10.0))
    assert result.flops_estimate is None and result.flops_method is None


def test_quality_gathers_meter_flags_extras_warmup_and_cooldown_note() -> None:
    result = _result()
    reading = EnergyReading(
        source="nvml",
        window_s=2.0,
        devices=[DeviceReading("gpu0", 10.0, "counter", 0, samples=50)],
        flags=["counter_stale"],
        warnings=["gpu0 counter stale"],
    )
    warmup = WarmupRecord(mode="cv", runs=3, latencies_s=[1.0, 1.2, 1.1], cv=0.2, converged=False)
    cooldown = CooldownRecord(
        within_c=2.0, idle_c={}, start_c={}, end_c={}, waited_s=5.0, reached=False, note="hot"
    )
    fill_quality(
        result,
        reading,
        clamped=["gpu0"],
        other_processes={},
        warmup=warmup,
        cooldown=cooldown,
        extra=[("phase_unresolved", "prefill too short")],
    )
    assert result.quality_flags == [
        "counter_stale", "short_window", "net_energy_clamped", "warmup_not_converged",
        "cooldown_timeout", "phase_unresolved",
    ]  # fmt: skip
    assert result.warnings[0] == "gpu0 counter stale"
    assert result.warnings[1] == "window 0.00 s < 5 s: edges dominate"
    assert result.warnings[-2:] == ["prefill too short", "hot"]
    assert result.warmup == warmup.as_dict()
    assert result.window_cooldown == cooldown.as_dict()
    plain = _result()
    plain.window_s = 8.0
    fill_quality(
        plain,
        reading,
        clamped=[],
        other_processes={},
        warmup=WarmupRecord("fixed", 0),
        cooldown=None,
    )
    assert plain.quality_flags == ["counter_stale"]
    assert plain.warnings == ["gpu0 counter stale"] and plain.window_cooldown is None


def _polled(energy_j: float = 1000.0) -> EnergyReading:
    """gpu0 at a constant 100 W for 10 s, polled every 0.5 s, one state snapshot."""
    return EnergyReading(
        source="nvml",
        window_s=10.0,
        devices=[DeviceReading("gpu0", energy_j, "power", 0, samples=21, power_method="instant")],
        samples=[PowerSample(i * 0.5, (100.0,)) for i in range(21)],
        states=[StateSample(0.0, (50.0,), (1980.0,), (1.0,), (0,))],
    )


def test_the_phase_split_and_timeseries_reach_the_result() -> None:
    config = ExperimentConfig(model="tiny-llama")
    result = _result()
    result.cycle = 2
    output = GenerationOutput(requests=[_request(0.1, None)], phases=[(1.0, 3.0)])
    assert fill_derived(result, config, _polled(), output, (0.0, 10.0)) == []
    assert (result.prefill_energy_j, result.decode_energy_j) == (200.0, 800.0)
    assert result.phase_method == "power"
    assert result.phases is not None and result.phases["prefill_s"] == 2.0
    assert result._timeseries is not None
    assert result._timeseries.meta["experiment_id"] == "exp"
    assert result._timeseries.meta["cycle"] == 2
    short = GenerationOutput(requests=[_request(0.1, None)], phases=[(1.0, 1.1)])
    pairs = fill_derived(result, config, _polled(), short, (0.0, 10.0))
    assert [flag for flag, _ in pairs] == ["phase_unresolved"]
    assert pairs[0][1].startswith("prefill phases as short as 100 ms")
    continuous = GenerationOutput(
        requests=[_request(0.1, None)], phases=[(1.0, 3.0)], batching="continuous"
    )
    fill_derived(result, config, _polled(), continuous, (0.0, 10.0))
    assert result.prefill_energy_j is None and result.decode_energy_j is None
    result.output_tokens = None
    fill_derived(result, config, _polled(), output, (0.0, 10.0))
    assert result.flops_estimate is None


def test_device_fields_are_copied_and_net_clamped_only_below_zero() -> None:
    result = _result()
    device = DeviceReading(
        "gpu3", 500.0, "counter", 3, uuid="GPU-3", name="H100", samples=40,
        power_integral_j=490.0, idle_power_w=50.0, mig=True, power_method="instant",
        power_avg_s=0.025, counter_update_s=0.1, edges={"start": {"power_limit_w": 700.0}},
    )  # fmt: skip
    reading = EnergyReading(source="nvml", window_s=10.0, devices=[device])
    assert fill_energy(result, reading, {}, 10.0) == []
    (dev,) = result.energy_devices
    assert dev.model_dump() == {
        "label": "gpu3", "index": 3, "uuid": "GPU-3", "name": "H100", "energy_j": 500.0,
        "method": "counter", "samples": 40, "power_integral_j": 490.0, "idle_power_w": 50.0,
        "energy_net_j": 0.0, "counter_vs_power_ratio": 500.0 / 490.0, "power_method": "instant",
        "power_avg_s": 0.025, "counter_update_s": 0.1,
        "edges": {"start": {"power_limit_w": 700.0}}, "mig": True,
    }  # fmt: skip
    assert result.mig is True and result.idle_power_w == 50.0
    assert fill_energy(result, reading, {"gpu3": 49.95}, 10.0) == []
    assert result.energy_net_j == pytest.approx(0.5)


def test_request_lists_batching_and_no_requests() -> None:
    result = _result()
    reqs = [_request(0.1, 0.01), _request(0.2, None)]
    fill_tokens_and_latency(result, GenerationOutput(requests=reqs, batching="static"))
    assert result.batching == "static"
    assert result.requests is not None
    assert result.requests.model_dump() == {
        "input_tokens": [4, 4], "output_tokens": [2, 2], "e2e_s": pytest.approx([0.11, 0.21]),
        "ttft_s": [0.1, 0.2], "queue_s": [0.01, None],
    }  # fmt: skip
    empty = _result()
    fill_tokens_and_latency(empty, GenerationOutput(requests=[]))
    assert empty.latency_s_mean is None and empty.latency_s_p50 is None and empty.n_requests == 0


def test_co2_needs_both_energy_and_an_intensity() -> None:
    grid = CarbonConfig(grid_gco2_per_kwh=400.0)
    assert co2_grams(None, grid) is None
    assert co2_grams(3.6e6, CarbonConfig()) is None
    assert co2_grams(3.6e6, grid) == pytest.approx(400.0)
