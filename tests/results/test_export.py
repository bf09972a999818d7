"""export(): a Hive-partitioned Parquet dataset by study, read back by pyarrow and DuckDB."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import llem_nb as ll
from llem_nb.errors import ConfigError
from tests.support.results_data import result, sweep, write


def test_one_folder_per_study_with_types_and_units(tmp_path: Path) -> None:
    sweep(tmp_path / "a", {1: [30.0, 31.0], 4: [15.0]}, study="alpha")
    write(tmp_path / "b", [result({"batch_size": 2}, flags=["short_window"], study="beta/2")])
    out = ll.export(ll.load_results(tmp_path), tmp_path / "wh")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == ["study=alpha/part-0.parquet", "study=beta%2F2/part-0.parquet"]
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 4 and sorted(set(table.column("study").to_pylist())) == [
        "alpha",
        "beta/2",
    ]
    schema = table.schema
    assert schema.field("energy_per_output_token_j").metadata == {b"unit": b"J/token"}
    flags_type = schema.field("quality_flags").type
    assert pa.types.is_list(flags_type) and flags_type.value_type == pa.string()
    assert str(schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    flags = dict(zip(table.column("label").to_pylist(), table.column("quality_flags").to_pylist()))
    assert flags["batch_size=2"] == ["short_window"]


def test_exporting_a_study_again_replaces_only_its_folder(tmp_path: Path) -> None:
    sweep(tmp_path / "a", {1: [30.0]}, study="alpha")
    sweep(tmp_path / "b", {1: [10.0]}, study="beta")
    out = tmp_path / "wh"
    ll.export(tmp_path / "a", out)
    ll.export(tmp_path / "b", out)
    sweep(tmp_path / "a2", {2: [20.0], 4: [15.0]}, study="alpha")
    ll.export(tmp_path / "a2", out)
    table = ds.dataset(out, partitioning="hive").to_table()
    rows = sorted(zip(table.column("study").to_pylist(), table.column("batch_size").to_pylist()))
    assert rows == [("alpha", 2), ("alpha", 4), ("beta", 1)]


def test_duckdb_reads_many_studies_as_the_readme_says(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    sweep(tmp_path / "a", {1: [30.0, 32.0], 4: [15.0]}, study="alpha")
    sweep(tmp_path / "b", {1: [10.0]}, study="beta")
    out = ll.export([tmp_path / "a", tmp_path / "b"], tmp_path / "wh")
    rows = duckdb.sql(
        f"SELECT study, batch_size, avg(energy_per_output_token_j) AS j, count(*) AS n "
        f"FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true) "
        "WHERE status = 'ok' AND len(quality_flags) = 0 GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [("alpha", 1, pytest.approx(0.31), 2), ("alpha", 4, 0.15, 1), ("beta", 1, 0.1, 1)]


def test_a_file_is_not_a_dataset(tmp_path: Path) -> None:
    sweep(tmp_path / "a", {1: [30.0]})
    (tmp_path / "x").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        ll.export(tmp_path / "a", tmp_path / "x")
