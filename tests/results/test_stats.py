"""summarize(): mean, std, n and a Student-t interval per config; the t quantile itself."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llem_nb
from llem_nb.config.experiment import validate_experiment
from llem_nb.errors import ConfigError
from llem_nb.results.frame import load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.stats import betainc, summarize, t_quantile, welch
from llem_nb.results.store import ResultStore

# Two-sided Student-t critical values from standard tables (df: t).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 10: 2.228, 20: 2.086, 30: 2.042}


@pytest.mark.parametrize(("df", "expected"), sorted(T95.items()))
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_other_levels_and_limits() -> None:
    assert t_quantile(0.99, 10) == pytest.approx(3.169, abs=5e-4)
    assert t_quantile(0.90, 5) == pytest.approx(2.015, abs=5e-4)
    assert t_quantile(0.95, 10**6) == pytest.approx(1.95996, abs=1e-4)
    assert math.isnan(t_quantile(0.95, 0))
    with pytest.raises(ValueError, match="confidence"):
        t_quantile(1.0, 3)


def test_incomplete_beta_identities() -> None:
    for x in (0.1, 0.5, 0.9):
        assert betainc(1.0, 1.0, x) == pytest.approx(x)
        assert betainc(2.5, 0.5, x) == pytest.approx(1 - betainc(0.5, 2.5, 1 - x))
    assert betainc(3.0, 2.0, 0.0) == 0.0 and betainc(3.0, 2.0, 1.0) == 1.0


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment_id": ["a", "a", "a", "b", "b", "c", "a"],
            "status": ["ok", "ok", "ok", "ok", "failed", "failed", "ok"],
            "model": ["m"] * 7,
            "batch_size": [1, 1, 1, 2, 2, 4, 1],
            "energy_per_output_token_j": [1.0, 2.0, 3.0, 5.0, 100.0, np.nan, np.nan],
            "throughput_output_tok_s": [10.0, 10.0, 10.0, 20.0, np.nan, np.nan, 10.0],
        }
    )


def test_summarize_one_row_per_config_with_t_interval() -> None:
    out = summarize(_frame()).set_index("experiment_id")
    assert list(out.index) == ["a", "b", "c"]
    assert out.loc["a", ["n_runs", "n_ok", "n_failed"]].tolist() == [4, 4, 0]
    assert out.loc["b", ["n_runs", "n_ok", "n_failed"]].tolist() == [2, 1, 1]
    e = "energy_per_output_token_j"
    assert out.loc["a", f"{e}_n"] == 3
    assert out.loc["a", f"{e}_mean"] == pytest.approx(2.0)
    assert out.loc["a", f"{e}_std"] == pytest.approx(1.0)
    # energy cannot be negative: the interval of log(mean), mean · exp(± t · se / mean)
    log_half = 4.302653 / math.sqrt(3) / 2.0
    assert out.loc["a", f"{e}_ci95_low"] == pytest.approx(2.0 * math.exp(-log_half), rel=1e-5)
    assert out.loc["a", f"{e}_ci95_high"] == pytest.approx(2.0 * math.exp(log_half), rel=1e-5)
    assert out.loc["b", f"{e}_mean"] == 5.0 and out.loc["b", f"{e}_n"] == 1
    assert math.isnan(out.loc["b", f"{e}_std"]) and math.isnan(out.loc["b", f"{e}_ci95_low"])
    assert out.loc["c", f"{e}_n"] == 0 and math.isnan(out.loc["c", f"{e}_mean"])
    t = "throughput_output_tok_s"
    assert out.loc["a", f"{t}_n"] == 4 and out.loc["a", f"{t}_std"] == 0.0
    assert out.loc["a", f"{t}_ci95_low"] == out.loc["a", f"{t}_ci95_high"] == 10.0
    assert out.loc["a", "model"] == "m" and out.loc["b", "batch_size"] == 2
    assert "latency_s_p50_mean" not in out.columns


def test_summarize_by_columns_metrics_and_confidence() -> None:
    out = summarize(
        _frame(), by=["model", "batch_size"], metrics=["energy_per_output_token_j"], confidence=0.9
    )
    assert list(out["batch_size"]) == [1, 2, 4]
    assert "energy_per_output_token_j_ci90_high" in out.columns
    assert "throughput_output_tok_s_mean" not in out.columns
    log_half = 2.919986 / math.sqrt(3) / 2.0
    high = out.loc[0, "energy_per_output_token_j_ci90_high"]
    assert high == pytest.approx(2 * math.exp(log_half), rel=1e-5)


def test_positive_intervals_never_go_below_zero_and_others_stay_symmetric() -> None:
    """Notebook 02 once showed a 95 % interval of -0.033 J/token: two cycles far apart."""
    frame = pd.DataFrame(
        {
            "experiment_id": ["a", "a"],
            "status": ["ok", "ok"],
            "energy_per_output_token_j": [0.002, 0.060],
            "counter_vs_power_ratio": [0.9, 1.3],
        }
    )
    out = summarize(frame, metrics=["energy_per_output_token_j", "counter_vs_power_ratio"])
    e = "energy_per_output_token_j"
    mean, t, se = 0.031, 12.706205, 0.058 / math.sqrt(2) / math.sqrt(2)
    assert mean - t * se < 0  # the plain t interval would go negative
    assert out.loc[0, f"{e}_ci95_low"] == pytest.approx(mean * math.exp(-t * se / mean), rel=1e-5)
    assert 0 < out.loc[0, f"{e}_ci95_low"] < mean < out.loc[0, f"{e}_ci95_high"]
    r = "counter_vs_power_ratio"
    half = t * (0.4 / math.sqrt(2)) / math.sqrt(2)
    assert out.loc[0, f"{r}_ci95_low"] == pytest.approx(1.1 - half, rel=1e-5)
    assert out.loc[0, f"{r}_ci95_high"] == pytest.approx(1.1 + half, rel=1e-5)


def test_summarize_sorts_by_the_swept_keys_not_by_id(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for batch in (1, 4, 2, 8):
        config = validate_experiment({"model": "m", "batch_size": batch})
        store.write(
            ExperimentResult(
                study="s",
                experiment_id=config.experiment_id,
                config_hash=config.config_hash,
                config=config.model_dump(mode="json"),
                point={"batch_size": batch},
            )
        )
    df = load_results(tmp_path)
    assert sorted(df["experiment_id"]) == list(df["experiment_id"])  # ids: not batch order
    out = summarize(df)
    assert out["batch_size"].tolist() == [1, 2, 4, 8]
    assert out["label"].tolist() == ["batch_size=1", "batch_size=2", "batch_size=4", "batch_size=8"]


def test_summarize_rejects_bad_input_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="no column") as info:
        summarize(_frame(), by="nope")
    assert info.value.field == "by"
    with pytest.raises(ConfigError, match="confidence"):
        summarize(_frame(), confidence=95)


def _write_cycles(directory: Path, energies: dict[int, list[float]]) -> None:
    store = ResultStore(directory)
    for batch, values in energies.items():
        config = validate_experiment({"model": "m", "batch_size": batch})
        for cycle, joules in enumerate(values):
            store.write(
                ExperimentResult(
                    study="s",
                    experiment_id=config.experiment_id,
                    config_hash=config.config_hash,
                    cycle=cycle,
                    config=config.model_dump(mode="json"),
                    output_tokens=100,
                    input_tokens=50,
                    n_requests=4,
                    window_s=10.0,
                    energy_source="nvml",
                    energy_gross_j=joules,
                    energy_net_j=joules / 2,
                )
            )


def test_summarize_a_loaded_study_and_the_plot_error_bars(tmp_path: Path) -> None:
    _write_cycles(tmp_path, {1: [100.0, 110.0, 120.0], 4: [40.0, 44.0, 42.0]})
    df = load_results(tmp_path)
    out = llem_nb.summarize(df).sort_values("batch_size")
    e = "energy_per_output_token_j"
    assert out[f"{e}_mean"].tolist() == pytest.approx([1.1, 0.42])
    assert out[f"{e}_n"].tolist() == [3, 3]
    assert out["energy_per_output_token_net_j_mean"].tolist() == pytest.approx([0.55, 0.21])
    fig = llem_nb.plots.energy_per_token(df, net=False)
    container = fig.axes[0].containers[0]
    segments = container.lines[2][0].get_segments()
    bars = [(seg[0][1], seg[1][1]) for seg in segments]
    expected = list(zip(out[f"{e}_ci95_low"], out[f"{e}_ci95_high"], strict=True))
    assert bars == [pytest.approx(pair) for pair in expected]


def test_welch_without_spread_compares_the_means_exactly() -> None:
    t, df, p, method = welch([2.0, 2.0, 2.0], [3.0, 3.0])
    assert (t, df, p, method) == (math.inf, math.inf, 0.0, "exact (no spread)")
    t, _, p, _ = welch([3.0, 3.0], [2.0, 2.0, 2.0])
    assert t == -math.inf and p == 0.0
    t, _, p, _ = welch([2.0, 2.0], [2.0, 2.0])
    assert (t, p) == (0.0, 1.0)


@pytest.mark.parametrize("scipy", [True, False])
def test_welch_with_spread_matches_the_hand_computed_values(
    scipy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """se² = 5/12 + 4/3 = 1.75, t = 1.5 / √1.75, df = 1.75² / ((5/12)²/3 + (4/3)²/2)."""
    if not scipy:
        monkeypatch.setitem(sys.modules, "scipy", None)
    t, df, p, method = welch([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0])
    assert t == pytest.approx(1.5 / math.sqrt(1.75))
    assert df == pytest.approx(3.0625 / ((5 / 12) ** 2 / 3 + (4 / 3) ** 2 / 2))
    assert p == pytest.approx(0.33382, abs=1e-4)
    assert method == ("Welch's t-test (scipy)" if scipy else "Welch's t-test (llem_nb's Student-t)")
