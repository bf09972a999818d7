"""A fake ``vllm`` module: the slice of vLLM's offline API the vLLM backend uses, no model.

Shaped like vLLM 0.32 (V1 engine): ``LLM(**engine_args)`` checks its keywords against
``EngineArgs`` (a dataclass, as in vLLM) and offers ``llm_engine`` (``add_request``,
``step``, ``has_unfinished_requests``, ``abort_request``, ``engine_core.shutdown``);
``SamplingParams``; ``RequestOutput`` with ``prompt_token_ids``, ``outputs[i].token_ids``
and ``metrics`` (a ``RequestStateStats`` when ``disable_log_stats=False``);
``RequestOutputKind``; ``platforms.current_platform``;
``distributed.parallel_state.cleanup_dist_env_and_memory``; ``__version__``.

The fake model is predictable: a prompt of 1 + k tokens yields, in completion ``i``,
max(1, k + i) tokens and then EOS (``ignore_eos``, ``min_tokens``, ``max_tokens`` apply).
Each step gives every running sequence one token; at most ``max_num_seqs`` run, the
rest wait (continuous batching; ``n > 1`` fans out into ``n`` sequences). Time is a
``FakeClock`` shared with the backend: a step advances it by ``step_s`` (the engine's
token time, which the metrics report), then by ``host_delay_s`` (the frontend), so
latencies from metrics and from step timestamps differ by a known amount. The metrics
carry vLLM V1's engine-core timestamps: ``queued_ts`` at ``add_request``,
``scheduled_ts`` when a sequence gets a slot (later than ``queued_ts`` for one that
waited), ``first_token_ts`` and ``last_token_ts`` at the end of the step that made the
token. ``merge_steps=k`` runs ``k`` engine steps per ``step()`` call and returns each
sequence's tokens from them as one delta (an engine core ahead of its frontend, whose
deltas vLLM merges; or several tokens per step, as with speculative decoding).

    with fake_vllm(step_s=0.01) as fake:
        backend = VllmBackend(config, clock=fake.clock)
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.machinery
import sys
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BOS, EOS, FIRST_WORD = 1, 2, 3


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclasses.dataclass
class SamplingParams:
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    detokenize: bool = True
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE

    def __post_init__(self) -> None:
        if self.temperature == 0 and self.n > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {self.n}.")
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(
                f"min_tokens must be less than or equal to max_tokens={self.max_tokens}"
            )


@dataclasses.dataclass
class RequestStateStats:
    num_generation_tokens: int = 0
    arrival_time: float = 0.0
    queued_ts: float = 0.0
    scheduled_ts: float = 0.0
    first_token_ts: float = 0.0
    last_token_ts: float = 0.0


@dataclasses.dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None


@dataclasses.dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    metrics: RequestStateStats | None = None


@dataclasses.dataclass
class EngineArgs:
    """The engine args vLLM 0.32 takes that tests touch (``swap_space`` is gone in 0.32)."""

    model: str = ""
    tokenizer: str | None = None
    dtype: str = "auto"
    seed: int = 0
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float = 0.92
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    max_model_len: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    kv_cache_dtype: str = "auto"
    block_size: int | None = None
    quantization: str | None = None
    kv_cache_memory_bytes: int | None = None
    disable_log_stats: bool = False
    trust_remote_code: bool = False


@dataclasses.dataclass
class _Seq:
    request_id: str
    index: int
    prompt: list[int]
    params: SamplingParams
    stats: RequestStateStats | None
    tokens: list[int] = dataclasses.field(default_factory=list)
    sent: int = 0
    reason: str | None = None

    def next_token(self) -> int:
        j = len(self.tokens)
        natural = max(1, len(self.prompt) - 1 + self.index)
        if not self.params.ignore_eos and j >= max(natural, self.params.min_tokens):
            return EOS
        return FIRST_WORD + (sum(self.prompt) + 7 * j + 13 * self.index) % 500


class FakeEngine:
    """``LLMEngine``: requests in, one token per running sequence per ``step()``."""

    def __init__(self, fake: FakeVllm, max_num_seqs: int, log_stats: bool) -> None:
        self.fake, self.max_num_seqs, self.log_stats = fake, max_num_seqs, log_stats
        self.waiting: list[_Seq] = []
        self.running: list[_Seq] = []
        self.children: dict[str, int] = {}
        self.added: list[tuple[str, list[int], SamplingParams]] = []
        self.steps = 0
        self.engine_core = types.SimpleNamespace(shutdown=self._shutdown, shut_down=False)

    def _shutdown(self) -> None:
        self.engine_core.shut_down = True

    def add_request(self, request_id: str, prompt: Any, params: SamplingParams) -> str:
        ids = list(prompt["prompt_token_ids"])
        self.added.append((request_id, ids, params))
        self.children[request_id] = params.n
        for i in range(params.n):
            stats = None
            if self.log_stats:
                stats = RequestStateStats(arrival_time=time.time(), queued_ts=self._core_now())
            self.waiting.append(_Seq(request_id, i, ids, params, stats))
        return request_id

    def _core_now(self) -> float:
        return self.fake.clock() + self.fake.clock_offset_s

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def abort_request(self, request_ids: list[str], internal: bool = False) -> None:
        drop = set(request_ids)
        self.waiting = [s for s in self.waiting if s.request_id not in drop]
        self.running = [s for s in self.running if s.request_id not in drop]

    def step(self) -> list[RequestOutput]:
        self.steps += 1
        if self.fake.fail_on == "step" and self.steps >= self.fake.fail_after_steps:
            raise RuntimeError("fake engine core died")
        advanced: dict[int, _Seq] = {}
        for _ in range(self.fake.merge_steps):
            if not self.has_unfinished_requests():
                break
            self._engine_step(advanced)
        self.fake.clock.advance(self.fake.host_delay_s)
        return [out for seq in advanced.values() if (out := self._output(seq)) is not None]

    def _engine_step(self, advanced: dict[int, _Seq]) -> None:
        """One engine-core step: admit waiting sequences, one token for each running one."""
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting.pop(0)
            if seq.stats is not None:
                seq.stats.scheduled_ts = self._core_now()
            self.running.append(seq)
        self.fake.clock.advance(self.fake.step_s)
        for seq in list(self.running):
            self._advance(seq)
            advanced.setdefault(id(seq), seq)

    def _advance(self, seq: _Seq) -> None:
        token = seq.next_token()
        seq.tokens.append(token)
        if seq.stats is not None:
            if not seq.stats.first_token_ts:
                seq.stats.first_token_ts = self._core_now()
            seq.stats.last_token_ts = self._core_now()
            seq.stats.num_generation_tokens += 1
        if token == EOS:
            seq.reason = "stop"
        elif seq.params.max_tokens is not None and len(seq.tokens) >= seq.params.max_tokens:
            seq.reason = "length"
        if seq.reason:
            self.running.remove(seq)
            self.children[seq.request_id] -= 1

    def _output(self, seq: _Seq) -> RequestOutput | None:
        done = self.children[seq.request_id] == 0
        kind = seq.params.output_kind
        if kind == RequestOutputKind.FINAL_ONLY and not seq.reason:
            return None
        new = seq.tokens[seq.sent :] if kind == RequestOutputKind.DELTA else list(seq.tokens)
        seq.sent = len(seq.tokens)
        completion = CompletionOutput(seq.index, "", new, seq.reason)
        return RequestOutput(seq.request_id, None, seq.prompt, [completion], done, seq.stats)


class LLM:
    """``vllm.LLM``: engine args checked against ``EngineArgs``, then a ``FakeEngine``."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        fake = _CURRENT[-1]
        self.engine_args = EngineArgs(model=model, **kwargs)
        self.kwargs = {"model": model, **kwargs}
        if fake.fail_on == "load":
            raise RuntimeError("fake engine failed to start")
        seqs = self.engine_args.max_num_seqs or 256
        self.llm_engine = FakeEngine(fake, seqs, not kwargs.get("disable_log_stats", True))
        fake.llms.append(self)


