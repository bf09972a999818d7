"""Progress of a study run: the events the loop emits, and views that fold them.

``ProgressEvent`` is what every view subscribes to (widgets, tqdm, a run handle).
``ProgressTracker`` folds events into a thread-safe ``Progress`` snapshot: counts,
the running experiment, elapsed time, an ETA and one state per experiment.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.run.plan import Task


@dataclass
class ProgressEvent:
    """What the loop tells progress views, one per state change.

    ``kind``: ``started``, ``finished`` (``status`` ok or failed) or ``interrupted``.
    ``index``/``total`` count this run's experiments (resume skips the done ones).
    """

    kind: str
    index: int
    total: int
    experiment_id: str = ""
    cycle: int = 0
    backend: str = ""
    label: str = ""
    status: str = ""
    error_category: str | None = None
    result: ExperimentResult | None = None
    elapsed_s: float = 0.0


Callback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class ExperimentState:
    """One experiment × cycle of the run: queued, running, finished, failed or interrupted."""

    index: int
    experiment_id: str
    cycle: int
    backend: str
    state: str = "queued"
    error_category: str | None = None
    label: str = ""


@dataclass(frozen=True)
class Progress:
    """A plain snapshot of a run. ``finished`` counts ok results; ``skipped``: done before."""

    total: int
    finished: int
    failed: int
    interrupted: int
    skipped: int
    running: str | None
    running_cycle: int | None
    elapsed_s: float
    eta_s: float | None
    done: bool
    states: tuple[ExperimentState, ...]

    @property
    def completed(self) -> int:
        return self.finished + self.failed

    @property
    def remaining(self) -> int:
        return self.total - self.completed


class ProgressTracker:
    """A progress callback that keeps the latest ``Progress`` of one run."""

    def __init__(self, tasks: Sequence[Task], skipped: int = 0) -> None:
        self._lock = threading.Lock()
        self._states = [
            ExperimentState(t.index, t.experiment_id, t.cycle, t.backend, label=t.label)
            for t in tasks
        ]
        self._skipped = skipped
        self._counts = {"finished": 0, "failed": 0, "interrupted": 0}
        self._running: int | None = None
        self._t0 = time.perf_counter()
        self._t_end: float | None = None

    def __call__(self, event: ProgressEvent) -> None:
        state = {"started": "running", "interrupted": "interrupted"}.get(event.kind)
        if event.kind == "finished":
            state = "failed" if event.status == "failed" else "finished"
        if state is None or not 0 <= event.index < len(self._states):
            return
        with self._lock:
            old = self._states[event.index]
            self._states[event.index] = replace(
                old, state=state, error_category=event.error_category
            )
            if state in self._counts:
                self._counts[state] += 1
            self._running = event.index if state == "running" else None

    def close(self) -> None:
        """The run ended: freeze the clock."""
        with self._lock:
            self._running = None
            self._t_end = time.perf_counter()

    def snapshot(self) -> Progress:
        with self._lock:
            end = self._t_end if self._t_end is not None else time.perf_counter()
            elapsed = end - self._t0
            completed = self._counts["finished"] + self._counts["failed"]
            remaining = len(self._states) - completed
            eta: float | None = None
            if self._t_end is not None:
                eta = 0.0
            elif completed:
                eta = elapsed / completed * remaining
            running = self._states[self._running] if self._running is not None else None
            return Progress(
                total=len(self._states),
                finished=self._counts["finished"],
                failed=self._counts["failed"],
                interrupted=self._counts["interrupted"],
                skipped=self._skipped,
                running=running.experiment_id if running else None,
                running_cycle=running.cycle if running else None,
                elapsed_s=elapsed,
                eta_s=eta,
                done=self._t_end is not None,
                states=tuple(self._states),
            )


class _TqdmListener:
    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="experiments", unit="exp")
        self._failed = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "finished":
            self._failed += event.status == "failed"
            self._bar.set_postfix(failed=self._failed, last=event.label or event.experiment_id)
            self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


ViewFactory = Callable[[int], Any]
"""Given the number of experiments, a progress view (a callback with ``close()``) or None."""

NOTEBOOK_VIEW = "llem_nb.widgets.progress:notebook_progress"
"""The built-in view (the live widget in a kernel) as a lazy ``module:function`` path, like
the plugin registries' built-ins: imported only when a run asks for progress, so this
layer never imports a view and importing llem_nb wires nothing."""

_VIEWS: list[ViewFactory | str] = [NOTEBOOK_VIEW]


def register_view(factory: ViewFactory | str) -> None:
    """Offer a progress view for ``progress=True``, tried before the ones already known."""
    if factory not in _VIEWS:
        _VIEWS.insert(0, factory)


def _load_view(ref: ViewFactory | str) -> ViewFactory:
    if isinstance(ref, str):
        module, _, name = ref.partition(":")
        factory: ViewFactory = getattr(importlib.import_module(module), name)
        return factory
    return ref


def default_view(total: int) -> Any:
    """The first registered view that applies here (the live widget in a kernel), else a
    tqdm bar, else None."""
    for ref in list(_VIEWS):
        try:
            view = _load_view(ref)(total)
        except ImportError:
            view = None
        if view is not None:
            return view
    try:
        return _TqdmListener(total)
    except ImportError:
        return None
