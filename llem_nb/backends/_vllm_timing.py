"""Per-token timestamps of vLLM requests, from vLLM's request metrics or from the step loop.

The backend drives ``LLMEngine.step()`` with ``RequestOutputKind.DELTA``, so each step
returns the tokens each request gained in it. Each new token gets one time:

- vLLM's own: ``output.metrics.last_token_ts`` (``RequestStateStats``, vLLM V1 with stats
  on) — the engine core's monotonic clock when it emitted the token, the clock the
  backend stamps submissions with;
- else the backend's: the moment ``step()`` returned it.

A metrics time outside [submission, now] (another clock, another host) is not trusted;
the step time is used instead and the request counts as ``backend_steps``. Latencies
then follow the PyTorch backend's definitions: TTFT = first token − submission, e2e =
last token − submission, ITL = gaps between consecutive tokens of one completion.
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
    finished_at: float | None = None
    from_metrics: bool = True


def metrics_time(metrics: Any) -> float | None:
    """The engine's time of the newest token, when the metrics carry one."""
    value = getattr(metrics, "last_token_ts", None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


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

    def observe(self, outputs: Iterable[Any]) -> None:
        """Record one step's ``RequestOutput``s (DELTA: only the new tokens)."""
        now = self.clock()
        for out in outputs:
            track = self._tracks.get(out.request_id)
            if track is None:
                continue
            stamp = metrics_time(out.metrics)
            if stamp is None or not track.submitted - SLACK_S <= stamp <= now + SLACK_S:
                track.from_metrics = False
                stamp = now
            for completion in out.outputs:
                new = list(completion.token_ids)
                if not new:
                    continue
                track.tokens.setdefault(completion.index, []).extend(new)
                track.times.setdefault(completion.index, []).extend([stamp] * len(new))
                if self.first_token_at is None:
                    self.first_token_at = now
            if out.finished:
                track.finished_at = now

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
    """Latencies over all ``n`` completions; token ids concatenated in completion order."""
    indices = sorted(track.tokens)
    token_ids = [t for i in indices for t in track.tokens[i]]
    firsts = [track.times[i][0] for i in indices]
    lasts = [track.times[i][-1] for i in indices]
    end = max(lasts) if lasts else track.finished_at
    itl = [b - a for i in indices for a, b in itertools.pairwise(track.times[i])]
    return RequestOutput(
        input_tokens=track.input_tokens,
        output_tokens=len(token_ids),
        e2e_s=(end if end is not None else track.submitted) - track.submitted,
        ttft_s=min(firsts) - track.submitted if firsts else None,
        itl_s=itl,
        token_ids=token_ids,
    )
