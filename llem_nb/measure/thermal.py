"""Waiting for GPUs to cool down: the one loop both cooldowns use.

A hot GPU draws more idle power and throttles sooner, so llem_nb can wait until every
measured GPU is within ``until_within_c`` °C of idle: inside an experiment, after
warm-up and before the baseline and window (``ExperimentConfig.cooldown``, result
``window_cooldown``), and between experiments (``StudyConfig.cooldown``, result
``cooldown_s`` / ``cooldown_reached``, see ``run.pause``). Both call ``wait_until_cool``
with their own thermometer; it never waits past ``max_s`` and always says what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from llem_nb.config.sections import CooldownConfig
from llem_nb.errors import MeterError

CLOCK_SLACK_S = 1e-6
"""Waits within this of ``max_s`` count as done (virtual clocks round)."""

Wait = Callable[[float], bool | None]
"""Let ``seconds`` pass; True when whoever waits was asked to stop meanwhile."""


@dataclass
class CooldownRecord:
    """Per GPU label: idle reference, temperature at start and end; waited seconds; outcome.

    ``reached`` is None when the wait could not run (no temperature) or ended early.
    """

    within_c: float
    idle_c: dict[str, float]
    start_c: dict[str, float]
    end_c: dict[str, float]
    waited_s: float
    reached: bool | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_until_cool(
    read: Callable[[], Mapping[str, float]],
    idle_c: Mapping[str, float],
    config: CooldownConfig,
    *,
    wait: Wait,
    clock: Callable[[], float],
) -> CooldownRecord | None:
    """Poll ``read()`` every ``config.poll_s`` until each GPU is within reach of its idle
    temperature (``config.idle_c`` overrides ``idle_c``) or ``config.max_s`` has passed.

    None when the cooldown is off; a record saying why when no temperature is readable, a
    thermometer fails, or ``wait`` reports a stop.
    """
    within = config.until_within_c
    if within is None:
        return None
    t0 = clock()
    try:
        start = dict(read())
    except MeterError as exc:
        return CooldownRecord(within, {}, {}, {}, 0.0, None, f"cooldown skipped: {exc.message}")
    idle = {k: config.idle_c if config.idle_c is not None else idle_c.get(k) for k in start}
    unknown = sorted(k for k, v in idle.items() if v is None)
    target = {k: v for k, v in idle.items() if v is not None}
    if not start or unknown:
        why = "no GPU temperature readable" if not start else f"no idle value for {unknown}"
        return CooldownRecord(within, target, start, start, 0.0, None, f"cooldown skipped: {why}")
    now, note, reached = start, None, None
    while True:
        hot = sorted(k for k, t in now.items() if t > target[k] + within)
        waited = clock() - t0
        if not hot or waited >= config.max_s - CLOCK_SLACK_S:
            reached = not hot
            if hot:
                worst = ", ".join(f"{k} {now[k]:.0f}°C" for k in hot)
                note = f"cooldown cap {config.max_s:g} s reached; still hot: {worst}"
            break
        if wait(min(config.poll_s, config.max_s - waited)):
            note, reached = "stopped during the cooldown", False
            break
        try:
            now = dict(read())
        except MeterError as exc:
            note, reached = f"cooldown ended early: {exc.message}", None
            break
    return CooldownRecord(within, target, start, now, clock() - t0, reached, note)


SETTLE_MAX_S = 60.0
"""Longest wait for GPU power to settle after warm-up before the idle baseline."""
SETTLE_TOLERANCE_W = 1.0
SETTLE_TOLERANCE = 0.01
"""Settled: each device's mean power moved less than max(1 W, 1 %) from one poll to the next."""


@dataclass
class SettleRecord:
    """How the idle baseline waited for power to fall after warm-up (a GPU stays in its
    high-power state for seconds after work stops; measured at once, idle is overstated)."""

    waited_s: float
    start_w: dict[str, float]
    end_w: dict[str, float]
    settled: bool
    polls: int

    @property
    def note(self) -> str | None:
        """What the wait did; None when power was flat from the first two polls."""
        if self.settled and self.polls <= 2:
            return None
        drop = ", ".join(
            f"{k} {self.start_w[k]:.0f} → {self.end_w.get(k, float('nan')):.0f} W"
            for k in sorted(self.start_w)
        )
        how = "settled" if self.settled else f"still falling at the {SETTLE_MAX_S:g} s cap"
        return f"idle baseline taken after a {self.waited_s:.1f} s settle ({drop}; {how})"


def wait_until_settled(
    mean_power_w: Callable[[float], Mapping[str, float]],
    *,
    poll_s: float,
    clock: Callable[[], float],
    max_s: float = SETTLE_MAX_S,
) -> SettleRecord | None:
    """Measure mean power over ``poll_s`` again and again until no device changes by more
    than the tolerance between two polls, or ``max_s`` passed. None when nothing is read."""
    t0 = clock()
    first = dict(mean_power_w(poll_s))
    if not first:
        return None
    last, settled, polls = first, False, 1
    while clock() - t0 < max_s - CLOCK_SLACK_S:
        now = dict(mean_power_w(poll_s))
        polls += 1
        moved = [
            k
            for k, w in now.items()
            if abs(w - last.get(k, w)) > max(SETTLE_TOLERANCE_W, SETTLE_TOLERANCE * abs(w))
        ]
        last = now
        if not moved:
            settled = True
            break
    return SettleRecord(clock() - t0, first, last, settled, polls)
