"""``llem-nb report``: results dirs → one HTML file; a missing dir is a clear error (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_nb.cli import EXIT_CONFIG, EXIT_OK, main
from tests.support.results_data import sweep


def test_report_writes_the_file_it_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep(tmp_path / "a", {1: [30.0, 31.0], 2: [20.0]}, study="alpha")
    sweep(tmp_path / "b", {1: [10.0]}, study="beta")
    out = tmp_path / "out" / "r.html"
    code = main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)])
    assert code == EXIT_OK and out.is_file()
    assert capsys.readouterr().out.strip() == f"report: {out}"
    page = out.read_text(encoding="utf-8")
    assert "alpha" in page and "beta" in page


def test_a_missing_dir_exits_3_saying_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == EXIT_CONFIG
    assert "no results directory" in capsys.readouterr().err
