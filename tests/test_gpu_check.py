"""The GPU check's own logic on the CPU, against a fake NVML GPU; and its no-GPU exit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from llem_nb import cli
from llem_nb.cli import gpu_check
from llem_nb.gpu_check import measure, models
from llem_nb.testing import FakeGpu, FakeNvml, ramp


def test_without_a_gpu_it_exits_2_with_a_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert gpu_check.main(["--out", str(tmp_path / "a")]) == 2
    assert cli.main(["gpu-check", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "gpu-check needs an NVIDIA GPU" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing is written when there is no GPU"


@pytest.mark.slow
def test_fake_gpu_run_writes_results_and_a_table(tmp_path: Path) -> None:
    fake = FakeNvml([FakeGpu(power_w=ramp(80.0, 350.0, 60.0))])
    results, frame = measure.run_check(
        tmp_path / "out",
        fake=True,
        nvml=fake,
        models_dir=tmp_path,
        batch_sizes=(1, 2),
        min_window_s=0.05,
        baseline_s=0.05,
        max_output_tokens=4,
    )
    assert len(frame) == 4 and (frame["status"] == "ok").all()
    assert sorted(frame["batch_size"]) == [1, 1, 2, 2]
    assert len(list(results.glob("*.result.json"))) == 4
    assert len(list(results.glob("*.timeseries.parquet"))) == 4
    assert not list(tmp_path.glob("llem-gpu-check-*")), "the built models are cleaned up"
    table = measure.summary(frame)
    assert list(table.columns) == list(measure.COLUMNS.values())
    assert set(table["model"]) == {"tiny-llama", "llama-1b"}
    assert all(math.isfinite(v) and v > 0 for v in table["J/tok"])
    # real time, 0.05 s windows, a loaded machine: the poller's timestamps are a few ms off
    assert table["ctr/pwr"].tolist() == pytest.approx([1.0] * 4, rel=0.1)
    assert (table["idle_W"] > 0).all()
    short = table["flags"].str.contains("short_window")
    assert (short == (table["window_s"] < 0.05)).all(), "flagged only under the minimum set"
    saved = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(saved.columns) == list(table.columns)
    one = json.loads(next(results.glob("*.result.json")).read_text())
    assert one["energy_source"] == "nvml" and one["study"] == "gpu-check"
    config = one["config"]
    assert config["baseline"]["seconds"] == 0.05 and config["max_output_tokens"] == 4


def test_big_llama_shape_is_about_a_billion_parameters() -> None:
    s = models.BIG_LLAMA
    head_dim = s["hidden_size"] // s["num_attention_heads"]
    kv = s["num_key_value_heads"] * head_dim
    attention = 2 * s["hidden_size"] ** 2 + 2 * s["hidden_size"] * kv
    mlp = 3 * s["hidden_size"] * s["intermediate_size"]
    layers = s["num_hidden_layers"] * (attention + mlp + 2 * s["hidden_size"])
    total = layers + 2 * s["vocab_size"] * s["hidden_size"] + s["hidden_size"]
    assert 0.8e9 < total < 1.2e9


@pytest.mark.slow
def test_reuse_step_prints_both_runs_and_loads_once_with_reuse(tmp_path: Path) -> None:
    from llem_nb.backends.models import tiny_model
    from llem_nb.gpu_check.reuse import reuse_lines

    base = {"precision": "fp32", "gpus": 0, "max_output_tokens": 4,
            "baseline": {"seconds": 0.05}, "measurement": {"min_window_s": 0.05}}  # fmt: skip
    lines = reuse_lines(tiny_model(tmp_path / "m"), base, tmp_path, batch_sizes=(1, 2))
    assert lines[0].startswith("reuse (in the kernel, m, batch 1, 2)")
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert set(rows) == {"never", "auto"}
    assert rows["never"][-1] == "2/2" and rows["auto"][-1] == "1/2"  # loads/experiments
    assert all(float(rows[m][3]) >= 1.0 for m in rows)  # wall ≥ Σ windows
    assert not any("failed" in line or "could not run" in line for line in lines)


@pytest.mark.slow
def test_entrypoint_step_measures_one_config_both_ways(tmp_path: Path) -> None:
    from llem_nb.backends.models import tiny_model
    from llem_nb.gpu_check.entrypoint import entrypoint_lines
    from llem_nb.results.frame import load_results

    config = measure.experiment(
        tiny_model(tmp_path / "m"), 2, 4, precision="fp32", gpus=0, max_output_tokens=4,
        baseline={"seconds": 0}, measurement={"min_window_s": 0},
    )  # fmt: skip
    lines = entrypoint_lines(config, tmp_path)
    assert lines[0] == "container path (entrypoint, no Docker), m batch 2:"
    assert [line.split()[0] for line in lines[2:4]] == ["in-process", "entrypoint"]
    assert lines[4].startswith("entrypoint ÷ in-process: throughput_output_tok_s ")
    rows = load_results(tmp_path / "entrypoint-results")
    assert len(rows) == 2 and (rows["status"] == "ok").all()
    assert rows["experiment_id"].nunique() == 1  # the same config both ways
    tokens = rows["output_tokens"].tolist()  # greedy, same model and prompts: the same tokens
    assert tokens[0] == tokens[1] and 0 < tokens[0] <= 4 * 4  # 4 prompts, ≤ 4 tokens each


def test_side_by_side_ratios_and_missing_values() -> None:
    from llem_nb.config.experiment import ExperimentConfig
    from llem_nb.gpu_check.entrypoint import side_by_side
    from llem_nb.results.schema import ExperimentResult

    def result(window_s: float, gross: float | None) -> ExperimentResult:
        return ExperimentResult(
            experiment_id="x", config_hash="h", config=ExperimentConfig(model="m").model_dump(),
            status="ok", output_tokens=100, window_s=window_s, energy_gross_j=gross,
            energy_source="nvml" if gross else "none",
        )  # fmt: skip

    lines = side_by_side(result(2.0, 50.0), result(2.5, 55.0))
    assert lines[1].split()[:2] == ["in-process", "nvml"] and "0.5" in lines[1].split()
    assert lines[3] == (
        "entrypoint ÷ in-process: throughput_output_tok_s 0.800, energy_per_output_token_j 1.100"
    )
    missing = side_by_side(result(2.0, None), result(2.0, 50.0))
    assert missing[1].split()[5] == "-"  # J/tok of a row without energy
    assert missing[3].endswith("energy_per_output_token_j -")
