"""The load generator against the in-process stub server: timings, usage, lag, metrics."""

from __future__ import annotations

import math

import pytest

from llem_nb.backends.serving.arrivals import arrival_times_s
from llem_nb.backends.serving.client import LoadSpec, run_load
from llem_nb.backends.serving.metrics import average, parse_metrics
from llem_nb.results.steady import mlenergy_window, tokens_in
from llem_nb.testing.stub_server import StubServer

pytest.importorskip("aiohttp")


def spec(url: str, n: int, rate: float, **kw: object) -> LoadSpec:
    return LoadSpec(
        base_url=url,
        model="stub",
        prompts=["one two three", "four five"],
        arrivals_s=arrival_times_s(n, rate, "constant"),
        max_tokens=4,
        **kw,  # type: ignore[arg-type]
    )


def test_every_request_is_timed_and_its_usage_kept() -> None:
    with StubServer(tokens_per_s=200.0) as stub:
        result = run_load(spec(stub.base_url, 6, 100.0), count_tokens=lambda p: len(p.split()))
    assert len(result.requests) == 6 and all(r.ok for r in result.requests)
    for i, r in enumerate(result.requests):
        assert r.completion_tokens == 4 and len(r.token_s) == 4
        assert r.prompt_tokens == (3 if i % 2 == 0 else 2)
        assert r.scheduled_s <= r.sent_s < r.first_token_s <= r.token_s[-1] <= r.end_s
        assert r.scheduled_s == pytest.approx(result.start_s + i * 0.01)
        assert len(r.itl_s) == 3 and all(g >= 0 for g in r.itl_s)
    assert result.usage_mismatches == 0 and result.prompt_mismatches == 0
    assert result.client_cpu_s >= 0
    assert stub.received == 6


def test_tokenizer_mismatch_is_counted() -> None:
    with StubServer() as stub:
        result = run_load(spec(stub.base_url, 4, math.inf), count_tokens=lambda p: 99)
    assert result.prompt_mismatches == 4


def test_concurrency_cap_is_not_client_lag_and_metrics_are_sampled() -> None:
    with StubServer(tokens_per_s=100.0, max_running=2) as stub:
        load = spec(stub.base_url, 8, math.inf, max_concurrency=2, metrics_every_s=0.01)
        result = run_load(load)
    assert all(r.ok for r in result.requests)
    starts = sorted(r.sent_s for r in result.requests)
    # two at a time, each ~30 ms long: the last pair starts ~90 ms after the first
    assert starts[-1] - starts[0] >= 0.08
    assert max(result.lags_s) < 0.05
    assert result.metrics and max(s.running or 0 for s in result.metrics) <= 2
    window = mlenergy_window(result.requests, 2)
    assert window is not None
    assert 0 < tokens_in(result.requests, *window) < 32
    assert 0 < average(result.metrics, *window, "running") <= 2


def test_failed_requests_carry_their_cause() -> None:
    with StubServer(die_after=2) as stub:
        result = run_load(spec(stub.base_url, 4, 50.0))
    assert [r.ok for r in result.requests] == [True, True, False, False]
    assert all(r.error for r in result.requests[2:])


def test_metrics_parse_sums_label_sets_and_skips_others() -> None:
    text = (
        "# HELP vllm:num_requests_running x\n"
        'vllm:num_requests_running{engine="0"} 3.0\n'
        'vllm:num_requests_running{engine="1"} 2.0\n'
        "vllm:num_requests_running_total 99\n"
        "vllm:num_requests_waiting 4\n"
    )
    sample = parse_metrics(text, 1.5)
    assert (sample.t_s, sample.running, sample.waiting) == (1.5, 5.0, 4.0)
    assert parse_metrics("", 0.0).running is None


def test_metrics_average_holds_each_sample_until_the_next() -> None:
    samples = [
        parse_metrics(f"vllm:num_requests_running {v}\n", t) for t, v in ((0, 2), (1, 4), (3, 0))
    ]
    # [0.5, 2]: 2 for 0.5 s, then 4 for 1 s
    assert average(samples, 0.5, 2.0, "running") == pytest.approx(5.0 / 1.5)
    assert average(samples, 1.5, 1.8, "running") == pytest.approx(4.0)  # no sample inside
    assert average(samples, 2.0, 5.0, "running") == pytest.approx((4 * 1 + 0 * 2) / 3)
    assert math.isnan(average(samples, -2.0, -1.0, "running"))
    assert math.isnan(average(samples, 0.0, 1.0, "waiting"))
