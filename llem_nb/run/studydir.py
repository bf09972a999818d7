"""Opening a study directory, new or resumed: find it, refuse a changed definition, lock it,
and plan what is left to run.

A resume refuses a changed definition (``llem_nb.run.definition``).

The plan trusts result files over the journal: a (hash, cycle) pair is done when
its result file loads and names that pair. So a finished pair whose file is
missing or corrupt is rerun (with a warning, the bad file kept aside as
``*.result.json.corrupt-N``), and a pair whose file landed just before a crash,
before its journal line, is adopted rather than measured twice. A failure that was the
machine's (``MACHINE_FAILURES``: the disk refused the result, the run was interrupted, the
worker died) is measured again by a plain resume; the experiment's own failures only with
``retry_failed``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from llem_nb.config.study import StudyConfig
from llem_nb.errors import ConfigError, LlemWarning, ResultError
from llem_nb.results.schema import MACHINE_FAILURES, RESULT_KIND
from llem_nb.results.store import ResultStore, _fsync_dir
from llem_nb.run.definition import STUDY_FILE, check_definition, recorded_definition
from llem_nb.run.journal import JOURNAL_NAME, Journal, JournalState, JournalWarning, replay
from llem_nb.run.lock import StudyLock

if TYPE_CHECKING:
    from llem_nb.run.plan import Task


class ResumeWarning(LlemWarning):
    """Resume found something to repair: a missing or corrupt result file, no earlier run."""


def find_latest(results_dir: str | os.PathLike[str], name: str) -> Path | None:
    """The most recently journaled dir of study ``name`` under ``results_dir``, if any."""
    root = Path(results_dir)
    if not root.is_dir():
        return None
    found: list[tuple[float, str, Path]] = []
    for candidate in root.glob(f"{name}_*"):
        spec = candidate / STUDY_FILE
        if not spec.is_file():
            continue
        try:
            if StudyConfig.from_yaml(spec).name != name:
                continue
        except ConfigError:
            continue
        journal = candidate / JOURNAL_NAME
        mtime = (journal if journal.exists() else spec).stat().st_mtime
        found.append((mtime, candidate.name, candidate))
    return max(found)[2] if found else None


def file_status(path: Path, task: Task) -> tuple[str | None, str]:
    """(``ok``/``failed``/``machine``, "") for a result file that loads and names ``task``
    (``machine``: failed, for a reason in ``MACHINE_FAILURES``); else (None, why)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return None, "is missing"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except (ValueError, RecursionError):
        return None, "is not valid JSON (truncated or corrupt)"
    if not isinstance(data, dict) or data.get("kind") != RESULT_KIND:
        return None, "is not an llem_nb result"
    got = (data.get("config_hash"), data.get("cycle"))
    if got != (task.config_hash, task.cycle):
        return None, f"names another experiment ({got[0]!s:.12}, cycle {got[1]})"
    status = data.get("status")
    if status not in ("ok", "failed"):
        return None, f"has an unknown status {status!r}"
    error = data.get("error")
    if status == "failed" and isinstance(error, dict) and error.get("category") in MACHINE_FAILURES:
        return "machine", ""
    return str(status), ""


def retire(path: Path, reason: str) -> Path | None:
    """Move a bad or superseded result file aside (kept, but no longer loaded)."""
    if not path.exists():
        return None
    for k in range(1, 10_000):
        target = path.with_name(f"{path.name}.{reason}-{k}")
        if not target.exists():
            os.replace(path, target)
            return target
    raise FileExistsError(f"too many retired copies of {path}")


@dataclass
class ResumePlan:
    """Which tasks run again, which are done, which done ones the journal did not know,
    and which result files to move aside before rerunning (applied only once checks pass).

    ``machine``: the tasks in ``run`` that the machine failed last time; ``failed``: the
    tasks in ``done`` that failed on their own and wait for ``retry_failed``."""

    run: list[Task] = field(default_factory=list)
    done: list[Task] = field(default_factory=list)
    machine: list[Task] = field(default_factory=list)
    failed: list[Task] = field(default_factory=list)
    adopted: list[tuple[Task, str]] = field(default_factory=list)
    retire: list[tuple[Path, str]] = field(default_factory=list)


def plan_resume(
    tasks: Sequence[Task], state: JournalState, store: ResultStore, *, retry_failed: bool
) -> ResumePlan:
    """Split ``tasks`` into done and to-run (pure: files are only read, see ``retire``)."""
    plan = ResumePlan()
    for task in tasks:
        path = store.path_for(task.experiment_id, task.cycle)
        pair = state.get(task.config_hash, task.cycle)
        journaled = pair.state if pair is not None else None
        status, why = file_status(path, task)
        if status is None:
            if journaled == "finished":
                warnings.warn(
                    f"result of {task.experiment_id} cycle {task.cycle} {why}: "
                    f"measuring it again ({path})",
                    ResumeWarning,
                    stacklevel=4,
                )
            lost = pair is not None and _machine_failed(pair.state, pair.category)
            if journaled == "failed" and not lost and why == "is missing" and not retry_failed:
                plan.done.append(task)
                plan.failed.append(task)
                continue
            if path.exists():
                plan.retire.append((path, "corrupt"))
            plan.run.append(task)
            if lost:
                plan.machine.append(task)
            continue
        if status == "machine" or (status == "failed" and retry_failed):
            plan.retire.append((path, "failed"))
            plan.run.append(task)
            if status == "machine":
                plan.machine.append(task)
            continue
        if status == "failed":
            plan.failed.append(task)
        wanted = "finished" if status == "ok" else "failed"
        if journaled != wanted:
            plan.adopted.append((task, wanted))
        plan.done.append(task)
    return plan


