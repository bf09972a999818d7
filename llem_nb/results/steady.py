"""A served run's request timeline: its steady-state window, latency percentiles, goodput.

Pure functions over ``RequestTiming`` (times in seconds on one clock, the meter's).

The ``mlenergy`` rule (ML.ENERGY leaderboard v3): with ``m`` the server's batch limit and
``n`` requests, the steady state starts when ``m`` requests have had their first token and
ends when ``n − m − 1`` requests have finished; before it the batch is filling, after it
draining. ``trim`` cuts fixed seconds off both ends of the run (first send to last end).
Tokens are counted in the window from their arrival times, so J/token over the window is
energy in it ÷ tokens generated in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np  # noqa: TID253 - the results layer works on arrays

PERCENTILES = (50, 90, 99)


@dataclass
class RequestTiming:
    """One request as the client saw it. ``token_s``: the arrival time of every streamed
    output token; ``ready_s``: when a client-side concurrency slot freed (None: no cap);
    ``error``: why it failed (None: it completed)."""

    scheduled_s: float
    sent_s: float
    first_token_s: float | None = None
    end_s: float | None = None
    token_s: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    ready_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.end_s is not None

    @property
    def lag_s(self) -> float:
        """Send − due: the client's own delay (a slot's wait under a cap is not lag)."""
        return self.sent_s - (self.ready_s if self.ready_s is not None else self.scheduled_s)

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.sent_s

    @property
    def e2e_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.sent_s

    @property
    def tokens(self) -> int:
        """Output tokens: the server's count, or the streamed chunks when it gave none."""
        return max(self.completion_tokens, len(self.token_s))

    @property
    def token_weight(self) -> float:
        """Tokens per streamed chunk: a server under load may send several in one."""
        return self.tokens / len(self.token_s) if self.token_s else 0.0

    @property
    def itl_s(self) -> list[float]:
        return [b - a for a, b in zip(self.token_s, self.token_s[1:], strict=False)]

    @property
    def mean_itl_s(self) -> float | None:
        gaps = self.itl_s
        return sum(gaps) / len(gaps) if gaps else None


def mlenergy_window(
    requests: Sequence[RequestTiming], batch_limit: int
) -> tuple[float, float] | None:
    """(start, end) by the mlenergy rule; None when the run never reaches a steady state."""
    n, m = len(requests), batch_limit
    firsts = sorted(r.first_token_s for r in requests if r.first_token_s is not None)
    ends = sorted(r.end_s for r in requests if r.ok and r.end_s is not None)
    finished = n - m - 1
    if m < 1 or finished < 1 or len(firsts) < m or len(ends) < finished:
        return None
    start, end = firsts[m - 1], ends[finished - 1]
    return (start, end) if end > start else None


def trim_window(
    requests: Sequence[RequestTiming], lead_s: float, trail_s: float
) -> tuple[float, float] | None:
    """The run (first send to last end) less ``lead_s`` and ``trail_s``; None if nothing is left."""
    ends = [r.end_s for r in requests if r.end_s is not None]
    if not requests or not ends:
        return None
    start = min(r.sent_s for r in requests) + lead_s
    end = max(ends) - trail_s
    return (start, end) if end > start else None


def run_span(requests: Sequence[RequestTiming]) -> tuple[float, float] | None:
    return trim_window(requests, 0.0, 0.0)


def tokens_in(requests: Sequence[RequestTiming], start: float, end: float) -> int:
    """Output tokens that arrived in (start, end]; a chunk that carried several tokens (the
    server's usage says how many in all) counts as its share of them."""
    return round(
        sum(r.token_weight * sum(1 for t in r.token_s if start < t <= end) for r in requests)
    )


def percentiles(values: Sequence[float | None]) -> dict[int, float]:
    """p50/p90/p99 of the known values (linear interpolation); NaN where there are none."""
    known = [v for v in values if v is not None]
    if not known:
        return {p: math.nan for p in PERCENTILES}
    found = np.percentile(np.asarray(known, dtype=float), PERCENTILES)
    return {p: float(v) for p, v in zip(PERCENTILES, found, strict=True)}


def meets_slo(
    request: RequestTiming,
    *,
    ttft_ms: float | None = None,
    itl_ms: float | None = None,
    e2e_s: float | None = None,
) -> bool:
    """Whether a request completed within every target that is set. ITL is the request's
    mean gap; a one-token request has none, and passes that target."""
    if not request.ok:
        return False
    ttft, itl, e2e = request.ttft_s, request.mean_itl_s, request.e2e_s
    if ttft_ms is not None and (ttft is None or ttft * 1e3 > ttft_ms):
        return False
    if itl_ms is not None and itl is not None and itl * 1e3 > itl_ms:
        return False
    return not (e2e_s is not None and (e2e is None or e2e > e2e_s))


@dataclass(frozen=True)
class Goodput:
    good: int
    total: int
    duration_s: float

    @property
    def attainment(self) -> float:
        return self.good / self.total if self.total else math.nan

    @property
    def rps(self) -> float:
        return self.good / self.duration_s if self.duration_s > 0 else math.nan


def goodput(
    requests: Sequence[RequestTiming],
    *,
    ttft_ms: float | None = None,
    itl_ms: float | None = None,
    e2e_s: float | None = None,
) -> Goodput:
    """Requests that met every SLO, per second of the run (failed ones never meet it)."""
    good = sum(meets_slo(r, ttft_ms=ttft_ms, itl_ms=itl_ms, e2e_s=e2e_s) for r in requests)
    span = run_span(requests)
    return Goodput(good, len(requests), (span[1] - span[0]) if span else 0.0)
