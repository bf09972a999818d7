"""What ``recommend`` says: its notes (what was left out and why) and its one-paragraph answer.

Every claim is built from the test actually run: "significantly" appears only next to a
one-sided Welch test and its p-value; a config that could not be tested (one cycle on
either side) is named once as untested, never as worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llem_nb.results.columns import DOCS
from llem_nb.results.compare import metric_phrase
from llem_nb.results.constraints import Limit

if TYPE_CHECKING:
    import pandas as pd


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 cycle``, ``2 cycles``; ``many`` for irregular plurals."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def listing(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def notes_for(
    table: pd.DataFrame,
    limits: list[Limit],
    allow_flagged: bool,
    allow_single_cycle: bool,
) -> list[str]:
    """Flagged or single-cycle rows used or left out, ineligible configs, missed limits."""
    notes = []
    flagged = int(table["n_flagged"].sum())
    rows = plural(flagged, "flagged row")
    if allow_flagged and flagged:
        notes.append(f"{rows} {'was' if flagged == 1 else 'were'} used (allow_flagged=True)")
    elif flagged:
        flags = sorted({f for text in table["flags"] for f in text.split(", ") if f})
        notes.append(
            f"{rows} {'was' if flagged == 1 else 'were'} left out ({', '.join(flags)}); "
            "allow_flagged=True uses them"
        )
    single = int(((table["n"] == 1) & table["eligible"]).sum())
    if allow_single_cycle and single:
        notes.append(
            f"{plural(single, 'config')} with one cycle {'was' if single == 1 else 'were'} "
            "used (allow_single_cycle=True): no interval"
        )
    ineligible = int((~table["eligible"]).sum())
    if ineligible:
        verb = "is" if ineligible == 1 else "are"
        notes.append(
            f"{ineligible} of {len(table)} configs {verb} not eligible (see excluded_because)"
        )
    missed = int((table["eligible"] & ~table["meets"]).sum())
    if limits and missed:
        notes.append(
            f"{plural(missed, 'eligible config')} {'misses' if missed == 1 else 'miss'} the limits"
        )
    return notes


def _p(values: Sequence[float]) -> str:
    """The p-values of a group of tests: one value, or their range."""
    low, high = min(values), max(values)
    return f"p = {low:.2g}" if f"{low:.2g}" == f"{high:.2g}" else f"p = {low:.2g}–{high:.2g}"


def test_sentences(table: pd.DataFrame, alpha: float) -> list[str]:
    """What the tests against the best found, one sentence per outcome, untested said once."""
    if not table["best"].any():
        return []
    best = table[table["best"]].iloc[0]
    others = table[table["eligible"] & table["meets"] & ~table["best"]]
    if others.empty:
        return []
    p = others["p_worse_than_best"].astype(float)
    tested, untested = others[p.notna()], others[p.isna()]
    out = []
    same = tested[tested["p_worse_than_best"].astype(float) >= alpha]
    worse = tested[tested["p_worse_than_best"].astype(float) < alpha]
    if len(same):
        out.append(
            f"Not significantly worse (one-sided Welch test, "
            f"{_p(list(same['p_worse_than_best']))}): {listing(list(same['label']))}."
        )
    if len(worse):
        every = (
            "Every other config" if untested.empty and same.empty else listing(list(worse["label"]))
        )
        verb = "is" if len(worse) == 1 or every.startswith("Every") else "are"
        out.append(
            f"{every} {verb} significantly worse (one-sided Welch test, "
            f"{_p(list(worse['p_worse_than_best']))})."
        )
    if len(untested):
        if int(best["n"]) < 2:
            why = "the pick has a single cycle" if int(best["n"]) == 1 else "the pick has no cycle"
        else:
            why = "a test needs two cycles on each side"
        names = "the other configs" if tested.empty else listing(list(untested["label"]))
        out.append(f"No test against {names}: {why}.")
    return out


def sentence_for(
    table: pd.DataFrame,
    objective: str,
    best: str | None,
    runners: tuple[str, ...],
    front: tuple[str, ...],
    front_metrics: list[tuple[str, bool]],
    limits: list[Limit],
    notes: list[str],
    confidence: float,
) -> str:
    """The pick with its interval and n, the tests against it, the Pareto front, the notes."""
    parts = answer_parts(table, objective, best, front, front_metrics, limits, confidence)
    parts += [f"{note[0].upper()}{note[1:]}." for note in notes]
    return " ".join(parts)


def answer_parts(
    table: pd.DataFrame,
    objective: str,
    best: str | None,
    front: tuple[str, ...],
    front_metrics: list[tuple[str, bool]],
    limits: list[Limit],
    confidence: float,
) -> list[str]:
    """The answer's sentences without the notes (the report words those itself)."""
    unit = DOCS.get(objective, ("", ""))[0]
    limit_text = " and ".join(lim.text() for lim in limits)
    parts = []
    if best is None:
        parts.append(f"No eligible config meets {limit_text}.")
    else:
        row = table[table["best"]].iloc[0]
        level = f"ci{round(confidence * 100):g}"
        mean, low, high = (
            row[f"{objective}_{s}"] for s in ("mean", f"{level}_low", f"{level}_high")
        )
        spread = f"{confidence * 100:g} % CI {low:.4g}–{high:.4g}, " if not math.isnan(low) else ""
        meeting = f", meeting {limit_text}" if limits else ""
        parts.append(
            f"Pick {best}: {metric_phrase(objective)} {mean:.4g} {unit} "
            f"({spread}n = {plural(int(row['n']), 'cycle')}){meeting}."
        )
        parts += test_sentences(table, 1 - confidence)
    if front:
        over = " vs ".join(metric_phrase(m) for m, _ in front_metrics)
        parts.append(f"Pareto front ({over}): {', '.join(front)}.")
    return parts
