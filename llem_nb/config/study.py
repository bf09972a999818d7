"""Study definitions: base fields, sweep axes, explicit points, cycles; and their expansion.

Pure: ``expand`` turns a ``StudyConfig`` into validated points (and the dropped ones,
with their reason) without touching disk or hardware.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llem_nb.config.experiment import ExperimentConfig, config_error, validate_experiment
from llem_nb.config.keys import check_key, deep_merge, flatten, normalize_key, scope, set_dotted
from llem_nb.config.plugins import BACKENDS, known_backends
from llem_nb.config.sections import (
    CooldownConfig,
    CycleOrder,
    Reuse,
    _Section,
    plain_paths,
    study_cooldown,
)
from llem_nb.config.studyfile import read_yaml, study_mapping
from llem_nb.errors import ConfigError


class CyclesConfig(_Section):
    n: int = Field(1, ge=1)
    order: CycleOrder = "sequential"
    seed: int = 0


NAME_MAX = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class StudyConfig(_Section):
    """A named sweep: base fields, axes, explicit points, cycles, runners, gaps, reuse."""

    name: str
    base: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    experiments: list[dict[str, Any]] = Field(default_factory=list)
    cycles: CyclesConfig = Field(default_factory=CyclesConfig)
    runners: dict[str, str] = Field(default_factory=dict)
    gap_seconds: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    cooldown: CooldownConfig = Field(default_factory=study_cooldown)
    reuse: Reuse = Field(
        "auto",
        description="auto: consecutive points with the same model load share it (and its "
        "warm-up, and a recent idle baseline); never: every experiment loads its own",
    )

    @field_validator("base", "sweep", "experiments", mode="before")
    @classmethod
    def _paths_as_text(cls, value: Any) -> Any:
        return plain_paths(value)

    @field_validator("cycles", mode="before")
    @classmethod
    def _count_is_n(cls, value: Any) -> Any:
        """``cycles: 3`` means three cycles in the default order."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"n": value}
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if len(value) > NAME_MAX:
            raise ValueError(
                f"study name is {len(value)} characters; it may be at most {NAME_MAX} characters "
                "(it names a directory)"
            )
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
    def from_yaml_text(cls, text: str, *, path: str | Path | None = None) -> StudyConfig:
        """Parse a study in either layout (``config.studyfile``); ``path`` anchors a
        relative ``base:`` file."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"study YAML does not parse: {exc}", fix="fix the YAML syntax"
            ) from None
        return cls.load(study_mapping(data, Path(path) if path is not None else None))

    def to_yaml_text(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=False)
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudyConfig:
        """A study file, llem_nb's layout or LLenergyMeasure's; a missing file is a
        ``ConfigError`` naming it."""
        return cls.load(study_mapping(read_yaml(path), Path(path)))


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
    scoped: dict[str, dict[str, list[Any]]] = {b: {} for b in BACKENDS.names()}
    for key, values in sweep.items():
        owner, _ = scope(key)
        if owner is None:
            shared[key] = values
        else:
            scoped[owner][key] = values
    return shared, scoped


def _product(axes: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def expand(study: StudyConfig) -> tuple[list[Point], list[InvalidPoint]]:
    """The Cartesian product of the sweep (backend-scoped axes per backend) plus explicit points.

    Without a sweep, the base alone is a point only when there are no explicit points.
    """
    shared, scoped = _axis_groups(study.sweep)
    raw: list[dict[str, Any]] = []
    combos = _product(shared) if study.sweep or not study.experiments else []
    for combo in combos:
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
        data = deep_merge(study.base, {})
        for key, value in overrides.items():
            _, target = scope(key)
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
    _, target = scope(key)
    data = deep_merge(base, {})
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
