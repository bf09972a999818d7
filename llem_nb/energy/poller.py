"""A background sampler: power every ``poll_interval_s``, device state every
``state_interval_s``, and energy-counter reads on request (``mark``).

The counter read is slow (~4 ms per GPU on an H200), so a boundary the backend marks
is read here, on the sampler's thread, never on the generating thread; the read's
own time is kept so the value can be corrected back to the boundary.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from llem_nb.energy.base import CounterMark, PowerSample, StateSample

Counters = Callable[[], list[float | None]]


class Poller:
    """One window's samples, states and counter marks; ``start()`` … ``stop()``."""

    def __init__(
        self,
        sample: Callable[[], PowerSample],
        state: Callable[[], StateSample],
        counters: Counters,
        *,
        poll_interval_s: float,
        state_interval_s: float,
    ) -> None:
        self._sample, self._state, self._counters = sample, state, counters
        self.poll_interval_s = poll_interval_s
        self.state_interval_s = max(state_interval_s, poll_interval_s)
        self.samples: list[PowerSample] = []
        self.states: list[StateSample] = []
        self.marks: list[CounterMark] = []
        self._pending: deque[tuple[str, float]] = deque()
        self._marking = False
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def first(self) -> None:
        """The opening state and power sample (taken before the caller's counter read)."""
        self.states.append(self._state())
        self.samples.append(self._sample())

    def start(self) -> None:
        self._halt.clear()
        self._wake.clear()
        self._marking = True
        self._thread = threading.Thread(target=self._run, name="llem-nvml-poll", daemon=True)
        self._thread.start()

    def mark(self, label: str, t: float) -> None:
        """Queue a counter read for a boundary at ``t``; cheap, safe from any thread."""
        if self._marking:
            self._pending.append((label, t))
            self._wake.set()

    def stop(self) -> None:
        """Stop the thread and read any boundary still waiting."""
        self._marking = False
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._take_marks()

    def last(self) -> None:
        """The closing power sample and state (taken after the caller's counter read)."""
        self.samples.append(self._sample())
        self.states.append(self._state())

    def _take_marks(self) -> None:
        """One counter read for every boundary queued before it (later ones wait their turn)."""
        pending = []
        while self._pending:
            pending.append(self._pending.popleft())
        if not pending:
            return
        before = time.perf_counter()
        counters = self._counters()
        t_read = (before + time.perf_counter()) / 2
        joules = tuple(None if c is None else c / 1000.0 for c in counters)
        self.marks.extend(CounterMark(label, t, t_read, joules) for label, t in pending)

    def _run(self) -> None:
        now = time.perf_counter()
        next_t, next_state = now + self.poll_interval_s, now + self.state_interval_s
        while True:
            self._wake.wait(max(0.0, next_t - time.perf_counter()))
            if self._halt.is_set():
                return
            self._wake.clear()
            if self._pending:
                self._take_marks()
            if time.perf_counter() < next_t:
                continue
            sample = self._sample()
            self.samples.append(sample)
            if sample.t >= next_state:
                self.states.append(self._state())
                next_state = sample.t + self.state_interval_s
            next_t = max(next_t + self.poll_interval_s, time.perf_counter())
