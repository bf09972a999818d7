"""What a study costs beyond its measurements: study wall time ÷ the sum of measured windows.

``compare_reuse`` runs one study twice, ``reuse="never"`` (every experiment loads, warms up
and measures its idle baseline afresh) and ``reuse="auto"``, and reports both side by side;
``benchmarks/study_overhead.py`` and the GPU check print it. The results of both runs come
back too, so a caller can also check that reuse changed nothing that was measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem_nb.config.sections import Reuse
from llem_nb.run.result import StudyResult
from llem_nb.study.study import Study


@dataclass
class StudyOverhead:
    """One run of a study: its wall time, its measured windows, how many models it loaded."""

    reuse: str
    wall_s: float
    windows_s: float
    loads: int
    experiments: int
    result: StudyResult

    @property
    def ratio(self) -> float:
        """Wall time per second of measured window (1.0: nothing but measurement)."""
        return self.wall_s / self.windows_s if self.windows_s > 0 else float("inf")


def measure_overhead(
    study: Study,
    reuse: Reuse,
    *,
    runner: Any = None,
    results_dir: str | Path = "results",
    clock: Callable[[], float] = time.perf_counter,
) -> StudyOverhead:
    """Run ``study`` with ``reuse``; time it on ``clock`` (a simulator's for virtual time)."""
    t0 = clock()
    result = study.reuse(reuse).run(runner=runner, results_dir=results_dir, progress=False)
    wall_s = clock() - t0
    ok = [r for r in result.results if r.status == "ok"]
    return StudyOverhead(
        reuse=reuse,
        wall_s=wall_s,
        windows_s=sum(r.window_s or 0.0 for r in ok),
        loads=sum(1 for r in ok if not r.model_reused),
        experiments=len(result.results),
        result=result,
    )


def compare_reuse(
    study: Study,
    *,
    runner: Any = None,
    make_runner: Callable[[], Any] | None = None,
    results_dir: str | Path = "results",
    clock: Callable[[], float] = time.perf_counter,
    order: Sequence[Reuse] = ("never", "auto"),
    prime: bool = True,
) -> dict[str, StudyOverhead]:
    """Run ``study`` once per reuse mode in ``order``, each timed from start to end.

    ``prime``: first run the study's first point once, untimed, so imports, file caches
    and lazy initialisation are paid before either timed run. ``make_runner`` builds a
    fresh runner per run (simulated machines); else ``runner`` is used for all.
    """
    pick = make_runner or (lambda: runner)
    if prime:
        first = study.points[0]
        warm = Study.from_dict(
            {
                "name": f"{study.name}-prime",
                "base": first.config.model_dump(mode="json"),
                "runners": study.config.runners,
            }
        )
        measure_overhead(warm, "never", runner=pick(), results_dir=results_dir, clock=clock)
    return {
        mode: measure_overhead(study, mode, runner=pick(), results_dir=results_dir, clock=clock)
        for mode in order
    }


def overhead_table(runs: dict[str, StudyOverhead]) -> str:
    """The side-by-side lines the benchmark and the GPU check print."""
    lines = [f"{'reuse':<8}{'wall s':>9}{'Σ windows s':>13}{'wall/Σwin':>11}{'loads':>7}"]
    for mode, run in runs.items():
        lines.append(
            f"{mode:<8}{run.wall_s:>9.1f}{run.windows_s:>13.1f}{run.ratio:>11.3f}"
            f"{run.loads:>4}/{run.experiments}"
        )
    return "\n".join(lines)
