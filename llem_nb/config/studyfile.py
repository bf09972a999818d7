"""Reading study files: llem_nb's own layout, and LLenergyMeasure's.

Ours: ``name``, ``base`` (a mapping, or a path to an experiment YAML), ``sweep``,
``experiments``, ``cycles``, ``runners``, ``gap_seconds``, ``cooldown``.

LLenergyMeasure's (its v2 study grammar): the fixed experiment fields at the top level
beside ``sweep:``, an ``execution:`` block (``n_cycles``, ``cycle_order``,
``experiment_gap_seconds``, ``cycle_gap_seconds``, ``shuffle_seed``, ``skip_preflight``),
``runners:``, ``experiments:``, ``version:`` and ``base:`` (an experiment YAML whose
fields are defaults, relative to the study file). It is expanded by that grammar's own
rules — dotted sweep keys scoped to their backend, each backend's grid crossed only with
the universal axes, explicit entries merged shallowly and appended — into explicit
points, so the points and their order are the ones LLenergyMeasure runs. Field names are
translated where llem_nb has the same setting (``n`` → ``n_prompts``,
``warmup.n_warmup`` → ``warmup.runs``, ``baseline.duration_seconds`` →
``baseline.seconds``, ``energy.backend`` → ``energy.source``, ``decoder.preset:
deterministic`` → greedy, ``pytorch.batch_size`` → ``batch_size``, ``random_seed`` →
``decoder.seed``). Settings with no llem_nb equivalent that do not change what is
generated (``warmup.thermal_floor_seconds``, ``dataset_order``, ``cycle_gap_seconds``, …)
are named in one warning and not applied. A point that asks for something llem_nb cannot
measure as written (a ``tensorrt`` backend, a quantisation option) is dropped with its
reason, never approximated.
"""

from __future__ import annotations

import copy
import itertools
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.keys import check_key, flatten, set_dotted
from llem_nb.errors import ConfigError

STUDY_ONLY = frozenset({"sweep", "experiments", "execution", "base", "name", "version", "runners"})
OURS = frozenset(
    {"name", "base", "sweep", "experiments", "cycles", "runners", "gap_seconds", "cooldown"}
)
THEIR_FIELDS = frozenset(
    {
        "model", "backend", "n", "dataset", "dataset_order", "precision", "random_seed",
        "max_input_tokens", "max_output_tokens", "decoder", "warmup", "baseline", "energy",
        "pytorch", "vllm", "tensorrt", "lora", "passthrough_kwargs", "output_dir",
    }
)  # fmt: skip
BACKEND_SECTIONS = ("pytorch", "vllm", "tensorrt")
_ENERGY_SOURCES = {"auto": "auto", "nvml": "nvml", "null": "none", None: "none"}
_NOT_APPLIED = {
    "dataset_order": "llem_nb reads prompts in one seeded order",
    "output_dir": "results go to the run's results_dir",
    "warmup.thermal_floor_seconds": "no thermal floor; use cooldown",
    "warmup.max_prompts": "warm-up counts runs, not prompts",
    "warmup.min_prompts": "warm-up counts runs, not prompts",
    "execution.cycle_gap_seconds": "one gap between experiments (gap_seconds)",
    "execution.skip_preflight": "checks always run before a study",
    "execution.shuffle_seed": "shuffled order uses cycles.seed (not their design hash)",
    "runners.tensorrt": "TensorRT-LLM is not a llem_nb backend",
}


def read_yaml(path: str | Path, what: str = "study file") -> Any:
    """``yaml.safe_load`` of a file that must exist; ``ConfigError`` naming it otherwise."""
    file = Path(path).expanduser()
    if not file.is_file():
        where = "is a directory" if file.is_dir() else "does not exist"
        raise ConfigError(
            f"{what} {str(file)!r} {where} (looked in {file.resolve().parent})",
            field=what,
            fix=f"give the path of an existing {what} (a .yaml file)",
        )
    try:
        return yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{what} {str(file)!r} does not parse as YAML: {exc}", fix="fix the YAML syntax"
        ) from None


def is_theirs(data: Mapping[str, Any]) -> bool:
    """LLenergyMeasure's layout: an ``execution:`` block, a ``version:``, ``base:`` given as a
    path without our own sections, or experiment fields at the top level."""
    if "execution" in data or "version" in data:
        return True
    if isinstance(data.get("base"), str) and not {"cycles", "gap_seconds", "cooldown"} & set(data):
        return True
    fields = (set(ExperimentConfig.model_fields) | THEIR_FIELDS) - OURS
    return any(key in fields for key in data)


def load_base(base: Any, study_path: Path | None) -> dict[str, Any]:
    """A ``base:`` path (relative to the study file) read as an experiment mapping, without
    study-only keys (a base cannot chain, sweep or set execution)."""
    if isinstance(base, Mapping):
        return dict(base)
    if not isinstance(base, str):
        raise ConfigError(
            f"base must be a mapping of experiment fields or a path, got {base!r}",
            field="base",
            fix="write base: {model: ...} or base: experiment.yaml",
        )
    path = Path(base).expanduser()
    if not path.is_absolute() and study_path is not None:
        path = study_path.parent / path
    data = read_yaml(path, "base file")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"base file {str(path)!r} must be a mapping of experiment fields")
    return {k: v for k, v in data.items() if k not in STUDY_ONLY}


