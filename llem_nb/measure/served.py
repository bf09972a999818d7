"""A served run, measured: server up → warm-up requests → idle baseline (server up, idle) →
the meter over the whole run → the steady state found from the request timeline.

The steady-state window's energy comes from the same per-read timeline as the run's
(each device's counter track, else its power samples): no second meter. The row's base
quantities (energy, output tokens, window) are the steady state's; the ``_run`` columns the
whole run's. A meter without a per-read timeline (the CPU estimate) cannot resolve a
sub-window: the steady-state energy is then left empty and the row says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from llem_nb.backends.base import get_backend
from llem_nb.backends.datasets import load_prompts
from llem_nb.backends.serving.arrivals import arrival_times_s
from llem_nb.backends.serving.backend import ServingBackend
from llem_nb.backends.serving.client import LoadSpec, run_load
from llem_nb.backends.serving.vllm_server import VllmServerBackend
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import EnergyMeter
from llem_nb.energy.clock import Clock
from llem_nb.energy.factory import make_meter
from llem_nb.measure.environment import environment_record
from llem_nb.measure.served_rows import fill_served
from llem_nb.results.schema import ExperimentResult, utc_now

MEASURED_SOURCES = frozenset({"nvml", "rapl"})


def serving_backend(config: ExperimentConfig) -> ServingBackend:
    """The backend that serves ``config``: vLLM's own server, or a running one (openai)."""
    if config.backend == "vllm":
        return VllmServerBackend(config)
    cls = get_backend(config.backend)
    backend = cls(config)
    if not isinstance(backend, ServingBackend):
        raise TypeError(f"backend {config.backend!r} does not serve requests")
    return backend


def _spec(
    backend: ServingBackend, config: ExperimentConfig, prompts: list[str], arrivals: list[float]
) -> LoadSpec:
    w = config.workload
    return LoadSpec(
        base_url=backend.base_url,
        model=backend.served_model,
        prompts=prompts,
        arrivals_s=arrivals,
        max_tokens=config.max_output_tokens,
        max_concurrency=w.max_concurrency,
        api_key=backend.api_key(),
        body=backend.request_body(),
        metrics_every_s=0.25,
    )


def run_served(
    config: ExperimentConfig,
    *,
    clock: Clock,
    meter: EnergyMeter | None = None,
    backend: ServingBackend | None = None,
    cycle: int = 0,
    study: str = "",
    phase: Callable[[str], None] = lambda _name: None,
) -> ExperimentResult:
    """One served experiment; every exit path stops what it started."""
    started_at = utc_now()
    backend = backend or serving_backend(config)
    type(backend).preflight(config)
    prompts = load_prompts(config.dataset, config.n_prompts, seed=config.decoder.seed)
    w = config.workload
    arrivals = arrival_times_s(w.n_requests, w.rate_rps, w.arrival, w.burstiness, w.seed)
    own_meter = meter is None
    try:
        phase("load")
        t = clock.now()
        backend.load()
        load_s = clock.now() - t
        phase("warmup")
        t = clock.now()
        if w.warmup_requests:
            run_load(_spec(backend, config, prompts, [0.0] * w.warmup_requests), clock.now)
            backend.check_alive()
        warmup_s = clock.now() - t
        meter = meter or make_meter(config.energy, backend.gpu_indices(), clock=clock)
        idle: dict[str, float] = {}
        if config.baseline.seconds > 0 and meter.source in MEASURED_SOURCES:
            phase("baseline")
            idle = meter.idle_power_w(config.baseline.seconds)
        phase("window")
        meter.start()
        try:
            load = run_load(
                _spec(backend, config, prompts, arrivals), clock.now, backend.count_prompt_tokens
            )
        finally:
            reading = meter.stop()
        backend.check_alive()
        environment: dict[str, Any] = {**environment_record(), **backend.environment()}
        environment["arrivals_s"] = arrivals
    finally:
        with contextlib.suppress(Exception):
            if own_meter and meter is not None:
                meter.close()
        backend.unload()
    phase("done")
    result = ExperimentResult.finished(
        config,
        cycle=cycle,
        study=study,
        started_at=started_at,
        load_s=load_s,
        model_reused=False,
        warmup_s=warmup_s,
        window_repeats=1,
        environment=environment,
    )
    limit = config.serving_batch_limit()[0]
    fill_served(result, config, load, reading, idle, limit)
    return result
