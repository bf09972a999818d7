"""load_results: result files → one pandas DataFrame with the canonical columns (README "Columns").

Loading a sweep of thousands of results must cost little more than parsing the
JSON, so each file is parsed with the stdlib ``json.loads`` and its fields are
picked straight from the dict (no pydantic validation, no ``json_normalize``);
columns are typed and derived figures computed once, vectorised. Only measured
base quantities are read: a derived figure whose inputs are missing is NaN.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from llem_nb.errors import ResultError
from llem_nb.results.labels import point_label
from llem_nb.results.schema import RESULT_KIND, SCHEMA_VERSION

CANONICAL_COLUMNS: tuple[str, ...] = (
    "study", "experiment_id", "label", "cycle", "status", "runner", "image", "model", "backend",
    "precision", "batch_size", "n_prompts", "max_input_tokens", "max_output_tokens",
    "input_tokens", "output_tokens", "window_s", "throughput_output_tok_s",
    "throughput_total_tok_s", "ttft_ms_p50", "itl_ms_p50", "latency_s_p50", "energy_source",
    "gpu_count", "energy_gross_j", "idle_power_w", "energy_net_j", "energy_per_output_token_j",
    "energy_per_output_token_net_j", "energy_per_token_j", "energy_per_request_j",
    "avg_power_w", "quality_ok", "warnings", "gpu_name", "driver_version", "llem_nb_version",
)  # fmt: skip

EXTRA_COLUMNS: tuple[str, ...] = (
    "config_hash", "error_type", "error_message", "error_category", "dataset",
    "decoder.temperature", "ttft_ms_p90", "ttft_ms_p99", "queue_ms_p50", "queue_ms_p90",
    "itl_ms_p90", "itl_ms_p99", "latency_s_mean", "load_s", "warmup_s", "batching", "n_requests",
    "quality_flags", "started_at", "finished_at", "runner_source", "image_digest",
    "counter_vs_power_ratio", "prefill_energy_j", "decode_energy_j", "phase_method",
    "flops_estimate", "co2_g", "co2_net_g", "timeseries_path", "origin",
)  # fmt: skip

# Fields read from each section of a result, in the order their tuples are built.
_TOP = (
    "study", "experiment_id", "cycle", "status", "runner", "image", "input_tokens",
    "output_tokens", "window_s", "ttft_ms_p50", "itl_ms_p50", "latency_s_p50", "energy_source",
    "gpu_count", "energy_gross_j", "idle_power_w", "energy_net_j", "warnings", "config_hash",
    "ttft_ms_p90", "ttft_ms_p99", "itl_ms_p90", "itl_ms_p99", "latency_s_mean", "load_s",
    "warmup_s", "batching", "n_requests", "quality_flags", "started_at", "finished_at",
    "runner_source", "image_digest", "counter_vs_power_ratio", "prefill_energy_j",
    "decode_energy_j", "phase_method", "flops_estimate", "co2_g", "co2_net_g", "queue_ms_p50",
    "queue_ms_p90",
)  # fmt: skip
_CONFIG = (
    "model", "backend", "precision", "batch_size", "n_prompts", "max_input_tokens",
    "max_output_tokens", "dataset",
)  # fmt: skip
_ENV = ("gpu_name", "driver_version", "llem_nb_version")
_ERROR = ("error_type", "error_message", "error_category")
_ERROR_KEYS = ("type", "message", "category")

_INT = frozenset({"batch_size", "n_prompts", "max_input_tokens", "max_output_tokens", "gpu_count"})
_FLOAT = frozenset(
    {
        "input_tokens", "output_tokens", "n_requests", "window_s", "ttft_ms_p50", "ttft_ms_p90",
        "ttft_ms_p99", "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "latency_s_p50",
        "latency_s_mean", "energy_gross_j", "idle_power_w", "energy_net_j", "load_s", "warmup_s",
        "decoder.temperature", "counter_vs_power_ratio", "prefill_energy_j", "decode_energy_j",
        "flops_estimate", "co2_g", "co2_net_g", "queue_ms_p50", "queue_ms_p90",
    }
)  # fmt: skip
_JOINED = frozenset({"warnings"})
_LISTS = frozenset({"quality_flags"})
_NO_ERROR: tuple[None, ...] = (None,) * len(_ERROR)
_NO_ENV: tuple[None, ...] = (None,) * len(_ENV)
_SECTIONS = ("config", "environment", "error", "point")

PathArg = str | os.PathLike[str]


class ResultsWarning(UserWarning):
    """A file that looked like a result was skipped; the message names it and says why."""


def load_results(
    path_or_paths: PathArg | Iterable[PathArg], *, include_failed: bool = True
) -> pd.DataFrame:
    """One row per experiment × cycle from result files, directories (searched recursively) or both.

    Unreadable, foreign or newer-schema files are skipped with one ``ResultsWarning``
    each; temp files left by an interrupted write are ignored. Rows are sorted by
    (study, experiment_id, cycle); columns are ``CANONICAL_COLUMNS``, then extras,
    then each swept key of the results' ``point``.
    """
    paths = _expand(path_or_paths)
    with _gc_paused():
        return _frame(*_collect(paths, include_failed))


def _collect(paths: list[str], include_failed: bool) -> tuple[Any, ...]:
    """Pick the fields of every readable result, as columns sorted by (study, id, cycle)."""
    tops: list[tuple[Any, ...]] = []
    configs: list[tuple[Any, ...]] = []
    envs: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    points: list[dict[str, Any]] = []
    keys: list[tuple[str, str, int]] = []
    for path in paths:
        data = _read(path)
        if data is None:
            continue
        study = data.get("study") or ""
        experiment_id = data.get("experiment_id")
        cycle = data.get("cycle")
        if type(experiment_id) is not str or type(cycle) is not int or type(study) is not str:
            _skip(path, "is malformed (experiment_id, cycle or study missing or mistyped)", 4)
            continue
        if not include_failed and data.get("status") != "ok":
            continue
        config, env, error, point = map(data.get, _SECTIONS)
        if type(config) is not dict:
            config = {}
        decoder = config.get("decoder")
        series = data.get("timeseries_file")
        if type(series) is str and series:
            series = os.path.join(os.path.dirname(path), series)
        tops.append((*map(data.get, _TOP), series or None))
        configs.append(
            (
                *map(config.get, _CONFIG),
                decoder.get("temperature") if type(decoder) is dict else None,
            )
        )
        envs.append(tuple(map(env.get, _ENV)) if type(env) is dict else _NO_ENV)
        errors.append(tuple(map(error.get, _ERROR_KEYS)) if type(error) is dict else _NO_ERROR)
        points.append(point if type(point) is dict else {})
        keys.append((study, experiment_id, cycle))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return (
        _columns([tops[i] for i in order], (*_TOP, "timeseries_path")),
        _columns([configs[i] for i in order], (*_CONFIG, "decoder.temperature")),
        _columns([envs[i] for i in order], _ENV),
        _columns([errors[i] for i in order], _ERROR),
        [points[i] for i in order],
        [keys[i][0] for i in order],
    )


def _expand(path_or_paths: PathArg | Iterable[PathArg]) -> list[str]:
    """Every result file named: directories searched recursively, order kept, duplicates dropped."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        path_or_paths = [path_or_paths]
    found: list[str] = []
    for item in path_or_paths:
        path = os.fspath(item)
        if os.path.isdir(path):
            pattern = os.path.join(glob.escape(path), "**", "*.result.json")
            found.extend(sorted(glob.glob(pattern, recursive=True)))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ResultError(
                f"no result file or directory at {path!r}",
                fix="check the path; results are <dir>/<experiment_id>_c<NNN>.result.json files",
            )
    return list(dict.fromkeys(found))


