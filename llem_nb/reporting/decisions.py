"""The report's answers: which configuration to pick (``ll.recommend``) and how it compares
with the others (``ll.compare``), as HTML sections written for a reader, not a programmer.

``recommend`` refuses flagged or single-cycle rows; the report then says in a sentence
what about the data stood in the way, and what the pick would be with it allowed. The
comparisons put the recommended configuration (B) against each other one (A) on the
objective; the table is drawn only when a test could be run, and otherwise one
sentence says why nothing was compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.measure.quality import FLAGS
from llem_nb.reporting import cells, tables
from llem_nb.reporting import html as h
from llem_nb.results.compare import compare, metric_phrase
from llem_nb.results.recommend import recommend
from llem_nb.results.recommend_text import listing, plural

if TYPE_CHECKING:
    import pandas as pd

Selector = str | Mapping[str, Any]
Pair = tuple[Selector, Selector]
MAX_PAIRS = 8
_ESTIMATE = "energy_estimated"


def recommendation(
    df: pd.DataFrame,
    *,
    objective: str,
    where: Mapping[str, Any] | None,
) -> tuple[str, Any]:
    """The recommendation section's HTML and the ``Recommendation`` it shows (or None)."""
    limits = ", ".join(f"{k} {v}" for k, v in (where or {}).items()) or "none"
    ask = f"Objective: {metric_phrase(objective)}; limits: {limits}."
    head = f"<p class='constants' id='recommend-ask'>{h.esc(ask)}</p>"
    try:
        rec = recommend(df, objective, where)
        return head + _body(rec, _left_out(rec.table)), rec
    except LlemError:
        pass
    try:
        rec = recommend(df, objective, where, allow_flagged=True, allow_single_cycle=True)
    except LlemError:
        text = (
            f"No configuration can be recommended: none has a value of {metric_phrase(objective)}."
        )
        return head + h.note(text, "bad"), None
    return head + _body(rec, refusal(rec)), rec


def refusal(rec: Any) -> str:
    """Why the strict rules left nothing, as a sentence about the data, and the relaxed pick."""
    table = rec.table
    flagged = table[(table["n_flagged"] > 0) & (table["n_flagged"] >= table["n"])]
    flags = sorted({f for text in flagged["flags"] for f in str(text).split(", ") if f})
    single = table[table["n"] < 2]
    reasons, allowing = [], []
    if len(flagged) and flags == [_ESTIMATE]:
        names = listing(list(flagged["label"]))
        reasons.append(
            "every row is an estimate, not a measurement"
            if len(flagged) == len(table)
            else f"the rows of {names} are estimates, not measurements"
        )
        allowing.append("estimates")
    elif len(flagged):
        meanings = "; ".join(FLAGS.get(f, f) for f in flags)
        whose = "every configuration's rows" if len(flagged) == len(table) else (
            f"the rows of {listing(list(flagged['label']))}")  # fmt: skip
        reasons.append(f"{whose} carry quality flags ({meanings})")
        allowing.append("flagged rows")
    if len(single):
        verb = "has" if len(single) == 1 else "have"
        reasons.append(
            "every configuration has a single cycle, so none has a spread to test"
            if len(single) == len(table)
            else f"{listing(list(single['label']))} {verb} a single cycle"
        )
        allowing.append("single cycles")
    text = f"No configuration meets the rules: {'; '.join(reasons) or 'none is eligible'}."
    if rec.best is not None:
        word = "cheapest" if rec.objective.startswith("energy") and rec.minimize else "best"
        text += f" Allowing {' and '.join(allowing) or 'them'}, {rec.best} is {word}."
    return h.note(text[0].upper() + text[1:], "bad")


def _left_out(table: pd.DataFrame) -> str:
    """Flagged rows or configurations the strict rules left out, said once."""
    out = []
    flagged = int(table["n_flagged"].sum())
    if flagged:
        verb = "was" if flagged == 1 else "were"
        out.append(f"{plural(flagged, 'run')} with quality flags {verb} left out.")
    ineligible = table[~table["eligible"].astype(bool)]
    if len(ineligible):
        out.append(f"Not considered: {listing(list(ineligible['label']))} (see the last column).")
    return h.note(" ".join(out)) if out else ""


def _body(rec: Any, before: str) -> str:
    return (
        before
        + f"<p class='answer' id='recommend-sentence'>{h.esc(rec.answer or rec.sentence)}</p>"
        + tables.table("table-recommend", _rec_table(rec), sort=False, keep=["label"])
    )


