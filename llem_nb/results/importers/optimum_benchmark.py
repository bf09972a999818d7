"""optimum-benchmark ``benchmark.json`` / ``benchmark_report.json`` energy sections → rows.

Its inference scenario measures energy per *call* of a batch, averaged over a loop of
calls (codecarbon; ``gpu`` from NVML energy counters, ``total`` adds modelled CPU and
RAM), in kWh. One ``generate`` call of B prompts × N new tokens (``min_new_tokens`` is
forced to ``max_new_tokens``, so every sequence makes N tokens) is our window: gross
energy = ``generate.energy.gpu`` × 3.6e6 J, window = ``generate.latency.mean``, output
tokens = B × N × ``num_return_sequences``, input tokens = B × ``sequence_length``; the
per-token, per-second and per-request figures follow from those as for our own rows.
Its ``efficiency`` (tokens/kWh over CPU + RAM + GPU, decode only) is never copied.
TTFT is ``prefill.latency`` and ITL ``per_token.latency`` for backends that time tokens
inside ``generate`` (PyTorch and the other per-token backends); for the rest their
prefill is a separate one-token call: ``ttft_ms_*`` stay missing, ``definition_differs``.
There is no idle baseline: net energy stays missing. The ``energy_star`` scenario
reports totals over a dataset with nominal token counts: its energy is not mapped.
A report without its config recovers B from the prefill volume (samples/s × s) and N
from the decode volume (tokens/s × s = B × (N − 1), one beam assumed, and said).
"""

from __future__ import annotations

import os
from typing import Any

from llem_nb.results.importers.common import (
    KWH_J,
    Record,
    Skip,
    differs,
    dig,
    number,
    peer_label,
    short_hash,
)

ORIGIN = "optimum-benchmark"
PER_TOKEN_BACKENDS = frozenset({"pytorch", "onnxruntime", "openvino", "neural-compressor", "ipex"})
TARGETS = frozenset(
    {
        "load_model",
        "load",
        "first_generate",
        "generate",
        "prefill",
        "decode",
        "per_token",
        "forward",
    }
)
DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float8": "fp8"}
DEFAULT_NEW_TOKENS = 100
MIN_WINDOW_S = 5.0


def recognise(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("config"), dict) and isinstance(data.get("report"), dict):
        return True
    return (
        bool(data)
        and set(data) <= TARGETS
        and all(
            v is None or (isinstance(v, dict) and {"latency", "energy"} <= set(v))
            for v in data.values()
        )
    )


def records(data: dict[str, Any], path: str, skip: Skip) -> list[Record]:
    config = data.get("config") if isinstance(data.get("config"), dict) else None
    report = data["report"] if config is not None else data
    notes: list[str] = []
    backend = dig(config, "backend", "name")
    scenario = dig(config, "scenario", "name") or "inference"
    batch, new_tokens, seq_len, returns = _shapes(config, report, notes)
    if config is None and batch is None:
        skip(path, "is an optimum-benchmark report without the volumes to recover its batch", 7)
        return []
    model = dig(config, "backend", "model")
    record: Record = {
        "origin": ORIGIN,
        "study": (dig(config, "name") or os.path.basename(os.path.dirname(os.path.abspath(path)))),
        "experiment_id": short_hash(ORIGIN, _identity(config, report)),
        "cycle": None,
        "status": "ok",
        "model": model,
        "backend": backend,
        "precision": _precision(config),
        "batch_size": batch,
        "n_prompts": batch,
        "n_requests": batch,
        "max_input_tokens": seq_len,
        "max_output_tokens": new_tokens,
        "batching": "static",
        "gpu_name": (dig(config, "environment", "gpu") or [None])[0],
        "gpu_count": _gpu_count(config),
        "quality_flags": [],
        "warnings": notes,
        "_path": path,
    }
    if scenario != "inference":
        differs(
            record,
            "energy_gross_j",
            f"scenario {scenario!r} reports totals over a dataset with nominal token counts",
        )
        record["energy_source"] = "none"
    else:
        _generate(report, record, batch, new_tokens, seq_len, returns)
    _latency(report, record, backend)
    record["label"] = peer_label(
        ORIGIN, model, ("", backend), ("", record["precision"]), ("batch_size", batch)
    )
    return [record]


