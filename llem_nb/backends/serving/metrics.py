"""The server's Prometheus ``/metrics``: requests running and waiting, sampled over a run.

vLLM exports ``vllm:num_requests_running`` and ``vllm:num_requests_waiting`` (one series
per model/engine label set; summed here). Their average over the steady state is
ML.ENERGY's "average batch size". A server without them gives samples with None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"


@dataclass(frozen=True)
class MetricSample:
    t_s: float
    running: float | None
    waiting: float | None


def _gauge(text: str, name: str) -> float | None:
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name) : len(name) + 1] not in {"{", " "}:
            continue
        try:
            total += float(line.rsplit(None, 1)[-1])
            found = True
        except ValueError:
            continue
    return total if found else None


def parse_metrics(text: str, t_s: float) -> MetricSample:
    """One sample from a ``/metrics`` page read at ``t_s``."""
    return MetricSample(t_s, _gauge(text, RUNNING), _gauge(text, WAITING))


def average(samples: Sequence[MetricSample], start: float, end: float, what: str) -> float:
    """Mean of ``what`` (running/waiting) over samples in [start, end]; NaN when none."""
    values = [getattr(s, what) for s in samples if start <= s.t_s <= end]
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else math.nan
