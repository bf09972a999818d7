"""Experiment and study definitions: validation, sweep expansion, config hashing.

Everything here is pure: no I/O beyond reading a YAML file the user names, no
hardware probing. An ``ExperimentConfig`` is one measurable point; a
``StudyConfig`` is a base point, sweep axes, explicit points and cycles.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llem_nb.errors import ConfigError

BACKENDS: tuple[str, ...] = ("pytorch", "vllm")
Precision = Literal["fp32", "fp16", "bf16"]
EnergySource = Literal["auto", "nvml", "rapl", "estimate", "none"]
CycleOrder = Literal["sequential", "interleaved", "shuffled"]

# Fields that do not change what is measured: left out of config_hash.
_NOT_HASHED = frozenset({"timeout_s", "carbon"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DecoderConfig(_Section):
    """Decoding parameters; ``temperature=0`` means greedy."""

    temperature: float = Field(0.0, ge=0.0)
    do_sample: bool | None = None
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    seed: int = 0

    @model_validator(mode="after")
    def _sampling_needs_temperature(self) -> DecoderConfig:
        if self.do_sample and self.temperature == 0:
            raise ValueError(
                "decoder.do_sample=true needs decoder.temperature > 0 "
                "(temperature 0 is greedy decoding)"
            )
        return self

    @property
    def sampling(self) -> bool:
        return self.do_sample if self.do_sample is not None else self.temperature > 0


class WarmupConfig(_Section):
    """``fixed``: ``runs`` warm-up batches. ``cv``: at least ``max(runs, window)``, then until
    the latency coefficient of variation over the last ``window`` runs is < ``cv_threshold``,
    at most ``max_runs``."""

    runs: int = Field(1, ge=0, description="warm-up generate calls before the window")
    mode: Literal["fixed", "cv"] = "fixed"
    cv_threshold: float = Field(0.05, gt=0.0, le=1.0, allow_inf_nan=False)
    window: int = Field(5, ge=2, description="runs the CV is computed over")
    max_runs: int = Field(20, ge=1, description="cap on warm-up runs in cv mode")

    @model_validator(mode="after")
    def _cap_covers_window(self) -> WarmupConfig:
        if self.mode == "cv" and self.max_runs < max(self.runs, self.window):
            raise ValueError(
                f"warmup.max_runs={self.max_runs} is below the runs cv mode needs first "
                f"(max(warmup.runs, warmup.window) = {max(self.runs, self.window)}); "
                "raise warmup.max_runs"
            )
        return self


class WindowCooldownConfig(_Section):
    """After warm-up, before the baseline and window: wait until every measured GPU is
    within ``until_within_c`` °C of idle (``idle_c``, else its temperature before the
    model was loaded), at most ``max_s``. None disables; what happened is recorded."""

    until_within_c: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    max_s: float = Field(60.0, ge=0.0, allow_inf_nan=False, description="longest wait")
    idle_c: float | None = Field(None, allow_inf_nan=False, description="idle °C; None: measure")
    poll_s: float = Field(0.5, gt=0.0, allow_inf_nan=False, description="temperature poll period")


class BaselineConfig(_Section):
    seconds: float = Field(
        5.0,
        ge=0.0,
        allow_inf_nan=False,
        description="idle power measured before the window; 0 disables",
    )


class CarbonConfig(_Section):
    """Grid carbon intensity and data-centre PUE for ``co2_g``; never fetched from a network."""

    grid_gco2_per_kwh: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    pue: float = Field(1.0, ge=1.0, allow_inf_nan=False, description="power usage effectiveness")


class EnergyConfig(_Section):
    source: EnergySource = "auto"
    poll_interval_s: float = Field(
        0.05, ge=0.001, allow_inf_nan=False, description="power polling period (>= 1 ms)"
    )
    cpu_w_per_core: float = Field(
        10.0, gt=0.0, description="EstimateMeter model: watts per fully busy core"
    )


class PytorchConfig(_Section):
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None
    torch_compile: bool = False
    device_map: str | None = None
    use_cache: bool = True
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads")


VLLM_ENGINE_ARGS: dict[str, str] = {
    "gpu_memory_utilization": "fraction of GPU memory vLLM may take, in (0, 1]",
    "max_num_seqs": "most sequences in one scheduler step",
    "max_num_batched_tokens": "most tokens in one scheduler step",
    "max_model_len": "context length the engine plans for",
    "enforce_eager": "disable CUDA graphs",
    "enable_prefix_caching": "reuse KV blocks of shared prefixes",
    "enable_chunked_prefill": "split long prefills into chunks",
    "kv_cache_dtype": "KV cache precision",
    "block_size": "KV cache block size in tokens",
    "quantization": "weight quantization method",
    "tensor_parallel_size": "GPUs one model is split across",
    "swap_space": "CPU swap space per GPU in GiB",
    "seed": "engine seed",
}

VLLM_RESERVED_ARGS: dict[str, str] = {
    "model": "set the experiment's model instead",
    "dtype": "set precision (fp32, fp16, bf16) instead",
}


class VllmEngineConfig(BaseModel):
    """Arguments to ``vllm.LLM``; known ones are typed, others pass through."""

    model_config = ConfigDict(extra="allow", validate_default=True)

    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    max_num_seqs: int | None = Field(None, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    kv_cache_dtype: str | None = None
    block_size: int | None = Field(None, ge=1)
    quantization: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    swap_space: float | None = Field(None, ge=0.0)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _near_misses(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key in VLLM_ENGINE_ARGS:
                    continue
                if key in VLLM_RESERVED_ARGS:
                    raise ValueError(
                        f"vllm.engine.{key} is set by llem_nb: {VLLM_RESERVED_ARGS[key]}"
                    )
                close = difflib.get_close_matches(str(key), list(VLLM_ENGINE_ARGS), n=1, cutoff=0.8)
                if close:
                    raise ValueError(f"unknown vllm engine arg {key!r}; did you mean {close[0]!r}?")
        return data

    @property
    def passthrough(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class VllmSamplingConfig(_Section):
    n: int = Field(1, ge=1, description="completions per prompt (n > 1 needs sampling)")
    min_tokens: int = Field(0, ge=0)
    ignore_eos: bool = False
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)


class VllmConfig(_Section):
    engine: VllmEngineConfig = Field(default_factory=VllmEngineConfig)
    sampling: VllmSamplingConfig = Field(default_factory=VllmSamplingConfig)
    batching: Literal["continuous", "static"] = Field(
        "continuous",
        description="continuous: one generate over all prompts, batch_size prompts in flight; "
        "static: groups of batch_size prompts, each run to completion",
    )


GpuSpec = Literal["all"] | int | list[int | str]


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


class CyclesConfig(_Section):
    n: int = Field(1, ge=1)
    order: CycleOrder = "sequential"
    seed: int = 0


class CooldownConfig(_Section):
    """Between experiments, wait until every GPU is within ``until_within_c`` °C of idle.

    Study level (``StudyConfig.cooldown``, results: ``cooldown_s``, ``cooldown_reached``);
    ``ExperimentConfig.cooldown`` is the other one, inside an experiment before its window.
    Idle is ``idle_c`` when given, else each GPU's temperature read when the run starts.
    The wait ends after ``max_s`` whatever the temperature; both outcomes are recorded.
    """

    until_within_c: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    max_s: float = Field(300.0, ge=0.0, allow_inf_nan=False, description="longest wait")
    idle_c: float | None = Field(None, allow_inf_nan=False, description="idle °C; None: measure")
    poll_s: float = Field(1.0, gt=0.0, allow_inf_nan=False, description="temperature poll period")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class StudyConfig(_Section):
    """A named sweep: base fields, axes, explicit points, cycles, runners, gaps."""

    name: str
    base: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    experiments: list[dict[str, Any]] = Field(default_factory=list)
    cycles: CyclesConfig = Field(default_factory=CyclesConfig)
    runners: dict[str, str] = Field(default_factory=dict)
    gap_seconds: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    cooldown: CooldownConfig = Field(default_factory=CooldownConfig)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "study name must start with a letter or digit and use only letters, digits, "
                "'_', '.', '-' (it names a directory)"
            )
        return value

    @field_validator("base")
    @classmethod
    def _nest_base(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A dotted key in base (``decoder.temperature: 0.5``, ``decoder__seed``) means nesting."""

        def dotted(node: Mapping[str, Any]) -> bool:
            return any(
                "." in str(k) or "__" in str(k) or (isinstance(v, Mapping) and dotted(v))
                for k, v in node.items()
            )

        if not dotted(value):
            return value
        out: dict[str, Any] = {}
        for key, item in flatten(value).items():
            set_dotted(out, normalize_key(key), item)
        return out

    @field_validator("sweep")
    @classmethod
    def _check_sweep(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for key, values in value.items():
            if not values:
                raise ValueError(f"sweep axis {key!r} is empty; give at least one value")
            out[normalize_key(key)] = list(values)
        return out

    @field_validator("runners")
    @classmethod
    def _check_runners(cls, value: dict[str, str]) -> dict[str, str]:
        from llem_nb.backends.base import known_backends

        for backend in value:
            if backend not in known_backends():
                raise ValueError(
                    f"runners names no backend {backend!r}; known: {', '.join(known_backends())}"
                )
        return value

    @model_validator(mode="after")
    def _check_keys(self) -> StudyConfig:
        try:
            for key in [*self.sweep, *flatten(self.base)]:
                check_key(key)
            for point in self.experiments:
                for key in flatten(point):
                    check_key(key)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return self

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StudyConfig:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error(exc, cls) from None

    @classmethod
    def from_yaml_text(cls, text: str) -> StudyConfig:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"study YAML does not parse: {exc}", fix="fix the YAML syntax"
            ) from None
        if not isinstance(data, Mapping):
            raise ConfigError(
                "a study YAML must be a mapping with at least 'name'",
                fix="start the file with `name: my-study`",
            )
        return cls.load(data)

    def to_yaml_text(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=False)
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudyConfig:
        return cls.from_yaml_text(Path(path).read_text())


