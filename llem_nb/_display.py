"""Compact HTML for notebook display of studies and results (``_repr_html_``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from llem_nb.results.schema import ExperimentResult
    from llem_nb.run_loop import StudyResult
    from llem_nb.study import Study

_TABLE = "border-collapse:collapse;font-size:12px;margin:2px 0"
_CELL = "padding:1px 8px;border-bottom:1px solid #eee"
PREVIEW_ROWS = 12
_RESULT_COLUMNS = [
    "experiment_id", "batch_size", "runs", "status", "energy_source",
    "energy_per_output_token_j", "energy_per_output_token_net_j", "throughput_output_tok_s",
]  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def kv_table(title: str, rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;{_CELL}'>{html.escape(k)}</th>"
        f"<td style='{_CELL}'>{v if isinstance(v, _Raw) else _fmt(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div><b>{html.escape(title)}</b><table style='{_TABLE}'>{body}</table></div>"


class _Raw(str):
    """Already-escaped HTML for a kv_table cell."""


def frame_html(df: pd.DataFrame, max_rows: int = PREVIEW_ROWS) -> str:
    """A small DataFrame as a compact table; longer ones are cut with a note."""
    head = "".join(f"<th style='{_CELL}'>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in df.head(max_rows).itertuples(index=False, name=None)
    )
    more = len(df) - max_rows
    tail = f"<div style='font-size:11px;color:#666'>… {more} more rows</div>" if more > 0 else ""
    return f"<table style='{_TABLE}'><tr>{head}</tr>{body}</table>{tail}"


def _flagged(text: str, ok: bool) -> _Raw:
    colour = "#1b6e20" if ok else "#b00020"
    return _Raw(f"<span style='color:{colour}'>{html.escape(text)}</span>")


def study_html(study: Study) -> str:
    cfg = study.config
    points, invalid = study.points, study.invalid
    rows: list[tuple[str, Any]] = [
        ("experiments", len(points)),
        ("cycles", f"{cfg.cycles.n} ({cfg.cycles.order})"),
        ("runs", len(points) * cfg.cycles.n),
    ]
    if invalid:
        reasons = "; ".join(sorted({p.reason for p in invalid}))[:300]
        rows.append(("dropped points", _flagged(f"{len(invalid)}: {reasons}", False)))
    rows += [(f"base.{k}", v) for k, v in cfg.base.items()]
    rows += [(f"sweep.{k}", ", ".join(map(str, v))) for k, v in cfg.sweep.items()]
    rows += [(f"runner.{k}", v) for k, v in cfg.runners.items()]
    if cfg.gap_seconds:
        rows.append(("gap between experiments [s]", cfg.gap_seconds))
    preview = study.preview()
    keep = ["experiment_id", *(c for c in preview.columns if c in cfg.sweep or "." in c)]
    table = frame_html(preview[[c for c in dict.fromkeys(keep) if c in preview.columns]])
    return kv_table(f"Study {cfg.name}", rows) + (table if len(points) else "")


def _per_config(df: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: runs, status counts, mean metrics over successful cycles."""
    import pandas as pd

    rows = []
    for experiment_id, group in df.groupby("experiment_id", sort=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"experiment_id": experiment_id, "runs": len(group)}
        row["batch_size"] = group["batch_size"].iloc[0] if "batch_size" in group else None
        counts = group["status"].value_counts()
        row["status"] = ", ".join(f"{n} {s}" for s, n in counts.items())
        row["energy_source"] = ", ".join(sorted(set(group["energy_source"].dropna())))
        for col in _RESULT_COLUMNS[5:]:
            values = ok[col].dropna() if col in ok else pd.Series(dtype=float)
            row[col] = float(values.mean()) if len(values) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=_RESULT_COLUMNS)


def study_result_html(result: StudyResult) -> str:
    ok = sum(r.status == "ok" for r in result.results)
    failed = len(result.failed)
    rows: list[tuple[str, Any]] = [
        ("dir", str(result.dir)),
        ("this run", _flagged(f"{ok} ok, {failed} failed", failed == 0)),
    ]
    if getattr(result, "skipped", 0):
        rows.append(("skipped (already done)", result.skipped))
    title = f"StudyResult {result.name}" + (" (interrupted)" if result.interrupted else "")
    head = kv_table(title, rows)
    if not result.results and not getattr(result, "skipped", 0):
        return head
    df = result.df
    if df.empty or "experiment_id" not in df.columns:
        return head
    return head + frame_html(_per_config(df), max_rows=30)


def result_html(result: ExperimentResult) -> str:
    cfg = result.config
    flags = ", ".join(result.quality_flags)
    rows: list[tuple[str, Any]] = [
        ("status", _flagged(result.status, result.status == "ok")),
        ("model", cfg.get("model")),
        ("backend / precision", f"{cfg.get('backend')} / {cfg.get('precision')}"),
        ("batch size", cfg.get("batch_size")),
        ("runner", result.runner + (f" ({result.runner_source})" if result.runner_source else "")),
        ("window [s]", result.window_s),
        ("tokens in / out", f"{_fmt(result.input_tokens)} / {_fmt(result.output_tokens)}"),
        ("throughput [out tok/s]", result.throughput_output_tok_s),
        ("TTFT p50 [ms]", result.ttft_ms_p50),
        ("energy source", result.energy_source),
        ("energy gross / net [J]", f"{_fmt(result.energy_gross_j)} / {_fmt(result.energy_net_j)}"),
        ("idle power [W]", result.idle_power_w),
        ("energy per output token [J]", result.energy_per_output_token_j),
        ("quality flags", _flagged(flags or "none", not flags)),
    ]
    if result.error is not None:
        text = f"{result.error.type} [{result.error.category}]: {result.error.message}"
        if result.error.fix:
            text += f" — fix: {result.error.fix}"
        rows.append(("error", _flagged(text, False)))
    return kv_table(f"ExperimentResult {result.experiment_id} cycle {result.cycle}", rows)
