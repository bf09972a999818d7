"""recommend(): limits on the means, the best, runners-up by a one-sided test, the Pareto
front, and refusals to recommend from flagged or single-cycle rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import llem_nb as ll
from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.stats import welch
from tests.support.results_data import result, write

# batch: (gross J per 100 output tokens per cycle, ttft_ms_p90, window_s)
CONFIGS = {
    1: ((30.0, 31.0, 32.0), 100.0, 10.0),
    2: ((20.0, 21.0, 19.0), 200.0, 6.0),
    4: ((15.0, 15.5, 14.5), 400.0, 4.0),
    8: ((14.0, 16.5, 15.0), 900.0, 3.0),
}


@pytest.fixture
def df(tmp_path: Path) -> pd.DataFrame:
    rows = [
        result({"batch_size": b}, c, energy_gross_j=e, ttft_ms_p90=ttft, window_s=w)
        for b, (energies, ttft, w) in CONFIGS.items()
        for c, e in enumerate(energies)
    ]
    return ll.load_results(write(tmp_path, rows))


def test_best_meeting_the_limits_with_runners_up_and_front(df: pd.DataFrame) -> None:
    rec = ll.recommend(df, where={"ttft_ms_p90": "<= 500"})
    assert rec.best == "batch_size=4" and rec.minimize
    table = rec.table.set_index("label")
    assert not table.loc["batch_size=8", "meets"]  # mean TTFT 900 > 500
    assert table.loc["batch_size=8", "excluded_because"] == "misses ttft_ms_p90 <= 500"
    # batch 2 vs 4: 0.20 vs 0.15 J/token, clearly worse: not a runner-up
    p = welch([0.15, 0.155, 0.145], [0.20, 0.21, 0.19])[2] / 2
    assert table.loc["batch_size=2", "p_worse_than_best"] == pytest.approx(p)
    assert rec.runners_up == ()
    # front over (energy ↓, TTFT ↓): 1 (fastest), 2, 4 (cheapest); 8 is beaten by 4 on both
    assert set(rec.pareto) == {"batch_size=1", "batch_size=2", "batch_size=4"}
    assert list(rec.table["label"])[0] == "batch_size=4"
    assert rec.sentence.startswith("Pick batch_size=4: energy per output token 0.15 J/token")
    assert "meeting ttft_ms_p90 <= 500" in rec.sentence
    assert rec.where == {"ttft_ms_p90": "<= 500"}


def test_a_config_not_significantly_worse_is_a_runner_up(df: pd.DataFrame) -> None:
    rec = ll.recommend(df, where={"ttft_ms_p90": "< 1000"})
    assert rec.best == "batch_size=4"  # 0.1500 vs batch 8's 0.1517
    assert rec.runners_up == ("batch_size=8",)
    p = float(rec.table.set_index("label").loc["batch_size=8", "p_worse_than_best"])
    assert (
        f"Not significantly worse (one-sided Welch test, p = {p:.2g}): batch_size=8."
        in rec.sentence
    )


def test_maximising_throughput_and_text_limits(df: pd.DataFrame) -> None:
    rec = ll.recommend(
        df, "throughput_output_tok_s", {"backend": "pytorch", "ttft_ms_p90": "<=400"}
    )
    assert not rec.minimize and rec.best == "batch_size=4"  # 100 tok / 4 s
    assert set(rec.pareto) >= {"batch_size=4"}
    assert ll.recommend(df, "throughput_output_tok_s", minimize=True).best == "batch_size=1"


def test_no_config_meeting_the_limits_is_an_answer_not_an_error(df: pd.DataFrame) -> None:
    rec = ll.recommend(df, where={"ttft_ms_p90": "<= 50"})
    assert rec.best is None and rec.runners_up == ()
    assert rec.sentence.startswith("No eligible config meets ttft_ms_p90 <= 50.")
    assert not rec.table["meets"].any()


def test_refuses_flagged_and_single_cycle_rows_unless_asked(tmp_path: Path) -> None:
    rows = [
        result({"batch_size": 1}, c, energy_gross_j=e, flags=["energy_estimated"])
        for c, e in enumerate((10.0, 11.0, 12.0))
    ] + [result({"batch_size": 2}, 0, energy_gross_j=8.0)]
    df = ll.load_results(write(tmp_path, rows))
    with pytest.raises(ResultError) as info:
        ll.recommend(df)
    message = str(info.value)
    assert "all 3 successful rows flagged (energy_estimated)" in message
    assert "1 cycle" in message and "allow_flagged=True" in message
    flagged = ll.recommend(df, allow_flagged=True)
    assert flagged.best == "batch_size=1"
    assert "3 flagged rows were used (allow_flagged=True)" in flagged.notes
    single = ll.recommend(df, allow_single_cycle=True)
    assert single.best == "batch_size=2" and "flagged rows were left out" in single.sentence


def test_bad_arguments_name_the_field(df: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="where names column 'nope'") as info:
        ll.recommend(df, where={"nope": "<= 1"})
    assert info.value.field == "where"
    with pytest.raises(ConfigError, match="not a number"):
        ll.recommend(df, where={"ttft_ms_p90": "<= fast"})
    with pytest.raises(ConfigError, match="objective 'model'"):
        ll.recommend(df, "model")


def test_html_view_shows_the_sentence_and_table(df: pd.DataFrame) -> None:
    html = ll.recommend(df)._repr_html_()
    assert "Pick batch_size=4" in html and "excluded_because" in html
