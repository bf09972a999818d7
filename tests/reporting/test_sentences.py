"""Every sentence of recommend, compare and the report is true of the tests actually run:
one cycle (no test, said once), two cycles with a tie (not significant, with its p), three
cycles with a clear winner (significant, with its p)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import llem_nb as ll
from llem_nb.reporting.build import build_html
from llem_nb.results.recommend_text import listing, plural


def frame(values: dict[int, list[float]]) -> pd.DataFrame:
    """One config per batch size, one row per cycle, measured and unflagged."""
    rows = [
        {
            "study": "s", "experiment_id": f"e{bs:011d}", "label": f"batch_size={bs}",
            "batch_size": bs, "cycle": cycle, "status": "ok", "quality_ok": True,
            "quality_flags": [], "energy_source": "nvml", "energy_per_output_token_j": value,
            "throughput_output_tok_s": 100.0 * bs,
        }
        for bs, cycles in values.items()
        for cycle, value in enumerate(cycles)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def text_of(page: str, section: str) -> str:
    body = re.search(rf"<section id='{section}'>(.*?)</section>", page, re.S)
    assert body is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.group(1)))


def test_one_cycle_each_claims_no_test_and_says_so_once() -> None:
    df = frame({1: [0.5], 2: [0.3], 4: [0.4]})
    rec = ll.recommend(df, allow_single_cycle=True)
    assert rec.best == "batch_size=2" and rec.table["p_worse_than_best"].isna().all()
    assert "significantly" not in rec.sentence
    assert "(n = 1 cycle)" in rec.sentence and "1 cycles" not in rec.sentence
    assert rec.answer.count("No test") == 1
    assert "No test against the other configs: the pick has a single cycle." in rec.answer
    assert "2 configs with one cycle were used" not in rec.sentence  # 3 were
    assert "3 configs with one cycle were used (allow_single_cycle=True)" in rec.sentence

    page = build_html(df, reference=False)
    advice, versus = text_of(page, "recommendation"), text_of(page, "comparison")
    assert "significantly" not in advice + versus
    assert "No configuration meets the rules: every configuration has a single cycle" in advice
    assert "Allowing single cycles, batch_size=2 is cheapest." in advice
    assert "allow_single_cycle" not in page and "allow_flagged" not in page
    assert "Nothing could be compared" in versus and "table-compare" not in page
    assert "and every configuration here has fewer." in versus
    assert versus.count("two cycles") == 1


def test_two_cycles_tied_are_not_significantly_different_with_their_p() -> None:
    df = frame({1: [0.30, 0.32], 2: [0.305, 0.325]})
    rec = ll.recommend(df)
    p = float(rec.table.set_index("label").loc["batch_size=2", "p_worse_than_best"])
    assert p >= 0.05 and rec.runners_up == ("batch_size=2",)
    assert (
        f"Not significantly worse (one-sided Welch test, p = {p:.2g}): batch_size=2." in rec.answer
    )
    assert "is significantly worse" not in rec.sentence
    assert "(95 % CI " in rec.answer and "n = 2 cycles)" in rec.answer

    c = ll.compare(df, "batch_size=2", "batch_size=1")
    assert not c.significant and c.p_value >= 0.05
    assert c.sentence.startswith("batch_size=1 and batch_size=2 do not differ significantly")
    assert f"p = {c.p_value:.2g}" in c.sentence and "n = 2 cycles each" in c.sentence

    versus = text_of(build_html(df, reference=False), "comparison")
    assert "do not differ significantly" in versus and f"p = {c.p_value:.2g}" in versus


def test_three_cycles_clear_winner_is_significant_with_the_p_range() -> None:
    df = frame({1: [0.50, 0.51, 0.49], 2: [0.30, 0.31, 0.29], 4: [0.40, 0.42, 0.39]})
    rec = ll.recommend(df)
    others = rec.table[~rec.table["best"]]["p_worse_than_best"].astype(float)
    assert rec.best == "batch_size=2" and (others < 0.05).all() and rec.runners_up == ()
    low, high = f"{others.min():.2g}", f"{others.max():.2g}"
    span = low if low == high else f"{low}–{high}"
    assert (
        f"Every other config is significantly worse (one-sided Welch test, p = {span})."
        in rec.answer
    )
    assert "n = 3 cycles" in rec.answer and "No test" not in rec.answer

    c = ll.compare(df, "batch_size=1", "batch_size=2")
    assert c.significant and c.p_value < 0.05 and "do not differ" not in c.sentence
    assert (
        c.sentence.startswith("batch_size=2 uses ") and "less energy per output token" in c.sentence
    )
    assert f"p = {c.p_value:.2g}" in c.sentence and "n = 3 cycles each" in c.sentence

    page = build_html(df, reference=False)
    advice = text_of(page, "recommendation")
    assert "No configuration meets the rules" not in advice
    assert advice.count("significantly worse") == 1


def test_mixed_tested_and_untested_configs_are_named_apart() -> None:
    df = frame({1: [0.50, 0.51, 0.49], 2: [0.30, 0.31, 0.29], 4: [0.40]})
    rec = ll.recommend(df, allow_single_cycle=True)
    assert "batch_size=1 is significantly worse" in rec.answer
    assert "No test against batch_size=4: a test needs two cycles on each side." in rec.answer
    assert "Every other" not in rec.answer


@pytest.mark.parametrize(("count", "text"), [(0, "0 runs"), (1, "1 run"), (2, "2 runs")])
def test_plural_and_listing(count: int, text: str) -> None:
    assert plural(count, "run") == text
    assert listing(["a", "b", "c"]) == "a, b and c" and listing(["a"]) == "a"


def test_estimates_refused_as_a_sentence_about_the_data(tmp_path: Path) -> None:
    df = frame({1: [0.5, 0.52], 2: [0.3, 0.31]}).assign(
        energy_source="estimate", quality_ok=False,
        quality_flags=[["energy_estimated"]] * 4,
    )  # fmt: skip
    advice = text_of(build_html(df, reference=False), "recommendation")
    assert (
        "No configuration meets the rules: every row is an estimate, not a measurement. "
        "Allowing estimates, batch_size=2 is cheapest." in advice
    )
    assert "fix:" not in advice and "FLAGS" not in advice
