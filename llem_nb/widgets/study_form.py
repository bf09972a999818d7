"""The study form's logic as plain functions: text fields → values → a ``Study``.

``build_study`` turns plain values into a ``Study`` (one value → a base field, several →
a sweep axis); ``parse_values``/``parse_axes`` read the form's text fields. No ipywidgets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from llem_nb.errors import ConfigError
from llem_nb.study.study import Study

PRECISIONS = ("fp32", "fp16", "bf16")
_SPLIT = re.compile(r"[,\n]")
_AXIS_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*[=:]\s*(.*)$")


def parse_values(text: str, axis: str, cast: Callable[[str], Any] = str) -> list[Any]:
    """Comma- or newline-separated values; ``ConfigError`` when one does not convert."""
    out: list[Any] = []
    for item in (part.strip() for part in _SPLIT.split(text)):
        if not item:
            continue
        try:
            out.append(cast(item))
        except ValueError:
            kind = getattr(cast, "__name__", "value")
            raise ConfigError(
                f"{axis}: {item!r} is not a valid {kind}", field=axis, fix="fix or remove it"
            ) from None
    return out


def parse_axes(text: str) -> dict[str, list[Any]]:
    """``key = v1, v2`` lines (YAML scalars) → sweep axes; ``#`` starts a comment."""
    axes: dict[str, list[Any]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _AXIS_LINE.match(line)
        if not match:
            raise ConfigError(
                f"other axes: cannot read {line!r}",
                fix="write one axis per line as `decoder.temperature = 0, 0.7`",
            )
        key, values = match.groups()
        axes[key] = parse_values(values, key, _yaml_scalar)
    return axes


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(text) from None


def build_study(
    name: str,
    *,
    models: Sequence[str],
    backends: Sequence[str] = ("pytorch",),
    precisions: Sequence[str] = ("bf16",),
    batch_sizes: Sequence[int] = (1,),
    max_output_tokens: Sequence[int] = (64,),
    n_prompts: int = 32,
    cycles: int = 1,
    axes: Mapping[str, Sequence[Any]] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Study:
    """A ``Study``: single values become base fields, several values a sweep axis.

    An empty axis is a ``ConfigError`` that names it.
    """
    all_axes: dict[str, list[Any]] = {
        "model": list(models),
        "backend": list(backends),
        "precision": list(precisions),
        "batch_size": list(batch_sizes),
        "max_output_tokens": list(max_output_tokens),
        **{k: list(v) for k, v in (axes or {}).items()},
    }
    for key, values in all_axes.items():
        if not values:
            raise ConfigError(
                f"sweep axis {key!r} is empty", field=key, fix=f"give at least one {key} value"
            )
    fixed = {k: v[0] for k, v in all_axes.items() if len(v) == 1}
    swept = {k: v for k, v in all_axes.items() if len(v) > 1}
    study = Study(name, **{**(base or {}), **fixed, "n_prompts": n_prompts})
    if swept:
        study = study.sweep(swept)
    return study.cycles(cycles) if cycles > 1 else study
