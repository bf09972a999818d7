"""What ``recommend`` says: its notes (what was left out and why) and its one-paragraph answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llem_nb.results.constraints import Limit

if TYPE_CHECKING:
    import pandas as pd


def notes_for(
    table: pd.DataFrame,
    limits: list[Limit],
    allow_flagged: bool,
    allow_single_cycle: bool,
) -> list[str]:
    """Flagged or single-cycle rows used or left out, ineligible configs, missed limits."""
    notes = []
    flagged = int(table["n_flagged"].sum())
    if allow_flagged and flagged:
        notes.append(f"{flagged} flagged rows were used (allow_flagged=True)")
    elif flagged:
        flags = sorted({f for text in table["flags"] for f in text.split(", ") if f})
        notes.append(
            f"{flagged} flagged rows were left out ({', '.join(flags)}); "
            "allow_flagged=True uses them"
        )
    single = int(((table["n"] == 1) & table["eligible"]).sum())
    if allow_single_cycle and single:
        notes.append(f"{single} configs have one cycle: no interval, no test against the best")
    ineligible = int((~table["eligible"]).sum())
    if ineligible:
        notes.append(
            f"{ineligible} of {len(table)} configs are not eligible (see excluded_because)"
        )
    missed = int((table["eligible"] & ~table["meets"]).sum())
    if limits and missed:
        notes.append(f"{missed} eligible configs miss the limits")
    return notes


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
    """The pick with its interval and n, the runners-up, the Pareto front, then the notes."""
    from llem_nb.results.columns import DOCS  # noqa: PLC0415 - keeps recommend_text light (numpy, pandas)
    from llem_nb.results.compare import metric_phrase  # noqa: PLC0415 - keeps recommend_text light (numpy)

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
        spread = f"{confidence * 100:g} % CI {low:.4g}–{high:.4g}, " if low == low else ""
        meeting = f", meeting {limit_text}" if limits else ""
        parts.append(
            f"Pick {best}: {metric_phrase(objective)} {mean:.4g} {unit} "
            f"({spread}n = {int(row['n'])} cycles){meeting}."
        )
        if runners:
            parts.append(f"Not significantly worse (one-sided Welch test): {', '.join(runners)}.")
        elif int((table["eligible"] & table["meets"]).sum()) > 1:
            others = "Every other config meeting the limits" if limits else "Every other config"
            parts.append(f"{others} is significantly worse.")
    if front:
        over = " vs ".join(metric_phrase(m) for m, _ in front_metrics)
        parts.append(f"Pareto front ({over}): {', '.join(front)}.")
    parts += [f"{note[0].upper()}{note[1:]}." for note in notes]
    return " ".join(parts)
