"""HTML building blocks of the report: page shell, sections, tables, embedded figures.

Everything is inline (CSS in a ``<style>`` block, figures as base64 PNG) so the file
opens offline and never fetches anything.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from llem_nb.reporting.cells import cell

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd;
     padding-bottom: .2em; margin-top: 1.8em; }
.meta { color: #666; font-size: .9em; }
table { border-collapse: collapse; font-size: .82em; margin: .6em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { font-weight: 600; vertical-align: bottom; max-width: 9em; }
td { overflow-wrap: anywhere; max-width: 24em; }
.wide { max-width: 100%; overflow-x: auto; } .constants { font-size: .88em; color: #444; }
details > summary { cursor: pointer; color: #244; margin: .4em 0; }
th { background: #f6f6f6; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.note { color: #8a6d00; font-size: .9em; } .bad { color: #b00020; }
.kv th { text-align: left; } .credit { font-size: .85em; color: #555; }
.kv td, td.t { text-align: left; } .kv th { max-width: none; white-space: nowrap; }
tr.group th { background: #e9eef2; }
.answer { font-size: 1.05em; font-weight: 600; } .methods { max-width: 52em; }
"""

METHOD = """
<p><b>Window.</b> Energy is measured over one window per experiment: from the submission of
the first request to the last generated token, with the device synchronised at both ends.
Model loading and warm-up runs happen before the window and are not counted.</p>
<p><b>Energy source.</b> On NVIDIA GPUs the primary reading is the driver's total-energy
counter of each GPU the experiment used (summed; per-device values are kept), with power
polling integrated by the trapezoid rule alongside as a cross-check and as the fallback on
GPUs without the counter. CPU energy comes from RAPL where it is readable. Without any
measured source the figure is either a documented CPU-time <i>estimate</i>, flagged on every
row, or absent; the source actually used is recorded per row (<code>energy_source</code>).
In a report mixing sources, estimated rows are listed in the summary, drawn hollow in the
figures and marked in the table of runs.</p>
<p><b>Gross and net.</b> Gross energy is everything the devices drew in the window. Just
before the window each GPU's idle power is measured in the same process or container;
net energy = gross − idle power × window length. Both are reported; net is absent when no
idle baseline was measured.</p>
<p><b>Tokens and latency.</b> Input tokens are the real prompt tokens (no padding); output
tokens are those generated per request up to and including the end-of-sequence token.
Energy per output token = energy / output tokens. TTFT, inter-token latency and end-to-end
latency are per request, with the same definitions for every backend: TTFT runs from the
request's submission to its first token on the device (on a GPU, PyTorch steps are timed
by CUDA events). Where the engine queues requests (vLLM), the wait is part of TTFT and is
also reported on its own (<code>queue_ms_p50</code>).</p>
<p><b>Quality flags.</b> A row is flagged when its window is shorter than 5 s, the counter and
the power integral disagree by more than 5 %, the baseline had to be clamped, the
temperature drifted, other processes used the GPU, the GPU throttled, there were too few
power samples, or the energy is an estimate. <code>quality_ok</code> is true only for a
successful row with no flag. Repeated cycles of a configuration are summarised as mean ±
the half-width of the 95 % Student-t confidence interval (none for a single cycle).</p>
"""


SCRUB: ContextVar[Callable[[str], str]] = ContextVar("SCRUB", default=str)
"""What every text passes through on its way into the page (``privacy.Scrub`` while a
report is built): no machine path, and no host name when asked."""


def esc(value: Any) -> str:
    return html.escape(SCRUB.get()(str(value)))


def fmt(value: Any) -> str:
    """A cell value: floats to 4 significant digits, missing as an em dash."""
    if value is None:
        return "—"
    return esc(cell(value))


def page(title: str, meta: str, sections: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class='meta'>{meta}</p>{''.join(sections)}</body></html>\n"
    )


def section(anchor: str, heading: str, body: str) -> str:
    return f"<section id='{esc(anchor)}'><h2>{esc(heading)}</h2>{body}</section>"


def kv_table(table_id: str, rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    return f"<table id='{esc(table_id)}' class='kv'>{body}</table>"


def frame_table(table_id: str, df: pd.DataFrame, max_rows: int = 500) -> str:
    """A DataFrame as an HTML table; longer ones are cut with a note."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False, name=None)
    )
    cut = (
        f"<p class='note'>first {max_rows} of {len(df)} rows shown</p>"
        if len(df) > max_rows
        else ""
    )
    return f"<table id='{esc(table_id)}'><tr>{head}</tr>{body}</table>{cut}"


def figure_png(fig: Figure, dpi: int = 110) -> str:
    """The figure as a base64 PNG data URI; the figure counts as shown (in a notebook it
    is not displayed again at the end of the cell)."""
    from llem_nb.plots.base import shown  # noqa: PLC0415 - keeps html light (matplotlib)

    shown(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(fig_id: str, uri: str, caption: str) -> str:
    return (
        f"<figure id='{esc(fig_id)}'><img alt='{esc(caption)}' src='{uri}'>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def note(text: str, cls: str = "note") -> str:
    return f"<p class='{cls}'>{esc(text)}</p>"
