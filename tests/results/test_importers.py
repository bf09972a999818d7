"""Peers' result files in the same frame: what maps, what converts, what stays missing."""

from __future__ import annotations

import csv
import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from llem_nb.results.frame import ResultsWarning, load_results
from llem_nb.results.reference import load_reference
from tests.support.results_data import sweep

FIXTURES = Path(__file__).parent / "fixtures"


def quiet(*args: object, **kwargs: object) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_results(*args, **kwargs)  # type: ignore[arg-type]


def test_llenergymeasure_maps_what_means_the_same() -> None:
    df = quiet(FIXTURES / "llenergymeasure")
    assert set(df["origin"]) == {"llenergymeasure"}
    pt = df[df["backend"] == "pytorch"].reset_index(drop=True)
    assert list(pt["cycle"]) == [0, 1]  # one config (same hash), numbered by start time
    assert pt["experiment_id"].nunique() == 1 and pt.loc[0, "experiment_id"] == "5e1f0c3a9b7d2468"
    row = pt.loc[0]
    assert (row["model"], row["precision"], row["batch_size"]) == ("Qwen/Qwen2.5-0.5B", "bf16", 4)
    # output tokens = total energy / their per-output-token energy; input = the rest
    assert (row["output_tokens"], row["input_tokens"]) == (1024, 2048)
    assert row["window_s"] == 10.0  # end_time - start_time, the span their net energy uses
    assert row["energy_gross_j"] == 1500.0 and row["energy_net_j"] == 1100.0
    assert row["idle_power_w"] == 40.0
    assert row["energy_per_output_token_j"] == pytest.approx(1500 / 1024)
    assert row["energy_per_token_j"] == pytest.approx(1500 / 3072)
    # ours: output tokens over the window (theirs would be 3072 / 9.6 s = 320)
    assert row["throughput_output_tok_s"] == pytest.approx(102.4)
    assert row["ttft_ms_p50"] == 50.0 and row["ttft_ms_p99"] == 80.0
    assert row["latency_s_p50"] == 2.5
    # their ITL drops the first and last gap of each request: not ours
    assert math.isnan(row["itl_ms_p50"]) and "definition_differs" in row["quality_flags"]
    assert any("itl_ms_p50" in w for w in row["warnings"])
    assert any("no time zone" in w for w in row["warnings"])
    assert str(row["started_at"]) == "2026-03-20 10:00:00+00:00"
    assert row["gpu_name"] == "NVIDIA A100-SXM4-80GB" and row["energy_source"] == "unknown"
    assert not row["quality_ok"]
    assert row["label"] == "llenergymeasure · Qwen2.5-0.5B · pytorch · bf16 · batch_size=4"


def test_llenergymeasure_without_energy_is_none_not_zero() -> None:
    df = quiet(FIXTURES / "llenergymeasure")
    row = df[df["backend"] == "vllm"].iloc[0]
    assert row["energy_source"] == "none" and "no_energy_source" in row["quality_flags"]
    assert math.isnan(row["energy_gross_j"]) and math.isnan(row["energy_per_output_token_j"])
    assert pd.isna(row["batch_size"])  # vLLM has engine capacities, not prompts in flight
    # no energy: output tokens come from total_flops / flops_per_output_token instead
    assert row["output_tokens"] == 1024 and row["throughput_output_tok_s"] == pytest.approx(256.0)
    assert "short_window" in row["quality_flags"]  # 4 s window


def test_a_newer_llenergymeasure_schema_is_skipped_saying_why() -> None:
    with pytest.warns(ResultsWarning, match="schema '4.0'; llem_nb reads schema 2.x"):
        df = load_results(FIXTURES / "llenergymeasure_v4")
    assert df.empty


def test_optimum_benchmark_converts_per_call_energy() -> None:
    df = quiet(FIXTURES / "optimum_benchmark" / "pytorch_bs4")
    assert len(df) == 1  # benchmark_report.json beside benchmark.json is the same run
    row = df.iloc[0]
    assert row["origin"] == "optimum-benchmark" and row["study"] == "smollm2_bs4"
    assert (row["backend"], row["precision"], row["batch_size"]) == ("pytorch", "bf16", 4)
    assert row["gpu_name"] == "NVIDIA A100-SXM4-80GB" and row["gpu_count"] == 1
    # one generate call: 4 prompts x 64 new tokens, 4 x 128 input tokens, GPU energy only
    assert (row["output_tokens"], row["input_tokens"]) == (256, 512)
    assert row["window_s"] == pytest.approx(3.0)
    assert row["energy_gross_j"] == pytest.approx(2.0e-4 * 3.6e6)  # 720 J
    assert row["energy_per_output_token_j"] == pytest.approx(720 / 256)
    assert row["throughput_output_tok_s"] == pytest.approx(256 / 3.0)
    assert row["ttft_ms_p50"] == pytest.approx(80.0) and row["itl_ms_p50"] == pytest.approx(45.0)
    assert math.isnan(row["energy_net_j"])  # no idle baseline there: not measured, not flagged
    assert row["quality_flags"] == [] and row["energy_source"] == "codecarbon"