class FakeVllm:
    """Handle on an installed fake: its module, clock, created engines and knobs."""

    def __init__(
        self,
        *,
        step_s: float = 0.01,
        host_delay_s: float = 0.0,
        clock_offset_s: float = 0.0,
        cpu: bool = True,
        fail_on: str | None = None,
        fail_after_steps: int = 1,
        merge_steps: int = 1,
        version: str = "0.32.0+fake",
    ) -> None:
        self.clock = FakeClock()
        self.merge_steps = merge_steps
        self.step_s, self.host_delay_s, self.clock_offset_s = step_s, host_delay_s, clock_offset_s
        self.fail_on, self.fail_after_steps = fail_on, fail_after_steps
        self.cpu = cpu
        self.llms: list[LLM] = []
        self.cleanups = 0
        self.modules = self._build(version)

    def _build(self, version: str) -> dict[str, types.ModuleType]:
        def module(name: str, **attrs: Any) -> types.ModuleType:
            mod = types.ModuleType(name)
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            mod.__dict__.update(attrs)
            return mod

        def cleanup_dist_env_and_memory(shutdown_ray: bool = False) -> None:
            self.cleanups += 1

        platform = types.SimpleNamespace(is_cpu=lambda: self.cpu)
        return {
            "vllm": module(
                "vllm",
                __version__=version,
                LLM=LLM,
                SamplingParams=SamplingParams,
                RequestOutput=RequestOutput,
                CompletionOutput=CompletionOutput,
                EngineArgs=EngineArgs,
            ),
            "vllm.sampling_params": module(
                "vllm.sampling_params",
                SamplingParams=SamplingParams,
                RequestOutputKind=RequestOutputKind,
            ),
            "vllm.platforms": module("vllm.platforms", current_platform=platform),
            "vllm.distributed": module("vllm.distributed"),
            "vllm.distributed.parallel_state": module(
                "vllm.distributed.parallel_state",
                cleanup_dist_env_and_memory=cleanup_dist_env_and_memory,
            ),
        }


_CURRENT: list[FakeVllm] = []


@contextmanager
def fake_vllm(**options: Any) -> Iterator[FakeVllm]:
    """Put a fake ``vllm`` in ``sys.modules`` for the block; restore what was there after."""
    fake = FakeVllm(**options)
    saved = {name: sys.modules.get(name) for name in fake.modules}
    sys.modules.update(fake.modules)
    _CURRENT.append(fake)
    try:
        yield fake
    finally:
        _CURRENT.remove(fake)
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


__all__ = ["FakeClock", "FakeVllm", "fake_vllm"]
