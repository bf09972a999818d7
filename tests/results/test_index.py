"""The Parquet index: the same frame as parsing, reused while files are unchanged (size and
mtime), refreshed file by file when they change, written by the run loop."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

import llem_nb as ll
from llem_nb.results.frame import ResultsWarning, load_results
from llem_nb.results.index import INDEX_NAME
from llem_nb.results.store import ResultStore
from llem_nb.testing import FakeBackend, use_fake_backend
from tests.support.results_data import result, sweep, write


def quiet(path: Path, **kwargs: object) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_results(path, **kwargs)  # type: ignore[arg-type]


def test_the_index_gives_the_same_frame_as_parsing(tmp_path: Path) -> None:
    rows = [
        result({"batch_size": 2, "precision": "fp16"}, 0, flags=["short_window"]),
        result({"batch_size": 4, "precision": "fp32"}, 1, ttft_ms_p90=120.0),
    ]
    write(tmp_path, rows)
    parsed = quiet(tmp_path, index=False)
    assert not (tmp_path / INDEX_NAME).exists()
    first = quiet(tmp_path)
    assert (tmp_path / INDEX_NAME).is_file()
    second = quiet(tmp_path)
    for frame in (first, second):
        pd.testing.assert_frame_equal(frame, parsed)
    assert second.attrs["units"] == parsed.attrs["units"]
    assert second.loc[second["batch_size"] == 2, "quality_flags"].iloc[0] == ["short_window"]


def _same_size_edit(path: Path, old: str, new: str) -> None:
    """Change the file's content but keep its size and mtime: only a re-parse would see it."""
    st = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_unchanged_files_come_from_the_index_and_changed_ones_are_parsed(tmp_path: Path) -> None:
    sweep(tmp_path, {1: [30.0], 2: [20.0]})
    quiet(tmp_path)
    path = next(p for p in tmp_path.glob("*.result.json") if '"batch_size":1,' in p.read_text())
    _same_size_edit(path, '"energy_gross_j":30.0', '"energy_gross_j":90.0')
    cached = quiet(tmp_path)
    assert sorted(cached["energy_gross_j"]) == [20.0, 30.0]  # the index, not the file
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    fresh = quiet(tmp_path)
    assert sorted(fresh["energy_gross_j"]) == [20.0, 90.0]


def test_new_and_deleted_files(tmp_path: Path) -> None:
    sweep(tmp_path, {1: [30.0], 2: [20.0]})
    quiet(tmp_path)
    write(tmp_path, [result({"batch_size": 4}, 0, energy_gross_j=15.0)])
    assert sorted(quiet(tmp_path)["energy_gross_j"]) == [15.0, 20.0, 30.0]
    next(p for p in tmp_path.glob("*.result.json") if '"batch_size":2,' in p.read_text()).unlink()
    assert sorted(quiet(tmp_path)["energy_gross_j"]) == [15.0, 30.0]


def test_skipped_files_are_warned_about_on_every_load(tmp_path: Path) -> None:
    sweep(tmp_path, {1: [30.0]})
    (tmp_path / "broken_c000.result.json").write_text("{not json")
    for _ in range(2):
        with pytest.warns(ResultsWarning, match="broken_c000"):
            df = load_results(tmp_path)
        assert len(df) == 1


def test_an_unwritable_dir_or_a_foreign_index_still_loads(tmp_path: Path) -> None:
    sweep(tmp_path, {1: [30.0]})
    (tmp_path / INDEX_NAME).write_bytes(b"not parquet")
    assert len(quiet(tmp_path)) == 1  # rebuilt over the bad one
    assert (tmp_path / INDEX_NAME).read_bytes()[:4] == b"PAR1"
    (tmp_path / INDEX_NAME).unlink()
    os.chmod(tmp_path, 0o555)
    try:
        assert len(quiet(tmp_path)) == 1
    finally:
        os.chmod(tmp_path, 0o755)


def test_a_study_run_leaves_a_current_index(tmp_path: Path) -> None:
    backend = use_fake_backend()
    FakeBackend.step_s = 0.0
    study = ll.Study("indexed", model="m", backend=backend, n_prompts=2, max_output_tokens=4)
    out = study.sweep(batch_size=[1, 2]).run(results_dir=tmp_path, progress=False)
    index = out.dir / INDEX_NAME
    assert index.is_file()
    names = pd.read_parquet(index)["_index_file"].tolist()
    assert sorted(names) == sorted(p.name for p in ResultStore(out.dir).iter_paths())
    pd.testing.assert_frame_equal(load_results(out.dir), load_results(out.dir, index=False))


@pytest.mark.parametrize("stale", ["version", "columns"])
def test_an_index_from_another_llem_nb_or_column_set_is_rebuilt(tmp_path: Path, stale: str) -> None:
    import json

    import pyarrow.parquet as pq

    sweep(tmp_path, {1: [30.0]})
    quiet(tmp_path)
    path = tmp_path / INDEX_NAME
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    info = json.loads(meta[b"llem_nb_index"])
    if stale == "version":
        info["llem_nb"] = "0.0.0"
    else:
        info["columns"].remove("co2_g")  # as if written before that column existed
    meta[b"llem_nb_index"] = json.dumps(info).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    assert len(quiet(tmp_path)) == 1
    rebuilt = json.loads(pq.read_table(path).schema.metadata[b"llem_nb_index"])
    assert rebuilt["llem_nb"] == ll.__version__ and "co2_g" in rebuilt["columns"]
