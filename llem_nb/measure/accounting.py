"""From a window's raw readings to result fields: tokens, latency, energy, and what follows.

Gross energy per device as the meter read it; net = gross − idle power × window per
device, signed, summed, and the total clamped once at 0 (flagged when the deficit is
beyond the meter's noise, ``NET_NOISE_SHARE`` of gross); the counter-vs-power ratio;
the prefill/decode split; the FLOPs and CO₂ estimates; the timeseries; the quality
flags. Pure bookkeeping: no hardware, no clocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llem_nb.backends.base import GenerationOutput
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import EnergyReading
from llem_nb.measure.carbon import co2_grams
from llem_nb.measure.flops import FLOPS_METHOD, flops_estimate
from llem_nb.measure.phases import split_phases
from llem_nb.measure.quality import assess
from llem_nb.measure.series import build_timeseries
from llem_nb.measure.thermal import CooldownRecord
from llem_nb.measure.warmup import WarmupRecord
from llem_nb.results.schema import DeviceEnergy, ExperimentResult, RequestStats

NET_NOISE_SHARE = 0.005
"""A net total below 0 by at most this share of gross is noise (idle-only windows): it
reads 0, unflagged; a larger deficit is clamped to 0 and flagged ``net_energy_clamped``."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000.0


def fill_tokens_and_latency(result: ExperimentResult, output: GenerationOutput) -> None:
    """Token counts and latency percentiles; queueing only over requests that report it."""
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
        queue_s=[r.queue_s for r in reqs],
    )
    ttft = [r.ttft_s for r in reqs if r.ttft_s is not None]
    itl = [gap for r in reqs for gap in r.itl_s]
    e2e = [r.e2e_s for r in reqs]
    queue = [r.queue_s for r in reqs if r.queue_s is not None]
    for q in (50, 90, 99):
        setattr(result, f"ttft_ms_p{q}", _ms(percentile(ttft, q)))
        setattr(result, f"itl_ms_p{q}", _ms(percentile(itl, q)))
    result.queue_ms_p50 = _ms(percentile(queue, 50))
    result.queue_ms_p90 = _ms(percentile(queue, 90))
    result.latency_s_p50 = percentile(e2e, 50)
    result.latency_s_mean = sum(e2e) / len(e2e) if e2e else None


def fill_energy(
    result: ExperimentResult, reading: EnergyReading, idle: Mapping[str, float], window_s: float
) -> list[str]:
    """Gross, idle and net per device (signed) and summed (clamped once at 0); returns the
    devices whose summed net was clamped beyond noise, as one ``a+b`` label (else none)."""
    devices: list[DeviceEnergy] = []
    for dev in reading.devices:
        idle_w = idle.get(dev.label, dev.idle_power_w)
        net: float | None = None
        if dev.energy_j is not None and idle_w is not None:
            net = dev.energy_j - idle_w * window_s
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
                counter_vs_power_ratio=dev.counter_vs_power_ratio,
                power_method=dev.power_method,
                power_avg_s=dev.power_avg_s,
                counter_update_s=dev.counter_update_s,
                edges=dev.edges,
                mig=dev.mig,
            )
        )
    result.energy_source = reading.source
    result.energy_devices = devices
    result.gpu_count = sum(1 for d in reading.devices if d.label.startswith("gpu"))
    result.energy_gross_j = reading.energy_j
    result.counter_vs_power_ratio = reading.counter_vs_power_ratio
    result.mig = any(d.mig for d in reading.devices)
    idle_values = [d.idle_power_w for d in devices]
    nets = [d.energy_net_j for d in devices]
    clamped: list[str] = []
    if devices and all(v is not None for v in idle_values):
        result.idle_power_w = float(sum(v for v in idle_values if v is not None))
        if all(n is not None for n in nets):
            total = float(sum(n for n in nets if n is not None))
            if total < -NET_NOISE_SHARE * (reading.energy_j or 0.0):
                clamped.append("+".join(d.label for d in devices))
            result.energy_net_j = max(total, 0.0)
    return clamped


def fill_derived(
    result: ExperimentResult,
    config: ExperimentConfig,
    reading: EnergyReading,
    output: GenerationOutput,
    window: tuple[float, float],
) -> list[tuple[str, str]]:
    """Phase split, FLOPs, CO₂ and the in-memory timeseries; returns the split's
    (flag, warning) pairs for ``fill_quality``."""
    t0, t1 = window
    split = split_phases(reading, output.phases, t0, t1, batching=output.batching)
    result.prefill_energy_j = split.prefill_energy_j
    result.decode_energy_j = split.decode_energy_j
    result.phase_method = split.method
    result.phases = split.as_dict()
    params = result.environment.get("parameters_for_flops")
    tokens = None
    if result.input_tokens is not None and result.output_tokens is not None:
        tokens = result.input_tokens + result.output_tokens
    result.flops_estimate = flops_estimate(params if isinstance(params, int) else None, tokens)
    result.flops_method = FLOPS_METHOD if result.flops_estimate is not None else None
    result.co2_g = co2_grams(result.energy_gross_j, config.carbon)
    result.co2_net_g = co2_grams(result.energy_net_j, config.carbon)
    meta = {"experiment_id": result.experiment_id, "cycle": result.cycle}
    result._timeseries = build_timeseries(reading, t0, t1, output.phases, meta)
    return list(zip(split.flags, split.warnings, strict=True))


def fill_quality(
    result: ExperimentResult,
    reading: EnergyReading,
    *,
    clamped: list[str],
    other_processes: Mapping[str, list[int]],
    warmup: WarmupRecord,
    cooldown: CooldownRecord | None,
    extra: Sequence[tuple[str, str]] = (),
    min_window_s: float | None = None,
) -> None:
    """Flags and warnings from the reading, everything that happened before it, and
    ``extra`` (flag, warning) pairs found while accounting (e.g. the phase split).
    ``min_window_s``: the window the run aimed for (see ``assess``)."""
    window_s = result.window_s or 0.0
    found = assess(
        reading,
        window_s=window_s,
        min_window_s=min_window_s,
        net_clamped=clamped,
        other_processes=other_processes,
        warmup_converged=warmup.converged,
        cooldown_reached=cooldown.reached if cooldown is not None else None,
    )
    for flag, warning in extra:
        found.add(flag, warning)
    notes: list[Any] = [cooldown.note] if cooldown is not None and cooldown.note else []
    result.quality_flags = found.flags
    result.warnings = [*found.warnings, *notes]
    result.warmup = warmup.as_dict()
    result.window_cooldown = cooldown.as_dict() if cooldown is not None else None