def test_optimum_benchmark_report_alone_recovers_batch_and_flags_its_ttft() -> None:
    df = quiet(FIXTURES / "optimum_benchmark" / "vllm_report_only" / "benchmark_report.json")
    row = df.iloc[0]
    # batch = prefill samples/s x s = 8; new tokens = decode tokens / batch + 1 = 32
    assert (row["batch_size"], row["max_output_tokens"], row["output_tokens"]) == (8, 32, 256)
    assert row["energy_per_output_token_j"] == pytest.approx(1.0e-4 * 3.6e6 / 256)
    assert any("recovered" in w for w in row["warnings"])
    # a backend of unknown kind: its prefill may be a separate call, not our TTFT
    assert math.isnan(row["ttft_ms_p50"]) and "definition_differs" in row["quality_flags"]


def test_mlenergy_rows_keep_the_published_figures() -> None:
    df = quiet([], reference={"model": "Qwen3-14B", "gpu": "H100", "task": "lm-arena-chat"})
    published = load_reference(model="Qwen3-14B", gpu="H100", task="lm-arena-chat")
    assert len(df) == len(published) and set(df["origin"]) == {"ml.energy"}
    row = df[df["batch_size"] == 16].iloc[0]
    src = published[published["max_num_seqs"] == 16].iloc[0]
    assert row["energy_per_output_token_j"] == src["J_per_output_token"]
    assert row["throughput_output_tok_s"] == src["output_tok_per_s"]
    assert row["avg_power_w"] == src["avg_power_W_all_gpus"]
    assert row["itl_ms_p50"] == src["median_itl_ms"]
    assert row["batching"] == "continuous" and row["backend"] == "vllm"
    assert row["precision"] == "bf16" and row["gpu_count"] == 1
    assert math.isnan(row["window_s"]) and math.isnan(row["energy_gross_j"])
    assert math.isnan(row["ttft_ms_p50"])  # not published
    assert any("steady-state" in w for w in row["warnings"])


def test_an_mlenergy_csv_path_is_recognised(tmp_path: Path) -> None:
    rows = load_reference(model="Qwen3-14B", gpu="B200").head(2)
    path = tmp_path / "leaderboard.csv"
    rows.to_csv(path, index=False)
    df = quiet(path)
    assert sorted(df["batch_size"]) == sorted(rows["max_num_seqs"])
    assert set(df["origin"]) == {"ml.energy"}
    with path.open(newline="") as fh:
        assert "J_per_output_token" in next(csv.reader(fh))


def test_one_frame_mixes_our_results_with_each_peer_kind(tmp_path: Path) -> None:
    sweep(tmp_path / "ours", {1: [30.0, 31.0], 4: [15.0, 16.0]})
    shutil.copytree(FIXTURES / "llenergymeasure", tmp_path / "lem")
    shutil.copytree(FIXTURES / "optimum_benchmark", tmp_path / "ob")
    df = quiet(tmp_path, reference={"model": "Qwen3-14B", "gpu": "H100", "task": "gpqa"})
    assert set(df["origin"]) == {"llem_nb", "llenergymeasure", "optimum-benchmark", "ml.energy"}
    assert df["origin"].dtype == "string" and df["backend"].dtype == "category"
    ours = df[df["origin"] == "llem_nb"]
    assert ours["quality_ok"].all() and ours["label"].str.startswith("batch_size=").all()
    assert df["energy_per_output_token_j"].notna().sum() >= len(df) - 1  # the vLLM run had none
    assert df.columns.is_unique and df.index.is_monotonic_increasing


def test_a_report_named_beside_its_benchmark_json_is_that_run_once() -> None:
    run = FIXTURES / "optimum_benchmark" / "pytorch_bs4"
    alone = quiet(run / "benchmark_report.json")
    assert len(alone) == 1 and alone["batch_size"].iloc[0] == 4  # read through benchmark.json
    both = quiet([run / "benchmark_report.json", run / "benchmark.json", run])
    assert len(both) == 1
