"""RunHandle: a study running in a background thread, so the notebook stays usable.

``study.start(...)`` checks everything and opens the study dir in the caller's
thread (bad input raises there), then runs the loop in a daemon thread. The
handle reports progress, accepts subscribers, and stops the run cleanly: a
subprocess or container experiment is killed and journaled ``interrupted``; an
in-process one finishes first (it cannot be killed safely).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from llem_nb.run.progress import Callback, Progress, ProgressTracker

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from llem_nb.run.loop import StudyRun
    from llem_nb.run.result import StudyResult


class RunHandle:
    """A running study: ``wait()``, ``stop()``, ``done``, ``progress``, ``subscribe(cb)``."""

    def __init__(self, run: StudyRun) -> None:
        self._run = run
        self._tracker = ProgressTracker(run.tasks, run.skipped)
        run.subscribe(self._tracker, first=True)
        self._result: StudyResult | None = None
        self._error: BaseException | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"llem-study-{run.name}", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        try:
            self._result = self._run.execute()
        except BaseException as exc:
            self._error = exc
        finally:
            self._tracker.close()
            self._finished.set()

    @property
    def dir(self) -> Path:
        """The study dir results are written to."""
        return self._run.dir

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def progress(self) -> Progress:
        """A snapshot: counts, running experiment, elapsed, ETA, per-experiment states."""
        return self._tracker.snapshot()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Receive every later ProgressEvent (from the run's thread); returns unsubscribe."""
        return self._run.subscribe(callback)

    def stop(self) -> None:
        """Ask the run to stop; returns at once. ``wait()`` then gives the partial result."""
        self._run.stop()

    def wait(self, timeout: float | None = None) -> StudyResult:
        """Block until the run ends and return its StudyResult.

        Raises ``TimeoutError`` after ``timeout`` seconds (the run goes on), and re-raises
        an error that ended the run. A KeyboardInterrupt while waiting stops the run and
        returns the partial result, as ``study.run()`` would.
        """
        try:
            finished = self._finished.wait(timeout)
        except KeyboardInterrupt:
            self.stop()
            self._finished.wait()
            finished = True
        if not finished:
            raise TimeoutError(f"study {self._run.name!r} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def __repr__(self) -> str:
        p = self.progress
        state = "done" if p.done else f"running {p.running or '-'}"
        return (
            f"RunHandle({self._run.name!r}, {p.completed}/{p.total} done, "
            f"{p.failed} failed, {state})"
        )
