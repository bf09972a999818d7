"""The report's recommendation and comparison sections, through the real ``ll.recommend``
and ``ll.compare``, checked against means and ratios computed here from the frame."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import llem_nb
from llem_nb.reporting.build import build_html
from llem_nb.results.frame import load_results
from tests.support.nb_data import measured_results

METRIC = "energy_per_output_token_j"


@pytest.fixture(scope="module")
def df(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_results(measured_results(tmp_path_factory.mktemp("decide"), cycles=3))


def _section(page: str, anchor: str) -> str:
    found = re.search(rf"<section id='{anchor}'>(.*?)</section>", page, re.S)
    assert found is not None, anchor
    return unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def _pct(value: float) -> str:
    """A change in percent as the sentences print it (one decimal below 10 %)."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _means(df: pd.DataFrame) -> pd.Series:
    return df.groupby("label", observed=True)[METRIC].mean()


def test_refused_recommendation_says_why_then_shows_the_relaxed_answer(df: pd.DataFrame) -> None:
    assert not df["quality_ok"].any()  # short windows on the simulator: every row flagged
    page = build_html(df, reference=False)
    advice = _section(page, "recommendation")
    best = str(_means(df).idxmin())
    assert (
        "No configuration meets the rules: every configuration's rows carry quality flags ("
        in advice
    )
    assert "measured window shorter than the configured" in advice  # the meaning, not the name
    assert f"Allowing flagged rows, {best} is cheapest." in advice
    assert "allow_flagged" not in advice and "recommend:" not in advice
    assert f"Pick {best}:" in advice
    assert f"{_means(df).min():.4g} J/token" in advice
    assert advice.count("flag") == 2  # the refusal says it once, the answer does not repeat it
    rows = page.count(
        "<tr>",
        page.index("id='table-recommend'"),
        page.index("</table>", page.index("id='table-recommend'")),
    )
    assert rows == df["experiment_id"].nunique() + 1  # header and one row per config


def test_comparisons_put_the_recommended_config_against_each_other(df: pd.DataFrame) -> None:
    page = build_html(df, reference=False)
    versus = _section(page, "comparison")
    means = _means(df)
    best = str(means.idxmin())
    sentences = re.findall(r"<li>(.*?)</li>", page.split("id='compare-sentences'")[1])
    assert len(sentences) == len(means) - 1
    assert "B is the recommended configuration" in versus
    for other in (str(label) for label in means.index if label != best):
        ratio = means[best] / means[other]
        assert f"{ratio:.3g} [" in versus
        assert any(
            f"{best} uses {_pct(abs(ratio - 1) * 100)} %" in unescape(s) and other in s
            for s in sentences
        )


def test_a_pair_that_cannot_be_tested_is_one_sentence_by_name(df: pd.DataFrame) -> None:
    one = df[df["cycle"] == 0]
    ids = sorted(one["experiment_id"].unique())
    page = build_html(
        one, reference=False, compare=[({"experiment_id": ids[0]}, {"experiment_id": ids[1]})]
    )
    versus = _section(page, "comparison")
    labels = " and ".join(sorted(one.set_index("experiment_id").loc[ids[:2], "label"].astype(str)))
    assert "Nothing could be compared: a statistical test needs at least two cycles" in versus
    assert f"{labels} have fewer" in versus
    assert "B is the recommended" not in versus and "table-compare" not in page
    assert ids[0] not in versus and "experiment_id" not in versus


def test_the_report_file_carries_both_answers(df: pd.DataFrame, tmp_path: Path) -> None:
    page = llem_nb.report(df, tmp_path / "r.html", reference=False).read_text()
    assert "id='recommend-sentence'" in page and "id='compare-sentences'" in page
