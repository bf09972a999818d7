"""``llem_nb.report(df_or_results_dir, "report.html")``: one self-contained HTML file.

Summary, the recommended configuration (``ll.recommend``) and how it compares with the
others (``ll.compare``), figures (base64 PNG), per-configuration and per-run tables,
quality flags, failures, environment, the definitions, and last a Methods paragraph
written from the results (``reporting.methods``) that credits the published reference.
No external URL anywhere: it opens offline and can be mailed as is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb._version import __version__
from llem_nb.errors import ConfigError, ResultError
from llem_nb.measure.quality import FLAGS
from llem_nb.plots.base import MEASURED_SOURCES, estimated
from llem_nb.reporting import cells, decisions, tables
from llem_nb.reporting import html as h
from llem_nb.reporting.environment import environment, environment_html, records
from llem_nb.reporting.figures import figures_html
from llem_nb.reporting.methods import methods, methods_html, read_records
from llem_nb.reporting.pdf import html_to_pdf
from llem_nb.reporting.privacy import Scrub, model_name
from llem_nb.results.stats import summarize

if TYPE_CHECKING:
    import pandas as pd

RUN_COLUMNS = [
    "label", "cycle", "status", "model", "backend", "precision", "batch_size",
    "output_tokens", "window_s", "throughput_output_tok_s", "energy_source", "energy_gross_j",
    "energy_net_j", "energy_per_output_token_j", "energy_per_output_token_net_j", "quality_ok",
]  # fmt: skip
_CONFIG_KEYS = [
    "label",
    "model",
    "backend",
    "precision",
    "batch_size",
    "max_output_tokens",
    "n_prompts",
]
_METRICS = {
    "energy_per_output_token_j": "energy / out token [J/token]",
    "energy_per_output_token_net_j": "net energy / out token [J/token]",
    "throughput_output_tok_s": "throughput [tok/s]",
    "ttft_ms_p50": "TTFT p50 [ms]",
    "itl_ms_p50": "ITL p50 [ms]",
    "avg_power_w": "power [W]",
}


def _frame(source: Any) -> tuple[pd.DataFrame, list[Path]]:
    """The results DataFrame and the directories it came from (for environment records)."""
    import pandas as pd

    from llem_nb.results.frame import load_results  # noqa: PLC0415 - keeps build light (pydantic)

    if isinstance(source, pd.DataFrame):
        df, dirs = source, []
    elif hasattr(source, "df") and hasattr(source, "dir"):
        df, dirs = source.df, [Path(source.dir)]
    else:
        items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        dirs = [Path(p) for p in items]
        for path in dirs:
            if not path.exists():
                raise ResultError(
                    f"no results directory at {str(path)!r}",
                    fix="pass the dir a study wrote (StudyResult.dir) or a DataFrame",
                )
        df = load_results(dirs)
        if df.empty:
            where = ", ".join(map(str, dirs))
            raise ResultError(
                f"nothing to report: no *.result.json files under {where}",
                fix="run a study into that directory first, or pass another one",
            )
    if df.empty:
        raise ResultError("nothing to report: the results have no rows")
    return df, dirs


def config_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: its settings, runs, and metrics as mean ± 95 % CI half-width."""
    import pandas as pd

    if "experiment_id" not in df.columns:
        return pd.DataFrame()
    stats = summarize(df, metrics=list(_METRICS))
    keys = [c for c in _CONFIG_KEYS if c in stats.columns]
    keys += [c for c in stats.columns if "." in c and c not in keys]
    out = stats[keys].copy()
    if "model" in out.columns:
        out["model"] = out["model"].map(model_name)
    out["runs ok"] = [f"{k} of {n}" for k, n in zip(stats["n_ok"], stats["n_runs"], strict=True)]
    for metric, name in _METRICS.items():
        if f"{metric}_mean" not in stats.columns or stats[f"{metric}_mean"].isna().all():
            continue
        mean, high = stats[f"{metric}_mean"], stats[f"{metric}_ci95_high"]
        out[name] = [
            "—" if m != m else (
                f"{cells.number(m)} ± {cells.half_width(hi - m)}" if hi == hi
                else cells.number(m))
            for m, hi in zip(mean, high, strict=True)
        ]  # fmt: skip
    return out


