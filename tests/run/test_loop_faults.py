"""Fault injection: every fault leaves the study finished (or stopped cleanly), the journal
replayable, every finished result untouched, and resume running exactly the missing pairs.

Faults enter at the hardware/engine/OS boundary only: fake backends and a fake NVML,
a real child process killed with a real signal, ``os.write``/``os.link`` failing.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llem_nb.backends.base import GenerationOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import register_backend
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.errors import BackendError
from llem_nb.measure.harness import Harness
from llem_nb.results.schema import MACHINE_FAILURES, ExperimentResult
from llem_nb.run.start import prepare_run
from llem_nb.run.studydir import ResumeWarning
from llem_nb.runners.base import Runner
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend, FakeGpu, FakeNvml
from tests.support.faultkit import (
    StartedLog,
    alive,
    all_pairs,
    failure_categories,
    fake_study,
    journal_states,
    kill_later,
    loads_cleanly,
    refuse_publishing,
    result_files,
    wait_for_child,
)


def resume_and_check(study: Study, study_dir: Path, *, retry_failed: bool = False) -> StartedLog:
    """Resume; assert it ran exactly the missing pairs and kept every finished result."""
    before = result_files(study_dir)
    ok = {k for k, data in before.items() if json.loads(data)["status"] == "ok"}
    failed = {
        k for k, category in failure_categories(study_dir).items()
        if category not in MACHINE_FAILURES
    }  # fmt: skip
    expected = all_pairs(study) - ok - (set() if retry_failed else failed)
    log = StartedLog()
    Study.resume(study_dir, progress=False, callbacks=[log], retry_failed=retry_failed)
    assert sorted(log.started) == sorted(expected)
    after = result_files(study_dir)
    assert {k: after[k] for k in ok} == {k: before[k] for k in ok}
    assert set(journal_states(study_dir)) >= all_pairs(study)
    loads_cleanly(study_dir)
    return log


class FlakyBackend(FakeBackend):
    """Raises in generate for batch size 2: an engine error mid-study."""

    def generate(self, prompts: list[str]) -> GenerationOutput:
        if self.config.batch_size == 2:
            raise BackendError("CUDA error: an illegal memory access was encountered")
        return super().generate(prompts)


def test_backend_raises(fake_backend: str, tmp_path: Path) -> None:
    register_backend("flaky", FlakyBackend, child_processes=False)
    study = fake_study("flaky")
    res = study.run(results_dir=tmp_path, progress=False)
    assert not res.interrupted
    assert [r.status for r in res.results].count("failed") == 2
    assert all("illegal memory" in r.error.message for r in res.failed if r.error)
    states = journal_states(res.dir)
    assert sorted(states.values()) == ["failed"] * 2 + ["finished"] * 4
    assert loads_cleanly(res.dir) == 6
    assert resume_and_check(study, res.dir).started == []
    rerun = resume_and_check(study, res.dir, retry_failed=True)
    assert len(rerun.started) == 2


def test_child_sigkilled_mid_experiment(fake_backend: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.02")
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1, max_output_tokens=60)
    killed: list[int] = []

    def on_event(event: Any) -> None:
        if event.kind == "started" and event.index == 0:
            kill_later(lambda: killed.append(wait_for_child()) or killed[-1], delay_s=0.3)

    res = study.run(runner="subprocess", results_dir=tmp_path, progress=False, callbacks=[on_event])
    assert [r.status for r in res.results] == ["failed", "ok"]
    error = res.results[0].error
    assert error is not None and error.category == "crashed" and "SIGKILL" in error.message
    assert killed and not alive(killed[0])
    assert sorted(journal_states(res.dir).values()) == ["failed", "finished"]
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0")
    assert len(resume_and_check(study, res.dir, retry_failed=True).started) == 1


def test_experiment_timeout(fake_backend: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.02")
    study = fake_study(fake_backend, sizes=(2,), cycles=1, timeout_s=4.0)
    study = study.sweep(max_output_tokens=[2, 1000])
    res = study.run(runner="subprocess", results_dir=tmp_path, progress=False)
    by_tokens = {r.config["max_output_tokens"]: r for r in res.results}
    assert by_tokens[2].status == "ok"
    slow = by_tokens[1000]
    assert slow.status == "failed" and slow.error is not None
    assert slow.error.category == "timeout" and "timeout_s=4.0" in slow.error.message
    states = journal_states(res.dir)
    assert sorted(states.values()) == ["failed", "finished"]
    assert resume_and_check(study, res.dir).started == []


class LostMidWindow(FakeNvml):
    """A fake NVML whose GPU falls off the bus right after the window's first counter read."""

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        value = super().nvmlDeviceGetTotalEnergyConsumption(handle)
        self.gpus[handle.index].fail_after_s = self.now()
        return value


