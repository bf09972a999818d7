"""Estimated rows are marked one by one in figures and the report, never by the whole frame."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import matplotlib.figure

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba_array

import llem_nb
from llem_nb import plots
from llem_nb.plots.base import ESTIMATE_LABEL

GPU_J = {1: 0.40, 2: 0.30, 4: 0.20}
CPU_J = {1: 4.0, 2: 3.0, 4: 2.0}


def frame(sources: dict[str, dict[int, float]]) -> pd.DataFrame:
    """One row per (source, batch size); same model and backend, so they share a group."""
    rows = []
    for source, per_batch in sources.items():
        for batch_size, joules in per_batch.items():
            rows.append(
                {
                    "experiment_id": f"{source}-bs{batch_size}",
                    "cycle": 0,
                    "status": "ok",
                    "model": "tiny",
                    "backend": "pytorch",
                    "batch_size": batch_size,
                    "energy_source": source,
                    "output_tokens": 100.0,
                    "energy_per_output_token_j": joules,
                    "energy_per_output_token_net_j": np.nan,
                    "throughput_output_tok_s": 10.0 * batch_size,
                    "prefill_energy_j": 30.0 * joules,
                    "decode_energy_j": 70.0 * joules,
                }
            )
    return pd.DataFrame(rows)


MIXED = frame({"nvml": GPU_J, "estimate": CPU_J})
MEASURED = frame({"nvml": GPU_J})


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _labels(ax: plt.Axes) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def _hollow(facecolor: object) -> bool:
    """No fill: a fully transparent colour, or none at all (a collection with facecolors='none')."""
    colours = np.atleast_2d(np.asarray(to_rgba_array(facecolor)))
    return colours.size == 0 or bool((colours[:, 3] == 0).all())


def test_energy_per_token_draws_estimated_rows_as_their_own_hollow_line() -> None:
    ax = plots.energy_per_token(MIXED).axes[0]
    assert sorted(_labels(ax)) == sorted(
        ["tiny / pytorch", "tiny / pytorch (estimate)", ESTIMATE_LABEL]
    )
    measured, estimate = ax.containers
    assert list(measured.lines[0].get_ydata()) == pytest.approx([0.40, 0.30, 0.20])
    assert list(estimate.lines[0].get_ydata()) == pytest.approx([4.0, 3.0, 2.0])
    assert not _hollow(measured.lines[0].get_markerfacecolor())
    assert _hollow(estimate.lines[0].get_markerfacecolor())
    assert "hollow" in ax.get_title()


def test_measured_rows_only_carry_no_estimate_marking() -> None:
    for fig in (
        plots.energy_per_token(MEASURED),
        plots.throughput_vs_energy(MEASURED),
        plots.prefill_decode(MEASURED),
    ):
        ax = fig.axes[0]
        assert ESTIMATE_LABEL not in _labels(ax)
        assert "estimate" not in ax.get_title() and "not a measurement" not in ax.get_title()
    ax = plots.energy_per_token(MEASURED).axes[0]
    assert not _hollow(ax.containers[0].lines[0].get_markerfacecolor())


def test_throughput_vs_energy_draws_estimated_configurations_hollow() -> None:
    ax = plots.throughput_vs_energy(MIXED).axes[0]
    assert ESTIMATE_LABEL in _labels(ax)
    points = [c for c in ax.collections if len(c.get_offsets()) == 3]
    by_y = {round(float(c.get_offsets()[0][1]), 2): c for c in points}
    assert not _hollow(by_y[0.40].get_facecolor())
    assert _hollow(by_y[4.0].get_facecolor())


def test_prefill_decode_draws_estimated_bars_hollow() -> None:
    ax = plots.prefill_decode(MIXED).axes[0]
    assert ESTIMATE_LABEL in _labels(ax)
    assert "tiny / pytorch (estimate): decode" in _labels(ax)
    heights = {round(p.get_height(), 2): p for p in ax.patches}
    assert not _hollow(heights[0.28].get_facecolor())
    assert _hollow(heights[2.8].get_facecolor())


def test_a_title_on_the_users_own_axes_is_kept() -> None:
    for draw in (plots.energy_per_token, plots.throughput_vs_energy, plots.prefill_decode):
        _, ax = plt.subplots()
        ax.set_title("my comparison")
        draw(MIXED, ax=ax)
        assert ax.get_title() == "my comparison"


def test_an_all_estimate_frame_still_says_so_in_the_title() -> None:
    ax = plots.energy_per_token(frame({"estimate": CPU_J})).axes[0]
    assert "not a measurement" in ax.get_title()
    assert ESTIMATE_LABEL in _labels(ax)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.runs_header: list[str] = []
        self.runs_cells: list[str] = []
        self._table: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id")
        self._cell = tag if tag in ("th", "td") else None

    def handle_endtag(self, tag: str) -> None:
        self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._table == "table-runs" and self._cell == "th":
            self.runs_header.append(data)
        elif self._table == "table-runs" and self._cell == "td":
            self.runs_cells.append(data)


def _report(df: pd.DataFrame, path: Path) -> _Text:
    page = _Text()
    page.feed(llem_nb.report(df, path, reference=False).read_text(encoding="utf-8"))
    return page


def test_report_names_the_estimated_runs(tmp_path: Path) -> None:
    page = _report(MIXED, tmp_path / "mixed.html")
    text = " ".join(page.text)
    assert "3 of 6 runs have estimated energy (not measured)" in text
    for batch_size in CPU_J:
        assert f"estimate-bs{batch_size} cycle 0" in text
    assert "nvml-bs1 cycle 0" not in text.split("runs have estimated energy")[1].split(".")[0]
    assert "measured" in page.runs_header
    column = page.runs_header.index("measured")
    width = len(page.runs_header)
    measured = page.runs_cells[column::width]
    assert sorted(measured) == ["No (estimate)"] * 3 + ["Yes"] * 3


def test_report_of_measured_runs_marks_no_estimate(tmp_path: Path) -> None:
    page = _report(MEASURED, tmp_path / "measured.html")
    text = " ".join(page.text)
    assert "estimated energy" not in text and "No (estimate)" not in page.runs_cells
    assert "measured" not in page.runs_header


# ---------------------------------------------------------------- figures outside pyplot


DRAWS = {
    "energy_per_token": lambda df, **kw: plots.energy_per_token(df, **kw),
    "throughput_vs_energy": lambda df, **kw: plots.throughput_vs_energy(df, **kw),
    "prefill_decode": lambda df, **kw: plots.prefill_decode(df, **kw),
    "explore": lambda df, **kw: plots.explore(df, "batch_size", "energy_per_output_token_j", **kw),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_a_figure_is_a_value_pyplot_never_sees(name: str) -> None:
    """What keeps a Figure returned as a cell's last line from drawing twice in Jupyter:
    pyplot's list of open figures (what the inline backend flushes) does not grow, and
    IPython's rendering of it marks it shown (so the end-of-cell hook skips it)."""
    before = plt.get_fignums()
    fig = DRAWS[name](MIXED)
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    assert plt.get_fignums() == before
    assert fig.canvas.manager is None
    assert fig.shown is False
    bundle = fig._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert fig.shown is True


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_ax_draws_into_the_callers_axes(name: str) -> None:
    fig, (left, right) = plt.subplots(1, 2)
    assert DRAWS[name](MIXED, ax=right) is fig
    assert right.has_data() and not left.has_data()
    assert fig.axes == [left, right]


def test_ax_that_is_not_an_axes_is_a_clear_error() -> None:
    with pytest.raises(llem_nb.LlemError, match="expected a matplotlib Axes, got str"):
        plots.energy_per_token(MIXED, ax="left")