def _shapes(
    config: dict[str, Any] | None, report: dict[str, Any], notes: list[str]
) -> tuple[int | None, int | None, int | None, int]:
    """(batch size, new tokens per sequence, input length, sequences returned per prompt)."""
    if config is not None:
        shapes = dig(config, "scenario", "input_shapes") or {}
        kwargs = dig(config, "scenario", "generate_kwargs") or {}
        batch = shapes.get("batch_size", 2)
        new = (
            kwargs.get("max_new_tokens")
            or dig(config, "scenario", "new_tokens")
            or DEFAULT_NEW_TOKENS
        )
        return (
            batch,
            new,
            shapes.get("sequence_length", 16),
            kwargs.get("num_return_sequences") or 1,
        )
    prefill, decode = report.get("prefill") or {}, report.get("decode") or {}
    batch = _volume(prefill, "samples/s")
    steps = _volume(decode, "tokens/s")
    if batch is None or steps is None or batch <= 0:
        return batch, None, None, 1
    notes.append(
        "no config beside this report: batch size and new tokens recovered from its "
        "prefill and decode volumes, assuming one beam and one sequence per prompt"
    )
    return batch, round(steps / batch) + 1, None, 1


def _identity(config: dict[str, Any] | None, report: dict[str, Any]) -> Any:
    """What makes two runs the same config: its config less the machine it ran on."""
    if config is None:
        return report
    return {k: v for k, v in config.items() if k not in ("environment", "name")}


def _volume(target: dict[str, Any], unit: str) -> int | None:
    rate, mean = dig(target, "throughput", "value"), dig(target, "latency", "mean")
    if dig(target, "throughput", "unit") != unit or number(rate) is None or number(mean) is None:
        return None
    return round(rate * mean)


def _precision(config: dict[str, Any] | None) -> str | None:
    dtype = dig(config, "backend", "torch_dtype") or dig(config, "backend", "engine_args", "dtype")
    dtype = dtype or dig(config, "backend", "dtype")
    return DTYPES.get(dtype, dtype) if isinstance(dtype, str) and dtype != "auto" else None


def _gpu_count(config: dict[str, Any] | None) -> int | None:
    ids = dig(config, "backend", "device_ids")
    if isinstance(ids, str) and ids.strip():
        return len([i for i in ids.split(",") if i.strip()])
    count = dig(config, "environment", "gpu_count")
    return count if isinstance(count, int) else None


def _generate(
    report: dict[str, Any],
    record: Record,
    batch: int | None,
    new_tokens: int | None,
    seq_len: int | None,
    returns: int,
) -> None:
    generate = report.get("generate") or {}
    gpu_kwh = number(dig(generate, "energy", "gpu"))
    window = number(dig(generate, "latency", "mean"))
    if dig(generate, "energy", "unit") not in (None, "kWh"):
        gpu_kwh = None
    record["window_s"] = window
    if batch is not None and new_tokens is not None:
        record["output_tokens"] = batch * new_tokens * returns
    if batch is not None and seq_len is not None:
        record["input_tokens"] = batch * seq_len
    if gpu_kwh is None:
        record["energy_source"] = "none"
        if generate.get("energy") is None and report.get("decode"):
            differs(
                record,
                "energy_gross_j",
                "no generate energy in this report; its decode energy excludes prefill",
            )
        return
    record["energy_source"] = "codecarbon"
    record["energy_gross_j"] = gpu_kwh * KWH_J
    record["warnings"].append(
        "GPU energy per generate call, averaged by optimum-benchmark over its loop of calls"
    )
    if window is not None and window < MIN_WINDOW_S:
        record["warnings"].append(
            f"one call lasts {window:.2f} s; the energy is the mean over a loop of such calls"
        )


def _latency(report: dict[str, Any], record: Record, backend: Any) -> None:
    generate = report.get("generate") or {}
    median = number(dig(generate, "latency", "p50"))
    record["latency_s_p50"] = median
    record["latency_s_mean"] = number(dig(generate, "latency", "mean"))
    prefill, per_token = report.get("prefill") or {}, report.get("per_token") or {}
    if dig(prefill, "latency", "p50") is not None:
        if backend in PER_TOKEN_BACKENDS:
            record["ttft_ms_p50"] = _ms(dig(prefill, "latency", "p50"))
            record["ttft_ms_p90"] = _ms(dig(prefill, "latency", "p90"))
            record["ttft_ms_p99"] = _ms(dig(prefill, "latency", "p99"))
        else:
            why = f"for {backend or 'this backend'} its prefill is a separate one-token call"
            for column in ("ttft_ms_p50", "ttft_ms_p90"):
                differs(record, column, why)
    if dig(per_token, "latency", "p50") is not None:
        record["itl_ms_p50"] = _ms(dig(per_token, "latency", "p50"))
        record["itl_ms_p90"] = _ms(dig(per_token, "latency", "p90"))
        record["itl_ms_p99"] = _ms(dig(per_token, "latency", "p99"))


def _ms(seconds: Any) -> float | None:
    value = number(seconds)
    return value * 1000 if value is not None else None
