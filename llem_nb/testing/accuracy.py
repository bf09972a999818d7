"""Accuracy cases on the simulator, shared by the tests and ``benchmarks/accuracy.py``.

Each case runs the real meter (and, for phases, the real Harness) on simulated GPUs in
virtual time and returns what llem_nb reported next to the exact integral of the traces
the simulated work drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem_nb.energy.base import EnergyReading
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.measure.accounting import fill_energy
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing.clock import SimClock
from llem_nb.testing.nvml import FakeGpu, FakeNvml
from llem_nb.testing.simulated import SimBackend, SimWorkload, sim_config
from llem_nb.testing.traces import Trace, constant, prefill_decode, ramp, steps

PHASE_GOAL = 0.05
RATIO_GOAL = 0.01
NET_GOAL = 0.005
GROSS_GOAL = 0.005
LATENCY_S = 0.004
LOAD_AT_S = 1.0
TRACES: dict[str, Trace] = {
    "constant": constant(250.0),
    "ramp": ramp(80.0, 420.0, 12.0),
    "step": steps([(0.0, 80.0), (LOAD_AT_S, 400.0)]),
    "prefill_decode": prefill_decode(
        idle_w=80.0,
        prefill_w=500.0,
        decode_w=300.0,
        start_s=LOAD_AT_S,
        prefill_s=0.15,
        decode_s=0.9,
        batches=40,
    ),
}
"""Power shapes for the cross-check; the load (where there is one) starts at 1 s."""


def machine(update_s: float, avg_s: float, **kw: Any) -> SimWorkload:
    """Simulated GPUs: instantaneous power where NVML averages over 0 s, else the average."""
    return SimWorkload.make(
        counter_update_s=update_s,
        power_avg_s=avg_s,
        instant_power=avg_s == 0,
        read_latency_s=LATENCY_S,
        **kw,
    )


def busy_window(work: SimWorkload, seconds: float) -> EnergyReading:
    """A 2 s baseline, then a window of simulated batches about ``seconds`` long."""
    meter = work.meter()
    backend = SimBackend(sim_config(), work)
    meter.idle_power_w(2.0)
    t0 = meter.start()
    while work.clock.now() - t0 < seconds - 1.1:
        backend.generate(["a b c d"] * 4)
    reading = meter.stop()
    meter.close()
    return reading


def gross_error(update_s: float, avg_s: float, window_s: float) -> float:
    """Relative error of gross energy over a busy window of ``window_s``."""
    work = machine(update_s, avg_s, prefill_s=0.08, step_s=0.025)
    reading = busy_window(work, window_s)
    truth = work.energy_j(reading.t0, reading.t1)
    return ((reading.energy_j or 0.0) - truth) / truth


def idle_watts(gpus: int) -> list[float]:
    """Each GPU's idle power in the idle-window cases (all different, so mix-ups show)."""
    return [60.0 + 9.5 * k for k in range(gpus)]


def idle_window(gpus: int, update_s: float, avg_s: float) -> tuple[EnergyReading, dict[str, float]]:
    """An idle baseline, then a 10 s window in which nothing runs: (reading, idle watts)."""
    work = machine(update_s, avg_s, gpus=gpus, idle_w=idle_watts(gpus))
    meter = work.meter()
    idle = meter.idle_power_w(5.0)
    meter.start()
    work.clock.sleep(10.0)
    reading = meter.stop()
    meter.close()
    return reading, idle


def idle_net(gpus: int, update_s: float, avg_s: float) -> tuple[float, bool]:
    """(net ÷ gross, whether net was flagged clamped) of a window in which nothing runs."""
    reading, idle = idle_window(gpus, update_s, avg_s)
    config = sim_config()
    result = ExperimentResult(
        experiment_id="idle", config_hash="0" * 64, config=config.model_dump()
    )
    clamped = fill_energy(result, reading, idle, reading.t1 - reading.t0)
    return (result.energy_net_j or 0.0) / (result.energy_gross_j or 1.0), bool(clamped)


def cross_check_window(
    trace: Trace, window_s: float, avg_s: float, update_s: float = 0.1, **kw: Any
) -> EnergyReading:
    """One window on a GPU drawing ``trace``, opened half a second before its load starts."""
    gpu = FakeGpu(
        power_w=trace,
        counter_update_s=update_s,
        counter_phase_s=0.013,
        power_avg_s=avg_s,
        instant_power=avg_s == 0,
        read_latency_s=0.002,
        **kw,
    )
    clock = SimClock()
    fake = FakeNvml([gpu], clock=clock)
    meter = NvmlMeter([0], nvml=fake, clock=clock)
    clock.sleep(LOAD_AT_S - 0.5)
    meter.start()
    clock.sleep(window_s)
    reading = meter.stop()
    meter.close()
    return reading


@dataclass(frozen=True)
class PrefillCase:
    """The prefill share llem_nb reported, the true one, the method and whether flagged."""

    share: float
    truth: float
    method: str
    flagged: bool

    @property
    def error(self) -> float:
        return (self.share - self.truth) / self.truth

    @property
    def ok(self) -> bool:
        """Within ``PHASE_GOAL`` of the true share, or honestly flagged."""
        return self.flagged or abs(self.error) <= PHASE_GOAL


def prefill_case(
    prefill_s: float,
    *,
    poll_s: float = 0.05,
    update_s: float = 0.1,
    avg_s: float = 0.0,
    phase_s: float = 0.0137,
    min_window_s: float = 5.0,
) -> PrefillCase:
    """One window through the Harness; ``phase_s`` places the counter's ticks against it."""
    work = SimWorkload.make(
        counter_update_s=update_s,
        counter_phase_s=phase_s,
        power_avg_s=avg_s,
        instant_power=avg_s == 0,
        read_latency_s=LATENCY_S,
        prefill_s=prefill_s,
        step_s=0.025,
        prefill_w=500.0,
    )
    cfg = sim_config(measurement={"min_window_s": min_window_s})
    result = work.harness(cfg, poll_interval_s=poll_s).run(cfg)
    t0, t1 = work.window()
    truth = work.prefill_energy_j(t0, t1) / work.energy_j(t0, t1)
    if result.prefill_energy_j is None or not result.energy_gross_j:
        return PrefillCase(float("nan"), truth, str(result.phase_method), True)
    share = result.prefill_energy_j / result.energy_gross_j
    flagged = "phase_unresolved" in result.quality_flags
    return PrefillCase(share, truth, str(result.phase_method), flagged)
