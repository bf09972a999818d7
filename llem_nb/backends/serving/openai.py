"""``backend="openai"``: measure a server that is already running, started by someone else.

Any OpenAI-compatible server (vLLM, SGLang, TGI, TRT-LLM, llama.cpp, ``transformers serve``)
at ``openai.base_url``. llem_nb starts and stops nothing: it checks the server answers, asks
what it is (``/version``, else ``/v1/models``, else "unknown"), sends the requests and
measures the GPUs ``gpus`` names (indices; "all": every GPU; 0: the CPU). The API key is
read from the environment variable ``openai.api_key_env`` only, and never recorded.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from llem_nb.backends.serving.backend import ServingBackend, require_aiohttp
from llem_nb.backends.serving.server import engine_version, get_json, healthy
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.energy.device import maybe_nvml
from llem_nb.errors import BackendError, ConfigError


class OpenaiBackend(ServingBackend):
    name: ClassVar[str] = "openai"
    server_external: ClassVar[bool] = True

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        require_aiohttp()
        if isinstance(config.gpus, list) and any(isinstance(g, str) for g in config.gpus):
            raise ConfigError(
                "backend='openai' measures GPUs by NVML index here; UUIDs are not resolved",
                field="gpus",
                fix="name the GPUs by index (nvidia-smi -L lists them)",
            )

    def api_key(self) -> str | None:
        return os.environ.get(self.config.openai.api_key_env) or None

    def load(self) -> None:
        url = self.config.openai.base_url
        reachable = healthy(url) or get_json(f"{url}/v1/models", api_key=self.api_key())
        if not reachable:
            raise BackendError(
                f"no OpenAI-compatible server answers at {url} (/health, /v1/models)",
                fix="start the server first, or set openai.base_url to where it listens",
            )
        self.base_url = url
        self.served_model = self.config.openai.served_model or self.config.model
        self.engine_version = engine_version(url, api_key=self.api_key())

    def check_alive(self) -> None:
        if not healthy(self.base_url) and not get_json(
            f"{self.base_url}/v1/models", api_key=self.api_key()
        ):
            raise BackendError(
                f"the server at {self.base_url} stopped answering during the run",
                fix="check the server's own log",
            )

    def gpu_indices(self) -> list[int]:
        gpus = self.config.gpus
        if gpus == 0:
            return []
        if isinstance(gpus, list):
            return [int(g) for g in gpus]
        door = maybe_nvml()
        if door is None:
            return []
        with door.session():
            count = door.device_count()
        if gpus == "all":
            return list(range(count))
        return list(range(min(int(gpus), count)))

    def environment(self) -> dict[str, Any]:
        return {
            "server_external": True,
            "engine_version": self.engine_version,
            "base_url": self.base_url,
            "served_model": self.served_model,
        }