def _machine_failed(state: str, category: str | None) -> bool:
    """A journaled pair the machine lost: started and never ended (the process died),
    interrupted, or failed for a reason in ``MACHINE_FAILURES``."""
    return state in ("started", "interrupted") or (
        state == "failed" and category in MACHINE_FAILURES
    )


def _say_failed_kept(plan: ResumePlan, study_dir: Path) -> None:
    if plan.failed:
        n = len(plan.failed)
        warnings.warn(
            f"{n} failed experiment{'s were' if n > 1 else ' was'} not run again in "
            f"{study_dir} (failed on {'their' if n > 1 else 'its'} own, not for the machine); "
            "resume with "
            "retry_failed=True (llem-nb resume --retry-failed) to measure them again",
            ResumeWarning,
            stacklevel=5,
        )


@dataclass
class OpenedDir:
    """A locked study dir with its journal open, and the tasks this run must do
    (``rerun_machine``, ``failed_kept``: ``ResumePlan.machine`` and ``.failed``, counted)."""

    dir: Path
    tasks: list[Task]
    skipped: int
    resumed: bool
    journal: Journal
    lock: StudyLock
    rerun_machine: int = 0
    failed_kept: int = 0


def new_study_dir(results_dir: Path, name: str) -> Path:
    """A fresh ``<results_dir>/<name>_<timestamp>[-N]`` (mkdir is atomic: never shared)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = results_dir / (f"{name}_{stamp}" + (f"-{i}" if i else ""))
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise ResultError(f"could not create a fresh study dir under {results_dir}")


def _target(name: str, results_dir: Path, resume: bool | str | os.PathLike[str]) -> Path | None:
    if resume is False or resume is None:
        return None
    if resume is True:
        found = find_latest(results_dir, name)
        if found is None:
            warnings.warn(
                f"resume=True: no earlier run of study {name!r} under {results_dir}; "
                "starting a new one",
                ResumeWarning,
                stacklevel=5,
            )
        return found
    target = Path(resume)
    if not target.is_dir():
        raise ConfigError(
            f"resume={str(resume)!r} is not a directory",
            field="resume",
            fix="pass True (latest run under results_dir) or a study dir (StudyResult.dir)",
        )
    return target


def _write_definition(study_dir: Path, config: StudyConfig) -> None:
    """``study.yaml`` whole or not at all, also across a power cut: a temporary file,
    fsync'd, renamed over the old one, then the directory fsync'd."""
    tmp = study_dir / f".{STUDY_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(config.to_yaml_text())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, study_dir / STUDY_FILE)
    _fsync_dir(study_dir)


def open_study_dir(
    config: StudyConfig,
    tasks: list[Task],
    *,
    results_dir: Path,
    resume: bool | str | os.PathLike[str] = False,
    retry_failed: bool = False,
    force: bool = False,
    sync_interval_s: float = 1.0,
    check: Callable[[list[Task]], None] = lambda tasks: None,
) -> OpenedDir:
    """Create (or reopen) the study dir, lock it, journal the session and queue the tasks.

    ``check(tasks)`` (the preflight) sees exactly the tasks this run will execute and
    runs before anything is written; whatever it raises leaves the dir as it was.
    """
    study_dir = _target(config.name, results_dir, resume)
    changes: list[str] = []
    if study_dir is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JournalWarning)  # said once, when planning below
            recorded = recorded_definition(replay(study_dir / JOURNAL_NAME))
        changes = check_definition(study_dir, config, force=force, recorded=recorded)
    resumed = study_dir is not None
    if study_dir is None:
        check(list(tasks))
        study_dir = new_study_dir(results_dir, config.name)
    lock = StudyLock(study_dir).acquire()
    try:
        plan = ResumePlan(run=list(tasks))
        if resumed:
            state = replay(study_dir / JOURNAL_NAME)
            plan = plan_resume(tasks, state, ResultStore(study_dir), retry_failed=retry_failed)
            check(plan.run)
            for path, reason in plan.retire:
                retire(path, reason)
            _say_failed_kept(plan, study_dir)
        if changes or not resumed:
            _write_definition(study_dir, config)
        journal = Journal(study_dir / JOURNAL_NAME, sync_interval_s=sync_interval_s)
        journal.append(
            "session",
            phase="open",
            pid=os.getpid(),
            resumed=resumed,
            planned=len(plan.run),
            skipped=len(plan.done),
            rerun_machine=len(plan.machine),
            failed_kept=len(plan.failed),
            changes=changes,
            definition=config.model_dump(mode="json"),
            sync=False,
        )
        records = [{"event": e, **t.pair, "recovered": True} for t, e in plan.adopted]
        records += [{"event": "queued", **t.pair} for t in plan.run]
        journal.append_many(records)
    except BaseException:
        lock.release()
        raise
    return OpenedDir(
        study_dir,
        plan.run,
        len(plan.done),
        resumed,
        journal,
        lock,
        rerun_machine=len(plan.machine),
        failed_kept=len(plan.failed),
    )
