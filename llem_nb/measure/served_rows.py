"""A served run's numbers: the steady-state window's energy and tokens, latencies, goodput.

Pure bookkeeping over the request timeline and the run's energy reading (see
``llem_nb.results.steady`` for the rules, ``llem_nb.measure.served`` for the run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from llem_nb.backends.serving.client import LAG_FLAG_S, LoadResult
from llem_nb.backends.serving.metrics import average
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.base import EnergyReading
from llem_nb.energy.integrate import PowerCurve
from llem_nb.measure.accounting import fill_energy
from llem_nb.measure.quality import assess
from llem_nb.results.schema import ExperimentResult, RequestStats
from llem_nb.results.steady import (
    goodput,
    mlenergy_window,
    percentiles,
    run_span,
    tokens_in,
    trim_window,
)


def device_energy_between(reading: EnergyReading, a: float, b: float) -> list[float | None]:
    """Each device's joules in [a, b] from the run's reads; None where they cannot say."""
    out: list[float | None] = []
    for k in range(len(reading.devices)):
        track = reading.tracks[k] if k < len(reading.tracks) else None
        if track is not None:
            lo, hi = track.energy_at(a), track.energy_at(b)
            if lo is not None and hi is not None:
                out.append(hi - lo)
                continue
        out.append(PowerCurve(reading.samples, k).integral(a, b) if reading.samples else None)
    return out


def steady_reading(reading: EnergyReading, a: float, b: float) -> EnergyReading:
    """The run's reading cut to [a, b]: same devices, energies from the same timeline."""
    energies = device_energy_between(reading, a, b)
    devices = [
        replace(d, energy_j=e, power_integral_j=None, edges={})
        for d, e in zip(reading.devices, energies, strict=True)
    ]
    return replace(reading, devices=devices, window_s=b - a, t0=a, t1=b)


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else value * 1e3


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def fill_served(
    result: ExperimentResult,
    config: ExperimentConfig,
    load: LoadResult,
    reading: EnergyReading,
    idle: Mapping[str, float],
    batch_limit: int | None,
) -> None:
    """Every serving column of ``result`` from the run's timeline and reading."""
    w, reqs = config.workload, load.requests
    flags: list[tuple[str, str]] = []
    done = [r for r in reqs if r.ok]
    failed = [r for r in reqs if not r.ok]
    if failed:
        flags.append(
            ("requests_failed", f"{len(failed)} of {len(reqs)} requests failed: {failed[0].error}")
        )
    if w.steady_state == "mlenergy":
        window = mlenergy_window(reqs, batch_limit or 1)
    else:
        window = trim_window(reqs, w.trim_lead_s, w.trim_trail_s)
    span = run_span(reqs) or (reading.t0, reading.t1)

    ttft = percentiles([r.ttft_s for r in done])
    itl = percentiles([g for r in done for g in r.itl_s])
    e2e = percentiles([r.e2e_s for r in done])
    for q in (50, 90, 99):
        setattr(result, f"ttft_ms_p{q}", _ms(ttft[q]))
        setattr(result, f"itl_ms_p{q}", _ms(itl[q]))
    result.latency_s_p50 = _none(e2e[50])
    extra: dict[str, Any] = {"latency_s_p90": _none(e2e[90]), "latency_s_p99": _none(e2e[99])}
    e2es = [r.e2e_s for r in done if r.e2e_s is not None]
    result.latency_s_mean = sum(e2es) / len(e2es) if e2es else None
    result.requests = RequestStats(
        input_tokens=[r.prompt_tokens for r in reqs],
        output_tokens=[r.completion_tokens for r in reqs],
        e2e_s=[r.e2e_s if r.e2e_s is not None else math.nan for r in reqs],
        ttft_s=[r.ttft_s for r in reqs],
        queue_s=[None for _ in reqs],
    )
    result.batching = "continuous"
    result.n_requests = len(reqs)
    lag = percentiles(load.lags_s)[99]
    extra["client_lag_ms_p99"] = _ms(lag)
    if not math.isnan(lag) and lag > LAG_FLAG_S:
        flags.append(
            (
                "client_lag",
                f"the client sent late: send-lag p99 {lag * 1e3:.1f} ms > 5 ms, "
                "so the offered load is below the config's",
            )
        )
    if load.usage_mismatches or load.prompt_mismatches:
        flags.append(
            (
                "usage_mismatch",
                f"server token usage disagrees: {load.usage_mismatches} "
                f"completions with fewer tokens than streamed chunks, {load.prompt_mismatches} "
                "prompts with our "
                "tokenizer",
            )
        )

    sends = sorted(r.sent_s for r in reqs)
    extra["offered_rate_rps"] = None if w.request_rate == "inf" else float(w.request_rate)
    extra["achieved_rate_rps"] = (
        (len(sends) - 1) / (sends[-1] - sends[0])
        if len(sends) > 1 and sends[-1] > sends[0]
        else None
    )
    run_tokens = sum(r.tokens for r in reqs)
    run_energy = reading.energy_j
    extra["energy_run_j"] = run_energy
    extra["output_tokens_run"] = run_tokens
    extra["energy_per_output_token_j_run"] = (
        run_energy / run_tokens if run_energy is not None and run_tokens else None
    )
    good = goodput(reqs, ttft_ms=w.slo.ttft_ms, itl_ms=w.slo.itl_ms, e2e_s=w.slo.e2e_s)
    extra["goodput_rps"] = _none(good.rps)
    extra["slo_attainment"] = _none(good.attainment)
    extra["server_external"] = bool(result.environment.get("server_external"))

    if window is None:
        flags.append(
            (
                "no_steady_state",
                "the run never reached a steady state by the "
                f"{w.steady_state} rule: the energy columns cover the whole run",
            )
        )
        a, b = span
    else:
        a, b = window
    cut = steady_reading(reading, a, b) if window is not None else reading
    result.window_s = b - a
    extra["steady_state_s"] = (b - a) if window is not None else None
    result.output_tokens = tokens_in(reqs, a, b) if window is not None else run_tokens
    result.input_tokens = sum(
        r.prompt_tokens for r in reqs if r.first_token_s is not None and a < r.first_token_s <= b
    )
    extra["avg_running"] = _none(average(load.metrics, a, b, "running"))
    extra["avg_waiting"] = _none(average(load.metrics, a, b, "waiting"))
    clamped = fill_energy(result, cut, idle, b - a)
    if window is not None and cut.energy_j is None and run_energy is not None:
        flags.append(
            (
                "steady_energy_unresolved",
                f"the {reading.source} meter keeps no per-read "
                "timeline, so the steady state's energy cannot be cut from the run's: "
                "see energy_per_output_token_j_run",
            )
        )
    found = assess(
        reading,
        window_s=reading.t1 - reading.t0,
        net_clamped=clamped,
        other_processes={},
        warmup_converged=None,
        cooldown_reached=None,
    )
    for flag, warning in flags:
        found.add(flag, warning)
    result.quality_flags = found.flags
    result.warnings = found.warnings
    for name, value in extra.items():  # the serving columns: extra fields of the result
        setattr(result, name, value)
