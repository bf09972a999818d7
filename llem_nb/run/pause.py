"""Pauses between experiments: a fixed gap, then optionally "until the GPUs cool down".

A hot GPU draws more idle power and throttles sooner, so back-to-back experiments
are not measured under the same conditions. ``Pause`` waits ``gap_seconds``, then
(with ``cooldown.until_within_c``) runs the cooldown loop (``measure.thermal``) on the
NVML temperatures of every visible GPU, for at most ``cooldown.max_s``. What happened is
returned as a ``PauseRecord`` and stored on the next experiment's result. Without
NVML (no GPU here) the cooldown is skipped and the record says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llem_nb.config.sections import CooldownConfig
from llem_nb.energy.device import Nvml
from llem_nb.energy.nvml_devices import Thermometer
from llem_nb.errors import MeterError
from llem_nb.measure.thermal import wait_until_cool

Wait = Callable[[float], bool]
"""Sleep up to ``seconds``; True when the study was asked to stop meanwhile."""


@dataclass(frozen=True)
class PauseRecord:
    """What the pause before an experiment did (fields of ``ExperimentResult``)."""

    gap_s: float = 0.0
    cooldown_s: float | None = None
    cooldown_reached: bool | None = None
    cooldown_note: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "gap_s": self.gap_s,
            "cooldown_s": self.cooldown_s,
            "cooldown_reached": self.cooldown_reached,
            "cooldown_note": self.cooldown_note,
        }


class Pause:
    """The pause before each experiment but the first of a run."""

    def __init__(
        self,
        gap_seconds: float,
        cooldown: CooldownConfig,
        wait: Wait,
        *,
        nvml: Nvml | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gap_seconds = gap_seconds
        self.cooldown = cooldown
        self._wait = wait
        self._clock = clock
        self._thermometer: Thermometer | None = None
        self._idle: dict[int, float] = {}
        self.note: str | None = None
        if cooldown.until_within_c is not None:
            self._open(nvml)

    def _open(self, nvml: Nvml | None) -> None:
        try:
            self._thermometer = Thermometer(nvml)
            idle = self._thermometer.read()
        except MeterError as exc:
            self.close()
            self.note = f"cooldown skipped: no GPU temperature ({exc.message})"
            return
        fixed = self.cooldown.idle_c
        self._idle = {i: fixed if fixed is not None else t for i, t in idle.items()}

    @property
    def idle_c(self) -> dict[int, float]:
        """Idle temperature per GPU index that the cooldown aims for."""
        return dict(self._idle)

    def before(self, first: bool) -> PauseRecord:
        """Wait the gap and the cooldown (not before the first experiment); say what happened."""
        if first:
            return PauseRecord(cooldown_note=self.note)
        t0 = self._clock()
        if self.gap_seconds and self._wait(self.gap_seconds):
            return PauseRecord(gap_s=self._clock() - t0, cooldown_note="stopped during the gap")
        gap_s = self._clock() - t0
        if self._thermometer is None:
            return PauseRecord(gap_s=gap_s, cooldown_note=self.note)
        return self._cool(gap_s)

    def _cool(self, gap_s: float) -> PauseRecord:
        thermometer = self._thermometer
        assert thermometer is not None

        def read() -> dict[str, float]:
            return {f"gpu{i}": t for i, t in thermometer.read().items()}

        idle = {f"gpu{i}": t for i, t in self._idle.items()}
        record = wait_until_cool(read, idle, self.cooldown, wait=self._wait, clock=self._clock)
        assert record is not None
        return PauseRecord(gap_s, record.waited_s, record.reached, record.note)

    def close(self) -> None:
        if self._thermometer is not None:
            self._thermometer.close()
            self._thermometer = None
