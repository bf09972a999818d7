"""ResultStore: atomic publish, never overwrite, failures leave earlier results intact."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ResultError
from llem_nb.results.frame import load_results
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore


def make_result(
    experiment_id: str = "abc123", cycle: int = 0, **fields: object
) -> ExperimentResult:
    config = ExperimentConfig(model="tiny-llama").model_dump(mode="json")
    return ExperimentResult(
        experiment_id=experiment_id, config_hash="h" * 64, cycle=cycle, config=config, **fields
    )


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_path_for_names_id_and_cycle(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert store.path_for("abc123", 7) == tmp_path / "abc123_c007.result.json"


def test_write_round_trips_and_leaves_no_temp(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "new" / "dir")
    result = make_result(window_s=2.5, energy_gross_j=100.0)
    path = store.write(result)
    assert path == store.path_for("abc123", 0)
    assert ExperimentResult.model_validate_json(path.read_text()) == result
    assert names(path.parent) == ["abc123_c000.result.json"]
    assert store.exists("abc123", 0)
    assert not store.exists("abc123", 1)
    assert list(store.iter_paths()) == [path]


def test_write_syncs_file_before_publishing_then_syncs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def link(src: str, dst: str) -> None:
        events.append("link")
        real_link(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    ResultStore(tmp_path).write(make_result())
    assert events == ["fsync", "link", "fsync"]


def test_existing_result_is_never_overwritten(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    path = store.write(make_result(window_s=1.0))
    before = path.read_bytes()
    with pytest.raises(ResultError, match="already exists") as info:
        store.write(make_result(window_s=2.0))
    assert str(path) in str(info.value)
    assert info.value.fix
    assert path.read_bytes() == before
    assert names(tmp_path) == [path.name]


def test_result_appearing_during_write_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path)
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_text("written by another process")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(ResultError, match="already exists"):
        store.write(make_result())
    assert names(tmp_path) == ["abc123_c000.result.json"]
    assert store.path_for("abc123", 0).read_text() == "written by another process"


@pytest.mark.parametrize(
    ("target", "code"), [("write", errno.ENOSPC), ("fsync", errno.EACCES), ("link", errno.EIO)]
)
def test_os_failure_raises_result_error_and_keeps_earlier_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, code: int
) -> None:
    store = ResultStore(tmp_path)
    earlier = store.write(make_result("earlier"))
    before = earlier.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as patch:
        patch.setattr(os, target, fail)
        with pytest.raises(ResultError) as info:
            store.write(make_result("later"))
    message = str(info.value)
    assert str(store.path_for("later", 0)) in message
    assert os.strerror(code) in message
    assert names(tmp_path) == [earlier.name]
    assert earlier.read_bytes() == before
    assert store.write(make_result("later")).exists()


def test_filesystem_without_hard_links_still_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = ResultStore(tmp_path)
    path = store.write(make_result())
    assert names(tmp_path) == [path.name]
    with pytest.raises(ResultError, match="already exists"):
        store.write(make_result())


CRASH_BETWEEN_TEMP_AND_PUBLISH = """
import os, sys
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
result = ExperimentResult.model_validate_json(open(sys.argv[2]).read())
os.link = lambda src, dst: os._exit(17)
ResultStore(sys.argv[1]).write(result)
"""


def test_crash_before_publish_leaves_no_result_and_is_recoverable(tmp_path: Path) -> None:
    results = tmp_path / "results"
    store = ResultStore(results)
    earlier = store.write(make_result("earlier"))
    crashed = make_result("crashed", window_s=3.0)
    (tmp_path / "crashed.json").write_text(crashed.to_json())

    child = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_TEMP_AND_PUBLISH, str(results), "crashed.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 17, child.stderr
    leftovers = [n for n in names(results) if n.startswith(".crashed_c000.result.json.tmp-")]
    assert len(leftovers) == 1
    assert not store.exists("crashed", 0)
    assert list(store.iter_paths()) == [earlier]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = load_results(results)
    assert list(frame["experiment_id"]) == ["earlier"]

    path = store.write(crashed)
    assert json.loads(path.read_text())["window_s"] == 3.0
    assert list(load_results(results)["experiment_id"]) == ["crashed", "earlier"]


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", ".hidden"])
def test_experiment_id_cannot_leave_the_directory(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ResultError, match="cannot name a result file"):
        ResultStore(tmp_path).path_for(bad, 0)


def test_directory_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("not a directory")
    with pytest.raises(ResultError, match="could not write result"):
        ResultStore(blocker).write(make_result())
