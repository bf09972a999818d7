"""ExperimentConfig: one measurable point, validated, hashed, with errors that name the fix.

Pure: no I/O, no hardware. ``config_hash`` is the SHA-256 of the canonical JSON of the
fields that change the measurement (not output paths, not the runner), stable across
processes and Python versions. A plugin backend's own section (``name: {...}``) is
accepted when that backend is registered, validated by its section model if it has one.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from llem_nb.config.plugins import BACKENDS
from llem_nb.config.sections import (
    _NOT_HASHED,
    _NOT_HASHED_NESTED,
    BaselineConfig,
    CarbonConfig,
    CooldownConfig,
    DecoderConfig,
    EnergyConfig,
    GpuSpec,
    MeasurementConfig,
    Precision,
    PytorchConfig,
    VllmConfig,
    WarmupConfig,
    _Section,
    plain_paths,
    window_cooldown,
)
from llem_nb.config.workload import OpenaiConfig, WorkloadConfig, check_serving
from llem_nb.errors import ConfigError


class ExperimentConfig(_Section):
    """One measurable point: a model, a backend and every setting that changes the numbers."""

    model: str = Field(..., min_length=1, description="Hugging Face id or local directory")
    backend: str = Field("pytorch", description="a registered backend: pytorch, vllm, …")
    precision: Precision = "bf16"
    n_prompts: int = Field(32, ge=1)
    dataset: str = Field("builtin", min_length=1, description="built-in name or a .jsonl path")
    max_input_tokens: int = Field(256, ge=1)
    max_output_tokens: int = Field(64, ge=1)
    batch_size: int = Field(8, ge=1)
    gpus: GpuSpec = "all"
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    cooldown: CooldownConfig = Field(default_factory=window_cooldown)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    carbon: CarbonConfig = Field(default_factory=CarbonConfig)
    pytorch: PytorchConfig = Field(default_factory=PytorchConfig)
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    openai: OpenaiConfig = Field(default_factory=OpenaiConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    timeout_s: float | None = Field(None, gt=0.0, description="stop the experiment after this")

    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="plugin backends' own sections, written as top-level 'name: {...}' keys",
    )

    def __init__(self, /, **data: Any) -> None:
        """As ``validate_experiment``: a bad field is a ``ConfigError`` naming it and the fix."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self)) from None

    # Validation (``model_validate``) keeps pydantic's own path: only a direct call comes here.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("model", "dataset", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return plain_paths(value)

    @model_validator(mode="before")
    @classmethod
    def _plugin_sections(cls, data: Any) -> Any:
        """A top-level key naming a registered plugin backend is that backend's section:
        validated by its section model (when it has one) and kept under ``plugins``."""
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        plugins = dict(out.get("plugins") or {})
        for key in [k for k in out if k not in cls.model_fields and str(k) in BACKENDS]:
            value = out.pop(key)
            if not isinstance(value, Mapping):
                raise ValueError(f"{key!r} must be a mapping of the {key} backend's own settings")
            section = BACKENDS.section(str(key))
            if section is not None:
                try:
                    value = section.model_validate(dict(value)).model_dump(mode="json")
                except ValidationError as exc:
                    raise ValueError(config_error(exc, section, f"{key}.").message) from None
            plugins[str(key)] = dict(value)
        if plugins:
            out["plugins"] = plugins
        return out

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(BACKENDS.unknown(value).message)
        return value

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ValueError("gpus must be 'all', a count >= 0 (0 = CPU) or a list of GPUs")
        if isinstance(value, list):
            if not value:
                raise ValueError("gpus list is empty; use gpus=0 for CPU")
            if len(set(map(str, value))) != len(value):
                raise ValueError("gpus list names the same GPU twice")
            for item in value:
                if isinstance(item, int) and item < 0:
                    raise ValueError(f"GPU index {item} is negative")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentConfig:
        tp = self.vllm.engine.tensor_parallel_size
        if self.backend == "vllm" and tp > 1:
            count = self.gpu_count_requested
            if count is not None and tp > count:
                raise ValueError(
                    f"vllm.engine.tensor_parallel_size={tp} needs {tp} GPUs "
                    f"but gpus={self.gpus!r} assigns {count}"
                )
        if self.backend == "vllm":
            sampling = self.vllm.sampling
            if sampling.n > 1 and not self.decoder.sampling:
                raise ValueError(
                    f"vllm.sampling.n={sampling.n} needs sampling: set decoder.temperature > 0 "
                    "(vLLM refuses n > 1 with greedy decoding)"
                )
            if sampling.min_tokens > self.max_output_tokens:
                raise ValueError(
                    f"vllm.sampling.min_tokens={sampling.min_tokens} exceeds "
                    f"max_output_tokens={self.max_output_tokens}"
                )
        check_serving(self.workload, self.backend, *self.serving_batch_limit())
        return self

    def serving_batch_limit(self) -> tuple[int | None, str]:
        """The most requests the server runs at once (its ``max_num_seqs``, for vLLM by
        default ``batch_size`` as offline, capped by the client's ``max_concurrency``; None:
        unknown) and the key that sets it."""
        if self.backend == "openai":
            server, key = self.openai.max_num_seqs, "openai.max_num_seqs"
        else:
            server = self.vllm.engine.max_num_seqs or self.batch_size * self.vllm.sampling.n
            key = "vllm.engine.max_num_seqs"
        limits = [n for n in (server, self.workload.max_concurrency) if n is not None]
        return (min(limits) if limits else None), key

    @property
    def gpu_count_requested(self) -> int | None:
        """GPUs asked for, or None for 'all' (known only on the machine)."""
        if self.gpus == "all":
            return None
        if isinstance(self.gpus, list):
            return len(self.gpus)
        return int(self.gpus)

    def measurement_dict(self) -> dict[str, Any]:
        """The fields that change the measurement, in canonical JSON form (only this
        experiment's backend section among the backend sections)."""
        exclude: dict[str, Any] = {name: True for name in _NOT_HASHED}
        exclude.update({name: set(keys) for name, keys in _NOT_HASHED_NESTED.items()})
        data = self.model_dump(mode="json", exclude=exclude)
        # Only built-in sections are top-level keys (plugins' live under "plugins"), so no
        # entry-point scan is needed here (an experiment process hashes before anything else).
        for section in [k for k in data if k != self.backend and BACKENDS.builtin(k)]:
            data.pop(section, None)
        if not self.workload.serving:
            data.pop("workload", None)
        own = data.pop("plugins", {}).get(self.backend)
        if own is not None:
            data["plugins"] = {self.backend: own}
        return data

    def section(self, backend: str | None = None) -> Any:
        """A backend's own settings: ``self.pytorch``/``self.vllm``, or a plugin's (its
        section model when it declares one, else a dict)."""
        name = backend or self.backend
        if name in type(self).model_fields:
            return getattr(self, name)
        raw = self.plugins.get(name, {})
        model = BACKENDS.section(name)
        return model.model_validate(raw) if model is not None else dict(raw)

    @property
    def config_hash(self) -> str:
        return config_hash(self)

    @property
    def experiment_id(self) -> str:
        return self.config_hash[:12]


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: ExperimentConfig) -> str:
    """SHA-256 of the canonical JSON of the measured fields; stable across processes."""
    return hashlib.sha256(canonical_json(config.measurement_dict()).encode()).hexdigest()


# --------------------------------------------------------------------------- errors


def _fields_at(model: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    """Field names of the (sub)model that ``loc`` points into."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return list(getattr(current, "model_fields", {}))


def config_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError naming each field and its fix."""
    lines: list[str] = []
    first_field: str | None = None
    for err in exc.errors():
        loc = list(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        name = f"{prefix}{dotted}" if loc else (prefix.rstrip(".") or model.__name__)
        first_field = first_field or name
        if err["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            parent = name.rsplit(".", 1)[0] + "." if "." in name else ""
            hint = (
                f"; did you mean {parent + close[0]!r}?"
                if close
                else f"; known: {', '.join(known)}"
            )
            lines.append(f"unknown key {name!r}{hint}")
        elif err["type"] == "missing":
            lines.append(f"{name!r} is required")
        elif not loc:
            lines.append(err["msg"].removeprefix("Value error, "))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{name!r}: {msg} (got {err.get('input')!r})")
    return ConfigError(
        "invalid config: " + "; ".join(lines),
        field=first_field,
        fix="correct the named field(s); see help(llem_nb.ExperimentConfig) for every field",
    )


def validate_experiment(data: Mapping[str, Any], prefix: str = "") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise config_error(exc, ExperimentConfig, prefix) from None
