"""The backend protocol and registry.

A backend loads one model for one ``ExperimentConfig`` and turns prompts into
per-request outputs with honest token counts. The Harness owns ordering and the
measured window; a backend only generates.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llem_nb._registry import Registry
from llem_nb.config import ExperimentConfig


@dataclass
class RequestOutput:
    """One request's outcome. Times are seconds from the request's submission.

    TTFT runs from submission to the first token's completion on the device, queueing
    included; ``queue_s`` is the part spent waiting for the engine to schedule the
    request, None where the backend does not queue (static batches) or cannot tell.
    ``token_ids`` are the counted output tokens (EOS included); text is decoded outside
    the measured window, by whoever needs it, with ``Backend.decode``.
    """

    input_tokens: int
    output_tokens: int
    e2e_s: float
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    token_ids: list[int] | None = None
    queue_s: float | None = None


@dataclass
class GenerationOutput:
    requests: list[RequestOutput]
    batching: str = "static"
    phases: list[tuple[float, float]] = field(default_factory=list)


class Backend(ABC):
    """Base class: subclasses implement ``load`` and ``generate``."""

    name: ClassVar[str]
    default_runner: ClassVar[str] = "local"
    """Runner used when no layer of the resolution chooses one (vLLM wants its own process)."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        """Cheap checks before anything runs (installed? model present?). Raise ConfigError."""

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def generate(self, prompts: list[str]) -> GenerationOutput: ...

    def warmup(self, prompts: list[str]) -> None:
        self.generate(prompts[: self.config.batch_size])

    def decode(self, token_ids: list[int]) -> str:
        """Text of generated token ids (outside the window); backends with a tokenizer override."""
        raise NotImplementedError(f"backend {self.name!r} cannot decode tokens")

    def synchronize(self) -> None:
        """Wait until the device has finished queued work (the window's edges)."""

    def gpu_indices(self) -> list[int]:
        """NVML indices of the GPUs this backend computes on; [] on CPU."""
        return []

    def environment(self) -> dict[str, Any]:
        return {}

    def unload(self) -> None:
        """Free the model and device memory."""


_BACKENDS = Registry(
    "backend",
    "backend",
    {
        "pytorch": "llem_nb.backends.pytorch:PytorchBackend",
        "vllm": "llem_nb.backends.vllm:VllmBackend",
    },
)


PLUGINS_ENV = "LLEM_BACKENDS"


def register_backend(
    name: str, backend: str | type[Backend], *, child_processes: bool = True
) -> None:
    """Add a backend under ``name``: a class, or a lazy ``module:Class`` path.

    With a path and ``child_processes``, the registration is also put in
    ``$LLEM_BACKENDS`` so subprocess and container runners see it.
    """
    _BACKENDS.register(name, backend)
    if child_processes:
        path = (
            backend if isinstance(backend, str) else f"{backend.__module__}:{backend.__qualname__}"
        )
        entries = dict(_env_plugins())
        entries[name] = path
        os.environ[PLUGINS_ENV] = ",".join(f"{k}={v}" for k, v in entries.items())


def _env_plugins() -> list[tuple[str, str]]:
    out = []
    for item in os.environ.get(PLUGINS_ENV, "").split(","):
        name, sep, path = item.strip().partition("=")
        if sep and name and ":" in path:
            out.append((name, path))
    return out


def _add_env_plugins() -> None:
    for name, path in _env_plugins():
        _BACKENDS.register(name, path, replace=False)


def known_backends() -> list[str]:
    _add_env_plugins()
    return _BACKENDS.names()


def get_backend(name: str) -> type[Backend]:
    _add_env_plugins()
    cls: type[Backend] = _BACKENDS.get(name)
    return cls
