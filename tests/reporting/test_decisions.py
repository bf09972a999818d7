"""The report's recommendation and comparison sections.

``ll.compare``/``ll.recommend`` are written on another branch (issue 14, item 4). Until
they are merged, these tests drive the sections through ``reporting.decisions.Analysis``
with small stand-ins defined HERE, shaped like their published signatures
(``Comparison``/``Recommendation``); the last test runs the real functions once they
exist.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import llem_nb
from llem_nb.errors import ResultError
from llem_nb.reporting import decisions
from llem_nb.reporting.build import build_html
from llem_nb.results.frame import load_results
from tests.support.nb_data import measured_results


@dataclass(frozen=True)
class StandInRecommendation:
    objective: str
    best: str | None
    runners_up: tuple[str, ...]
    pareto: tuple[str, ...]
    table: pd.DataFrame
    notes: tuple[str, ...]
    sentence: str


@dataclass(frozen=True)
class StandInComparison:
    metric: str
    a: str
    b: str
    n_a: int
    n_b: int
    ratio: float
    ratio_low: float
    ratio_high: float
    change_pct: float
    change_pct_pm: float
    p_value: float
    caveats: tuple[str, ...]
    sentence: str


def _label(df: pd.DataFrame) -> pd.Series:
    return df["label"] if "label" in df else "batch_size=" + df["batch_size"].astype(str)


def stand_in_recommend(
    df: pd.DataFrame, objective: str, where: Any = None, *,
    allow_flagged: bool = False, allow_single_cycle: bool = False,
) -> StandInRecommendation:  # fmt: skip
    """Lowest mean wins; refuses flagged rows unless allowed, as the real one documents."""
    rows = df[df["status"] == "ok"].assign(label=_label(df))
    if not allow_flagged:
        rows = rows[rows["quality_ok"]]
    if rows.empty:
        raise ResultError("every row carries a quality flag", fix="allow_flagged=True")
    table = (
        rows.groupby(["study", "experiment_id", "label"], as_index=False)
        .agg(n=(objective, "size"), **{f"{objective}_mean": (objective, "mean")})
        .sort_values(f"{objective}_mean")
    )
    best = str(table["label"].iloc[0])
    table["best"] = [True] + [False] * (len(table) - 1)
    notes = ("used flagged rows",) if allow_flagged else ()
    return StandInRecommendation(
        objective, best, (), (best,), table, notes, f"Pick {best} for the lowest {objective}."
    )


def stand_in_compare(df: pd.DataFrame, a: Any, b: Any, metric: str) -> StandInComparison:
    def pick(selector: Any) -> pd.DataFrame:
        rows = df[df["experiment_id"] == selector["experiment_id"]]
        return rows.assign(label=_label(rows))

    ra, rb = pick(a), pick(b)
    if len(ra) < 2:
        raise ResultError(f"{ra['label'].iloc[0]} has a single cycle", fix="Study.cycles(3)")
    ratio = rb[metric].mean() / ra[metric].mean()
    la, lb = ra["label"].iloc[0], rb["label"].iloc[0]
    return StandInComparison(
        metric,
        la,
        lb,
        len(ra),
        len(rb),
        ratio,
        ratio * 0.9,
        ratio * 1.1,
        (ratio - 1) * 100,
        5.0,
        0.01,
        (),
        f"{lb} uses {abs(ratio - 1) * 100:.0f} % less than {la}.",
    )


STAND_INS = decisions.Analysis(compare=stand_in_compare, recommend=stand_in_recommend)


@pytest.fixture(scope="module")
def df(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_results(measured_results(tmp_path_factory.mktemp("decide"), cycles=3))


def _section(page: str, anchor: str) -> str:
    found = re.search(rf"<section id='{anchor}'>(.*?)</section>", page, re.S)
    assert found is not None, anchor
    return unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def test_refused_recommendation_says_why_then_shows_the_relaxed_answer(df: pd.DataFrame) -> None:
    assert not df["quality_ok"].any()  # short windows on the simulator: every row flagged
    page = build_html(df, reference=False, analysis=STAND_INS)
    advice = _section(page, "recommendation")
    assert "No recommendation on the strict rules: every row carries a quality flag" in advice
    assert "With flagged and single-cycle rows allowed" in advice
    best = df.groupby("experiment_id")["energy_per_output_token_j"].mean().idxmin()
    best_bs = int(df.loc[df["experiment_id"] == best, "batch_size"].iloc[0])
    assert f"Pick batch_size={best_bs} for the lowest energy_per_output_token_j." in advice
    assert "used flagged rows" in advice
    assert page.count("<tr>", page.index("id='table-recommend'")) >= df["experiment_id"].nunique()


def test_comparisons_put_the_recommended_config_against_each_other(df: pd.DataFrame) -> None:
    page = build_html(df, reference=False, analysis=STAND_INS)
    versus = _section(page, "comparison")
    configs = df["experiment_id"].nunique()
    sentences = re.findall(r"<li>(.*?)</li>", page.split("id='compare-sentences'")[1])
    assert len(sentences) == configs - 1
    assert "B is the recommended configuration" in versus
    mean = df.groupby("batch_size")["energy_per_output_token_j"].mean()
    best_bs = int(mean.idxmin())
    for other in (b for b in mean.index if b != best_bs):
        ratio = mean[best_bs] / mean[other]
        assert (
            f"batch_size={best_bs} uses {abs(ratio - 1) * 100:.0f} % less than batch_size={other}."
            in (unescape(" ".join(sentences)))
        )


def test_user_pairs_and_a_failing_pair_are_shown(df: pd.DataFrame) -> None:
    one = df[df["cycle"] == 0]
    ids = sorted(one["experiment_id"].unique())
    page = build_html(
        one, reference=False, analysis=STAND_INS,
        compare=[({"experiment_id": ids[0]}, {"experiment_id": ids[1]})],
    )  # fmt: skip
    versus = _section(page, "comparison")
    assert "has a single cycle" in versus and "B is the recommended" not in versus


def test_without_the_functions_each_section_says_so(df: pd.DataFrame) -> None:
    page = build_html(df, reference=False, analysis=decisions.Analysis(None, None))
    assert "ll.recommend is not available" in _section(page, "recommendation")
    assert "ll.compare is not available" in _section(page, "comparison")


@pytest.mark.skipif(
    importlib.util.find_spec("llem_nb.results.recommend") is None,
    reason="ll.compare/ll.recommend not merged into this branch yet (issue 14, item 4)",
)
def test_the_report_runs_the_real_compare_and_recommend(df: pd.DataFrame, tmp_path: Path) -> None:
    analysis = decisions.default_analysis()
    assert analysis.compare is llem_nb.compare and analysis.recommend is llem_nb.recommend
    page = llem_nb.report(df, tmp_path / "r.html", reference=False).read_text()
    advice = _section(page, "recommendation")
    assert "not available" not in advice
    assert "id='recommend-sentence'" in page
