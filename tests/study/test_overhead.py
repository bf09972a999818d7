"""Reuse never changes what is measured, and costs less set-up: the same sweep with
``reuse="never"`` and ``"auto"`` through the real run loop, Harness and NVML meter on the
simulator (virtual time, so wall time and windows are exact simulated seconds)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llem_nb.study.overhead import compare_reuse, overhead_table
from llem_nb.study.study import Study
from llem_nb.testing.simulated import SimRunner, SimWorkload, use_sim_backend


def sweep(**extra: Any) -> Study:
    fields: dict[str, Any] = dict(
        model="sim-model",
        backend=use_sim_backend(),
        n_prompts=8,
        max_output_tokens=30,
        gpus=1,
        baseline={"seconds": 2.0},
        warmup={"runs": 2},
    )
    fields.update(extra)
    return Study("honest", **fields).sweep(batch_size=[1, 2, 4, 8]).cycles(3)


def run_both(tmp_path: Path, study: Study) -> tuple[dict[str, Any], list[SimWorkload]]:
    machines: list[SimWorkload] = []

    def machine() -> SimRunner:
        work = SimWorkload.make(load_s=6.0, idle_w=85.0, counter_update_s=0.1)
        machines.append(work)
        return SimRunner(work)

    clock = _Clocks(machines)
    runs = compare_reuse(
        study, make_runner=machine, results_dir=tmp_path, clock=clock, prime=False
    )
    return runs, machines


class _Clocks:
    """The virtual clock of whichever simulated machine runs now (one per run)."""

    def __init__(self, machines: list[SimWorkload]) -> None:
        self.machines = machines

    def __call__(self) -> float:
        return self.machines[-1].clock.now()


def per_point(df: pd.DataFrame, column: str) -> dict[int, list[float]]:
    return {int(b): sorted(g[column].tolist()) for b, g in df.groupby("batch_size")}


def test_reuse_measures_the_same_tokens_and_energy(tmp_path: Path) -> None:
    runs, machines = run_both(tmp_path, sweep())
    never, auto = runs["never"].result.df, runs["auto"].result.df
    assert len(never) == len(auto) == 12
    assert (never["status"] == "ok").all() and (auto["status"] == "ok").all()
    assert per_point(never, "input_tokens") == per_point(auto, "input_tokens")
    assert per_point(never, "output_tokens") == per_point(auto, "output_tokens")
    assert per_point(never, "n_requests") == per_point(auto, "n_requests")
    for column in ("energy_gross_j", "energy_net_j", "window_s"):
        a, b = per_point(never, column), per_point(auto, column)
        # run-to-run noise: the largest spread of one point over its repeated cycles
        noise = max(max(v) - min(v) for v in [*a.values(), *b.values()])
        for size in a:
            difference = abs(statistics.fmean(a[size]) - statistics.fmean(b[size]))
            assert difference <= noise, (column, size, difference, noise)
    # the points differ far more than that noise: a mix-up of settings could not hide in it
    gross = per_point(never, "energy_gross_j")
    assert abs(statistics.fmean(gross[1]) - statistics.fmean(gross[8])) > 100 * noise
    assert [m.loads for m in machines] == [12, 1]


def test_reuse_records_what_it_skipped(tmp_path: Path) -> None:
    runs, _ = run_both(tmp_path, sweep())
    never, auto = runs["never"].result.df, runs["auto"].result.df
    assert not never["model_reused"].any() and (never["load_s"] == 6.0).all()
    assert not never["baseline_reused"].any() and (never["baseline_age_s"] == 0).all()
    first = auto.sort_values("started_at").iloc[0]
    assert not first["model_reused"] and first["load_s"] == 6.0
    assert not first["baseline_reused"]
    rest = auto.sort_values("started_at").iloc[1:]
    assert rest["model_reused"].all() and (rest["load_s"] == 0).all()
    assert rest["baseline_reused"].all() and (rest["baseline_age_s"] > 0).all()
    assert (rest["baseline_age_s"] < 300).all()


def test_reuse_costs_less_set_up(tmp_path: Path) -> None:
    runs, _ = run_both(tmp_path, sweep())
    never, auto = runs["never"], runs["auto"]
    assert never.windows_s == pytest.approx(auto.windows_s, rel=1e-9)
    assert (never.loads, auto.loads) == (12, 1)
    # what reuse saves: 11 loads of 6 s, 11 idle baselines of 2 s, and the warm-ups
    assert never.wall_s - auto.wall_s > 11 * (6.0 + 2.0)
    assert auto.ratio < never.ratio
    table = overhead_table(runs)
    assert "never" in table and "auto" in table and " 1/12" in table


def test_prime_runs_one_untimed_experiment_first(tmp_path: Path) -> None:
    made: list[SimWorkload] = []

    def machine() -> SimRunner:
        made.append(SimWorkload.make())
        return SimRunner(made[-1])

    runs = compare_reuse(
        sweep().cycles(1),
        make_runner=machine,
        results_dir=tmp_path,
        order=("auto",),
        clock=lambda: made[-1].clock.now() if made else 0.0,
    )
    assert len(made) == 2 and made[0].loads == 1
    assert runs["auto"].experiments == 4
    assert sorted(p.name.split("_")[0] for p in tmp_path.iterdir()) == ["honest", "honest-prime"]
