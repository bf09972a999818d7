"""The Harness: the one place that orders a measurement.

preflight → load → warm-up → (cooldown) → idle baseline → measured window
(device-synchronised, phase boundaries marked) → tokens, latencies, energy, phases,
flags, timeseries → an ``ExperimentResult``. Every runner ends in ``Harness.run``;
nothing else opens a measurement window.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

from llem_nb.accounting import fill_derived, fill_energy, fill_quality, fill_tokens_and_latency
from llem_nb.backends.base import Backend, get_backend
from llem_nb.config import ExperimentConfig
from llem_nb.datasets import load_prompts
from llem_nb.energy import make_meter
from llem_nb.energy.base import EnergyMeter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import check_visible_devices, visible_temperatures
from llem_nb.environment import environment_record
from llem_nb.quality import MIN_WINDOW_S
from llem_nb.results.schema import ExperimentResult, utc_now
from llem_nb.warmup import cool_down, warm_up

MEASURED_SOURCES = frozenset({"nvml", "rapl"})
__all__ = ["MIN_WINDOW_S", "Harness"]

PhaseHook = Callable[[str], None]


def _timed(run: Callable[[], None], backend: Backend) -> Callable[[], float]:
    def once() -> float:
        t = time.perf_counter()
        run()
        backend.synchronize()
        return time.perf_counter() - t

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


class Harness:
    """Runs one experiment. ``backend`` and ``meter`` default to those the config names."""

    def __init__(self, backend: Backend | None = None, meter: EnergyMeter | None = None) -> None:
        self._backend = backend
        self._meter = meter

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

        phase("load")
        t = time.perf_counter()
        backend.load()
        load_s = time.perf_counter() - t
        meter: EnergyMeter | None = None
        marks = hasattr(backend, "phase_marker")
        try:
            phase("warmup")
            t = time.perf_counter()
            warm = warm_up(_timed(lambda: backend.warmup(prompts), backend), config.warmup)
            warmup_s = time.perf_counter() - t

            meter = self._meter or make_meter(config.energy, backend.gpu_indices())
            cool = None
            if config.cooldown.until_within_c is not None:
                phase("cooldown")
                cool = cool_down(meter.temperatures, idle_c, config.cooldown)
            idle: dict[str, float] = {}
            if config.baseline.seconds > 0 and meter.source in MEASURED_SOURCES:
                phase("baseline")
                idle = meter.idle_power_w(config.baseline.seconds)
            facts = meter.device_facts()
            others = meter.other_processes()

            phase("window")
            if marks:
                backend.phase_marker = meter.mark  # type: ignore[attr-defined]
            gc.collect()
            backend.synchronize()
            meter.start()
            t0 = time.perf_counter()
            output = backend.generate(prompts)
            backend.synchronize()
            t1 = time.perf_counter()
            reading = meter.stop()
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
            window_s=t1 - t0,
            environment=environment,
        )
        fill_tokens_and_latency(result, output)
        clamped = fill_energy(result, reading, idle, t1 - t0)
        fill_derived(result, config, reading, output, (t0, t1))
        fill_quality(
            result, reading, clamped=clamped, other_processes=others, warmup=warm, cooldown=cool
        )
        return result
