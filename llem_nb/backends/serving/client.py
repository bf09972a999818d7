"""The load generator: requests sent on a schedule to an OpenAI-compatible server, streamed.

One asyncio loop (on its own thread, so a notebook's running loop is never touched), one
aiohttp session and connection pool. Each request is sent when its arrival time comes (and,
with ``max_concurrency``, when a slot frees), streamed with ``stream_options.include_usage``,
and timed on the caller's clock: scheduled, sent, every streamed token (a chunk with a
choice, its text empty or not: a token may decode to nothing yet), end. The server's
token usage is kept and checked against the streamed chunks (never fewer tokens than chunks;
more is normal: a busy server sends several tokens in one chunk) and, when a tokenizer is given,
against our own count of the prompt. Client lag (send − due) is kept per request: a client
that falls behind its schedule offers less load than the config says.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llem_nb.backends.serving.metrics import MetricSample, parse_metrics
from llem_nb.errors import BackendError
from llem_nb.results.steady import RequestTiming

LAG_FLAG_S = 0.005
"""Client lag p99 above this flags the run: the offered load was not what was asked."""


@dataclass
class LoadSpec:
    """What to send: ``prompts[i % len]`` at ``arrivals_s[i]`` seconds after the start."""

    base_url: str
    model: str
    prompts: Sequence[str]
    arrivals_s: Sequence[float]
    max_tokens: int
    max_concurrency: int | None = None
    api_key: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    metrics_every_s: float | None = None
    request_timeout_s: float = 600.0


@dataclass
class LoadResult:
    requests: list[RequestTiming]
    metrics: list[MetricSample]
    client_cpu_s: float
    start_s: float
    prompt_mismatches: int = 0
    usage_mismatches: int = 0

    @property
    def lags_s(self) -> list[float]:
        return [r.lag_s for r in self.requests]


def _aiohttp() -> Any:
    try:
        import aiohttp  # noqa: PLC0415 - the serving extra, kept off import
    except ImportError as exc:
        raise BackendError(
            "serving workloads need aiohttp",
            fix="pip install 'llem_nb[serving]'",
        ) from exc
    return aiohttp


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def _one(
    session: Any,
    spec: LoadSpec,
    prompt: str,
    timing: RequestTiming,
    now: Callable[[], float],
) -> None:
    body = {
        **spec.body,
        "model": spec.model,
        "prompt": prompt,
        "max_tokens": spec.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing.sent_s = now()
    try:
        async with session.post(
            f"{spec.base_url}/v1/completions", json=body, headers=_headers(spec.api_key)
        ) as response:
            if response.status != 200:
                text = (await response.text())[:300]
                timing.error = f"HTTP {response.status}: {text}"
                return
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                t = now()
                choices = chunk.get("choices") or []
                if choices and choices[0].get("text") is not None:
                    timing.token_s.append(t)
                    if timing.first_token_s is None:
                        timing.first_token_s = t
                usage = chunk.get("usage")
                if usage:
                    timing.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                    timing.completion_tokens = int(usage.get("completion_tokens") or 0)
            timing.end_s = now()
    except (asyncio.TimeoutError, OSError, ValueError) as exc:
        timing.error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # aiohttp's ClientError family, imported lazily
        timing.error = f"{type(exc).__name__}: {exc}"


async def _sample_metrics(
    session: Any, url: str, every_s: float, now: Callable[[], float], out: list[MetricSample]
) -> None:
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    out.append(parse_metrics(await response.text(), now()))
        except Exception:  # a missing /metrics is recorded as no samples, not a failure
            return
        await asyncio.sleep(every_s)


async def _drive(spec: LoadSpec, now: Callable[[], float]) -> LoadResult:
    aiohttp = _aiohttp()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=spec.request_timeout_s)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    gate = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
    metrics: list[MetricSample] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sampler = None
        if spec.metrics_every_s:
            url = f"{spec.base_url}/metrics"
            sampler = asyncio.create_task(
                _sample_metrics(session, url, spec.metrics_every_s, now, metrics)
            )
        cpu0, start = time.process_time(), now()
        timings: list[RequestTiming] = []
        tasks: list[asyncio.Task[None]] = []

        async def gated(prompt: str, timing: RequestTiming) -> None:
            if gate is None:
                await _one(session, spec, prompt, timing, now)
                return
            async with gate:
                timing.ready_s = max(timing.scheduled_s, now())
                await _one(session, spec, prompt, timing, now)

        for i, offset in enumerate(spec.arrivals_s):
            due = start + offset
            wait = due - now()
            if wait > 0:
                await asyncio.sleep(wait)
            timing = RequestTiming(scheduled_s=due, sent_s=due)
            timings.append(timing)
            prompt = spec.prompts[i % len(spec.prompts)]
            tasks.append(asyncio.create_task(gated(prompt, timing)))
        await asyncio.gather(*tasks)
        cpu_s = time.process_time() - cpu0
        if sampler is not None:
            sampler.cancel()
    return LoadResult(timings, metrics, cpu_s, start)


def run_load(
    spec: LoadSpec,
    now: Callable[[], float] = time.perf_counter,
    count_tokens: Callable[[str], int | None] | None = None,
) -> LoadResult:
    """Send the schedule and wait for every request; times are on ``now``'s clock."""
    if not spec.prompts:
        raise ValueError("LoadSpec.prompts is empty")
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = asyncio.run(_drive(spec, now))
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="llem-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: LoadResult = box["result"]
    for i, timing in enumerate(result.requests):
        if not timing.ok:
            continue
        if timing.completion_tokens and timing.completion_tokens < len(timing.token_s):
            result.usage_mismatches += 1
        if count_tokens is not None:
            ours = count_tokens(spec.prompts[i % len(spec.prompts)])
            if ours is not None and timing.prompt_tokens and ours != timing.prompt_tokens:
                result.prompt_mismatches += 1
    return result
