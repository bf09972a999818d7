"""Reuse in the Harness on the NVML simulator: the kept model, its re-warm, the kept baseline.

Everything runs in virtual time (``SimClock``), so loads, re-warms, baselines and their ages
are exact numbers of simulated seconds, and energies are checked against the traces.
"""

from __future__ import annotations

from typing import Any

import pytest

from llem_nb.backends.base import GenerationOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import BackendError
from llem_nb.measure.harness import Harness
from llem_nb.measure.reuse import BASELINE_DRIFT_C, ModelKeeper
from llem_nb.results.schema import ExperimentResult
from llem_nb.testing.simulated import SimBackend, SimWorkload, sim_config


def config(**over: Any) -> ExperimentConfig:
    extra = {"model": "sim-model", "batch_size": 2, "max_output_tokens": 20}
    kept = {"baseline": {"seconds": 1.0}, "measurement": {"min_window_s": 2.0}}
    return sim_config(**{**extra, **kept, **over})


class Machine:
    """A simulated GPU box with a keeper, running experiments one after another."""

    def __init__(self, **work: Any) -> None:
        self.work = SimWorkload.make(**{"load_s": 5.0, "idle_w": 90.0, **work})
        self.made: list[SimBackend] = []
        self.keeper = ModelKeeper(make_backend=self._make)

    def _make(self, cfg: ExperimentConfig) -> SimBackend:
        backend = SimBackend(cfg, self.work)
        self.made.append(backend)
        return backend

    def run(self, cfg: ExperimentConfig, *, keep: bool = True) -> ExperimentResult:
        meter = self.work.meter()
        try:
            if keep:
                harness = Harness(meter=meter, clock=self.work.clock, keeper=self.keeper)
            else:
                harness = Harness(SimBackend(cfg, self.work), meter, clock=self.work.clock)
            return harness.run(cfg)
        finally:
            meter.close()


def test_a_kept_model_is_not_loaded_again_and_switches_to_the_new_point() -> None:
    box = Machine()
    first = box.run(config(batch_size=2))
    second = box.run(config(batch_size=8))
    assert (first.model_reused, first.load_s) == (False, 5.0)
    assert (second.model_reused, second.load_s) == (True, 0.0)
    assert box.work.loads == 1 and box.work.unloads == 0 and len(box.made) == 1
    # the kept backend now runs the new point: 8 prompts in one batch of 8, not four of 2
    assert box.made[0].config.batch_size == 8
    assert second.n_requests == 8 * second.window_repeats
    batches = [m for m in box.work.marks if m[0] == "batch_start" and m[1] >= box.work.window()[0]]
    assert len(batches) == second.window_repeats


def test_a_reused_model_gets_a_short_re_warm_at_its_own_settings() -> None:
    box = Machine()
    cold = box.run(config(batch_size=2, warmup={"runs": 3}))
    warm = box.run(config(batch_size=4, warmup={"runs": 3, "rewarm_tokens": 5}))
    assert cold.warmup is not None and warm.warmup is not None
    assert cold.warmup["runs"] == 3 and not cold.warmup["rewarm"]
    assert warm.warmup["rewarm"] and warm.warmup["runs"] == 1
    assert warm.warmup["rewarm_tokens"] == 5
    work = box.work
    # one batch at the new batch size, 5 new tokens: one prefill and 4 decode steps
    assert warm.warmup["latencies_s"] == [pytest.approx(work.prefill_s + 4 * work.step_s)]
    # the window after it generates the point's full length again
    assert warm.output_tokens == warm.n_requests * 20


def test_no_re_warm_when_warm_up_is_off() -> None:
    box = Machine()
    box.run(config(warmup={"runs": 0}))
    again = box.run(config(batch_size=4, warmup={"runs": 0}))
    assert again.model_reused and again.warmup is not None
    assert again.warmup["runs"] == 0 and again.warmup_s == 0.0
    assert again.warmup["note"] == "warm-up is off"


def test_no_re_warm_for_settings_the_kept_model_already_ran() -> None:
    """A later cycle of a point (or an interleaved round coming back to it) is warm."""
    box = Machine()
    box.run(config(batch_size=2))
    box.run(config(batch_size=4))
    back = box.run(config(batch_size=2))
    assert back.warmup is not None and back.warmup["runs"] == 0 and back.warmup_s == 0.0
    assert back.warmup["note"] == "the kept model already ran a window at these settings"
    box.run(config(model="other"))
    fresh = box.run(config(batch_size=2))
    assert fresh.warmup is not None and fresh.warmup["runs"] == 1 and not fresh.warmup["rewarm"]


def test_another_load_key_frees_the_kept_model_first() -> None:
    box = Machine()
    box.run(config(model="model-a"))
    assert box.work.unloads == 0
    other = box.run(config(model="model-b"))
    assert not other.model_reused and other.load_s == 5.0
    assert box.work.loads == 2 and box.work.unloads == 1
    assert box.keeper.backend is box.made[1]


def test_without_a_keeper_every_experiment_loads_and_unloads() -> None:
    box = Machine()
    a = box.run(config(), keep=False)
    b = box.run(config(batch_size=4), keep=False)
    assert (a.model_reused, b.model_reused) == (False, False)
    assert box.work.loads == 2 and box.work.unloads == 2
    assert (b.baseline_reused, b.baseline_age_s, b.baseline_note) == (False, 0.0, None)


class Failing(SimBackend):
    def generate(self, prompts: list[str]) -> GenerationOutput:
        if self.config.batch_size == 3:
            raise BackendError("CUDA error: an illegal memory access was encountered")
        return super().generate(prompts)


