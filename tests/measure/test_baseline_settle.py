"""Issue 24 items 7 and 11 on the NVML simulator: the idle baseline is not taken while the
GPU is still in its high-power state after warm-up, and a window in which torch.compile
compiled is flagged."""

from __future__ import annotations

from typing import Any

import pytest

from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput
from llem_nb.config.experiment import validate_experiment
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.measure.harness import Harness
from llem_nb.measure.thermal import wait_until_settled
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing import FakeGpu, FakeNvml, SimClock
from llem_nb.testing.nvml import decaying_after_load

IDLE_W, HOT_W, TAU_S = 60.0, 300.0, 3.0


class HotAfterWarmup(Backend):
    """Load and warm-up take ``busy_s`` at ``HOT_W``; then the simulated GPU's power decays
    to ``IDLE_W`` (``decaying_after_load``). ``compiles`` graphs are compiled per generate
    call after warm-up (a shape warm-up did not cover)."""

    name = "hot"
    fake: FakeNvml
    busy_s = 2.0
    compiles = 0
    _count = 0
    _warm = False

    def load(self) -> None:
        self._load_at = self.fake.now()

    def warmup(self, prompts: list[str]) -> None:
        self.fake.clock.sleep(self.busy_s)  # type: ignore[attr-defined]
        self.fake.gpus[0].trace = decaying_after_load(
            idle_w=IDLE_W, hot_w=HOT_W, load_s=self._load_at, end_s=self.fake.now(), tau_s=TAU_S
        )
        self._warm = True

    def generate(self, prompts: list[str]) -> GenerationOutput:
        if self._warm:
            self._count += self.compiles
        self.fake.clock.sleep(0.5)  # type: ignore[attr-defined]
        return GenerationOutput([RequestOutput(3, 5, 0.5, 0.1) for _ in prompts])

    def compile_count(self) -> int | None:
        return self._count


def _run(**over: Any) -> ExperimentResult:
    fake = FakeNvml([FakeGpu(power_w=IDLE_W, power_avg_s=0.0)], clock=SimClock())
    cfg = validate_experiment(
        {"model": "m", "n_prompts": 2, "batch_size": 2, "baseline": {"seconds": 2.0}, **over}
    )
    backend = HotAfterWarmup(cfg)
    backend.fake = fake
    meter = NvmlMeter([0], poll_interval_s=0.01, nvml=fake, clock=fake.clock)  # type: ignore[arg-type]
    try:
        return Harness(backend, meter).run(cfg)
    finally:
        meter.close()


def test_baseline_is_not_inflated_by_the_power_state_after_warm_up() -> None:
    result = _run()
    idle = result.idle_power_w
    assert idle is not None
    # Taken at once, the 2 s baseline would average ~190 W; after the settle it is idle.
    assert idle == pytest.approx(IDLE_W, rel=0.05)
    assert result.baseline_note is not None
    assert "settle" in result.baseline_note and "settled" in result.baseline_note


def test_settle_stops_at_once_on_flat_power_and_says_nothing() -> None:
    clock = SimClock()

    def flat(seconds: float) -> dict[str, float]:
        clock.sleep(seconds)
        return {"gpu0": 70.0}

    record = wait_until_settled(flat, poll_s=1.0, clock=clock)
    assert record is not None
    assert (record.settled, record.polls, record.waited_s, record.note) == (True, 2, 2.0, None)


def test_settle_gives_up_at_the_cap_and_says_so() -> None:
    clock = SimClock()
    t0 = clock()

    def falling(seconds: float) -> dict[str, float]:
        clock.sleep(seconds)
        return {"gpu0": 300.0 - 10 * (clock() - t0)}

    record = wait_until_settled(falling, poll_s=1.0, clock=clock, max_s=5.0)
    assert record is not None and record.settled is False
    assert record.waited_s == pytest.approx(5.0)
    assert record.note is not None and "still falling" in record.note


def test_a_window_in_which_compile_counters_moved_is_flagged() -> None:
    fake = FakeNvml([FakeGpu(power_w=IDLE_W)], clock=SimClock())
    cfg = validate_experiment({"model": "m", "n_prompts": 2, "batch_size": 1})
    for compiles, flagged in ((0, False), (2, True)):
        backend = HotAfterWarmup(cfg)
        backend.fake, backend.compiles = fake, compiles
        meter = NvmlMeter([0], poll_interval_s=0.01, nvml=fake, clock=fake.clock)  # type: ignore[arg-type]
        try:
            result = Harness(backend, meter).run(cfg)
        finally:
            meter.close()
        assert ("compile_in_window" in result.quality_flags) is flagged
        if flagged:
            assert any("compiled 2 graph(s)" in w for w in result.warnings)
