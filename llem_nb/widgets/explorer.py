"""ResultsExplorer: pick x, y, hue and facet from the results' columns; the plot redraws.

The figure comes from ``llem_nb.plots.explore``; the widget only offers the columns,
applies the ``quality_ok`` filter and shows problems as a message. It is an ipywidgets
``VBox`` with two traits: ``value``, the selection (``{"x", "y", "hue", "facet",
"quality_only"}``), and ``figure``, the figure drawn for it (None when there is none).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure  # noqa: TID253 - the explorer's trait holds a Figure

from llem_nb.errors import LlemError
from llem_nb.plots import explore
from llem_nb.widgets._common import INSTALL_FIX, in_notebook, message

try:
    import ipywidgets as widgets
    import traitlets
except ImportError:
    raise LlemError("llem_nb widgets need ipywidgets", fix=INSTALL_FIX) from None

if TYPE_CHECKING:
    import pandas as pd

NONE = "(none)"
MAX_GROUPS = 12
_PREFERRED_Y = ("energy_per_output_token_j", "throughput_output_tok_s", "window_s")


def as_frame(source: Any) -> pd.DataFrame:
    """A results DataFrame from a DataFrame, a ``StudyResult`` or a results directory."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    if hasattr(source, "df"):
        return source.df
    if isinstance(source, (str, os.PathLike)):
        from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps explorer light (numpy, pandas, pydantic)

        return load_results(source)
    raise LlemError(
        f"cannot explore a {type(source).__name__}",
        fix="pass a DataFrame, a StudyResult or a results directory",
    )


def column_choices(df: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """(x options, numeric y options, grouping options) over columns that have values."""
    import pandas as pd

    present = [c for c in df.columns if df[c].notna().any() and not isinstance(df[c].iloc[0], list)]
    numeric = [
        c
        for c in present
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    groups = [c for c in present if 1 <= df[c].nunique(dropna=True) <= MAX_GROUPS]
    return present, numeric, groups


def filter_rows(df: pd.DataFrame, quality_only: bool) -> tuple[pd.DataFrame, str]:
    """The rows to plot, and a note when the ``quality_ok`` filter removed all of them."""
    if not quality_only or "quality_ok" not in df.columns:
        return df, ""
    kept = df[df["quality_ok"].astype(bool)]
    if not kept.empty or df.empty:
        return kept, ""
    flags = ""
    if "quality_flags" in df.columns:
        counts = df["quality_flags"].explode().dropna().value_counts()
        flags = ", ".join(f"{k} ({v})" for k, v in counts.items() if k)
    return kept, (
        f"no row passes quality_ok (of {len(df)}; flags: {flags or 'none'}); "
        "untick the filter to see them anyway"
    )


class ResultsExplorer(widgets.VBox):
    """Dropdowns for x / y / hue / facet, a ``quality_ok`` checkbox, and the plot.

    Traits: ``value`` (the selection: x, y, hue, facet — None for none — and
    quality_only) and ``figure`` (what is drawn; None while a message explains why not).
    """

    value = traitlets.Dict(read_only=True, help="the selection: x, y, hue, facet, quality_only")
    figure = traitlets.Instance(Figure, allow_none=True, read_only=True, help="the figure")

    def __init__(
        self,
        results: Any,
        *,
        x: str = "batch_size",
        y: str | None = None,
        hue: str | None = "model",
        facet: str | None = None,
        quality_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        w = widgets
        self.df = as_frame(results)
        xs, ys, groups = column_choices(self.df)
        if not ys:
            raise LlemError("nothing to explore: the results have no numeric column with values")
        y = y or next((c for c in _PREFERRED_Y if c in ys), ys[0])
        self.x = w.Dropdown(options=xs, value=x if x in xs else xs[0], description="x")
        self.y = w.Dropdown(options=ys, value=y if y in ys else ys[0], description="y")
        self.hue = w.Dropdown(
            options=[NONE, *groups], value=hue if hue in groups else NONE, description="hue"
        )
        self.facet = w.Dropdown(
            options=[NONE, *groups], value=facet if facet in groups else NONE, description="facet"
        )
        self.quality_only = w.Checkbox(value=quality_only, description="quality_ok only")
        self.message = w.HTML()
        self.output = w.Output()
        for control in (self.x, self.y, self.hue, self.facet, self.quality_only):
            control.observe(lambda _c: self.redraw(), names="value")
        self.children = [
            w.HBox([self.x, self.y]),
            w.HBox([self.hue, self.facet, self.quality_only]),
            self.message,
            self.output,
        ]
        self.add_class("llem-results-explorer")
        self.redraw()

    def selection(self) -> dict[str, Any]:
        """What the controls say now (None for no hue / facet)."""
        return {
            "x": self.x.value,
            "y": self.y.value,
            "hue": None if self.hue.value == NONE else self.hue.value,
            "facet": None if self.facet.value == NONE else self.facet.value,
            "quality_only": bool(self.quality_only.value),
        }

    def redraw(self) -> Figure | None:
        """Draw the current selection; a problem becomes the message and no figure."""
        chosen = self.selection()
        rows, note = filter_rows(self.df, chosen["quality_only"])
        self.output.clear_output(wait=True)
        fig: Figure | None = None
        if note:
            self.message.value = message(note, "warn")
        else:
            try:
                fig = explore(rows, chosen["x"], chosen["y"], chosen["hue"], chosen["facet"])
            except LlemError as exc:
                self.message.value = message(str(exc))
            else:
                self.message.value = ""
        with self.hold_trait_notifications():
            self.set_trait("value", chosen)
            self.set_trait("figure", fig)
        if fig is not None and in_notebook():
            from IPython.display import display

            with self.output:
                display(fig)
        return fig
