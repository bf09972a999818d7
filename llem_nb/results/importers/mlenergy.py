"""The ML.ENERGY Leaderboard v3 table (``llem_nb/data/mlenergy_v3_chat.csv``) → rows.

Each row is one vLLM server configuration measured over the steady state of a serving
run (all requests sent at once, ``max_num_seqs`` running at most): GPU energy of all the
server's GPUs over that window ÷ the output tokens made in it, i.e. our
``energy_per_output_token_j`` (gross, prefill included), and so are the output
throughput, average power (all GPUs) and per-response energy. ``max_num_seqs`` is the
number of prompts in flight, our ``batch_size`` under continuous batching. The window,
token counts, gross and net energy and TTFT are not published: they stay missing (no
flag: nothing is defined differently, it is simply not there). Every row says it is a
steady-state serving window, not an offline one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llem_nb.results.importers.common import Record, Skip, csv_rows, number, peer_label, short_hash

ORIGIN = "ml.energy"
COLUMNS = frozenset({"model_id", "gpu", "num_gpus", "max_num_seqs", "J_per_output_token"})
PRECISIONS = {"bfloat16": "bf16", "float16": "fp16"}
NOTE = (
    "ML.ENERGY Leaderboard v3 (The ML.ENERGY Initiative): steady-state window of a vLLM "
    "serving run, GPU-only energy; a different method from an offline window"
)


def read_csv(path: str, skip: Skip) -> list[Record] | None:
    try:
        rows = csv_rows(path)
    except (OSError, UnicodeDecodeError) as exc:
        skip(path, f"cannot be read ({exc})", 7)
        return []
    if not rows or not set(rows[0]) >= COLUMNS:
        return None
    return records(rows, path)


def records(rows: Iterable[dict[str, Any]], source: str) -> list[Record]:
    out = []
    for row in rows:
        task, model, gpu = row.get("task") or "", row.get("model_id"), row.get("gpu")
        seqs, n_gpus = _int(row.get("max_num_seqs")), _int(row.get("num_gpus"))
        precision = PRECISIONS.get(row.get("precision") or "", row.get("precision") or None)
        out.append(
            {
                "origin": ORIGIN,
                "study": f"ml.energy-v3-{task}" if task else "ml.energy-v3",
                "experiment_id": short_hash(ORIGIN, task, model, gpu, n_gpus, seqs, precision),
                "cycle": 0,
                "status": "ok",
                "model": model,
                "backend": "vllm",
                "precision": precision,
                "batch_size": seqs,
                "batching": "continuous",
                "dataset": task or None,
                "gpu_name": gpu,
                "gpu_count": n_gpus,
                "energy_source": "nvml",
                "energy_per_output_token_j": _float(row.get("J_per_output_token")),
                "energy_per_request_j": _float(row.get("J_per_response")),
                "avg_power_w": _float(row.get("avg_power_W_all_gpus")),
                "throughput_output_tok_s": _float(row.get("output_tok_per_s")),
                "itl_ms_p50": _float(row.get("median_itl_ms")),
                "quality_flags": [],
                "warnings": [NOTE],
                "label": peer_label(
                    ORIGIN, model, ("", gpu), ("gpus", n_gpus), ("batch_size", seqs)
                ),
                "_path": source,
            }
        )
    return out


def _float(value: Any) -> float | None:
    try:
        return number(float(value))
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number_ = _float(value)
    return int(number_) if number_ is not None and number_ == int(number_) else None
