"""Queueing next to TTFT: per-request ``queue_s`` → ``queue_ms_p50/p90`` → DataFrame columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.backends.base import GenerationOutput, RequestOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import DeviceReading, EnergyReading
from llem_nb.measure.accounting import fill_energy, fill_tokens_and_latency
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
    assert clamped == ["gpu1"]
    assert result.energy_gross_j == pytest.approx(1200.0)
    assert result.energy_net_j == pytest.approx(400.0)
    assert [d.energy_net_j for d in result.energy_devices] == [400.0, 0.0]


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
