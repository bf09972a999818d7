"""The Harness: the one place that orders a measurement.

preflight → load → warm-up → (cooldown) → idle baseline → measured window
(device-synchronised, phase boundaries marked, the prompt set repeated until the window
reaches ``measurement.min_window_s``) → tokens, latencies, energy, phases, flags,
timeseries → an ``ExperimentResult``. Every runner ends in ``Harness.run``; nothing
else opens a measurement window. All timing is on one injectable clock (the meter's).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from llem_nb.backends.base import Backend, GenerationOutput, get_backend
from llem_nb.backends.datasets import load_prompts
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import EnergyMeter, EnergyReading
from llem_nb.energy.clock import SYSTEM_CLOCK, Clock
from llem_nb.energy.factory import make_meter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import check_visible_devices, visible_temperatures
from llem_nb.measure.accounting import (
    fill_derived,
    fill_energy,
    fill_quality,
    fill_tokens_and_latency,
)
from llem_nb.measure.environment import environment_record
from llem_nb.measure.quality import MIN_WINDOW_S
from llem_nb.measure.thermal import wait_until_cool
from llem_nb.measure.warmup import warm_up
from llem_nb.results.schema import ExperimentResult, utc_now

MEASURED_SOURCES = frozenset({"nvml", "rapl"})
__all__ = ["MIN_WINDOW_S", "Harness"]

PhaseHook = Callable[[str], None]


def _timed(run: Callable[[], None], backend: Backend, clock: Clock) -> Callable[[], float]:
    def once() -> float:
        t = clock.now()
        run()
        backend.synchronize()
        return clock.now() - t

    return once


def _merge(*found: dict[str, list[int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item in found:
        for label, pids in item.items():
            out[label] = sorted({*out.get(label, []), *pids})
    return out


def _gpu_environment(facts: list[dict[str, Any]]) -> dict[str, Any]:
    if not facts:
        return {}
    names = list(dict.fromkeys(str(f.get("name")) for f in facts))
    return {
        "gpus": facts,
        "gpu_name": ", ".join(names),
        "driver_version": facts[0].get("driver_version"),
        "cuda_driver_version": facts[0].get("cuda_driver_version"),
    }


def _measure(
    meter: EnergyMeter,
    backend: Backend,
    prompts: list[str],
    config: ExperimentConfig,
    clock: Clock,
) -> tuple[GenerationOutput, EnergyReading, int]:
    """The window: the prompt set, repeated until ``min_window_s``; every token counted."""
    target_s = config.measurement.target_window_s(uses_gpu=bool(backend.gpu_indices()))
    gc.collect()
    backend.synchronize()
    t0 = meter.start()
    output = backend.generate(prompts)
    backend.synchronize()
    repeats = 1
    while clock.now() - t0 < target_s and repeats < config.measurement.max_repeats:
        more = backend.generate(prompts)
        backend.synchronize()
        output.requests.extend(more.requests)
        output.phases.extend(more.phases)
        repeats += 1
    return output, meter.stop(), repeats


class Harness:
    """Runs one experiment. ``backend`` and ``meter`` default to those the config names;
    ``clock`` (default: the meter's, else the system's) times everything."""

    def __init__(
        self,
        backend: Backend | None = None,
        meter: EnergyMeter | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._backend = backend
        self._meter = meter
        self._clock = clock or (meter.clock if meter is not None else SYSTEM_CLOCK)

    def _nvml(self) -> Any:
        """The NVML module the injected meter uses (a fake in tests); None: the real one."""
        return self._meter.nvml if isinstance(self._meter, NvmlMeter) else None

    def _preflight(self, config: ExperimentConfig, backend: Backend) -> None:
        if self._backend is None:
            type(backend).preflight(config)
        if config.gpus != 0:
            check_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), nvml=self._nvml())

    def _idle_temperatures(self, config: ExperimentConfig) -> dict[str, float]:
        """GPU temperatures before loading: the cooldown's idle reference."""
        if config.cooldown.until_within_c is None or config.cooldown.idle_c is not None:
            return {}
        if self._meter is not None:
            return self._meter.temperatures()
        return visible_temperatures(os.environ.get("CUDA_VISIBLE_DEVICES"))

    def run(
        self,
        config: ExperimentConfig,
        *,
        cycle: int = 0,
        study: str = "",
        on_phase: PhaseHook | None = None,
    ) -> ExperimentResult:
        phase = on_phase or (lambda _name: None)
        started_at = utc_now()
        backend = self._backend or get_backend(config.backend)(config)
        self._preflight(config, backend)
        prompts = load_prompts(config.dataset, config.n_prompts, seed=config.decoder.seed)
        idle_c = self._idle_temperatures(config)

        clock = self._clock
        phase("load")
        t = clock.now()
        backend.load()
        load_s = clock.now() - t
        meter: EnergyMeter | None = None
        marks = hasattr(backend, "phase_marker")
        try:
            phase("warmup")
            t = clock.now()
            warm = warm_up(_timed(lambda: backend.warmup(prompts), backend, clock), config.warmup)
            warmup_s = clock.now() - t

            meter = self._meter or make_meter(config.energy, backend.gpu_indices(), clock=clock)
            cool = None
            if config.cooldown.until_within_c is not None:
                phase("cooldown")
                cool = wait_until_cool(
                    meter.temperatures, idle_c, config.cooldown, wait=clock.sleep, clock=clock.now
                )
            idle: dict[str, float] = {}
            if config.baseline.seconds > 0 and meter.source in MEASURED_SOURCES:
                phase("baseline")
                idle = meter.idle_power_w(config.baseline.seconds)
            facts = meter.device_facts()
            others = meter.other_processes()

            phase("window")
            if marks:
                backend.phase_marker = meter.mark  # type: ignore[attr-defined]
            output, reading, repeats = _measure(meter, backend, prompts, config, clock)
            others = _merge(others, meter.other_processes())
            environment = {
                **environment_record(),
                **backend.environment(),
                **_gpu_environment(facts),
            }
        finally:
            if marks:
                backend.phase_marker = None  # type: ignore[attr-defined]
            backend.unload()
            if meter is not None and self._meter is None:
                meter.close()

        phase("done")
        result = ExperimentResult(
            study=study,
            experiment_id=config.experiment_id,
            config_hash=config.config_hash,
            cycle=cycle,
            config=config.model_dump(mode="json"),
            started_at=started_at,
            finished_at=utc_now(),
            load_s=load_s,
            warmup_s=warmup_s,
            window_s=reading.t1 - reading.t0,
            window_repeats=repeats,
            environment=environment,
        )
        fill_tokens_and_latency(result, output)
        clamped = fill_energy(result, reading, idle, reading.t1 - reading.t0)
        split_flags = fill_derived(result, config, reading, output, (reading.t0, reading.t1))
        fill_quality(
            result,
            reading,
            clamped=clamped,
            other_processes=others,
            warmup=warm,
            cooldown=cool,
            extra=split_flags,
        )
        return result
