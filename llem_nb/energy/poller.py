"""A background sampler's schedule: a read round every ``poll_interval_s``, a state
snapshot every ``state_interval_s``, and an extra counter read whenever a phase mark asks.

The work itself (what a round reads) belongs to the meter; the poller only decides when,
on the clock it is given (a thread on the real clock, virtual time in tests). Round
instants sit on a regular grid of ``poll_interval_s``, each moved by a deterministic
low-discrepancy offset of up to ±half an interval, so reads never lock onto the period of
a counter that updates in steps: locked reads would bracket every update at the same
offset and never narrow it down; spread reads pin the update grid to a millisecond.
A counter read is slow (milliseconds per GPU), so marks are served here, never on the
generating thread.
"""

from __future__ import annotations

from collections.abc import Callable

from llem_nb.energy.clock import SYSTEM_CLOCK, Clock, Loop

GOLDEN = 0.6180339887498949
DITHER = 0.9


class Poller:
    """Calls ``round()`` on schedule, ``state()`` when due and ``counters()`` for marks."""

    def __init__(
        self,
        round_: Callable[[], None],
        state: Callable[[], None],
        counters: Callable[[], None],
        *,
        poll_interval_s: float,
        state_interval_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._round, self._state, self._counters = round_, state, counters
        self.poll_interval_s = poll_interval_s
        self.state_interval_s = max(state_interval_s, poll_interval_s)
        self.clock = clock
        self.marks: list[tuple[str, float]] = []
        self._pending = 0
        self._k = 0
        self._origin = 0.0
        self._next_round = 0.0
        self._next_state = 0.0
        self._loop: Loop | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _due(self) -> float:
        """The next round's instant: grid point ``k`` moved by up to ±DITHER/2 intervals."""
        self._k += 1
        offset = DITHER * (((self._k * GOLDEN) % 1.0) - 0.5)
        return self._origin + (self._k + offset) * self.poll_interval_s

    def start(self) -> None:
        """A round and a state now, then the loop."""
        now = self.clock.now()
        self._origin, self._k = now, 0
        self._round()
        self._state()
        self._next_round = self._due()
        self._next_state = now + self.state_interval_s
        self._loop = self.clock.loop(self._step, first_due=self._next_round, name="llem-nvml-poll")

    def mark(self, label: str, t: float) -> None:
        """A phase boundary at ``t``: read the counters soon, on the poller's side."""
        if self._loop is not None:
            self.marks.append((label, t))
            self._pending += 1
            self._loop.wake()

    def _step(self, now: float) -> float:
        if self._pending:
            self._pending = 0
            self._counters()
        if now >= self._next_round:
            self._round()
            self._next_round = self._due()
            while self._next_round < self.clock.now():
                self._next_round = self._due()
            if now >= self._next_state:
                self._state()
                self._next_state = now + self.state_interval_s
        return self._next_round

    def stop(self) -> None:
        """Stop the loop, serve a mark still waiting, then a last round and state."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.stop()
        if self._pending:
            self._pending = 0
            self._counters()
        self._round()
        self._state()