def test_a_failed_experiment_drops_the_kept_model() -> None:
    box = Machine()
    box.keeper = ModelKeeper(make_backend=lambda cfg: Failing(cfg, box.work))
    box.run(config())
    with pytest.raises(BackendError):
        box.run(config(batch_size=3))
    assert box.keeper.backend is None and box.work.unloads == 1
    after = box.run(config())
    assert not after.model_reused and box.work.loads == 2


class Unswitchable(SimBackend):
    def reconfigure(self, cfg: ExperimentConfig) -> None:
        if cfg.batch_size == 5:
            raise BackendError("cannot switch to batch size 5")
        super().reconfigure(cfg)


def test_a_model_that_cannot_switch_is_dropped() -> None:
    box = Machine()
    box.keeper = ModelKeeper(make_backend=lambda cfg: Unswitchable(cfg, box.work))
    box.run(config())
    with pytest.raises(BackendError, match="batch size 5"):
        box.run(config(batch_size=5))
    assert box.keeper.backend is None and box.work.unloads == 1


# ---------------------------------------------------------------------------- baseline


def test_the_baseline_is_kept_and_its_age_recorded() -> None:
    box = Machine()
    first = box.run(config())
    t_first = box.work.now()
    second = box.run(config(batch_size=4))
    assert first.baseline_reused is False and first.baseline_age_s == 0.0
    assert first.baseline_note == "first window with this model loaded"
    assert second.baseline_reused is True and second.baseline_note is None
    assert second.idle_power_w == first.idle_power_w
    # its age: from the end of the first baseline to this window's baseline decision
    assert second.baseline_age_s is not None
    assert first.window_s is not None and first.window_s < second.baseline_age_s
    assert second.baseline_age_s < box.work.now() - t_first + first.window_s + 1.0
    assert second.energy_net_j == pytest.approx(
        second.energy_gross_j - second.idle_power_w * second.window_s  # type: ignore[operator]
    )
    assert first.idle_power_w == pytest.approx(90.0, rel=2e-3)


def test_max_age_zero_measures_before_every_window() -> None:
    box = Machine()
    box.run(config(baseline={"seconds": 1.0, "max_age_s": 0}))
    again = box.run(config(batch_size=4, baseline={"seconds": 1.0, "max_age_s": 0}))
    assert again.model_reused and again.baseline_reused is False
    assert again.baseline_note == "baseline.max_age_s is 0"


def test_an_old_baseline_is_measured_again() -> None:
    box = Machine()
    box.run(config(baseline={"seconds": 1.0, "max_age_s": 2.0}))
    again = box.run(config(batch_size=4, baseline={"seconds": 1.0, "max_age_s": 2.0}))
    assert again.baseline_reused is False
    assert again.baseline_note is not None and "max_age_s=2" in again.baseline_note


def test_a_changed_baseline_length_is_measured_again() -> None:
    box = Machine()
    box.run(config())
    again = box.run(config(batch_size=4, baseline={"seconds": 2.0}))
    assert again.baseline_reused is False and "baseline.seconds" in (again.baseline_note or "")


def test_a_thermal_change_measures_the_idle_power_again() -> None:
    """The GPU warms by more than the drift limit and its idle power rises with it: the kept
    baseline would overstate net energy by 20 W × window; the re-measured one is the new idle."""
    state = {"hot": False}
    box = Machine(temperature_c=lambda _t: 60.0 if state["hot"] else 45.0)
    first = box.run(config())
    state["hot"] = True
    box.work.idle_w = [110.0]
    box.work.set_power(None)
    again = box.run(config(batch_size=4))
    assert again.baseline_reused is False
    assert "gpu0 temperature moved from 45 to 60 °C" in (again.baseline_note or "")
    assert again.idle_power_w == pytest.approx(110.0, rel=2e-3)
    assert first.idle_power_w == pytest.approx(90.0, rel=2e-3)


def test_a_small_temperature_change_keeps_the_baseline() -> None:
    state = {"t": 45.0}
    box = Machine(temperature_c=lambda _t: state["t"])
    box.run(config())
    state["t"] = 45.0 + BASELINE_DRIFT_C / 2
    assert box.run(config(batch_size=4)).baseline_reused is True


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("power_limit_w", 400.0, "power limit changed"),
        ("throttle_reasons", 0x20, "clock-limiting reasons changed"),
    ],
)
def test_a_power_limit_or_clock_change_measures_again(field: str, value: Any, said: str) -> None:
    state = {"changed": False}
    default = {"power_limit_w": 700.0, "throttle_reasons": 0}[field]
    box = Machine(**{field: lambda _t: value if state["changed"] else default})
    box.run(config())
    state["changed"] = True
    again = box.run(config(batch_size=4))
    assert again.baseline_reused is False and said in (again.baseline_note or "")


def test_the_first_window_of_each_loaded_model_measures_its_own() -> None:
    box = Machine()
    box.run(config(model="model-a"))
    other = box.run(config(model="model-b"))
    assert other.baseline_reused is False
    assert other.baseline_note == "first window with this model loaded"


def test_the_cooldown_reference_of_a_reused_model_is_from_before_its_load() -> None:
    """Idle for the in-experiment cooldown is the temperature before the model was loaded,
    also for later points that reuse it (not the warm GPU after the previous window)."""
    temps = {"t": 35.0}
    box = Machine(temperature_c=lambda _t: temps["t"])
    cooldown = {"until_within_c": 5.0, "max_s": 1.0, "poll_s": 0.5}
    box.run(config(cooldown=cooldown))
    temps["t"] = 70.0
    again = box.run(config(batch_size=4, cooldown=cooldown))
    assert again.window_cooldown is not None
    assert again.window_cooldown["idle_c"] == {"gpu0": 35.0}
    assert again.window_cooldown["reached"] is False
