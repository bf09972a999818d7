"""The report's answers: which configuration to pick (``ll.recommend``) and how it compares
with the others (``ll.compare``), as HTML sections.

``recommend`` refuses flagged or single-cycle rows; the report then says why, and shows
what it would pick with them allowed, marked as such. The comparisons put the recommended
configuration (B) against each other one (A) on the objective, each with its sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llem_nb.errors import LlemError
from llem_nb.reporting import html as h
from llem_nb.results.compare import compare
from llem_nb.results.recommend import recommend

if TYPE_CHECKING:
    import pandas as pd

Selector = str | Mapping[str, Any]
Pair = tuple[Selector, Selector]
MAX_PAIRS = 8


def recommendation(
    df: pd.DataFrame,
    *,
    objective: str,
    where: Mapping[str, Any] | None,
) -> tuple[str, Any]:
    """The recommendation section's HTML and the ``Recommendation`` it shows (or None)."""
    limits = ", ".join(f"{k} {v}" for k, v in (where or {}).items()) or "none"
    head = h.kv_table("table-recommend-ask", [("objective", objective), ("limits", limits)])
    try:
        rec = recommend(df, objective, where)
        return head + _recommendation_body(rec), rec
    except LlemError as exc:
        refused = h.note(f"No recommendation on the strict rules: {exc}", "bad")
    try:
        rec = recommend(df, objective, where, allow_flagged=True, allow_single_cycle=True)
    except LlemError as exc:
        return head + refused + h.note(f"Not even with them allowed: {exc}", "bad"), None
    relaxed = h.note(
        "With flagged and single-cycle rows allowed (read with care: their numbers are "
        "doubtful or have no spread):"
    )
    return head + refused + relaxed + _recommendation_body(rec), rec


def _recommendation_body(rec: Any) -> str:
    table = rec.table.copy()
    hidden = [c for c in ("study", "experiment_id") if c in table.columns]
    if "study" in table.columns and table["study"].nunique() > 1:
        hidden.remove("study")
    notes = "".join(h.note(str(n)) for n in getattr(rec, "notes", ()) or ())
    return (
        f"<p class='answer' id='recommend-sentence'>{h.esc(rec.sentence)}</p>"
        + notes
        + h.frame_table("table-recommend", table.drop(columns=hidden))
    )


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
    """The comparisons section: one row per pair, and each pair's sentence."""
    if not pairs:
        return h.note("No comparison: there is no recommended configuration to compare with.")
    rows: list[tuple[Any, ...]] = []
    sentences: list[str] = []
    for a, b in pairs:
        try:
            c = compare(df, a, b, metric)
        except LlemError as exc:
            rows.append((_name(a), _name(b), "—", "—", "—", "—", str(exc.message)))
            continue
        rows.append(
            (
                c.a, c.b, f"{c.change_pct:+.1f} % ± {c.change_pct_pm:.1f} %",
                f"{c.ratio:.3g} [{c.ratio_low:.3g}, {c.ratio_high:.3g}]",
                f"{c.p_value:.2g}", f"{c.n_a} / {c.n_b}", "; ".join(c.caveats) or "—",
            )
        )  # fmt: skip
        sentences.append(c.sentence)
    import pandas as pd

    table = pd.DataFrame(
        rows, columns=["A", "B", "B vs A", "ratio B/A [95 % CI]", "p (Welch)", "n A / B", "caveats"]
    )
    listed = "".join(f"<li>{h.esc(s)}</li>" for s in sentences)
    return (
        h.frame_table("table-compare", table)
        + (f"<ul id='compare-sentences'>{listed}</ul>" if listed else "")
        + h.note(f"Metric: {metric}. {explain}".strip())
    )


def _name(selector: Selector) -> str:
    if isinstance(selector, Mapping):
        return ", ".join(f"{k}={v}" for k, v in selector.items())
    return str(selector)