class MeteredRunner(Runner):
    """In-process, metered with a fake NVML per experiment: lost mid-window or at open."""

    name = "local"
    faults: ClassVar[dict[int, str]] = {2: "mid-window", 3: "at-open"}

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        fault = self.faults.get(config.batch_size)
        gpu = FakeGpu(power_w=150.0, fail_after_s=0.0 if fault == "at-open" else None)
        nvml = LostMidWindow([gpu]) if fault == "mid-window" else FakeNvml([gpu])
        meter = NvmlMeter([0], poll_interval_s=0.005, nvml=nvml)
        try:
            return Harness(meter=meter).run(config, cycle=cycle, study=study)
        finally:
            meter.close()


def test_meter_fails_mid_window(fake_backend: str, tmp_path: Path) -> None:
    FakeBackend.step_s = 0.005
    study = fake_study(fake_backend, cycles=1, max_output_tokens=4, energy={"source": "nvml"})
    res = study.run(runner=MeteredRunner(), results_dir=tmp_path, progress=False)
    by_size = {r.config["batch_size"]: r for r in res.results}
    healthy, lost, dead = by_size[1], by_size[2], by_size[3]
    assert healthy.status == "ok" and healthy.energy_gross_j and healthy.energy_gross_j > 0
    assert lost.status == "ok" and lost.energy_gross_j is None
    assert "gpu_read_error" in lost.quality_flags and not lost.quality_ok
    assert any("could not be read" in w for w in lost.warnings)
    assert dead.status == "failed" and dead.error is not None and "NVML" in dead.error.message
    assert sorted(journal_states(res.dir).values()) == ["failed", "finished", "finished"]
    df = res.df.set_index("batch_size")
    assert df.loc[2, "energy_per_output_token_j"] != df.loc[2, "energy_per_output_token_j"]
    assert resume_and_check(study, res.dir).started == []


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.parametrize("fault", ["enospc-write", "eacces-link"])
def test_result_write_fails(fake_backend: str, tmp_path: Path, monkeypatch, fault: str) -> None:
    study = fake_study(fake_backend, sizes=(1, 2), cycles=2)
    real_write, real_link = os.write, os.link
    published: list[str] = []

    def write(fd: int, data: Any) -> int:
        if ".tmp-" in _fd_path(fd) and len(published) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if len(published) >= 2:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_link(src, dst, *args, **kwargs)
        published.append(str(dst))

    if fault == "enospc-write":
        monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "link", link)
    res = study.run(results_dir=tmp_path, progress=False)
    monkeypatch.undo()
    assert [r.status for r in res.results] == ["ok", "ok", "failed", "failed"]
    cause = "No space left" if fault == "enospc-write" else "Permission denied"
    for r in res.failed:
        assert r.error is not None and r.error.category == "disk" and cause in r.error.message
    files = result_files(res.dir)
    assert len(files) == 2
    for r in res.results[:2]:
        assert files[(r.experiment_id, r.cycle)] == r.to_json().encode()
    journal = [json.loads(x) for x in (res.dir / "journal.jsonl").read_text().splitlines()]
    failed = [x for x in journal if x["event"] == "failed"]
    assert len(failed) == 2 and {x["category"] for x in failed} == {"disk"}
    assert not list(res.dir.glob(".*.tmp-*"))
    assert len(resume_and_check(study, res.dir).started) == 2  # the machine's failures
    assert resume_and_check(study, res.dir, retry_failed=True).started == []


def test_plain_resume_reruns_machine_failures_not_experiment_failures(
    fake_backend: str, tmp_path: Path, monkeypatch
) -> None:
    """The engine's failures (batch size 2) wait for retry_failed; results the disk refused
    (batch size 3) are measured again by a plain resume, and the resume says how many."""
    register_backend("flaky", FlakyBackend, child_processes=False)
    study = fake_study("flaky")

    def refuse(src: str, published: list[str]) -> bool:
        return len(published) >= 2 and json.loads(Path(src).read_text())["status"] == "ok"

    refuse_publishing(monkeypatch, refuse)
    first = study.run(results_dir=tmp_path, progress=False)
    monkeypatch.undo()
    categories = sorted(r.error.category for r in first.failed if r.error)
    assert categories == ["disk", "disk", "error", "error"]
    assert loads_cleanly(first.dir) == 6  # the disk's failures are kept as failed rows
    with pytest.warns(ResumeWarning, match="2 failed experiments were not run again"):
        log = resume_and_check(study, first.dir)
    assert len(log.started) == 2
    assert {e.label for e in log.events if e.kind == "started"} == {"batch_size=3"}
    again = Study.resume(first.dir, progress=False)
    assert (again.skipped, again.rerun_machine, again.failed_kept) == (6, 0, 2)
    assert loads_cleanly(first.dir) == 6


