"""Gaps and GPU cooldown between experiments, read through a fake NVML; both recorded."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.support.faultkit import fake_study

from llem_nb.config.study import StudyConfig
from llem_nb.energy.device import Nvml
from llem_nb.errors import ConfigError
from llem_nb.run.progress import ProgressEvent
from llem_nb.testing import FakeGpu, FakeNvml


class CoolingNvml(FakeNvml):
    """A GPU at ``idle`` °C that jumps to ``hot`` after each experiment and cools exponentially."""

    def __init__(self, idle: float = 40.0, hot: float = 80.0, tau_s: float = 0.01) -> None:
        super().__init__([FakeGpu()])
        self.idle, self.hot, self.tau_s = idle, hot, tau_s
        self.heated_at: float | None = None
        self.reads = 0

    def heat(self, event: ProgressEvent) -> None:
        if event.kind == "finished":
            self.heated_at = self.now()

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        self._gpu(handle)
        self.reads += 1
        if self.heated_at is None:
            return round(self.idle)
        decay = math.exp(-(self.now() - self.heated_at) / self.tau_s)
        return round(self.idle + (self.hot - self.idle) * decay)


def test_gap_is_waited_and_recorded(fake_backend: str, tmp_path: Path) -> None:
    res = (
        fake_study(fake_backend, sizes=(1, 2), cycles=1)
        .gap(0.01)
        .run(results_dir=tmp_path, progress=False)
    )
    first, second = res.results
    assert first.gap_s == 0.0 and second.gap_s is not None and second.gap_s > 0
    assert first.cooldown_s is None and first.cooldown_note is None


def test_cooldown_waits_until_within_n_degrees_of_idle(fake_backend: str, tmp_path: Path) -> None:
    nvml = CoolingNvml()
    study = fake_study(fake_backend, sizes=(1, 2, 3), cycles=1).cooldown(5, max_s=30, poll_s=0.002)
    res = study.run(results_dir=tmp_path, progress=False, callbacks=[nvml.heat], nvml=nvml)
    first, *rest = res.results
    assert first.cooldown_reached is None and first.cooldown_s is None
    for r in rest:
        assert r.cooldown_reached is True and r.cooldown_note is None
        assert r.cooldown_s is not None and r.cooldown_s > 0
    assert nvml.reads > 1 + 2 * len(rest)
    assert nvml.calls["nvmlInit"] == nvml.calls["nvmlShutdown"]
    on_disk = StudyConfig.from_yaml(res.dir / "study.yaml").cooldown
    assert (on_disk.until_within_c, on_disk.max_s) == (5, 30)


def test_cooldown_cap_said_through_the_door(fake_backend: str, tmp_path: Path) -> None:
    nvml = CoolingNvml(tau_s=1e9)
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1).cooldown(
        5, max_s=0.02, idle_c=30, poll_s=0.005
    )
    door = Nvml(nvml)
    res = study.run(results_dir=tmp_path, progress=False, callbacks=[nvml.heat], nvml=door)
    second = res.results[1]
    assert second.status == "ok" and second.cooldown_reached is False
    assert second.cooldown_note is not None and "cap 0.02 s" in second.cooldown_note
    assert "gpu0 80°C" in second.cooldown_note


def test_cooldown_without_a_gpu_is_skipped_with_a_note(fake_backend: str, tmp_path: Path) -> None:
    nvml = FakeNvml(init_error=12)
    res = (
        fake_study(fake_backend, sizes=(1, 2), cycles=1)
        .cooldown(5)
        .run(results_dir=tmp_path, progress=False, nvml=nvml)
    )
    for r in res.results:
        assert r.status == "ok" and r.cooldown_reached is None
        assert r.cooldown_note is not None and "cooldown skipped" in r.cooldown_note
        assert "library not found" in r.cooldown_note.lower()


def test_stop_during_a_long_gap_ends_the_run(fake_backend: str, tmp_path: Path) -> None:
    finished = threading.Event()
    study = fake_study(fake_backend, sizes=(1, 2), cycles=1).gap(3600)
    handle = study.start(
        results_dir=tmp_path, callbacks=[lambda e: e.kind == "finished" and finished.set()]
    )
    assert finished.wait(60)
    handle.stop()
    res = handle.wait(timeout=60)
    assert res.interrupted and len(res.results) == 1


@pytest.mark.parametrize(
    "cooldown",
    [{"until_within_c": -1}, {"max_s": float("inf")}, {"poll_s": 0}, {"until_c": 3}],
)
def test_bad_cooldown_settings_are_config_errors(cooldown: dict) -> None:
    with pytest.raises(ConfigError, match="cooldown"):
        StudyConfig.load({"name": "s", "cooldown": cooldown})
