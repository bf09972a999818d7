"""Queueing next to TTFT: per-request ``queue_s`` → ``queue_ms_p50/p90`` → DataFrame columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.backends.base import GenerationOutput, RequestOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.measure.accounting import fill_tokens_and_latency
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
    with_queue.queue_ms_p50, with_queue.queue_ms_p90 = 12.5, 30.0
    without.experiment_id = "other"
    store = ResultStore(tmp_path)
    store.write(with_queue)
    store.write(without)
    df = load_results(tmp_path).set_index("experiment_id")
    assert df.loc["exp", "queue_ms_p50"] == 12.5 and df.loc["exp", "queue_ms_p90"] == 30.0
    assert df["queue_ms_p50"].dtype == "float64"
    assert df.loc["other", ["queue_ms_p50", "queue_ms_p90"]].isna().all()
