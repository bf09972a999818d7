"""SimClock: virtual time for the meter, its poller, the harness and simulated hardware.

A discrete-event stand-in for ``llem_nb.energy.clock.Clock``. Time moves only when code
sleeps (``sleep``: due background steps run on the way, in time order) or a simulated
device call takes time (``advance``: no steps run). Background loops (``loop``) are not
threads: their steps run inside ``sleep``, so a whole measurement is single-threaded and
deterministic, and a 10 s window costs microseconds. Tests assert on the schedule
(``SimClock.steps``), never on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llem_nb.energy.clock import Loop, Step

MIN_STEP_S = 1e-6


@dataclass
class _SimLoop:
    clock: SimClock
    step: Step
    due: float
    name: str
    running: bool = True
    calls: list[float] = field(default_factory=list)

    def wake(self) -> None:
        if self.running:
            self.due = min(self.due, self.clock.t)

    def stop(self) -> None:
        self.running = False


class SimClock:
    """Virtual seconds (starting at ``start``), with background loops run in time order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.loops: list[_SimLoop] = []

    def now(self) -> float:
        return self.t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Time spent inside a call (a simulated NVML read): no background step runs."""
        if seconds > 0:
            self.t += seconds

    def sleep(self, seconds: float) -> None:
        """Move to ``now + seconds``, running every background step due on the way."""
        target = self.t + max(0.0, seconds)
        self.run_until(target)
        self.t = max(self.t, target)

    def run_until(self, target: float) -> None:
        while True:
            due = [loop for loop in self.loops if loop.running and loop.due <= target]
            if not due:
                return
            loop = min(due, key=lambda lp: lp.due)
            self.t = max(self.t, loop.due)
            loop.calls.append(self.t)
            next_due = loop.step(self.t)
            loop.due = max(next_due, self.t + MIN_STEP_S)

    def loop(self, step: Step, *, first_due: float, name: str = "sim-loop") -> Loop:
        made = _SimLoop(self, step, first_due, name)
        self.loops.append(made)
        return made

    def steps(self, name: str) -> list[float]:
        """Times at which the loops called ``name`` ran a step (for schedule assertions)."""
        return [t for lp in self.loops if lp.name == name for t in lp.calls]
