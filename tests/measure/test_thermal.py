"""The one cooldown loop (``measure.thermal``) on a virtual clock and scripted temperatures."""

from __future__ import annotations

import time

from llem_nb.config.sections import CooldownConfig
from llem_nb.errors import MeterError
from llem_nb.measure.thermal import wait_until_cool


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_cooldown_polls_until_within_reach() -> None:
    clock = Clock()
    temps = iter([70.0, 60.0, 50.0, 44.0])
    config = CooldownConfig(until_within_c=5, poll_s=2.0, max_s=60)
    record = wait_until_cool(lambda: {"gpu0": next(temps)}, {"gpu0": 40.0}, config,
                       wait=clock.sleep, clock=clock)  # fmt: skip
    assert record is not None
    assert (record.reached, record.waited_s) == (True, 6.0)
    assert record.start_c == {"gpu0": 70.0} and record.end_c == {"gpu0": 44.0}


def test_cooldown_cap_and_overrides() -> None:
    clock = Clock()
    config = CooldownConfig(until_within_c=2, idle_c=30, poll_s=4.0, max_s=10)
    record = wait_until_cool(lambda: {"gpu0": 35.0, "gpu1": 31.0}, {}, config,
                       wait=clock.sleep, clock=clock)  # fmt: skip
    assert record is not None and record.reached is False
    assert record.waited_s == 10.0 and record.idle_c == {"gpu0": 30.0, "gpu1": 30.0}
    assert record.note is not None and "gpu0 35°C" in record.note and "gpu1" not in record.note


def test_cooldown_off_or_unreadable() -> None:
    assert (
        wait_until_cool(
            lambda: {"gpu0": 80.0}, {}, CooldownConfig(), wait=time.sleep, clock=time.monotonic
        )
        is None
    )
    config = CooldownConfig(until_within_c=5)
    none = wait_until_cool(dict, {}, config, wait=time.sleep, clock=time.monotonic)
    assert none is not None and none.reached is None and "no GPU temperature" in (none.note or "")
    unknown = wait_until_cool(
        lambda: {"gpu0": 80.0}, {}, config, wait=time.sleep, clock=time.monotonic
    )
    assert unknown is not None and unknown.reached is None and "gpu0" in (unknown.note or "")


def test_a_stop_and_a_failing_thermometer_end_the_wait_and_say_so() -> None:
    clock = Clock()
    config = CooldownConfig(until_within_c=1, idle_c=30, poll_s=1.0, max_s=60)
    stopped = wait_until_cool(lambda: {"gpu0": 80.0}, {}, config, wait=lambda s: True, clock=clock)
    assert stopped is not None and (stopped.reached, stopped.note) == (
        False,
        "stopped during the cooldown",
    )
    reads = iter([{"gpu0": 80.0}])

    def read() -> dict[str, float]:
        try:
            return next(reads)
        except StopIteration:
            raise MeterError("GPU is lost") from None

    broken = wait_until_cool(read, {}, config, wait=clock.sleep, clock=clock)
    assert broken is not None and broken.reached is None
    assert broken.note == "cooldown ended early: GPU is lost"
