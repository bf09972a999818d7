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
    """Time-weighted mean of ``what`` (running/waiting) over [start, end], each sample's value
    held until the next; NaN when no sample precedes ``end``."""
    known = sorted((s.t_s, v) for s in samples if (v := getattr(s, what)) is not None)
    if not known or known[0][0] > end:
        return math.nan
    if end <= start:
        return float([v for t, v in known if t <= end][-1])
    total, weight = 0.0, 0.0
    for i, (t, value) in enumerate(known):
        a = max(t, start) if i else start
        b = min(known[i + 1][0], end) if i + 1 < len(known) else end
        if b > a:
            total += value * (b - a)
            weight += b - a
    return total / weight if weight else math.nan
