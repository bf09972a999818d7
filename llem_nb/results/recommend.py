"""``recommend``: which config to pick for an objective under limits, and what else is as good.

Per config (``by``: study × experiment_id), the mean over its successful cycles of the
objective and of every constrained metric. A config *meets* ``where`` when its means do
(``{"ttft_ms_p90": "<= 500", "throughput_output_tok_s": ">= 100"}``; operators ``<=``,
``<``, ``>=``, ``>``, ``==``, ``!=``; a bare value means ``==``). Among the configs that
meet them, the best mean wins; the *runners-up* are those a one-sided Welch test cannot
call worse than the best (p ≥ 1 − confidence). The *Pareto front* is every eligible
config that no other beats on all of the objective and the constrained metrics at once
(or, with no constraints, the objective and throughput), whether it meets the limits or not.

Rows with quality flags, and configs with a single cycle, are not *eligible*: their
numbers are doubtful or have no spread. ``recommend`` refuses (``ResultError``, naming
each reason) when nothing eligible is left, unless ``allow_flagged`` /
``allow_single_cycle`` say to use them anyway; the answer then says it did.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253 - the DataFrame layer is made of it

from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.columns import POSITIVE, TEXT_DTYPE, higher_is_better
from llem_nb.results.compare import DEFAULT_GROUP
from llem_nb.results.constraints import Limit, Where, parse_where
from llem_nb.results.html import frame_html
from llem_nb.results.labels import format_value
from llem_nb.results.recommend_text import answer_parts, notes_for, sentence_for
from llem_nb.results.stats import (
    analysis_frame,
    check_confidence,
    group_keys,
    interval,
    pareto_mask,
    welch,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Recommendation:
    """The outcome of ``recommend``.

    ``best``: the chosen config's label (None when no eligible config meets ``where``);
    ``runners_up`` / ``pareto``: labels. ``table`` has one row per config: ``label``,
    ``study``, ``experiment_id``, ``n`` (cycles used), ``<objective>_mean``,
    ``<objective>_ci95_low``/``_high``, the mean of each constrained metric, ``eligible``,
    ``meets``, ``excluded_because`` (text or missing), ``best``, ``runner_up``,
    ``pareto``, ``p_worse_than_best``; sorted best first.
    """

    objective: str
    minimize: bool
    where: dict[str, str]
    best: str | None
    runners_up: tuple[str, ...]
    pareto: tuple[str, ...]
    table: pd.DataFrame
    confidence: float
    notes: tuple[str, ...]
    sentence: str
    answer: str = ""
    """The sentence without its notes (the pick, the tests, the front), for reports."""

    def __str__(self) -> str:
        return self.sentence

    def _repr_html_(self) -> str:
        shown = [
            c
            for c in (
                "label", f"{self.objective}_mean", *self.where, "n", "best", "runner_up",
                "pareto", "excluded_because",
            )
            if c in self.table.columns
        ]  # fmt: skip
        return f"<p>{html.escape(self.sentence)}</p>" + frame_html(self.table[shown], max_rows=20)


def _numeric(df: pd.DataFrame, column: str) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(df[column]))


def _configs(
    df: pd.DataFrame,
    keys: list[str],
    objective: str,
    extra: list[str],
    confidence: float,
    allow_flagged: bool,
) -> tuple[pd.DataFrame, dict[tuple[Any, ...], np.ndarray]]:
    """One row per config with its means, and each config's objective values."""
    import pandas as pd

    ok = df[df["status"].eq("ok").fillna(False).to_numpy(dtype=bool)] if "status" in df else df
    flagged = (
        ~ok["quality_ok"].fillna(False).to_numpy(dtype=bool)
        if "quality_ok" in ok.columns
        else np.zeros(len(ok), dtype=bool)
    )
    rows, samples = [], {}
    for key, group in df.groupby(keys, sort=True, dropna=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        mask = ok.index.isin(group.index)
        good = ok[mask & (allow_flagged | ~flagged)]
        bad = ok[mask & flagged]
        values = pd.to_numeric(good[objective], errors="coerce").dropna().to_numpy(dtype=float)
        samples[key] = values
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["label"] = str(group["label"].iloc[0]) if "label" in group else str(key[-1])
        row["n"] = len(values)
        row["n_flagged"] = len(bad)
        flags = sorted({f for fl in bad.get("quality_flags", []) for f in (fl or [])})
        row["flags"] = ", ".join(flags)
        for name in dict.fromkeys(extra):
            if _numeric(df, name):
                column = pd.to_numeric(good[name], errors="coerce")
                row[name] = float(column.mean()) if column.notna().any() else math.nan
            else:
                present = good[name].dropna()
                row[name] = present.iloc[0] if len(present) else None
        rows.append(row)
    table = pd.DataFrame(rows)
    if "study" in table.columns and table["study"].nunique(dropna=False) > 1:
        table["label"] = table["study"].astype(str) + ": " + table["label"]
    mean = np.array([v.mean() if len(v) else math.nan for v in samples.values()])
    std = np.array([v.std(ddof=1) if len(v) > 1 else math.nan for v in samples.values()])
    low, high = interval(
        mean, std, table["n"].to_numpy(), confidence, positive=objective in POSITIVE
    )
    label = f"ci{round(confidence * 100):g}"
    table.insert(len(keys) + 2, f"{objective}_mean", mean)
    table.insert(len(keys) + 3, f"{objective}_{label}_low", low)
    table.insert(len(keys) + 4, f"{objective}_{label}_high", high)
    return table, samples


def _one_sided_worse(best: np.ndarray, other: np.ndarray, minimize: bool) -> float:
    """p of "``other`` is worse than ``best``" (one-sided Welch); NaN without two values each."""
    if len(best) < 2 or len(other) < 2:
        return math.nan
    t, _, p, _ = welch(best, other)
    worse = t if minimize else -t
    return p / 2 if worse > 0 else 1 - p / 2


def recommend(
    df: pd.DataFrame,
    objective: str = "energy_per_output_token_j",
    where: Where | None = None,
    *,
    minimize: bool | None = None,
    pareto: Sequence[str] | None = None,
    confidence: float = 0.95,
    allow_flagged: bool = False,
    allow_single_cycle: bool = False,
    by: str | Sequence[str] = DEFAULT_GROUP,
) -> Recommendation:
    """The best config for ``objective`` among those meeting ``where``, with its runners-up
    and the Pareto front.

    ``minimize``: default from the metric (throughputs are maximised, energy, power and
    latencies minimised). ``pareto``: the metrics of the front (default: the objective
    and the constrained numeric metrics, or the objective and throughput). A bad
    ``where`` or an unknown column raises ``ConfigError`` naming it; ``ResultError``
    when no config is eligible, saying why and how to allow it.
    """
    df = analysis_frame(df, "recommend")
    for column, field in ((objective, "objective"), *((p, "pareto") for p in pareto or ())):
        if column not in df.columns or not _numeric(df, column):
            raise ConfigError(
                f"recommend: {field} {column!r} is not a numeric column of the frame",
                field=field,
                fix="pick e.g. energy_per_output_token_j, throughput_output_tok_s, ttft_ms_p90",
            )
    check_confidence(confidence, "recommend")
    keys = group_keys(df, by, "recommend")
    low_wins = not higher_is_better(objective) if minimize is None else minimize
    limits = parse_where(where, df)
    front_metrics = _front_metrics(objective, low_wins, limits, pareto, df)
    extra = [m for m, _ in front_metrics if m != objective]
    extra += [lim.column for lim in limits if lim.column != objective]
    table, samples = _configs(df, keys, objective, extra, confidence, allow_flagged)
    need = 1 if allow_single_cycle else 2
    why: list[Any] = []
    for row in [{str(k): v for k, v in r.items()} for r in table.to_dict("records")]:
        if row["n"] == 0 and row["n_flagged"]:
            why.append(f"all {row['n_flagged']} successful rows flagged ({row['flags']})")
        elif row["n"] == 0:
            why.append(f"no successful cycle with {objective}")
        elif row["n"] < need:
            why.append(f"{row['n']} cycle: no spread to test (allow_single_cycle=True to use it)")
        else:
            why.append(None)
    table["eligible"] = [w is None for w in why]
    table["excluded_because"] = why
    eligible = table["eligible"].to_numpy(dtype=bool)
    if not eligible.any():
        labels = table["label"].astype(str).tolist()
        reasons = "; ".join(f"{label}: {w}" for label, w in zip(labels, why, strict=True))
        fixes = []
        if any("flagged" in str(w) for w in why):
            fixes.append(
                "pass allow_flagged=True to recommend from flagged rows anyway (the flags are "
                "listed in llem_nb.measure.quality.FLAGS)"
            )
        if any("1 cycle" in str(w) for w in why):
            fixes.append("run more cycles (Study.cycles(3)) or pass allow_single_cycle=True")
        raise ResultError(
            f"recommend: no config is eligible for a recommendation ({reasons})",
            fix="; ".join(fixes) or "check the objective column: it has no values",
        )
    mean_col = f"{objective}_mean"
    meets, misses = [], []
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in table.to_dict("records")
    ]
    for row in records:
        failed = [
            lim.text() for lim in limits
            if not lim.holds(row[mean_col] if lim.column == objective else row.get(lim.column))
        ]  # fmt: skip
        meets.append(not failed)
        misses.append(failed)
    table["meets"] = meets
    table.loc[eligible & ~table["meets"].to_numpy(dtype=bool), "excluded_because"] = [
        "misses " + ", ".join(m) for m, e, ok in zip(misses, eligible, meets, strict=True)
        if e and not ok
    ]  # fmt: skip
    pool = eligible & table["meets"].to_numpy(dtype=bool)
    means = table[mean_col].to_numpy(dtype=float)
    best_i: int | None = None
    if pool.any():
        candidates = np.flatnonzero(pool)
        best_i = int(candidates[np.argmin(means[candidates] if low_wins else -means[candidates])])
    table["best"] = [i == best_i for i in range(len(table))]
    sample_list = list(samples.values())
    p_worse = [
        _one_sided_worse(sample_list[best_i], sample_list[i], low_wins)
        if best_i is not None and i != best_i and pool[i] else math.nan
        for i in range(len(table))
    ]  # fmt: skip
    table["p_worse_than_best"] = p_worse
    alpha = 1 - confidence
    table["runner_up"] = [bool(p >= alpha) for p in p_worse]
    columns = [(mean_col if m == objective else m, low) for m, low in front_metrics]
    table["pareto"] = pareto_mask(
        np.column_stack([table[c].to_numpy(dtype=float) for c, _ in columns]),
        [low for _, low in columns],
        eligible,
    )
    import pandas as pd

    table["excluded_because"] = pd.array(list(table["excluded_because"]), dtype=TEXT_DTYPE)
    table = _order(table, mean_col, low_wins)
    best = str(table.loc[table["best"], "label"].iloc[0]) if best_i is not None else None
    runners = tuple(table.loc[table["runner_up"], "label"].astype(str))
    front = tuple(table.loc[table["pareto"], "label"].astype(str))
    notes = notes_for(table, limits, allow_flagged, allow_single_cycle)
    where_text = {lim.column: f"{lim.op} {format_value(lim.value)}" for lim in limits}
    sentence = sentence_for(
        table, objective, best, runners, front, front_metrics, limits, notes, confidence
    )
    return Recommendation(
        objective=objective,
        minimize=low_wins,
        where=where_text,
        best=best,
        runners_up=runners,
        pareto=front,
        table=table.reset_index(drop=True),
        confidence=confidence,
        notes=tuple(notes),
        sentence=sentence,
        answer=" ".join(
            answer_parts(table, objective, best, front, front_metrics, limits, confidence)
        ),
    )


