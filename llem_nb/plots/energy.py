"""Matplotlib figures of energy per token, read from a results DataFrame only.

- ``energy_per_token``: energy per output token vs batch size, one line per model ×
  backend, gross (solid) and net (dashed), error bars = 95 % t interval over cycles.
- ``throughput_vs_energy``: one point per configuration, the Pareto front highlighted.
- ``explore``: any column against any other, by hue and facet (the explorer's view).

Each accepts ``reference=`` where a published ML.ENERGY figure is comparable; those
points are drawn hollow and grey and labelled as a different method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.plots.base import (
    estimated,
    finish,
    group_keys,
    group_name,
    label,
    mark_estimates,
    new_axes,
    note,
    require_frame,
    usable,
)
from llem_nb.results.reference import overlay_reference

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


GROSS = "energy_per_output_token_j"
NET = "energy_per_output_token_net_j"
ReferenceArg = bool | Mapping[str, Any]


def energy_per_token(
    df: pd.DataFrame,
    x: str = "batch_size",
    hue: str = "model",
    y: str = GROSS,
    *,
    net: bool = True,
    reference: ReferenceArg = False,
    ax: Any = None,
) -> Figure:
    """Energy per output token against ``x``: one line per ``hue`` × backend.

    Gross is solid; with ``net`` (default) the idle-subtracted figure is dashed in the
    same colour, or a note says why it was not measured. Error bars: 95 % t confidence
    interval over cycles (``llem_nb.summarize``); none for a single cycle. Estimated
    (not measured) rows are a separate, hollow-marked line, never averaged with measured
    ones.
    """
    data = usable(df, [x, y], "energy_per_token")
    fig, axes = new_axes(ax)
    keys = group_keys(data, hue)
    groups = data.groupby(keys, dropna=False, sort=True, observed=True) if keys else [(y, data)]
    net_drawn = False
    for key, group in groups:
        flags = estimated(group)
        like = None
        for part, suffix in ((group[~flags], ""), (group[flags], " (estimate)")):
            if part.empty:
                continue
            name = group_name(key) + suffix
            hollow = bool(suffix)
            line = _mean_std_line(axes, part, x, y, name, "-", like, hollow=hollow)
            like = line if like is None else like
            if net and y == GROSS and NET in part.columns and part[NET].notna().any():
                net_part = part.dropna(subset=[NET])
                _mean_std_line(axes, net_part, x, NET, f"{name} (net)", "--", line, hollow=hollow)
                net_drawn = True
    if net and y == GROSS and not net_drawn:
        note(axes, "net energy: not measured (no idle baseline for this energy source)")
    axes.set_xlabel(label(x))
    axes.set_ylabel(label(y) + (" — solid gross, dashed net" if net_drawn else ""))
    if x == "batch_size" and data[x].min() > 0:
        axes.set_xscale("log", base=2)
    if reference:
        overlay_reference(
            axes,
            data,
            reference,
            x_col="max_num_seqs",
            what=f"x={x!r}, y={y!r}",
            ok=(x == "batch_size" and y == GROSS),
        )
    mark_estimates(axes, data)
    finish(axes)
    return fig


def _mean_std_line(
    axes: Axes,
    group: pd.DataFrame,
    x: str,
    y: str,
    name: str,
    style: str,
    like: Any = None,
    *,
    hollow: bool = False,
) -> Any:
    from llem_nb.results.stats import summarize

    stats = summarize(group, by=x, metrics=[y])
    kwargs: dict[str, Any] = {"color": like.lines[0].get_color()} if like is not None else {}
    if hollow:
        kwargs["markerfacecolor"] = "none"
    return axes.errorbar(
        stats[x],
        stats[f"{y}_mean"],
        yerr=[
            (stats[f"{y}_mean"] - stats[f"{y}_ci95_low"]).fillna(0.0),
            (stats[f"{y}_ci95_high"] - stats[f"{y}_mean"]).fillna(0.0),
        ],
        marker="o",
        linestyle=style,
        capsize=3,
        label=name,
        **kwargs,
    )


def pareto_front(df: pd.DataFrame, x: str = "throughput_output_tok_s", y: str = GROSS) -> pd.Series:
    """True for rows no other row beats on both: higher ``x`` and lower ``y`` (ties kept)."""
    import numpy as np
    import pandas as pd

    values = df[[x, y]].to_numpy(dtype=float)
    front = np.zeros(len(values), dtype=bool)
    best_y = np.inf
    for i in sorted(range(len(values)), key=lambda i: (-values[i, 0], values[i, 1])):
        if np.isnan(values[i]).any():
            continue
        if values[i, 1] <= best_y:
            front[i] = True
            best_y = values[i, 1]
    return pd.Series(front, index=df.index, name="pareto")


def config_means(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per configuration (experiment_id): the mean of ``columns`` over cycles."""
    if "experiment_id" not in data.columns:
        return data
    first = data.groupby("experiment_id", sort=False).first()
    first[columns] = data.groupby("experiment_id", sort=False)[columns].mean()
    return first.reset_index()


