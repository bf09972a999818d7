"""Time, waiting and background loops behind one small interface, so tests can replace them.

The meter, its poller and the harness never call ``time`` directly: they ask a ``Clock``
for ``now()`` (seconds, monotonic), ``sleep(seconds)``, and ``loop(step, first_due)`` —
call ``step(now)`` on a background thread whenever it is due (``step`` returns when it
wants to run next), sooner when the loop is woken. ``SYSTEM_CLOCK`` is the real one
(``perf_counter`` and a daemon thread); ``llem_nb.testing.SimClock`` runs the same calls
in virtual time, so a 10-second window is simulated in microseconds and every schedule
is deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

Step = Callable[[float], float]
"""Do what is due at ``now``; return the clock time at which to be called next."""


class Loop(Protocol):
    """A running background loop."""

    def wake(self) -> None:
        """Run the step as soon as possible (e.g. a counter read a phase mark asked for)."""

    def stop(self) -> None:
        """Stop and wait until no step is running; idempotent."""


class Clock(Protocol):
    """What measuring code needs of time."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (background loops keep running)."""
        ...

    def loop(self, step: Step, *, first_due: float, name: str = ...) -> Loop:
        """Run ``step`` in the background whenever it is due, until the loop is stopped."""
        ...


class SystemClock:
    """The real clock: ``time.perf_counter`` (the harness's and backends' clock too)."""

    def now(self) -> float:
        return time.perf_counter()

    def __call__(self) -> float:
        return self.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def loop(self, step: Step, *, first_due: float, name: str = "llem-loop") -> Loop:
        return _ThreadLoop(self, step, first_due, name)


class _ThreadLoop:
    def __init__(self, clock: SystemClock, step: Step, first_due: float, name: str) -> None:
        self._clock = clock
        self._step = step
        self._due = first_due
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(max(0.0, self._due - self._clock.now()))
            if self._halt.is_set():
                return
            woken = self._wake.is_set()
            self._wake.clear()
            if woken or self._clock.now() >= self._due:
                self._due = self._step(self._clock.now())

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()


SYSTEM_CLOCK: Clock = SystemClock()
