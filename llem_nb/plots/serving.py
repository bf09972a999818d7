"""Figures of served runs against the request rate offered: energy per token and latency.

- ``energy_vs_rate``: J/token over the steady state against offered requests/s, one line
  per configuration (every swept key but the rate); filled markers where the SLO
  attainment reached ``attainment``, hollow where it did not.
- ``latency_vs_rate``: p90 TTFT and ITL against offered requests/s, the SLO targets as
  horizontal lines.

An ``inf`` rate (every request at once) sits right of the highest finite rate, ticked
``inf``. Means over cycles; offline rows are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.plots.base import (
    DATA_FIX,
    finish,
    group_name,
    label,
    mark_estimates,
    new_axes,
    new_figure,
    note,
    numeric,
    require_frame,
    style,
)
from llem_nb.results.columns import CANONICAL_COLUMNS, EXTRA_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RATE = "offered_rate_rps"
STEADY = "energy_per_output_token_j"
RUN = "energy_per_output_token_j_run"
RATE_KEY = "workload.request_rate"
_KNOWN = frozenset((*CANONICAL_COLUMNS, *EXTRA_COLUMNS))
_LABELS = {
    "ttft_ms_p90": "TTFT p90 [ms]",
    "ttft_ms_p99": "TTFT p99 [ms]",
    "itl_ms_p90": "inter-token latency p90 [ms]",
    "itl_ms_p99": "inter-token latency p99 [ms]",
    "latency_s_p90": "request latency p90 [s]",
}


def served_rows(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """Successful serving rows, ``x`` = the offered rate with ``inf`` placed past the rest."""
    df = require_frame(df, what)
    if "achieved_rate_rps" not in df.columns:
        raise LlemError(f"{what}: the DataFrame has no serving columns", fix=DATA_FIX)
    ok = df[(df["status"] == "ok") & df["achieved_rate_rps"].notna()]
    if ok.empty:
        raise LlemError(
            f"{what}: no successful serving rows (workload.kind='serving')",
            fix="run a study with workload={'kind': 'serving', ...} and a request_rate sweep",
        )
    out = numeric(ok, [RATE])
    finite = out[RATE].dropna()
    inf_x = float(finite.max()) * 2 if not finite.empty else 1.0
    out["_x"] = out[RATE].fillna(inf_x)
    out.attrs["inf_x"] = inf_x if out[RATE].isna().any() else None
    return out


def _line_keys(data: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    if by is not None:
        return [by] if isinstance(by, str) else list(by)
    swept = [c for c in data.columns if c not in _KNOWN and c != RATE_KEY and c != "_x"]
    return [c for c in swept if not c.startswith("_") and _varies(data[c])] or ["model", "backend"]


def _varies(column: pd.Series) -> bool:
    try:
        return bool(column.nunique(dropna=False) > 1)
    except TypeError:  # a nested mapping (a whole section as one point value) is not a key
        return False


def _rate_axis(axes: Axes, data: pd.DataFrame) -> None:
    xs = sorted(set(data["_x"]))
    if len(xs) > 1 and xs[0] > 0:
        axes.set_xscale("log", base=2)
    inf_x = data.attrs.get("inf_x")
    axes.set_xticks(xs, ["inf" if inf_x is not None and x == inf_x else f"{x:g}" for x in xs])
    axes.minorticks_off()
    axes.set_xlabel("offered request rate [req/s]")


def _means(group: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return group.groupby("_x", sort=True)[columns].mean(numeric_only=True).reset_index()


def energy_vs_rate(
    df: pd.DataFrame,
    y: str = STEADY,
    *,
    by: str | Sequence[str] | None = None,
    attainment: float = 0.9,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Energy per output token (steady state) against the offered rate, one line per config.

    Where no row has steady-state energy (a meter without a per-read timeline, such as
    the CPU estimate), the whole-run figure is drawn and the axes say so.
    """
    data = served_rows(df, "energy_vs_rate")
    used = y
    if y == STEADY and data[STEADY].isna().all() and RUN in data.columns:
        used = RUN
    if data[used].isna().all():
        raise LlemError(f"energy_vs_rate: no row has {used!r} measured", fix=DATA_FIX)
    fig, axes = new_axes(ax)
    keys = _line_keys(data, by)
    for key, group in data.groupby(keys, dropna=False, sort=True, observed=True):
        cols = [used, *(["slo_attainment"] if "slo_attainment" in group else [])]
        means = _means(group, cols)
        line = axes.plot(
            means["_x"], means[used], **style({"marker": "o", "label": group_name(key)}, kwargs)
        )[0]
        if "slo_attainment" in means:
            missed = means["slo_attainment"] < attainment
            axes.plot(
                means["_x"][missed], means[used][missed], linestyle="none", marker="o",
                markerfacecolor="white", markeredgecolor=line.get_color(),
            )  # fmt: skip
    if "slo_attainment" in data and data["slo_attainment"].notna().any():
        note(axes, f"hollow: SLO attainment below {attainment:.0%}")
    _rate_axis(axes, data)
    axes.set_ylabel(label(STEADY) + (" (steady state)" if used == STEADY else " (whole run)"))
    if used != y:
        axes.set_title("steady-state energy not resolvable by this meter: whole run", fontsize=9)
    mark_estimates(axes, data)
    finish(axes)
    return fig


def latency_vs_rate(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("ttft_ms_p90", "itl_ms_p90"),
    *,
    slo: dict[str, float] | None = None,
    by: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> Figure:
    """Latency percentiles against the offered rate, one panel per metric; ``slo`` maps a
    metric to its target, drawn as a dashed line (e.g. ``{"ttft_ms_p90": 500}``)."""
    data = served_rows(df, "latency_vs_rate")
    missing = [m for m in metrics if m not in data.columns]
    if missing:
        raise LlemError(f"latency_vs_rate: no column(s) {missing}", fix=DATA_FIX)
    fig = new_figure((4.2 * len(metrics), 3.8))
    keys = _line_keys(data, by)
    for i, metric in enumerate(metrics):
        axes = fig.add_subplot(1, len(metrics), i + 1)
        for key, group in data.groupby(keys, dropna=False, sort=True, observed=True):
            means = _means(group, [metric])
            axes.plot(
                means["_x"], means[metric],
                **style({"marker": "o", "label": group_name(key)}, kwargs),
            )  # fmt: skip
        target = (slo or {}).get(metric)
        if target is not None and not math.isnan(target):
            axes.axhline(target, linestyle="--", color="#a33", label=f"SLO {target:g}")
        _rate_axis(axes, data)
        axes.set_ylabel(_LABELS.get(metric, label(metric)))
        finish(axes)
    return fig
