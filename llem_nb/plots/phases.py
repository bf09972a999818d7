"""Figures of where the energy goes inside an experiment: power over time, prefill vs decode."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.plots.base import (
    estimated,
    finish,
    group_keys,
    group_name,
    interval,
    label,
    mark_estimates,
    new_axes,
    require_frame,
    style,
)
from llem_nb.results.timeseries import load_timeseries

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Span = tuple[str, float, float]
_GPU_COLUMNS = ("gpu", "gpu_index", "device", "label")
_PHASE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
NO_TIMESERIES_FIX = (
    "timeseries are recorded with each result on a GPU host (NVML power polling); "
    "a CPU-only run or an older results dir has none"
)


def _load(source: Any) -> pd.DataFrame:
    """A timeseries DataFrame from itself, or via ``load_timeseries`` from a row/result."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    try:
        ts = load_timeseries(source)
    except LlemError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise LlemError(
            f"power_timeseries: no power timeseries for this result ({exc})",
            fix=NO_TIMESERIES_FIX,
        ) from None
    if ts is None:
        raise LlemError(
            "power_timeseries: this result has no power timeseries", fix=NO_TIMESERIES_FIX
        )
    return require_frame(ts, "power_timeseries")


def _spans(phases: Any) -> list[Span]:
    """Phases as (name, start_s, end_s) from a mapping, records, tuples or a DataFrame."""
    import pandas as pd

    if phases is None:
        return []
    if isinstance(phases, pd.DataFrame):
        phases = phases.to_dict("records")
    if isinstance(phases, Mapping):
        items = list(phases.items())
        if all(not isinstance(v, Iterable) for _, v in items):
            starts = sorted((float(v), str(k)) for k, v in items)
            return [(name, t0, starts[i + 1][0]) for i, (t0, name) in enumerate(starts[:-1])]
        return [(str(k), float(v[0]), float(v[1])) for k, v in items]
    out: list[Span] = []
    for item in phases:
        if isinstance(item, Mapping):
            name = item.get("name", item.get("phase", "phase"))
            t0 = item.get("start_s", item.get("t0"))
            t1 = item.get("end_s", item.get("t1"))
            out.append((str(name), float(t0), float(t1)))
        else:
            name, t0, t1 = item
            out.append((str(name), float(t0), float(t1)))
    return out


def _phase_column_spans(ts: pd.DataFrame) -> list[Span]:
    """Contiguous runs of the ``phase`` column as spans (empty names are outside any phase)."""
    if "phase" not in ts.columns:
        return []
    ordered = ts.sort_values("t_s")
    runs = (ordered["phase"] != ordered["phase"].shift()).cumsum()
    spans = []
    for _, part in ordered.groupby(runs):
        name = part["phase"].iloc[0]
        if isinstance(name, str) and name:
            spans.append((name, float(part["t_s"].iloc[0]), float(part["t_s"].iloc[-1])))
    return spans


def _attrs_window(ts: pd.DataFrame) -> tuple[float, float] | None:
    """``attrs["window"]`` (start, end), or ``attrs["window_s"]`` with t_s from the window start."""
    if ts.attrs.get("window"):
        start, end = ts.attrs["window"]
        return float(start), float(end)
    if ts.attrs.get("window_s"):
        return 0.0, float(ts.attrs["window_s"])
    return None


def _prefill_decode_spans(prefill: Any, window: tuple[float, float]) -> list[Span]:
    """Prefill intervals as given; decode = the rest of the window."""
    intervals = sorted((float(a), float(b)) for a, b in prefill)
    spans: list[Span] = [("prefill", a, b) for a, b in intervals]
    cursor = window[0]
    for a, b in intervals:
        if a > cursor:
            spans.append(("decode", cursor, a))
        cursor = max(cursor, b)
    if cursor < window[1]:
        spans.append(("decode", cursor, window[1]))
    return spans


def _default_spans(ts: pd.DataFrame, window: tuple[float, float] | None) -> list[Span]:
    if ts.attrs.get("phases"):
        return _spans(ts.attrs["phases"])
    if ts.attrs.get("phases_s") and window:
        return _prefill_decode_spans(ts.attrs["phases_s"], window)
    return _phase_column_spans(ts)


