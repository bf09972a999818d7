"""Matplotlib figures of energy per token, read from a results DataFrame only.

- ``energy_per_token``: energy per output token vs batch size, one line per model ×
  backend, gross (solid) and net (dashed).
- ``throughput_vs_energy``: one point per configuration, the Pareto front highlighted.
- ``explore``: any column against any other, by hue and facet (the explorer's view).

Every error bar is the 95 % Student-t confidence interval over cycles, taken from
``llem_nb.summarize`` (none for a single cycle). Each function takes ``ax=`` (draw into
your own axes) and ``**kwargs`` for its main matplotlib call. ``reference=`` adds the
published ML.ENERGY figures where they are comparable, hollow and grey, labelled as a
different method; ``llem_nb.plots.reference`` compares them properly.
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
    interval,
    label,
    log_axis,
    mark_estimates,
    new_axes,
    new_figure,
    note,
    require_frame,
    style,
    usable,
)
from llem_nb.plots.published import overlay_published

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
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Energy per output token against ``x``: one line per ``hue`` × backend.

    Gross is solid; with ``net`` (default) the idle-subtracted figure is dashed in the
    same colour, or a note says why it was not measured. Error bars: 95 % confidence
    interval over cycles. Estimated (not measured) rows are a separate, hollow-marked
    line, never averaged with measured ones. ``kwargs`` go to ``Axes.errorbar``.
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
            line = _ci_line(axes, part, x, y, name, "-", like, hollow=hollow, kwargs=kwargs)
            like = line if like is None else like
            if net and y == GROSS and NET in part.columns and part[NET].notna().any():
                net_part = part.dropna(subset=[NET])
                _ci_line(
                    axes, net_part, x, NET, f"{name} (net)", "--", line,
                    hollow=hollow, kwargs=kwargs,
                )  # fmt: skip
                net_drawn = True
    if net and y == GROSS and not net_drawn:
        note(axes, "net energy: not measured (no idle baseline for this energy source)")
    axes.set_xlabel(label(x))
    axes.set_ylabel(label(y) + (" — solid gross, dashed net" if net_drawn else ""))
    if x == "batch_size" and data[x].min() > 0:
        log_axis(axes, "x")
    if reference:
        overlay_published(
            axes, data, reference, x_col="avg_batch", what=f"x={x!r}, y={y!r}",
            ok=(x == "batch_size" and y == GROSS),
        )  # fmt: skip
    mark_estimates(axes, data)
    finish(axes)
    return fig


def _ci_line(
    axes: Axes,
    group: pd.DataFrame,
    x: str,
    y: str,
    name: str,
    linestyle: str,
    like: Any = None,
    *,
    hollow: bool = False,
    kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Mean of ``y`` per ``x`` with its 95 % interval as error bars."""
    from llem_nb.results.stats import summarize  # noqa: PLC0415 - keeps energy light (numpy)

    stats = summarize(group, by=x, metrics=[y]).dropna(subset=[f"{y}_mean"])
    ours: dict[str, Any] = {"marker": "o", "linestyle": linestyle, "capsize": 3, "label": name}
    if like is not None:
        ours["color"] = like.lines[0].get_color()
    if hollow:
        ours["markerfacecolor"] = "none"
    return axes.errorbar(
        stats[x].astype(float), stats[f"{y}_mean"], yerr=interval(stats, y),
        **style(ours, kwargs or {}),
    )  # fmt: skip


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
    groups = data.groupby("experiment_id", sort=False, observed=True)
    first = groups.first()
    first[columns] = groups[columns].mean()
    return first.reset_index()


