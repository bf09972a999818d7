"""load_results: canonical columns, derived maths, NaN for what was not measured, robustness."""

from __future__ import annotations

import gc
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ResultError
from llem_nb.results.frame import CANONICAL_COLUMNS, ResultsWarning, load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.results.schema import SCHEMA_VERSION


def make_result(
    experiment_id: str = "exp", cycle: int = 0, config: dict[str, Any] | None = None, **fields: Any
) -> ExperimentResult:
    settings = {"model": "tiny-llama", **(config or {})}
    return ExperimentResult(
        experiment_id=experiment_id,
        config_hash="h" * 64,
        cycle=cycle,
        config=ExperimentConfig(**settings).model_dump(mode="json"),
        **fields,
    )


def measured(**fields: Any) -> ExperimentResult:
    """A complete measurement with round numbers, so derived figures can be checked by hand."""
    values: dict[str, Any] = {
        "window_s": 4.0,
        "n_requests": 4,
        "input_tokens": 300,
        "output_tokens": 100,
        "energy_source": "nvml",
        "gpu_count": 1,
        "energy_gross_j": 500.0,
        "idle_power_w": 30.0,
        "energy_net_j": 380.0,
        **fields,
    }
    return make_result(**values)


def write(directory: Path, *results: ExperimentResult) -> Path:
    store = ResultStore(directory)
    for result in results:
        store.write(result)
    return directory


def row(frame: pd.DataFrame, experiment_id: str) -> pd.Series:
    return frame.set_index("experiment_id").loc[experiment_id]


def quiet_load(*args: Any, **kwargs: Any) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_results(*args, **kwargs)