def throughput_vs_energy(
    df: pd.DataFrame,
    hue: str = "model",
    x: str = "throughput_output_tok_s",
    y: str = GROSS,
    *,
    reference: ReferenceArg = False,
    ax: Any = None,
) -> Figure:
    """Each configuration (mean over cycles) as a point; the Pareto front is outlined.

    Faster (right) and cheaper (down) is better; labels give the batch size. A
    configuration with an estimated (not measured) cycle is drawn hollow.
    """
    rows = usable(df, [x, y], "throughput_vs_energy")
    data = config_means(rows.assign(_estimate=estimated(rows)), [x, y, "_estimate"])
    data["_estimate"] = data["_estimate"] > 0
    fig, axes = new_axes(ax)
    keys = group_keys(data, hue)
    groups = data.groupby(keys, dropna=False, sort=True, observed=True) if keys else [(y, data)]
    for i, (key, group) in enumerate(groups):
        colour, name = f"C{i % 10}", group_name(key)
        measured, estimate = group[~group["_estimate"]], group[group["_estimate"]]
        if not measured.empty:
            axes.scatter(measured[x], measured[y], color=colour, label=name, alpha=0.85, zorder=3)
        if not estimate.empty:
            axes.scatter(
                estimate[x], estimate[y], facecolors="none", edgecolors=colour,
                label=None if not measured.empty else name, zorder=3,
            )  # fmt: skip
    front = data[pareto_front(data, x, y)].sort_values(x)
    axes.plot(
        front[x],
        front[y],
        color="#d62728",
        linewidth=1.5,
        zorder=2,
        label=f"Pareto front ({len(front)} of {len(data)})",
    )
    axes.scatter(
        front[x],
        front[y],
        s=160,
        facecolors="none",
        edgecolors="#d62728",
        linewidths=1.5,
        zorder=4,
    )
    if "batch_size" in data.columns:
        for _, row in data.iterrows():
            axes.annotate(
                f"bs {int(row['batch_size'])}",
                (row[x], row[y]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    axes.set_xlabel(label(x))
    axes.set_ylabel(label(y))
    if reference:
        overlay_reference(
            axes,
            data,
            reference,
            x_col="output_tok_per_s",
            what=f"x={x!r}, y={y!r}",
            ok=(x == "throughput_output_tok_s" and y == GROSS),
        )
    mark_estimates(axes, data)
    finish(axes)
    return fig


def explore(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    facet: str | None = None,
    *,
    max_facets: int = 6,
) -> Figure:
    """``y`` against ``x`` (mean ± std over repeated x), one series per ``hue``, one panel per
    ``facet`` value; a categorical ``x`` is placed at evenly spaced positions."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = require_frame(df, "explore")
    for column in (x, y, hue, facet):
        if column and column not in df.columns:
            raise LlemError(f"explore: no column {column!r}", fix="pick one of df.columns")
    if not pd.api.types.is_numeric_dtype(df[y]):
        raise LlemError(f"explore: y={y!r} is not numeric", fix="pick a numeric column for y")
    data = df.dropna(subset=[x, y]).copy()
    data[y] = data[y].astype("float64")
    if data.empty:
        raise LlemError(f"explore: {y!r} has no values in the selected rows")
    panels = sorted(data[facet].dropna().unique(), key=str) if facet else [None]
    if len(panels) > max_facets:
        raise LlemError(
            f"explore: facet {facet!r} has {len(panels)} values; at most {max_facets} panels",
            fix="pick a facet column with fewer distinct values",
        )
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, grid = plt.subplots(
        rows,
        cols,
        figsize=(4.6 * cols, 3.6 * rows),
        layout="constrained",
        squeeze=False,
        sharey=True,
    )
    numeric_x = pd.api.types.is_numeric_dtype(data[x])
    categories = sorted(data[x].dropna().astype(str).unique())
    for i, axes in enumerate(grid.flat):
        if i >= len(panels):
            axes.set_visible(False)
            continue
        part = data if panels[i] is None else data[data[facet] == panels[i]]
        groups = part.groupby(hue, dropna=False, sort=True, observed=True) if hue else [(y, part)]
        for key, group in groups:
            xs = (
                group[x].astype("float64")
                if numeric_x
                else group[x].astype(str).map(categories.index)
            )
            stats = group.assign(_x=xs).groupby("_x")[y].agg(["mean", "std"]).reset_index()
            axes.errorbar(
                stats["_x"],
                stats["mean"],
                yerr=stats["std"].fillna(0.0),
                marker="o",
                capsize=3,
                label=group_name(key),
            )
        if not numeric_x:
            axes.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        axes.set_xlabel(label(x))
        axes.set_ylabel(label(y))
        if panels[i] is not None:
            axes.set_title(f"{facet} = {group_name(panels[i])}", fontsize=9)
        finish(axes)
    return fig