def _skip(path: str, why: str, stacklevel: int) -> None:
    warnings.warn(f"skipped {path}: {why}", ResultsWarning, stacklevel=stacklevel)


def _read(path: str) -> dict[str, Any] | None:
    """The parsed result, or None (with a warning) when the file is not one this version reads."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except OSError as exc:
        _skip(path, f"cannot be read ({exc.strerror or exc})", 5)
        return None
    except (ValueError, RecursionError) as exc:
        _skip(path, f"is not valid JSON, probably truncated or corrupt ({exc})", 5)
        return None
    if type(data) is not dict or data.get("kind") != RESULT_KIND:
        _skip(path, f'is not an llem_nb result (no "kind": "{RESULT_KIND}")', 5)
        return None
    version = data.get("schema_version")
    if type(version) is not int or version > SCHEMA_VERSION:
        _skip(
            path,
            f"has schema_version {version!r}; this llem_nb reads up to {SCHEMA_VERSION} "
            "(upgrade llem_nb to load it)",
            5,
        )
        return None
    return data


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while loading: the kept rows only grow, so its passes find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _columns(rows: list[tuple[Any, ...]], names: Sequence[str]) -> dict[str, Sequence[Any]]:
    if not rows:
        return {name: () for name in names}
    return dict(zip(names, zip(*rows, strict=False), strict=True))


def _floats(values: Sequence[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        coerced = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def _ints(values: Sequence[Any]) -> Any:
    try:
        return pd.array(list(values), dtype="Int64")
    except (TypeError, ValueError):
        return _floats(values)


def _strings(values: Sequence[Any]) -> Any:
    return pd.array(list(values), dtype="str")


def _lists(values: Sequence[Any]) -> Any:
    """A column of Python lists (object dtype): ``"flag" in row``, ``.explode()`` work."""
    out = np.empty(len(values), dtype=object)
    out[:] = [list(v) if isinstance(v, list) else [] for v in values]
    return out


def _joined(values: Sequence[Any]) -> Any:
    return _strings(["; ".join(map(str, v)) if isinstance(v, list) else (v or "") for v in values])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where the denominator is missing or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return out


def _labels(points: list[dict[str, Any]], studies: list[str], models: Sequence[Any]) -> list[str]:
    """Each row's ``label``: its swept values, in the order its study swept them."""
    order: dict[str, dict[str, None]] = {}
    for study, point in zip(studies, points, strict=True):
        order.setdefault(study, {}).update(dict.fromkeys(point))
    keys = {study: list(found) for study, found in order.items()}
    return [
        point_label(point, keys[study], model=model)
        for point, study, model in zip(points, studies, models, strict=True)
    ]


