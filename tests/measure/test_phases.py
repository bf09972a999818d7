"""Prefill/decode split on synthetic traces with exact answers, and through a real window."""

from __future__ import annotations

import pytest

from llem_nb.config.experiment import validate_experiment
from llem_nb.energy.base import DeviceReading, EnergyReading, PowerSample
from llem_nb.energy.counter import CounterTrack
from llem_nb.energy.integrate import integral, power_at, trapezoid
from llem_nb.measure.phases import clip, split_phases
from llem_nb.testing.simulated import SimWorkload, use_sim_backend

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
    assert split.flags == ["phase_unresolved"], "1 s polls cannot resolve a 0.5 s phase"
    assert split.prefill_energy_j == pytest.approx(2000.0 * prefill_share)
    assert split.decode_energy_j == pytest.approx(2000.0 * (1 - prefill_share))
    assert split.prefill_s == pytest.approx(1.5) and split.decode_s == pytest.approx(2.5)
    assert split.batches == 2 and split.prefill_counter_j is None


def energy_since_zero(t: float) -> float:
    """The exact integral of the KNOTS curve from 0 to ``t``."""
    return integral(linear_reading(1.0).samples, 0, 0.0, t) or 0.0


def counter_reading(
    period_s: float, read_every_s: float, energy_j: float = 1000.0
) -> EnergyReading:
    """A reading whose counter (offset 5000 J) updates every ``period_s`` (0: live)."""
    reading = linear_reading(energy_j, method="counter")
    track = CounterTrack()
    t = 0.0
    while t <= 4.0 + 1e-9:
        tick = t if period_s == 0 else (t // period_s) * period_s
        track.add(t, 5000.0 + energy_since_zero(tick))
        t += read_every_s
    reading.tracks = [track]
    return reading


def test_counter_split_reads_the_counter_at_every_boundary() -> None:
    split = split_phases(counter_reading(0.0, 0.01), [(1.0, 2.0), (3.0, 3.5)], 0.0, 4.0)
    assert split.method == "counter" and split.flags == []
    assert split.prefill_counter_j == pytest.approx(250 + 162.5, rel=1e-3)
    assert split.prefill_energy_j == pytest.approx(412.5, rel=1e-3)
    assert split.decode_energy_j == pytest.approx(1000 - 412.5, rel=1e-3)


def test_a_counter_coarser_than_the_phases_is_not_used_to_split_them() -> None:
    """Issue #11 (2): a 100 ms counter cannot split 50 ms prefills; before the fix the
    counter split was taken anyway (−27 % on the prefill share in the simulator)."""
    phases = [(1.02, 1.07), (2.52, 2.57)]
    split = split_phases(counter_reading(0.1, 0.05), phases, 0.0, 4.0)
    assert split.prefill_counter_j is not None
    assert split.method == "power"
    assert split.flags == ["phase_unresolved"]
    assert "50 ms" in split.warnings[0]


def test_continuous_batching_is_not_split_by_time() -> None:
    split = split_phases(counter_reading(0.0, 0.01), [(1.0, 2.0)], 0.0, 4.0, batching="continuous")
    assert split.method is None and split.prefill_energy_j is None
    assert split.decode_s == pytest.approx(4.0)


def test_no_phases_or_no_energy_means_no_split() -> None:
    assert split_phases(linear_reading(1000.0), [], 0.0, 4.0).method is None
    none = split_phases(linear_reading(None), [(1.0, 2.0)], 0.0, 4.0)
    assert none.prefill_energy_j is None and none.decode_energy_j is None
    cpu = EnergyReading("estimate", 4.0, [DeviceReading("cpu", 50.0, "estimate")])
    assert split_phases(cpu, [(1.0, 2.0)], 0.0, 4.0).method is None


def test_clip_to_window() -> None:
    assert clip([(-1.0, 0.5), (1.0, 1.0), (3.5, 9.0)], 0.0, 4.0) == [(0.0, 0.5), (3.5, 4.0)]


@pytest.mark.parametrize(
    ("counter_update_s", "prefill_s", "method", "flagged"),
    [(0.0, 0.05, "counter", False), (0.0, 0.5, "counter", False), (0.1, 0.5, "counter", False),
     (0.1, 0.05, "power", True)],
)  # fmt: skip
def test_phase_split_through_the_harness_matches_the_trace(
    counter_update_s: float, prefill_s: float, method: str, flagged: bool
) -> None:
    """The real Harness and NvmlMeter on simulated GPUs: the prefill energy is the traces'
    integral over the prefill intervals, or the split says it cannot resolve them."""
    work = SimWorkload.make(
        counter_update_s=counter_update_s,
        power_avg_s=1.0,
        instant_power=False,
        read_latency_s=0.004,
        prefill_s=prefill_s,
        prefill_w=500.0,
        step_s=0.025,
    )
    config = validate_experiment(
        {"model": "sim", "backend": use_sim_backend(), "n_prompts": 8, "batch_size": 4,
         "max_output_tokens": 40, "gpus": 1}
    )  # fmt: skip
    result = work.harness(config).run(config)
    t0, t1 = work.window()
    expected = work.prefill_energy_j(t0, t1)
    assert result.phase_method == method
    assert ("phase_unresolved" in result.quality_flags) is flagged
    assert result.energy_gross_j == pytest.approx(work.energy_j(t0, t1), rel=0.002)
    assert result.prefill_energy_j is not None and result.decode_energy_j is not None
    assert result.prefill_energy_j + result.decode_energy_j == pytest.approx(result.energy_gross_j)
    if not flagged:
        assert result.prefill_energy_j == pytest.approx(expected, rel=0.02)
