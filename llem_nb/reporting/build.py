"""``llem_nb.report(df_or_results_dir, "report.html")``: one self-contained HTML file.

Summary, the recommended configuration (``ll.recommend``) and how it compares with the
others (``ll.compare``), figures (base64 PNG), per-configuration and per-run tables,
quality flags, failures, environment, the definitions, and last a Methods paragraph
written from the results (``reporting.methods``) that credits the published reference.
No external URL anywhere: it opens offline and can be mailed as is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem_nb import plots
from llem_nb._version import __version__
from llem_nb.errors import LlemError, ResultError
from llem_nb.measure.quality import FLAGS
from llem_nb.plots.base import MEASURED_SOURCES, estimated, short
from llem_nb.reporting import decisions
from llem_nb.reporting import html as h
from llem_nb.reporting.methods import methods, methods_html, read_records
from llem_nb.results.stats import summarize

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

RUN_COLUMNS = [
    "experiment_id", "cycle", "status", "model", "backend", "precision", "batch_size",
    "output_tokens", "window_s", "throughput_output_tok_s", "energy_source", "energy_gross_j",
    "energy_net_j", "energy_per_output_token_j", "energy_per_output_token_net_j", "quality_ok",
]  # fmt: skip
_CONFIG_KEYS = ["model", "backend", "precision", "batch_size", "max_output_tokens", "n_prompts"]
_METRICS = {
    "energy_per_output_token_j": "J/out tok (gross)",
    "energy_per_output_token_net_j": "J/out tok (net)",
    "throughput_output_tok_s": "out tok/s",
    "ttft_ms_p50": "TTFT p50 ms",
    "itl_ms_p50": "ITL p50 ms",
    "avg_power_w": "avg power W",
}
_ENV_HIDDEN = {"python_executable"}


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


def _environment(df: pd.DataFrame, dirs: Iterable[Path], limit: int = 200) -> list[tuple[str, str]]:
    """Distinct values of each environment fact over the results (files read when known)."""
    facts: dict[str, set[str]] = {}
    for column in ("gpu_name", "driver_version", "llem_nb_version", "runner", "image"):
        if column in df.columns:
            facts[column] = {str(v) for v in df[column].dropna().unique() if str(v)}
    seen = 0
    for directory in dirs:
        for path in sorted(directory.rglob("*.result.json")):
            if seen >= limit:
                break
            seen += 1
            try:
                env = json.loads(path.read_text()).get("environment") or {}
            except (OSError, ValueError):
                continue
            for key, value in env.items():
                if key not in _ENV_HIDDEN and value not in (None, "", [], {}):
                    facts.setdefault(key, set()).add(_fact(value))
    return [(k, "; ".join(sorted(v))) for k, v in facts.items() if v]


def _fact(value: Any) -> str:
    """An environment value as one line; a list of per-device dicts as ``k=v`` groups."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return " | ".join(", ".join(f"{k}={v}" for k, v in d.items()) for d in value)
    return str(value)


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
        out["model"] = out["model"].map(short)
    out["ok/runs"] = [f"{k}/{n}" for k, n in zip(stats["n_ok"], stats["n_runs"], strict=True)]
    for metric, name in _METRICS.items():
        if f"{metric}_mean" not in stats.columns or stats[f"{metric}_mean"].isna().all():
            continue
        mean, high = stats[f"{metric}_mean"], stats[f"{metric}_ci95_high"]
        out[name] = [
            "—" if m != m else (f"{m:.4g} ± {hi - m:.2g}" if hi == hi else f"{m:.4g}")
            for m, hi in zip(mean, high, strict=True)
        ]
    return out


