"""Resume: exactly the missing pairs run, nothing finished changes, definitions are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.support.faultkit import (
    StartedLog,
    all_pairs,
    fake_study,
    journal_states,
    loads_cleanly,
    result_files,
)

from llem_nb.errors import ConfigError, PreflightError
from llem_nb.run.lock import StudyLock, StudyLocked
from llem_nb.run.plan import make_tasks, valid_points
from llem_nb.run.progress import ProgressEvent
from llem_nb.run.studydir import (
    ResumeWarning,
    _write_definition,
    check_definition,
    find_latest,
    open_study_dir,
)
from llem_nb.runners.local import LocalRunner
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend


def _interrupt_at_start(n: int):
    seen = {"k": 0}

    def callback(event: ProgressEvent) -> None:
        if event.kind == "started":
            seen["k"] += 1
            if seen["k"] == n:
                raise KeyboardInterrupt

    return callback


def _interrupted_run(backend: str, tmp_path: Path, at: int = 4):
    study = fake_study(backend)
    with pytest.warns(UserWarning, match="interrupted"):
        res = study.run(results_dir=tmp_path, progress=False, callbacks=[_interrupt_at_start(at)])
    assert res.interrupted
    return study, res


def test_resume_runs_exactly_the_missing_pairs(fake_backend: str, tmp_path: Path) -> None:
    study, first = _interrupted_run(fake_backend, tmp_path)
    before = result_files(first.dir)
    assert len(before) == 3
    states = journal_states(first.dir)
    assert sorted(states.values()).count("interrupted") == 1
    log = StartedLog()
    second = Study.resume(first.dir, progress=False, callbacks=[log])
    assert second.resumed and second.skipped == 3 and not second.interrupted
    assert set(log.started) == all_pairs(study) - set(before)
    assert len(log.started) == 3
    after = result_files(first.dir)
    assert {k: after[k] for k in before} == before
    assert set(after) == all_pairs(study)
    assert set(journal_states(first.dir).values()) == {"finished"}
    assert loads_cleanly(first.dir) == 6
    assert len(second.df) == 6 and len(second.results) == 3
    third = Study.resume(first.dir, progress=False, callbacks=[log])
    assert third.skipped == 6 and third.results == [] and len(log.started) == 3


def test_run_resume_true_picks_the_latest_dir(fake_backend: str, tmp_path: Path) -> None:
    study, first = _interrupted_run(fake_backend, tmp_path)
    other = fake_study(fake_backend, name="faults_other", sizes=(1,), cycles=1)
    other.run(results_dir=tmp_path, progress=False)
    log = StartedLog()
    res = study.run(results_dir=tmp_path, resume=True, progress=False, callbacks=[log])
    assert res.dir == first.dir and len(log.started) == 3


def test_resume_true_without_an_earlier_run_starts_a_new_one(
    fake_backend: str, tmp_path: Path
) -> None:
    study = fake_study(fake_backend, sizes=(1,), cycles=1)
    with pytest.warns(ResumeWarning, match="no earlier run"):
        res = study.run(results_dir=tmp_path / "fresh", resume=True, progress=False)
    assert not res.resumed and len(res.results) == 1


def test_a_changed_definition_is_refused_naming_the_change(
    fake_backend: str, tmp_path: Path
) -> None:
    _, first = _interrupted_run(fake_backend, tmp_path)
    before = sorted(p.name for p in first.dir.iterdir())
    changed = fake_study(fake_backend, sizes=(1, 2, 4))
    with pytest.raises(ConfigError) as info:
        changed.run(resume=first.dir, progress=False)
    assert "sweep.batch_size: [1, 2, 3] → [1, 2, 4]" in info.value.message
    assert "force=True" in info.value.fix
    assert sorted(p.name for p in first.dir.iterdir()) == before
    expected = all_pairs(changed) - set(result_files(first.dir))
    log = StartedLog()
    res = changed.run(resume=first.dir, force=True, progress=False, callbacks=[log])
    assert res.resumed and res.skipped == 3
    assert sorted(log.started) == sorted(expected) and len(expected) == 3
    assert Study.from_yaml(first.dir / "study.yaml").config == changed.config
    sessions = [json.loads(x) for x in (first.dir / "journal.jsonl").read_text().splitlines()]
    opened = [s for s in sessions if s.get("phase") == "open"]
    assert opened[-1]["changes"] == ["sweep.batch_size: [1, 2, 3] → [1, 2, 4]"]


def test_resume_with_reuse_switched_is_no_change_of_definition(
    fake_backend: str, tmp_path: Path
) -> None:
    """Reuse decides how models are loaded, not what is measured: a resume may switch it."""
    study, first = _interrupted_run(fake_backend, tmp_path)
    log = StartedLog()
    res = study.reuse("never").run(resume=first.dir, progress=False, callbacks=[log])
    assert res.resumed and len(log.started) == len(all_pairs(study)) - res.skipped
    assert Study.from_yaml(first.dir / "study.yaml").config.reuse == "auto"


def test_failed_pairs_rerun_only_with_retry_failed(fake_backend: str, tmp_path: Path) -> None:
    FakeBackend.fail_on = "generate"
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1)
    first = study.run(results_dir=tmp_path, progress=False)
    assert len(first.failed) == 2
    log = StartedLog()
    again = Study.resume(first.dir, progress=False, callbacks=[log])
    assert log.started == [] and again.skipped == 2
    FakeBackend.fail_on = None
    retried = Study.resume(first.dir, progress=False, callbacks=[log], retry_failed=True)
    assert set(log.started) == all_pairs(study)
    assert [r.status for r in retried.results] == ["ok", "ok"]
    assert len(list(first.dir.glob("*.result.json.failed-1"))) == 2
    assert set(journal_states(first.dir).values()) == {"finished"}
    assert loads_cleanly(first.dir) == 2


@pytest.mark.parametrize("damage", ["missing", "corrupt", "empty"])
def test_a_finished_result_that_is_gone_or_corrupt_is_measured_again(
    fake_backend: str, tmp_path: Path, damage: str
) -> None:
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1)
    first = study.run(results_dir=tmp_path, progress=False)
    files = sorted(first.dir.glob("*.result.json"))
    victim, kept = files[0], files[1]
    kept_bytes = kept.read_bytes()
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(b"" if damage == "empty" else victim.read_bytes()[:40])
    log = StartedLog()
    with pytest.warns(ResumeWarning, match="measuring it again"):
        Study.resume(first.dir, progress=False, callbacks=[log])
    experiment_id = victim.name.split("_c")[0]
    assert log.started == [(experiment_id, 0)]
    assert kept.read_bytes() == kept_bytes
    assert json.loads(victim.read_bytes())["status"] == "ok"
    assert (victim.with_name(victim.name + ".corrupt-1").exists()) == (damage != "missing")
    assert loads_cleanly(first.dir) == 2


def test_a_result_written_just_before_a_crash_is_adopted_not_rerun(
    fake_backend: str, tmp_path: Path
) -> None:
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1)
    first = study.run(results_dir=tmp_path, progress=False)
    journal = first.dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    cut = max(i for i, line in enumerate(lines) if '"event":"finished"' in line)
    journal.write_text("".join(lines[:cut]) + lines[cut][:25])
    before = result_files(first.dir)
    log = StartedLog()
    with pytest.warns(UserWarning, match="torn last line"):
        res = Study.resume(first.dir, progress=False, callbacks=[log])
    assert log.started == [] and res.skipped == 2
    assert result_files(first.dir) == before
    recovered = [json.loads(x) for x in journal.read_text().splitlines()[cut + 1 :]]
    assert any(r.get("recovered") and r["event"] == "finished" for r in recovered)


def test_resume_of_a_locked_dir_fails_before_anything_runs(
    fake_backend: str, tmp_path: Path
) -> None:
    _, first = _interrupted_run(fake_backend, tmp_path)
    size = (first.dir / "journal.jsonl").stat().st_size
    with StudyLock(first.dir), pytest.raises(StudyLocked, match=str(first.dir)):
        Study.resume(first.dir, progress=False)
    assert (first.dir / "journal.jsonl").stat().st_size == size


def test_resume_of_a_dir_that_is_no_study_is_a_config_error(
    fake_backend: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"no study\.yaml"):
        Study.resume(tmp_path, progress=False)
    with pytest.raises(ConfigError, match="not a directory"):
        fake_study(fake_backend).run(resume=tmp_path / "nope", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_two_processes_in_one_results_root_never_clobber(fake_backend: str, tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.support.faultkit import fake_study
        from llem_nb.testing import use_fake_backend
        res = fake_study(use_fake_backend(), sizes=(1, 2, 3), cycles=2).run(
            results_dir={str(tmp_path)!r}, progress=False)
        print(res.dir)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    dirs = [Path(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert dirs[0] != dirs[1]
    for d in dirs:
        assert len(result_files(d)) == 6
        assert set(journal_states(d).values()) == {"finished"}
        assert loads_cleanly(d) == 6


class StrictRunner(LocalRunner):
    """A runner whose preflight refuses GPU experiments (as Docker does without the toolkit)."""

    def preflight(self, config) -> None:
        if config.gpus != 0:
            raise PreflightError("no GPU for this runner", fix="set gpus=0")


def test_preflight_checks_only_what_the_resume_will_run(fake_backend: str, tmp_path: Path) -> None:
    study = fake_study(fake_backend, sizes=(1,), cycles=1).sweep(gpus=[0, 1])
    with pytest.raises(PreflightError, match="no GPU"):
        study.run(runner=StrictRunner(), results_dir=tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()
    FakeBackend.fail_on = "generate"
    first = study.run(results_dir=tmp_path, progress=False)
    FakeBackend.fail_on = None
    assert len(first.failed) == 2
    again = Study.resume(first.dir, runner=StrictRunner(), progress=False)
    assert again.skipped == 2 and again.results == []
    journal = (first.dir / "journal.jsonl").read_bytes()
    before = result_files(first.dir)
    with pytest.raises(PreflightError, match="no GPU"):
        Study.resume(first.dir, runner=StrictRunner(), progress=False, retry_failed=True)
    assert (first.dir / "journal.jsonl").read_bytes() == journal
    assert result_files(first.dir) == before and not list(first.dir.glob("*.failed-*"))
    with StudyLock(first.dir):
        pass


def _definition_dir(tmp_path: Path, study: Study, name: str = "d") -> Path:
    study_dir = tmp_path / name
    study_dir.mkdir()
    (study_dir / "study.yaml").write_text(study.config.to_yaml_text())
    return study_dir


def test_removing_a_sweep_axis_is_a_change(fake_backend: str, tmp_path: Path) -> None:
    two_axes = fake_study(fake_backend).sweep(max_output_tokens=[2, 3])
    study_dir = _definition_dir(tmp_path, two_axes)
    with pytest.raises(ConfigError) as info:
        check_definition(study_dir, fake_study(fake_backend).config, force=False)
    assert "sweep.max_output_tokens: [2, 3] → '<unset>'" in info.value.message
    assert check_definition(study_dir, two_axes.config, force=False) == []


def test_removing_a_base_override_is_a_change(fake_backend: str, tmp_path: Path) -> None:
    overridden = fake_study(fake_backend, max_input_tokens=99)
    study_dir = _definition_dir(tmp_path, overridden)
    plain = fake_study(fake_backend).config
    changes = check_definition(study_dir, plain, force=True)
    assert changes == ["base.max_input_tokens: 99 → '<unset>'"]
    with pytest.raises(ConfigError, match=r"base\.max_input_tokens: 99 → '<unset>'"):
        check_definition(study_dir, plain, force=False)


def test_an_added_axis_is_a_change_too(fake_backend: str, tmp_path: Path) -> None:
    study_dir = _definition_dir(tmp_path, fake_study(fake_backend))
    wider = fake_study(fake_backend).sweep(max_output_tokens=[2, 3]).config
    assert check_definition(study_dir, wider, force=True) == [
        "sweep.max_output_tokens: '<unset>' → [2, 3]"
    ]


def test_resume_true_picks_the_most_recently_journaled_of_several(
    fake_backend: str, tmp_path: Path
) -> None:
    study = fake_study(fake_backend)
    dirs = [_definition_dir(tmp_path, study, f"faults_2026010{k}-000000") for k in (1, 2, 3)]
    for k, (study_dir, mtime) in enumerate(zip(dirs, (300, 100, 200), strict=True)):
        journal = study_dir / "journal.jsonl"
        journal.write_text("")
        os.utime(journal, (mtime, mtime))
        os.utime(study_dir / "study.yaml", (1000 + k, 1000 + k))
    assert find_latest(tmp_path, "faults") == dirs[0]
    os.utime(dirs[2] / "journal.jsonl", (400, 400))
    assert find_latest(tmp_path, "faults") == dirs[2]
    assert find_latest(tmp_path, "other") is None


def _fsynced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the file behind every fsync (Linux /proc), in order."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return synced


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_study_yaml_and_the_queue_are_fsynced_before_anything_runs(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = fake_study(fake_backend, sizes=(1,), cycles=2)
    synced = _fsynced_paths(monkeypatch)
    tasks = make_tasks(valid_points(study.config)[0], study.config)
    opened = open_study_dir(study.config, tasks, results_dir=tmp_path, sync_interval_s=3600)
    try:
        name = opened.dir.name
        assert synced == [".study.yaml.tmp", name, "journal.jsonl"]
        lines = [json.loads(x) for x in (opened.dir / "journal.jsonl").read_text().splitlines()]
        assert [x["event"] for x in lines] == ["session", "queued", "queued"]
        assert not (opened.dir / ".study.yaml.tmp").exists()
    finally:
        opened.journal.close()
        opened.lock.release()


def test_study_yaml_is_replaced_whole_or_not_at_all(
    fake_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_study(fake_backend)
    study_dir = _definition_dir(tmp_path, old)
    before = (study_dir / "study.yaml").read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError(5, "I/O error (simulated crash before the rename)")

    monkeypatch.setattr(os, "replace", crash)
    new = fake_study(fake_backend, sizes=(1, 2, 4)).config
    with pytest.raises(OSError, match="simulated crash"):
        _write_definition(study_dir, new)
    assert (study_dir / "study.yaml").read_bytes() == before
    monkeypatch.undo()
    _write_definition(study_dir, new)
    assert Study.from_yaml(study_dir / "study.yaml").config == new
