"""Prefill/decode split on synthetic traces with exact answers, and through a real window."""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

from llem_nb.backends.base import Backend, GenerationOutput, RequestOutput
from llem_nb.config import ExperimentConfig, validate_experiment
from llem_nb.energy.base import CounterMark, DeviceReading, EnergyReading, PowerSample
from llem_nb.energy.fake import FakeGpu, FakeNvml, steps
from llem_nb.energy.integrate import integral, power_at, trapezoid
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.harness import Harness
from llem_nb.phases import clip, split_phases

# Power knots joined by straight lines: the trapezoid model is exact on these.
KNOTS = [(0.0, 100.0), (1.0, 100.0), (2.0, 400.0), (3.0, 400.0), (4.0, 100.0)]


def linear_reading(energy_j: float | None, method: str = "power") -> EnergyReading:
    samples = [PowerSample(t, (w,)) for t, w in KNOTS]
    device = DeviceReading("gpu0", energy_j, method, 0, samples=len(samples))
    return EnergyReading("nvml", 4.0, [device], samples=samples)


def test_integral_of_the_joined_lines() -> None:
    samples = linear_reading(1.0).samples
    assert trapezoid(samples, 0) == (100 + 250 + 400 + 250, 5)
    assert integral(samples, 0, 1.5, 2.5) == pytest.approx(0.5 * (250 + 400) / 2 + 0.5 * 400)
    assert integral(samples, 0, -1.0, 0.0) == pytest.approx(100.0)
    assert integral(samples, 0, 2.0, 2.0) == 0.0
    assert power_at(samples, 0, 1.5) == pytest.approx(250.0)
    assert power_at(samples, 0, 9.0) == pytest.approx(100.0)


def test_power_split_apportions_gross_by_the_power_curve() -> None:
    whole = 1000.0
    reading = linear_reading(energy_j=2000.0)
    split = split_phases(reading, [(1.0, 2.0), (3.0, 3.5)], 0.0, 4.0)
    prefill_share = (250 + 0.5 * 325) / whole
    assert split.method == "power"
    assert split.prefill_energy_j == pytest.approx(2000.0 * prefill_share)
    assert split.decode_energy_j == pytest.approx(2000.0 * (1 - prefill_share))
    assert split.prefill_s == pytest.approx(1.5) and split.decode_s == pytest.approx(2.5)
    assert split.batches == 2 and split.prefill_counter_j is None


def test_counter_split_corrects_each_read_back_to_its_boundary() -> None:
    reading = linear_reading(energy_j=1000.0, method="counter")
    # energy since t=0 along the knots: E(1)=100, E(2)=350, E(3)=750, E(3.5)=912.5
    cumulative = {1.05: 100 + 0.05 * 107.5, 2.1: 350 + 0.1 * 400, 3.02: 750 + 0.02 * 397}
    reading.marks = [
        CounterMark("batch_start", 1.0, 1.05, (cumulative[1.05] + 5000.0,)),
        CounterMark("first_token", 2.0, 2.1, (cumulative[2.1] + 5000.0,)),
        CounterMark("batch_start", 3.0, 3.02, (cumulative[3.02] + 5000.0,)),
    ]
    assert split_phases(reading, [(1.0, 2.0), (3.0, 3.5)], 0.0, 4.0).method == "power"
    reading.marks.append(CounterMark("first_token", 3.5, 3.5, (912.5 + 5000.0,)))
    split = split_phases(reading, [(1.0, 2.0), (3.0, 3.5)], 0.0, 4.0)
    assert split.method == "counter"
    assert split.prefill_counter_j == pytest.approx(250 + 162.5)
    assert split.prefill_energy_j == pytest.approx(412.5)
    assert split.decode_energy_j == pytest.approx(1000 - 412.5)


def test_no_phases_or_no_energy_means_no_split() -> None:
    assert split_phases(linear_reading(1000.0), [], 0.0, 4.0).method is None
    none = split_phases(linear_reading(None), [(1.0, 2.0)], 0.0, 4.0)
    assert none.prefill_energy_j is None and none.decode_energy_j is None
    cpu = EnergyReading("estimate", 4.0, [DeviceReading("cpu", 50.0, "estimate")])
    assert split_phases(cpu, [(1.0, 2.0)], 0.0, 4.0).method is None


def test_clip_to_window() -> None:
    assert clip([(-1.0, 0.5), (1.0, 1.0), (3.5, 9.0)], 0.0, 4.0) == [(0.0, 0.5), (3.5, 4.0)]


class TimedBackend(Backend):
    """Two batches, each prefill 0.1 s then decode 0.2 s; when generation starts it sets the
    fake GPU's trace for what follows (the past stays 60 W, so earlier readings stay exact):
    400 W from 20 ms before each batch start, 150 W from 20 ms before each first token."""

    name = "timed"
    phase_marker = None
    fake: ClassVar[FakeNvml]
    recorded: ClassVar[list[tuple[float, float]]] = []

    def load(self) -> None: ...

    def warmup(self, prompts: list[str]) -> None: ...

    def _until(self, t: float) -> float:
        time.sleep(max(0.0, t - self.fake.now()))
        return time.perf_counter()

    def generate(self, prompts: list[str]) -> GenerationOutput:
        t = self.fake.now() + 0.05
        begins = [t, t + 0.3]
        levels = [(0.0, 60.0)]
        for b in begins:
            levels += [(b - 0.02, 400.0), (b + 0.08, 150.0)]
        self.fake.gpus[0].trace = steps([*levels, (t + 0.6, 60.0)])
        out = GenerationOutput(requests=[])
        for begin in begins:
            start = self._until(begin)
            if self.phase_marker is not None:
                self.phase_marker("batch_start", start)
            first = self._until(begin + 0.1)
            if self.phase_marker is not None:
                self.phase_marker("first_token", first)
            end = self._until(begin + 0.3)
            out.phases.append((start, first))
            out.requests.append(RequestOutput(4, 8, end - start, first - start))
        type(self).recorded = list(out.phases)
        return out


def test_phase_split_through_the_harness_matches_the_trace() -> None:
    fake = FakeNvml([FakeGpu(power_w=60.0)])
    TimedBackend.fake = fake
    config: ExperimentConfig = validate_experiment(
        {"model": "m", "n_prompts": 2, "batch_size": 1, "baseline": {"seconds": 0}}
    )
    meter = NvmlMeter([0], poll_interval_s=0.002, nvml=fake)
    result = Harness(TimedBackend(config), meter).run(config)
    meter.close()
    trace = fake.gpus[0].trace
    expected = sum(
        trace.integral(fake.elapsed(a), fake.elapsed(b)) for a, b in TimedBackend.recorded
    )
    assert result.phase_method == "counter"
    assert result.prefill_energy_j == pytest.approx(expected, rel=0.05)
    assert result.phases is not None
    assert result.phases["prefill_power_j"] == pytest.approx(expected, rel=0.08)
    assert result.energy_gross_j is not None and result.decode_energy_j is not None
    assert result.prefill_energy_j + result.decode_energy_j == pytest.approx(result.energy_gross_j)