def _typed(name: str, values: Sequence[Any]) -> Any:
    if name in _FLOAT:
        return _floats(values)
    if name in _INT:
        return _ints(values)
    if name in _JOINED:
        return _joined(values)
    if name in _LISTS:
        return _lists(values)
    return _strings(values)


def _frame(
    top: dict[str, Sequence[Any]],
    config: dict[str, Sequence[Any]],
    env: dict[str, Sequence[Any]],
    error: dict[str, Sequence[Any]],
    points: list[dict[str, Any]],
    studies: list[str],
) -> pd.DataFrame:
    raw = {**top, **config, **env, **error}
    cols: dict[str, Any] = {
        name: _typed(name, values) for name, values in raw.items() if name != "cycle"
    }
    cols["study"] = _strings(studies)
    cols["cycle"] = np.array(top["cycle"], dtype=np.int64)
    status = top["status"]
    flags = top["quality_flags"]
    cols["quality_ok"] = np.array(
        [s == "ok" and not q for s, q in zip(status, flags, strict=True)], dtype=bool
    )
    inp, out, window = cols["input_tokens"], cols["output_tokens"], cols["window_s"]
    gross = cols["energy_gross_j"]
    cols["throughput_output_tok_s"] = _ratio(out, window)
    cols["throughput_total_tok_s"] = _ratio(inp + out, window)
    cols["energy_per_output_token_j"] = _ratio(gross, out)
    cols["energy_per_output_token_net_j"] = _ratio(cols["energy_net_j"], out)
    cols["energy_per_token_j"] = _ratio(gross, inp + out)
    cols["energy_per_request_j"] = _ratio(gross, cols["n_requests"])
    cols["avg_power_w"] = _ratio(gross, window)

    cols["label"] = _strings(_labels(points, studies, config["model"]))
    cols["origin"] = _strings(["llem_nb"] * len(studies))
    ordered = {name: cols[name] for name in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS)}
    swept: dict[str, None] = {}
    for point in points:
        swept.update(dict.fromkeys(point))
    for key in swept:
        if key not in ordered:
            ordered[key] = [point.get(key) for point in points]
    return pd.DataFrame(ordered, copy=False)
