"""load_results: result files → one pandas DataFrame with the canonical columns (README "Columns").

Loading a sweep of thousands of results must cost little more than parsing the
JSON, so each file is parsed with the stdlib ``json.loads`` and its fields are
picked straight from the dict (no pydantic validation, no ``json_normalize``);
columns are typed (``results.columns``) and derived figures computed once,
vectorised. Only measured base quantities are read: a derived figure whose inputs
are missing is NaN. A directory's parsed rows are cached in a Parquet index beside
its results (``results.index``), so loading it again reads one file. Peers' result
files (``results.importers``) land in the same frame with their ``origin``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.results import columns as C
from llem_nb.results import importers
from llem_nb.results.columns import CANONICAL_COLUMNS, EXTRA_COLUMNS
from llem_nb.results.index import cached_rows, refresh
from llem_nb.results.rows import BOUNDARY_BASE, DERIVED, build_frame, combine
from llem_nb.results.scan import PathArg, ResultsWarning, scan, skip
from llem_nb.results.schema import RESULT_KIND, SCHEMA_VERSION
from llem_nb.results.serving_columns import SERVING_COLUMNS

__all__ = ["CANONICAL_COLUMNS", "EXTRA_COLUMNS", "ResultsWarning", "load_results"]

# Fields read from each section of a result, in the order their tuples are built.
_TOP = (
    "study", "experiment_id", "cycle", "status", "runner", "image", "input_tokens",
    "output_tokens", "window_s", "ttft_ms_p50", "itl_ms_p50", "latency_s_p50", "energy_source",
    "gpu_count", "energy_gross_j", "idle_power_w", "energy_net_j", "warnings", "config_hash",
    "ttft_ms_p90", "ttft_ms_p99", "itl_ms_p90", "itl_ms_p99", "latency_s_mean", "load_s",
    "warmup_s", "batching", "n_requests", "quality_flags", "started_at", "finished_at",
    "runner_source", "image_digest", "counter_vs_power_ratio", "prefill_energy_j",
    "decode_energy_j", "phase_method", "flops_estimate", "co2_g", "co2_net_g", "queue_ms_p50",
    "queue_ms_p90", "model_reused", "baseline_reused", "baseline_age_s", "window_repeats",
    *BOUNDARY_BASE,
    *SERVING_COLUMNS,
)  # fmt: skip
_CONFIG = (
    "model", "backend", "precision", "batch_size", "n_prompts", "max_input_tokens",
    "max_output_tokens", "dataset",
)  # fmt: skip
_ENV = ("gpu_name", "driver_version", "llem_nb_version")
_ERROR = ("error_type", "error_message", "error_category")
_ERROR_KEYS = ("type", "message", "category")
_RAW = (*_TOP, "timeseries_path", *_CONFIG, "decoder.temperature", *_ENV, *_ERROR)
_NO_ERROR: tuple[None, ...] = (None,) * len(_ERROR)
_NO_ENV: tuple[None, ...] = (None,) * len(_ENV)
_SECTIONS = ("config", "environment", "error", "point")
OWN_SUFFIX = ".result.json"
SOURCE = "_index_file"
_STORE_NAME = re.compile(r"^(?P<id>[0-9a-f]{12})_c(?P<cycle>\d{3,})\.result\.json$")
"""How ``ResultStore`` names a result: ``{experiment_id}_c{cycle:03d}.result.json``."""


def load_results(
    path_or_paths: PathArg | Iterable[PathArg],
    *,
    include_failed: bool = True,
    reference: bool | Mapping[str, Any] = False,
    index: bool = True,
) -> pd.DataFrame:
    """One row per experiment × cycle from result files, directories (searched recursively) or both.

    Besides llem_nb's own ``*.result.json``, directories and paths may hold peers' files:
    LLenergyMeasure ``result.json`` (schema 2.x), optimum-benchmark ``benchmark.json`` /
    ``benchmark_report.json`` and the ML.ENERGY CSV (``reference=True`` adds the copy
    shipped with llem_nb; a mapping filters it like ``load_reference``). Each row's
    ``origin`` says who measured it. Unreadable, foreign or newer-schema files are
    skipped with one ``ResultsWarning`` each; temp files left by an interrupted write
    are ignored. ``index``: read and refresh each directory's Parquet index
    (``.llem_index.parquet``) instead of parsing every file again. Rows are sorted by
    (study, experiment_id, cycle); columns are ``CANONICAL_COLUMNS``, then extras, then
    each swept key; ``df.attrs["units"]`` maps columns to units.
    """
    found = scan(path_or_paths, OWN_SUFFIX, stat=index)
    frames: list[pd.DataFrame] = []
    with _gc_paused():
        for directory, entries in found.dirs.items():
            if index:
                frames.append(cached_rows(directory, entries, _own_frame))
            else:
                frames.append(_own_frame([os.path.join(directory, e[0]) for e in entries]))
        records: list[dict[str, Any]] = []
        for path in found.files:
            peer = None if path.endswith(OWN_SUFFIX) else importers.read(path, skip)
            if peer is None:
                frames.append(_own_frame([path]))
            else:
                records.extend(peer)
        if reference:
            filters = reference if isinstance(reference, Mapping) else {}
            records.extend(importers.read_reference(**filters))
        if records:
            importers.assign_cycles(records)
            frames.append(build_frame(*_transpose(records)))
        frame = combine(frames)
    if not include_failed:
        frame = frame[frame["status"].eq("ok").fillna(False).to_numpy(dtype=bool)]
        frame = frame.reset_index(drop=True)
        frame.attrs["units"] = C.units()
    return frame


Skips = dict[str, str]
"""File name → why it was skipped (``_own_frame`` fills it for the index)."""


def _read(path: str, skipped: Skips | None) -> dict[str, Any] | None:
    """The parsed result, or None (with a warning) when the file is not one this version reads."""
    why = ""
    data: Any = None
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except OSError as exc:
        why = f"cannot be read ({exc.strerror or exc})"
    except (ValueError, RecursionError) as exc:
        why = f"is not valid JSON, probably truncated or corrupt ({exc})"
    if not why:
        version = data.get("schema_version") if type(data) is dict else None
        if type(data) is not dict or data.get("kind") != RESULT_KIND:
            why = f'is not an llem_nb result (no "kind": "{RESULT_KIND}")'
        elif type(version) is not int or version > SCHEMA_VERSION:
            why = (
                f"has schema_version {version!r}; this llem_nb reads up to {SCHEMA_VERSION} "
                "(upgrade llem_nb to load it)"
            )
        elif (
            type(data.get("experiment_id")) is not str
            or type(data.get("cycle")) is not int
            or type(data.get("study") or "") is not str
        ):
            why = "is malformed (experiment_id, cycle or study missing or mistyped)"
        else:
            why = _misnamed(os.path.basename(path), data["experiment_id"], data["cycle"])
    if not why:
        return data  # type: ignore[no-any-return]
    skip(path, why)
    if skipped is not None:
        skipped[os.path.basename(path)] = why
    return None


def _misnamed(name: str, experiment_id: str, cycle: int) -> str:
    """Why a store-named file holding another experiment's result is left out ("" if it
    is not): it was overwritten or copied, and that result has its own file."""
    match = _STORE_NAME.match(name)
    if match is None or (match["id"], int(match["cycle"])) == (experiment_id, cycle):
        return ""
    return (
        f"holds experiment {experiment_id} cycle {cycle}, not the one its name says "
        f"({match['id']} cycle {int(match['cycle'])}): it was overwritten or copied, so it "
        "is left out"
    )


def _own_frame(
    paths: Sequence[str], skipped: Skips | None = None, *, source: bool = False
) -> pd.DataFrame:
    """The typed frame of llem_nb result files (every row; failed ones too).

    ``source``: add the hidden column ``_index_file`` (each row's file name) for the index.
    """
    rows: list[tuple[Any, ...]] = []
    points: list[dict[str, Any]] = []
    names: list[str] = []
    for path in sorted(paths):  # by name is by (experiment_id, cycle): rows need no reorder
        data = _read(path, skipped)
        if data is None:
            continue
        config, env, error, point = map(data.get, _SECTIONS)
        if type(config) is not dict:
            config = {}
        decoder = config.get("decoder")
        series = data.get("timeseries_file")
        if type(series) is str and series:
            series = os.path.join(os.path.dirname(path), series)
        rows.append(
            (
                *map(data.get, _TOP),
                series or None,
                *map(config.get, _CONFIG),
                decoder.get("temperature") if type(decoder) is dict else None,
                *(map(env.get, _ENV) if type(env) is dict else _NO_ENV),
                *(map(error.get, _ERROR_KEYS) if type(error) is dict else _NO_ERROR),
            )
        )
        points.append(point if type(point) is dict else {})
        names.append(os.path.basename(path))
    raw: dict[str, Sequence[Any]] = (
        dict(zip(_RAW, zip(*rows, strict=True), strict=True)) if rows else {n: () for n in _RAW}
    )
    raw["study"] = [s or "" for s in raw["study"]]
    raw["origin"] = ["llem_nb"] * len(points)
    if source:
        raw[SOURCE] = names
    return build_frame(raw, points)


def _transpose(records: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Importers' row dicts → columns (every known name, plus any they set) and points."""
    names = dict.fromkeys((*_RAW, "origin", "label", *DERIVED))
    for record in records:
        names.update(dict.fromkeys(k for k in record if k != "point" and not k.startswith("_")))
    raw = {name: [r.get(name) for r in records] for name in names}
    return raw, [r.get("point") or {} for r in records]


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


def refresh_index(directory: str | os.PathLike[str]) -> None:
    """Bring ``directory``'s Parquet index up to date with its result files, quietly
    (the run loop calls it when a study ends)."""
    refresh(os.fspath(directory), OWN_SUFFIX, _own_frame)
