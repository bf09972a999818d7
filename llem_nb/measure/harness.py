"""The Harness: the one place that orders a measurement.

preflight → load → warm-up → (cooldown) → idle baseline → measured window
(device-synchronised, phase boundaries marked, the prompt set repeated until the window
reaches ``measurement.min_window_s``) → tokens, latencies, energy, phases, flags,
timeseries → an ``ExperimentResult``. Every runner ends in ``Harness.run``; nothing
else opens a measurement window. All timing is on one injectable clock (the meter's).

In a study that reuses (``reuse="auto"``), a ``ModelKeeper`` carries the loaded model from
one run to the next: load becomes "take the kept model" (``load_s`` 0), warm-up a short
re-warm, and the idle baseline may be the kept one (``llem_nb.measure.reuse``). The window
itself is the same code either way.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable
from typing import Any

from llem_nb.backends.base import Backend, GenerationOutput, get_backend
from llem_nb.backends.datasets import load_prompts
from llem_nb.backends.serving.backend import ServingBackend
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import EnergyMeter, EnergyReading
from llem_nb.energy.clock import SYSTEM_CLOCK, Clock
from llem_nb.energy.device import Nvml
from llem_nb.energy.factory import make_meter
from llem_nb.energy.nvml import NvmlMeter
from llem_nb.energy.nvml_devices import check_visible_devices, visible_temperatures
from llem_nb.energy.powercap import ROOT_ENV, PowercapMeter, ZoneReading, host_meter
from llem_nb.measure.accounting import (
    fill_derived,
    fill_energy,
    fill_quality,
    fill_tokens_and_latency,
)
from llem_nb.measure.boundary import fill_boundary, idle_watts
from llem_nb.measure.environment import environment_record
from llem_nb.measure.quality import MIN_WINDOW_S
from llem_nb.measure.reuse import BaselineChoice, ModelKeeper
from llem_nb.measure.served import run_served
from llem_nb.measure.thermal import wait_until_cool, wait_until_settled
from llem_nb.measure.warmup import re_warm, warm_up
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


def _compiled_in_window(before: int | None, after: int | None) -> list[tuple[str, str]]:
    """The ``compile_in_window`` flag when the backend's compile counter moved in the window."""
    if before is None or after is None or after == before:
        return []
    return [
        (
            "compile_in_window",
            f"torch.compile compiled {after - before} graph(s) inside the measured window: "
            "its time and energy are in the numbers (a shape warm-up did not see)",
        )
    ]


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
    *,
    reused: bool = False,
    host: PowercapMeter | None = None,
) -> tuple[GenerationOutput, EnergyReading, int, list[ZoneReading]]:
    """The window: the prompt set, repeated until ``min_window_s``; every token counted.

    Garbage is collected first, so no collection of it falls in the window: all of it after
    a load (the previous model's objects), the young generations only on a reused model
    (what its earlier windows left; a full pass over a big kernel heap takes ~0.5 s).
    """
    target_s = config.measurement.target_window_s(uses_gpu=bool(backend.gpu_indices()))
    if reused:
        gc.collect(1)
    else:
        gc.collect()
    backend.synchronize()
    t0 = meter.start()
    if host is not None:
        host.begin()
    output = backend.generate(prompts)
    backend.synchronize()
    repeats = 1
    while clock.now() - t0 < target_s and repeats < config.measurement.max_repeats:
        more = backend.generate(prompts)
        backend.synchronize()
        output.requests.extend(more.requests)
        output.phases.extend(more.phases)
        repeats += 1
    zones = host.end() if host is not None else []
    return output, meter.stop(), repeats, zones


