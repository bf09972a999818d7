"""``short_window`` fires only when a window fell short of the minimum that applied.

With ``measurement.min_window_s`` set, the window is repeated up to it; only a window the
``max_repeats`` cap cut short of it is flagged. With the minimum off, the 5 s rule holds.
"""

from __future__ import annotations

import pytest

from llem_nb.energy.base import DeviceReading, EnergyReading
from llem_nb.measure.quality import MIN_WINDOW_S, assess
from llem_nb.testing.simulated import SimWorkload, sim_config


def flagged(window_s: float, min_window_s: float | None) -> bool:
    reading = EnergyReading("nvml", window_s, [DeviceReading("gpu0", 10.0, "counter", 0)])
    return "short_window" in assess(reading, window_s=window_s, min_window_s=min_window_s).flags


@pytest.mark.parametrize(
    ("window_s", "min_window_s", "expected"),
    [
        (3.03, 3.0, False),
        (2.99, 3.0, True),
        (9.5, 10.0, True),
        (10.0, 10.0, False),
        (MIN_WINDOW_S - 0.01, 0.0, True),
        (MIN_WINDOW_S, 0.0, False),
        (MIN_WINDOW_S - 0.01, None, True),
    ],
)
def test_the_rule(window_s: float, min_window_s: float | None, expected: bool) -> None:
    assert flagged(window_s, min_window_s) is expected


def test_a_window_that_met_the_users_minimum_is_not_flagged() -> None:
    work = SimWorkload.make(counter_update_s=0.02)
    cfg = sim_config(measurement={"min_window_s": 3.0})
    result = work.harness(cfg).run(cfg)
    assert result.window_s is not None and 3.0 <= result.window_s < MIN_WINDOW_S
    assert "short_window" not in result.quality_flags


def test_a_window_the_repeat_cap_cut_short_is_flagged_and_says_so() -> None:
    work = SimWorkload.make(counter_update_s=0.02)
    cfg = sim_config(measurement={"min_window_s": 10.0, "max_repeats": 1})
    result = work.harness(cfg).run(cfg)
    assert result.window_repeats == 1 and result.window_s is not None and result.window_s < 10.0
    assert "short_window" in result.quality_flags
    assert any("max_repeats" in w for w in result.warnings)
