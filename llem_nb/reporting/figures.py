"""The report's figures, each with a caption written from what the figure actually shows.

A caption names dashed net lines, error bars and hollow estimate markers only when the
drawn figure has them (read back from its artists), and the reference figure says which
published configurations it shows and why those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253 - the report layer works on DataFrames

from llem_nb import plots
from llem_nb.errors import LlemError
from llem_nb.plots.base import log_axis
from llem_nb.plots.published import comparable_reference
from llem_nb.reporting import html as h
from llem_nb.results.reference import REFERENCE_LABEL

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

Spec = tuple[str, Callable[[], "Figure"], Callable[["Figure"], str]]


def drawn(fig: Figure) -> dict[str, bool]:
    """What the figure's axes hold: dashed lines, error bars with length, hollow markers."""
    from matplotlib.collections import LineCollection
    from matplotlib.container import ErrorbarContainer

    out = {"dashed": False, "error_bars": False, "hollow": False}
    for axes in fig.axes:
        for line in axes.get_lines():
            if (
                np.size(line.get_xdata()) > 0
                and line.get_linestyle() in ("--", "dashed")
                and not str(line.get_label()).startswith(REFERENCE_LABEL)
            ):
                out["dashed"] = True
            face = line.get_markerfacecolor()
            if line.get_marker() not in ("None", None, "", " ") and face == "none":
                out["hollow"] = True
        for container in axes.containers:
            if isinstance(container, ErrorbarContainer):
                for bars in container[2]:
                    if isinstance(bars, LineCollection) and any(
                        float(np.abs(np.asarray(seg[-1]) - np.asarray(seg[0])).sum()) > 0
                        for seg in bars.get_segments()
                    ):
                        out["error_bars"] = True
        for collection in axes.collections:
            faces = np.asarray(collection.get_facecolor())
            if (
                faces.ndim == 2
                and len(faces)
                and bool((faces[:, 3] == 0).any())
                and "published" not in str(collection.get_label()).lower()
            ):
                out["hollow"] = True
    return out


def _energy_caption(fig: Figure) -> str:
    seen = drawn(fig)
    parts = ["Energy per output token vs batch size, gross as solid lines"]
    if seen["dashed"]:
        parts.append("net (idle power subtracted) dashed")
    if seen["error_bars"]:
        parts.append("error bars: 95 % confidence interval over cycles")
    else:
        parts.append("no error bars: a single cycle per configuration has no interval")
    return _with_hollow(", ".join(parts[:2]) + "; " + "; ".join(parts[2:]), seen)


def _with_hollow(text: str, seen: dict[str, bool]) -> str:
    return (
        text + ("; hollow markers are estimates, not measurements" if seen["hollow"] else "") + "."
    )


def _pareto_caption(fig: Figure) -> str:
    seen = drawn(fig)
    bars = "; error bars: 95 % confidence interval over cycles" if seen["error_bars"] else ""
    return _with_hollow(
        "Throughput vs energy per output token, one point per configuration; the Pareto "
        f"front is circled{bars}",
        seen,
    )


def specs(df: pd.DataFrame, reference: bool) -> list[Spec]:
    """(id, draw, caption of the drawn figure) for each figure the report tries."""
    out: list[Spec] = [
        ("fig-energy-per-token", lambda: plots.energy_per_token(df), _energy_caption),
        ("fig-pareto", lambda: plots.throughput_vs_energy(df), _pareto_caption),
        ("fig-prefill-decode", lambda: plots.prefill_decode(df),
         lambda f: "Energy per output token split into prefill and decode."),
        ("fig-power", lambda: plots.power_timeseries(_first_ok(df)),
         lambda f: "GPU power over one experiment, the window and its phases shaded."),
    ]  # fmt: skip
    if any(c in df.columns and df[c].notna().any() for c in ("energy_cpu_j", "energy_dram_j")):
        out.append(
            ("fig-boundary", lambda: plots.energy_boundary(df),
             lambda f: "Energy per output token by domain (GPU, CPU package, DRAM), each net of "
             "its own idle, stacked per configuration; facility energy is a PUE model, not "
             "drawn.")
        )  # fmt: skip
    if reference:
        out.append(_reference_spec(df))
    return out


def _reference_spec(df: pd.DataFrame) -> Spec:
    """Ours next to the published figures of our model; without them, ours next to the
    comparable published configurations (``comparable_reference``), saying which."""
    try:
        plots.match_reference(df)
    except LlemError:
        _, which = comparable_reference(df)

        def overlay() -> Figure:
            fig = plots.energy_per_token(df, net=False, reference=True)
            fig.axes[0].set_yscale("log")
            log_axis(fig.axes[0], "y", base=10)
            return fig

        def caption(fig: Figure) -> str:
            return _with_hollow(
                "Our energy per output token (circles) with the ML.ENERGY v3 published "
                f"figures (grey diamonds) of {which}. Our model is not among the published "
                "ones and theirs is a different method (see Methods): this shows scale, "
                "not a like-for-like comparison",
                drawn(fig),
            )

        return "fig-reference", overlay, caption
    return (
        "fig-reference",
        lambda: plots.reference(df),
        lambda f: (
            "Our energy per output token next to the ML.ENERGY v3 published figures of "
            "the same model, matched by batch (a different method: see the note under the axes "
            "and Methods)."
        ),
    )


def _first_ok(df: pd.DataFrame) -> Any:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if ok.empty:
        raise LlemError("no successful experiment to show")
    return ok.iloc[0]


NOT_DRAWN = {
    "fig-energy-per-token": "Energy per output token vs batch size",
    "fig-pareto": "Throughput vs energy per output token",
    "fig-prefill-decode": "Energy split into prefill and decode",
    "fig-power": "Power over one experiment",
    "fig-reference": "Comparison with published figures",
    "fig-boundary": "Energy boundary",
}


def figures_html(df: pd.DataFrame, reference: bool) -> list[str]:
    """Every figure the data supports, embedded; the others as one sentence each."""
    out = []
    for fig_id, draw, caption in specs(df, reference):
        try:
            fig = draw()
            text = caption(fig)
            out.append(h.figure(fig_id, h.figure_png(fig), text))
        except LlemError as exc:
            out.append(h.note(f"{NOT_DRAWN[fig_id]}: not drawn — {_sentence(exc.message)}"))
    return out


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(".") else text + "."
