"""``backend="vllm"`` with ``workload.kind="serving"``: vLLM's own OpenAI server, run for one
experiment.

The engine arguments are the offline backend's (``vllm.engine``, llem_nb's defaults), given
as flags to ``python -m vllm.entrypoints.openai.api_server`` run by this process's
interpreter (the kernel's, the subprocess runner's, the container's) on a free loopback
port, under the guard that stops it when this process ends in any way. The GPU
assignment, ``CUDA_VISIBLE_DEVICES`` narrowing and GPU indices are the offline backend's.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from llem_nb.backends import _vllm_args as args
from llem_nb.backends.base import GenerationOutput
from llem_nb.backends.serving.backend import ServingBackend, require_aiohttp
from llem_nb.backends.serving.server import ManagedServer, engine_version, vllm_command
from llem_nb.backends.vllm import VllmBackend
from llem_nb.config.experiment import ExperimentConfig

DEFAULT_HEALTH_TIMEOUT_S = 600.0


class VllmServerBackend(ServingBackend, VllmBackend):
    """vLLM's OpenAI server for one serving experiment."""

    name: ClassVar[str] = "vllm"

    def __init__(self, config: ExperimentConfig, **kwargs: Any) -> None:
        VllmBackend.__init__(self, config, **kwargs)
        self._server: ManagedServer | None = None

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        VllmBackend.preflight(config)
        require_aiohttp()

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        return None

    def generate(self, prompts: list[str]) -> GenerationOutput:
        return ServingBackend.generate(self, prompts)

    def _start_engine(self) -> None:
        vllm, kwargs = self._engine_args_checked()
        self._vllm, self._engine_args = vllm, kwargs
        self._sampling_args = args.sampling_kwargs(self.config)
        self.served_model = self.config.model
        env = {"VLLM_NO_USAGE_STATS": os.environ.get("VLLM_NO_USAGE_STATS", "1")}
        timeout = self.config.timeout_s or DEFAULT_HEALTH_TIMEOUT_S
        server = ManagedServer(
            vllm_command(kwargs, self.served_model), health_timeout_s=timeout, env=env
        )
        self._server = server
        server.start()
        self.base_url = server.base_url
        self.engine_version = engine_version(server.base_url)

    def batch_limit(self) -> int:
        return int(self._engine_args.get("max_num_seqs") or 1)

    def request_body(self) -> dict[str, Any]:
        s = self._sampling_args
        body = ServingBackend.request_body(self)
        body.update(
            ignore_eos=s["ignore_eos"],
            min_tokens=s["min_tokens"],
            repetition_penalty=s["repetition_penalty"],
            truncate_prompt_tokens=self.config.max_input_tokens,
        )
        return body

    def count_prompt_tokens(self, prompt: str) -> int | None:
        if self._tokenizer is None:
            return None
        ids = self._tokenizer(prompt, truncation=True, max_length=self.config.max_input_tokens)
        return len(ids["input_ids"])

    def check_alive(self) -> None:
        if self._server is not None:
            self._server.check_alive()

    def environment(self) -> dict[str, Any]:
        env = VllmBackend.environment(self)
        env.update(
            server_external=False,
            engine_version=self.engine_version,
            server_log=str(self._server.log_path) if self._server else None,
            latency_timestamps="client_stream",
        )
        env.pop("batching", None)
        return env

    def unload(self) -> None:
        server, self._server = self._server, None
        try:
            if server is not None:
                server.stop()
        finally:
            self._tokenizer = None
            VllmBackend.unload(self)