def _config_intervals(data: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per configuration: 95 % interval error lengths of ``x`` and ``y`` (0 for one cycle)."""
    import pandas as pd

    from llem_nb.results.stats import summarize  # noqa: PLC0415 - keeps energy light (numpy)

    if "experiment_id" not in data.columns:
        return pd.DataFrame(columns=["experiment_id"])
    stats = summarize(data, by="experiment_id", metrics=[x, y])
    xerr, yerr = interval(stats, x), interval(stats, y)
    return pd.DataFrame(
        {
            "experiment_id": stats["experiment_id"],
            "_x_lo": xerr[0], "_x_hi": xerr[1], "_y_lo": yerr[0], "_y_hi": yerr[1],
        }
    )  # fmt: skip


def throughput_vs_energy(
    df: pd.DataFrame,
    hue: str = "model",
    x: str = "throughput_output_tok_s",
    y: str = GROSS,
    *,
    reference: ReferenceArg = False,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Each configuration (mean over cycles) as a point with its 95 % intervals on both
    axes; the Pareto front is outlined.

    Faster (right) and cheaper (down) is better; labels give the batch size. A
    configuration with an estimated (not measured) cycle is drawn hollow. ``kwargs`` go
    to ``Axes.scatter``.
    """
    rows = usable(df, [x, y], "throughput_vs_energy")
    data = config_means(rows.assign(_estimate=estimated(rows)), [x, y, "_estimate"])
    data["_estimate"] = data["_estimate"] > 0
    if "experiment_id" in data.columns:
        data = data.merge(_config_intervals(rows, x, y), on="experiment_id", how="left")
    fig, axes = new_axes(ax)
    keys = group_keys(data, hue)
    groups = data.groupby(keys, dropna=False, sort=True, observed=True) if keys else [(y, data)]
    for i, (key, group) in enumerate(groups):
        colour, name = f"C{i % 10}", group_name(key)
        measured, estimate = group[~group["_estimate"]], group[group["_estimate"]]
        if "_x_lo" in group.columns:
            axes.errorbar(
                group[x], group[y],
                xerr=group[["_x_lo", "_x_hi"]].to_numpy(dtype=float).T,
                yerr=group[["_y_lo", "_y_hi"]].to_numpy(dtype=float).T,
                fmt="none", ecolor=colour, elinewidth=0.8, alpha=0.6, zorder=2,
            )  # fmt: skip
        if not measured.empty:
            ours = {"color": colour, "label": name, "alpha": 0.85, "zorder": 3}
            axes.scatter(measured[x], measured[y], **style(ours, kwargs))
        if not estimate.empty:
            ours = {
                "facecolors": "none", "edgecolors": colour, "zorder": 3,
                "label": None if not measured.empty else name,
            }  # fmt: skip
            axes.scatter(estimate[x], estimate[y], **style(ours, kwargs))
    front = data[pareto_front(data, x, y)].sort_values(x)
    axes.plot(
        front[x], front[y], color="#d62728", linewidth=1.5, zorder=2,
        label=f"Pareto front ({len(front)} of {len(data)})",
    )  # fmt: skip
    axes.scatter(
        front[x], front[y], s=160, facecolors="none", edgecolors="#d62728",
        linewidths=1.5, zorder=4,
    )  # fmt: skip
    if "batch_size" in data.columns:
        for _, row in data.iterrows():
            axes.annotate(
                f"bs {int(row['batch_size'])}", (row[x], row[y]),
                textcoords="offset points", xytext=(4, 4), fontsize=7,
            )  # fmt: skip
    axes.set_xlabel(label(x))
    axes.set_ylabel(label(y))
    if reference:
        overlay_published(
            axes, data, reference, x_col="output_tok_per_s", what=f"x={x!r}, y={y!r}",
            ok=(x == "throughput_output_tok_s" and y == GROSS),
        )  # fmt: skip
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
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """``y`` against ``x`` (mean and 95 % interval over repeated x), one series per ``hue``,
    one panel per ``facet`` value; a categorical ``x`` is placed at evenly spaced positions.

    ``ax``: draw into your own axes (one panel only: no ``facet``). ``kwargs`` go to
    ``Axes.errorbar``.
    """
    import pandas as pd

    df = require_frame(df, "explore")
    for column in (x, y, hue, facet):
        if column and column not in df.columns:
            raise LlemError(f"explore: no column {column!r}", fix="pick one of df.columns")
    if not pd.api.types.is_numeric_dtype(df[y]) or pd.api.types.is_bool_dtype(df[y]):
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
    if ax is not None and len(panels) > 1:
        raise LlemError(
            f"explore: ax= holds one panel, but facet {facet!r} has {len(panels)} values",
            fix="leave out ax= to get one panel per value, or drop facet",
        )
    if ax is not None:
        fig, only = new_axes(ax)
        grid = [only]
    else:
        cols = min(3, len(panels))
        rows = -(-len(panels) // cols)
        fig = new_figure((4.6 * cols, 3.6 * rows))
        grid = list(fig.subplots(rows, cols, squeeze=False, sharey=True).flat)
    numeric_x = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    categories = sorted(data[x].dropna().astype(str).unique())
    for i, axes in enumerate(grid):
        if i >= len(panels):
            axes.set_visible(False)
            continue
        part = data if panels[i] is None else data[data[facet] == panels[i]]
        groups = part.groupby(hue, dropna=False, sort=True, observed=True) if hue else [(y, part)]
        for key, group in groups:
            _explore_series(axes, group, x, y, numeric_x, categories, group_name(key), kwargs)
        if not numeric_x:
            axes.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        axes.set_xlabel(label(x))
        axes.set_ylabel(label(y))
        if panels[i] is not None:
            axes.set_title(f"{facet} = {group_name(panels[i])}", fontsize=9)
        finish(axes)
    return fig


def _explore_series(
    axes: Axes,
    group: pd.DataFrame,
    x: str,
    y: str,
    numeric_x: bool,
    categories: list[str],
    name: str,
    kwargs: Mapping[str, Any],
) -> None:
    from llem_nb.results.stats import summarize  # noqa: PLC0415 - keeps energy light (numpy)

    xs = group[x].astype("float64") if numeric_x else group[x].astype(str).map(categories.index)
    rows = group.assign(_x=xs.to_numpy(dtype=float))
    if "status" in rows.columns:
        rows = rows.assign(status="ok")  # explore shows every row it was given
    stats = summarize(rows, by="_x", metrics=[y]).dropna(subset=[f"{y}_mean"])
    ours = {"marker": "o", "capsize": 3, "label": name}
    axes.errorbar(stats["_x"], stats[f"{y}_mean"], yerr=interval(stats, y), **style(ours, kwargs))