class Injector:
    """Raises KeyboardInterrupt at the ``at``-th tick (0: only count), before or after the call."""

    def __init__(self, at: int = 0, after: bool = False) -> None:
        self.at, self.after, self.ticks, self.fired = at, after, 0, ""

    def tick(self, where: str) -> None:
        self.ticks += 1
        if self.ticks == self.at:
            self.fired = where
            raise KeyboardInterrupt(where)


class InterruptibleBackend(FakeBackend):
    injector: ClassVar[Injector] = Injector()

    def load(self) -> None:
        self.injector.tick("backend.load")

    def generate(self, prompts: list[str]) -> GenerationOutput:
        self.injector.tick("backend.generate")
        return super().generate(prompts)


def _arm(monkeypatch: pytest.MonkeyPatch, root: Path, injector: Injector) -> None:
    """Ticks at the OS boundary: every write and link of the study's files."""
    real_write, real_link = os.write, os.link

    def around(where: str, call: Any) -> Any:
        if not injector.after:
            injector.tick(where)
        value = call()
        if injector.after:
            injector.tick(where)
        return value

    def write(fd: int, data: Any) -> int:
        path = _fd_path(fd)
        if not path.startswith(str(root)):
            return real_write(fd, data)
        return around(f"os.write {Path(path).name}", lambda: real_write(fd, data))

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        return around("os.link", lambda: real_link(src, dst, *args, **kwargs))

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "link", link)


def _interrupted_run(tmp: Path, injector: Injector, monkeypatch: pytest.MonkeyPatch) -> Any:
    InterruptibleBackend.injector = injector
    study = fake_study("interruptible", sizes=(1, 2), cycles=2)
    run = prepare_run(study.config, results_dir=tmp, progress=False)
    run.subscribe(lambda event: injector.tick(f"event {event.kind}"))
    with monkeypatch.context() as patch:
        _arm(patch, tmp, injector)
        result = run.execute()
    InterruptibleBackend.injector = Injector()
    return study, result


def test_keyboard_interrupt_at_random_points(fake_backend: str, tmp_path: Path, monkeypatch):
    register_backend("interruptible", InterruptibleBackend, child_processes=False)
    counter = Injector()
    _, clean = _interrupted_run(tmp_path / "count", counter, monkeypatch)
    assert not clean.interrupted and counter.ticks >= 30
    rng = random.Random(20240611)
    cases = sorted(rng.sample(range(1, counter.ticks + 1), 24))
    seen: set[str] = set()
    for i, at in enumerate(cases):
        injector = Injector(at, after=rng.random() < 0.5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study, res = _interrupted_run(tmp_path / f"case{i}", injector, monkeypatch)
        assert injector.fired, at
        complete = len(result_files(res.dir)) == 4
        assert res.interrupted or complete, (at, injector.fired)
        said = any("interrupted after" in str(w.message) for w in caught)
        assert said == res.interrupted, (at, injector.fired)
        seen.add("os.write result tmp" if ".tmp-" in injector.fired else injector.fired)
        journal_states(res.dir)
        loads_cleanly(res.dir)
        log = resume_and_check(study, res.dir)
        assert bool(log.started) != complete, (at, injector.fired)
        assert len(result_files(res.dir)) == 4, (at, injector.fired)
        assert set(journal_states(res.dir).values()) == {"finished"}
    assert len(seen) >= 5, seen


def test_kernel_interrupt_kills_the_subprocess_child(
    fake_backend: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0.05")
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1, max_output_tokens=400)
    child: list[int] = []

    def sigint_soon(event: Any) -> None:
        if event.kind == "started" and event.index == 0:

            def go() -> None:
                child.append(wait_for_child())
                threading.Event().wait(0.3)
                os.kill(os.getpid(), signal.SIGINT)

            threading.Thread(target=go, daemon=True).start()

    with pytest.warns(UserWarning, match="interrupted"):
        res = study.run(
            runner="subprocess", results_dir=tmp_path, progress=False, callbacks=[sigint_soon]
        )
    assert res.interrupted and res.results == []
    assert child and not alive(child[0])
    assert list(journal_states(res.dir).values()).count("interrupted") == 1
    monkeypatch.setenv("LLEM_FAKE_STEP_S", "0")
    assert len(resume_and_check(study, res.dir).started) == 2