def _front_metrics(
    objective: str,
    low_wins: bool,
    limits: list[Limit],
    pareto: Sequence[str] | None,
    df: pd.DataFrame,
) -> list[tuple[str, bool]]:
    """(metric, lower is better) of the Pareto front, the objective first."""
    if pareto:
        names = [objective, *(m for m in pareto if m != objective)]
    else:
        names = [objective]
        names += [
            lim.column for lim in limits if lim.column != objective and _numeric(df, lim.column)
        ]
        if len(names) == 1:
            partner = (
                "throughput_output_tok_s"
                if objective != "throughput_output_tok_s"
                else "energy_per_output_token_j"
            )
            if partner in df.columns:
                names.append(partner)
    names = list(dict.fromkeys(names))
    return [(m, low_wins if m == objective else not higher_is_better(m)) for m in names]


def _order(table: pd.DataFrame, mean_col: str, low_wins: bool) -> pd.DataFrame:
    """Best first, then the configs meeting the limits by objective, then the rest."""
    rank = np.where(
        table["best"],
        0,
        np.where(table["eligible"] & table["meets"], 1, np.where(table["eligible"], 2, 3)),
    )
    score = table[mean_col].to_numpy(dtype=float) * (1.0 if low_wins else -1.0)
    order = np.lexsort((np.nan_to_num(score, nan=np.inf), rank))
    return table.iloc[order]
