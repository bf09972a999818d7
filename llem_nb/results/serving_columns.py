"""The columns a served run adds: offered and achieved load, the steady state, SLO goodput.

A serving row's base quantities (``energy_gross_j``, ``output_tokens``, ``window_s`` …)
are those of its steady-state window, so ``energy_per_output_token_j`` and the other
derived figures are steady-state figures, as ML.ENERGY's; the ``_run`` columns cover
the whole run (first request sent to last token). Offline rows leave these empty.
"""

from __future__ import annotations

SERVING_FLOATS: tuple[str, ...] = (
    "offered_rate_rps", "achieved_rate_rps", "steady_state_s", "energy_run_j",
    "output_tokens_run", "energy_per_output_token_j_run", "latency_s_p90", "latency_s_p99",
    "avg_running", "avg_waiting", "goodput_rps", "slo_attainment", "client_lag_ms_p99",
)  # fmt: skip
SERVING_BOOLS: tuple[str, ...] = ("server_external",)
SERVING_COLUMNS: tuple[str, ...] = (*SERVING_FLOATS, *SERVING_BOOLS)

SERVING_DOCS: dict[str, tuple[str, str]] = {
    "offered_rate_rps": ("req/s", "serving: request rate asked for (inf: all at once)"),
    "achieved_rate_rps": ("req/s", "serving: requests sent ÷ time from first to last send"),
    "steady_state_s": ("s", "serving: length of the steady-state window (`window_s` too)"),
    "energy_run_j": ("J", "serving: gross energy over the whole run"),
    "output_tokens_run": ("tokens", "serving: output tokens over the whole run"),
    "energy_per_output_token_j_run": ("J/token", "serving: whole-run energy ÷ whole-run tokens"),
    "latency_s_p90": ("s", "90th percentile end-to-end request latency"),
    "latency_s_p99": ("s", "99th percentile end-to-end request latency"),
    "avg_running": ("", "serving: mean requests running in the server over the steady state"),
    "avg_waiting": ("", "serving: mean requests queued in the server over the steady state"),
    "goodput_rps": ("req/s", "serving: requests meeting every SLO ÷ run time"),
    "slo_attainment": ("", "serving: fraction of requests meeting every SLO"),
    "client_lag_ms_p99": ("ms", "serving: 99th percentile of send − due time (flagged > 5 ms)"),
    "server_external": ("", "serving: the server was already running (backend `openai`)"),
}
