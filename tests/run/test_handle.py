"""study.start(): a run in a background thread, with progress, subscribers and a clean stop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from tests.support.faultkit import (
    StartedLog,
    alive,
    all_pairs,
    fake_study,
    journal_states,
    wait_for_child,
)

from llem_nb.errors import ConfigError
from llem_nb.run.handle import RunHandle
from llem_nb.run.progress import ProgressEvent
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend


def _wait_until(predicate: Any, timeout_s: float = 60.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def test_start_runs_in_the_background_and_reports_progress(
    fake_backend: str, tmp_path: Path
) -> None:
    gate = threading.Event()
    FakeBackend.step_s = 0.001
    study = fake_study(fake_backend, sizes=(1, 2), cycles=2)
    handle = study.start(results_dir=tmp_path, callbacks=[lambda e: gate.wait(30)])
    assert isinstance(handle, RunHandle) and not handle.done
    _wait_until(lambda: handle.progress.running is not None)
    p = handle.progress
    assert (p.total, p.completed, p.done, p.eta_s) == (4, 0, False, None)
    assert p.states[0].state == "running" and p.states[1].state == "queued"
    with pytest.raises(TimeoutError, match="still running"):
        handle.wait(timeout=0.01)
    events: list[ProgressEvent] = []
    handle.subscribe(events.append)
    gate.set()
    res = handle.wait(timeout=60)
    assert handle.done and len(res.results) == 4 and not res.interrupted
    p = handle.progress
    assert (p.finished, p.failed, p.remaining, p.running, p.eta_s) == (4, 0, 0, None, 0.0)
    assert {s.state for s in p.states} == {"finished"}
    assert [e.kind for e in events].count("finished") == 4
    assert "4/4 done" in repr(handle)


def test_start_raises_bad_input_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="runner"):
        Study("bad", model="m").start(runner="nonsense", results_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_stop_an_in_process_run_finishes_the_current_experiment(
    fake_backend: str, tmp_path: Path
) -> None:
    FakeBackend.step_s = 0.02
    study = fake_study(fake_backend, sizes=(1, 2), cycles=2)
    handle = study.start(results_dir=tmp_path)
    _wait_until(lambda: handle.progress.running is not None)
    handle.stop()
    res = handle.wait(timeout=60)
    assert res.interrupted and len(res.results) == 1 and res.results[0].status == "ok"
    states = journal_states(res.dir)
    assert list(states.values()) == ["finished"] + ["queued"] * 3
    FakeBackend.step_s = 0.0
    log = StartedLog()
    Study.resume(res.dir, progress=False, callbacks=[log])
    assert sorted(log.started) == sorted(
        all_pairs(study) - {(r.experiment_id, r.cycle) for r in res.results}
    )
    assert len(log.started) == 3


def test_stop_kills_a_subprocess_experiment_and_journals_it_interrupted(
    fake_backend: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.05")
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1, max_output_tokens=200)
    handle = study.start(runner="subprocess", results_dir=tmp_path)
    child = wait_for_child()
    handle.stop()
    res = handle.wait(timeout=60)
    assert not alive(child)
    assert res.interrupted and res.results == []
    assert sorted(journal_states(res.dir).values()) == ["interrupted", "queued"]
    assert handle.progress.interrupted == 1
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0")
    log = StartedLog()
    Study.resume(res.dir, runner="subprocess", progress=False, callbacks=[log])
    assert sorted(log.started) == sorted(all_pairs(study))


def test_a_buggy_progress_callback_is_dropped_and_the_run_goes_on(
    fake_backend: str, tmp_path: Path
) -> None:
    def buggy(event: ProgressEvent) -> None:
        raise RuntimeError("a buggy progress view")

    study = fake_study(fake_backend, sizes=(1, 2), cycles=1)
    with pytest.warns(UserWarning, match="buggy progress view"):
        res = study.start(results_dir=tmp_path, callbacks=[buggy]).wait(timeout=60)
    assert [r.status for r in res.results] == ["ok", "ok"]


def test_wait_reraises_what_ended_the_run(fake_backend: str, tmp_path: Path) -> None:
    def leave(event: ProgressEvent) -> None:
        if event.kind == "started":
            raise SystemExit(3)

    study = fake_study(fake_backend, sizes=(1, 2), cycles=1)
    handle = study.start(results_dir=tmp_path, callbacks=[leave])
    with pytest.raises(SystemExit):
        handle.wait(timeout=60)
    assert handle.done
    assert sorted(journal_states(handle.dir).values()) == ["queued", "started"]
    log = StartedLog()
    Study.resume(handle.dir, progress=False, callbacks=[log])
    assert sorted(log.started) == sorted(all_pairs(study))
