"""ExperimentResult: what one experiment × cycle measured, as written to its JSON file.

Only measured base quantities are stored; per-token and per-second figures are
derived from them (here as properties, and vectorised in ``results.frame``).
"""

from __future__ import annotations

import traceback as tb
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.results.html import flagged, fmt, kv_table

SCHEMA_VERSION = 1
RESULT_KIND = "llem_nb.result"

MACHINE_FAILURES = frozenset({"disk", "permission", "interrupted", "crashed"})
"""Error categories that are the machine's fault, not the experiment's: the disk refused the
result, a permission was missing, the run was interrupted, the worker process died. A plain
resume measures these again; other failures wait for ``retry_failed``."""


class DeviceEnergy(BaseModel):
    """Energy of one measured device over the window."""

    model_config = ConfigDict(extra="allow")

    label: str
    index: int | None = None
    uuid: str | None = None
    name: str = ""
    energy_j: float | None = None
    method: str = ""
    samples: int = 0
    power_integral_j: float | None = None
    idle_power_w: float | None = None
    energy_net_j: float | None = None
    counter_vs_power_ratio: float | None = None
    power_method: str = ""
    power_avg_s: float | None = None
    counter_update_s: float | None = None
    edges: dict[str, Any] = Field(default_factory=dict)
    mig: bool = False


class DomainEnergy(BaseModel):
    """One energy domain of the boundary (``gpu``, ``cpu``, ``dram``) over the window:
    gross, summed idle power, net (clamped once at 0, then ``net_clamped``) and its zones."""

    model_config = ConfigDict(extra="allow")

    domain: str
    energy_j: float | None = None
    idle_power_w: float | None = None
    energy_net_j: float | None = None
    net_clamped: bool = False
    method: str = ""
    zones: list[dict[str, Any]] = Field(default_factory=list)


class ErrorInfo(BaseModel):
    """Why an experiment failed. ``type`` is the exception's type where it was raised (in
    a container: the remote one); ``raised_as`` the llem_nb error the runner turned it into
    when that differs (``OOMError``, ``ImagePullError``…); ``kept_dir`` the exchange dir
    kept for inspection."""

    type: str
    message: str
    traceback: str | None = None
    category: str = "error"
    fix: str | None = None
    raised_as: str | None = None
    kept_dir: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        remote = getattr(exc, "remote_traceback", None)
        text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        kind = getattr(exc, "error_type", None) or type(exc).__name__
        kept = getattr(exc, "exchange_dir", None)
        return cls(
            type=kind,
            message=getattr(exc, "message", None) or str(exc),
            traceback=remote or text,
            category=getattr(exc, "category", "error"),
            fix=getattr(exc, "fix", None) or None,
            raised_as=type(exc).__name__ if type(exc).__name__ != kind else None,
            kept_dir=str(kept) if kept else None,
        )