class Point(BaseModel):
    """One expanded experiment and the overrides (dotted keys) that define it."""

    model_config = ConfigDict(frozen=True)

    config: ExperimentConfig
    overrides: dict[str, Any]


class InvalidPoint(BaseModel):
    overrides: dict[str, Any]
    reason: str


def _axis_groups(sweep: Mapping[str, list[Any]]) -> tuple[dict[str, list[Any]], dict[str, dict]]:
    shared: dict[str, list[Any]] = {}
    scoped: dict[str, dict[str, list[Any]]] = {b: {} for b in BACKENDS}
    for key, values in sweep.items():
        scope, _ = _scope(key)
        if scope is None:
            shared[key] = values
        else:
            scoped[scope][key] = values
    return shared, scoped


def _product(axes: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def expand(study: StudyConfig) -> tuple[list[Point], list[InvalidPoint]]:
    """The Cartesian product of the sweep (backend-scoped axes per backend) plus explicit points."""
    shared, scoped = _axis_groups(study.sweep)
    raw: list[dict[str, Any]] = []
    for combo in _product(shared):
        backend = combo.get("backend", study.base.get("backend", "pytorch"))
        known = isinstance(backend, str) and backend in scoped
        extra = _product(scoped[backend]) if known else [{}]
        raw.extend({**combo, **more} for more in extra)
    for explicit in study.experiments:
        raw.append(flatten(explicit))

    points: list[Point] = []
    invalid: list[InvalidPoint] = []
    seen: set[str] = set()
    for overrides in raw:
        data = _deep_merge(study.base, {})
        for key, value in overrides.items():
            _, target = _scope(key)
            set_dotted(data, target, value)
        try:
            config = validate_experiment(data)
        except ConfigError as exc:
            invalid.append(InvalidPoint(overrides=overrides, reason=exc.message))
            continue
        if config.config_hash in seen:
            continue
        seen.add(config.config_hash)
        points.append(Point(config=config, overrides=overrides))
    return points, invalid


def check_axis_value(key: str, value: Any, base: Mapping[str, Any]) -> None:
    """Raise ConfigError when ``value`` can never be valid for ``key``, whatever else is set."""
    _, target = _scope(key)
    data = _deep_merge(base, {})
    data.setdefault("model", "placeholder")
    set_dotted(data, target, value)
    try:
        ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        parts = tuple(target.split("."))
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            if loc[: len(parts)] == parts:
                msg = err["msg"].removeprefix("Value error, ")
                raise ConfigError(
                    f"sweep axis {key!r}: value {value!r} is invalid: {msg}",
                    field=key,
                    fix=f"remove {value!r} from the {key!r} axis",
                ) from None
