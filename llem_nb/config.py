"""Experiment and study definitions: validation, sweep expansion, config hashing.

Everything here is pure: no I/O beyond reading a YAML file the user names, no
hardware probing. An ``ExperimentConfig`` is one measurable point; a
``StudyConfig`` is a base point, sweep axes, explicit points and cycles.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from llem_nb.config_sections import (
    _NOT_HASHED,
    BACKENDS,
    VLLM_ENGINE_ARGS,
    BaselineConfig,
    CarbonConfig,
    CycleOrder,
    DecoderConfig,
    EnergyConfig,
    EnergySource,
    GpuSpec,
    MeasurementConfig,
    Precision,
    PytorchConfig,
    VllmConfig,
    VllmEngineConfig,
    VllmSamplingConfig,
    WarmupConfig,
    WindowCooldownConfig,
    _Section,
)
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
    cooldown: WindowCooldownConfig = Field(default_factory=WindowCooldownConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    carbon: CarbonConfig = Field(default_factory=CarbonConfig)
    pytorch: PytorchConfig = Field(default_factory=PytorchConfig)
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    timeout_s: float | None = Field(None, gt=0.0, description="stop the experiment after this")

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        from llem_nb.backends.base import known_backends

        known = known_backends()
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"no backend named {value!r}; {hint}known: {', '.join(known)}")
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
        return self

    @property
    def gpu_count_requested(self) -> int | None:
        """GPUs asked for, or None for 'all' (known only on the machine)."""
        if self.gpus == "all":
            return None
        if isinstance(self.gpus, list):
            return len(self.gpus)
        return int(self.gpus)

    def measurement_dict(self) -> dict[str, Any]:
        """The fields that change the measurement, in canonical JSON form."""
        data = self.model_dump(mode="json", exclude=set(_NOT_HASHED))
        for section in BACKENDS:
            if section != self.backend:
                data.pop(section, None)
        return data

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


# --------------------------------------------------------------------------- dotted keys


def normalize_key(key: str) -> str:
    """``decoder__temperature`` (a Python kwarg) and ``decoder.temperature`` are the same axis."""
    return key.replace("__", ".")


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _scope(key: str) -> tuple[str | None, str]:
    """Split a sweep key into (backend scope, target key).

    ``pytorch.attn_implementation`` targets the pytorch section; ``pytorch.batch_size``
    targets the top-level ``batch_size`` but only on pytorch points.
    """
    head, _, rest = key.partition(".")
    if head in BACKENDS and rest:
        section = ExperimentConfig.model_fields[head].annotation
        first = rest.split(".")[0]
        if isinstance(section, type) and first in getattr(section, "model_fields", {}):
            return head, key
        if first in ExperimentConfig.model_fields and first not in BACKENDS:
            return head, rest
        return head, key
    return None, key


def check_key(key: str) -> str:
    """Validate a dotted key against the schema; return its normalized form."""
    key = normalize_key(key)
    _, target = _scope(key)
    node: Any = ExperimentConfig
    parts = target.split(".")
    for i, part in enumerate(parts):
        fields = getattr(node, "model_fields", None)
        if fields is None:
            break
        if part not in fields:
            if node is VllmEngineConfig:
                break
            close = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
            where = ".".join(parts[:i]) or "the experiment"
            hint = (
                f"did you mean {'.'.join([*parts[:i], close[0]])!r}?"
                if close
                else (f"known in {where}: {', '.join(fields)}")
            )
            raise ConfigError(f"unknown key {key!r}; {hint}", field=key)
        node = fields[part].annotation
    return key


# --------------------------------------------------------------------------- study


from llem_nb.study_config import (  # noqa: E402 - re-exported; study_config imports this module
    CooldownConfig,
    CyclesConfig,
    InvalidPoint,
    Point,
    StudyConfig,
    check_axis_value,
    expand,
)

__all__ = [
    "BACKENDS",
    "VLLM_ENGINE_ARGS",
    "BaselineConfig",
    "CarbonConfig",
    "CooldownConfig",
    "CycleOrder",
    "CyclesConfig",
    "DecoderConfig",
    "EnergyConfig",
    "EnergySource",
    "ExperimentConfig",
    "GpuSpec",
    "InvalidPoint",
    "MeasurementConfig",
    "Point",
    "Precision",
    "PytorchConfig",
    "StudyConfig",
    "VllmConfig",
    "VllmEngineConfig",
    "VllmSamplingConfig",
    "WarmupConfig",
    "WindowCooldownConfig",
    "canonical_json",
    "check_axis_value",
    "check_key",
    "config_error",
    "config_hash",
    "expand",
    "flatten",
    "normalize_key",
    "set_dotted",
    "validate_experiment",
]
