"""The energy boundary as a figure: per configuration, GPU, CPU and DRAM energy per token, stacked.

Reads the per-domain columns ``energy_per_output_token_{gpu,cpu,dram}_net_j`` (or the
gross ones); a domain a row did not measure is no segment at all (never a zero height
passed off as measured), and each bar is labelled with the boundary it stands for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.plots.base import finish, new_axes, require_frame, style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DOMAINS = ("gpu", "cpu", "dram")
COLOURS = {"gpu": "#4c72b0", "cpu": "#dd8452", "dram": "#55a868"}
FIX = (
    "measure with energy.domains (default: every domain the host exposes) on a host whose "
    "RAPL counters are readable (run as root or `sudo chmod a+r …/energy_uj`)"
)


def boundary_columns(net: bool = True) -> dict[str, str]:
    """Domain → its per-output-token column (net or gross)."""
    suffix = "net_j" if net else "j"
    return {d: f"energy_per_output_token_{d}_{suffix}" for d in DOMAINS}


def energy_boundary(
    df: pd.DataFrame,
    by: str = "label",
    *,
    net: bool = True,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """One stacked bar per ``by`` value (a configuration): mean GPU, CPU and DRAM energy per
    output token over cycles, net of each domain's own idle (``net=False``: gross).

    Each bar is labelled with its boundary (``gpu+cpu+dram``); domains not measured are left
    out, not drawn as zero. ``kwargs`` go to ``Axes.bar``.
    """
    import numpy as np

    df = require_frame(df, "energy_boundary")
    columns = boundary_columns(net)
    present = [c for c in columns.values() if c in df.columns]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if by not in df.columns or not present or ok[present].notna().to_numpy().sum() == 0:
        raise LlemError(
            f"energy_boundary: no per-domain energy ({', '.join(columns.values())}) "
            f"by {by!r} in these {len(df)} rows",
            fix=FIX,
        )
    data = ok.dropna(subset=present, how="all")
    means = data.groupby(by, sort=True, observed=True)[present].mean()
    boundary = (
        data.groupby(by, sort=True, observed=True)["energy_boundary"].first()
        if "energy_boundary" in data.columns
        else None
    )
    fig, axes = new_axes(ax, figsize=(max(6.4, 0.9 * len(means) + 2), 4.2))
    pos = np.arange(len(means))
    bottom = np.zeros(len(means))
    for domain, column in columns.items():
        if column not in means.columns or means[column].isna().all():
            continue
        values = means[column].to_numpy(dtype=float)
        height = np.nan_to_num(values, nan=0.0)
        bars = axes.bar(
            pos, height, 0.7, bottom=bottom,
            **style({"color": COLOURS[domain], "label": domain.upper()}, kwargs),
        )  # fmt: skip
        for bar, value in zip(bars, values, strict=True):
            if np.isnan(value):
                bar.set_visible(False)
        bottom += height
    if boundary is not None:
        for x, top, text in zip(pos, bottom, boundary.reindex(means.index), strict=True):
            axes.annotate(
                str(text) if isinstance(text, str) else "?", (x, top), ha="center",
                va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points",
            )  # fmt: skip
    axes.set_xticks(pos, [str(v) for v in means.index], rotation=30, ha="right")
    axes.set_xlabel(by)
    what = "net of each domain's idle" if net else "gross"
    axes.set_ylabel(f"energy per output token [J], {what}")
    axes.set_title("energy boundary per configuration", fontsize=9)
    finish(axes)
    return fig
