"""LLenergyMeasure ``result.json`` (its ``ExperimentResult``, result schema 2.x) → rows.

What maps (their field → our column): ``total_energy_j`` → ``energy_gross_j`` (window
energy, GPUs summed; their 0.0 means "not measured": ``energy_source="none"``);
``energy_adjusted_j`` → ``energy_net_j`` and ``baseline_power_w`` → ``idle_power_w`` (both
computed over ``end_time − start_time``, which is therefore ``window_s``); output tokens
are ``total_energy_j / avg_energy_per_token_j`` (their per-token energy is per *output*
token despite its name), or ``total_flops / flops_per_output_token``; input tokens the
rest of ``total_tokens``. Throughput is then output tokens ÷ window, as ours: their
``avg_tokens_per_second`` counts input + output tokens over the backend's own timer, so
it is never copied. TTFT median/p99 and end-to-end latencies are per request, as ours.
Their ITL drops each request's first and last gap: ``itl_ms_*`` stay missing,
``definition_differs``. The config lives in ``effective_config``; repeats of one config
share ``measurement_config_hash`` (our ``experiment_id``) and are numbered by start time.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from llem_nb.results.importers.common import (
    Record,
    Skip,
    differs,
    dig,
    naive_utc,
    number,
    peer_label,
)

ORIGIN = "llenergymeasure"
SUPPORTED_MAJOR = "2"
MIN_WINDOW_S = 5.0


def recognise(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "measurement_config_hash" in data
        and "effective_config" in data
        and "schema_version" in data
    )


def records(data: dict[str, Any], path: str, skip: Skip) -> list[Record]:
    version = str(data.get("schema_version"))
    if version.split(".")[0] != SUPPORTED_MAJOR:
        skip(
            path,
            f"is an LLenergyMeasure result of schema {version!r}; llem_nb reads schema 2.x",
            7,
        )
        return []
    found = data.get("effective_config")
    cfg: dict[str, Any] = found if isinstance(found, dict) else {}
    notes: list[str] = []
    backend = data.get("backend") or cfg.get("backend")
    record: Record = {
        "origin": ORIGIN,
        "study": os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path)))),
        "experiment_id": str(data.get("measurement_config_hash") or ""),
        "config_hash": data.get("measurement_config_hash"),
        "cycle": None,
        "status": "ok",
        "model": cfg.get("model"),
        "backend": backend,
        "precision": cfg.get("precision"),
        "batch_size": _batch_size(cfg, backend),
        "n_prompts": cfg.get("n"),
        "n_requests": cfg.get("n"),
        "max_input_tokens": cfg.get("max_input_tokens"),
        "max_output_tokens": cfg.get("max_output_tokens"),
        "dataset": cfg.get("dataset") if isinstance(cfg.get("dataset"), str) else None,
        "decoder.temperature": dig(cfg, "decoder", "temperature"),
        "started_at": naive_utc(data.get("start_time"), notes, "start_time"),
        "finished_at": naive_utc(data.get("end_time"), notes, "end_time"),
        "gpu_name": dig(data, "environment_snapshot", "hardware", "gpu", "name"),
        "driver_version": dig(data, "environment_snapshot", "hardware", "cuda", "driver_version"),
        "quality_flags": [],
        "warnings": [str(w) for w in data.get("measurement_warnings") or []],
        "_path": path,
    }
    _energy(data, record)
    _latency(data, record)
    if dig(data, "thermal_throttle", "detected"):
        record["quality_flags"].append("throttled")
        record["warnings"].append("LLenergyMeasure detected throttling during the run")
    if dig(data, "energy_breakdown", "baseline_method") == "cached":
        age = dig(data, "energy_breakdown", "baseline_cache_age_sec")
        notes.append(f"idle baseline reused from a cache ({age} s old), not measured just before")
    record["warnings"].extend(notes)
    record["label"] = peer_label(
        ORIGIN, record["model"], ("", backend), ("", record["precision"]),
        ("batch_size", record["batch_size"]),
    )  # fmt: skip
    return [record]


def _batch_size(cfg: dict[str, Any], backend: Any) -> int | None:
    if backend != "pytorch":
        return None  # vLLM and TensorRT have engine capacities, not a number of prompts in flight
    size = dig(cfg, "pytorch", "batch_size")
    return int(size) if isinstance(size, int) else 1


def _energy(data: dict[str, Any], record: Record) -> None:
    total = number(data.get("total_energy_j"))
    per_token = number(data.get("avg_energy_per_token_j"))
    tokens = number(data.get("total_tokens"))
    flops = number(data.get("total_flops"))
    out: float | None = None
    if total and per_token:
        out = round(total / per_token)
    elif flops and number(data.get("flops_per_output_token")):
        out = round(flops / data["flops_per_output_token"])
    inp: float | None = None
    if out is not None and tokens is not None:
        inp = tokens - out
    elif flops and number(data.get("flops_per_input_token")):
        inp = round(flops / data["flops_per_input_token"])
    record["output_tokens"], record["input_tokens"] = out, inp
    window = _window(record)
    record["window_s"] = window
    devices = data.get("energy_per_device_j")
    record["gpu_count"] = (
        len(devices)
        if isinstance(devices, list) and devices
        else (dig(data, "multi_gpu", "num_gpus") or (1 if total else 0))
    )
    if not total:
        record["energy_source"] = "none"
        record["quality_flags"].append("no_energy_source")
        record["warnings"].append("LLenergyMeasure recorded no energy (total_energy_j = 0)")
    else:
        source = dig(data, "effective_config", "energy", "backend")
        record["energy_source"] = source if source in {"nvml", "zeus", "codecarbon"} else "unknown"
        record["energy_gross_j"] = total
        record["energy_net_j"] = number(data.get("energy_adjusted_j"))
        record["idle_power_w"] = number(data.get("baseline_power_w"))
    if out is None:
        differs(
            record,
            "throughput_output_tok_s",
            "the file has only avg_tokens_per_second (input + output tokens per second of "
            "inference time), and not the output tokens to convert it",
        )
    if window is not None and window < MIN_WINDOW_S:
        record["quality_flags"].append("short_window")
        record["warnings"].append(f"window {window:.2f} s < {MIN_WINDOW_S:g} s")
    record["flops_estimate"] = flops or None


def _window(record: Record) -> float | None:
    start, end = record.get("started_at"), record.get("finished_at")
    if not start or not end:
        return None
    span = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return span if span > 0 else None


def _latency(data: dict[str, Any], record: Record) -> None:
    stats = data.get("latency_stats")
    if isinstance(stats, dict):
        record["ttft_ms_p50"] = number(stats.get("ttft_median_ms"))
        record["ttft_ms_p99"] = number(stats.get("ttft_p99_ms"))
        if number(stats.get("itl_median_ms")) is not None:
            why = (
                "LLenergyMeasure's ITL drops each request's first and last gap; "
                "llem_nb's counts every gap"
            )
            for column in ("itl_ms_p50", "itl_ms_p99"):
                differs(record, column, why)
    e2e = dig(data, "extended_metrics", "request_latency")
    if isinstance(e2e, dict):
        median, mean = (
            number(e2e.get("e2e_latency_median_ms")),
            number(e2e.get("e2e_latency_mean_ms")),
        )
        record["latency_s_p50"] = median / 1000 if median is not None else None
        record["latency_s_mean"] = mean / 1000 if mean is not None else None
