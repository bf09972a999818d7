"""``llem-nb compare``: the comparison's sentence, the recommendation, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem_nb.cli import EXIT_CONFIG, EXIT_OK, main
from tests.support.results_data import result, write

ROWS = {1: (30.0, 31.0, 32.0), 4: (15.0, 15.5, 14.5)}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    rows = [
        result({"batch_size": b}, c, energy_gross_j=e, ttft_ms_p90=100.0 * b)
        for b, energies in ROWS.items()
        for c, e in enumerate(energies)
    ]
    return write(tmp_path / "r", rows)


def test_compare_two_configs(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(results), "-a", "batch_size=1", "-b", "batch_size=4"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("batch_size=4 uses 52 % ± ") and "n = 3 cycles each." in out


def test_compare_json_is_plain_data(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["compare", str(results), "-a", "batch_size=4", "-b", "batch_size=1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["a"] == "batch_size=4" and data["ratio"] == pytest.approx(0.31 / 0.15)
    assert data["significant"] is True and data["caveats"] == []


def test_recommend_under_limits(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(results), "--where", "ttft_ms_p90<=200"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("Pick batch_size=1:")  # batch 4's TTFT p90 (400 ms) misses the limit
    assert "misses ttft_ms_p90 <= 200" in out
    main(["compare", str(results), "--json"])
    assert json.loads(capsys.readouterr().out)["best"] == "batch_size=4"


def test_errors_exit_3_with_the_fix(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(results), "-a", "batch_size=1"]) == EXIT_CONFIG
    assert "needs both -a and -b" in capsys.readouterr().err
    assert main(["compare", str(results), "--where", "ttft_ms_p90 about 3"]) == EXIT_CONFIG
    assert "COLUMN OP VALUE" in capsys.readouterr().err
    assert main(["compare", str(results), "-a", "batch_size=3", "-b", "batch_size=1"]) == 3
    assert "matches no row" in capsys.readouterr().err


def test_verbose_logs_to_stderr(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-vv", "compare", str(results), "-a", "batch_size=1", "-b", "batch_size=4"]) == 0
    assert "DEBUG llem_nb.results.index" in capsys.readouterr().err