def _translate(raw: Mapping[str, Any], notes: set[str]) -> dict[str, Any]:
    """One of their experiment mappings in our field names (see the module docstring)."""
    out = copy.deepcopy(dict(raw))
    for key in ("lora", "passthrough_kwargs", *BACKEND_SECTIONS):
        if key in out and out[key] is None:
            del out[key]
    if "n" in out:
        out["n_prompts"] = out.pop("n")
    if "random_seed" in out:
        seed = out.pop("random_seed")
        if seed is not None:
            out.setdefault("decoder", {}).setdefault("seed", seed)
    for key in ("dataset_order", "output_dir"):
        if key in out:
            out.pop(key)
            notes.add(key)
    _translate_sections(out, notes)
    return out


def _translate_sections(out: dict[str, Any], notes: set[str]) -> None:
    warm = out.get("warmup")
    if isinstance(warm, dict):
        enabled = warm.pop("enabled", True)
        for theirs, ours in (("n_warmup", "runs"), ("window_size", "window")):
            if theirs in warm:
                warm[ours] = warm.pop(theirs)
        if warm.pop("convergence_detection", False):
            warm["mode"] = "cv"
        for key in ("thermal_floor_seconds", "max_prompts", "min_prompts"):
            if key in warm:
                warm.pop(key)
                notes.add(f"warmup.{key}")
        if enabled is False:
            warm.update(runs=0, mode="fixed")
    base = out.get("baseline")
    if isinstance(base, dict):
        enabled = base.pop("enabled", True)
        if "duration_seconds" in base:
            base["seconds"] = base.pop("duration_seconds")
        if enabled is False:
            base["seconds"] = 0
    energy = out.get("energy")
    if isinstance(energy, dict) and "backend" in energy:
        value = energy.pop("backend")
        energy["source"] = _ENERGY_SOURCES.get(value, value)
    decoder = out.get("decoder")
    if isinstance(decoder, dict):
        for key in ("min_p", "min_new_tokens", "preset"):
            if key in decoder and decoder[key] is None:
                del decoder[key]
        if decoder.get("preset") == "deterministic":
            del decoder["preset"]
            decoder.setdefault("temperature", 0.0)
            decoder.setdefault("do_sample", False)
    for section in ("pytorch", "vllm"):
        value = out.get(section)
        if isinstance(value, dict):
            out[section] = {k: v for k, v in value.items() if v is not None}
    torch = out.get("pytorch")
    if isinstance(torch, dict) and "batch_size" in torch:
        out["batch_size"] = torch.pop("batch_size")
        if not torch:
            del out["pytorch"]


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _unflatten_once(key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    return {head: _unflatten_once(rest, value)} if rest else {key: value}


def _strip_sections(config: dict[str, Any], backend: Any) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in BACKEND_SECTIONS or k == backend}


def their_points(raw: Mapping[str, Any], fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Their grammar's raw points, in their order: the sweep (per backend: universal axes ×
    that backend's scoped axes, last key fastest), then the explicit entries."""
    sweep = raw.get("sweep") or {}
    if not isinstance(sweep, Mapping):
        raise ConfigError("sweep must map axis names to lists of values", field="sweep")
    points: list[dict[str, Any]] = []
    if not sweep:
        if fixed.get("model"):
            # A backend list without a sweep: one point per backend (their grammar would
            # reject the list; this is what such a file means).
            listed = fixed.get("backend", "pytorch")
            for backend in listed if isinstance(listed, list) else [listed]:
                points.append({**_strip_sections(dict(fixed), backend), "backend": backend})
    else:
        universal: dict[str, list[Any]] = {}
        scoped: dict[str, dict[str, list[Any]]] = {}
        for key, values in sweep.items():
            values = list(values) if isinstance(values, list) else [values]
            head, dot, param = str(key).partition(".")
            if dot and head in BACKEND_SECTIONS:
                scoped.setdefault(head, {})[param] = values
            else:
                universal[str(key)] = values
        fixed_backend = fixed.get("backend", "pytorch")
        if isinstance(fixed_backend, list):
            backends = list(fixed_backend)
        else:
            backends = list(scoped) if scoped else [fixed_backend]
        if not all(isinstance(b, str) for b in backends):
            raise ConfigError(f"backend must be a name or a list of names, got {fixed_backend!r}")
        for backend in backends:
            own = scoped.get(backend, {})
            keys = [*universal, *own]
            for combo in itertools.product(*universal.values(), *own.values()):
                point = _strip_sections(dict(fixed), backend)
                point["backend"] = backend
                for key, value in zip(keys, combo, strict=True):
                    if key in own:
                        section = point.get(backend) or {}
                        point[backend] = _deep_merge(section, _unflatten_once(key, value))
                    elif "." in key:
                        point = _deep_merge(point, _unflatten_once(key, value))
                    else:
                        point[key] = value
                points.append(point)
    entries = raw.get("experiments") or []
    if not isinstance(entries, list):
        raise ConfigError("experiments must be a list of mappings", field="experiments")
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"each of experiments: must be a mapping, got {entry!r}")
        merged = {**fixed, **entry}
        backend = merged.get("backend", "pytorch")
        for key in BACKEND_SECTIONS:
            if key != backend and key in merged and key not in entry:
                del merged[key]
        points.append(merged)
    return points


