"""Every script under benchmarks/ runs at its smoke size (``--smoke``), so none can rot.

Each runs in its own process, as a user would run it, with this tree first on the path.
Timings at smoke size mean nothing, so only that it ran is checked, plus the goals of
``accuracy.py``, which are deterministic (virtual time on the simulator). A benchmark
that needs a Docker engine skips its smoke run when none is given and says why; the
integration test ``tests/integration/test_benchmark_docker.py`` gives it the private one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
NEEDS_TORCH = {"overhead.py", "study_overhead.py"}
"""Load a tiny torch model: about 10 s of CPU at smoke size, so marked ``slow``."""
TIMEOUT_S = 900


def run_smoke(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
        env=environment,
    )


def test_the_benchmarks_are_all_here() -> None:
    """A new script joins this list, so what each prints is checked below where it can be."""
    assert set(SCRIPTS) == {
        "accuracy.py", "bookkeeping.py", "docker_dispatch.py", "load_generator.py",
        "load_results.py", "overhead.py", "study_overhead.py",
    }  # fmt: skip


@pytest.mark.parametrize(
    "script",
    [pytest.param(s, marks=pytest.mark.slow) if s in NEEDS_TORCH else s for s in SCRIPTS],
)
def test_benchmark_runs_at_smoke_size(script: str) -> None:
    if script in NEEDS_TORCH:
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
    env = {"DOCKER_HOST": "", "LLEM_BENCH_IMAGE": ""} if script == "docker_dispatch.py" else {}
    done = run_smoke(script, **env)
    assert done.returncode == 0, (
        f"{script} --smoke failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert done.stdout.strip(), f"{script} printed nothing"
    if script == "accuracy.py":
        assert "every goal met" in done.stdout and "MISSED" not in done.stdout, done.stdout
    if script == "load_generator.py":
        rows = [line.split() for line in done.stdout.splitlines() if "llem_nb" in line.split()]
        assert rows and all(r[-1] in ("met", "missed") for r in rows), done.stdout
        assert "CPU ≤ vLLM's" in done.stdout, done.stdout
    if script == "docker_dispatch.py":
        assert done.stdout.startswith("skipped: DOCKER_HOST and LLEM_BENCH_IMAGE"), done.stdout