class RequestStats(BaseModel):
    """Per-request figures, in request order."""

    input_tokens: list[int] = Field(default_factory=list)
    output_tokens: list[int] = Field(default_factory=list)
    e2e_s: list[float] = Field(default_factory=list)
    ttft_s: list[float | None] = Field(default_factory=list)
    queue_s: list[float | None] = Field(default_factory=list)
    """Time each request waited for the engine to schedule it (part of its TTFT)."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ExperimentResult(BaseModel):
    """One experiment × cycle. ``status`` is ``ok`` or ``failed`` (then ``error`` says why)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    kind: Literal["llem_nb.result"] = "llem_nb.result"
    schema_version: int = SCHEMA_VERSION
    study: str = ""
    experiment_id: str
    config_hash: str
    cycle: int = 0
    status: Literal["ok", "failed"] = "ok"
    error: ErrorInfo | None = None
    config: dict[str, Any]
    point: dict[str, Any] = Field(default_factory=dict)
    runner: str = "local"
    runner_source: str | None = None
    image: str | None = None
    image_digest: str | None = None
    started_at: str = Field(default_factory=utc_now)
    finished_at: str | None = None
    gap_s: float | None = None
    cooldown_s: float | None = None
    cooldown_reached: bool | None = None
    cooldown_note: str | None = None

    load_s: float | None = None
    """Seconds loading the model; 0 when it was kept loaded from an earlier experiment."""
    model_reused: bool | None = None
    """The model was kept loaded from the study's previous experiment (``reuse="auto"``)."""
    warmup_s: float | None = None
    window_s: float | None = None
    window_repeats: int | None = None
    batching: str | None = None
    n_requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    requests: RequestStats | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p90: float | None = None
    ttft_ms_p99: float | None = None
    queue_ms_p50: float | None = None
    """Engine queueing (included in TTFT) where the engine reports it; None elsewhere."""
    queue_ms_p90: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    itl_ms_p99: float | None = None
    latency_s_p50: float | None = None
    latency_s_mean: float | None = None

    energy_source: str = "none"
    gpu_count: int = 0
    energy_devices: list[DeviceEnergy] = Field(default_factory=list)
    energy_gross_j: float | None = None
    idle_power_w: float | None = None
    baseline_reused: bool | None = None
    """The idle baseline was kept from an earlier window with the same model loaded."""
    baseline_age_s: float | None = None
    """Seconds since that kept baseline was measured; 0 when measured for this window."""
    baseline_note: str | None = None
    """Why a reusing study measured a new baseline (first window, too old, drift …)."""
    energy_net_j: float | None = None
    counter_vs_power_ratio: float | None = None
    prefill_energy_j: float | None = None
    decode_energy_j: float | None = None
    phase_method: str | None = None
    phases: dict[str, Any] | None = None
    flops_estimate: float | None = None
    flops_method: str | None = None
    co2_g: float | None = None
    co2_net_g: float | None = None
    energy_domains: list[DomainEnergy] = Field(default_factory=list)
    """The energy boundary, per domain (``llem_nb.measure.boundary``)."""
    energy_boundary: str | None = None
    energy_gpu_j: float | None = None
    energy_gpu_net_j: float | None = None
    energy_cpu_j: float | None = None
    energy_cpu_net_j: float | None = None
    energy_dram_j: float | None = None
    energy_dram_net_j: float | None = None
    energy_boundary_j: float | None = None
    energy_boundary_net_j: float | None = None
    energy_facility_j: float | None = None
    """Modelled, not measured: boundary gross × PUE (``energy_facility_method`` says so)."""
    energy_facility_method: str | None = None
    mig: bool = False
    warmup: dict[str, Any] | None = None
    window_cooldown: dict[str, Any] | None = None
    timeseries_file: str | None = None
    warnings: list[str] = Field(default_factory=list)
    quality_flags: list[str] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    _timeseries: Any = PrivateAttr(default=None)
    """The window's ``Timeseries`` until a writer saves it beside the JSON file."""

    @classmethod
    def finished(
        cls, config: ExperimentConfig, *, cycle: int = 0, study: str = "", **fields: Any
    ) -> ExperimentResult:
        """An experiment's result as it ends now: identity from ``config``, ``fields`` the rest."""
        return cls(
            study=study,
            experiment_id=config.experiment_id,
            config_hash=config.config_hash,
            cycle=cycle,
            config=config.model_dump(mode="json"),
            finished_at=utc_now(),
            **fields,
        )

    @classmethod
    def failed(
        cls, config: ExperimentConfig, exc: BaseException, *, cycle: int = 0, study: str = ""
    ) -> ExperimentResult:
        return cls.finished(
            config, cycle=cycle, study=study, status="failed", error=ErrorInfo.from_exception(exc)
        )

    @property
    def experiment(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate(self.config)

    @property
    def quality_ok(self) -> bool:
        return self.status == "ok" and not self.quality_flags

    @property
    def throughput_output_tok_s(self) -> float | None:
        if self.output_tokens is None or not self.window_s:
            return None
        return self.output_tokens / self.window_s

    @property
    def energy_per_output_token_j(self) -> float | None:
        if self.energy_gross_j is None or not self.output_tokens:
            return None
        return self.energy_gross_j / self.output_tokens

    @property
    def energy_per_output_token_net_j(self) -> float | None:
        if self.energy_net_j is None or not self.output_tokens:
            return None
        return self.energy_net_j / self.output_tokens

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=False)

    def _repr_html_(self) -> str:
        return result_html(self)


def result_html(result: ExperimentResult) -> str:
    cfg = result.config
    flags = ", ".join(result.quality_flags)
    rows: list[tuple[str, Any]] = [
        ("status", flagged(result.status, result.status == "ok")),
        ("model", cfg.get("model")),
        ("backend / precision", f"{cfg.get('backend')} / {cfg.get('precision')}"),
        ("batch size", cfg.get("batch_size")),
        ("runner", result.runner + (f" ({result.runner_source})" if result.runner_source else "")),
        ("window [s]", result.window_s),
        ("tokens in / out", f"{fmt(result.input_tokens)} / {fmt(result.output_tokens)}"),
        ("throughput [out tok/s]", result.throughput_output_tok_s),
        ("TTFT p50 [ms]", result.ttft_ms_p50),
        ("energy source", result.energy_source),
        ("energy gross / net [J]", f"{fmt(result.energy_gross_j)} / {fmt(result.energy_net_j)}"),
        ("idle power [W]", result.idle_power_w),
        ("energy per output token [J]", result.energy_per_output_token_j),
        ("quality flags", flagged(flags or "none", not flags)),
    ]
    if result.error is not None:
        text = f"{result.error.type} [{result.error.category}]: {result.error.message}"
        if result.error.fix:
            text += f" — fix: {result.error.fix}"
        rows.append(("error", flagged(text, False)))
    return kv_table(f"ExperimentResult {result.experiment_id} cycle {result.cycle}", rows)
