"""Study runs end to end with the fake backend: scheduling, failures, results, interrupts."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.config.study import StudyConfig
from llem_nb.errors import ConfigError
from llem_nb.results.frame import load_results
from llem_nb.run.plan import schedule
from llem_nb.run.progress import ProgressEvent
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend
from tests.support.fake import fake_fields


def _study(backend: str, **extra) -> Study:
    fields = fake_fields(backend, **{"n_prompts": 4, "max_output_tokens": 3, **extra})
    return Study("loop", **fields).sweep(batch_size=[1, 2])


def test_study_writes_one_result_per_point_and_cycle(fake_backend: str, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    res = (
        _study(fake_backend)
        .cycles(2)
        .run(results_dir=tmp_path, progress=False, callbacks=[events.append])
    )
    assert len(res.results) == 4
    assert len(list(res.dir.glob("*.result.json"))) == 4
    assert (res.dir / "study.yaml").exists()
    df = res.df
    assert sorted(df["batch_size"].tolist()) == [1, 1, 2, 2]
    assert set(df["cycle"]) == {0, 1}
    assert (df["output_tokens"] == 4 * 3).all()
    assert df["energy_source"].eq("none").all()
    assert df["energy_per_output_token_j"].isna().all()
    assert (df["runner"] == "local").all()
    assert [e.kind for e in events] == ["started", "finished"] * 4
    assert len(load_results(tmp_path)) == 4


def test_failed_experiment_becomes_a_row(fake_backend: str, tmp_path: Path) -> None:
    FakeBackend.fail_on = "generate"
    res = _study(fake_backend).run(results_dir=tmp_path, progress=False)
    assert len(res.failed) == 2
    df = res.df
    assert (df["status"] == "failed").all()
    assert df["error_message"].str.contains("asked to fail").all()
    assert not df["quality_ok"].any()


def test_study_yaml_in_dir_round_trips(fake_backend: str, tmp_path: Path) -> None:
    study = _study(fake_backend)
    res = study.run(results_dir=tmp_path, progress=False)
    assert StudyConfig.from_yaml(res.dir / "study.yaml") == study.config


def test_schedule_orders() -> None:
    study = Study("o", model="m").sweep(batch_size=[1, 2, 3]).cycles(2, order="sequential")
    seq = [(p.config.batch_size, c) for p, c in schedule(study.points, study.config)]
    assert seq == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    study = study.cycles(2, order="interleaved")
    inter = [(p.config.batch_size, c) for p, c in schedule(study.points, study.config)]
    assert inter == [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)]
    study = study.cycles(2, order="shuffled", seed=3)
    shuf = [(p.config.batch_size, c) for p, c in schedule(study.points, study.config)]
    assert sorted(shuf) == sorted(inter)
    assert shuf == [(p.config.batch_size, c) for p, c in schedule(study.points, study.config)]


def test_interrupt_returns_partial_result(fake_backend: str, tmp_path: Path) -> None:
    def interrupt_on_second(event: ProgressEvent) -> None:
        if event.kind == "started" and event.index == 1:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="interrupted"):
        res = _study(fake_backend).run(
            results_dir=tmp_path, progress=False, callbacks=[interrupt_on_second]
        )
    assert res.interrupted
    assert len(res.results) == 1
    assert len(load_results(res.dir)) == 1


def test_bad_input_fails_before_anything_is_written(tmp_path: Path) -> None:
    study = Study("bad", model=str(tmp_path / "no-such-model"), n_prompts=2)
    with pytest.raises(ConfigError, match="model"):
        study.run(results_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="runner"):
        _study("pytorch").run(runner="nonsense", results_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_runner_choice_is_recorded(fake_backend: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLEM_RUNNER_FAKE", "local")
    res = _study(fake_backend).run(results_dir=tmp_path, progress=False)
    assert {r.runner_source for r in res.results} == {"env"}
    res = _study(fake_backend).run(runner="local", results_dir=tmp_path, progress=False)
    assert {r.runner_source for r in res.results} == {"argument"}


def test_subprocess_runner_runs_and_cleans_up(fake_backend: str, tmp_path: Path) -> None:
    res = _study(fake_backend).run(runner="subprocess", results_dir=tmp_path, progress=False)
    assert [r.status for r in res.results] == ["ok", "ok"]
    assert {r.runner for r in res.results} == {"subprocess"}
    assert res.df["output_tokens"].tolist() == [12, 12]


def test_subprocess_failure_carries_child_traceback(
    fake_backend: str, tmp_path: Path, monkeypatch
) -> None:
    from llem_nb.errors import RunnerError
    from llem_nb.runners.local import SubprocessRunner

    monkeypatch.setenv("LLEM_FAKE_FAIL", "load")
    config = _study(fake_backend).experiments[0]
    with pytest.raises(RunnerError) as info:
        SubprocessRunner().run(config)
    err = info.value
    assert err.error_type == "BackendError"
    assert "asked to fail in load" in err.message
    assert "Traceback" in (err.remote_traceback or "")
    assert "FakeBackend" in err.remote_traceback or "testing/backend.py" in err.remote_traceback
    kept = Path(err.message.split("kept in ")[1].rstrip(")"))
    assert kept.is_dir() and (kept / f"{config.config_hash}_error.json").exists()


def test_subprocess_timeout_kills_the_child(fake_backend: str, tmp_path: Path) -> None:
    from llem_nb.errors import ExperimentTimeout
    from llem_nb.runners.local import SubprocessRunner

    config = _study(fake_backend, max_output_tokens=2000).experiments[0]
    config = config.model_copy(update={"timeout_s": 3.0})
    FakeBackend.step_s = 0.0
    import os

    os.environ["LLEM_FAKE_STEP_S"] = "0.05"
    try:
        with pytest.raises(ExperimentTimeout, match="timeout_s=3.0"):
            SubprocessRunner().run(config)
    finally:
        del os.environ["LLEM_FAKE_STEP_S"]


def test_the_study_hands_reuse_to_its_runners_and_frees_models_between_them(
    fake_backend: str, tmp_path: Path
) -> None:
    """Two backends on two in-process runners: when the second takes over, the first has
    already freed its model; when the study ends, nothing is kept."""
    from llem_nb.config.plugins import register_backend
    from llem_nb.run.start import prepare_run

    register_backend("fake-two", FakeBackend, child_processes=False)
    study = (
        _study(fake_backend)
        .sweep(backend=[fake_backend, "fake-two"])
        .runners(**{fake_backend: "local", "fake-two": "local"})
    )
    run = prepare_run(study.config, results_dir=tmp_path, progress=False)
    first, second = run.runners[fake_backend], run.runners["fake-two"]
    assert first is not second and first.reuse == second.reuse == "auto"
    held: list[tuple[str, bool, bool]] = []

    def on_start(event: ProgressEvent) -> None:
        if event.kind == "started":
            kept = (first.keeper.backend is not None, second.keeper.backend is not None)
            held.append((event.backend, *kept))

    run.subscribe(on_start)
    res = run.execute()
    assert [r.status for r in res.results] == ["ok"] * 4
    assert held == [
        (fake_backend, False, False),
        (fake_backend, True, False),
        ("fake-two", False, False),
        ("fake-two", False, True),
    ]
    assert first.keeper.backend is None and second.keeper.backend is None
    assert [r.model_reused for r in res.results] == [False, True, False, True]


def test_reuse_never_loads_per_experiment(fake_backend: str, tmp_path: Path) -> None:
    res = _study(fake_backend).cycles(2).reuse("never").run(results_dir=tmp_path, progress=False)
    assert not any(r.model_reused for r in res.results)
    assert res.df["model_reused"].dtype == "boolean"
