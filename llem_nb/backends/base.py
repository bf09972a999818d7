"""The backend protocol and registry.

A backend loads one model for one ``ExperimentConfig`` and turns prompts into
per-request outputs with honest token counts. The Harness owns ordering and the
measured window; a backend only generates.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llem_nb.config import ExperimentConfig
from llem_nb.errors import ConfigError


@dataclass
class RequestOutput:
    """One request's outcome. Times are seconds from the request's submission."""

    input_tokens: int
    output_tokens: int
    e2e_s: float
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    text: str | None = None


@dataclass
class GenerationOutput:
    requests: list[RequestOutput]
    batching: str = "static"
    phases: list[tuple[float, float]] = field(default_factory=list)


class Backend(ABC):
    """Base class: subclasses implement ``load`` and ``generate``."""

    name: ClassVar[str]

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

    def synchronize(self) -> None:
        """Wait until the device has finished queued work (the window's edges)."""

    def gpu_indices(self) -> list[int]:
        """NVML indices of the GPUs this backend computes on; [] on CPU."""
        return []

    def environment(self) -> dict[str, Any]:
        return {}

    def unload(self) -> None:
        """Free the model and device memory."""


_REGISTRY: dict[str, str | type[Backend]] = {
    "pytorch": "llem_nb.backends.pytorch:PytorchBackend",
    "vllm": "llem_nb.backends.vllm:VllmBackend",
}


def register_backend(name: str, backend: str | type[Backend]) -> None:
    """Add a backend (a class or a lazy ``module:Class`` path) under ``name``."""
    _REGISTRY[name] = backend


def known_backends() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(
            f"no backend named {name!r}; known: {', '.join(known_backends())}",
            field="backend",
        )
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = cls
        return cls  # type: ignore[no-any-return]
    return entry
