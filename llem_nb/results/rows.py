"""Typed result rows: raw column values → the DataFrame of ``load_results``, and back.

``build_frame`` types raw values (``results.columns``), derives the per-token and
per-second figures from the measured base quantities (vectorised; NaN where an input is
missing), names each row (``label``) and orders rows and columns. ``combine`` joins
typed frames (several directories, the Parquet index, imported peers) and ``conform``
puts a column that went through a concat or a Parquet round trip back in its type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it
import pandas as pd  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.results import columns as C
from llem_nb.results.columns import CANONICAL_COLUMNS, EXTRA_COLUMNS
from llem_nb.results.labels import point_label

_PER_TOKEN = {
    f"energy_per_output_token_{d}_{k}": f"energy_{d}_{k}"
    for d in ("gpu", "cpu", "dram", "boundary")
    for k in ("j", "net_j")
}
"""Boundary per-token columns and the base quantity each divides by output tokens."""
BOUNDARY_BASE = (
    "energy_boundary", *_PER_TOKEN.values(), "energy_facility_j",
)  # fmt: skip
DERIVED = (
    "throughput_output_tok_s", "throughput_total_tok_s", "energy_per_output_token_j",
    "energy_per_output_token_net_j", "energy_per_token_j", "energy_per_request_j", "avg_power_w",
    *_PER_TOKEN,
)  # fmt: skip
_SWEPT_DTYPES = frozenset({"float64", "Int64", "boolean", str(C.TEXT_DTYPE)})


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where the denominator is missing or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return out


def build_frame(raw: Mapping[str, Sequence[Any]], points: list[dict[str, Any]]) -> pd.DataFrame:
    """Typed frame from raw column values: derived figures, labels, swept columns, sorted rows.

    ``raw`` holds base quantities; a derived column it also holds (an importer's figure
    that has no base quantities behind it) fills that column where it is not None.
    """
    n = len(points)
    order = sorted(
        range(n),
        key=lambda i: (str(raw["study"][i]), str(raw["experiment_id"][i]), raw["cycle"][i] or 0),
    )

    identity = order == list(range(n))

    def pick(values: Sequence[Any]) -> Sequence[Any]:
        return values if identity else [values[i] for i in order]

    points = list(pick(points))
    cols: dict[str, Any] = {}
    for name, values in raw.items():
        if name in ("cycle", "label") or name in DERIVED:
            continue
        cols[name] = C.typed(name, pick(values))
    cols["cycle"] = np.array([c or 0 for c in pick(raw["cycle"])], dtype=np.int64)
    status = pick(raw["status"])
    flags = pick(raw["quality_flags"])
    cols["quality_ok"] = np.array(
        [s == "ok" and not q for s, q in zip(status, flags, strict=True)], dtype=bool
    )
    _derive(cols, {k: pick(raw[k]) for k in DERIVED if k in raw})
    labels = pick(raw["label"]) if "label" in raw else [None] * n
    cols["label"] = C.text(_labels(labels, points, pick(raw["model"])))
    return _assemble(cols, points)


def _labels(
    given: Sequence[Any], points: Sequence[dict[str, Any]], models: Sequence[Any]
) -> list[str]:
    """Each row's label: the importer's, else from its swept values (cycles share theirs)."""
    cache: dict[Any, str] = {}
    out = []
    for label, point, model in zip(given, points, models, strict=True):
        if label is None:
            try:
                key = (model, *point.items()) if not point else tuple(point.items())
                label = cache.get(key)
                if label is None:
                    label = cache[key] = point_label(point, model=model)
            except TypeError:  # a list value: not hashable
                label = point_label(point, model=model)
        out.append(label)
    return out


def _derive(cols: dict[str, Any], given: Mapping[str, Sequence[Any]]) -> None:
    inp, out, window = cols["input_tokens"], cols["output_tokens"], cols["window_s"]
    gross = cols["energy_gross_j"]
    derived = {
        "throughput_output_tok_s": _ratio(out, window),
        "throughput_total_tok_s": _ratio(inp + out, window),
        "energy_per_output_token_j": _ratio(gross, out),
        "energy_per_output_token_net_j": _ratio(cols["energy_net_j"], out),
        "energy_per_token_j": _ratio(gross, inp + out),
        "energy_per_request_j": _ratio(gross, cols["n_requests"]),
        "avg_power_w": _ratio(gross, window),
        **{name: _ratio(cols[base], out) for name, base in _PER_TOKEN.items()},
    }
    for name, values in given.items():
        override = C.floats(values)
        derived[name] = np.where(np.isnan(override), derived[name], override)
    cols.update(derived)


def _assemble(cols: dict[str, Any], points: list[dict[str, Any]]) -> pd.DataFrame:
    ordered = {name: cols[name] for name in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS)}
    swept: dict[str, None] = {}
    for point in points:
        swept.update(dict.fromkeys(point))
    for key in swept:
        if key not in ordered:
            values = [point.get(key) for point in points]
            ordered[key] = C.typed(key, values) if key in C.DOCS else C.infer(values)
    for name, values in cols.items():
        ordered.setdefault(name, values)
    frame = pd.DataFrame(ordered, copy=False)
    frame.columns = pd.Index(list(ordered), dtype=object)
    frame.attrs["units"] = C.units()
    return frame


def combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from several typed ones: columns united, types kept, rows sorted."""
    frames = [f for f in frames if len(f)] or frames[:1]
    if not frames:
        skip = {*DERIVED, "label", "quality_ok"}
        names = [n for n in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS) if n not in skip]
        return build_frame({name: () for name in names}, [])
    if len(frames) == 1:
        return frames[0]
    merged = pd.concat(frames, ignore_index=True, sort=False)
    merged = merged.sort_values(["study", "experiment_id", "cycle"], kind="stable")
    merged = merged.reset_index(drop=True)
    out = {name: conform(name, merged[name]) for name in merged.columns}
    frame = pd.DataFrame(out, copy=False)
    frame.columns = pd.Index(list(out), dtype=object)
    frame.attrs["units"] = C.units()
    return frame


def conform(name: str, column: pd.Series) -> Any:
    """A column (after a concat or a Parquet round trip) back in its canonical type."""
    how = C.kind(name) if (name in C.DOCS or name == "cycle") else "swept"
    dtype = column.dtype
    if name == "cycle":
        return column.to_numpy(dtype=np.int64)
    if how == "float" and dtype == np.float64:
        return column.to_numpy()
    if how == "int" and str(dtype) == "Int64":
        return column.array
    if how == "text" and dtype == C.TEXT_DTYPE:
        return column.array
    if how == "time" and str(dtype) == C.TIME_DTYPE:
        return column.array
    if how == "bool" and dtype == np.dtype(bool):
        return column.to_numpy()
    if how == "boolean" and str(dtype) == "boolean":
        return column.array
    if how == "category" and isinstance(dtype, pd.CategoricalDtype):
        return C.recategorize(column.array)
    if how == "swept" and str(dtype) in _SWEPT_DTYPES:
        return column.array if str(dtype) != "float64" else column.to_numpy()
    values = [None if _missing(v) else v for v in column.astype(object).tolist()]
    return C.infer(values) if how == "swept" else C.typed(name, values)


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and value != value)
    )
