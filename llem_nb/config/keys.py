"""Dotted keys: how a sweep axis or a study field names a place in an experiment config.

``batch_size``, ``decoder.temperature``, ``vllm.engine.max_num_seqs``. A key that starts
with a backend's name is scoped to that backend's points: ``pytorch.attn_implementation``
targets the pytorch section, ``pytorch.batch_size`` the top-level ``batch_size`` on
pytorch points only. A registered plugin backend's ``name.*`` keys are checked against its
own section model (any key when it has none).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.plugins import BACKENDS
from llem_nb.config.sections import VllmEngineConfig
from llem_nb.errors import ConfigError


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


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, mappings merged key by key (copies, never shared)."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _section_fields(backend: str) -> dict[str, Any] | None:
    """The field table of a backend's section (built-in or plugin); None when it has none."""
    if backend in ExperimentConfig.model_fields:
        section = ExperimentConfig.model_fields[backend].annotation
    else:
        section = BACKENDS.section(backend)
    fields = getattr(section, "model_fields", None)
    return dict(fields) if isinstance(fields, dict) else None


def scope(key: str) -> tuple[str | None, str]:
    """Split a key into (backend it is scoped to, the key it targets in the config)."""
    head, _, rest = key.partition(".")
    if rest and head in BACKENDS:
        first = rest.split(".")[0]
        fields = _section_fields(head)
        if fields is not None and first in fields:
            return head, key
        if first in ExperimentConfig.model_fields and first not in BACKENDS:
            return head, rest
        return head, key
    return None, key


def check_key(key: str) -> str:
    """Validate a dotted key against the schema; return its normalized form."""
    key = normalize_key(key)
    _, target = scope(key)
    parts = target.split(".")
    if parts[0] not in ExperimentConfig.model_fields and parts[0] in BACKENDS:
        fields = _section_fields(parts[0])
        if fields is None or len(parts) < 2:
            return key
        return _check_path(key, parts, 1, fields)
    return _check_path(key, parts, 0, dict(ExperimentConfig.model_fields))


def _check_path(key: str, parts: list[str], start: int, fields: dict[str, Any]) -> str:
    """Walk ``parts[start:]`` down the nested field tables; the first unknown part is an
    error with a did-you-mean (anything goes below ``vllm.engine``, which passes through)."""
    node_fields: dict[str, Any] | None = fields
    for i in range(start, len(parts)):
        part = parts[i]
        if node_fields is None:
            break
        if part not in node_fields:
            close = difflib.get_close_matches(part, list(node_fields), n=1, cutoff=0.6)
            place = ".".join(parts[:i]) or "the experiment"
            hint = (
                f"did you mean {'.'.join([*parts[:i], close[0]])!r}?"
                if close
                else f"known in {place}: {', '.join(node_fields)}"
            )
            raise ConfigError(f"unknown key {key!r}; {hint}", field=key)
        annotation = node_fields[part].annotation
        if annotation is VllmEngineConfig:
            return key
        node_fields = getattr(annotation, "model_fields", None)
    return key
