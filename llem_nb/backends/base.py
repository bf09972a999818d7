"""The backend protocol and registry.

A backend loads one model for one ``ExperimentConfig`` and turns prompts into
per-request outputs with honest token counts. The Harness owns ordering and the
measured window; a backend only generates.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from llem_nb.config.experiment import ExperimentConfig, canonical_json
from llem_nb.config.plugins import BACKENDS


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
    config_section: ClassVar[type[BaseModel] | None] = None
    """A plugin's own settings model: validates its ``name.*`` keys (built-ins have fields)."""
    phase_marker: Callable[[str, float], None] | None = None
    """Set by the Harness for the window: call it at each batch start and first token."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @classmethod
    def preflight(cls, config: ExperimentConfig) -> None:
        """Cheap checks before anything runs (installed? model present?). Raise ConfigError."""

    @classmethod
    def load_key(cls, config: ExperimentConfig) -> str | None:
        """What ``load`` depends on, as a key: experiments with equal keys can share one loaded
        model (``reconfigure`` switches it between them). None (the default): never shared,
        so a plugin backend is reused only once it says what its load depends on."""
        return None

    def reconfigure(self, config: ExperimentConfig) -> None:
        """Point a loaded model at another experiment with the same ``load_key``: only
        per-point settings (batch size, decoding, generation arguments) may differ."""
        self.config = config

    def rewarm(self, prompts: list[str], max_output_tokens: int) -> None:
        """A short warm-up of an already warm model at this point's settings: ``warmup``
        with at most ``max_output_tokens`` new tokens."""
        config = self.config
        short = min(max_output_tokens, config.max_output_tokens)
        self.reconfigure(config.model_copy(update={"max_output_tokens": short}))
        try:
            self.warmup(prompts)
        finally:
            self.reconfigure(config)

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

    def compile_count(self) -> int | None:
        """Graphs compiled so far (``torch.compile``); None when the backend does not compile.
        The harness reads it around the window: a change means compilation was measured."""
        return None

    def environment(self) -> dict[str, Any]:
        return {}

    def unload(self) -> None:
        """Free the model and device memory."""


def key_of(fields: Mapping[str, object]) -> str:
    """A load key: the SHA-256 of the canonical JSON of ``fields``."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


def load_identity(config: ExperimentConfig) -> tuple[str, str] | None:
    """The backend's name and its ``load_key`` for ``config``: experiments with equal
    identities can share one loaded model; None: this one shares with none."""
    key = get_backend(config.backend).load_key(config)
    return None if key is None else (config.backend, key)


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (``llem_nb.config.plugins``)."""
    cls: type[Backend] = BACKENDS.get(name)
    return cls
