"""``recommend`` and ``compare`` on bad or unusual input: an empty frame, limits written
wrongly or as the CLI's text, frames of two studies concatenated with a repeated index."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import llem_nb as ll
from llem_nb.cli import EXIT_CONFIG, main
from llem_nb.errors import ConfigError, LlemError
from llem_nb.results.frame import ResultsWarning
from tests.support.results_data import sweep

# batch: gross J per cycle (100 output tokens), so J/token = value / 100
ONE = {1: (30.0, 31.0, 32.0), 4: (15.0, 15.5, 14.5)}
TWO = {1: (10.0, 10.5, 9.5), 4: (40.0, 41.0, 39.0)}


@pytest.fixture
def df(tmp_path: Path) -> pd.DataFrame:
    return ll.load_results(sweep(tmp_path / "one", ONE, study="one", ttft_ms_p50=300.0))


def test_empty_frame_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = ll.load_results(sweep(tmp_path / "one", ONE)).iloc[0:0]
    with pytest.raises(LlemError, match="no rows"):
        ll.recommend(empty)
    with pytest.raises(LlemError, match="no rows"):
        ll.compare(empty, "batch_size=1", "batch_size=4")
    (tmp_path / "none").mkdir()
    assert main(["compare", str(tmp_path / "none")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "no rows" in err and "Traceback" not in err
    assert main(["compare", str(tmp_path / "none"), "-a", "x", "-b", "y"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "no rows" in err and "labels:" not in err


@pytest.mark.parametrize("limit", ["=< 500", "fast", "<= fast"])
def test_a_limit_that_is_not_a_comparison_names_the_field_and_syntax(
    df: pd.DataFrame, limit: str
) -> None:
    with pytest.raises(ConfigError, match="ttft_ms_p50") as info:
        ll.recommend(df, where={"ttft_ms_p50": limit})
    assert info.value.field == "where"
    assert '"<= 500"' in (info.value.fix or "")


def test_where_as_the_cli_text(df: pd.DataFrame) -> None:
    assert ll.recommend(df, where="ttft_ms_p50<=500").best == "batch_size=4"
    none = ll.recommend(df, where="ttft_ms_p50 < 200")
    assert none.best is None and none.where == {"ttft_ms_p50": "< 200"}
    both = ll.recommend(df, where=["ttft_ms_p50<=500", "batch_size >= 2"])
    assert both.where == {"ttft_ms_p50": "<= 500", "batch_size": ">= 2"}
    with pytest.raises(ConfigError, match="COLUMN OP VALUE"):
        ll.recommend(df, where="ttft_ms_p50 about 500")


def test_concatenated_studies_keep_configs_apart_and_name_the_study(tmp_path: Path) -> None:
    one = ll.load_results(sweep(tmp_path / "one", ONE, study="one"))
    two = ll.load_results(sweep(tmp_path / "two", TWO, study="two"))
    both = pd.concat([one, two])
    assert both.index.duplicated().any()
    rec = ll.recommend(both)
    table = rec.table.set_index("label")
    assert table.loc["two: batch_size=1", "energy_per_output_token_j_mean"] == pytest.approx(0.1)
    assert table.loc["one: batch_size=4", "energy_per_output_token_j_mean"] == pytest.approx(0.15)
    assert table.loc["two: batch_size=4", "energy_per_output_token_j_mean"] == pytest.approx(0.4)
    assert list(table["n"]) == [3, 3, 3, 3]
    assert rec.best == "two: batch_size=1"
    assert rec.sentence.startswith("Pick two: batch_size=1:")
    cmp = ll.compare(both, {"study": "one", "batch_size": 1}, {"study": "two", "batch_size": 1})
    assert (cmp.a, cmp.b) == ("one: batch_size=1", "two: batch_size=1")
    assert cmp.mean_a == pytest.approx(0.31) and cmp.mean_b == pytest.approx(0.10)


def test_a_result_file_overwritten_with_another_experiments_result_is_no_second_row(
    tmp_path: Path,
) -> None:
    directory = sweep(tmp_path / "r", {1: (30.0,), 4: (15.0,)})
    files = sorted(directory.glob("*.result.json"))
    assert len(ll.load_results(directory)) == 2  # the index now holds both
    first, second = files
    first.write_bytes(second.read_bytes())
    for index in (True, False):
        with pytest.warns(ResultsWarning, match=first.name) as caught:
            df = ll.load_results(directory, index=index)
        assert "holds experiment" in str(caught[0].message)
        assert len(df) == 1
        assert df["experiment_id"].tolist() == [second.name.split("_c")[0]]
