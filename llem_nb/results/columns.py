"""The DataFrame's columns: their order, type, unit and meaning, and how each is typed.

One place says what every column of ``load_results`` is, so the loader, the Parquet
index, the importers of peers' files, ``df.attrs["units"]`` and the README's "Columns"
table (``columns_markdown``; a test keeps the README in step) cannot drift apart.

Types are chosen to be the same on pandas 2 and 3: text is ``StringDtype("pyarrow")``
(missing is ``pd.NA``, never the string ``"None"``; Arrow-backed, so the Parquet index
reads it without copying), five low-cardinality columns are
categoricals with text categories, counts that may be missing are ``Int64``, times
are ``datetime64[us, UTC]``, and ``quality_flags``/``warnings`` hold Python lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it
import pandas as pd  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.results.serving_columns import (
    SERVING_BOOLS,
    SERVING_COLUMNS,
    SERVING_DOCS,
    SERVING_FLOATS,
)

CANONICAL_COLUMNS: tuple[str, ...] = (
    "study", "experiment_id", "label", "cycle", "status", "runner", "image", "model", "backend",
    "precision", "batch_size", "n_prompts", "max_input_tokens", "max_output_tokens",
    "input_tokens", "output_tokens", "window_s", "throughput_output_tok_s",
    "throughput_total_tok_s", "ttft_ms_p50", "itl_ms_p50", "latency_s_p50", "energy_source",
    "gpu_count", "energy_gross_j", "idle_power_w", "energy_net_j", "energy_per_output_token_j",
    "energy_per_output_token_net_j", "energy_per_token_j", "energy_per_request_j",
    "avg_power_w", "quality_ok", "warnings", "gpu_name", "driver_version", "llem_nb_version",
)  # fmt: skip

# The energy boundary (``llem_nb.measure.boundary``): per domain, gross and net, per token.
BOUNDARY_COLUMNS: tuple[str, ...] = (
    "energy_boundary", "energy_gpu_j", "energy_gpu_net_j", "energy_cpu_j", "energy_cpu_net_j",
    "energy_dram_j", "energy_dram_net_j", "energy_boundary_j", "energy_boundary_net_j",
    "energy_facility_j", "energy_per_output_token_gpu_j", "energy_per_output_token_gpu_net_j",
    "energy_per_output_token_cpu_j", "energy_per_output_token_cpu_net_j",
    "energy_per_output_token_dram_j", "energy_per_output_token_dram_net_j",
    "energy_per_output_token_boundary_j", "energy_per_output_token_boundary_net_j",
)  # fmt: skip

EXTRA_COLUMNS: tuple[str, ...] = (
    "config_hash", "error_type", "error_message", "error_category", "dataset",
    "decoder.temperature", "ttft_ms_p90", "ttft_ms_p99", "queue_ms_p50", "queue_ms_p90",
    "itl_ms_p90", "itl_ms_p99", "latency_s_mean", "load_s", "warmup_s", "batching", "n_requests",
    "quality_flags", "started_at", "finished_at", "runner_source", "image_digest",
    "counter_vs_power_ratio", "prefill_energy_j", "decode_energy_j", "phase_method",
    "flops_estimate", "co2_g", "co2_net_g", "timeseries_path", "model_reused",
    "baseline_reused", "baseline_age_s", "window_repeats", "origin",
    *BOUNDARY_COLUMNS,
    *SERVING_COLUMNS,
)  # fmt: skip

CATEGORIES = frozenset({"backend", "runner", "status", "energy_source", "precision"})
TIMES = frozenset({"started_at", "finished_at"})
LISTS = frozenset({"quality_flags", "warnings"})
BOOLS = frozenset({"quality_ok"})
MAYBE_BOOLS = frozenset({"model_reused", "baseline_reused", *SERVING_BOOLS})
INTS = frozenset(
    {"batch_size", "n_prompts", "max_input_tokens", "max_output_tokens", "gpu_count",
     "window_repeats"}
)  # fmt: skip
FLOATS = frozenset(
    {
        "input_tokens", "output_tokens", "n_requests", "window_s", "ttft_ms_p50", "ttft_ms_p90",
        "ttft_ms_p99", "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "latency_s_p50",
        "latency_s_mean", "energy_gross_j", "idle_power_w", "energy_net_j", "load_s", "warmup_s",
        "decoder.temperature", "counter_vs_power_ratio", "prefill_energy_j", "decode_energy_j",
        "flops_estimate", "co2_g", "co2_net_g", "queue_ms_p50", "queue_ms_p90",
        "throughput_output_tok_s", "throughput_total_tok_s", "energy_per_output_token_j",
        "energy_per_output_token_net_j", "energy_per_token_j", "energy_per_request_j",
        "avg_power_w", "baseline_age_s",
        *(name for name in BOUNDARY_COLUMNS if name != "energy_boundary"),
        *SERVING_FLOATS,
    }
)  # fmt: skip
TEXT_DTYPE = pd.StringDtype("pyarrow")
TIME_DTYPE = "datetime64[us, UTC]"

# (unit, meaning) per column; the unit is "" where the value has none.
DOCS: dict[str, tuple[str, str]] = {
    "study": ("", "study name (imported rows: the peer's run or directory name)"),
    "experiment_id": ("", "12 hex digits of the config hash: the same config has the same id"),
    "label": ("", "readable name from the swept values, e.g. `batch_size=8 · backend=vllm`"),
    "cycle": ("", "repeat number of this experiment (0, 1, …)"),
    "status": ("", "`ok` or `failed` (then `error_*` say why)"),
    "runner": ("", "where it ran: `local`, `subprocess`, `docker`, `ray`, …"),
    "image": ("", "container image, for Docker runs"),
    "model": ("", "model id or local path"),
    "backend": ("", "`pytorch`, `vllm`, …"),
    "precision": ("", "weights/compute dtype: `fp32`, `fp16`, `bf16`, …"),
    "batch_size": ("", "prompts in flight"),
    "n_prompts": ("", "prompts in the prompt set"),
    "max_input_tokens": ("tokens", "prompt truncation limit"),
    "max_output_tokens": ("tokens", "generation limit per request"),
    "input_tokens": ("tokens", "real prompt tokens in the window (no padding)"),
    "output_tokens": ("tokens", "generated tokens in the window, up to and including EOS"),
    "window_s": ("s", "measured window: first request's submission to the last token"),
    "throughput_output_tok_s": ("tok/s", "output tokens ÷ window"),
    "throughput_total_tok_s": ("tok/s", "(input + output tokens) ÷ window"),
    "ttft_ms_p50": ("ms", "median time to first token, from each request's submission"),
    "itl_ms_p50": ("ms", "median gap between consecutive tokens of a request"),
    "latency_s_p50": ("s", "median end-to-end request latency"),
    "energy_source": ("", "`nvml`, `rapl`, `estimate`, `none` (peers: as they report it)"),
    "gpu_count": ("", "GPUs measured"),
    "energy_gross_j": ("J", "energy over the window, measured devices summed"),
    "idle_power_w": ("W", "idle power measured just before the window, devices summed"),
    "energy_net_j": ("J", "Σ (gross − idle power × window) over devices, clamped once at 0"),
    "energy_per_output_token_j": ("J/token", "gross energy ÷ output tokens"),
    "energy_per_output_token_net_j": ("J/token", "net energy ÷ output tokens"),
    "energy_per_token_j": ("J/token", "gross energy ÷ (input + output tokens)"),
    "energy_per_request_j": ("J", "gross energy ÷ requests"),
    "avg_power_w": ("W", "gross energy ÷ window"),
    "quality_ok": ("", "succeeded and carries no quality flag"),
    "warnings": ("", "list of sentences behind the flags and other notes"),
    "gpu_name": ("", "GPU model"),
    "driver_version": ("", "NVIDIA driver version"),
    "llem_nb_version": ("", "llem_nb version that measured it"),
    "config_hash": ("", "SHA-256 of the fields that change the measurement"),
    "error_type": ("", "exception type of a failed row"),
    "error_message": ("", "error message of a failed row"),
    "error_category": ("", "failure class: `error`, `oom`, `timeout`, `crashed`, `disk`, …"),
    "dataset": ("", "prompt dataset"),
    "decoder.temperature": ("", "sampling temperature"),
    "ttft_ms_p90": ("ms", "90th percentile time to first token"),
    "ttft_ms_p99": ("ms", "99th percentile time to first token"),
    "queue_ms_p50": ("ms", "median engine queueing (part of TTFT), where the engine queues"),
    "queue_ms_p90": ("ms", "90th percentile engine queueing"),
    "itl_ms_p90": ("ms", "90th percentile inter-token latency"),
    "itl_ms_p99": ("ms", "99th percentile inter-token latency"),
    "latency_s_mean": ("s", "mean end-to-end request latency"),
    "load_s": ("s", "model load time (outside the window)"),
    "warmup_s": ("s", "warm-up time (outside the window)"),
    "batching": ("", "`static` or `continuous`"),
    "n_requests": ("", "requests in the window, repeats included"),
    "quality_flags": ("", "list of flag names (`llem_nb.measure.quality.FLAGS`)"),
    "started_at": ("", "start time (UTC)"),
    "finished_at": ("", "end time (UTC)"),
    "runner_source": ("", "where the runner choice came from: env, study, user config, …"),
    "image_digest": ("", "container image digest"),
    "counter_vs_power_ratio": ("", "energy counter ÷ power integral, like with like (cross-check)"),
    "prefill_energy_j": ("J", "energy of the prefill phases (static batches)"),
    "decode_energy_j": ("J", "energy of the decode phases (static batches)"),
    "phase_method": ("", "how the prefill/decode split was made"),
    "flops_estimate": ("FLOP", "estimated floating-point operations"),
    "co2_g": ("g", "CO₂ of the gross energy at the configured intensity"),
    "co2_net_g": ("g", "CO₂ of the net energy"),
    "timeseries_path": ("", "Parquet file of the window's power timeseries"),
    "model_reused": ("", "the model was already loaded by an earlier point (no load in this run)"),
    "baseline_reused": ("", "the idle baseline was measured earlier and reused"),
    "baseline_age_s": ("s", "age of the idle baseline when this window started"),
    "window_repeats": ("", "passes over the prompts to reach `min_window_s`"),
    "origin": (
        "",
        "who measured it: `llem_nb`, `llenergymeasure`, `optimum-benchmark`, `ml.energy`",
    ),
    "energy_boundary": ("", "domains measured, e.g. `gpu+cpu+dram` (`energy.domains`)"),
    "energy_gpu_j": ("J", "GPU domain gross energy (= `energy_gross_j` on a GPU run)"),
    "energy_gpu_net_j": ("J", "GPU domain net: gross − its idle power × window, clamped once"),
    "energy_cpu_j": ("J", "CPU package domain gross energy (RAPL packages; psys if none)"),
    "energy_cpu_net_j": ("J", "CPU domain net of its own idle baseline, clamped once"),
    "energy_dram_j": ("J", "DRAM domain gross energy (RAPL dram subzones)"),
    "energy_dram_net_j": ("J", "DRAM domain net of its own idle baseline, clamped once"),
    "energy_boundary_j": ("J", "gross energy summed over the measured domains"),
    "energy_boundary_net_j": ("J", "net energy summed over the measured domains"),
    "energy_facility_j": ("J", "modelled, not measured: boundary gross × `carbon.pue`"),
    **{
        f"energy_per_output_token_{d}_{k}": (
            "J/token",
            f"{d if d != 'boundary' else 'boundary total'} {g} energy ÷ output tokens",
        )
        for d in ("gpu", "cpu", "dram", "boundary")
        for k, g in (("j", "gross"), ("net_j", "net"))
    },
}

DOCS.update(SERVING_DOCS)

POSITIVE = frozenset(
    {name for name, (unit, _) in DOCS.items() if unit in {"J", "J/token", "W", "s", "ms", "tok/s"}}
)
"""Quantities that cannot be negative: their intervals are built on the log scale."""

MINIMIZED_PREFIXES = ("energy", "ttft", "itl", "latency", "queue", "avg_power", "co2", "window")


def kind(name: str) -> str:
    """``float``, ``int``, ``bool``, ``category``, ``time``, ``list`` or ``text``."""
    if name in FLOATS:
        return "float"
    if name in INTS:
        return "int"
    if name in BOOLS:
        return "bool"
    if name in MAYBE_BOOLS:
        return "boolean"
    if name in CATEGORIES:
        return "category"
    if name in TIMES:
        return "time"
    if name in LISTS:
        return "list"
    return "text"


class Units(dict):  # type: ignore[type-arg]
    """``df.attrs["units"]``: column → unit, read-only.

    pandas deep-copies ``attrs`` into every frame and Series an operation returns; a
    read-only mapping can be shared instead (``__deepcopy__`` returns itself), so the
    units cost nothing per ``df[col]`` or ``iterrows`` step.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> Units:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Units, (dict(self),))

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("df.attrs['units'] is read-only; copy it with dict(...) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]


_UNITS = Units({name: unit for name, (unit, _) in DOCS.items() if unit})


def units() -> Units:
    """``df.attrs["units"]``: the unit of every column that has one."""
    return _UNITS


def higher_is_better(metric: str) -> bool:
    """Throughputs are maximised; energy, power, latencies and times minimised."""
    return metric.startswith("throughput") or metric.endswith("_tok_s")


_KIND_TEXT = {
    "float": "float",
    "int": "Int64",
    "bool": "bool",
    "boolean": "boolean",
    "category": "category",
    "time": "datetime (UTC)",
    "list": "list",
    "text": "string",
}


def columns_markdown() -> str:
    """The README "Columns" table: every column in frame order, its type, unit and meaning."""
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    for name in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS):
        unit, meaning = DOCS[name]
        dtype = "int" if name == "cycle" else _KIND_TEXT[kind(name)]
        lines.append(f"| `{name}` | {dtype} | {unit} | {meaning} |")
    return "\n".join(lines)