def _flags(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if "quality_flags" not in df.columns:
        return pd.DataFrame(columns=["flag", "rows", "meaning"])
    counts = df["quality_flags"].explode().dropna().value_counts()

    rows = [(str(k), int(v), FLAGS.get(str(k), "")) for k, v in counts.items() if k]
    return pd.DataFrame(rows, columns=["flag", "rows", "meaning"])


def _figures(df: pd.DataFrame, reference: bool) -> list[str]:
    """Every figure the data supports, embedded; the others as a one-line reason."""

    specs: list[tuple[str, str, Callable[[], Figure]]] = [
        ("fig-energy-per-token", "Energy per output token vs batch size (gross solid, net "
         "dashed; error bars: 95 % confidence interval over cycles)",
         lambda: plots.energy_per_token(df)),
        ("fig-pareto", "Throughput vs energy per output token, one point per configuration; "
         "the Pareto front is outlined", lambda: plots.throughput_vs_energy(df)),
        ("fig-prefill-decode", "Energy per output token split into prefill and decode",
         lambda: plots.prefill_decode(df)),
        ("fig-power", "GPU power over one experiment, window and phases shaded",
         lambda: plots.power_timeseries(_first_ok(df))),
    ]  # fmt: skip
    if reference:
        specs.append(_reference_spec(df))
    out = []
    for fig_id, caption, draw in specs:
        try:
            out.append(h.figure(fig_id, h.figure_png(draw()), caption))
        except LlemError as exc:
            out.append(h.note(f"{caption}: not drawn — {exc.message}"))
    return out


def _reference_spec(df: pd.DataFrame) -> tuple[str, str, Callable[[], Figure]]:
    """Ours against the published figures of our model; without one, every published
    model on our GPU for scale (both a different method, said on the figure)."""
    try:
        plots.match_reference(df)
    except LlemError:

        def overlay() -> Figure:
            fig = plots.energy_per_token(df, net=False, reference=True)
            fig.axes[0].set_yscale("log")
            return fig

        return ("fig-reference", "Our points with every published ML.ENERGY v3 model on the "
                "matching GPU (hollow diamonds; none is our model, and theirs is a different "
                "method: see Methods)", overlay)  # fmt: skip
    return ("fig-reference", "Our energy per output token next to the published ML.ENERGY v3 "
            "figures of the same model, matched by batch (a different method: see the note "
            "under the axes and Methods)", lambda: plots.reference(df))  # fmt: skip


def _first_ok(df: pd.DataFrame) -> Any:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if ok.empty:
        raise LlemError("no successful experiment to show")
    return ok.iloc[0]


def _summary(df: pd.DataFrame) -> list[tuple[str, Any]]:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df

    def distinct(column: str) -> str:
        if column not in df.columns:
            return "—"
        return ", ".join(sorted({short(v) for v in df[column].dropna().unique()}))

    rows: list[tuple[str, Any]] = [
        ("studies", distinct("study")),
        ("runs (experiment × cycle)", len(df)),
        ("successful / failed", f"{len(ok)} / {len(df) - len(ok)}"),
        ("configurations", df["experiment_id"].nunique() if "experiment_id" in df else "—"),
        ("models", distinct("model")),
        ("backends", distinct("backend")),
        ("energy sources", distinct("energy_source")),
        ("rows passing quality_ok", int(df["quality_ok"].sum()) if "quality_ok" in df else "—"),
        ("measured time, total [s]", float(ok["window_s"].sum()) if "window_s" in ok else None),
        ("gross energy, total [J]", float(ok["energy_gross_j"].sum(min_count=1))
         if "energy_gross_j" in ok else None),
    ]  # fmt: skip
    col = "energy_per_output_token_j"
    if col in ok.columns and ok[col].notna().any():
        best = ok.loc[ok[col].astype(float).idxmin()]  # type: ignore[call-overload]
        where = f"batch size {best.get('batch_size')}, {short(best.get('model'))}"
        rows.append(("lowest energy per output token [J]", f"{best[col]:.4g} ({where})"))
    return rows


def _run_name(row: Any) -> str:
    """A run's readable ``label`` where the frame has one, else its experiment id."""
    label = row.get("label")
    return label if isinstance(label, str) and label else str(row.get("experiment_id", "?"))


def _estimate_note(df: pd.DataFrame, estimates: pd.Series, limit: int = 20) -> str:
    """Which runs' energy is an estimate rather than a measurement; "" when none is."""
    sources = df["energy_source"] if "energy_source" in df.columns else None
    if sources is not None and len(sources.dropna()) and not sources.isin(MEASURED_SOURCES).any():
        return h.note("No measured energy source: energy figures are estimates.", "bad")
    if not estimates.any():
        return ""
    rows = df[estimates]
    names = [f"{_run_name(r)} cycle {r.get('cycle', '?')}" for _, r in rows.head(limit).iterrows()]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return h.note(
        f"{len(rows)} of {len(df)} runs have estimated energy (not measured): "
        f"{', '.join(names)}{more}. They are drawn hollow in the figures and marked "
        "'no: estimate' in the 'measured' column of every run.",
        "bad",
    )


def build_html(
    df: pd.DataFrame,
    *,
    dirs: Iterable[Path] = (),
    title: str | None = None,
    reference: bool = True,
    objective: str = "energy_per_output_token_j",
    where: Mapping[str, Any] | None = None,
    compare: Sequence[decisions.Pair] | None = None,
) -> str:
    """The report page for ``df`` as one HTML string."""
    dirs = list(dirs)
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
    fail_cols = [c for c in ("experiment_id", "cycle", "error_type", "error_category",
                             "error_message") if c in df.columns]  # fmt: skip
    runs = df[[c for c in RUN_COLUMNS if c in df.columns]]
    estimates = estimated(df)
    if estimates.any():
        runs = runs.assign(measured=estimates.map({True: "no: estimate", False: "yes"}))
    flags = _flags(df)
    sections = [
        h.section("summary", "Summary", h.kv_table("table-summary", _summary(df))
                  + _estimate_note(df, estimates)),
        h.section("recommendation", "Which configuration to pick", advice),
        h.section("comparison", "How it compares", versus),
        h.section("figures", "Figures", "".join(_figures(df, reference))),
        h.section("configurations", "Per configuration",
                  h.frame_table("table-configurations", config_table(df))),
        h.section("runs", "Every run", h.frame_table("table-runs", runs)),
        h.section("quality", "Quality flags",
                  (h.frame_table("table-quality", flags) if len(flags)
                   else h.note("No quality flags raised."))
                  + (h.frame_table("table-failures", failed[fail_cols]) if len(failed) else "")),
        h.section("environment", "Environment",
                  h.kv_table("table-environment", _environment(df, dirs))),
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
) -> Path:
    """Write the report of ``source`` (DataFrame, StudyResult or results dir) to ``path``.

    ``objective``/``where`` go to ``ll.recommend`` (e.g. ``where={"ttft_ms_p50": "<= 500"}``);
    ``compare``: the (A, B) pairs for ``ll.compare`` (default: the recommended
    configuration against each other one; ``[]`` for none). The Methods paragraph states
    more when ``source`` is a results directory or a ``StudyResult`` (their files hold the
    window rule, baseline length and software versions). Raises ``ResultError`` for a
    missing or empty results directory or an empty frame.
    """
    df, dirs = _frame(source)
    out = Path(path)
    text = build_html(
        df, dirs=dirs, title=title, reference=reference, objective=objective, where=where,
        compare=compare,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
