"""The frame's types on every pandas: missing is missing, UTC times, categories, lists, units;
and the README's "Columns" table is the one the schema generates."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results import columns as C
from llem_nb.results.frame import load_results
from llem_nb.results.schema import ExperimentResult
from tests.support.results_data import result, write

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_columns_table_is_generated_from_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- columns:begin -->\n(.*?)\n<!-- columns:end -->", text, re.S)
    assert found, "README.md needs the <!-- columns:begin/end --> block"
    assert found.group(1) == C.columns_markdown(), (
        "README Columns table is stale; regenerate it with: python -c "
        '"from llem_nb.results.columns import columns_markdown; print(columns_markdown())"'
    )


def test_every_column_is_documented_once() -> None:
    names = (*C.CANONICAL_COLUMNS, *C.EXTRA_COLUMNS)
    assert len(set(names)) == len(names)
    assert set(names) == set(C.DOCS)


def test_missing_text_is_na_not_the_string_none(tmp_path: Path) -> None:
    config = ExperimentConfig(model="tiny-llama")
    failed = ExperimentResult.failed(config, RuntimeError("boom"), cycle=1)
    df = load_results(write(tmp_path, [result({"batch_size": 1}), failed]))
    ok = df[df["status"] == "ok"].iloc[0]
    assert pd.isna(ok["error_message"]) and pd.isna(ok["image"]) and pd.isna(ok["timeseries_path"])
    assert df["error_message"].isna().sum() == 1
    assert not (df.select_dtypes(["string", "object"]).astype(str) == "None").any().any()
    assert df["error_message"].dtype == C.TEXT_DTYPE


def test_types_units_and_lists(tmp_path: Path) -> None:
    df = load_results(
        write(tmp_path, [result({"batch_size": 2}, flags=["short_window"]), result({"batch_size": 4})])
    )
    for name in ("backend", "runner", "status", "energy_source", "precision"):
        assert isinstance(df[name].dtype, pd.CategoricalDtype), name
        assert df[name].cat.categories.dtype == object
    assert str(df["started_at"].dtype) == "datetime64[us, UTC]"
    assert df["started_at"].iloc[0] == pd.Timestamp("2026-11-30T10:00:00Z")
    assert df["finished_at"].dt.tz is not None
    flagged = df[df["batch_size"] == 2].iloc[0]
    assert flagged["quality_flags"] == ["short_window"]
    assert flagged["warnings"] == ["flag short_window"]
    assert df["quality_flags"].explode().dropna().tolist() == ["short_window"]
    assert df.attrs["units"]["energy_per_output_token_j"] == "J/token"
    assert df.attrs["units"]["ttft_ms_p50"] == "ms" and "label" not in df.attrs["units"]
    assert list(df.columns[:3]) == ["study", "experiment_id", "label"]
    assert df.columns.dtype == object


def test_an_empty_load_has_every_column_typed(tmp_path: Path) -> None:
    df = load_results(tmp_path)
    assert df.empty and list(df.columns[: len(C.CANONICAL_COLUMNS)]) == list(C.CANONICAL_COLUMNS)
    assert df["energy_gross_j"].dtype == np.float64 and df["model"].dtype == C.TEXT_DTYPE


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([1, None, 3], "Int64"),
        ([1.5, 2, None], "float64"),
        (["sdpa", None], "string"),
        ([True, None], "boolean"),
    ],
)
def test_swept_columns_get_a_type_from_their_values(values: list[object], dtype: str) -> None:
    assert str(pd.Series(C.infer(values)).dtype) == dtype


def test_times_without_zone_or_with_offsets_become_utc() -> None:
    out = pd.Series(C.times(["2026-01-01T12:00:00+02:00", "2026-01-01T10:00:00", None]))
    assert out.iloc[0] == out.iloc[1] == pd.Timestamp("2026-01-01T10:00:00Z")
    assert pd.isna(out.iloc[2])


def test_units_are_shared_read_only_and_pickle(tmp_path: Path) -> None:
    df = load_results(write(tmp_path, [result({"batch_size": 1})]))
    units = df.attrs["units"]
    assert df["energy_gross_j"].attrs["units"] is units  # not deep-copied per Series
    with pytest.raises(TypeError, match="read-only"):
        units["energy_gross_j"] = "kWh"
    assert pickle.loads(pickle.dumps(units)) == units and dict(units)["window_s"] == "s"
