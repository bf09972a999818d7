"""Pauses between experiments: a fixed gap, then optionally "until the GPUs cool down".

A hot GPU draws more idle power and throttles sooner, so back-to-back experiments
are not measured under the same conditions. ``Pause`` waits ``gap_seconds``, then
(with ``cooldown.until_within_c``) polls NVML temperatures until every visible GPU
is within that many °C of idle, for at most ``cooldown.max_s``. What happened is
returned as a ``PauseRecord`` and stored on the next experiment's result. Without
NVML (no GPU here) the cooldown is skipped and the record says why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llem_nb.config.study import CooldownConfig
from llem_nb.errors import MeterError

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


class Thermometer:
    """GPU temperatures (°C) by NVML index, for the GPUs ``CUDA_VISIBLE_DEVICES`` exposes."""

    def __init__(self, nvml: Any = None) -> None:
        from llem_nb.energy.nvml_devices import (
            load_pynvml,
            nvml_init_reason,
            visible_nvml_indices,
        )

        self._nvml = nv = nvml if nvml is not None else load_pynvml()
        self._initialised = False
        try:
            self.indices = visible_nvml_indices(nv, os.environ.get("CUDA_VISIBLE_DEVICES"))
            nv.nvmlInit()
            self._initialised = True
            self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
        except nv.NVMLError as exc:
            self.close()
            raise MeterError(nvml_init_reason(nv, exc)) from exc
        if not self.indices:
            self.close()
            raise MeterError("NVML sees no GPU")

    def read(self) -> dict[int, float]:
        nv = self._nvml
        try:
            return {
                i: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
                for i, h in zip(self.indices, self._handles, strict=True)
            }
        except nv.NVMLError as exc:
            raise MeterError(f"NVML could not read a GPU temperature: {exc}") from exc

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            self._nvml.nvmlShutdown()


class Pause:
    """The pause before each experiment but the first of a run."""

    def __init__(
        self,
        gap_seconds: float,
        cooldown: CooldownConfig,
        wait: Wait,
        *,
        nvml: Any = None,
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

    def _open(self, nvml: Any) -> None:
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
        assert self._thermometer is not None and self.cooldown.until_within_c is not None
        limit = self.cooldown.until_within_c
        t0 = self._clock()
        note: str | None = None
        while True:
            try:
                temps = self._thermometer.read()
            except MeterError as exc:
                note = f"cooldown ended early: {exc.message}"
                reached = None
                break
            hot = {i: t for i, t in temps.items() if t > self._idle.get(i, t) + limit}
            reached = not hot
            waited = self._clock() - t0
            if reached or waited >= self.cooldown.max_s - 1e-6:
                if hot:
                    worst = ", ".join(f"gpu{i} {t:.0f}°C" for i, t in sorted(hot.items()))
                    note = f"cooldown cap {self.cooldown.max_s:g}s reached; still hot: {worst}"
                break
            step = min(self.cooldown.poll_s, self.cooldown.max_s - waited)
            if self._wait(step):
                note, reached = "stopped during the cooldown", False
                break
        return PauseRecord(gap_s, self._clock() - t0, reached, note)

    def close(self) -> None:
        if self._thermometer is not None:
            self._thermometer.close()
            self._thermometer = None
