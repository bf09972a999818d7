"""Bookkeeping overhead of a study: expansion, loop, journal and result store, per experiment.

A no-op experiment (the fake backend, 1 prompt, 1 output token, no energy, no warm-up,
no baseline) runs in-process; everything the study does around it is overhead:
    overhead per experiment = (wall time of the whole run − time inside runner.run) / N
``prepare`` (expansion, validation, hashing, lock, queueing in the journal) is
included and also shown on its own. ``user``/``sys`` split the process's CPU time: on
a shared disk the temp-file create of each result write (system time) swings from
0.2 to 1 ms with other processes' I/O, while user time shows what the loop itself
costs. Sizes run interleaved; the least-disturbed (minimum) run and the median are
shown. Goal: ≤ 1 ms per experiment, and 10k ≤ 1.2 × 1k (O(1) per experiment).

The runner calls the fake backend and the Harness's result helpers directly: the
Harness's own ``gc.collect()`` before each window (~40 ms in a loaded process) is a
measurement choice, not bookkeeping, and would make 10k runs take minutes.
``--harness N`` times N experiments through the real ``LocalRunner`` for reference.

    .venv/bin/python benchmarks/bookkeeping.py [--sizes 1000 10000] [--harness 100] [--gc-rows]

``--smoke``: a few experiments per row (seconds), for ``make test``.

A run keeps every ExperimentResult (``StudyResult.results``), so the heap grows with N and
CPython's cyclic GC costs a little more per allocation; that touches the runner's own time
just as much. ``--gc-rows`` shows the loop with the GC paused, to separate the two.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.measure.accounting import fill_tokens_and_latency
from llem_nb.results.schema import ExperimentResult, utc_now
from llem_nb.run.start import prepare_run
from llem_nb.runners.base import Runner
from llem_nb.runners.local import LocalRunner
from llem_nb.study.study import Study
from llem_nb.testing import FakeBackend, use_fake_backend


class NoopRunner(Runner):
    """The fake backend's generate + the Harness's token accounting, timed."""

    name = "local"

    def __init__(self, inner: Runner | None = None) -> None:
        super().__init__(source="argument")
        self.inner = inner
        self.busy_s = 0.0
        self.busy_cpu_s = 0.0

    def run(self, config: ExperimentConfig, *, cycle: int = 0, study: str = "") -> ExperimentResult:
        t, cpu = time.perf_counter(), time.process_time()
        try:
            if self.inner is not None:
                return self.inner.run(config, cycle=cycle, study=study)
            return super().run(config, cycle=cycle, study=study)
        finally:
            self.busy_s += time.perf_counter() - t
            self.busy_cpu_s += time.process_time() - cpu

    def _execute(self, config: ExperimentConfig, *, cycle: int, study: str) -> ExperimentResult:
        backend = FakeBackend(config)
        output = backend.generate(["one prompt"])
        result = ExperimentResult(
            study=study,
            experiment_id=config.experiment_id,
            config_hash=config.config_hash,
            cycle=cycle,
            config=config.model_dump(mode="json"),
            finished_at=utc_now(),
            window_s=0.0,
        )
        fill_tokens_and_latency(result, output)
        return result


def study_of(n: int, backend: str) -> Study:
    return Study(
        "bookkeeping",
        model="noop",
        backend=backend,
        n_prompts=1,
        max_output_tokens=1,
        energy={"source": "none"},
        warmup={"runs": 0},
        baseline={"seconds": 0},
    ).sweep(decoder__seed=list(range(n)))


def measure(
    n: int, root: Path, *, sync_interval_s: float = 1.0, harness: bool = False, gc_on: bool = True
) -> dict:
    backend = use_fake_backend()
    study = study_of(n, backend)
    runner = NoopRunner(LocalRunner(source="argument") if harness else None)
    t0, cpu0, times0 = time.perf_counter(), time.process_time(), os.times()
    run = prepare_run(
        study.config,
        runner=runner,
        results_dir=root,
        progress=False,
        sync_interval_s=sync_interval_s,
    )
    t1 = time.perf_counter()
    if not gc_on:
        gc.disable()
    try:
        result = run.execute()
    finally:
        gc.enable()
    t2, cpu2, times2 = time.perf_counter(), time.process_time(), os.times()
    assert len(result.results) == n and not result.failed, "every no-op experiment must succeed"
    assert len(list(result.dir.glob("*.result.json"))) == n
    return {
        "n": n,
        "prepare_ms": (t1 - t0) * 1e3 / n,
        "loop_ms": (t2 - t1 - runner.busy_s) * 1e3 / n,
        "overhead_ms": (t2 - t0 - runner.busy_s) * 1e3 / n,
        "cpu_ms": (cpu2 - cpu0 - runner.busy_cpu_s) * 1e3 / n,
        "user_ms": (times2.user - times0.user) * 1e3 / n,
        "sys_ms": (times2.system - times0.system) * 1e3 / n,
        "runner_ms": runner.busy_s * 1e3 / n,
        "wall_s": t2 - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (median shown)")
    parser.add_argument("--fsync-each", type=int, default=300, help="N for the fsync-each row")
    parser.add_argument("--harness", type=int, default=100, help="N through the real Harness")
    parser.add_argument(
        "--gc-rows", action="store_true", help="also run each size with the cyclic GC paused"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for make test")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.repeats, args.fsync_each, args.harness = [5, 10], 1, 3, 2
    FakeBackend.step_s = 0.0
    rows = []
    with tempfile.TemporaryDirectory(prefix="llem-bookkeeping-") as tmp:
        root = Path(tmp)
        measure(3 if args.smoke else 50, root / "warm")
        modes = [("group fsync (default, ≤ 1/s)", True)]
        if args.gc_rows:
            modes.append(("same, cyclic GC paused", False))
        for name, gc_on in modes:
            runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
            for r in range(args.repeats):
                for n in args.sizes:
                    runs[n].append(measure(n, root / f"{n}-{r}", gc_on=gc_on))
                    shutil.rmtree(root / f"{n}-{r}")
            for n in args.sizes:
                best = min(runs[n], key=lambda x: x["overhead_ms"])
                best["median_ms"] = statistics.median(x["overhead_ms"] for x in runs[n])
                rows.append((name, best))
        if args.fsync_each:
            rows.append(
                (
                    "fsync every result + line",
                    measure(args.fsync_each, root / "each", sync_interval_s=0),
                )
            )
        if args.harness:
            rows.append(
                ("real LocalRunner + Harness", measure(args.harness, root / "h", harness=True))
            )
    print(f"{'policy':<30}{'N':>6}{'overhead ms':>12}{'(median)':>9}{'prepare':>8}"
          f"{'loop':>7}{'runner':>7}{'user':>7}{'sys':>7}{'wall s':>8}")  # fmt: skip
    for name, row in rows:
        median = f"{row['median_ms']:.3f}" if "median_ms" in row else "-"
        print(
            f"{name:<30}{row['n']:>6}{row['overhead_ms']:>12.3f}{median:>9}"
            f"{row['prepare_ms']:>8.3f}{row['loop_ms']:>7.3f}{row['runner_ms']:>7.3f}"
            f"{row['user_ms']:>7.3f}{row['sys_ms']:>7.3f}{row['wall_s']:>8.2f}"
        )
    print("(ms per experiment; user/sys: CPU of the whole process, runner included)")
    default = [row for name, row in rows if name.startswith("group")]
    if len(default) >= 2:
        small, big = default[0], default[-1]
        for key, what in (
            ("overhead_ms", "min wall"),
            ("median_ms", "median wall"),
            ("user_ms", "user CPU"),
        ):
            print(
                f"{what} overhead per experiment: {small[key]:.3f} ms at {small['n']}, "
                f"{big[key]:.3f} ms at {big['n']} (ratio {big[key] / small[key]:.2f}; "
                "goal ≤ 1 ms, ≤ 1.2)"
            )


if __name__ == "__main__":
    main()
