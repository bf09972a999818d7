"""Running a study: schedule point × cycle, dispatch to runners, store and journal every result.

``run.start.prepare_run`` does everything that can fail on bad input before a byte is
written and opens the study dir (lock, ``study.yaml``, ``journal.jsonl``);
``StudyRun.execute`` runs the tasks.

- A failed experiment never stops the study: it becomes a ``status="failed"`` row.
- A result that cannot be written (disk full, no permission) marks that experiment
  failed with the cause in the journal; earlier results are untouched.
- KeyboardInterrupt (the kernel's stop button) ends the loop cleanly: a subprocess
  child is killed, the running experiment is journaled ``interrupted``, and the
  partial ``StudyResult`` is returned with ``interrupted=True`` (nothing re-raised,
  never ``sys.exit``). ``StudyRun.stop()`` does the same from another thread; the CLI
  turns SIGTERM into a KeyboardInterrupt (``llem_nb.cli.signals``) to get the same.
- Resume reruns exactly the pairs that are not done, and those the machine failed (see
  ``llem_nb.run.studydir``).
- ``StudyConfig.reuse`` goes to every runner; one that keeps a model is told to free it when
  another runner takes over and when the study ends: a study never holds two models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llem_nb.config.study import InvalidPoint, StudyConfig
from llem_nb.energy.device import Nvml
from llem_nb.errors import LlemWarning, ResultError
from llem_nb.results.schema import ExperimentResult
from llem_nb.results.store import ResultStore
from llem_nb.run.journal import Journal
from llem_nb.run.lock import StudyLock
from llem_nb.run.outcome import failed_result as _failed
from llem_nb.run.outcome import release
from llem_nb.run.outcome import run_task as _run_one
from llem_nb.run.pause import Pause
from llem_nb.run.plan import (
    Task,
)
from llem_nb.run.progress import Callback, ProgressEvent
from llem_nb.run.result import StudyResult
from llem_nb.runners.base import Runner


class StudyRun:
    """One run of a study in its locked dir; ``execute`` once, ``stop`` from any thread."""

    def __init__(
        self,
        *,
        config: StudyConfig,
        study_dir: Path,
        tasks: list[Task],
        skipped: int,
        resumed: bool,
        rerun_machine: int = 0,
        failed_kept: int = 0,
        invalid: list[InvalidPoint],
        runners: Mapping[str, Runner],
        owned_runners: bool,
        journal: Journal,
        lock: StudyLock,
        nvml: Nvml | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.dir = study_dir
        self.tasks = [dataclasses.replace(t, index=i) for i, t in enumerate(tasks)]
        self.skipped = skipped
        self.resumed = resumed
        self.rerun_machine = rerun_machine
        self.failed_kept = failed_kept
        self.invalid = invalid
        self.runners = dict(runners)
        self._owned = owned_runners
        self._journal = journal
        self._lock = lock
        self._store = ResultStore(study_dir)
        self._nvml = nvml
        self._listeners: list[Callback] = []
        self._closers: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._running: tuple[Task, Runner] | None = None
        self._pending: dict[Any, Task] = {}
        self._t0 = time.perf_counter()
        self._executed = False
        self._holder: Runner | None = None
        for runner in self._distinct_runners():
            runner.reuse = config.reuse

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def subscribe(self, callback: Callback, *, first: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` for every ProgressEvent; returns an unsubscribe function."""
        self._listeners.insert(0 if first else len(self._listeners), callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def stop(self) -> None:
        """Stop after (subprocess/container: instead of) the current experiment, cleanly."""
        self._stop.set()
        running = self._running
        if running is not None:
            running[1].cancel()
        if self._pending:
            self._cancel_all()

    def _distinct_runners(self) -> list[Runner]:
        return list({id(r): r for r in self.runners.values()}.values())

    def _cancel_all(self) -> None:
        """Cancel every in-flight task of every runner (concurrent dispatch)."""
        for runner in self._distinct_runners():
            with contextlib.suppress(Exception):
                runner.cancel()

    def execute(self) -> StudyResult:
        """Run the tasks, store and journal each result; always releases the dir's lock."""
        if self._executed:
            raise ResultError(
                f"this run of study {self.name!r} has already executed",
                fix="call study.run() again, or Study.resume(dir) to finish what is left",
            )
        self._executed = True
        out = StudyResult(
            name=self.name,
            dir=self.dir,
            invalid=self.invalid,
            skipped=self.skipped,
            resumed=self.resumed,
            rerun_machine=self.rerun_machine,
            failed_kept=self.failed_kept,
        )
        self._t0 = time.perf_counter()
        pause: Pause | None = None
        try:
            pause = Pause(
                self.config.gap_seconds, self.config.cooldown, self._stop.wait, nvml=self._nvml
            )
            for task, result in self._dispatch(pause):
                self._finish(task, result, out)
                if self._stop.is_set():
                    break
        except KeyboardInterrupt:
            self._interrupt_running(out)
            warnings.warn(
                f"study {self.name!r} interrupted after {len(out.results)} of {self.total} "
                f"experiments; finished results are in {self.dir}; resume with "
                f"Study.resume({str(self.dir)!r})",
                LlemWarning,
                stacklevel=4,
            )
        finally:
            if pause is not None:
                pause.close()
            self._close(out)
        out.interrupted = out.interrupted or (self._stop.is_set() and self._unfinished(out))
        return out

    def _unfinished(self, out: StudyResult) -> bool:
        return len(out.results) < self.total

    def _dispatch(self, pause: Pause) -> Iterator[tuple[Task, ExperimentResult]]:
        """Run tasks one by one, yielding each result as it arrives.

        A study whose one runner is concurrent (Ray) goes to ``_dispatch_concurrent``.
        """
        runners = self._distinct_runners()
        if len(runners) == 1 and runners[0].concurrent:
            yield from self._dispatch_concurrent(runners[0])
            return
        for task in self.tasks:
            if self._stop.is_set():
                return
            record = pause.before(first=task.index == 0)
            if self._stop.is_set():
                return
            runner = self.runners[task.backend]
            self._hand_over(runner)
            self._start(task, runner)
            self._announce_next(task)
            yield task, _run_one(runner, task, self.name, record)

    def _announce_next(self, task: Task) -> None:
        """Tell the next task's runner what comes next (Docker creates its container while
        this one runs)."""
        if task.index + 1 < len(self.tasks):
            after = self.tasks[task.index + 1]
            with contextlib.suppress(Exception):
                self.runners[after.backend].prepare(
                    after.point.config, cycle=after.cycle, study=self.name
                )

    def _dispatch_concurrent(self, runner: Runner) -> Iterator[tuple[Task, ExperimentResult]]:
        """Submit every task (the cluster queues them), yield results in arrival order.

        Gaps and cooldowns do not apply: tasks run on different machines at once.
        """
        for task in self.tasks:
            if self._stop.is_set():
                break
            handle = runner.submit(task.point.config, cycle=task.cycle, study=self.name)
            self._pending[handle] = task
            self._journal.append("started", **task.pair, sync=False)
            self._emit("started", task)
        while self._pending:
            for handle in runner.wait(list(self._pending), timeout_s=0.5):
                task = self._pending.pop(handle)
                try:
                    result = runner.result(handle)
                except Exception as exc:
                    if self._stop.is_set():
                        self._mark_interrupted(task)
                        continue
                    yield task, _failed(task, self.name, exc, runner)
                    continue
                yield (
                    task,
                    result.model_copy(update={"study": self.name, "point": task.point.overrides}),
                )

    def _hand_over(self, runner: Runner) -> None:
        """Let the previous runner free what it keeps before ``runner`` loads anything."""
        if self._holder is not None and self._holder is not runner:
            release(self._holder)
        self._holder = runner

    def _start(self, task: Task, runner: Runner) -> None:
        self._running = (task, runner)
        self._journal.append("started", **task.pair, sync=False)
        self._emit("started", task)

    def _finish(self, task: Task, result: ExperimentResult, out: StudyResult) -> None:
        runner = self.runners[task.backend]
        if self._stop.is_set() and result.status == "failed":
            self._interrupt_running(out)
            return
        durable = self._journal.sync_due()
        try:
            self._store.write(result, sync=durable)
        except ResultError as exc:
            result = _failed(task, self.name, exc, runner, category="disk")
            with contextlib.suppress(ResultError):
                self._store.write(result, sync=durable)
        out.results.append(result)
        category = result.error.category if result.error else None
        event = "finished" if result.status == "ok" else "failed"
        self._journal.append(event, **task.pair, category=category, sync=durable)
        self._running = None
        self._emit("finished", task, status=result.status, error_category=category, result=result)

    def _interrupt_running(self, out: StudyResult) -> None:
        out.interrupted = True
        running, self._running = self._running, None
        tasks = [running[0]] if running is not None else []
        if self._pending:
            self._cancel_all()
            tasks.extend(self._pending.values())
            self._pending.clear()
        for task in tasks:
            self._mark_interrupted(task)

    def _mark_interrupted(self, task: Task) -> None:
        self._journal.append("interrupted", **task.pair, sync=True)
        self._emit("interrupted", task, status="interrupted")

    def _emit(self, kind: str, task: Task, **extra: Any) -> None:
        event = ProgressEvent(
            kind=kind,
            index=task.index,
            total=self.total,
            experiment_id=task.experiment_id,
            cycle=task.cycle,
            backend=task.backend,
            label=task.label,
            elapsed_s=time.perf_counter() - self._t0,
            **extra,
        )
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                warnings.warn(
                    f"progress callback {listener!r} raised {exc!r}; it is unsubscribed",
                    LlemWarning,
                    stacklevel=2,
                )
                with contextlib.suppress(ValueError):
                    self._listeners.remove(listener)

    def _close(self, out: StudyResult) -> None:
        try:
            done = sum(r.status == "ok" for r in out.results)
            self._journal.append(
                "session",
                phase="close",
                finished=done,
                failed=len(out.results) - done,
                interrupted=out.interrupted or self._stop.is_set(),
                sync=True,
            )
        except KeyboardInterrupt:
            out.interrupted = out.interrupted or self._unfinished(out)
        finally:
            with contextlib.suppress(OSError):
                self._journal.close()
            with contextlib.suppress(Exception):  # only a cache: load_results rebuilds it
                from llem_nb.results.frame import refresh_index  # noqa: PLC0415 - keeps loop light (numpy, pandas)

                refresh_index(self.dir)
            self._lock.release()
            for closer in self._closers:
                with contextlib.suppress(Exception):
                    closer()
            for runner in self._distinct_runners():
                release(runner)
            if self._owned:
                for runner in self._distinct_runners():
                    with contextlib.suppress(Exception):
                        runner.close()
