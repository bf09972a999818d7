"""The workload section: offline prompt batches (the default) or a served request stream.

``kind="serving"`` sends ``n_requests`` requests to an OpenAI-compatible server at
``request_rate`` requests/s (``"inf"``: all at once), their arrival times drawn from
``arrival`` (``poisson``, ``gamma`` with ``burstiness`` = coefficient of variation of the
gaps, or ``constant``). The measured numbers come from the steady state, found by
``steady_state``: ``mlenergy`` (ML.ENERGY's rule, from the server's batch limit) or
``trim`` (the run less ``trim_lead_s`` and ``trim_trail_s``). ``slo`` holds the latency
targets that goodput and SLO attainment count against.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llem_nb.config.plugins import BACKENDS
from llem_nb.config.sections import _Section

SERVING_BACKENDS = frozenset({"vllm", "openai"})
"""Built-in backends that run (vllm) or reach (openai) a server; a plugin backend serves
when its class says ``serves = True`` (``llem_nb.backends.serving.ServingBackend`` does)."""


def serves(backend: str) -> bool:
    if backend in SERVING_BACKENDS:
        return True
    if backend not in BACKENDS or BACKENDS.builtin(backend):
        return False
    return bool(getattr(BACKENDS.get(backend), "serves", False))


Arrival = Literal["poisson", "gamma", "constant"]
SteadyRule = Literal["mlenergy", "trim"]


class SloConfig(_Section):
    """Latency targets at ``percentile``; a request meets the SLO when every set target holds."""

    ttft_ms: float | None = Field(
        None, gt=0.0, allow_inf_nan=False, description="time to first token"
    )
    itl_ms: float | None = Field(
        None, gt=0.0, allow_inf_nan=False, description="inter-token latency"
    )
    e2e_s: float | None = Field(None, gt=0.0, allow_inf_nan=False, description="request latency")
    percentile: float = Field(90.0, gt=0.0, le=100.0, description="percentile the targets bind")

    @property
    def any_set(self) -> bool:
        return any(v is not None for v in (self.ttft_ms, self.itl_ms, self.e2e_s))


class WorkloadConfig(_Section):
    """``offline`` (default): the prompt set in batches. ``serving``: requests to a server."""

    kind: Literal["offline", "serving"] = "offline"
    request_rate: float | Literal["inf"] = Field(
        "inf", description="offered requests per second; 'inf' sends every request at once"
    )
    arrival: Arrival = "poisson"
    burstiness: float = Field(
        1.0, gt=0.0, allow_inf_nan=False, description="gamma arrivals: CV of the gaps"
    )
    n_requests: int = Field(64, ge=1, description="measured requests (warm-up ones not counted)")
    max_concurrency: int | None = Field(None, ge=1, description="client-side cap on open requests")
    warmup_requests: int = Field(0, ge=0, description="requests sent and awaited before the run")
    seed: int = Field(0, description="seed of the arrival times (saved with the result)")
    steady_state: SteadyRule = "mlenergy"
    trim_lead_s: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="trim: cut at start")
    trim_trail_s: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="trim: cut at end")
    slo: SloConfig = Field(default_factory=SloConfig)

    @field_validator("request_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"inf", "infinity"}:
            return "inf"
        if isinstance(value, bool):
            raise ValueError("workload.request_rate must be requests/s (> 0) or 'inf'")
        if isinstance(value, int | float):
            if math.isinf(value) and value > 0:
                return "inf"
            if math.isnan(value) or value <= 0:
                raise ValueError("workload.request_rate must be > 0 requests/s, or 'inf'")
            return float(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadConfig:
        if self.kind == "offline":
            changed = sorted(k for k in self.model_fields_set if k != "kind")
            changed = [k for k in changed if getattr(self, k) != _OFFLINE_DEFAULTS[k]]
            if changed:
                raise ValueError(
                    f"workload.{changed[0]} applies to serving workloads; "
                    "set workload.kind='serving' (or drop the field)"
                )
            return self
        if self.arrival != "gamma" and self.burstiness != 1.0:
            raise ValueError(
                f"workload.burstiness={self.burstiness} applies to gamma arrivals; "
                "set workload.arrival='gamma'"
            )
        if self.steady_state == "mlenergy" and (self.trim_lead_s or self.trim_trail_s):
            raise ValueError(
                "workload.trim_lead_s/trim_trail_s apply to steady_state='trim'; set it"
            )
        return self

    @property
    def serving(self) -> bool:
        return self.kind == "serving"

    @property
    def rate_rps(self) -> float:
        """The offered rate as a float (``inf`` for all-at-once)."""
        return math.inf if self.request_rate == "inf" else float(self.request_rate)


_OFFLINE_DEFAULTS: dict[str, Any] = {
    name: field.get_default(call_default_factory=True)
    for name, field in WorkloadConfig.model_fields.items()
}


def min_requests(batch_limit: int) -> int:
    """Fewest requests the mlenergy rule can find a steady state in: the window opens at the
    ``batch_limit``-th first token and closes at the (n − batch_limit − 1)-th finish."""
    return 2 * batch_limit + 2


def check_serving(
    workload: WorkloadConfig, backend: str, batch_limit: int | None, limit_field: str
) -> None:
    """Refuse, before any run, a serving workload its backend or its size cannot carry.

    ``batch_limit`` is the server's ``max_num_seqs`` (capped by ``max_concurrency``), None
    when unknown; ``limit_field`` is the key that sets it, for the message.
    """
    if not workload.serving:
        if backend == "openai":
            raise ValueError(
                "backend='openai' drives a running server: set workload.kind='serving' "
                "(and workload.request_rate)"
            )
        return
    if not serves(backend):
        raise ValueError(
            f"workload.kind='serving' needs a server; backend={backend!r} has none: "
            "use backend='vllm' (starts vLLM's OpenAI server) or backend='openai' "
            "(drives a running server at openai.base_url)"
        )
    if workload.steady_state != "mlenergy":
        return
    if batch_limit is None:
        raise ValueError(
            f"workload.steady_state='mlenergy' needs the server's batch limit: set {limit_field} "
            "or workload.max_concurrency, or use workload.steady_state='trim'"
        )
    need = min_requests(batch_limit)
    if workload.n_requests < need:
        raise ValueError(
            f"workload.n_requests={workload.n_requests} is too few for a steady state with "
            f"{batch_limit} requests in flight: the mlenergy rule needs n_requests >= {need} "
            "(raise workload.n_requests, lower the batch limit, or use steady_state='trim')"
        )


class OpenaiConfig(_Section):
    """``backend="openai"``: a server llem_nb did not start, measured on the ``gpus`` named.

    The API key is read from the environment variable ``api_key_env`` only (never stored).
    """

    base_url: str = Field(
        "http://127.0.0.1:8000", min_length=1, description="the server's root (no /v1)"
    )
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description="env var of the key")
    served_model: str | None = Field(None, description="model name the server knows; None: model")
    max_num_seqs: int | None = Field(
        None, ge=1, description="the server's batch limit (the mlenergy steady-state rule)"
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("openai.base_url must start with http:// or https://")
        return value.rstrip("/").removesuffix("/v1")
