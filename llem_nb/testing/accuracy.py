"""Accuracy cases on the simulator, shared by the tests and ``benchmarks/accuracy.py``.

Each case runs the real meter (and, for phases, the real Harness) on simulated GPUs in
virtual time and returns what llem_nb reported next to the exact integral of the traces
the simulated work drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.testing.simulated import SimWorkload, use_sim_backend

PHASE_GOAL = 0.05
LATENCY_S = 0.004


def sim_config(**kw: Any) -> ExperimentConfig:
    """A small static-batch experiment on the ``sim`` backend (2 batches per pass)."""
    base: dict[str, Any] = {
        "model": "sim",
        "backend": use_sim_backend(),
        "n_prompts": 8,
        "batch_size": 4,
        "max_output_tokens": 40,
        "gpus": 1,
    }
    return ExperimentConfig.model_validate({**base, **kw})


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
