"""Compact HTML for notebook display of studies and results."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llem_nb.results.schema import ExperimentResult
    from llem_nb.run_loop import StudyResult
    from llem_nb.study import Study

_STYLE = "border-collapse:collapse;font-size:12px"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def kv_table(title: str, rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding:1px 8px'>{html.escape(k)}</th>"
        f"<td style='padding:1px 8px'>{_fmt(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div><b>{html.escape(title)}</b><table style='{_STYLE}'>{body}</table></div>"


def study_html(study: Study) -> str:
    cfg = study.config
    points = study.points
    rows: list[tuple[str, Any]] = [
        ("experiments", len(points)),
        ("cycles", f"{cfg.cycles.n} ({cfg.cycles.order})"),
        ("runs", len(points) * cfg.cycles.n),
        ("dropped points", len(study.invalid)),
    ]
    rows += [(f"base.{k}", v) for k, v in cfg.base.items()]
    rows += [(f"sweep.{k}", ", ".join(map(str, v))) for k, v in cfg.sweep.items()]
    rows += [(f"runner.{k}", v) for k, v in cfg.runners.items()]
    return kv_table(f"Study {cfg.name}", rows)


def study_result_html(result: StudyResult) -> str:
    ok = sum(r.status == "ok" for r in result.results)
    head = kv_table(
        f"StudyResult {result.name}" + (" (interrupted)" if result.interrupted else ""),
        [("dir", str(result.dir)), ("ok", ok), ("failed", len(result.failed))],
    )
    if not result.results:
        return head
    cols = [
        "experiment_id",
        "cycle",
        "status",
        "backend",
        "batch_size",
        "output_tokens",
        "throughput_output_tok_s",
        "energy_source",
        "energy_per_output_token_j",
    ]
    df = result.df
    table = df[[c for c in cols if c in df.columns]].to_html(
        index=False, float_format=lambda v: f"{v:.4g}", border=0
    )
    return head + table


def result_html(result: ExperimentResult) -> str:
    cfg = result.config
    rows: list[tuple[str, Any]] = [
        ("status", result.status),
        ("model", cfg.get("model")),
        ("backend", cfg.get("backend")),
        ("batch_size", cfg.get("batch_size")),
        ("runner", result.runner),
        ("window_s", result.window_s),
        ("output_tokens", result.output_tokens),
        ("throughput_output_tok_s", result.throughput_output_tok_s),
        ("energy_source", result.energy_source),
        ("energy_gross_j", result.energy_gross_j),
        ("energy_net_j", result.energy_net_j),
        ("energy_per_output_token_j", result.energy_per_output_token_j),
        ("quality_flags", ", ".join(result.quality_flags) or "none"),
    ]
    if result.error is not None:
        rows.append(("error", f"{result.error.type}: {result.error.message}"))
    return kv_table(f"ExperimentResult {result.experiment_id} cycle {result.cycle}", rows)
