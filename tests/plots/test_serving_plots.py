"""Serving rows: energy and latency against the offered rate, recommend under a p90 TTFT
limit, and the Methods paragraph's serving sentence — from result files built by hand."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

import llem_nb as ll
from llem_nb.errors import LlemError
from llem_nb.plots import energy_vs_rate, latency_vs_rate
from llem_nb.reporting.served_methods import serving_text
from tests.support.results_data import result, write

matplotlib.use("Agg")

# rate → (gross J over the steady state per cycle, ttft_ms_p90, slo_attainment)
RATES = {
    1: ((40.0, 41.0), 120.0, 1.0),
    4: ((20.0, 20.5), 300.0, 0.95),
    "inf": ((12.0, 12.2), 900.0, 0.4),
}
SERVING = {"kind": "serving", "n_requests": 40, "slo": {"ttft_ms": 500}}


def served(tmp_path: Path) -> Path:
    rows = []
    for rate, (joules, ttft, attained) in RATES.items():
        point = {"backend": "vllm", "workload": {**SERVING, "request_rate": rate}}
        for cycle, j in enumerate(joules):
            rows.append(
                result(
                    point,
                    cycle,
                    energy_gross_j=j,
                    output_tokens=100,
                    window_s=5.0,
                    offered_rate_rps=None if rate == "inf" else float(rate),
                    achieved_rate_rps=8.0 if rate == "inf" else float(rate),
                    steady_state_s=5.0,
                    ttft_ms_p90=ttft,
                    itl_ms_p90=30.0,
                    slo_attainment=attained,
                    goodput_rps=attained,
                    energy_per_output_token_j_run=j / 80,
                    output_tokens_run=160,
                )
            )
    return write(tmp_path / "served", rows)


def test_serving_rows_load_with_their_columns(tmp_path: Path) -> None:
    df = ll.load_results(served(tmp_path))
    assert sorted(df["offered_rate_rps"].dropna().unique()) == [1.0, 4.0]
    assert df["offered_rate_rps"].isna().sum() == 2  # inf
    assert df["energy_per_output_token_j"].max() == pytest.approx(0.41)
    assert df.attrs["units"]["goodput_rps"] == "req/s"


def test_energy_vs_rate_draws_one_line_over_the_rates_with_inf_last(tmp_path: Path) -> None:
    df = ll.load_results(served(tmp_path))
    fig = energy_vs_rate(df)
    axes = fig.axes[0]
    main = axes.lines[0]
    assert list(main.get_xdata()) == [1.0, 4.0, 8.0]  # inf placed at 2 × the highest rate
    assert list(main.get_ydata()) == pytest.approx([0.405, 0.2025, 0.121])
    assert [t.get_text() for t in axes.get_xticklabels()] == ["1", "4", "inf"]
    hollow = axes.lines[1]  # attainment below 90 %: only inf
    assert list(hollow.get_xdata()) == [8.0]


def test_latency_vs_rate_draws_the_slo_line(tmp_path: Path) -> None:
    df = ll.load_results(served(tmp_path))
    fig = latency_vs_rate(df, slo={"ttft_ms_p90": 500})
    ttft = fig.axes[0]
    assert list(ttft.lines[0].get_ydata()) == [120.0, 300.0, 900.0]
    assert list(ttft.lines[1].get_ydata()) == [500, 500]
    with pytest.raises(LlemError, match="no successful serving rows"):
        energy_vs_rate(df[df["offered_rate_rps"] > 100])


def test_recommend_the_cheapest_rate_meeting_p90_ttft(tmp_path: Path) -> None:
    df = ll.load_results(served(tmp_path))
    best = ll.recommend(df, where={"ttft_ms_p90": "<= 500"})
    chosen = df[df["label"] == best.best]
    assert set(chosen["offered_rate_rps"]) == {4.0}
    table = best.table.set_index("label")
    assert not table.loc[df[df["offered_rate_rps"].isna()]["label"].iloc[0], "meets"]


def test_methods_describe_arrivals_steady_state_and_slos(tmp_path: Path) -> None:
    import json

    records = [json.loads(p.read_text()) for p in sorted(served(tmp_path).rglob("*.result.json"))]
    text = serving_text(records)
    assert text is not None
    assert "offered rates of 1, 4, inf requests/s" in text
    assert "Poisson process" in text and "max_num_seqs" in text
    assert "TTFT ≤ 500 ms" in text
    assert serving_text([{"status": "ok", "config": {"workload": {"kind": "offline"}}}]) is None


def test_compare_two_rates_by_their_offered_rate(tmp_path: Path) -> None:
    df = ll.load_results(served(tmp_path))
    result = ll.compare(df, {"offered_rate_rps": 1.0}, {"offered_rate_rps": 4.0})
    assert (result.n_a, result.n_b) == (2, 2)
    assert result.mean_a == pytest.approx(0.405) and result.mean_b == pytest.approx(0.2025)
    assert result.ratio == pytest.approx(0.5)