def from_theirs(raw: Mapping[str, Any], study_path: Path | None) -> dict[str, Any]:
    """Their study mapping as ours: explicit points over the fields they share."""
    notes: set[str] = set()
    base = load_base(raw.get("base"), study_path) if raw.get("base") is not None else {}
    fixed = {**base, **{k: v for k, v in raw.items() if k not in STUDY_ONLY}}
    points = [_translate(p, notes) for p in their_points(raw, fixed)]
    if not points:
        raise ConfigError(
            "the study produces no experiments",
            fix="add a sweep: block, an experiments: list, or a model: field",
        )
    kept: list[tuple[dict[str, Any], str]] = []
    dropped: list[tuple[dict[str, Any], str]] = []
    for point in points:
        bad = _unknown_key(point)
        (dropped if bad else kept).append((point, bad))
    for point, reason in dropped:
        warnings.warn(f"dropped point {flatten(point)}: {reason}", stacklevel=4)
    if not kept:
        raise ConfigError(
            f"none of the study's {len(points)} points can run here: {dropped[0][1]}",
            fix="use llem_nb's field names (help(llem_nb.ExperimentConfig)) or fix the key",
        )
    flat = [flatten(p) for p, _ in kept]
    common = {k: v for k, v in flat[0].items() if all(k in f and f[k] == v for f in flat[1:])}
    common_base: dict[str, Any] = {}
    for key, value in common.items():
        set_dotted(common_base, key, value)
    explicit = []
    for f in flat:
        own: dict[str, Any] = {}
        for key, value in f.items():
            if key not in common:
                set_dotted(own, key, value)
        explicit.append(own)
    out: dict[str, Any] = {
        "name": _name(raw, study_path),
        "base": common_base,
        "experiments": explicit if len(explicit) > 1 or explicit[0] else [],
    }
    out.update(_execution(raw.get("execution") or {}, notes))
    runners = dict(raw.get("runners") or {})
    if runners.pop("tensorrt", None) is not None:
        notes.add("runners.tensorrt")
    if runners:
        out["runners"] = runners
    if notes:
        named = "; ".join(f"{n} ({_NOT_APPLIED.get(n, 'no equivalent')})" for n in sorted(notes))
        warnings.warn(f"LLenergyMeasure settings not applied: {named}", stacklevel=4)
    return out


def _unknown_key(point: Mapping[str, Any]) -> str:
    """Why ``point`` cannot be a llem_nb experiment as written ('' when it can)."""
    backend = point.get("backend", "pytorch")
    if backend == "tensorrt":
        return "backend 'tensorrt' (TensorRT-LLM) is not a llem_nb backend"
    for key in flatten(point):
        if not isinstance(key, str):
            return f"key {key!r} is not a field name"
        try:
            check_key(key)
        except ConfigError as exc:
            return exc.message
    return ""


def _execution(execution: Mapping[str, Any], notes: set[str]) -> dict[str, Any]:
    known = {
        "n_cycles", "cycle_order", "experiment_gap_seconds", "cycle_gap_seconds",
        "shuffle_seed", "skip_preflight",
    }  # fmt: skip
    unknown = sorted(set(execution) - known)
    if unknown:
        raise ConfigError(
            f"unknown key 'execution.{unknown[0]}'; known: {', '.join(sorted(known))}",
            field=f"execution.{unknown[0]}",
        )
    out: dict[str, Any] = {
        "cycles": {
            "n": execution.get("n_cycles", 1),
            "order": execution.get("cycle_order", "sequential"),
            "seed": execution.get("shuffle_seed") or 0,
        }
    }
    if execution.get("experiment_gap_seconds"):
        out["gap_seconds"] = execution["experiment_gap_seconds"]
    if execution.get("cycle_gap_seconds"):
        notes.add("execution.cycle_gap_seconds")
    if execution.get("skip_preflight"):
        notes.add("execution.skip_preflight")
    if execution.get("shuffle_seed") is not None:
        notes.add("execution.shuffle_seed")
    return out


def _name(raw: Mapping[str, Any], study_path: Path | None) -> str:
    name = raw.get("name")
    if isinstance(name, str) and name:
        return name
    stem = study_path.stem if study_path is not None else "study"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem).lstrip("-_.") or "study"


def study_mapping(data: Any, study_path: Path | None = None) -> dict[str, Any]:
    """A parsed study file (either layout) as the mapping ``StudyConfig`` validates."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            "a study YAML must be a mapping with at least 'name'",
            fix="start the file with `name: my-study`",
        )
    if is_theirs(data):
        return from_theirs(data, study_path)
    out = dict(data)
    if isinstance(out.get("base"), str):
        out["base"] = _translate(load_base(out["base"], study_path), set())
    return out