def test_canonical_columns_come_first_in_order(tmp_path: Path) -> None:
    frame = quiet_load(write(tmp_path, measured()))
    assert list(frame.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    assert frame.columns.is_unique
    assert {"config_hash", "error_type", "ttft_ms_p90", "n_requests"} <= set(frame.columns)


def test_derived_figures_match_hand_calculation(tmp_path: Path) -> None:
    r = row(quiet_load(write(tmp_path, measured())), "exp")
    assert r["throughput_output_tok_s"] == 25.0  # 100 tok / 4 s
    assert r["throughput_total_tok_s"] == 100.0  # 400 tok / 4 s
    assert r["energy_per_output_token_j"] == 5.0  # 500 J / 100 tok
    assert r["energy_per_output_token_net_j"] == 3.8  # 380 J / 100 tok
    assert r["energy_per_token_j"] == 1.25  # 500 J / 400 tok
    assert r["energy_per_request_j"] == 125.0  # 500 J / 4 requests
    assert r["avg_power_w"] == 125.0  # 500 J / 4 s
    assert r["energy_gross_j"] == 500.0 and r["energy_net_j"] == 380.0
    assert r["idle_power_w"] == 30.0


def test_missing_measurements_are_nan_never_invented(tmp_path: Path) -> None:
    write(
        tmp_path,
        measured(experiment_id="no-energy", energy_gross_j=None, energy_net_j=None),
        measured(experiment_id="no-tokens", output_tokens=0),
        measured(experiment_id="no-window", window_s=0.0),
    )
    frame = quiet_load(tmp_path)
    energy_cols = [
        "energy_gross_j",
        "energy_net_j",
        "energy_per_output_token_j",
        "energy_per_output_token_net_j",
        "energy_per_token_j",
        "energy_per_request_j",
        "avg_power_w",
    ]
    no_energy = row(frame, "no-energy")
    assert no_energy[energy_cols].isna().all()
    assert no_energy["throughput_output_tok_s"] == 25.0
    no_tokens = row(frame, "no-tokens")
    assert math.isnan(no_tokens["energy_per_output_token_j"])
    assert math.isnan(no_tokens["energy_per_output_token_net_j"])
    assert no_tokens["energy_per_token_j"] == 500.0 / 300
    no_window = row(frame, "no-window")
    assert (
        no_window[["throughput_output_tok_s", "throughput_total_tok_s", "avg_power_w"]].isna().all()
    )
    assert not frame.select_dtypes("number").isin([math.inf, -math.inf]).any().any()


def test_config_environment_and_flags_are_picked(tmp_path: Path) -> None:
    result = measured(
        config={"backend": "pytorch", "precision": "fp16", "batch_size": 4, "n_prompts": 8},
        environment={
            "gpu_name": "NVIDIA H100",
            "driver_version": "550.1",
            "llem_nb_version": "0.1",
        },
        warnings=["window shorter than 5 s", "throttling"],
        quality_flags=["short_window"],
        runner="docker",
        image="ghcr.io/llem-nb/pytorch:0.1.0-cuda12",
    )
    r = row(quiet_load(write(tmp_path, result)), "exp")
    assert (r["model"], r["backend"], r["precision"]) == ("tiny-llama", "pytorch", "fp16")
    assert (r["batch_size"], r["n_prompts"], r["max_output_tokens"]) == (4, 8, 64)
    assert (r["gpu_name"], r["driver_version"], r["llem_nb_version"]) == (
        "NVIDIA H100",
        "550.1",
        "0.1",
    )
    assert (r["runner"], r["image"]) == ("docker", "ghcr.io/llem-nb/pytorch:0.1.0-cuda12")
    assert r["warnings"] == ["window shorter than 5 s", "throttling"]
    assert r["quality_flags"] == ["short_window"]
    assert not r["quality_ok"]


def test_dtypes(tmp_path: Path) -> None:
    frame = quiet_load(write(tmp_path, measured(), make_result("x", cycle=2)))
    assert frame["cycle"].dtype == "int64"
    assert frame["quality_ok"].dtype == bool
    assert str(frame["batch_size"].dtype) == "Int64"
    for name in ("input_tokens", "window_s", "energy_gross_j", "energy_per_token_j", "ttft_ms_p50"):
        assert frame[name].dtype == "float64", name


def test_reuse_columns(tmp_path: Path) -> None:
    kept = measured(model_reused=True, load_s=0.0, baseline_reused=True, baseline_age_s=42.5)
    fresh = make_result("fresh", model_reused=False, load_s=3.0, baseline_reused=False)
    old = make_result("old")
    frame = quiet_load(write(tmp_path, kept, fresh, old))
    assert frame["model_reused"].dtype == "boolean" and frame["baseline_reused"].dtype == "boolean"
    assert frame["baseline_age_s"].dtype == "float64"
    assert bool(row(frame, "exp")["model_reused"]) and row(frame, "exp")["baseline_age_s"] == 42.5
    assert not bool(row(frame, "fresh")["model_reused"]) and row(frame, "fresh")["load_s"] == 3.0
    assert row(frame, "old")["model_reused"] is pd.NA  # written before reuse existed
    assert math.isnan(row(frame, "old")["baseline_age_s"])


def test_failed_rows_kept_or_dropped(tmp_path: Path) -> None:
    config = ExperimentConfig(model="tiny-llama")
    failed = ExperimentResult.failed(config, RuntimeError("CUDA out of memory"), cycle=1)
    write(tmp_path, measured(), failed)
    frame = quiet_load(tmp_path)
    bad = frame[frame["status"] == "failed"].iloc[0]
    assert bad["error_type"] == "RuntimeError"
    assert "out of memory" in bad["error_message"]
    assert not bad["quality_ok"]
    assert math.isnan(bad["energy_per_output_token_j"])
    assert list(quiet_load(tmp_path, include_failed=False)["status"]) == ["ok"]
    assert frame["quality_ok"].tolist().count(True) == 1


def test_point_keys_become_columns(tmp_path: Path) -> None:
    write(
        tmp_path,
        measured(
            experiment_id="a",
            config={"batch_size": 2, "pytorch": {"attn_implementation": "sdpa"}},
            point={"batch_size": 2, "pytorch.attn_implementation": "sdpa"},
        ),
        measured(experiment_id="b", point={"vllm.engine.max_num_seqs": 16}),
    )
    frame = quiet_load(tmp_path)
    assert frame.columns.is_unique
    assert list(frame.columns[-2:]) == ["pytorch.attn_implementation", "vllm.engine.max_num_seqs"]
    assert row(frame, "a")["pytorch.attn_implementation"] == "sdpa"
    assert row(frame, "a")["batch_size"] == 2
    assert pd.isna(row(frame, "a")["vllm.engine.max_num_seqs"])
    assert row(frame, "b")["vllm.engine.max_num_seqs"] == 16


def test_rows_sorted_by_study_id_cycle(tmp_path: Path) -> None:
    write(tmp_path / "s2", measured(experiment_id="a", study="s2"))
    write(
        tmp_path / "s1",
        measured(experiment_id="b", cycle=1, study="s1"),
        measured(experiment_id="b", cycle=0, study="s1"),
        measured(experiment_id="a", cycle=2, study="s1"),
    )
    frame = quiet_load(tmp_path)
    keys = list(zip(frame["study"], frame["experiment_id"], frame["cycle"], strict=True))
    assert keys == [("s1", "a", 2), ("s1", "b", 0), ("s1", "b", 1), ("s2", "a", 0)]
    assert list(frame.index) == [0, 1, 2, 3]


def test_accepts_file_dir_and_lists_without_duplicates(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    one = store.write(measured(experiment_id="one"))
    store.write(measured(experiment_id="two"))
    assert list(quiet_load(one)["experiment_id"]) == ["one"]
    assert list(quiet_load(str(one))["experiment_id"]) == ["one"]
    assert list(quiet_load([tmp_path / "r", one])["experiment_id"]) == ["one", "two"]


def test_empty_inputs_give_canonical_columns(tmp_path: Path) -> None:
    for frame in (quiet_load(tmp_path), quiet_load([])):
        assert frame.empty
        assert list(frame.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ResultError, match="nope"):
        load_results(missing)


def test_bad_files_skipped_with_one_warning_each(tmp_path: Path) -> None:
    write(tmp_path, measured(experiment_id="good"))
    full = measured(experiment_id="cut").to_json()
    newer = json.loads(measured(experiment_id="future").to_json())
    newer["schema_version"] = SCHEMA_VERSION + 1
    bad = {
        "corrupt_c000.result.json": "{not json",
        "truncated_c000.result.json": full[: len(full) // 2],
        "foreign_c000.result.json": json.dumps({"name": "some other tool", "cycle": 0}),
        "list_c000.result.json": "[1, 2, 3]",
        "future_c000.result.json": json.dumps(newer),
        "binary_c000.result.json": b"\xff\xfe\x00garbage".decode("latin-1"),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text, encoding="latin-1")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_results(tmp_path)
    assert list(frame["experiment_id"]) == ["good"]
    assert all(w.category is ResultsWarning for w in caught)
    assert all(w.filename == __file__ for w in caught)
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(bad)
    for name in bad:
        assert sum(name in m for m in messages) == 1, (name, messages)
    future = next(m for m in messages if "future_" in m)
    assert "schema_version" in future and "upgrade" in future


def test_temp_leftovers_ignored_silently(tmp_path: Path) -> None:
    write(tmp_path, measured())
    (tmp_path / ".exp_c001.result.json.tmp-1a2b3c").write_text('{"kind": "llem_nb.res')
    frame = quiet_load(tmp_path)
    assert list(frame["cycle"]) == [0]


def test_garbage_collector_state_restored(tmp_path: Path) -> None:
    write(tmp_path, measured())
    assert gc.isenabled()
    quiet_load(tmp_path)
    assert gc.isenabled()
    gc.disable()
    try:
        quiet_load(tmp_path)
        assert not gc.isenabled()
    finally:
        gc.enable()
