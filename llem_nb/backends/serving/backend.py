"""The serving backends' common part: a server to load against, what a request body holds.

A serving backend's ``load`` brings up (or reaches) the server and its ``unload`` stops what
it started; requests go through the load generator (``serving.client``), driven by
``llem_nb.measure.served``, never through ``generate``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llem_nb.backends.base import Backend, GenerationOutput
from llem_nb.errors import BackendError, ConfigError


def require_aiohttp() -> None:
    try:
        import aiohttp  # noqa: F401, PLC0415 - an optional extra, imported only to check
    except ImportError as exc:
        raise ConfigError(
            "serving workloads need aiohttp, which is not installed",
            field="workload.kind",
            fix="pip install 'llem_nb[serving]'",
        ) from exc


class ServingBackend(Backend):
    """A server and the facts about it; ``base_url`` is known once ``load`` returned."""

    serves: ClassVar[bool] = True
    """Read by config validation: a serving workload may run on this backend."""
    server_external: ClassVar[bool] = False
    base_url: str = ""
    served_model: str = ""
    engine_version: str = "unknown"

    def generate(self, prompts: list[str]) -> GenerationOutput:
        raise BackendError(
            f"backend {self.name!r} serves requests; it does not run offline batches",
            fix="set workload.kind='serving'",
        )

    def request_body(self) -> dict[str, Any]:
        """Sampling fields every request carries (the model, prompt and limits are added)."""
        d = self.config.decoder
        body: dict[str, Any] = {"temperature": d.temperature if d.sampling else 0.0}
        if d.sampling:
            body.update(top_p=d.top_p, seed=d.seed)
        return body

    def api_key(self) -> str | None:
        return None

    def count_prompt_tokens(self, prompt: str) -> int | None:
        """Our own count of a prompt's tokens, to check the server's usage; None: unknown."""
        return None

    def check_alive(self) -> None:
        """Raise when the server is gone (after a run: the cause of failed requests)."""
