"""The HTML report: one self-contained file with every table and figure, no external refs."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

import llem_nb
from llem_nb.errors import ResultError
from llem_nb.results.frame import load_results
from tests.support.nb_data import measured_results

FIGURES = (
    "fig-energy-per-token",
    "fig-pareto",
    "fig-prefill-decode",
    "fig-power",
    "fig-reference",
)
TABLES = (
    "table-summary",
    "table-configurations",
    "table-runs",
    "table-quality",
    "table-environment",
)


class Page(HTMLParser):
    """Every tag with its attributes, table rows per table id, and style text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: dict[str, int] = {}
        self.styles: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if tag == "table":
            self._table = values.get("id")
            self.rows[self._table or ""] = 0
        elif tag == "tr" and self._table:
            self.rows[self._table] += 1
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return measured_results(tmp_path_factory.mktemp("report"))


def _parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_is_self_contained_with_every_figure_and_table(
    results_dir: Path, tmp_path: Path
) -> None:
    out = llem_nb.report(results_dir, tmp_path / "sub" / "report.html")
    page = _parse(out)
    refs = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href")]
    assert not [r for r in refs if re.match(r"\s*(https?:)?//", r)]
    styles = "".join(page.styles)
    assert "@import" not in styles and "url(" not in styles
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe")]

    figures = {a["id"] for t, a in page.tags if t == "figure"}
    assert figures >= set(FIGURES)
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) == len(figures)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")

    df = load_results(results_dir)
    assert set(TABLES) <= set(page.rows)
    assert page.rows["table-runs"] == len(df) + 1
    assert page.rows["table-configurations"] == df["experiment_id"].nunique() + 1
    text = " ".join(page.text)
    phrases = ["Energy is measured over one window", "net energy = gross", "ML.ENERGY",
               "different method", "short_window", "measured window shorter than the configured"]  # fmt: skip
    assert [p for p in phrases if p not in text] == []
    assert "not drawn" not in text


def test_report_from_a_frame_and_from_a_study_result(
    fake_backend: str, results_dir: Path, tmp_path: Path
) -> None:
    df = load_results(results_dir)
    page = _parse(llem_nb.report(df, tmp_path / "frame.html", title="my title"))
    assert "my title" in " ".join(page.text)
    assert page.rows["table-runs"] == len(df) + 1

    study = llem_nb.Study(
        "failing", model="fake-model", backend=fake_backend, n_prompts=2, max_output_tokens=2,
        energy={"source": "none"}, warmup={"runs": 0},
    ).sweep(batch_size=[1, 2])  # fmt: skip
    from llem_nb.testing import FakeBackend

    FakeBackend.fail_on = "generate"
    res = study.run(results_dir=tmp_path / "runs", progress=False)
    FakeBackend.fail_on = None
    page = _parse(llem_nb.report(res, tmp_path / "failed.html", reference=False))
    assert page.rows["table-failures"] == 3
    text = " ".join(page.text)
    assert "fake backend asked to fail in generate" in text
    assert "not drawn" in text and "ML.ENERGY" not in text


def test_report_on_missing_or_empty_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match="no results directory"):
        llem_nb.report(tmp_path / "nope", tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match=r"no \*\.result\.json files"):
        llem_nb.report(tmp_path / "empty", tmp_path / "r.html")
    with pytest.raises(ResultError, match="no rows"):
        llem_nb.report(pd.DataFrame(), tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_report_stays_the_function_after_importing_its_modules(
    results_dir: Path, tmp_path: Path
) -> None:
    import llem_nb.reporting.build

    assert callable(llem_nb.report)
    assert llem_nb.report(results_dir, tmp_path / "x.html").is_file()
