"""The one-file report in headless Chromium at 1280 px: nothing scrolls sideways, every
section fits the page, no request leaves the file, and a screenshot per study lands in
artifacts/ for a human to look at. Optional: the same page printed to PDF.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

import llem_nb
from tests.support.browser import ARTIFACTS, need_chromium, open_page, playwright_or_skip
from tests.support.nb_data import measured_results

pytestmark = pytest.mark.integration

WIDTH_PX = 1280
OVERFLOW = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const root = document.documentElement;
  const body = document.body.getBoundingClientRect();
  const out = e => e.scrollWidth > e.clientWidth + 1
    || e.getBoundingClientRect().right > body.right + 1;
  const wide = [...document.querySelectorAll('section, table, figure, .wide, p, ul')]
    .filter(out)
    .map(e => (e.id || e.closest('section').id) + ' ' + e.tagName + ' ' + e.scrollWidth);
  return {scroll: root.scrollWidth, client: root.clientWidth, wide: wide,
          sections: [...document.querySelectorAll('section')].map(s => s.id)};
}"""


def _study(directory: Path, cycles: int) -> Path:
    """Four batch sizes of a model held in the user's cache directory (a local path)."""
    model = Path.home() / ".cache" / "llem_nb" / "models" / "SmolLM2-135M-Instruct"
    return measured_results(
        directory, batch_sizes=(1, 2, 4, 8), cycles=cycles, config={"model": str(model)}
    )


@pytest.mark.parametrize("cycles", [1, 3])
def test_report_fits_1280_px_without_sideways_scroll(
    fake_backend: str, tmp_path: Path, cycles: int
) -> None:
    playwright = playwright_or_skip()
    out = llem_nb.report(_study(tmp_path / "runs", cycles), tmp_path / "report.html")
    blocked: list[str] = []
    with open_page(playwright, (WIDTH_PX, 900), ("file:", "data:"), blocked) as page:
        page.goto(out.as_uri())
        found = page.evaluate(OVERFLOW)
        page.screenshot(
            path=str(ARTIFACTS / f"report-{WIDTH_PX}px-{cycles}-cycles.png"), full_page=True
        )
    assert WIDTH_PX - 30 <= found["client"] <= WIDTH_PX  # the viewport, less a scrollbar
    assert found["scroll"] <= found["client"]
    assert found["wide"] == []
    assert {"summary", "recommendation", "comparison", "figures", "runs", "environment",
            "methods"} <= set(found["sections"])  # fmt: skip
    assert blocked == []


def test_report_prints_to_pdf(fake_backend: str, tmp_path: Path) -> None:
    need_chromium()
    out = llem_nb.report(_study(tmp_path / "runs", 1), tmp_path / "report.pdf", format="pdf")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(data)