def _rec_table(rec: Any) -> pd.DataFrame:
    """The recommendation's table, narrow: the interval as one column, API words removed."""
    import pandas as pd

    t = rec.table
    level = f"ci{round(rec.confidence * 100):g}"
    mean, low, high = (f"{rec.objective}_{s}" for s in ("mean", f"{level}_low", f"{level}_high"))
    out = pd.DataFrame({"configuration": t["label"].astype(str)})
    if "study" in t.columns and t["study"].nunique() > 1:
        out.insert(0, "study", t["study"])
    out[tables.header(rec.objective)] = t[mean].astype(float)
    out[f"{rec.confidence * 100:g} % CI"] = [
        "—" if lo != lo else f"{cells.cell(lo)}–{cells.cell(hi)}"
        for lo, hi in zip(t[low], t[high], strict=True)
    ]
    for column in rec.where:
        if column in t.columns and column != rec.objective:
            out[tables.header(column)] = t[column].map(cells.cell)
    out["cycles"] = t["n"]
    tested = t["p_worse_than_best"].notna().any()
    shown = (("best", "pick"), ("runner_up", "not worse"), ("pareto", "Pareto"))
    for column, name in shown if tested else (shown[0], shown[2]):
        out[name] = t[column].astype(bool)
    out["p (worse than pick)"] = t["p_worse_than_best"].map(cells.p_value)
    reasons = pd.Series(
        [None if pd.isna(w) else re.sub(r"\s*\([^)]*=True[^)]*\)", "", str(w))
         for w in t["excluded_because"]],
        dtype=object,
    )  # fmt: skip
    if reasons.notna().any():
        out["left out because"] = reasons
    return out.rename(columns={"configuration": "label"}).reset_index(drop=True)


def default_pairs(rec: Any, limit: int = MAX_PAIRS) -> list[Pair]:
    """The recommended configuration (B) against each other one in its table (A)."""
    if rec is None or rec.best is None:
        return []
    table = rec.table
    keys = [c for c in ("study", "experiment_id") if c in table.columns]

    def selector(row: Any) -> Selector:
        return {k: row[k] for k in keys} if keys else str(row["label"])

    is_best = table["best"].astype(bool) if "best" in table else table["label"] == rec.best
    if not is_best.any():
        return []
    chosen = selector(table[is_best].iloc[0])
    others = table[~is_best]
    return [(selector(row), chosen) for _, row in others.head(limit).iterrows()]


def comparisons(
    df: pd.DataFrame,
    pairs: Sequence[Pair],
    *,
    metric: str,
    explain: str = "",
) -> str:
    """The comparisons section: a table of the tests run and each one's sentence."""
    import pandas as pd

    if not pairs:
        return h.note("No comparison: there is no recommended configuration to compare with.")
    rows: list[dict[str, Any]] = []
    sentences: list[str] = []
    caveats: dict[str, None] = {}
    untested: list[str] = []
    for a, b in pairs:
        try:
            c = compare(df, a, b, metric)
        except LlemError:
            untested.append(_name(df, a))
            continue
        suffix = " Caveats: " + "; ".join(c.caveats) + "." if c.caveats else ""
        sentences.append(c.sentence.removesuffix(suffix) if suffix else c.sentence)
        caveats.update(dict.fromkeys(c.caveats))
        rows.append({
            "A": c.a, "B": c.b, "B vs A": f"{c.change_pct:+.1f} % ± {c.change_pct_pm:.1f} %",
            "ratio B/A [95 % CI]": f"{c.ratio:.3g} [{c.ratio_low:.3g}, {c.ratio_high:.3g}]",
            "p (Welch)": f"{c.p_value:.2g}", "cycles A / B": f"{c.n_a} / {c.n_b}",
        })  # fmt: skip
    why = f"Compared on {metric_phrase(metric)}. {explain}".strip()
    if not rows:
        few = [n for n in dict.fromkeys(untested + [_name(df, b) for _, b in pairs])
               if _cycles(df, n, metric) < 2]  # fmt: skip
        every = "label" in df.columns and set(few) >= set(df["label"].astype(str))
        who = "every configuration here" if every else listing(few) or "the configurations"
        verb = "has" if len(few) == 1 or every else "have"
        return h.note(
            "Nothing could be compared: a statistical test needs at least two cycles of each "
            f"configuration, and {who} {verb} fewer. Run more cycles to compare them."
        )
    listed = "".join(f"<li>{h.esc(s)}</li>" for s in sentences)
    after = h.note(f"Caveats: {'; '.join(caveats)}.") if caveats else ""
    if untested:
        after += h.note(f"Not compared (fewer than two cycles on a side): {listing(untested)}.")
    return (
        h.note(why)
        + tables.table("table-compare", pd.DataFrame(rows), sort=False, keep=["A", "B"])
        + f"<ul id='compare-sentences'>{listed}</ul>"
        + after
    )


def _cycles(df: pd.DataFrame, label: str, metric: str) -> int:
    """Successful cycles of the configuration named ``label`` with a value of ``metric``."""
    if "label" not in df.columns or metric not in df.columns:
        return 0
    rows = df[df["label"].astype(str) == label]
    if "status" in rows.columns:
        rows = rows[rows["status"].astype(str) == "ok"]
    return int(rows[metric].notna().sum())


def _name(df: pd.DataFrame, selector: Selector) -> str:
    """A selector as the configuration's label (never its hash)."""
    if isinstance(selector, Mapping) and "label" in df.columns:
        mask = None
        for k, v in selector.items():
            if k in df.columns:
                hit = df[k] == v
                mask = hit if mask is None else mask & hit
        if mask is not None and mask.any():
            return str(df.loc[mask, "label"].iloc[0])
    if isinstance(selector, Mapping):
        return ", ".join(f"{k}={v}" for k, v in selector.items() if k != "experiment_id")
    return str(selector)