def power_timeseries(
    source: Any,
    *,
    window: tuple[float, float] | None = None,
    phases: Any = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Power per GPU over time (steps: each row's power holds until the next), the measured
    window and the phases shaded. ``kwargs`` go to each power line's ``Axes.plot``.

    ``source``: a timeseries DataFrame (``t_s``, ``power_w``, optionally ``gpu``), or a
    result row/``ExperimentResult`` that ``llem_nb.load_timeseries`` can read. Window and
    phases come from the arguments, else from ``ts.attrs`` (``window`` or ``window_s``;
    ``phases`` or the prefill intervals ``phases_s``), else from a ``phase`` column.
    """
    ts = _load(source)
    missing = [c for c in ("t_s", "power_w") if c not in ts.columns]
    if missing:
        raise LlemError(
            f"power_timeseries: the timeseries has no column(s) {missing} "
            f"(columns: {list(ts.columns)})",
            fix="pass the DataFrame from llem_nb.load_timeseries(...)",
        )
    ts = ts.dropna(subset=["t_s", "power_w"])
    if ts.empty:
        raise LlemError(
            "power_timeseries: the timeseries has no power samples", fix=NO_TIMESERIES_FIX
        )
    window = window or _attrs_window(ts)
    spans = _spans(phases) if phases is not None else _default_spans(ts, window)
    fig, axes = new_axes(ax, figsize=(7.2, 3.8))
    colours: dict[str, str] = {}
    for name, t0, t1 in spans:
        first = name not in colours
        colours.setdefault(name, _PHASE_COLOURS[len(colours) % len(_PHASE_COLOURS)])
        axes.axvspan(t0, t1, color=colours[name], alpha=0.12, label=name if first else None)
    if window:
        axes.axvline(float(window[0]), color="#333", linestyle=":", linewidth=1.2)
        axes.axvline(
            float(window[1]), color="#333", linestyle=":", linewidth=1.2, label="measured window"
        )
    gpu_col = next((c for c in _GPU_COLUMNS if c in ts.columns), None)
    groups = ts.groupby(gpu_col, sort=True, observed=True) if gpu_col else [("power", ts)]
    for key, part in groups:
        part = part.sort_values("t_s")
        name = "power" if gpu_col is None else str(key)
        name = name if name.lower().startswith(("gpu", "power")) else f"GPU {name}"
        ours = {
            "linewidth": 1.0, "drawstyle": "steps-post", "markersize": 3, "label": name,
            "marker": "o" if len(part) < 30 else None,
        }  # fmt: skip
        axes.plot(part["t_s"].astype(float), part["power_w"].astype(float), **style(ours, kwargs))
    axes.set_xlabel(label("t_s"))
    axes.set_ylabel(label("power_w"))
    finish(axes)
    return fig


def prefill_decode(
    df: pd.DataFrame,
    x: str = "batch_size",
    hue: str = "model",
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Energy per output token split into prefill and decode, stacked, per ``x`` and group.

    Needs ``prefill_energy_j`` and ``decode_energy_j`` (measured for static batches when a
    power timeseries exists); bars are means over cycles, the error bar on each stack is
    the 95 % confidence interval of their sum. Estimated (not measured) rows are separate,
    hollow bars. ``kwargs`` go to ``Axes.bar``.
    """
    import numpy as np

    from llem_nb.results.stats import summarize  # noqa: PLC0415 - keeps phases light (numpy)

    df = require_frame(df, "prefill_decode")
    cols = ["prefill_energy_j", "decode_energy_j"]
    missing = [c for c in [*cols, "output_tokens", x] if c not in df.columns]
    fix = (
        "the prefill/decode split is measured for static batches on a GPU host with a power "
        "timeseries; CPU estimates and continuous batching have no split"
    )
    if missing:
        raise LlemError(f"prefill_decode: the results have no column(s) {missing}", fix=fix)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    data = ok.dropna(subset=[*cols, "output_tokens", x])
    data = data[data["output_tokens"] > 0]
    if data.empty:
        raise LlemError(
            f"prefill_decode: prefill/decode energy is not measured in any of the {len(df)} rows",
            fix=fix,
        )
    tokens = data["output_tokens"].astype(float)
    data = data.assign(
        _prefill=data["prefill_energy_j"].astype(float) / tokens,
        _decode=data["decode_energy_j"].astype(float) / tokens,
    )
    data = data.assign(_total=data["_prefill"] + data["_decode"], _estimate=estimated(data))
    keys = group_keys(data, hue)
    xs = sorted(data[x].dropna().unique())
    groups = list(data.groupby([*keys, "_estimate"], dropna=False, sort=True, observed=True))
    fig, axes = new_axes(ax)
    width = 0.8 / len(groups)
    for i, (key, group) in enumerate(groups):
        *parts, est = key
        stats = summarize(group, by=x, metrics=["_prefill", "_decode", "_total"])
        stats = stats.set_index(x).reindex(xs)
        prefill = stats["_prefill_mean"].fillna(0).to_numpy(dtype=float)
        decode = stats["_decode_mean"].fillna(0).to_numpy(dtype=float)
        pos = np.arange(len(xs)) - 0.4 + width * (i + 0.5)
        name = (group_name(tuple(parts)) if parts else "all") + (" (estimate)" if est else "")
        colour = f"C{i % 10}"
        fill: dict[str, Any] = (
            {"facecolor": "none", "edgecolor": colour} if est else {"color": colour}
        )
        axes.bar(pos, decode, width, **style({"label": f"{name}: decode", **fill}, kwargs))
        axes.bar(
            pos, prefill, width, bottom=decode,
            **style({"alpha": 0.45, "hatch": "//", "label": f"{name}: prefill", **fill}, kwargs),
        )  # fmt: skip
        axes.errorbar(
            pos, prefill + decode, yerr=interval(stats.reset_index(), "_total"),
            fmt="none", ecolor="#333", elinewidth=0.8, capsize=2,
        )  # fmt: skip
    axes.set_xticks(range(len(xs)), [str(v) for v in xs])
    axes.set_xlabel(label(x))
    axes.set_ylabel("energy per output token [J] (decode + prefill, 95 % CI)")
    mark_estimates(axes, data)
    finish(axes)
    return fig
