"""The Harness: the one place that orders a measurement.

load → warm-up → idle baseline → measured window (device-synchronised) →
tokens, latencies and energy → an ``ExperimentResult``. Every runner ends in
``Harness.run``; nothing else opens a measurement window.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

from llem_nb.backends.base import Backend, GenerationOutput, get_backend
from llem_nb.config import ExperimentConfig
from llem_nb.datasets import load_prompts
from llem_nb.energy import make_meter
from llem_nb.energy.base import EnergyMeter, EnergyReading
from llem_nb.environment import environment_record
from llem_nb.results.schema import DeviceEnergy, ExperimentResult, RequestStats, utc_now

MIN_WINDOW_S = 5.0
MEASURED_SOURCES = frozenset({"nvml", "rapl"})

PhaseHook = Callable[[str], None]


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000.0


class Harness:
    """Runs one experiment. ``backend`` and ``meter`` default to those the config names."""

    def __init__(self, backend: Backend | None = None, meter: EnergyMeter | None = None) -> None:
        self._backend = backend
        self._meter = meter

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
        if self._backend is None:
            type(backend).preflight(config)
        prompts = load_prompts(config.dataset, config.n_prompts, seed=config.decoder.seed)

        phase("load")
        t = time.perf_counter()
        backend.load()
        load_s = time.perf_counter() - t
        meter: EnergyMeter | None = None
        try:
            phase("warmup")
            t = time.perf_counter()
            for _ in range(config.warmup.runs):
                backend.warmup(prompts)
            backend.synchronize()
            warmup_s = time.perf_counter() - t

            meter = self._meter or make_meter(config.energy, backend.gpu_indices())
            idle: dict[str, float] = {}
            if config.baseline.seconds > 0 and meter.source in MEASURED_SOURCES:
                phase("baseline")
                idle = meter.idle_power_w(config.baseline.seconds)

            phase("window")
            gc.collect()
            backend.synchronize()
            meter.start()
            t0 = time.perf_counter()
            output = backend.generate(prompts)
            backend.synchronize()
            t1 = time.perf_counter()
            reading = meter.stop()
            environment = {**environment_record(), **backend.environment()}
        finally:
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
        _fill_tokens_and_latency(result, output)
        _fill_energy(result, reading, idle, t1 - t0)
        return result


def _fill_tokens_and_latency(result: ExperimentResult, output: GenerationOutput) -> None:
    reqs = output.requests
    result.batching = output.batching
    result.n_requests = len(reqs)
    result.input_tokens = sum(r.input_tokens for r in reqs)
    result.output_tokens = sum(r.output_tokens for r in reqs)
    result.requests = RequestStats(
        input_tokens=[r.input_tokens for r in reqs],
        output_tokens=[r.output_tokens for r in reqs],
        e2e_s=[r.e2e_s for r in reqs],
        ttft_s=[r.ttft_s for r in reqs],
    )
    ttft = [r.ttft_s for r in reqs if r.ttft_s is not None]
    itl = [gap for r in reqs for gap in r.itl_s]
    e2e = [r.e2e_s for r in reqs]
    for q in (50, 90, 99):
        setattr(result, f"ttft_ms_p{q}", _ms(_percentile(ttft, q)))
        setattr(result, f"itl_ms_p{q}", _ms(_percentile(itl, q)))
    result.latency_s_p50 = _percentile(e2e, 50)
    result.latency_s_mean = sum(e2e) / len(e2e) if e2e else None


def _fill_energy(
    result: ExperimentResult, reading: EnergyReading, idle: dict[str, float], window_s: float
) -> None:
    """Gross per device as read; net = gross − idle × window per device, clamped at 0."""
    flags = list(reading.flags)
    devices: list[DeviceEnergy] = []
    net_total: float | None = 0.0 if idle else None
    for dev in reading.devices:
        idle_w = idle.get(dev.label, dev.idle_power_w)
        net: float | None = None
        if dev.energy_j is not None and idle_w is not None:
            net = dev.energy_j - idle_w * window_s
            if net < 0:
                net = 0.0
                if "net_energy_clamped" not in flags:
                    flags.append("net_energy_clamped")
        if net_total is not None:
            net_total = None if net is None else net_total + net
        devices.append(
            DeviceEnergy(
                label=dev.label,
                index=dev.index,
                uuid=dev.uuid,
                name=dev.name,
                energy_j=dev.energy_j,
                method=dev.method,
                samples=dev.samples,
                power_integral_j=dev.power_integral_j,
                idle_power_w=idle_w,
                energy_net_j=net,
            )
        )
    result.energy_source = reading.source
    result.energy_devices = devices
    result.gpu_count = sum(1 for d in reading.devices if d.label.startswith("gpu"))
    result.energy_gross_j = reading.energy_j
    idle_values = [d.idle_power_w for d in devices]
    if devices and all(v is not None for v in idle_values):
        result.idle_power_w = float(sum(v for v in idle_values if v is not None))
        result.energy_net_j = net_total
    if window_s < MIN_WINDOW_S:
        flags.append("short_window")
    result.warnings = list(reading.warnings)
    result.quality_flags = flags
