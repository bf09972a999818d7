"""Shared helpers of the plotting modules: axis labels, input checks, figure set-up.

Figures are made outside pyplot (``PlotFigure``), so pyplot's end-of-cell flush never
draws them a second time. In a Jupyter kernel each figure made during a cell is shown
exactly once: as the cell's value or through ``display()`` when that happens, else at the
end of the cell (so ``fig = ll.plots.energy_per_token(df)`` shows too, as with pyplot).
Outside a kernel nothing is shown; in a script ``fig.savefig(path)`` writes it.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError

try:
    from matplotlib.figure import Figure
except ImportError:  # pragma: no cover - matplotlib is a base dependency
    raise LlemError(
        "llem_nb.plots needs matplotlib", fix="pip install matplotlib (or reinstall llem_nb)"
    ) from None

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes

UNITS = {
    "energy_per_output_token_j": "energy per output token [J]",
    "energy_per_output_token_net_j": "net energy per output token [J]",
    "energy_per_token_j": "energy per token [J]",
    "energy_per_request_j": "energy per request [J]",
    "energy_gross_j": "energy, gross [J]",
    "energy_net_j": "energy, net [J]",
    "prefill_energy_j": "prefill energy [J]",
    "decode_energy_j": "decode energy [J]",
    "throughput_output_tok_s": "output throughput [tok/s]",
    "throughput_total_tok_s": "total throughput [tok/s]",
    "batch_size": "batch size [requests]",
    "ttft_ms_p50": "TTFT p50 [ms]",
    "itl_ms_p50": "inter-token latency p50 [ms]",
    "latency_s_p50": "request latency p50 [s]",
    "avg_power_w": "average power [W]",
    "idle_power_w": "idle power [W]",
    "window_s": "measured window [s]",
    "max_output_tokens": "max output tokens",
    "power_w": "power [W]",
    "t_s": "time [s]",
}

DATA_FIX = "pass the DataFrame from llem_nb.load_results(...) or StudyResult.df"
MEASURED_SOURCES = frozenset({"nvml", "rapl"})
NO_SOURCE = "none"
ESTIMATE_LABEL = "estimate (not measured)"
ESTIMATE_COLOUR = "#a33"


def label(column: str) -> str:
    """The axis label for a column: its meaning and unit where known."""
    return UNITS.get(column, column)


def short(value: Any) -> str:
    """A model path shortened to its last component, for legends."""
    text = str(value)
    return text.rstrip("/").rsplit("/", 1)[-1] if text.startswith(("/", ".")) else text


def require_frame(df: Any, what: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise LlemError(
            f"{what}: expected a pandas DataFrame, got {type(df).__name__}", fix=DATA_FIX
        )
    return df


def usable(df: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Successful rows with every column in ``columns`` measured; else a clear ``LlemError``."""
    df = require_frame(df, what)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LlemError(f"{what}: the DataFrame has no column(s) {missing}", fix=DATA_FIX)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    ok = ok.dropna(subset=list(columns))
    if ok.empty:
        sources = sorted(set(df["energy_source"].dropna())) if "energy_source" in df else []
        raise LlemError(
            f"{what}: no successful rows with {list(columns)} measured "
            f"(rows: {len(df)}, energy sources: {sources or 'none'})",
            fix="energy is NaN when no energy source was available; use energy.source='estimate' "
            "for a flagged CPU estimate, or run on a GPU host",
        )
    return numeric(ok, columns)