# --- typing: raw values (lists or object arrays) → the column's pandas type -------------


def floats(values: Sequence[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        coerced = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def ints(values: Sequence[Any]) -> Any:
    try:
        return pd.array(list(values), dtype="Int64")
    except (TypeError, ValueError):
        as_float = floats(values)
        whole = np.isnan(as_float) | (as_float == np.round(as_float))
        if whole.all():
            return pd.array(as_float, dtype="Int64")
        return as_float


def text(values: Sequence[Any]) -> Any:
    """Text with ``pd.NA`` for missing (None or NaN), on every pandas."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    missing = pd.isna(arr)
    if missing.any():
        arr[missing] = None
    return pd.array(arr, dtype=TEXT_DTYPE)


def categorical(values: Sequence[Any]) -> pd.Categorical:
    """A categorical with sorted text categories (object-dtype, the same on pandas 2 and 3)."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    return _sorted_categorical(codes, [str(u) for u in uniques])


def recategorize(values: pd.Categorical) -> pd.Categorical:
    """The same categorical with sorted object-dtype categories (as ``categorical`` makes)."""
    return _sorted_categorical(np.asarray(values.codes), [str(c) for c in values.categories])


def _sorted_categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    order = sorted(range(len(names)), key=names.__getitem__)
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    codes = np.where(codes >= 0, remap[codes] if len(remap) else codes, -1)
    categories = pd.Index([names[i] for i in order], dtype=object)
    dtype = pd.CategoricalDtype(categories, ordered=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)  # type: ignore[return-value]


def times(values: Sequence[Any]) -> Any:
    """ISO 8601 text (or datetimes) → ``datetime64[us, UTC]``; text without a zone is UTC."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    missing = pd.isna(arr)
    stamps = [v for v in arr[~missing]]
    if all(type(v) is str and v.endswith("+00:00") for v in stamps):
        arr[~missing] = [v[:-6] for v in stamps]
        arr[missing] = "NaT"
        try:
            naive = np.array(arr, dtype="datetime64[us]")
            return pd.Series(naive).dt.tz_localize("UTC").array
        except ValueError:
            arr[~missing] = stamps
            arr[missing] = None
    arr[missing] = None
    parsed = pd.to_datetime(
        pd.Series(arr, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    return parsed.astype(TIME_DTYPE).array  # type: ignore[call-overload]


def lists(values: Iterable[Any]) -> np.ndarray:
    """A column of Python lists (object dtype): ``"flag" in row``, ``.explode()`` work."""
    items = [
        v if type(v) is list else list(v) if isinstance(v, (tuple, np.ndarray)) else []
        for v in values
    ]
    return np.fromiter(items, dtype=object, count=len(items))


def infer(values: Sequence[Any]) -> Any:
    """A swept key's column: Int64, float, boolean or text by its values, else objects."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    types = {type(v) for v in present}
    if types <= {int}:
        return pd.array(list(values), dtype="Int64") if present else text(values)
    if types <= {int, float}:
        return floats(values)
    if types <= {bool}:
        return pd.array(list(values), dtype="boolean")
    if types <= {str}:
        return text(values)
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def typed(name: str, values: Sequence[Any]) -> Any:
    """``values`` as column ``name``'s type (``kind``)."""
    how = kind(name)
    if how == "float":
        return floats(values)
    if how == "int":
        return ints(values)
    if how == "bool":
        return np.array([bool(v) for v in values], dtype=bool)
    if how == "boolean":
        return pd.array(
            [v if isinstance(v, (bool, np.bool_)) else None for v in values], dtype="boolean"
        )
    if how == "category":
        return categorical(values)
    if how == "time":
        return times(values)
    if how == "list":
        return lists(values)
    return text(values)
