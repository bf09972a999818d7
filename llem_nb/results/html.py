"""Compact HTML helpers for notebooks: key-value tables, small frames, coloured flags.

A leaf: each class keeps its own ``_repr_html_`` next to it (the result's in
``results.schema``, the study's in ``study``, the study result's in ``run.result``) and
builds it from these.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_TABLE = "border-collapse:collapse;font-size:12px;margin:2px 0"
_CELL = "padding:1px 8px;border-bottom:1px solid #eee"
PREVIEW_ROWS = 12


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def kv_table(title: str, rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;{_CELL}'>{html.escape(k)}</th>"
        f"<td style='{_CELL}'>{v if isinstance(v, Raw) else fmt(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div><b>{html.escape(title)}</b><table style='{_TABLE}'>{body}</table></div>"


class Raw(str):
    """Already-escaped HTML for a kv_table cell."""


def frame_html(df: pd.DataFrame, max_rows: int = PREVIEW_ROWS) -> str:
    """A small DataFrame as a compact table; longer ones are cut with a note."""
    head = "".join(f"<th style='{_CELL}'>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{fmt(v)}</td>" for v in row) + "</tr>"
        for row in df.head(max_rows).itertuples(index=False, name=None)
    )
    more = len(df) - max_rows
    tail = f"<div style='font-size:11px;color:#666'>… {more} more rows</div>" if more > 0 else ""
    return f"<table style='{_TABLE}'><tr>{head}</tr>{body}</table>{tail}"


def flagged(text: str, ok: bool) -> Raw:
    colour = "#1b6e20" if ok else "#b00020"
    return Raw(f"<span style='color:{colour}'>{html.escape(text)}</span>")
