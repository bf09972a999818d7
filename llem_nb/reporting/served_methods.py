"""The Methods sentence for served runs: arrivals, the steady-state rule, the SLOs.

Written from the result files' configs (``workload``) and the rows' own figures; a study
without serving rows gets no sentence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

Record = dict[str, Any]


def _num(value: float) -> str:
    return f"{value:.3g}"


def _joined(values: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(values))


def _rate_key(rate: Any) -> float:
    return math.inf if rate == "inf" else float(rate)


_ARRIVALS = {
    "poisson": "a Poisson process (exponential gaps)",
    "gamma": "a gamma process with gap coefficient of variation (burstiness) {b}",
    "constant": "evenly spaced requests",
}


def _workloads(records: Sequence[Record]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        w = (r.get("config") or {}).get("workload")
        if r.get("status") == "ok" and isinstance(w, dict) and w.get("kind") == "serving":
            out.append(w)
    return out


def serving_text(records: Sequence[Record]) -> str | None:
    """One paragraph on how served runs were loaded and windowed; None without any."""
    loads = _workloads(records)
    if not loads:
        return None
    found = sorted({w.get("request_rate", "inf") for w in loads}, key=_rate_key)
    rates = _joined("inf" if r == "inf" else _num(float(r)) for r in found)
    arrivals = _joined(
        _ARRIVALS.get(str(w.get("arrival")), str(w.get("arrival"))).format(b=w.get("burstiness"))
        for w in loads
    )
    sizes = sorted({int(w.get("n_requests") or 0) for w in loads})
    counts = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    text = (
        f"Served runs sent {counts} requests to an OpenAI-compatible server over "
        f"streaming HTTP at offered rates of {rates} requests/s ('inf': all at once), their "
        f"arrival times drawn once from {arrivals} with a fixed seed and saved with each "
        "result; the idle baseline was measured with the server up and idle before the "
        "first request, and one meter ran over the whole run."
    )
    rules = {str(w.get("steady_state")) for w in loads}
    if "mlenergy" in rules:
        text += (
            " Energy per output token is taken over the steady state as in ML.ENERGY's "
            "leaderboard: from the moment the server's batch limit (max_num_seqs) of "
            "requests has received a first token until n_requests − max_num_seqs − 1 "
            "requests have finished, energy in that window divided by the tokens streamed "
            "in it, cut from the same per-read energy timeline as the whole run."
        )
    if "trim" in rules:
        leads = _joined(_num(float(w.get("trim_lead_s") or 0)) for w in loads)
        trails = _joined(_num(float(w.get("trim_trail_s") or 0)) for w in loads)
        text += (
            f" Where the trim rule was used, {leads} s were cut from the start of the run "
            f"and {trails} s from its end."
        )
    slos = []
    for w in loads:
        slo = w.get("slo") or {}
        parts = [
            f"{name} ≤ {_num(float(slo[key]))}{unit}"
            for key, name, unit in (
                ("ttft_ms", "TTFT", " ms"),
                ("itl_ms", "mean ITL", " ms"),
                ("e2e_s", "latency", " s"),
            )
            if slo.get(key) is not None
        ]
        if parts:
            slos.append(", ".join(parts))
    if slos:
        text += (
            f" A request met its SLO when {'; or '.join(dict.fromkeys(slos))}; goodput counts such "
            "requests per second of the run and SLO attainment their share of all requests."
        )
    return text