def numeric(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Nullable integer columns as floats, so matplotlib and numpy handle them."""
    import pandas as pd

    out = df.copy()
    for column in columns:
        if column in out.columns and pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype("float64")
    return out


class PlotFigure(Figure):
    """A matplotlib ``Figure`` that pyplot does not manage and that IPython shows once.

    It never joins pyplot's open figures, so the inline backend's end-of-cell flush does
    not draw it. IPython draws it through ``_repr_mimebundle_`` (which notes that it was
    shown); one made during a cell and not shown by the cell's end is shown then.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown = False
        _pending_in_kernel(self)

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        self.shown = True
        return {"image/png": base64.b64encode(self.png()).decode("ascii")}


_PENDING: list[PlotFigure] = []


def _kernel_shell() -> Any:
    """The IPython shell of a Jupyter kernel, or None (scripts, terminal IPython)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or "IPKernelApp" not in getattr(shell, "config", {}):
        return None
    return shell


def _pending_in_kernel(fig: PlotFigure) -> None:
    """In a kernel, remember ``fig`` until the cell ends (installs the hook once)."""
    shell = _kernel_shell()
    if shell is None:
        return
    if not getattr(shell, "_llem_show_figures", False):
        shell.events.register("post_run_cell", _show_pending)
        shell._llem_show_figures = True
    _PENDING.append(fig)


def _show_pending(*_: Any) -> None:
    """End of a cell: show each figure made in it that nothing has shown yet."""
    from IPython.display import display

    pending = list(_PENDING)
    _PENDING.clear()
    for fig in pending:
        if not fig.shown:
            display(fig)


def shown(fig: Any) -> None:
    """Mark a figure as used elsewhere (e.g. embedded in a report): not shown at cell end."""
    if isinstance(fig, PlotFigure):
        fig.shown = True


def new_figure(figsize: tuple[float, float] = (6.4, 4.2)) -> PlotFigure:
    return PlotFigure(figsize=figsize, layout="constrained")


def new_axes(ax: Any = None, figsize: tuple[float, float] = (6.4, 4.2)) -> tuple[Figure, Axes]:
    """``ax`` and its figure when given (the caller's own figure), else a new ``PlotFigure``."""
    if ax is not None:
        if not hasattr(ax, "figure") or not hasattr(ax, "errorbar"):
            raise LlemError(
                f"ax: expected a matplotlib Axes, got {type(ax).__name__}",
                fix="pass ax=<an Axes>, e.g. from fig, ax = plt.subplots(), or leave it out",
            )
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def style(defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Our artist settings with the caller's ``**kwargs`` on top (theirs win)."""
    return {**defaults, **kwargs}


def interval(stats: pd.DataFrame, metric: str) -> np.ndarray:
    """Error bar lengths below and above each mean: the 95 % confidence interval of
    ``summarize`` (``<metric>_ci95_low``/``_high``); 0 where it is undefined (one cycle)."""
    import numpy as np

    mean = stats[f"{metric}_mean"].to_numpy(dtype=float)
    low = stats[f"{metric}_ci95_low"].to_numpy(dtype=float)
    high = stats[f"{metric}_ci95_high"].to_numpy(dtype=float)
    below = np.nan_to_num(mean - low, nan=0.0)
    above = np.nan_to_num(high - mean, nan=0.0)
    return np.vstack([np.clip(below, 0.0, None), np.clip(above, 0.0, None)])


def log_axis(axes: Axes, which: str = "x", base: float = 2) -> None:
    """A log scale whose ticks read as plain numbers (8, not 2³; 0.2, not 2×10⁻¹); base 10
    labels 1-2-5 only (0.1, 0.2, 0.5, 1), the other decades' ticks unlabelled."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    axis = axes.xaxis if which == "x" else axes.yaxis
    (axes.set_xscale if which == "x" else axes.set_yscale)("log", base=base)
    axis.set_major_formatter(FormatStrFormatter("%g"))
    if base == 10:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
        axis.set_minor_formatter(NullFormatter())


def group_keys(data: pd.DataFrame, hue: str | None) -> list[str]:
    """The grouping columns for one line per ``hue`` × backend (backend only when present)."""
    keys = [hue] if hue and hue in data.columns else []
    if "backend" in data.columns and "backend" not in keys:
        keys.append("backend")
    return keys


def group_name(key: Any) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return " / ".join(short(p) for p in parts)


def estimated(data: pd.DataFrame) -> pd.Series:
    """Per row: True where the energy comes from a source that is not a measurement.

    ``none`` rows carry no energy at all, so they are not estimates.
    """
    import pandas as pd

    if "energy_source" not in data.columns:
        return pd.Series(False, index=data.index)
    source = data["energy_source"]
    return (source.notna() & ~source.isin({*MEASURED_SOURCES, NO_SOURCE})).astype(bool)


def mark_estimates(axes: Axes, data: pd.DataFrame) -> None:
    """Say on the figure which energy sources its rows use; estimated rows are marked per row.

    The plot draws estimated rows hollow; this adds the legend entry that says so, and
    a title naming the sources (red when any is an estimate) unless the axes already
    has one (the user's own axes).
    """
    if "energy_source" not in data.columns:
        return
    flags = estimated(data)
    if flags.any():
        axes.plot(
            [], [], marker="o", linestyle="none", markerfacecolor="none",
            markeredgecolor="#555", label=ESTIMATE_LABEL,
        )  # fmt: skip
    sources = sorted(set(data["energy_source"].dropna()))
    if not sources or axes.get_title():
        return
    text = f"energy source: {', '.join(sources)}"
    if not set(sources) & MEASURED_SOURCES:
        axes.set_title(f"{text} (not a measurement)", fontsize=9, color=ESTIMATE_COLOUR)
    elif flags.any():
        axes.set_title(
            f"{text} — hollow markers: estimates, not measured", fontsize=9, color=ESTIMATE_COLOUR
        )
    else:
        axes.set_title(text, fontsize=9)


def note(axes: Axes, text: str) -> None:
    """A short remark in the corner of the axes (e.g. what was not measured)."""
    axes.text(0.01, 0.01, text, transform=axes.transAxes, fontsize=7, color="#555", va="bottom")


def finish(axes: Axes) -> None:
    handles, _ = axes.get_legend_handles_labels()
    if handles:
        axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