class Harness:
    """Runs one experiment. ``backend`` and ``meter`` default to those the config names;
    ``clock`` (default: the meter's, else the system's) times everything. ``keeper``
    (a study that reuses): take the model from it and leave it there afterwards, instead of
    loading and unloading one per experiment (see ``llem_nb.measure.reuse``). ``host``: the
    powercap meter of the CPU and DRAM domains (default: from ``energy.domains`` when the
    meter is too, or when ``LLEM_POWERCAP_ROOT`` names a tree; else none)."""

    def __init__(
        self,
        backend: Backend | None = None,
        meter: EnergyMeter | None = None,
        *,
        clock: Clock | None = None,
        keeper: ModelKeeper | None = None,
        host: PowercapMeter | None = None,
    ) -> None:
        if backend is not None and keeper is not None:
            raise ValueError("pass a backend or a keeper, not both (the keeper makes backends)")
        self._backend = backend
        self._meter = meter
        self._keeper = keeper
        self._host = host
        self._clock = clock or (meter.clock if meter is not None else SYSTEM_CLOCK)

    def _nvml(self) -> Nvml | None:
        """The NVML door the injected meter reads through (a fake in tests); None: the real one."""
        return self._meter.nvml if isinstance(self._meter, NvmlMeter) else None

    def _host_meter(self, config: ExperimentConfig) -> PowercapMeter | None:
        if self._host is not None:
            return self._host
        if self._meter is None or os.environ.get(ROOT_ENV):
            return host_meter(config.energy.domains, clock=self._clock)
        return None

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
        if config.workload.serving:
            served = self._backend if isinstance(self._backend, ServingBackend) else None
            return run_served(
                config, clock=self._clock, meter=self._meter, backend=served,
                cycle=cycle, study=study, phase=phase,
            )  # fmt: skip
        started_at = utc_now()
        keeper = self._keeper
        if keeper is not None:
            backend, reused = keeper.take(config)
        else:
            backend, reused = self._backend or get_backend(config.backend)(config), False
        done = False
        try:
            result = self._run(config, backend, reused, cycle=cycle, study=study, phase=phase)
            result.started_at = started_at
            done = True
        finally:
            kept = keeper is not None and keeper.owns(backend)
            if done and not kept:
                backend.unload()
            elif not done:
                with contextlib.suppress(Exception):  # the error that got us here matters
                    if keeper is not None and kept:
                        keeper.release()
                    else:
                        backend.unload()
        return result

    def _load(
        self, config: ExperimentConfig, backend: Backend, reused: bool, phase: PhaseHook
    ) -> tuple[float, dict[str, float]]:
        """Load, or take the kept model: (seconds loading, the cooldown's idle temperatures)."""
        if reused and self._keeper is not None:
            return 0.0, self._keeper.idle_c
        self._preflight(config, backend)
        idle_c = self._idle_temperatures(config)
        phase("load")
        t = self._clock.now()
        backend.load()
        load_s = self._clock.now() - t
        if self._keeper is not None:
            self._keeper.keep(backend, config, idle_c)
        return load_s, idle_c

    def _baseline(
        self,
        config: ExperimentConfig,
        meter: EnergyMeter,
        phase: PhaseHook,
        *,
        first: bool,
        host: PowercapMeter | None = None,
    ) -> BaselineChoice | None:
        """The idle power per device for net energy: kept, or measured now (None: none)."""
        if config.baseline.seconds <= 0 or meter.source not in MEASURED_SOURCES:
            return None
        keeper = self._keeper
        choice: BaselineChoice | None = None
        if keeper is not None:
            facts = meter.device_facts()
            now = self._clock.now()
            choice = keeper.choose_baseline(config, facts, meter.source, now, first=first)
            if choice.reused:
                return choice
        phase("baseline")
        settle = None
        if meter.source == "nvml":
            poll_s = min(1.0, config.baseline.seconds)
            settle = wait_until_settled(meter.idle_power_w, poll_s=poll_s, clock=self._clock.now)
        if host is not None:
            host.begin()
        idle = meter.idle_power_w(config.baseline.seconds)
        if host is not None:
            idle = {**idle, **idle_watts(host.end())}
        if keeper is not None:
            facts = meter.device_facts()
            keeper.keep_baseline(idle, config, facts, meter.source, self._clock.now())
        notes = [n for n in (choice.note if choice else None, settle and settle.note) if n]
        return BaselineChoice(False, 0.0, "; ".join(notes) or None, idle)

    def _run(
        self,
        config: ExperimentConfig,
        backend: Backend,
        reused: bool,
        *,
        cycle: int,
        study: str,
        phase: PhaseHook,
    ) -> ExperimentResult:
        prompts = load_prompts(config.dataset, config.n_prompts, seed=config.decoder.seed)
        clock = self._clock
        load_s, idle_c = self._load(config, backend, reused, phase)
        meter: EnergyMeter | None = None
        host: PowercapMeter | None = None
        marks = hasattr(backend, "phase_marker")
        try:
            phase("warmup")
            t = clock.now()
            if reused:
                short = config.warmup.rewarm_tokens
                once = _timed(lambda: backend.rewarm(prompts, short), backend, clock)
                ran = self._keeper is not None and self._keeper.ran(config)
                warm = re_warm(once, config.warmup, already_ran=ran)
            else:
                once = _timed(lambda: backend.warmup(prompts), backend, clock)
                warm = warm_up(once, config.warmup)
            warmup_s = clock.now() - t

            meter = self._meter or make_meter(config.energy, backend.gpu_indices(), clock=clock)
            host = self._host_meter(config)
            cool = None
            if config.cooldown.until_within_c is not None:
                phase("cooldown")
                cool = wait_until_cool(
                    meter.temperatures, idle_c, config.cooldown, wait=clock.sleep, clock=clock.now
                )
            baseline = self._baseline(config, meter, phase, first=not reused, host=host)
            idle = baseline.idle_w if baseline is not None else {}
            facts = meter.device_facts()
            others = meter.other_processes()

            phase("window")
            if marks:
                backend.phase_marker = meter.mark  # type: ignore[attr-defined]
            compiled_before = backend.compile_count()
            output, reading, repeats, zones = _measure(
                meter, backend, prompts, config, clock, reused=reused, host=host
            )
            compiled = _compiled_in_window(compiled_before, backend.compile_count())
            if self._keeper is not None:
                self._keeper.mark_ran(backend, config)
            others = _merge(others, meter.other_processes())
            environment = {
                **environment_record(),
                **backend.environment(),
                **_gpu_environment(facts),
            }
        finally:
            if marks:
                backend.phase_marker = None  # type: ignore[attr-defined]
            if meter is not None and self._meter is None:
                meter.close()
            if host is not None:
                host.close()

        phase("done")
        result = ExperimentResult.finished(
            config,
            cycle=cycle,
            study=study,
            load_s=load_s,
            model_reused=reused,
            warmup_s=warmup_s,
            window_s=reading.t1 - reading.t0,
            window_repeats=repeats,
            baseline_reused=baseline.reused if baseline is not None else None,
            baseline_age_s=baseline.age_s if baseline is not None else None,
            baseline_note=baseline.note if baseline is not None else None,
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
            extra=[*split_flags, *compiled],
            min_window_s=config.measurement.target_window_s(uses_gpu=bool(backend.gpu_indices())),
        )
        fill_boundary(
            result, config, window_s=result.window_s or 0.0, host=host, zones=zones, host_idle=idle
        )
        return result
