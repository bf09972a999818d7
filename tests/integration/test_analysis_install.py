"""The analysis install: llem_nb's base dependencies only, on the oldest Python and pandas
pyproject.toml allows and on the newest, runs every analysis path; the same results load
into equal frames on pandas 2 and pandas 3.

The venvs come from mk/analysis.mk (``make analysis-venvs``; ``make test`` builds them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.nb_data import measured_results
from tests.support.results_data import result, write

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".cache" / "analysis"
CHECK = Path(__file__).with_name("analysis_check.py")
FIXTURES = ROOT / "tests" / "results" / "fixtures"


def _python(name: str) -> Path:
    if not (VENVS / name / ".stamp").is_file():
        subprocess.run(["make", "-s", "analysis-venvs"], cwd=ROOT, check=True, timeout=1800)
    return VENVS / name / "bin" / "python"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analysis-data")
    rows = [
        result({"batch_size": b}, c, energy_gross_j=e, ttft_ms_p90=100.0 * b)
        for b, energies in {1: (30.0, 31.0, 32.0), 2: (20.0, 21.0, 19.5), 4: (15.0, 15.5, 14.5)}.items()
        for c, e in enumerate(energies)
    ]  # fmt: skip
    write(root / "sweep", rows)
    measured_results(root / "measured", batch_sizes=(1, 2), cycles=2)
    shutil.copytree(FIXTURES / "llenergymeasure", root / "peers" / "llenergymeasure")
    shutil.copytree(FIXTURES / "optimum_benchmark", root / "peers" / "optimum_benchmark")
    return root


@pytest.fixture(scope="module")
def runs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in ("oldest", "newest"):
        target = tmp_path_factory.mktemp(f"analysis-{name}")
        done = subprocess.run(
            [str(_python(name)), str(CHECK), str(data), str(target)],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out[name] = target
    return out


def _floors() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    return {d.split(">=")[0]: d.split(">=")[1] for d in deps}


def _summary(path: Path) -> dict[str, object]:
    return json.loads((path / "summary.json").read_text())  # type: ignore[no-any-return]


def test_each_venv_runs_every_analysis_path(runs: dict[str, Path]) -> None:
    for name, out in runs.items():
        summary = _summary(out)
        assert summary["origins"] == ["llem_nb", "llenergymeasure", "ml.energy", "optimum-benchmark"]
        assert summary["warnings"] == [], name  # nothing but llem_nb's own warnings
        for figure in summary["figures"]:  # type: ignore[attr-defined]
            assert (out / f"{figure}.png").stat().st_size > 1000, (name, figure)
        for page in ("report.html", "cli.html"):
            assert "<html" in (out / page).read_text(encoding="utf-8")[:500].lower(), (name, page)
        assert (out / "warehouse" / "study=sweep" / "part-0.parquet").is_file()
        assert summary["best"] == "batch_size=2"  # batch 4's TTFT p90 (400 ms) misses 350


def test_oldest_venv_holds_the_floors_and_newest_pandas_3(runs: dict[str, Path]) -> None:
    old, new = _summary(runs["oldest"]), _summary(runs["newest"])
    floors = _floors()
    assert str(old["python"]).startswith("3.10.")
    assert old["pandas"] == floors["pandas"] + ".0" and old["numpy"] == floors["numpy"] + ".0"
    assert str(new["python"]).startswith("3.13.") and str(new["pandas"]).startswith("3.")


def test_the_same_answers_on_pandas_2_and_3(runs: dict[str, Path]) -> None:
    old, new = _summary(runs["oldest"]), _summary(runs["newest"])
    for key in ("rows", "dtypes", "summary_labels", "summary_low", "comparison", "recommendation"):
        assert old[key] == new[key], key


def test_a_frame_loaded_on_pandas_2_equals_the_one_loaded_on_pandas_3(
    runs: dict[str, Path],
) -> None:
    code = (
        "import pickle, sys, pandas as pd\n"
        "old = pickle.load(open(sys.argv[1], 'rb')); new = pickle.load(open(sys.argv[2], 'rb'))\n"
        "pd.testing.assert_frame_equal(old, new, check_exact=True)\n"
        "assert old.attrs == new.attrs\n"
        "print(pd.__version__, len(new))\n"
    )
    done = subprocess.run(
        [str(_python("newest")), "-c", code,
         str(runs["oldest"] / "frame.pkl"), str(runs["newest"] / "frame.pkl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3.")

