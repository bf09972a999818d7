"""Tables a reader can take in at page width: human headers with units, four significant
figures, ``—`` for missing, Yes/No, constant columns said once above the table, rows in
the order of the swept values, long tables folded, and every run as a CSV download.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llem_nb.reporting import html as h
from llem_nb.reporting.cells import cell, numeric
from llem_nb.reporting.privacy import model_name
from llem_nb.results.columns import DOCS

if TYPE_CHECKING:
    import pandas as pd

_NUMBER = re.compile(r"^[-+]?[\d.,]+(\s|%|–|$)")
FOLD_ROWS = 12
"""Tables longer than this are drawn folded (``<details>``), the first rows visible."""

NAMES: dict[str, str] = {
    "experiment_id": "config id", "label": "configuration", "cycle": "cycle",
    "status": "status", "model": "model", "backend": "backend", "precision": "precision",
    "batch_size": "batch", "n_prompts": "prompts", "max_output_tokens": "max new tokens",
    "output_tokens": "output tokens", "input_tokens": "input tokens", "window_s": "window",
    "throughput_output_tok_s": "throughput", "energy_source": "energy source",
    "energy_gross_j": "energy (gross)", "energy_net_j": "energy (net)",
    "energy_per_output_token_j": "energy / out token", "avg_power_w": "power",
    "energy_per_output_token_net_j": "net energy / out token", "quality_ok": "quality ok",
    "ttft_ms_p50": "TTFT p50", "ttft_ms_p90": "TTFT p90", "itl_ms_p50": "ITL p50",
    "n": "cycles", "eligible": "eligible", "meets": "meets limits", "best": "best",
    "runner_up": "runner-up", "pareto": "Pareto", "p_worse_than_best": "p (worse than best)",
    "excluded_because": "left out because", "n_flagged": "flagged rows", "flags": "flags",
    "study": "study", "error_type": "error", "error_category": "kind",
    "error_message": "message", "measured": "measured", "gpu_name": "GPU",
}  # fmt: skip
_SUFFIXES = {"_mean": "mean", "_ci95_low": "95 % CI low", "_ci95_high": "95 % CI high"}


def header(column: str) -> str:
    """``energy_per_output_token_j_ci95_low`` → ``energy / out token, 95 % CI low [J/token]``."""
    base, extra = str(column), ""
    for suffix, words in _SUFFIXES.items():
        if base.endswith(suffix) and base != suffix:
            base, extra = base[: -len(suffix)], words
            break
    unit = DOCS.get(base, ("", ""))[0]
    name = NAMES.get(base, base.replace("_", " "))
    name = f"{name}, {extra}" if extra and extra != "mean" else name
    return f"{name} [{unit}]" if unit and unit != "tokens" else name


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """Model paths as model names; nothing else changed (the CSV keeps full precision)."""
    if "model" in df.columns:
        df = df.assign(
            model=[model_name(m) if isinstance(m, str) else m for m in df["model"].tolist()]
        )
    return df


def sort_by_sweep(df: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Rows in the order of the swept values, numbers as numbers (``batch_size=2`` before
    ``batch_size=16``), then by cycle."""
    config = ["study", "model", "backend", "precision", "batch_size"]
    swept = [c for c in df.columns if "." in str(c)]
    order = [c for c in dict.fromkeys((*config, *swept, *keys, "cycle")) if c in df.columns]
    if not order or df.empty:
        return df
    rows = list(zip(*(df[c].tolist() for c in order), strict=True))
    ranks = sorted(range(len(rows)), key=lambda i: tuple(_natural(v) for v in rows[i]))
    return df.iloc[ranks]


def _natural(value: Any) -> tuple[Any, ...]:
    """A sort key: missing last, numbers by value, text with its digits read as numbers."""
    if (
        value is None
        or (isinstance(value, float) and value != value)
        or str(value) in ("<NA>", "nan")
    ):
        return (2, ())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, ((0, float(value), ""),))
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return (1, tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)))


def split_constant(
    df: pd.DataFrame, keep: Sequence[str] = ()
) -> tuple[list[tuple[str, str]], pd.DataFrame]:
    """Columns with one value on every row, as (header, value), and the frame without them."""
    if len(df) < 2:
        return [], df
    constant = []
    for column in df.columns:
        if column in keep:
            continue
        values = {cell(v) for v in df[column]}
        if len(values) == 1:
            constant.append(column)
    facts = [(header(c), cell(df[c].iloc[0])) for c in constant]
    facts = [(k, v) for k, v in facts if v != "—"]
    return facts, df.drop(columns=constant)


def table(
    table_id: str,
    df: pd.DataFrame,
    *,
    keep: Sequence[str] = (),
    sort: bool = True,
    summary: str = "",
    cells: Callable[[Any], str] = cell,
) -> str:
    """The frame as a narrow table: constants on a line above, long tables folded."""
    df = readable(df)
    if sort:
        df = sort_by_sweep(df, keep)
    facts, shown = split_constant(df, keep)
    line = (
        "<p class='constants'>All rows: "
        + " · ".join(f"{h.esc(k)} {h.esc(v)}" for k, v in facts)
        + "</p>"
        if facts
        else ""
    )
    head = "".join(f"<th>{h.esc(header(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{h.esc(text)}</td>"
            if numeric(v) or _NUMBER.match(text)
            else f"<td class='t'>{h.esc(text)}</td>"
            for v, text in ((v, cells(v)) for v in row)
        )
        + "</tr>"
        for row in shown.itertuples(index=False, name=None)
    )
    grid = f"<div class='wide'><table id='{h.esc(table_id)}'><tr>{head}</tr>{body}</table></div>"
    if len(shown) > FOLD_ROWS:
        label = summary or f"{len(shown)} rows"
        grid = f"<details><summary>{h.esc(label)} (click to show)</summary>{grid}</details>"
    return line + grid


def csv_link(df: pd.DataFrame, filename: str, text: str) -> str:
    """Every row and column of ``df`` as a CSV embedded in a download link."""
    out = readable(df).copy()
    for column in out.columns:
        if any(isinstance(v, (list, tuple, dict)) for v in out[column].tolist()):
            out[column] = out[column].map(
                lambda v: "; ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
            )
    data = h.SCRUB.get()(out.to_csv(index=False))
    uri = "data:text/csv;base64," + base64.b64encode(data.encode("utf-8")).decode("ascii")
    return f"<p><a id='csv-runs' download='{h.esc(filename)}' href='{uri}'>{h.esc(text)}</a></p>"
