"""Matplotlib figures of energy per token, read from a results DataFrame only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

UNITS = {
    "energy_per_output_token_j": "energy per output token [J]",
    "energy_per_output_token_net_j": "net energy per output token [J]",
    "energy_per_token_j": "energy per token [J]",
    "energy_gross_j": "energy, gross [J]",
    "energy_net_j": "energy, net [J]",
    "throughput_output_tok_s": "output throughput [tok/s]",
    "throughput_total_tok_s": "total throughput [tok/s]",
    "batch_size": "batch size [requests]",
    "ttft_ms_p50": "TTFT p50 [ms]",
    "itl_ms_p50": "inter-token latency p50 [ms]",
    "latency_s_p50": "request latency p50 [s]",
    "avg_power_w": "average power [W]",
    "max_output_tokens": "max output tokens",
}


def label(column: str) -> str:
    return UNITS.get(column, column)


def _usable(df: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LlemError(
            f"{what}: the DataFrame has no column(s) {missing}",
            fix="pass the DataFrame from llem_nb.load_results(...) or StudyResult.df",
        )
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    ok = ok.dropna(subset=columns)
    if ok.empty:
        sources = sorted(set(df.get("energy_source", []))) if len(df) else []
        raise LlemError(
            f"{what}: no successful rows with {columns} measured "
            f"(rows: {len(df)}, energy sources: {sources or 'none'})",
            fix="energy is NaN when no energy source was available; use energy.source='estimate' "
            "for a flagged CPU estimate, or run on a GPU host",
        )
    return ok


def energy_per_token(
    df: pd.DataFrame,
    x: str = "batch_size",
    hue: str = "model",
    y: str = "energy_per_output_token_j",
    *,
    net: bool = False,
    ax: Any = None,
) -> Figure:
    """Energy per output token against ``x``, one line per ``hue``; error bars: std over cycles."""
    import matplotlib.pyplot as plt

    ys = [y] + (
        ["energy_per_output_token_net_j"] if net and y == "energy_per_output_token_j" else []
    )
    data = _usable(df, [x, y], "energy_per_token")
    hues = [hue] if hue in data.columns else []
    if hue != "backend" and "backend" in data.columns and data["backend"].nunique() > 1:
        hues.append("backend")
    axes: Any
    if ax is None:
        fig, axes = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    else:
        axes = ax
        fig = axes.figure
    groups = data.groupby(hues, dropna=False, sort=True) if hues else [((), data)]
    for key, group in groups:
        name = " / ".join(map(str, key if isinstance(key, tuple) else (key,))) or y
        for col in ys:
            if col not in group.columns or group[col].isna().all():
                continue
            stats = group.groupby(x)[col].agg(["mean", "std", "count"]).reset_index()
            style = "--" if col.endswith("_net_j") else "-"
            axes.errorbar(  # type: ignore[attr-defined]
                stats[x],
                stats["mean"],
                yerr=stats["std"].fillna(0.0),
                marker="o",
                linestyle=style,
                capsize=3,
                label=f"{name}{' (net)' if style == '--' else ''}",
            )
    axes.set_xlabel(label(x))  # type: ignore[attr-defined]
    axes.set_ylabel(label(y))  # type: ignore[attr-defined]
    if x == "batch_size":
        axes.set_xscale("log", base=2)  # type: ignore[attr-defined]
    _mark_estimates(axes, data)
    axes.legend(fontsize=8)  # type: ignore[attr-defined]
    axes.grid(alpha=0.3)  # type: ignore[attr-defined]
    return fig


def throughput_vs_energy(
    df: pd.DataFrame,
    hue: str = "model",
    x: str = "throughput_output_tok_s",
    y: str = "energy_per_output_token_j",
) -> Figure:
    """Each experiment as a point: faster (right) and cheaper (down) is better."""
    import matplotlib.pyplot as plt

    data = _usable(df, [x, y], "throughput_vs_energy")
    fig, axes = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    groups = data.groupby(hue, dropna=False) if hue in data.columns else [(y, data)]
    for key, group in groups:
        axes.scatter(group[x], group[y], label=str(key), alpha=0.8)
    axes.set_xlabel(label(x))
    axes.set_ylabel(label(y))
    _mark_estimates(axes, data)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return fig


def _mark_estimates(axes: object, data: pd.DataFrame) -> None:
    """Say on the figure itself when energy is estimated, not measured."""
    if "energy_source" not in data.columns:
        return
    sources = sorted(set(data["energy_source"].dropna()))
    if sources and set(sources) <= {"estimate", "none"}:
        axes.set_title(  # type: ignore[attr-defined]
            f"energy source: {', '.join(sources)} (not a measurement)", fontsize=9, color="#a33"
        )
    elif sources:
        axes.set_title(f"energy source: {', '.join(sources)}", fontsize=9)  # type: ignore[attr-defined]