def _flags(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if "quality_flags" not in df.columns:
        return pd.DataFrame(columns=["flag", "rows", "meaning"])
    counts = df["quality_flags"].explode().dropna().value_counts()

    rows = [(str(k), int(v), FLAGS.get(str(k), "")) for k, v in counts.items() if k]
    return pd.DataFrame(rows, columns=["flag", "rows", "meaning"])


def _summary(df: pd.DataFrame) -> list[tuple[str, Any]]:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df

    def distinct(column: str) -> str:
        if column not in df.columns:
            return "—"
        return ", ".join(sorted({model_name(v) for v in df[column].dropna().unique()}))

    rows: list[tuple[str, Any]] = [
        ("studies", distinct("study")),
        ("runs (configuration × cycle)", len(df)),
        ("successful / failed", f"{len(ok)} / {len(df) - len(ok)}"),
        ("configurations", df["experiment_id"].nunique() if "experiment_id" in df else "—"),
        ("models", distinct("model")),
        ("backends", distinct("backend")),
        ("energy sources", distinct("energy_source")),
        ("runs without a quality flag", int(df["quality_ok"].sum()) if "quality_ok" in df else "—"),
        ("measured time, total [s]", float(ok["window_s"].sum()) if "window_s" in ok else None),
        ("gross energy, total [J]", float(ok["energy_gross_j"].sum(min_count=1))
         if "energy_gross_j" in ok else None),
    ]  # fmt: skip
    col = "energy_per_output_token_j"
    if col in ok.columns and ok[col].notna().any():
        best = ok.loc[ok[col].astype(float).idxmin()]  # type: ignore[call-overload]
        where = f"{_run_name(best)}, {model_name(best.get('model'))}"
        rows.append(("lowest energy per output token [J/token]",
                     f"{cells.number(float(best[col]))} ({where})"))  # fmt: skip
    return rows


def _run_name(row: Any) -> str:
    """A run's readable ``label`` where the frame has one, else its experiment id."""
    label = row.get("label")
    return label if isinstance(label, str) and label else str(row.get("experiment_id", "?"))


def _estimate_note(df: pd.DataFrame, estimates: pd.Series, limit: int = 20) -> str:
    """Which runs' energy is an estimate rather than a measurement; "" when none is."""
    sources = df["energy_source"] if "energy_source" in df.columns else None
    if sources is not None and len(sources.dropna()) and not sources.isin(MEASURED_SOURCES).any():
        return h.note(
            "No energy was measured: every energy figure in this report is an estimate.", "bad"
        )
    if not estimates.any():
        return ""
    rows = df[estimates]
    names = [f"{_run_name(r)} cycle {r.get('cycle', '?')}" for _, r in rows.head(limit).iterrows()]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return h.note(
        f"{len(rows)} of {len(df)} runs have estimated energy (not measured): "
        f"{', '.join(names)}{more}. They are drawn hollow in the figures and marked "
        "'No (estimate)' in the 'measured' column of every run.",
        "bad",
    )


def _hosts(df: pd.DataFrame, envs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Host names the results carry (environment ``hostname``/``host``/``node`` facts)."""
    names = [str(e.get(k)) for e in envs for k in ("hostname", "host", "node") if e.get(k)]
    if "hostname" in df.columns:
        names += [str(v) for v in df["hostname"].dropna().unique()]
    return names


def build_html(
    df: pd.DataFrame,
    *,
    dirs: Iterable[Path] = (),
    title: str | None = None,
    reference: bool = True,
    objective: str = "energy_per_output_token_j",
    where: Mapping[str, Any] | None = None,
    compare: Sequence[decisions.Pair] | None = None,
    anonymise_hosts: bool = False,
) -> str:
    """The report page for ``df`` as one HTML string."""
    dirs = list(dirs)
    envs = records(dirs)
    token = h.SCRUB.set(Scrub(anonymise_hosts, _hosts(df, envs)))
    try:
        return _page(df, dirs, envs, title, reference, objective, where, compare)
    finally:
        h.SCRUB.reset(token)


def _page(
    df: pd.DataFrame,
    dirs: list[Path],
    envs: list[Mapping[str, Any]],
    title: str | None,
    reference: bool,
    objective: str,
    where: Mapping[str, Any] | None,
    compare: Sequence[decisions.Pair] | None,
) -> str:
    advice, rec = decisions.recommendation(df, objective=objective, where=where)
    pairs = decisions.default_pairs(rec) if compare is None else list(compare)
    explain = "B is the recommended configuration." if compare is None else ""
    versus = decisions.comparisons(df, pairs, metric=objective, explain=explain)
    statements, not_stated = methods(df, read_records(dirs), reference=reference)
    studies = sorted({str(s) for s in df["study"].dropna()}) if "study" in df else []
    title = title or "llem_nb report" + (f": {', '.join(studies)}" if studies else "")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = f"generated {stamp} by llem_nb {h.esc(__version__)}"
    failed = df[df["status"] == "failed"] if "status" in df.columns else df.iloc[0:0]
    fail_cols = [c for c in ("label", "cycle", "error_type", "error_category",
                             "error_message") if c in df.columns]  # fmt: skip
    runs = df[[c for c in RUN_COLUMNS if c in df.columns]]
    estimates = estimated(df)
    if estimates.any():
        runs = runs.assign(measured=estimates.map({True: "No (estimate)", False: "Yes"}))
    flags = _flags(df)
    every_run = (
        tables.table("table-runs", runs, keep=["label", "cycle"],
                     summary=f"All {len(runs)} runs")
        + tables.csv_link(df, "runs.csv", f"Download every run, every column (CSV, {len(df)} rows)")
    )  # fmt: skip
    sections = [
        h.section("summary", "Summary", h.kv_table("table-summary", _summary(df))
                  + _estimate_note(df, estimates)),
        h.section("recommendation", "Which configuration to pick", advice),
        h.section("comparison", "How it compares", versus),
        h.section("figures", "Figures", "".join(figures_html(df, reference))),
        h.section("configurations", "Per configuration",
                  tables.table("table-configurations", config_table(df), keep=["label"])),
        h.section("runs", "Every run", every_run),
        h.section("quality", "Quality flags",
                  (tables.table("table-quality", flags, sort=False) if len(flags)
                   else h.note("No quality flags raised."))
                  + (tables.table("table-failures", failed[fail_cols]) if len(failed) else "")),
        h.section("environment", "Environment", environment_html(environment(df, envs))),
        h.section("definitions", "Definitions", h.METHOD),
        h.section("methods", "Methods", methods_html(statements, not_stated)),
    ]  # fmt: skip
    return h.page(title, meta, sections)


def report(
    source: Any,
    path: str | os.PathLike[str] = "report.html",
    *,
    title: str | None = None,
    reference: bool = True,
    objective: str = "energy_per_output_token_j",
    where: Mapping[str, Any] | None = None,
    compare: Sequence[decisions.Pair] | None = None,
    anonymise_hosts: bool = False,
    format: str = "html",
) -> Path:
    """Write the report of ``source`` (DataFrame, StudyResult or results dir) to ``path``.

    ``objective``/``where`` go to ``ll.recommend`` (e.g. ``where={"ttft_ms_p50": "<= 500"}``);
    ``compare``: the (A, B) pairs for ``ll.compare`` (default: the recommended
    configuration against each other one; ``[]`` for none). ``anonymise_hosts``: this
    machine's host names (and any the results record) read ``host-1``, … . Paths into the
    home, cache and temporary directories never appear (a local model reads as its name).
    ``format="pdf"`` prints the page to PDF with headless Chromium (``/usr/bin/chromium``).
    The Methods paragraph states more when ``source`` is a results directory or a
    ``StudyResult`` (their files hold the window rule, baseline length and software
    versions). Raises ``ResultError`` for a missing or empty results directory or an
    empty frame, ``ConfigError`` for an unknown ``format``.
    """
    if format not in ("html", "pdf"):
        raise ConfigError(
            f"report: format {format!r} is not one of 'html', 'pdf'",
            field="format",
            fix="pass format='html' (default) or format='pdf'",
        )
    df, dirs = _frame(source)
    out = Path(path)
    text = build_html(
        df, dirs=dirs, title=title, reference=reference, objective=objective, where=where,
        compare=compare, anonymise_hosts=anonymise_hosts,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "pdf":
        return html_to_pdf(text, out)
    out.write_text(text, encoding="utf-8")
    return out
