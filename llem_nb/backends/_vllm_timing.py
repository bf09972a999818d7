"""Per-token timestamps and queueing of vLLM requests, from vLLM's metrics or the step loop.

The backend drives ``LLMEngine.step()`` with ``RequestOutputKind.DELTA``, so each step
returns the tokens each request gained in it. Each new token gets one time:

- vLLM's own, from ``output.metrics`` (``RequestStateStats``, vLLM V1 with stats on):
  ``first_token_ts`` for a completion's first token, ``last_token_ts`` for the others —
  the engine core's monotonic clock when the step that made the token ended (the device
  had finished it), the clock the backend stamps submissions with;
- else the backend's: the moment ``step()`` returned it.

A metrics time outside [submission, now] (another clock, another host) is not trusted;
the step time is used instead and the request counts as ``backend_steps``. Latencies
follow one definition for every backend: TTFT = first token − submission (``add_request``;
queueing included), e2e = last token − submission, ITL = gaps between consecutive tokens
of one completion. Queueing is reported apart: ``queue_s = scheduled_ts − queued_ts``
(the engine core's wait for a free sequence slot; the first scheduling, as vLLM counts
it), None without trusted metrics. Tokens that arrive together in one delta share the
delta's time (their ITL gaps are 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llem_nb.backends.base import RequestOutput

Clock = Callable[[], float]
SLACK_S = 1e-3


@dataclass
class _Track:
    submitted: float
    input_tokens: int
    tokens: dict[int, list[int]] = field(default_factory=dict)
    times: dict[int, list[float]] = field(default_factory=dict)
    queue_s: dict[int, float] = field(default_factory=dict)
    finished_at: float | None = None
    from_metrics: bool = True


def stamp(metrics: Any, name: str) -> float | None:
    """A positive engine timestamp ``name`` of the metrics, when they carry one."""
    value = getattr(metrics, name, None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def metrics_time(metrics: Any) -> float | None:
    """The engine's time of the newest token, when the metrics carry one."""
    return stamp(metrics, "last_token_ts")


def queue_time(metrics: Any, submitted: float, now: float) -> float | None:
    """``scheduled_ts − queued_ts`` when both are set, ordered and inside [submitted, now]."""
    queued, scheduled = stamp(metrics, "queued_ts"), stamp(metrics, "scheduled_ts")
    if queued is None or scheduled is None:
        return None
    if not submitted - SLACK_S <= queued <= scheduled <= now + SLACK_S:
        return None
    return scheduled - queued


class StepTracker:
    """Collects each request's tokens and their times as ``step()`` outputs arrive."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tracks: dict[str, _Track] = {}
        self._order: list[str] = []
        self.first_token_at: float | None = None

    def submit(self, request_id: str, input_tokens: int) -> None:
        self._tracks[request_id] = _Track(submitted=self.clock(), input_tokens=input_tokens)
        self._order.append(request_id)

    def _trusted(self, track: _Track, t: float | None, now: float) -> bool:
        return t is not None and track.submitted - SLACK_S <= t <= now + SLACK_S

    def observe(self, outputs: Iterable[Any]) -> None:
        """Record one step's ``RequestOutput``s (DELTA: only the new tokens)."""
        now = self.clock()
        for out in outputs:
            track = self._tracks.get(out.request_id)
            if track is None:
                continue
            last = metrics_time(out.metrics)
            trusted = self._trusted(track, last, now)
            if not trusted:
                track.from_metrics = False
            for completion in out.outputs:
                new = list(completion.token_ids)
                if not new:
                    continue
                times = self._times(track, completion.index, out.metrics, len(new), now, trusted)
                track.tokens.setdefault(completion.index, []).extend(new)
                track.times.setdefault(completion.index, []).extend(times)
                if self.first_token_at is None or times[0] < self.first_token_at:
                    self.first_token_at = times[0]
            if out.finished:
                track.finished_at = now

    def _times(
        self, track: _Track, index: int, metrics: Any, count: int, now: float, trusted: bool
    ) -> list[float]:
        """Times of ``count`` new tokens of completion ``index`` (see the module docstring)."""
        if not trusted:
            return [now] * count
        last = metrics_time(metrics)
        assert last is not None
        times = [last] * count
        if index not in track.times:
            first = stamp(metrics, "first_token_ts")
            if first is not None and self._trusted(track, first, now) and first <= last:
                times[0] = first
            queue = queue_time(metrics, track.submitted, now)
            if queue is not None:
                track.queue_s[index] = queue
        return times

    def unfinished(self) -> list[str]:
        return [rid for rid in self._order if self._tracks[rid].finished_at is None]

    def sources(self) -> set[str]:
        return {
            "vllm_metrics" if self._tracks[rid].from_metrics else "backend_steps"
            for rid in self._order
        }

    def results(self) -> list[RequestOutput]:
        """One ``RequestOutput`` per submitted request, in submission order."""
        return [_result(self._tracks[rid]) for rid in self._order]


def _result(track: _Track) -> RequestOutput:
    """Latencies over all ``n`` completions; token ids concatenated in completion order.

    The request waited until its first completion was scheduled: ``queue_s`` is the
    smallest of its completions'.
    """
    indices = sorted(track.tokens)
    token_ids = [t for i in indices for t in track.tokens[i]]
    firsts = [track.times[i][0] for i in indices]
    lasts = [track.times[i][-1] for i in indices]
    end = max(lasts) if lasts else track.finished_at
    itl = [b - a for i in indices for a, b in itertools.pairwise(track.times[i])]
    queues = [track.queue_s[i] for i in indices if i in track.queue_s]
    return RequestOutput(
        input_tokens=track.input_tokens,
        output_tokens=len(token_ids),
        e2e_s=(end if end is not None else track.submitted) - track.submitted,
        ttft_s=min(firsts) - track.submitted if firsts else None,
        itl_s=itl,
        token_ids=token_ids,
        queue_s=min(queues) if queues and track.from_metrics else None,
    )
